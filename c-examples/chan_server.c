/* chan_server.c

   One process serving many clients at once. Each client has its own pair
   of channels: requests come in on one, replies go out on the other. The
   server waits for all of them in a single epoll_wait(), through each
   request channel's readiness descriptor (rawipc_chan_fd), together with a
   pipe: the "self-pipe" on which its signal handler writes SIGCHLD and
   SIGTERM, so that reaping children and stopping are events like the
   others.

   The rule that makes a readiness descriptor work with epoll, level- or
   edge-triggered: when epoll says a channel is readable, call
   rawipc_chan_try_recv() until it fails with EAGAIN. That EAGAIN arms the
   descriptor again; a busy channel makes no system call.

   A client that dies (killed with SIGKILL, say) is noticed the same way:
   its request channel becomes readable, and rawipc_chan_try_recv()
   returns 0 once every request it sent has been read.

   Clients are forked (-f), or started separately (-n): chan_client
   connects to the server's name (rawipc_listen, rawipc_connect), and the
   server hands it its two channels over the connection
   (rawipc_chan_give_sender, rawipc_chan_give_receiver). Nothing is made on
   the file system.

   Usage: chan_server [-f N] [-m M] [-k K] [-n NAME [-c C]]
     -f N     fork N clients, each sending M requests (-m, default 100)
     -k K     kill K of the forked clients with SIGKILL, each at a random moment
     -n NAME  also serve clients started separately: chan_client NAME M
     -c C     with -n: stop once C such clients have come and gone
              (without -c: at SIGTERM or SIGINT)

   It prints a line for each client that is gone, then a summary, and
   exits 0 if each forked client that was not killed got all its replies
   and exited 0, and each killed one was noticed.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "common.h"
#include "chan_server.h"

#define MAX_CLIENTS 1024
#define EV_PIPE     UINT64_MAX          /* epoll data of the self-pipe */
#define EV_LISTENER (UINT64_MAX - 1)    /* and of the listening socket */

struct client {
    rawipc_chan req;        /* the receiving end of its requests */
    rawipc_chan rep;        /* the sending end of its replies */
    pid_t pid;              /* a forked client's; 0 for one started separately */
    uint32_t answered;
    long kill_at;           /* killed after this many replies; -1: never */
    int open, killed, status, reaped;
};

static struct client clients[MAX_CLIENTS];
static int nclients, ep, sig_pipe[2];

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char) sig;

    if (write(sig_pipe[1], &c, 1) == -1) {
        /* The pipe is full: the events it holds already say enough. */
    }
    errno = saved;
}

static void watch(int fd, uint64_t data)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
        err_exit("epoll_ctl");
}

/* The client is gone: say so, stop watching it, close its channels. */
static void drop_client(struct client *c, const char *why)
{
    printf("client %d%s: %s after %u replies\n", (int) (c - clients),
           c->pid ? "" : " (started separately)", why, c->answered);
    if (epoll_ctl(ep, EPOLL_CTL_DEL, rawipc_chan_fd(&c->req), NULL) == -1)
        err_exit("epoll_ctl");
    if (rawipc_chan_close(&c->req) == -1 || rawipc_chan_close(&c->rep) == -1)
        err_exit("rawipc_chan_close");
    c->open = 0;
}

/* Answers every request waiting on c's channel, until EAGAIN (which arms
   the descriptor for the next epoll_wait) or the client is gone. */
