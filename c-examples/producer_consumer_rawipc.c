/* producer_consumer_rawipc.c

   A producer and a consumer through one rawipc channel: a ring of messages in
   shared memory, made with rawipc_chan_create() before fork. The child keeps
   the sending end (rawipc_chan_sender), the parent the receiving end
   (rawipc_chan_receiver), as each side of a pipe closes the end it does not
   use. The parent receives until rawipc_chan_recv() returns 0: the producer
   is gone, as a pipe's end of file says.

   Differences from its twin producer_consumer_course.c: no pipe carries any
   byte; while both sides are busy a message crosses at cache speed, and a
   side that must wait spins briefly, then sleeps in the kernel. Messages
   keep their boundaries and lengths, so there are no slots to manage; the
   channel bounds itself (a full ring makes the sender wait), and a producer
   that dies, even killed, is reported after its last message.

   Usage: producer_consumer_rawipc
*/
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rawipc.h"
#include "common.h"

#define MESSAGES 10

int main(void)
{
    rawipc_chan chan;           /* a handle; the channel is in shared memory */
    char msg[64];
    int i, count;
    ssize_t n;

    if (rawipc_chan_create(&chan, 4096) == -1)
        err_exit("rawipc_chan_create");

    switch (rawipc_fork()) {
    case -1:
        err_exit("rawipc_fork");

    case 0:                                 /* child: the producer */
        if (rawipc_chan_sender(&chan) == -1)
            err_exit("rawipc_chan_sender");
        for (i = 0; i < MESSAGES; i++) {
            int len = snprintf(msg, sizeof msg, "message %d: %d squared is %d", i, i, i * i);
            if (rawipc_chan_send(&chan, msg, (size_t) len) != len)
                err_exit("rawipc_chan_send");
        }
        if (rawipc_chan_close(&chan) == -1)
            err_exit("rawipc_chan_close");
        _exit(EXIT_SUCCESS);

    default:                                /* parent: the consumer */
        break;
    }

    if (rawipc_chan_receiver(&chan) == -1)
        err_exit("rawipc_chan_receiver");
    for (count = 0; (n = rawipc_chan_recv(&chan, msg, sizeof msg)) > 0; count++)
        printf("consumer got %2zd bytes: %.*s\n", n, (int) n, msg);
    if (n == -1)
        err_exit("rawipc_chan_recv");
    printf("consumer: the producer is gone after %d messages\n", count);

    if (rawipc_wait(NULL) == -1)
        err_exit("rawipc_wait");
    if (rawipc_chan_close(&chan) == -1)
        err_exit("rawipc_chan_close");
    exit(EXIT_SUCCESS);
}
