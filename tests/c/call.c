/* call.c: the C contract of rawipc's request-reply (rawipc_call_*), checked
   from C.

   Every check prints one line; the program exits 1 if any failed. It covers
   bad input (NULL, a handle never made or closed, sizes 0 and too large,
   timeouts below -1), misuse (the wrong side, answering out of turn),
   calls across fork at the boundaries of one cache line and of a larger
   slot, a reply too long for its buffer, timeouts, a server or client that
   is killed, each side's readiness descriptor (rawipc_call_fd) with poll
   and edge-triggered epoll, and no file descriptor left behind after many
   slots.
*/
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    rawipc_call call, never;
    char buf[64];

    memset(&never, 0, sizeof never);
    FAILS(rawipc_call_create(NULL, 48), EINVAL, "create(NULL) -> EINVAL");
    FAILS(rawipc_call_create(&call, 0), EINVAL, "create(max 0) -> EINVAL");
    FAILS(rawipc_call_create(&call, RAWIPC_CALL_MAX_MESSAGE + 1), EINVAL,
          "create(max above RAWIPC_CALL_MAX_MESSAGE) -> EINVAL");
    FAILS(rawipc_call_create(&call, SIZE_MAX), EINVAL, "create(SIZE_MAX) -> EINVAL");
    FAILS(rawipc_call_client(NULL), EINVAL, "client(NULL) -> EINVAL");
    FAILS(rawipc_call_server(&never), EINVAL, "server(never made) -> EINVAL");
    FAILS(rawipc_call_request(&never, "x", 1, buf, sizeof buf, -1), EINVAL,
          "request(never made) -> EINVAL");
    FAILS(rawipc_call_recv(NULL, buf, sizeof buf, 0), EINVAL, "recv(NULL) -> EINVAL");
    FAILS(rawipc_call_max_message(NULL), EINVAL, "max_message(NULL) -> EINVAL");
    FAILS(rawipc_call_close(&never), EINVAL, "close(never made) -> EINVAL");

    CHECK(rawipc_call_create(&call, RAWIPC_CALL_LINE_MESSAGE) == 0, "create(48)");
    CHECK(rawipc_call_max_message(&call) == RAWIPC_CALL_LINE_MESSAGE, "max_message = 48");
    FAILS(rawipc_call_set_spin(&call, 0), EINVAL, "set_spin before a side -> EINVAL");
    FAILS(rawipc_call_request(&call, "x", 1, buf, sizeof buf, -1), EINVAL,
          "request before a side -> EINVAL");
    CHECK(rawipc_call_client(&call) == 0, "client()");
    FAILS(rawipc_call_client(&call), EINVAL, "client() twice -> EINVAL");
    FAILS(rawipc_call_server(&call), EINVAL, "server() after client() -> EINVAL");
    FAILS(rawipc_call_recv(&call, buf, sizeof buf, 0), EINVAL, "recv on a client -> EINVAL");
    FAILS(rawipc_call_reply(&call, "x", 1), EINVAL, "reply on a client -> EINVAL");
    FAILS(rawipc_call_request(&call, "x", 0, buf, sizeof buf, -1), EINVAL,
          "request(len 0) -> EINVAL");
    FAILS(rawipc_call_request(&call, NULL, 1, buf, sizeof buf, -1), EFAULT,
          "request(NULL request) -> EFAULT");
    FAILS(rawipc_call_request(&call, "x", 1, NULL, 8, -1), EFAULT,
          "request(NULL reply, cap 8) -> EFAULT");
    FAILS(rawipc_call_request(&call, "x", 1, buf, sizeof buf, -2), EINVAL,
          "request(timeout -2) -> EINVAL");
    FAILS(rawipc_call_request(&call, buf, 49, buf, sizeof buf, -1), EMSGSIZE,
          "request(49 bytes into 48) -> EMSGSIZE");
    FAILS(rawipc_call_request(&call, buf, 8, buf + 4, 8, -1), EINVAL,
          "request and reply overlapping, not one buffer -> EINVAL");
    FAILS(rawipc_call_request(&call, buf + 4, 8, buf, 8, -1), EINVAL,
          "reply overlapping the request's start -> EINVAL");
    FAILS(rawipc_call_request(&call, buf, 9, buf, 8, -1), EINVAL,
          "one buffer, request longer than its room -> EINVAL");
    FAILS(rawipc_call_take_reply(&call, buf, sizeof buf, 0), EINVAL,
          "take_reply with no call made -> EINVAL");
    CHECK(rawipc_call_set_spin(&call, 1000) == 0, "set_spin(1000)");
    CHECK(rawipc_call_close(&call) == 0, "close()");
    FAILS(rawipc_call_close(&call), EINVAL, "close() twice -> EINVAL");
}

