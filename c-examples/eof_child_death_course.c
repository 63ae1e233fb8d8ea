/* eof_child_death_course.c

   The notes: "When you try to read from a file and no one has it open to
   write, UNIX returns a special code that tells you that. You can use that
   value to know when the processes die." The child writes a few lines into
   a pipe and exits without closing anything: its death closes its write
   end. The parent prints what it reads until read() returns 0, end of file,
   which can only mean that no process holds the write end any more: the
   child is gone. Then it reaps the child with wait() and prints its exit
   status.

   For that to work the parent must close its own copy of the write end
   first; otherwise it would itself keep the pipe open for writing and wait
   for end of file forever.

   Written with the plain system calls; its twin eof_child_death_rawipc.c
   does the same through rawipc.h, whose rawipc_write_all() writes whole
   lines, retries writes interrupted by a signal (EINTR), and turns SIGPIPE
   into EPIPE.

   Usage: eof_child_death_course
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define LINES 3
#define CHILD_STATUS 3

int main(void)
{
    int fds[2];                 /* fds[0]: read end; fds[1]: write end */
    char buf[64];
    ssize_t n;
    int status;

    if (pipe(fds) == -1)
        err_exit("pipe");

    switch (fork()) {
    case -1:
        err_exit("fork");

    case 0:                     /* child: writes some lines, then dies */
        if (close(fds[0]) == -1)
            err_exit("close read end");
        for (int i = 1; i <= LINES; i++) {
            char line[64];
            int len = snprintf(line, sizeof line, "child: line %d of %d\n", i, LINES);
            if (write(fds[1], line, (size_t) len) != len)
                err_exit("write");
        }
        _exit(CHILD_STATUS);    /* the write end is closed by the child's death */

    default:
        break;
    }

    if (close(fds[1]) == -1)    /* or end of file would never come */
        err_exit("close write end");

    /* The lines may come in any number of pieces: print the bytes as they come. */
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
            err_exit("fwrite");
    if (n == -1)
        err_exit("read");
    printf("parent: read returned 0, end of file: the child is gone\n");
    if (close(fds[0]) == -1)
        err_exit("close read end");

    if (wait(&status) == -1)
        err_exit("wait");
    if (WIFEXITED(status))
        printf("parent: the child exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("parent: the child was killed by signal %d\n", WTERMSIG(status));
    exit(EXIT_SUCCESS);
}
