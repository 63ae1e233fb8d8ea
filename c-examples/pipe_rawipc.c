/* pipe_rawipc.c

   The notes' pipe through rawipc: rawipc_pipe() makes the pipe, then
   rawipc_fork(), so that parent and child both have its two file
   descriptors. The child closes the read end and writes a message into the
   write end; the parent closes the write end and reads the message from the
   read end, until rawipc_read() returns 0 (end of file), then prints it and
   waits for the child.

   Differences from its twin pipe_course.c: rawipc_write() writes the whole
   buffer, however long, retrying after short writes; rawipc_read(),
   rawipc_write() and rawipc_wait() retry by themselves when a signal
   handler interrupts them, so EINTR never reaches the program; a write to a
   pipe with no reader left fails with EPIPE and never raises SIGPIPE; and
   both pipe ends are closed on exec.

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
        if (rawipc_write(fds[1], message, strlen(message)) != (ssize_t) strlen(message))
            err_exit("rawipc_write");
        if (rawipc_close(fds[1]) == -1)
            err_exit("rawipc_close write end");
        _exit(EXIT_SUCCESS);    /* not exit(): stdio buffers are the parent's */

    default:                    /* parent: the reader */
        break;
    }

    /* The parent's own write end must go, or read would never see end of file. */
    if (rawipc_close(fds[1]) == -1)
        err_exit("rawipc_close write end");

    got = 0;
    while ((n = rawipc_read(fds[0], buf + got, sizeof buf - got)) > 0)
        got += (size_t) n;
    if (n == -1)
        err_exit("rawipc_read");
    if (rawipc_close(fds[0]) == -1)
        err_exit("rawipc_close read end");

    printf("parent read %zu bytes: %.*s\n", got, (int) got, buf);

    if (rawipc_wait(NULL) == -1)
        err_exit("rawipc_wait");
    exit(EXIT_SUCCESS);
}
