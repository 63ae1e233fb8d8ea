/* chan.c: the C contract of rawipc's channel (rawipc_chan_*), checked from C.

   Every check prints one line; the program exits 1 if any failed. It covers
   bad input (NULL, a handle never made or closed, sizes 0 and too large),
   misuse (the wrong side, committing without reserving, receiving while a
   message is borrowed), a peer that is gone or killed, zero-copy in both
   directions, the readiness descriptor (rawipc_chan_fd) with poll and
   edge-triggered epoll, and no file descriptor left behind after many
   channels.
*/
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "check.h"

static int next_fd(void)
{
    int fd = dup(0);
    close(fd);
    return fd;
}

static void bad_input(void)
{
    rawipc_chan chan, never;
    char buf[16];
    const void *msg;

    memset(&never, 0, sizeof never);
    FAILS(rawipc_chan_create(NULL, 4096), EINVAL, "create(NULL) -> EINVAL");
    FAILS(rawipc_chan_create(&chan, 0), EINVAL, "create(capacity 0) -> EINVAL");
    FAILS(rawipc_chan_create(&chan, SIZE_MAX), EINVAL, "create(SIZE_MAX) -> EINVAL");
    FAILS(rawipc_chan_sender(NULL), EINVAL, "sender(NULL) -> EINVAL");
    FAILS(rawipc_chan_sender(&never), EINVAL, "sender(never made) -> EINVAL");
    FAILS(rawipc_chan_receiver(&never), EINVAL, "receiver(never made) -> EINVAL");
    FAILS(rawipc_chan_send(&never, "x", 1), EINVAL, "send(never made) -> EINVAL");
    FAILS(rawipc_chan_recv(NULL, buf, sizeof buf), EINVAL, "recv(NULL) -> EINVAL");
    FAILS(rawipc_chan_close(&never), EINVAL, "close(never made) -> EINVAL");
    FAILS(rawipc_chan_set_spin(NULL, 0), EINVAL, "set_spin(NULL) -> EINVAL");
    FAILS(rawipc_chan_max_message(NULL), EINVAL, "max_message(NULL) -> EINVAL");

    CHECK(rawipc_chan_create(&chan, 4096) == 0, "create(4096)");
    CHECK(rawipc_chan_max_message(&chan) == 4096 / 2 - 80, "max_message is half the ring less 80");
    FAILS(rawipc_chan_send(&chan, "x", 1), EINVAL, "send before choosing a side -> EINVAL");
    FAILS(rawipc_chan_set_spin(&chan, 0), EINVAL, "set_spin before choosing a side -> EINVAL");
    CHECK(rawipc_chan_sender(&chan) == 0, "sender()");
    FAILS(rawipc_chan_sender(&chan), EINVAL, "sender() twice -> EINVAL");
    FAILS(rawipc_chan_receiver(&chan), EINVAL, "receiver() after sender() -> EINVAL");
    FAILS(rawipc_chan_recv(&chan, buf, sizeof buf), EINVAL, "recv on the sending end -> EINVAL");
    FAILS(rawipc_chan_recv_borrow(&chan, &msg), EINVAL, "recv_borrow on the sending end -> EINVAL");
    FAILS(rawipc_chan_send(&chan, "x", 0), EINVAL, "send(len 0) -> EINVAL");
    FAILS(rawipc_chan_send(&chan, NULL, 1), EFAULT, "send(NULL buffer) -> EFAULT");
    FAILS(rawipc_chan_send(&chan, buf, 4096), EMSGSIZE, "send(above max_message) -> EMSGSIZE");
    FAILS(rawipc_chan_send(&chan, buf, SIZE_MAX), EINVAL, "send(SIZE_MAX) -> EINVAL");
    FAILS(rawipc_chan_commit(&chan, 1), EINVAL, "commit without reserve -> EINVAL");
    FAILS(rawipc_chan_reserve(&chan, 0), EINVAL, "reserve(0) -> EINVAL");
    FAILS(rawipc_chan_reserve(&chan, (size_t) SSIZE_MAX + 1), EINVAL, "reserve(SSIZE_MAX + 1) -> EINVAL");
    FAILS(rawipc_chan_reserve(&chan, SIZE_MAX), EINVAL, "reserve(SIZE_MAX) -> EINVAL");
    {
        char *a = rawipc_chan_reserve(&chan, 8);
        char *b = rawipc_chan_reserve(&chan, 8);
        CHECK(a != NULL && a == b, "reserve twice -> the same place");
        CHECK(rawipc_chan_reserve(&chan, 4) == a, "reserve fewer bytes again -> the same place");
        FAILS(rawipc_chan_reserve(&chan, 9), EBUSY, "reserve more than is reserved -> EBUSY");
        FAILS(rawipc_chan_send(&chan, "x", 1), EBUSY, "send while space is reserved -> EBUSY");
        FAILS(rawipc_chan_commit(&chan, 9), EINVAL, "commit more than reserved -> EINVAL");
        FAILS(rawipc_chan_commit(&chan, 0), EINVAL, "commit(0) -> EINVAL");
    }
    CHECK(rawipc_chan_close(&chan) == 0, "close()");
    FAILS(rawipc_chan_close(&chan), EINVAL, "close() twice -> EINVAL");
    FAILS(rawipc_chan_send(&chan, "x", 1), EINVAL, "send after close -> EINVAL");
}