/* The server of a child: each byte plus one, until the client is gone. */
static void serve(rawipc_call *call, size_t max)
{
    unsigned char *req = malloc(max), *out = malloc(max);
    ssize_t n;

    if (!req || !out || rawipc_call_server(call) != 0)
        _exit(2);
    while ((n = rawipc_call_recv(call, req, max, -1)) > 0) {
        for (ssize_t k = 0; k < n; k++)
            out[k] = req[k] + 1;
        if (rawipc_call_reply(call, out, (size_t) n) != 0)
            _exit(3);
    }
    _exit(n == 0 ? 0 : 4);
}

/* Calls of every size from 1 to max across fork, checked byte by byte. */
static void calls_across_fork(size_t max, const char *what)
{
    rawipc_call call;
    unsigned char *req = malloc(max), *reply = malloc(max);
    int status, ok = 1;
    pid_t pid;

    CHECK(req && reply && rawipc_call_create(&call, max) == 0, "create for calls");
    pid = fork();
    if (pid == 0)
        serve(&call, max);
    rawipc_call_client(&call);
    for (size_t len = 1; len <= max && ok; len += (len < 64 ? 1 : len / 3)) {
        for (size_t k = 0; k < len; k++)
            req[k] = (unsigned char) (len * 31 + k * 7);
        ssize_t n = rawipc_call_request(&call, req, len, reply, max, -1);
        ok = n == (ssize_t) len;
        for (size_t k = 0; ok && k < len; k++)
            ok = reply[k] == (unsigned char) (req[k] + 1);
    }
    ssize_t n = rawipc_call_request(&call, req, max, reply, max, -1);
    CHECK(ok && n == (ssize_t) max, what);
    /* One buffer for request and reply, as the notes' programs reuse one. */
    for (size_t len = 1; len <= max && ok; len += (len < 64 ? 1 : len / 3)) {
        for (size_t k = 0; k < len; k++)
            req[k] = (unsigned char) (len * 17 + k);
        memcpy(reply, req, len);
        n = rawipc_call_request(&call, reply, len, reply, max, -1);
        ok = n == (ssize_t) len;
        for (size_t k = 0; ok && k < len; k++)
            ok = reply[k] == (unsigned char) (req[k] + 1);
    }
    CHECK(ok, "calls with one buffer for request and reply, every size");
    rawipc_call_close(&call);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the server sees the client gone (recv returns 0) and ends");
    free(req);
    free(reply);
}

static void reply_too_long_is_kept(void)
{
    rawipc_call call;
    char small[4], buf[64];
    int status;
    pid_t pid;

    rawipc_call_create(&call, 48);
    pid = fork();
    if (pid == 0) {
        rawipc_call_server(&call);
        ssize_t n = rawipc_call_recv(&call, buf, 1, -1);
        if (n != -1 || errno != EMSGSIZE)
            _exit(5); /* the request is 5 bytes: it stays for a larger buffer */
        if (rawipc_call_recv(&call, buf, sizeof buf, -1) != 5)
            _exit(6);
        if (rawipc_call_reply(&call, "a longer reply", 14) != 0)
            _exit(7);
        if (rawipc_call_recv(&call, buf, sizeof buf, -1) != 0)
            _exit(8);
        _exit(0);
    }
    rawipc_call_client(&call);
    FAILS(rawipc_call_request(&call, "hello", 5, small, sizeof small, -1), EMSGSIZE,
          "a reply longer than the buffer -> EMSGSIZE");
    CHECK(rawipc_call_take_reply(&call, buf, sizeof buf, 0) == 14 &&
              memcmp(buf, "a longer reply", 14) == 0,
          "take_reply then gets it whole");
    rawipc_call_close(&call);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the server saw EMSGSIZE for a small buffer, then the request");
}

