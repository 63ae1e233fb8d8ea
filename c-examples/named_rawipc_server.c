/* named_rawipc_server.c

   The same server through rawipc: it listens under a NAME in the abstract
   socket namespace (rawipc_listen), accepts a client (rawipc_accept), makes
   a channel in shared memory and hands its sending end to the client over
   the connection (rawipc_chan_give_sender), then prints each message it
   receives, until rawipc_chan_recv() returns 0: the client is gone.

   Differences from named_course_server.c: nothing is made on the file
   system, so nothing is left behind. The name vanishes when the listening
   socket closes, also when the server is killed, and a restarted server
   listens under it at once. Only clients of the same user are admitted
   (rawipc_accept refuses others with EACCES), and a client refuses a
   server of another user. Messages keep their boundaries, and the channel
   carries them through shared memory, without a system call while both
   sides are busy.

   Usage: named_rawipc_server NAME
*/
#include <stdio.h>
#include <stdlib.h>

#include "rawipc.h"
#include "common.h"
#include "named.h"

int main(int argc, char *argv[])
{
    int listener, conn;
    rawipc_chan rx;
    char msg[MSG_MAX];
    ssize_t n;

    if (argc != 2) {
        fprintf(stderr, "Usage: %s NAME\n", argv[0]);
        exit(EXIT_FAILURE);
    }

    listener = rawipc_listen(argv[1]);
    if (listener == -1)
        err_exit("rawipc_listen");
    conn = rawipc_accept(listener);     /* waits for a client */
    if (conn == -1)
        err_exit("rawipc_accept");
    if (rawipc_close(listener) == -1)   /* one client: the name is freed */
        err_exit("rawipc_close");

    if (rawipc_chan_give_sender(&rx, conn, 64 * 1024) == -1)
        err_exit("rawipc_chan_give_sender");
    if (rawipc_close(conn) == -1)       /* the channel is all we need now */
        err_exit("rawipc_close");

    while ((n = rawipc_chan_recv(&rx, msg, sizeof msg)) > 0)
        printf("server: got \"%.*s\"\n", (int) n, msg);
    if (n == -1)
        err_exit("rawipc_chan_recv");
    printf("server: the client is gone\n");

    if (rawipc_chan_close(&rx) == -1)
        err_exit("rawipc_chan_close");
    exit(EXIT_SUCCESS);
}
