/* pipe_course.c

   The notes' pipe: make the pipe, then fork, so that parent and child both
   have its two file descriptors. The child closes the read end and writes a
   message into the write end; the parent closes the write end and reads the
   message from the read end, until read() returns 0 (end of file), then
   prints it and waits for the child.

   Written with the plain system calls. Its twin pipe_rawipc.c does the same
   through rawipc.h, with rawipc_write_all() and rawipc_read_full() where this
   program has to be careful; here, unlike there:
     - write() may write less than asked, and a signal handler can make
       read(), write() or wait() fail with EINTR; this program relies on its
       message being short (POSIX: a write of at most PIPE_BUF bytes to a pipe
       is all or nothing) and on installing no signal handler;
     - a write to a pipe whose read end is closed raises SIGPIPE, which kills
       the writer unless it blocks or ignores that signal.

   Usage: pipe_course
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const char message[] = "hello from the child, through the pipe";

int main(void)
{
    int fds[2];                 /* fds[0]: read end; fds[1]: write end */
    char buf[128];
    size_t got;
    ssize_t n;

    if (pipe(fds) == -1)
        err_exit("pipe");

    switch (fork()) {
    case -1:
        err_exit("fork");

    case 0:                     /* child: the writer */
        if (close(fds[0]) == -1)
            err_exit("close read end");
        if (write(fds[1], message, strlen(message)) != (ssize_t) strlen(message))
            err_exit("write");
        if (close(fds[1]) == -1)
            err_exit("close write end");
        _exit(EXIT_SUCCESS);    /* not exit(): stdio buffers are the parent's */

    default:                    /* parent: the reader */
        break;
    }

    /* The parent's own write end must go, or read() would never see end of file. */
    if (close(fds[1]) == -1)
        err_exit("close write end");

    got = 0;
    while ((n = read(fds[0], buf + got, sizeof buf - got)) > 0)
        got += (size_t) n;
    if (n == -1)
        err_exit("read");
    if (close(fds[0]) == -1)
        err_exit("close read end");

    printf("parent read %zu bytes: %.*s\n", got, (int) got, buf);

    if (wait(NULL) == -1)
        err_exit("wait");
    exit(EXIT_SUCCESS);
}
