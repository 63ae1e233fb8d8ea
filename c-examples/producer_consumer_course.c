/* producer_consumer_course.c

   A producer and a consumer, the course way: the messages travel through
   shared memory (a ring of fixed slots made with mmap(MAP_SHARED |
   MAP_ANONYMOUS) before fork), and two pipes do the synchronization the notes
   say the OS does not do for shared memory. Each byte in the "full" pipe says
   one slot holds a message; each byte in the "empty" pipe says one slot is
   free. The child produces; the parent consumes until read() on the "full"
   pipe returns 0: end of file, the producer is gone.

   Its twin producer_consumer_rawipc.c does the same with one rawipc channel,
   which needs no pipe on its fast path: it answers at cache speed while both
   sides are busy, sleeps when idle, and still tells of a dead producer.

   Usage: producer_consumer_course
*/
#define _DEFAULT_SOURCE         /* MAP_ANONYMOUS, under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SLOTS     4
#define SLOT_SIZE 64
#define MESSAGES  10

struct ring {                   /* the shared memory, field by field */
    size_t len[SLOTS];          /* length of the message in each slot */
    char   data[SLOTS][SLOT_SIZE];
};

int main(void)
{
    struct ring *ring;
    int full[2], empty[2];      /* [0]: read end; [1]: write end */
    char token = 0, msg[SLOT_SIZE];
    int i, count;
    ssize_t n;

    ring = mmap(NULL, sizeof *ring, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED)
        err_exit("mmap");
    if (pipe(full) == -1)
        err_exit("pipe full");
    if (pipe(empty) == -1)
        err_exit("pipe empty");
    for (i = 0; i < SLOTS; i++)             /* every slot starts free */
        if (write(empty[1], &token, 1) != 1)
            err_exit("write empty");

    switch (fork()) {
    case -1:
        err_exit("fork");

    case 0:                                 /* child: the producer */
        if (close(full[0]) == -1 || close(empty[1]) == -1)
            err_exit("close");
        for (i = 0; i < MESSAGES; i++) {
            int slot = i % SLOTS;
            if (read(empty[0], &token, 1) != 1)     /* wait for a free slot */
                err_exit("read empty");
            ring->len[slot] = (size_t) snprintf(ring->data[slot], SLOT_SIZE,
                                                "message %d: %d squared is %d", i, i, i * i);
            if (write(full[1], &token, 1) != 1)     /* one more slot full */
                err_exit("write full");
        }
        _exit(EXIT_SUCCESS);                /* closes the pipes: end of file */

    default:                                /* parent: the consumer */
        break;
    }

    if (close(full[1]) == -1 || close(empty[0]) == -1)
        err_exit("close");
    /* The producer may be gone when a slot is given back (after its last
       message): that write must fail with EPIPE, not kill us with SIGPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        err_exit("signal");
    for (count = 0; (n = read(full[0], &token, 1)) == 1; count++) {
        int slot = count % SLOTS;
        memcpy(msg, ring->data[slot], ring->len[slot]);
        printf("consumer got %2zu bytes: %.*s\n", ring->len[slot], (int) ring->len[slot], msg);
        if (write(empty[1], &token, 1) != 1 && errno != EPIPE)  /* the slot is free again */
            err_exit("write empty");
    }
    if (n == -1)
        err_exit("read full");
    printf("consumer: the producer is gone after %d messages\n", count);

    if (wait(NULL) == -1)
        err_exit("wait");
    if (munmap(ring, sizeof *ring) == -1)
        err_exit("munmap");
    exit(EXIT_SUCCESS);
}