static void timeouts(void)
{
    rawipc_call call;
    char buf[64];
    int status;
    pid_t pid;

    rawipc_call_create(&call, 48);
    pid = fork();
    if (pid == 0) {
        rawipc_call_server(&call);
        ssize_t n = rawipc_call_recv(&call, buf, sizeof buf, -1);
        usleep(100 * 1000);
        rawipc_call_reply(&call, buf, (size_t) n);
        _exit(rawipc_call_recv(&call, buf, sizeof buf, -1) == 0 ? 0 : 9);
    }
    rawipc_call_client(&call);
    FAILS(rawipc_call_request(&call, "slow", 4, buf, sizeof buf, 1), ETIMEDOUT,
          "request(timeout 1 ms) on a slow server -> ETIMEDOUT");
    FAILS(rawipc_call_request(&call, "next", 4, buf, sizeof buf, -1), EBUSY,
          "a new request while the reply is due -> EBUSY");
    CHECK(rawipc_call_take_reply(&call, buf, sizeof buf, -1) == 4 && memcmp(buf, "slow", 4) == 0,
          "take_reply waits for the late reply");
    rawipc_call_close(&call);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the slow server ends");

    rawipc_call_create(&call, 48);
    pid = fork();
    if (pid == 0) {
        rawipc_call_client(&call);
        pause();
        _exit(0);
    }
    rawipc_call_server(&call);
    FAILS(rawipc_call_recv(&call, buf, sizeof buf, 0), ETIMEDOUT,
          "recv(timeout 0) with no request -> ETIMEDOUT");
    FAILS(rawipc_call_reply(&call, "x", 1), EINVAL, "reply with no request -> EINVAL");
    kill(pid, SIGKILL);
    CHECK(rawipc_call_recv(&call, buf, sizeof buf, -1) == 0,
          "recv returns 0 when the client is killed");
    CHECK(rawipc_call_recv(&call, buf, sizeof buf, 0) == 0, "and 0 again");
    waitpid(pid, &status, 0);
    rawipc_call_close(&call);
}

static void dead_server(void)
{
    rawipc_call call;
    char buf[64];
    int status;
    pid_t pid;

    for (int spin = 0; spin < 2; spin++) {
        rawipc_call_create(&call, 48);
        pid = fork();
        if (pid == 0) {
            rawipc_call_server(&call);
            pause();
            _exit(0);
        }
        rawipc_call_client(&call);
        if (spin == 0)
            rawipc_call_set_spin(&call, 0);
        pid_t killer = fork();
        if (killer == 0) {
            usleep(100 * 1000);
            kill(pid, SIGKILL);
            _exit(0);
        }
        FAILS(rawipc_call_request(&call, "anyone?", 7, buf, sizeof buf, -1), EPIPE,
              spin == 0 ? "blocking-only request, server killed -> EPIPE"
                        : "request, server killed -> EPIPE");
        FAILS(rawipc_call_request(&call, "again?", 6, buf, sizeof buf, -1), EPIPE,
              "and EPIPE again");
        waitpid(killer, &status, 0);
        waitpid(pid, &status, 0);
        rawipc_call_close(&call);
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

/* The server of a child that waits only in epoll_wait, edge-triggered:
   try_recv until EAGAIN, answer each request with its bytes plus one. */
static void serve_through_epoll(rawipc_call *call)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
    unsigned char buf[64];
    int ep;
    ssize_t n;

    if (rawipc_call_server(call) != 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, rawipc_call_fd(call), &ev) != 0)
        _exit(2);
    for (;;) {
        n = rawipc_call_try_recv(call, buf, sizeof buf);
        if (n == 0)
            _exit(0);
        if (n > 0) {
            for (ssize_t k = 0; k < n; k++)
                buf[k]++;
            if (rawipc_call_reply(call, buf, (size_t) n) != 0)
                _exit(3);
        } else if (errno != EAGAIN || epoll_wait(ep, &out, 1, 60000) != 1) {
            _exit(4);
        }
    }
}