static void serve(struct client *c)
{
    struct request r;
    struct reply a;
    ssize_t n;

    for (;;) {
        n = rawipc_chan_try_recv(&c->req, &r, sizeof r);
        if (n == -1 && errno == EAGAIN)
            return;                     /* nothing more: wait again */
        if (n == -1) {                  /* too large (EMSGSIZE), a corrupt ring (EPROTO) */
            drop_client(c, strerror(errno));
            return;
        }
        if (n == 0) {                   /* every request read, the client gone */
            drop_client(c, c->killed ? "killed, noticed" : "gone");
            return;
        }
        if ((size_t) n < offsetof(struct request, bytes) ||
            r.len != (size_t) n - offsetof(struct request, bytes)) {
            drop_client(c, "sent a malformed request, dropped");
            return;
        }
        a.client = r.client;
        a.seq = r.seq;
        a.sum = sum_of(r.bytes, r.len);
        /* Never wait on one client: it has room for a reply, unless it
           sends requests without reading their replies. */
        if (rawipc_chan_try_send(&c->rep, &a, sizeof a) == -1) {
            if (errno != EPIPE && errno != EAGAIN)
                err_exit("rawipc_chan_try_send");
            if (errno == EAGAIN) {
                drop_client(c, "does not read its replies, dropped");
                return;
            }
            continue;                   /* gone: noticed on the request channel */
        }
        c->answered++;
        if (c->kill_at == (long) c->answered && kill(c->pid, SIGKILL) == 0)
            c->killed = 1;
    }
}

/* Forks client `id`, which keeps its own two ends and closes everything of
   the server's it inherited (so that another client's death, or the
   server's, is seen as it happens). */
static void fork_client(int id, uint32_t count, int listener)
{
    struct client *c = &clients[id];
    int i;

    if (rawipc_chan_create(&c->req, RING_SIZE) == -1 || rawipc_chan_create(&c->rep, RING_SIZE) == -1)
        err_exit("rawipc_chan_create");
    c->pid = fork();
    if (c->pid == -1)
        err_exit("fork");
    if (c->pid == 0) {
        for (i = 0; i < id; i++)
            if (clients[i].open) {
                rawipc_chan_close(&clients[i].req);
                rawipc_chan_close(&clients[i].rep);
            }
        close(ep);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        if (listener != -1)
            close(listener);
        if (rawipc_chan_sender(&c->req) == -1 || rawipc_chan_receiver(&c->rep) == -1)
            _exit(2);
        _exit(run_client(&c->req, &c->rep, (uint32_t) id, count));
    }
    if (rawipc_chan_receiver(&c->req) == -1 || rawipc_chan_sender(&c->rep) == -1)
        err_exit("rawipc_chan_receiver");
    c->open = 1;
    watch(rawipc_chan_fd(&c->req), (uint64_t) id);
}

/* A client started separately has connected: hand it its channels. */
static void accept_client(int listener)
{
    struct client *c = &clients[nclients];
    uint32_t id = (uint32_t) nclients;
    int conn = rawipc_accept(listener);

    if (conn == -1) {
        perror("rawipc_accept");        /* another user's client, say */
        return;
    }
    if (nclients == MAX_CLIENTS) {
        fprintf(stderr, "chan_server: too many clients\n");
        rawipc_close(conn);
        return;
    }
    if (rawipc_chan_give_sender(&c->req, conn, RING_SIZE) == -1) {
        perror("rawipc_chan_give_sender");
        rawipc_close(conn);
        return;
    }
    if (rawipc_chan_give_receiver(&c->rep, conn, RING_SIZE) == -1 ||
        rawipc_msg_send(conn, &id, sizeof id) == -1) {
        perror("rawipc_chan_give_receiver");
        rawipc_chan_close(&c->req);
        rawipc_close(conn);
        return;
    }
    {
        pid_t pid;
        if (rawipc_peer_cred(conn, &pid, NULL, NULL) == 0)
            printf("client %u (started separately, pid %d) connected\n", id, (int) pid);
    }
    rawipc_close(conn);                 /* the channels are all it needs now */
    c->pid = 0;
    c->kill_at = -1;
    c->open = 1;
    watch(rawipc_chan_fd(&c->req), (uint64_t) nclients);
    nclients++;
}

/* Reaps the children that have ended, and notes how. */
static void reap(void)
{
    pid_t pid;
    int status, i;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (i = 0; i < nclients; i++)
            if (clients[i].pid == pid) {
                clients[i].status = status;
                clients[i].reaped = 1;
            }
}