static void messages_and_zero_copy(void)
{
    rawipc_chan chan;
    char buf[2048], small[4];
    const void *msg;
    ssize_t n;
    int status, i, ok;
    pid_t pid;

    CHECK(rawipc_chan_create(&chan, 4096) == 0, "create for messages");
    pid = rawipc_fork();
    if (pid == 0) {
        char *p;
        if (rawipc_chan_sender(&chan) == -1)
            _exit(10);
        if (rawipc_chan_send(&chan, "hello", 5) != 5)
            _exit(11);
        memset(buf, 'z', 1000);
        if (rawipc_chan_send(&chan, buf, 1000) != 1000)
            _exit(12);
        p = rawipc_chan_reserve(&chan, 100);            /* zero-copy send */
        if (p == NULL)
            _exit(13);
        memcpy(p, "in place", 8);
        if (rawipc_chan_commit(&chan, 8) != 0)
            _exit(14);
        for (i = 0; i < 5000; i++)                      /* many laps of the ring */
            if (rawipc_chan_send(&chan, &i, sizeof i) != (ssize_t) sizeof i)
                _exit(15);
        _exit(0);                                       /* no close: exit closes */
    }
    CHECK(pid > 0, "fork");
    CHECK(rawipc_chan_receiver(&chan) == 0, "receiver()");
    n = rawipc_chan_recv(&chan, buf, sizeof buf);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "recv -> the first message, whole");
    FAILS(rawipc_chan_recv(&chan, small, sizeof small), EMSGSIZE, "recv into too small a buffer -> EMSGSIZE");
    FAILS(rawipc_chan_recv(&chan, NULL, 10), EFAULT, "recv(NULL buffer) -> EFAULT");
    FAILS(rawipc_chan_recv_borrow(&chan, NULL), EFAULT, "recv_borrow(NULL) -> EFAULT");
    n = rawipc_chan_recv_borrow(&chan, &msg);
    CHECK(n == 1000 && msg != NULL && ((const char *) msg)[0] == 'z' && ((const char *) msg)[999] == 'z',
          "the too-large message was kept: recv_borrow gets it whole");
    {
        const void *again;
        CHECK(rawipc_chan_recv_borrow(&chan, &again) == 1000 && again == msg,
              "recv_borrow again before release -> the same message");
    }
    FAILS(rawipc_chan_recv(&chan, buf, sizeof buf), EBUSY, "recv while a message is borrowed -> EBUSY");
    CHECK(rawipc_chan_release(&chan) == 0, "release()");
    FAILS(rawipc_chan_release(&chan), EINVAL, "release() twice -> EINVAL");
    n = rawipc_chan_recv(&chan, buf, sizeof buf);
    CHECK(n == 8 && memcmp(buf, "in place", 8) == 0, "the zero-copy message");
    ok = 1;
    for (i = 0; i < 5000; i++) {
        int got;
        if (rawipc_chan_recv(&chan, &got, sizeof got) != (ssize_t) sizeof got || got != i)
            ok = 0;
    }
    CHECK(ok, "5000 messages in order, across many laps of the ring");
    CHECK(rawipc_chan_recv(&chan, buf, sizeof buf) == 0, "then 0: the sender is gone");
    CHECK(rawipc_chan_recv_borrow(&chan, &msg) == 0 && msg == NULL, "recv_borrow: 0 and NULL too");
    CHECK(rawipc_wait(&status) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the sender exited 0");
    CHECK(rawipc_chan_close(&chan) == 0, "close()");
}

