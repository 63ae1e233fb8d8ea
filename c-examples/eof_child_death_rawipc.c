/* eof_child_death_rawipc.c

   The notes' end of file, through rawipc: the child writes a few lines into
   a pipe and exits without closing anything: its death closes its write
   end. The parent prints what it reads until rawipc_read() returns 0, end of
   file, which can only mean that no process holds the write end any more:
   the child is gone. Then it reaps the child with rawipc_wait() and prints
   its exit status (the usual WIFEXITED/WEXITSTATUS macros apply).

   For that to work the parent must close its own copy of the write end
   first; otherwise it would itself keep the pipe open for writing and wait
   for end of file forever.

   rawipc_read(), rawipc_close() and rawipc_wait() behave exactly as read(),
   close() and wait(): the parent's loop is the course's loop. The child
   writes with rawipc_write_all(), rawipc's own call, where its twin
   eof_child_death_course.c uses write(): each line goes whole even if a
   signal or a full pipe interrupts it, and a parent that is gone gives EPIPE
   rather than SIGPIPE.

   Usage: eof_child_death_rawipc
*/
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "common.h"

#define LINES 3
#define CHILD_STATUS 3

int main(void)
{
    int fds[2];                 /* fds[0]: read end; fds[1]: write end */
    char buf[64];
    ssize_t n;
    int status;

    if (rawipc_pipe(fds) == -1)
        err_exit("rawipc_pipe");

    switch (rawipc_fork()) {
    case -1:
        err_exit("rawipc_fork");

    case 0:                     /* child: writes some lines, then dies */
        if (rawipc_close(fds[0]) == -1)
            err_exit("rawipc_close read end");
        for (int i = 1; i <= LINES; i++) {
            char line[64];
            int len = snprintf(line, sizeof line, "child: line %d of %d\n", i, LINES);
            /* The whole line, or an error (never a short write, never SIGPIPE). */
            if (rawipc_write_all(fds[1], line, (size_t) len) != len)
                err_exit("rawipc_write_all");
        }
        _exit(CHILD_STATUS);    /* the write end is closed by the child's death */

    default:
        break;
    }

    if (rawipc_close(fds[1]) == -1)     /* or end of file would never come */
        err_exit("rawipc_close write end");

    /* The lines may come in any number of pieces: print the bytes as they come. */
    while ((n = rawipc_read(fds[0], buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
            err_exit("fwrite");
    if (n == -1)
        err_exit("rawipc_read");
    printf("parent: read returned 0, end of file: the child is gone\n");
    if (rawipc_close(fds[0]) == -1)
        err_exit("rawipc_close read end");

    if (rawipc_wait(&status) == -1)
        err_exit("rawipc_wait");
    if (WIFEXITED(status))
        printf("parent: the child exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("parent: the child was killed by signal %d\n", WTERMSIG(status));
    exit(EXIT_SUCCESS);
}