int main(int argc, char *argv[])
{
    int forked = 0, kills = 0, expected = -1, listener = -1, stop = 0, i, opt;
    uint32_t count = 100;
    const char *name = NULL;
    struct sigaction sa;

    while ((opt = getopt(argc, argv, "f:m:k:n:c:")) != -1) {
        switch (opt) {
        case 'f': forked = atoi(optarg); break;
        case 'm': count = (uint32_t) atoi(optarg); break;
        case 'k': kills = atoi(optarg); break;
        case 'n': name = optarg; break;
        case 'c': expected = atoi(optarg); break;
        default:
            fprintf(stderr, "Usage: %s [-f N] [-m M] [-k K] [-n NAME [-c C]]\n", argv[0]);
            exit(EXIT_FAILURE);
        }
    }
    if (forked < 0 || forked > MAX_CLIENTS / 2 || kills > forked || count == 0) {
        fprintf(stderr, "%s: -f at most %d, -k at most -f, -m at least 1\n", argv[0], MAX_CLIENTS / 2);
        exit(EXIT_FAILURE);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The self-pipe: the signal handler writes, the epoll loop reads. */
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
        err_exit("pipe2");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGCHLD, &sa, NULL) == -1 || sigaction(SIGTERM, &sa, NULL) == -1 ||
        sigaction(SIGINT, &sa, NULL) == -1)
        err_exit("sigaction");

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep == -1)
        err_exit("epoll_create1");
    watch(sig_pipe[0], EV_PIPE);
    if (name != NULL) {
        listener = rawipc_listen(name);
        if (listener == -1)
            err_exit("rawipc_listen");
        watch(listener, EV_LISTENER);
    }

    srand((unsigned) getpid());
    for (i = 0; i < forked; i++)
        clients[i].kill_at = -1;
    for (i = 0; i < kills; ) {          /* K distinct victims, each at its moment */
        int v = rand() % forked;
        if (clients[v].kill_at == -1) {
            clients[v].kill_at = rand() % (long) count;     /* 0: at once */
            i++;
        }
    }
    for (i = 0; i < forked; i++)
        fork_client(i, count, listener);
    nclients = forked;
    for (i = 0; i < forked; i++)        /* those whose moment is now */
        if (clients[i].kill_at == 0 && kill(clients[i].pid, SIGKILL) == 0)
            clients[i].killed = 1;

    while (!stop) {
        struct epoll_event events[64];
        int n, done = 1, gone_named = 0;

        n = epoll_wait(ep, events, 64, -1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            err_exit("epoll_wait");
        for (i = 0; i < n; i++) {
            uint64_t d = events[i].data.u64;
            if (d == EV_PIPE) {
                unsigned char sigs[64];
                ssize_t got, k;
                while ((got = read(sig_pipe[0], sigs, sizeof sigs)) > 0)
                    for (k = 0; k < got; k++)
                        if (sigs[k] == SIGTERM || sigs[k] == SIGINT)
                            stop = 1;
                reap();
            } else if (d == EV_LISTENER) {
                accept_client(listener);
            } else if (clients[d].open) {
                serve(&clients[d]);
            }
        }
        for (i = 0; i < nclients; i++) {
            if (i < forked && (clients[i].open || !clients[i].reaped))
                done = 0;
            if (i >= forked && !clients[i].open)
                gone_named++;
        }
        if (done && (name == NULL || (expected >= 0 && gone_named >= expected)))
            stop = 1;
    }

    /* The account: every living client answered in full, every killed one noticed. */
    {
        int ok = 1, killed = 0, finished = 0;
        unsigned long answered = 0;
        for (i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            answered += c->answered;
            if (i >= forked)
                continue;
            if (c->killed) {
                killed++;
                if (c->open || !WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGKILL)
                    ok = 0;
            } else if (!c->open && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 &&
                       c->answered == count) {
                finished++;
            } else {
                printf("client %d: %u replies, status %#x: not served in full\n", i, c->answered,
                       (unsigned) c->status);
                ok = 0;
            }
        }
        printf("served %d clients (%d forked, %d started separately) in one epoll_wait: "
               "%lu replies; %d forked finished, %d killed and noticed: %s\n",
               nclients, forked, nclients - forked, answered, finished, killed, ok ? "ok" : "FAILED");
        exit(ok ? EXIT_SUCCESS : EXIT_FAILURE);
    }
}
