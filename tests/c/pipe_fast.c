/* pipe_fast.c: the C contract of rawipc's fast pipes (rawipc_pipe_capacity,
   rawipc_pipe_set_capacity, rawipc_pipe_max_capacity, rawipc_splice_writer_*),
   checked from C.

   Every check prints one line; the program exits 1 if any failed. It covers
   bad input (bad fds, not a pipe, sizes 0 and too large, NULL), EPERM above
   pipe-max-size for an unprivileged process, EBUSY, a vmsplice writer whose
   every byte arrives as written across fork (1 MiB writes, odd sizes, a slow
   reader), zero-copy reserve and commit, EPIPE without SIGPIPE, and the fd:
   the caller's after a failed create, closed by close.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "check.h"

static unsigned char byte_at(uint64_t pos)
{
    uint64_t lap = pos / 4093;
    return (unsigned char) ((unsigned char) pos * 31u ^ (unsigned char) lap * 7u ^ (lap >> 8));
}

static void capacity(void)
{
    int fds[2], sv[2];
    long max = (long) rawipc_pipe_max_capacity();
    char buf[20000];

    CHECK(max >= 4096, "max_capacity() reads /proc/sys/fs/pipe-max-size");
    CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
    CHECK(rawipc_pipe_capacity(fds[1]) == 65536, "capacity of a new pipe = 64 KiB");
    CHECK(rawipc_pipe_set_capacity(fds[1], 100000) == 131072, "set_capacity(100000) -> 128 KiB");
    CHECK(rawipc_pipe_capacity(fds[0]) == 131072, "both ends see it");
    FAILS(rawipc_pipe_set_capacity(fds[1], 0), EINVAL, "set_capacity(0) -> EINVAL");
    FAILS(rawipc_pipe_set_capacity(fds[1], SIZE_MAX), EINVAL, "set_capacity(SIZE_MAX) -> EINVAL");
    FAILS(rawipc_pipe_capacity(-1), EBADF, "capacity(-1) -> EBADF");
    FAILS(rawipc_pipe_set_capacity(1000000, 4096), EBADF, "set_capacity(closed fd) -> EBADF");
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    FAILS(rawipc_pipe_capacity(sv[0]), EBADF, "capacity(a socket) -> EBADF");
    memset(buf, 7, sizeof buf);
    write(fds[1], buf, sizeof buf);
    FAILS(rawipc_pipe_set_capacity(fds[1], 4096), EBUSY,
          "set_capacity below what the pipe holds -> EBUSY");
    CHECK(read(fds[0], buf, sizeof buf) == (ssize_t) sizeof buf, "and the data stays");

    pid_t pid = fork();
    if (pid == 0) {
        /* Only in this child: give up root (and CAP_SYS_RESOURCE). */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);
        int p[2];
        pipe(p);
        if (rawipc_pipe_set_capacity(p[1], (size_t) max) != max)
            _exit(3);
        errno = 0;
        if (rawipc_pipe_set_capacity(p[1], (size_t) max * 2) != -1 || errno != EPERM)
            _exit(4);
        _exit(rawipc_pipe_capacity(p[1]) == max ? 0 : 5);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "unprivileged: set_capacity(pipe-max-size) works, twice that -> EPERM");
    close(fds[0]);
    close(fds[1]);
    close(sv[0]);
    close(sv[1]);
}

/* A child writes `total` bytes in writes of 1 MiB, odd sizes and zero-copy
   reservations through a splice writer; the parent checks every byte. */
