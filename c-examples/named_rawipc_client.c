/* named_rawipc_client.c

   The client of named_rawipc_server.c: connects to the server by its NAME
   (rawipc_connect, which refuses a server of another user), takes the
   channel's sending end the server hands over (rawipc_chan_take_sender)
   and sends one message per line. Closing its end tells the server it is
   gone, as would its death.

   Usage: named_rawipc_client NAME
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rawipc.h"
#include "common.h"
#include "named.h"

int main(int argc, char *argv[])
{
    int conn;
    rawipc_chan tx;

    if (argc != 2) {
        fprintf(stderr, "Usage: %s NAME\n", argv[0]);
        exit(EXIT_FAILURE);
    }

    conn = rawipc_connect(argv[1]);
    if (conn == -1)
        err_exit("rawipc_connect");
    if (rawipc_chan_take_sender(&tx, conn) == -1)
        err_exit("rawipc_chan_take_sender");
    if (rawipc_close(conn) == -1)
        err_exit("rawipc_close");

    for (size_t i = 0; i < N_MESSAGES; i++) {
        if (rawipc_chan_send(&tx, messages[i], strlen(messages[i])) == -1)
            err_exit("rawipc_chan_send");
        printf("client: sent \"%s\"\n", messages[i]);
    }
    if (rawipc_chan_close(&tx) == -1)
        err_exit("rawipc_chan_close");
    exit(EXIT_SUCCESS);
}
