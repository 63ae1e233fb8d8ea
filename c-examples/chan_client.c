/* chan_client.c

   A client of chan_server.c started on its own, not forked by the server:
   it connects to the server's NAME (rawipc_connect), takes the two channel
   ends the server hands it over the connection (rawipc_chan_take_sender
   for its requests, rawipc_chan_take_receiver for the replies) and its
   client number, closes the connection, then sends COUNT requests, each
   answered before the next.

   Usage: chan_client NAME COUNT
   Exits 0 if every reply answered its request, 1 for a wrong reply, 3 if
   the server is gone.
*/
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "rawipc.h"
#include "common.h"
#include "chan_server.h"

int main(int argc, char *argv[])
{
    rawipc_chan req, rep;
    uint32_t id;
    int conn, status;

    if (argc != 3) {
        fprintf(stderr, "Usage: %s NAME COUNT\n", argv[0]);
        exit(EXIT_FAILURE);
    }
    conn = rawipc_connect(argv[1]);
    if (conn == -1)
        err_exit("rawipc_connect");
    if (rawipc_chan_take_sender(&req, conn) == -1)
        err_exit("rawipc_chan_take_sender");
    if (rawipc_chan_take_receiver(&rep, conn) == -1)
        err_exit("rawipc_chan_take_receiver");
    if (rawipc_msg_recv(conn, &id, sizeof id) != (ssize_t) sizeof id)
        err_exit("rawipc_msg_recv");
    if (rawipc_close(conn) == -1)
        err_exit("rawipc_close");

    status = run_client(&req, &rep, id, (uint32_t) atoi(argv[2]));
    printf("client %u: %s\n", id, status == 0 ? "every reply right" : "FAILED");
    if (rawipc_chan_close(&req) == -1 || rawipc_chan_close(&rep) == -1)
        err_exit("rawipc_chan_close");
    exit(status);
}