static void readiness(void)
{
    rawipc_call call, never;
    char buf[64];
    int fd, go[2], ok, status;
    pid_t pid;

    memset(&never, 0, sizeof never);
    FAILS(rawipc_call_fd(NULL), EINVAL, "fd(NULL) -> EINVAL");
    FAILS(rawipc_call_fd(&never), EINVAL, "fd(never made) -> EINVAL");
    FAILS(rawipc_call_try_recv(NULL, buf, sizeof buf), EINVAL, "try_recv(NULL) -> EINVAL");
    FAILS(rawipc_call_send(&never, "x", 1), EINVAL, "send(never made) -> EINVAL");
    FAILS(rawipc_call_try_take_reply(NULL, buf, sizeof buf), EINVAL,
          "try_take_reply(NULL) -> EINVAL");
    CHECK(rawipc_call_create(&call, 48) == 0, "create");
    FAILS(rawipc_call_fd(&call), EINVAL, "fd before choosing a side -> EINVAL");
    FAILS(rawipc_call_send(&call, "x", 1), EINVAL, "send before choosing a side -> EINVAL");
    CHECK(rawipc_call_client(&call) == 0, "client");
    fd = rawipc_call_fd(&call);
    CHECK(fd >= 0 && rawipc_call_fd(&call) == fd, "fd of a client, the same each time");
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "the fd is close-on-exec");
    FAILS(rawipc_call_try_recv(&call, buf, sizeof buf), EINVAL, "try_recv on a client -> EINVAL");
    FAILS(rawipc_call_try_take_reply(&call, buf, sizeof buf), EINVAL,
          "try_take_reply with no call made -> EINVAL");
    FAILS(rawipc_call_send(&call, "x", 0), EINVAL, "send(len 0) -> EINVAL");
    FAILS(rawipc_call_send(&call, NULL, 1), EFAULT, "send(NULL) -> EFAULT");
    FAILS(rawipc_call_send(&call, buf, 49), EMSGSIZE, "send(49 bytes into 48) -> EMSGSIZE");
    CHECK(rawipc_call_close(&call) == 0, "close");
    errno = 0;
    CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "close closes the fd");
    FAILS(rawipc_call_fd(&call), EINVAL, "fd after close -> EINVAL");

    /* A server waiting in poll: a request, then the client killed. */
    CHECK(rawipc_call_create(&call, 48) == 0 && pipe(go) == 0, "create");
    pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        rawipc_call_client(&call);
        if (read(go[0], &c, 1) != 1 || rawipc_call_request(&call, "hi", 2, buf, sizeof buf, -1) != 2)
            _exit(2);
        pause();
        _exit(0);
    }
    close(go[0]);
    rawipc_call_server(&call);
    fd = rawipc_call_fd(&call);
    CHECK(!readable(fd, 20), "a new server: not readable while no request comes");
    CHECK(write(go[1], "g", 1) == 1, "let the client call");
    CHECK(readable(fd, 60000), "a new server starts armed: readable with the request");
    CHECK(rawipc_call_try_recv(&call, buf, sizeof buf) == 2 && memcmp(buf, "hi", 2) == 0,
          "try_recv takes it");
    CHECK(rawipc_call_reply(&call, "ok", 2) == 0, "reply");
    FAILS(rawipc_call_try_recv(&call, buf, sizeof buf), EAGAIN, "try_recv on nothing -> EAGAIN (arms)");
    CHECK(!readable(fd, 20), "not readable while nothing comes");
    kill(pid, SIGKILL);
    CHECK(readable(fd, 60000), "the killed client: readable");
    CHECK(rawipc_call_try_recv(&call, buf, sizeof buf) == 0, "try_recv -> 0: the client is gone");
    CHECK(readable(fd, 0), "and the fd stays readable");
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status), "reaped");
    close(go[1]);
    rawipc_call_close(&call);

    /* A client waiting in edge-triggered epoll for 2000 replies. */
    CHECK(rawipc_call_create(&call, 48) == 0, "create");
    pid = fork();
    if (pid == 0)
        serve_through_epoll(&call);
    rawipc_call_client(&call);
    fd = rawipc_call_fd(&call);
    {
        int ep = epoll_create1(EPOLL_CLOEXEC), waits = 0, i;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
        CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll, edge-triggered");
        ok = 1;
        for (i = 0; i < 2000 && ok; i++) {
            ssize_t n = -1;
            ok = rawipc_call_send(&call, &i, sizeof i) == 0;
            while (ok && (n = rawipc_call_try_take_reply(&call, buf, sizeof buf)) == -1 &&
                   errno == EAGAIN) {
                waits++;
                ok = epoll_wait(ep, &out, 1, 60000) == 1;
            }
            if (ok) {
                int want = i, got;
                unsigned char *w = (unsigned char *) &want;
                for (size_t k = 0; k < sizeof want; k++)
                    w[k]++;
                memcpy(&got, buf, sizeof got);
                ok = n == (ssize_t) sizeof i && got == want;
            }
        }
        CHECK(ok && waits > 0, "2000 calls, both sides waiting in edge-triggered epoll");
        close(ep);
    }
    rawipc_call_close(&call);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the epoll server answered all and saw the client gone");

    /* A client waiting in poll for a reply that never comes: the server killed. */
    CHECK(rawipc_call_create(&call, 48) == 0, "create");
    pid = fork();
    if (pid == 0) {
        rawipc_call_server(&call);
        if (rawipc_call_recv(&call, buf, sizeof buf, -1) != 5)
            _exit(2);
        pause();
        _exit(0);
    }
    rawipc_call_client(&call);
    fd = rawipc_call_fd(&call);
    CHECK(rawipc_call_send(&call, "hello", 5) == 0, "send");
    FAILS(rawipc_call_send(&call, "again", 5), EBUSY, "send while the reply is due -> EBUSY");
    FAILS(rawipc_call_try_take_reply(&call, buf, sizeof buf), EAGAIN,
          "try_take_reply before the reply -> EAGAIN (arms)");
    CHECK(!readable(fd, 20), "not readable while no reply comes");
    kill(pid, SIGKILL);
    CHECK(readable(fd, 60000), "the killed server: readable");
    FAILS(rawipc_call_try_take_reply(&call, buf, sizeof buf), EPIPE,
          "try_take_reply -> EPIPE: the server is gone");
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status), "reaped");
    rawipc_call_close(&call);
}

static void no_fd_left_behind(void)
{
    rawipc_call call;
    int before = next_fd(), ok = 1;

    for (int i = 0; i < 2000 && ok; i++) {
        ok = rawipc_call_create(&call, i % 2 ? 48 : 4096) == 0;
        if (ok && i % 3 == 1)
            ok = rawipc_call_client(&call) == 0;
        if (ok && i % 3 == 2)
            ok = rawipc_call_server(&call) == 0;
        if (ok)
            ok = rawipc_call_close(&call) == 0;
    }
    CHECK(ok && next_fd() == before, "2000 slots made and closed leave no fd behind");
}

int main(void)
{
    bad_input();
    calls_across_fork(RAWIPC_CALL_LINE_MESSAGE, "calls of 1 to 48 bytes (one line)");
    calls_across_fork(65536, "calls of 1 byte to 64 KiB (many lines)");
    reply_too_long_is_kept();
    timeouts();
    dead_server();
    readiness();
    no_fd_left_behind();
    return failures ? 1 : 0;
}
