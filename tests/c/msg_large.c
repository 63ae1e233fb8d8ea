/* msg_large.c: messages above the socket's limit through rawipc_msg_send,
   rawipc_msg_recv and rawipc_msg_size, checked from C.

   Every check prints one line; the program exits 1 if any failed. It covers
   sizes around the socket's limit (found with plain send()) and a 4 MiB
   message between parent and child, a buffer too small for a large message
   (EMSGSIZE, the message stays, rawipc_msg_size tells its size), headers
   forged by a program that is not rawipc (no fd, a pipe, an unsealed memfd,
   a memfd of the wrong size: EBADMSG and the next message arrives), a
   child killed while it sends, and no fd left behind.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "check.h"

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void *xmalloc(size_t len)
{
    void *p = malloc(len);
    if (p == NULL)
        die("malloc");
    return p;
}

/* Message k of len bytes: every byte tells its place. */
static void fill(unsigned char *buf, size_t len, unsigned k)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char) (i ^ (i >> 8) ^ (k * 131u));
}

static int same(const unsigned char *buf, size_t len, unsigned k)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (unsigned char) (i ^ (i >> 8) ^ (k * 131u)))
            return 0;
    return 1;
}

static int next_fd(void)
{
    int fd = dup(0);
    close(fd);
    return fd;
}

/* The largest message the socket takes with a plain send(). */
static size_t socket_limit(int sv[2])
{
    size_t lo = 1, hi = 1 << 20;
    unsigned char *buf = xmalloc(hi), *sink = xmalloc(hi);
    memset(buf, 0, hi);
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (send(sv[0], buf, mid, MSG_DONTWAIT) >= 0) {
            if (recv(sv[1], sink, hi, 0) < 0)
                die("recv");
            lo = mid;
        } else if (errno == EMSGSIZE) {
            hi = mid - 1;
        } else {
            die("send");
        }
    }
    free(buf);
    free(sink);
    return lo;
}

/* Sends bytes with fd (or none if fd is -1), as a program that is not
   rawipc might. */
