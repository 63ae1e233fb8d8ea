/* call.c: the C contract of rawipc's request-reply (rawipc_call_*), checked
   from C.

   Every check prints one line; the program exits 1 if any failed. It covers
   bad input (NULL, a handle never made or closed, sizes 0 and too large,
   timeouts below -1), misuse (the wrong side, answering out of turn),
   calls across fork at the boundaries of one cache line and of a larger
   slot, a reply too long for its buffer, timeouts, a server or client that
   is killed, and no file descriptor left behind after many slots.
*/
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    no_fd_left_behind();
    return failures ? 1 : 0;
}
