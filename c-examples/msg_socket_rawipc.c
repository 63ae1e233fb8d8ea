/* msg_socket_rawipc.c

   The notes' message passing through rawipc: rawipc_msg_socketpair() makes
   two connected message sockets (AF_UNIX, SOCK_SEQPACKET), which keep
   message boundaries. The child sends three messages of different lengths
   and exits; only then does the parent start receiving, so all three wait
   in the socket at once. Yet each rawipc_msg_recv() returns exactly one
   whole message, never two run together and never part of one. When the
   child's socket is closed and every message has been taken,
   rawipc_msg_recv() returns 0.

   Differences from its twin msg_socket_course.c: a message longer than the
   buffer is never cut short: rawipc_msg_recv() fails with EMSGSIZE and
   leaves it queued (rawipc_msg_size() tells how large a buffer it needs);
   empty messages are refused (EINVAL), so a receive of 0 always means the
   peer is gone; a send to a peer that is gone gives EPIPE, never SIGPIPE;
   and a signal handler never makes a message call fail with EINTR.

   Usage: msg_socket_rawipc
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawipc.h"
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

    if (rawipc_msg_socketpair(sv) == -1)
        err_exit("rawipc_msg_socketpair");

    switch (rawipc_fork()) {
    case -1:
        err_exit("rawipc_fork");

    case 0:                     /* child: the sender */
        if (rawipc_close(sv[0]) == -1)
            err_exit("rawipc_close");
        for (size_t i = 0; i < N_MESSAGES; i++) {
            size_t len = strlen(messages[i]);
            if (rawipc_msg_send(sv[1], messages[i], len) != (ssize_t) len)
                err_exit("rawipc_msg_send");
        }
        _exit(EXIT_SUCCESS);    /* closes sv[1] */

    default:
        break;
    }

    if (rawipc_close(sv[1]) == -1)
        err_exit("rawipc_close");

    if (rawipc_wait(NULL) == -1)        /* so that every message is queued before we look */
        err_exit("rawipc_wait");
    printf("parent: the child has sent its messages and exited\n");

    for (int i = 1; (n = rawipc_msg_recv(sv[0], buf, sizeof buf)) > 0; i++)
        printf("message %d: %2zd bytes: \"%.*s\"\n", i, n, (int) n, buf);
    if (n == -1)
        err_exit("rawipc_msg_recv");
    printf("parent: recv returned 0: no more messages, the child's end is closed\n");

    if (rawipc_close(sv[0]) == -1)
        err_exit("rawipc_close");
    exit(EXIT_SUCCESS);
}