static void raw_send(int sock, const void *bytes, size_t len, int fd)
{
    union {
        char space[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { (void *) bytes, len };
    struct msghdr m = { 0 };
    memset(&control, 0, sizeof control);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        struct cmsghdr *c;
        m.msg_control = control.space;
        m.msg_controllen = sizeof control.space;
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    if (sendmsg(sock, &m, 0) != (ssize_t) len)
        die("sendmsg");
}

/* The header rawipc sends for a large message of len bytes, taken off a
   socket with plain recvmsg(); its memfd is closed. */
static size_t header_for(size_t len, unsigned char header[64])
{
    int sv[2];
    unsigned char *m = xmalloc(len);
    union {
        char space[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { header, 64 };
    struct msghdr h = { 0 };
    ssize_t n;
    int fd;

    memset(m, 3, len);
    if (rawipc_msg_socketpair(sv) == -1)
        die("rawipc_msg_socketpair");
    if (rawipc_msg_send(sv[0], m, len) != (ssize_t) len)
        die("rawipc_msg_send");
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control.space;
    h.msg_controllen = sizeof control.space;
    n = recvmsg(sv[1], &h, 0);
    if (n < 0 || CMSG_FIRSTHDR(&h) == NULL)
        die("recvmsg of a header");
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&h)), sizeof fd);
    close(fd);
    close(sv[0]);
    close(sv[1]);
    free(m);
    return (size_t) n;
}

static int memfd(size_t len, unsigned seals)
{
    int fd = memfd_create("test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (fd == -1 || ftruncate(fd, (off_t) len) == -1)
        die("memfd");
    if (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) == -1)
        die("F_ADD_SEALS");
    return fd;
}

static void sizes_and_boundaries(void)
{
    int sv[2];
    size_t limit, sizes[5], i;
    unsigned char *buf;
    char what[128];

    if (rawipc_msg_socketpair(sv) == -1)
        die("rawipc_msg_socketpair");
    limit = socket_limit(sv);
    sizes[0] = limit - 1;
    sizes[1] = limit;
    sizes[2] = limit + 1;
    sizes[3] = 64 * 1024;
    sizes[4] = 1 << 20;
    buf = xmalloc(1 << 20);
    for (i = 0; i < 5; i++) {
        fill(buf, sizes[i], (unsigned) i);
        snprintf(what, sizeof what, "rawipc_msg_send(%zu bytes; the socket takes %zu)", sizes[i], limit);
        CHECK(rawipc_msg_send(sv[0], buf, sizes[i]) == (ssize_t) sizes[i], what);
        memset(buf, 0, sizes[i]);
        snprintf(what, sizeof what, "rawipc_msg_size() says %zu", sizes[i]);
        CHECK(rawipc_msg_size(sv[1]) == (ssize_t) sizes[i], what);
        snprintf(what, sizeof what, "rawipc_msg_recv() of %zu bytes, whole", sizes[i]);
        CHECK(rawipc_msg_recv(sv[1], buf, 1 << 20) == (ssize_t) sizes[i] && same(buf, sizes[i], (unsigned) i), what);
    }
    free(buf);
    close(sv[0]);
    close(sv[1]);
}

static void too_small_a_buffer(void)
{
    int sv[2], fd_before;
    size_t len = 1 << 20;
    unsigned char *buf = xmalloc(len);

    if (rawipc_msg_socketpair(sv) == -1)
        die("rawipc_msg_socketpair");
    fill(buf, len, 5);
    CHECK(rawipc_msg_send(sv[0], buf, len) == (ssize_t) len, "rawipc_msg_send(1 MiB)");
    memset(buf, 0xAA, len);
    fd_before = next_fd();
    FAILS(rawipc_msg_recv(sv[1], buf, len - 1), EMSGSIZE, "rawipc_msg_recv(cap 1 MiB - 1) -> EMSGSIZE");
    FAILS(rawipc_msg_recv(sv[1], NULL, 0), EMSGSIZE, "rawipc_msg_recv(NULL, 0) -> EMSGSIZE");
    CHECK(buf[0] == 0xAA && buf[len - 2] == 0xAA, "nothing written into the small buffer");
    CHECK(rawipc_msg_size(sv[1]) == (ssize_t) len, "rawipc_msg_size() tells 1 MiB");
    CHECK(next_fd() == fd_before, "the looks left no fd open");
    CHECK(rawipc_msg_recv(sv[1], buf, len) == (ssize_t) len && same(buf, len, 5),
          "rawipc_msg_recv(cap 1 MiB): the message, whole");
    free(buf);
    close(sv[0]);
    close(sv[1]);
}

static void forged_headers(void)
{
    unsigned char header[64], buf[64];
    size_t hlen, len = 300000;
    int sv[2], p[2], fds[4], i, fd_before;
    const char *names[4] = { "a pipe", "an unsealed memfd", "a memfd open to writing",
                             "a memfd one byte short" };
    char what[128];

    hlen = header_for(len, header);
    CHECK(hlen == 24, "a large message travels as a 24-byte header");
    if (rawipc_msg_socketpair(sv) == -1 || pipe(p) == -1)
        die("rawipc_msg_socketpair");
    fds[0] = p[0];
    fds[1] = memfd(len, 0);
    fds[2] = memfd(len, F_SEAL_SHRINK | F_SEAL_GROW);
    fds[3] = memfd(len - 1, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    fd_before = next_fd();
    for (i = 0; i < 4; i++) {
        raw_send(sv[0], header, hlen, fds[i]);
        CHECK(rawipc_msg_send(sv[0], "next", 4) == 4, "(a message after it)");
        snprintf(what, sizeof what, "rawipc_msg_size() of a header with %s -> EBADMSG", names[i]);
        FAILS(rawipc_msg_size(sv[1]), EBADMSG, what);
        snprintf(what, sizeof what, "after a header with %s, the next message", names[i]);
        CHECK(rawipc_msg_recv(sv[1], buf, sizeof buf) == 4 && memcmp(buf, "next", 4) == 0, what);
        raw_send(sv[0], header, hlen, fds[i]);
        snprintf(what, sizeof what, "rawipc_msg_recv() of a header with %s -> EBADMSG", names[i]);
        FAILS(rawipc_msg_recv(sv[1], buf, sizeof buf), EBADMSG, what);
    }
    CHECK(next_fd() == fd_before, "no copy of a forged fd is left open");
    raw_send(sv[0], header, hlen, -1);
    CHECK(rawipc_msg_recv(sv[1], buf, sizeof buf) == 24 && memcmp(buf, header, 24) == 0,
          "a header with no fd is a message of 24 bytes, delivered as it is");
    CHECK(rawipc_msg_send(sv[0], header, hlen) == 24 && rawipc_msg_recv(sv[1], buf, sizeof buf) == 24,
          "so is a user's message that holds the header's bytes");
    FAILS(rawipc_msg_send_fds(sv[0], header, hlen, &fds[1], 1), EINVAL,
          "rawipc_msg_send_fds() of a header and one fd -> EINVAL");
    for (i = 0; i < 4; i++)
        close(fds[i]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* 4 MiB messages to a child and back, then a child killed while it sends:
   only whole messages arrive, then 0. */
static void across_fork(void)
{
    int sv[2], status, fd_before;
    size_t len = 4 << 20;
    unsigned char *buf = xmalloc(len);
    pid_t pid;
    unsigned k;
    ssize_t n;

    if (rawipc_msg_socketpair(sv) == -1)
        die("rawipc_msg_socketpair");
    pid = fork();
    if (pid == -1)
        die("fork");
    if (pid == 0) {
        close(sv[0]);
        for (k = 0; k < 8; k++) {
            n = rawipc_msg_recv(sv[1], buf, len);
            if (n != (ssize_t) len || !same(buf, len, k))
                _exit(1);
            fill(buf, len, k + 100);
            if (rawipc_msg_send(sv[1], buf, len) != (ssize_t) len)
                _exit(1);
        }
        /* Then messages until killed. */
        for (k = 0;; k++) {
            fill(buf, 300000, k);
            if (rawipc_msg_send(sv[1], buf, 300000) != 300000)
                _exit(1);
        }
    }
    close(sv[1]);
    fd_before = next_fd();
    for (k = 0; k < 8; k++) {
        fill(buf, len, k);
        if (rawipc_msg_send(sv[0], buf, len) != (ssize_t) len)
            break;
        if (rawipc_msg_recv(sv[0], buf, len) != (ssize_t) len || !same(buf, len, k + 100))
            break;
    }
    CHECK(k == 8, "eight 4 MiB messages to a child and back, whole");
    for (k = 0; k < 3; k++) {
        n = rawipc_msg_recv(sv[0], buf, len);
        if (n != 300000 || !same(buf, 300000, k))
            break;
    }
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status), "the sending child is killed");
    while ((n = rawipc_msg_recv(sv[0], buf, len)) > 0) {
        if (n != 300000 || !same(buf, 300000, k))
            break;
        k++;
    }
    CHECK(n == 0, "after the killed child's whole messages, 0");
    CHECK(next_fd() == fd_before, "no fd left open");
    close(sv[0]);
    free(buf);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(RAWIPC_MSG_MAX_SIZE == (size_t) 1 << 30, "RAWIPC_MSG_MAX_SIZE is 1 GiB");
    sizes_and_boundaries();
    too_small_a_buffer();
    forged_headers();
    across_fork();
    return failures == 0 ? 0 : 1;
}
