/* pipe_rawipc.c

   The notes' pipe through rawipc: rawipc_pipe() makes the pipe, then
   rawipc_fork(), so that parent and child both have its two file
   descriptors. The child closes the read end and writes a message into the
   write end; the parent closes the write end and reads the message from the
   read end, until rawipc_read() returns 0 (end of file), then prints it and
   waits for the child.

   rawipc_pipe(), rawipc_fork(), rawipc_close() and rawipc_wait() behave
   exactly as pipe(), fork(), close() and wait() (c-examples' Makefile also
   builds pipe_course.c unchanged on them, through rawipc_swap.h). Where its
   twin pipe_course.c has to rely on luck, this one uses rawipc's own calls:
     - rawipc_write_all() writes the whole message, however long, retrying
       after short writes and signals, and a reader that is gone gives EPIPE
       rather than SIGPIPE (the course code relies on its message being at
       most PIPE_BUF bytes and on installing no signal handler);
     - rawipc_read_full() reads until the buffer is full or end of file,
       retrying after signals: the course's read loop, in one call.

   Usage: pipe_rawipc
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawipc.h"
#include "common.h"

static const char message[] = "hello from the child, through the pipe";

int main(void)
{
    int fds[2];                 /* fds[0]: read end; fds[1]: write end */
    char buf[128];
    size_t got;
    ssize_t n;

    if (rawipc_pipe(fds) == -1)
        err_exit("rawipc_pipe");

    switch (rawipc_fork()) {
    case -1:
        err_exit("rawipc_fork");

    case 0:                     /* child: the writer */
        if (rawipc_close(fds[0]) == -1)
            err_exit("rawipc_close read end");
        /* All of it, or an error: no short write, no EINTR, no SIGPIPE. */
        if (rawipc_write_all(fds[1], message, strlen(message)) != (ssize_t) strlen(message))
            err_exit("rawipc_write_all");
        if (rawipc_close(fds[1]) == -1)
            err_exit("rawipc_close write end");
        _exit(EXIT_SUCCESS);    /* not exit(): stdio buffers are the parent's */

    default:                    /* parent: the reader */
        break;
    }

    /* The parent's own write end must go, or read would never see end of file. */
    if (rawipc_close(fds[1]) == -1)
        err_exit("rawipc_close write end");

    /* Everything until end of file (or a full buffer), in one call. */
    if ((n = rawipc_read_full(fds[0], buf, sizeof buf)) == -1)
        err_exit("rawipc_read_full");
    got = (size_t) n;
    if (rawipc_close(fds[0]) == -1)
        err_exit("rawipc_close read end");

    printf("parent read %zu bytes: %.*s\n", got, (int) got, buf);

    if (rawipc_wait(NULL) == -1)
        err_exit("rawipc_wait");
    exit(EXIT_SUCCESS);
}