static void dead_peers(void)
{
    rawipc_chan chan;
    char buf[256];
    pid_t pid;
    int status;
    ssize_t n;
    struct sigaction old;

    /* A sender killed while the receiver waits: 0, not a hang. */
    CHECK(rawipc_chan_create(&chan, 4096) == 0, "create");
    pid = rawipc_fork();
    if (pid == 0) {
        rawipc_chan_sender(&chan);
        rawipc_chan_send(&chan, "before", 6);
        pause();
        _exit(0);
    }
    rawipc_chan_receiver(&chan);
    rawipc_chan_set_spin(&chan, 0);                     /* blocking-only */
    CHECK(rawipc_chan_recv(&chan, buf, sizeof buf) == 6, "the message sent before the kill");
    kill(pid, SIGKILL);
    CHECK(rawipc_chan_recv(&chan, buf, sizeof buf) == 0, "recv after the sender was killed -> 0");
    CHECK(rawipc_wait(&status) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "killed");
    rawipc_chan_close(&chan);

    /* A receiver killed while the sender waits on a full ring: EPIPE, no SIGPIPE. */
    sigaction(SIGPIPE, NULL, &old);
    CHECK(rawipc_chan_create(&chan, 1024) == 0, "create");
    pid = rawipc_fork();
    if (pid == 0) {
        rawipc_chan_receiver(&chan);
        pause();
        _exit(0);
    }
    rawipc_chan_sender(&chan);
    memset(buf, 1, sizeof buf);
    while (rawipc_chan_try_send(&chan, buf, 100) == 100)
        ;
    CHECK(errno == EAGAIN, "try_send on a full ring -> EAGAIN");
    kill(pid, SIGKILL);
    errno = 0;
    n = rawipc_chan_send(&chan, buf, 100);
    CHECK(n == -1 && errno == EPIPE, "send on a full ring whose receiver died -> EPIPE");
    FAILS(rawipc_chan_send(&chan, buf, 1), EPIPE, "and EPIPE stays");
    {
        struct sigaction now;
        sigaction(SIGPIPE, NULL, &now);
        CHECK(now.sa_handler == old.sa_handler, "SIGPIPE disposition unchanged");
    }
    rawipc_wait(NULL);
    rawipc_chan_close(&chan);
}

/* A release gives back what was lent, whatever a peer wrote over the
   borrowed message's header meanwhile (here: its stamp, rewritten, then
   zeroed): it succeeds, and the messages after it arrive. */
static void release_after_scribbling(void)
{
    static const uint32_t scribbles[] = {0xdeadbeefu, 0};
    unsigned k;

    for (k = 0; k < sizeof scribbles / sizeof scribbles[0]; k++) {
        rawipc_chan chan;
        const void *msg;
        char buf[16];
        int status;
        pid_t pid;

        CHECK(rawipc_chan_create(&chan, 4096) == 0, "create");
        pid = rawipc_fork();
        if (pid == 0) {
            rawipc_chan_sender(&chan);
            rawipc_chan_send(&chan, "first", 5);
            rawipc_chan_send(&chan, "second", 6);
            _exit(0);
        }
        rawipc_chan_receiver(&chan);
        CHECK(rawipc_chan_recv_borrow(&chan, &msg) == 5, "borrow the first message");
        /* The header (stamp, length) lies just before the payload. */
        ((volatile uint32_t *) msg)[-2] = scribbles[k];
        CHECK(rawipc_chan_release(&chan) == 0, k == 0 ? "release after its stamp was rewritten -> 0"
                                                      : "release after its stamp was zeroed -> 0");
        CHECK(rawipc_chan_recv(&chan, buf, sizeof buf) == 6 && memcmp(buf, "second", 6) == 0,
              "then the next message");
        CHECK(rawipc_chan_recv(&chan, buf, sizeof buf) == 0, "then 0: the sender is gone");
        CHECK(rawipc_wait(&status) == pid, "reaped");
        rawipc_chan_close(&chan);
    }
}

/* Whether fd is readable within ms milliseconds. */
static int readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n;

    while ((n = poll(&p, 1, ms)) == -1 && errno == EINTR)
        ;
    return n == 1 && (p.revents & POLLIN);
}

