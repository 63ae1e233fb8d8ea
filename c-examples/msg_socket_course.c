/* msg_socket_course.c

   The notes' message passing, over a socket: socketpair() makes two
   connected sockets of type SOCK_SEQPACKET, which keep message boundaries.
   The child sends three messages of different lengths and exits; only then
   does the parent start receiving, so all three wait in the socket at once.
   Yet each recv() returns exactly one whole message, never two run
   together and never part of one (from a pipe, or a SOCK_STREAM socket,
   one read could return all three, glued). When the child's socket is closed
   and every message has been taken, recv() returns 0.

   Written with the plain system calls. Its twin msg_socket_rawipc.c does
   the same through rawipc.h; here, unlike there:
     - a message longer than recv()'s buffer is silently cut short (the
       rest is thrown away); rawipc_msg_recv() fails with EMSGSIZE instead
       and leaves the message queued, and rawipc_msg_size() tells its size;
     - an empty message is allowed, and its recv() returns 0 just as when
       the peer is gone; rawipc_msg_send() refuses it (EINVAL);
     - send() to a peer that is gone raises SIGPIPE (unless the flag
       MSG_NOSIGNAL is passed); rawipc gives EPIPE;
     - a signal handler can make send(), recv() or wait() fail with EINTR.

   Usage: msg_socket_course
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const char *const messages[] = {
    "hi",
    "this is the second message",
    "and a third one, longer",
};
#define N_MESSAGES (sizeof messages / sizeof messages[0])

int main(void)
{
    int sv[2];                  /* sv[0]: the parent's socket; sv[1]: the child's */
    char buf[64];
    ssize_t n;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1)
        err_exit("socketpair");

    switch (fork()) {
    case -1:
        err_exit("fork");

    case 0:                     /* child: the sender */
        if (close(sv[0]) == -1)
            err_exit("close");
        for (size_t i = 0; i < N_MESSAGES; i++) {
            size_t len = strlen(messages[i]);
            if (send(sv[1], messages[i], len, 0) != (ssize_t) len)
                err_exit("send");
        }
        _exit(EXIT_SUCCESS);    /* closes sv[1] */

    default:
        break;
    }

    if (close(sv[1]) == -1)
        err_exit("close");

    if (wait(NULL) == -1)       /* so that every message is queued before we look */
        err_exit("wait");
    printf("parent: the child has sent its messages and exited\n");

    for (int i = 1; (n = recv(sv[0], buf, sizeof buf, 0)) > 0; i++)
        printf("message %d: %2zd bytes: \"%.*s\"\n", i, n, (int) n, buf);
    if (n == -1)
        err_exit("recv");
    printf("parent: recv returned 0: no more messages, the child's end is closed\n");

    if (close(sv[0]) == -1)
        err_exit("close");
    exit(EXIT_SUCCESS);
}