static void splice_across_fork(int slow, const char *what)
{
    rawipc_splice_writer w;
    int fds[2], status;
    uint64_t total = 32u << 20, pos = 0, got = 0;
    size_t sizes[] = {1u << 20, 4095, 1, 300000, (1u << 20) + 5};
    static unsigned char buf[(1u << 20) + 5];
    pid_t pid;

    pipe2(fds, O_CLOEXEC);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (rawipc_splice_writer_create(&w, fds[1], 1u << 20) != 0)
            _exit(2);
        for (int i = 0; pos < total; i++) {
            size_t n = sizes[i % 5];
            if (n > total - pos)
                n = (size_t) (total - pos);
            if (i % 7 == 3) {
                size_t lent;
                unsigned char *p = rawipc_splice_writer_reserve(&w, n, &lent);
                if (!p || lent == 0 || lent > n)
                    _exit(3);
                for (size_t k = 0; k < lent; k++)
                    p[k] = byte_at(pos + k);
                if (rawipc_splice_writer_commit(&w, lent) != 0)
                    _exit(4);
                pos += lent;
                continue;
            }
            for (size_t k = 0; k < n; k++)
                buf[k] = byte_at(pos + k);
            if (rawipc_splice_writer_write(&w, buf, n) != (ssize_t) n)
                _exit(5);
            memset(buf, 0xee, n); /* copied, not lent: the caller may reuse it */
            pos += n;
        }
        _exit(rawipc_splice_writer_close(&w) == 0 ? 0 : 6);
    }
    close(fds[1]);
    int ok = 1, reads = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf, slow ? 3000 : sizeof buf);
        if (n <= 0) {
            ok = ok && n == 0;
            break;
        }
        for (ssize_t k = 0; k < n && ok; k++)
            ok = buf[k] == byte_at(got + (uint64_t) k);
        got += (uint64_t) n;
        if (slow && ++reads % 64 == 0)
            usleep(1000);
    }
    waitpid(pid, &status, 0);
    CHECK(ok && got == total && WIFEXITED(status) && WEXITSTATUS(status) == 0, what);
    close(fds[0]);
}

static void misuse_and_dead_reader(void)
{
    rawipc_splice_writer w, never;
    int fds[2], sv[2];
    size_t lent;
    char buf[64];

    memset(&never, 0, sizeof never);
    FAILS(rawipc_splice_writer_create(NULL, 1, 4096), EINVAL, "create(NULL) -> EINVAL");
    FAILS(rawipc_splice_writer_create(&w, -1, 4096), EBADF, "create(fd -1) -> EBADF");
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    FAILS(rawipc_splice_writer_create(&w, sv[0], 4096), EBADF, "create(a socket) -> EBADF");
    CHECK(fcntl(sv[0], F_GETFD) != -1, "a failed create leaves the fd open");
    pipe2(fds, O_CLOEXEC);
    FAILS(rawipc_splice_writer_create(&w, fds[1], 0), EINVAL, "create(capacity 0) -> EINVAL");
    CHECK(fcntl(fds[1], F_GETFD) != -1, "and still the caller's");
    FAILS(rawipc_splice_writer_write(&never, "x", 1), EINVAL, "write(never made) -> EINVAL");
    FAILS(rawipc_splice_writer_close(NULL), EINVAL, "close(NULL) -> EINVAL");

    CHECK(rawipc_splice_writer_create(&w, fds[1], 65536) == 0, "create(65536)");
    FAILS(rawipc_splice_writer_write(&w, NULL, 1), EFAULT, "write(NULL, 1) -> EFAULT");
    FAILS(rawipc_splice_writer_reserve(&w, 0, &lent), EINVAL, "reserve(0) -> NULL, EINVAL");
    FAILS(rawipc_splice_writer_reserve(&w, 8, NULL), EFAULT, "reserve(got NULL) -> EFAULT");
    FAILS(rawipc_splice_writer_commit(&w, 1), EINVAL, "commit with nothing reserved -> EINVAL");
    char *p = rawipc_splice_writer_reserve(&w, 10, &lent);
    CHECK(p != NULL && lent == 10, "reserve(10)");
    FAILS(rawipc_splice_writer_write(&w, "x", 1), EBUSY, "write while reserved -> EBUSY");
    FAILS(rawipc_splice_writer_commit(&w, 11), EINVAL, "commit more than reserved -> EINVAL");
    memcpy(p, "0123456789", 10);
    CHECK(rawipc_splice_writer_commit(&w, 10) == 0, "commit(10)");
    CHECK(rawipc_splice_writer_write(&w, "abc", 3) == 3, "write(3)");
    CHECK(read(fds[0], buf, sizeof buf) == 13 && memcmp(buf, "0123456789abc", 13) == 0,
          "the reader gets the reservation, then the write");
    close(fds[0]);
    /* SIGPIPE's default would kill this program: the checks would stop. */
    FAILS(rawipc_splice_writer_write(&w, buf, sizeof buf), EPIPE,
          "write with no reader -> EPIPE, no SIGPIPE");
    CHECK(rawipc_splice_writer_close(&w) == 0, "close()");
    FAILS(fcntl(fds[1], F_GETFD), EBADF, "close() closed the write end");
    FAILS(rawipc_splice_writer_close(&w), EINVAL, "close() twice -> EINVAL");
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    capacity();
    splice_across_fork(0, "32 MiB through a splice writer across fork, every byte as written");
    splice_across_fork(1, "the same with a slow reader taking small bites");
    misuse_and_dead_reader();
    return failures ? 1 : 0;
}
