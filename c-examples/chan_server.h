/* chan_server.h

   What chan_server.c and chan_client.c agree on: a request carries the
   client's number, a sequence number and some bytes; its reply carries the
   same two numbers and the sum of the bytes, so that the client can check
   that every reply answers its own request.
*/
#ifndef CHAN_SERVER_H
#define CHAN_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "rawipc.h"

#define PAYLOAD_MAX 200
#define RING_SIZE   4096    /* each channel's ring: one request or reply in flight */

struct request {
    uint32_t client;
    uint32_t seq;
    uint32_t len;
    unsigned char bytes[PAYLOAD_MAX];
};

struct reply {
    uint32_t client;
    uint32_t seq;
    uint32_t sum;
};

/* The bytes of request `seq` of client `client`, and how many. */
static inline uint32_t fill_request(struct request *r, uint32_t client, uint32_t seq)
{
    uint32_t i;

    r->client = client;
    r->seq = seq;
    r->len = (client * 31 + seq * 7) % PAYLOAD_MAX + 1;
    for (i = 0; i < r->len; i++)
        r->bytes[i] = (unsigned char) (client + seq * i);
    return (uint32_t) offsetof(struct request, bytes) + r->len;
}

static inline uint32_t sum_of(const unsigned char *bytes, uint32_t len)
{
    uint32_t sum = 0, i;

    for (i = 0; i < len; i++)
        sum = sum * 33 + bytes[i];
    return sum;
}

/* A client's whole life: `count` requests over `req`, each answered over
   `rep` before the next (with a pause now and then, so that the server
   often finds nothing and waits). Returns 0 if every reply was the right
   one, 1 for a wrong reply, 2 if a call failed, 3 if the server is gone. */
static inline int run_client(rawipc_chan *req, rawipc_chan *rep, uint32_t id, uint32_t count)
{
    struct request r;
    struct reply a;
    uint32_t seq, len;
    ssize_t n;

    srand(id * 2654435761u);
    for (seq = 0; seq < count; seq++) {
        len = fill_request(&r, id, seq);
        if (rawipc_chan_send(req, &r, len) == -1)
            return 2;
        n = rawipc_chan_recv(rep, &a, sizeof a);
        if (n == 0)
            return 3;
        if (n != (ssize_t) sizeof a)
            return 2;
        if (a.client != id || a.seq != seq || a.sum != sum_of(r.bytes, r.len))
            return 1;
        if (rand() % 4 == 0)
            usleep((useconds_t) (rand() % 500));
    }
    return 0;
}

#endif