static void readiness(void)
{
    rawipc_chan chan, never;
    char buf[256];
    int fd, go[2], i, ok, status;
    pid_t pid;

    memset(&never, 0, sizeof never);
    FAILS(rawipc_chan_fd(NULL), EINVAL, "fd(NULL) -> EINVAL");
    FAILS(rawipc_chan_fd(&never), EINVAL, "fd(never made) -> EINVAL");
    CHECK(rawipc_chan_create(&chan, 4096) == 0, "create");
    FAILS(rawipc_chan_fd(&chan), EINVAL, "fd before choosing a side -> EINVAL");
    CHECK(rawipc_chan_receiver(&chan) == 0, "receiver");
    fd = rawipc_chan_fd(&chan);
    CHECK(fd >= 0 && rawipc_chan_fd(&chan) == fd, "fd of a receiving end, the same each time");
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "the fd is close-on-exec");
    CHECK(rawipc_chan_close(&chan) == 0, "close");
    errno = 0;
    CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "close closes the fd");
    FAILS(rawipc_chan_fd(&chan), EINVAL, "fd after close -> EINVAL");

    /* A receiver waiting in poll: a message, then the sender killed. */
    CHECK(rawipc_chan_create(&chan, 4096) == 0 && pipe(go) == 0, "create");
    pid = rawipc_fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        rawipc_chan_sender(&chan);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        for (i = 0; i < 1000; i++)
            rawipc_chan_send(&chan, &i, sizeof i);
        pause();
        _exit(0);
    }
    close(go[0]);
    rawipc_chan_receiver(&chan);
    fd = rawipc_chan_fd(&chan);
    FAILS(rawipc_chan_try_recv(&chan, buf, sizeof buf), EAGAIN, "try_recv on nothing -> EAGAIN (arms)");
    CHECK(!readable(fd, 20), "not readable while nothing comes");
    CHECK(write(go[1], "g", 1) == 1, "let the sender go");
    {
        /* Edge-triggered: receive until EAGAIN, then wait again. */
        int ep = epoll_create1(EPOLL_CLOEXEC), got = 0, waits = 0;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
        CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll, edge-triggered");
        ok = 1;
        while (got < 1000 && ok) {
            ssize_t n = rawipc_chan_try_recv(&chan, buf, sizeof buf);
            if (n == (ssize_t) sizeof i) {
                memcpy(&i, buf, sizeof i);
                ok = i == got++;
            } else if (n == -1 && errno == EAGAIN) {
                waits++;
                ok = epoll_wait(ep, &out, 1, 60000) == 1;
            } else {
                ok = 0;
            }
        }
        CHECK(ok && got == 1000, "1000 messages in order through edge-triggered epoll");
        FAILS(rawipc_chan_try_recv(&chan, buf, sizeof buf), EAGAIN, "then EAGAIN");
        kill(pid, SIGKILL);
        CHECK(epoll_wait(ep, &out, 1, 60000) == 1 && (out.events & EPOLLIN), "the killed sender: readable");
        CHECK(rawipc_chan_try_recv(&chan, buf, sizeof buf) == 0, "try_recv -> 0: the sender is gone");
        CHECK(readable(fd, 0), "and the fd stays readable");
        close(ep);
    }
    CHECK(rawipc_wait(&status) == pid && WIFSIGNALED(status), "reaped");
    close(go[1]);
    rawipc_chan_close(&chan);

    /* A sender waiting in poll for room, then the receiver gone. */
    CHECK(rawipc_chan_create(&chan, 1024) == 0 && pipe(go) == 0, "create");
    pid = rawipc_fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        rawipc_chan_receiver(&chan);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        while (rawipc_chan_recv(&chan, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    close(go[0]);
    rawipc_chan_sender(&chan);
    fd = rawipc_chan_fd(&chan);
    memset(buf, 1, sizeof buf);
    while (rawipc_chan_try_send(&chan, buf, 100) == 100)
        ;
    CHECK(errno == EAGAIN, "try_send on a full ring -> EAGAIN (arms)");
    CHECK(!readable(fd, 20), "not readable while the ring is full");
    CHECK(write(go[1], "g", 1) == 1, "let the receiver go");
    ok = 1;
    for (i = 0; i < 2000 && ok; ) {
        if (rawipc_chan_try_send(&chan, buf, 100) == 100)
            i++;
        else
            ok = errno == EAGAIN && readable(fd, 60000);
    }
    CHECK(ok, "2000 messages sent, waiting for room in poll");
    close(go[1]);
    rawipc_chan_close(&chan);
    CHECK(rawipc_wait(&status) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the receiver got them all and saw the sender gone");

    CHECK(rawipc_chan_create(&chan, 1024) == 0, "create");
    pid = rawipc_fork();
    if (pid == 0) {
        rawipc_chan_receiver(&chan);
        _exit(0);
    }
    rawipc_chan_sender(&chan);
    fd = rawipc_chan_fd(&chan);
    CHECK(rawipc_wait(&status) == pid, "the receiver exited");
    CHECK(readable(fd, 60000), "a sending end whose receiver is gone is readable");
    while (rawipc_chan_try_send(&chan, buf, 100) == 100)
        ;
    CHECK(errno == EPIPE, "and the send that finds no room says EPIPE");
    rawipc_chan_close(&chan);
}

static void no_leaks(void)
{
    int before = next_fd(), i, ok = 1;
    rawipc_chan chan;

    for (i = 0; i < 2000; i++) {
        if (rawipc_chan_create(&chan, 4096) == -1 || rawipc_chan_receiver(&chan) == -1 ||
            rawipc_chan_fd(&chan) < 0 || rawipc_chan_try_recv(&chan, NULL, 0) != 0 ||
            rawipc_chan_close(&chan) == -1)
            ok = 0;
    }
    CHECK(ok, "2000 channels made, given a side, their fd asked for, and closed");
    CHECK(next_fd() == before, "no file descriptor left behind");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    bad_input();
    messages_and_zero_copy();
    dead_peers();
    release_after_scribbling();
    readiness();
    no_leaks();
    printf("%s: %d failed\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
