/* timeout.c: rawipc's timeouts as a C program meets them.

   Every call that can wait has a variant taking timeout_ms as poll(2) does:
   -1 waits for ever, 0 does not wait, any other negative number is EINVAL,
   and ETIMEDOUT comes when the time is up, never before it, also while a
   storm of signals (handlers with and without SA_RESTART) interrupts the
   wait. A peer that is gone is reported as gone (0, EPIPE, EOWNERDEAD) at
   once, not as a timeout; a call that timed out took or sent nothing.

   Every check prints one line; the program exits 1 if any failed.
*/
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawipc.h"
#include "check.h"

/* The short timeout the expiry checks wait for, and the hang check. */
#define SHORT_MS 40
#define LATE_MS 5000
#define LONG_MS 60000

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The call fails with ETIMEDOUT, no sooner than `ms` after it started. */
#define EXPIRES(call, ms, what)                                                  \
    do {                                                                         \
        double start_ = now_ms();                                                \
        errno = 0;                                                               \
        long long r_ = (long long) (intptr_t) (call);                            \
        double took_ = now_ms() - start_;                                        \
        CHECK((r_ == -1 || r_ == 0) && errno == ETIMEDOUT && took_ >= (ms) &&    \
                  took_ < (ms) + LATE_MS,                                        \
              what);                                                             \
    } while (0)

/* The call returns well before its long timeout. */
#define SOON(call, want, what)                                                   \
    do {                                                                         \
        double start_ = now_ms();                                                \
        long long r_ = (long long) (intptr_t) (call);                            \
        CHECK(r_ == (want) && now_ms() - start_ < LATE_MS, what);                \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
    }
}

static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
    (void) sig;
    signals++;
}

/* Installs the handler, then forks a process that signals this one every
   200 us until it is killed. */
static pid_t start_storm(int restart)
{
    struct sigaction sa;
    pid_t me = getpid(), pid;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    pid = fork();
    if (pid == 0) {
        while (kill(me, SIGUSR1) == 0)
            usleep(200);
        _exit(0);
    }
    return pid;
}

static void stop_storm(pid_t pid)
{
    kill(pid, SIGKILL);
    reap(pid);
}

/* A child that holds the sending end of `chan` and obeys commands read from
   `cmd`: 's' sends "hello", 'f' fills the ring; end of file: it exits. */
static pid_t sender_child(rawipc_chan *chan, int cmd[2])
{
    pid_t pid;
    char c;

    if (pipe(cmd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(cmd[1]);
        rawipc_chan_sender(chan);
        while (read(cmd[0], &c, 1) == 1) {
            if (c == 's')
                rawipc_chan_send(chan, "hello", 5);
        }
        _exit(0);
    }
    close(cmd[0]);
    rawipc_chan_receiver(chan);
    return pid;
}

static void chan_receives(void)
{
    rawipc_chan chan;
    int cmd[2];
    char buf[64];
    const void *msg = (const void *) buf;
    pid_t pid, storm;

    rawipc_chan_create(&chan, 4096);
    pid = sender_child(&chan, cmd);
    EXPIRES(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, SHORT_MS), SHORT_MS,
            "chan_recv_timeout on an empty channel -> ETIMEDOUT, not early");
    EXPIRES(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, 0), 0,
            "chan_recv_timeout(0) -> ETIMEDOUT at once");
    EXPIRES(rawipc_chan_recv_borrow_timeout(&chan, &msg, SHORT_MS), SHORT_MS,
            "chan_recv_borrow_timeout -> ETIMEDOUT, not early");
    CHECK(msg == (const void *) buf, "a timed-out borrow leaves *msg as it was");
    FAILS(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, -2), EINVAL,
          "chan_recv_timeout(-2) -> EINVAL");
    FAILS(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, INT32_MIN), EINVAL,
          "chan_recv_timeout(INT_MIN) -> EINVAL");
    FAILS(rawipc_chan_recv_timeout(NULL, buf, sizeof buf, 10), EINVAL,
          "chan_recv_timeout(NULL chan) -> EINVAL");
    FAILS(rawipc_chan_recv_timeout(&chan, NULL, 8, 10), EFAULT,
          "chan_recv_timeout(NULL buf) -> EFAULT");
    FAILS(rawipc_chan_recv_borrow_timeout(&chan, NULL, 10), EFAULT,
          "chan_recv_borrow_timeout(NULL msg) -> EFAULT");
    FAILS(rawipc_chan_send_timeout(&chan, "x", 1, 10), EINVAL,
          "chan_send_timeout on a receiver -> EINVAL");

    storm = start_storm(0);
    EXPIRES(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, SHORT_MS), SHORT_MS,
            "chan_recv_timeout under a signal storm (no SA_RESTART) -> ETIMEDOUT");
    stop_storm(storm);
    storm = start_storm(1);
    EXPIRES(rawipc_chan_recv_borrow_timeout(&chan, &msg, SHORT_MS), SHORT_MS,
            "chan_recv_borrow_timeout under a signal storm (SA_RESTART) -> ETIMEDOUT");
    stop_storm(storm);
    CHECK(signals > 0, "the storms delivered signals");

    /* Nothing was taken: what is sent now arrives whole, in time. */
    write(cmd[1], "s", 1);
    CHECK(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, LONG_MS) == 5 &&
              memcmp(buf, "hello", 5) == 0,
          "a message sent after the timeouts arrives whole within its timeout");
    write(cmd[1], "s", 1);
    CHECK(rawipc_chan_recv_borrow_timeout(&chan, &msg, -1) == 5 &&
              memcmp(msg, "hello", 5) == 0,
          "chan_recv_borrow_timeout(-1) waits for the message");
    rawipc_chan_release(&chan);

    /* The sender goes: 0 at once, never ETIMEDOUT, even with a long timeout. */
    close(cmd[1]);
    SOON(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, LONG_MS), 0,
         "chan_recv_timeout returns 0 soon after the sender is gone");
    CHECK(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, 0) == 0,
          "chan_recv_timeout(0) with the sender gone -> 0, not ETIMEDOUT");
    msg = buf;
    CHECK(rawipc_chan_recv_borrow_timeout(&chan, &msg, 0) == 0 && msg == NULL,
          "chan_recv_borrow_timeout(0) with the sender gone -> 0, NULL");
    reap(pid);
    rawipc_chan_close(&chan);
}

static void chan_sends(void)
{
    rawipc_chan chan;
    char buf[100];
    pid_t pid, storm;
    int go[2];

    rawipc_chan_create(&chan, 4096);
    if (pipe(go) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        rawipc_chan_receiver(&chan);
        /* Receives nothing; leaves when told. */
        (void) read(go[0], &c, 1);
        _exit(0);
    }
    close(go[0]);
    rawipc_chan_sender(&chan);
    memset(buf, 1, sizeof buf);
    while (rawipc_chan_try_send(&chan, buf, sizeof buf) == (ssize_t) sizeof buf) {
    }
    EXPIRES(rawipc_chan_send_timeout(&chan, buf, sizeof buf, SHORT_MS), SHORT_MS,
            "chan_send_timeout on a full ring -> ETIMEDOUT, not early");
    EXPIRES(rawipc_chan_send_timeout(&chan, buf, sizeof buf, 0), 0,
            "chan_send_timeout(0) on a full ring -> ETIMEDOUT at once");
    EXPIRES(rawipc_chan_reserve_timeout(&chan, sizeof buf, SHORT_MS), SHORT_MS,
            "chan_reserve_timeout on a full ring -> NULL, ETIMEDOUT");
    FAILS(rawipc_chan_send_timeout(&chan, buf, sizeof buf, -7), EINVAL,
          "chan_send_timeout(-7) -> EINVAL");
    FAILS(rawipc_chan_reserve_timeout(&chan, sizeof buf, -7), EINVAL,
          "chan_reserve_timeout(-7) -> NULL, EINVAL");
    FAILS(rawipc_chan_send_timeout(&chan, NULL, 4, 10), EFAULT,
          "chan_send_timeout(NULL buf) -> EFAULT");
    FAILS(rawipc_chan_send_timeout(&chan, buf, 0, 10), EINVAL,
          "chan_send_timeout(len 0) -> EINVAL");
    FAILS(rawipc_chan_recv_timeout(&chan, buf, sizeof buf, 10), EINVAL,
          "chan_recv_timeout on a sender -> EINVAL");
    storm = start_storm(0);
    EXPIRES(rawipc_chan_send_timeout(&chan, buf, sizeof buf, SHORT_MS), SHORT_MS,
            "chan_send_timeout under a signal storm -> ETIMEDOUT");
    stop_storm(storm);

    /* The receiver goes, the ring still full: EPIPE soon, not ETIMEDOUT. */
    close(go[1]);
    SOON(rawipc_chan_send_timeout(&chan, buf, sizeof buf, LONG_MS), -1,
         "chan_send_timeout to a receiver gone -> -1 soon");
    CHECK(errno == EPIPE, "... with EPIPE");
    reap(pid);
    rawipc_chan_close(&chan);
}

/* The same count check, kept apart: a child drains and exits with the number
   it received; the timed-out sends must not be among them. */
static void chan_timed_out_sends_send_nothing(void)
{
    rawipc_chan chan;
    char buf[100];
    pid_t pid;
    int sent = 0, status, go[2];

    rawipc_chan_create(&chan, 4096);
    if (pipe(go) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        char c;
        int got = 0;
        close(go[1]);
        rawipc_chan_receiver(&chan);
        if (read(go[0], &c, 1) == 1) {
            while (rawipc_chan_try_recv(&chan, buf, sizeof buf) > 0)
                got++;
        }
        _exit(got > 255 ? 255 : got);
    }
    close(go[0]);
    rawipc_chan_sender(&chan);
    memset(buf, 2, sizeof buf);
    while (rawipc_chan_try_send(&chan, buf, sizeof buf) == (ssize_t) sizeof buf)
        sent++;
    rawipc_chan_send_timeout(&chan, buf, sizeof buf, 10);
    rawipc_chan_send_timeout(&chan, buf, sizeof buf, 0);
    rawipc_chan_reserve_timeout(&chan, sizeof buf, 10);
    write(go[1], "d", 1);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == sent,
          "timed-out sends and reservations sent nothing");
    close(go[1]);
    rawipc_chan_close(&chan);
}

static void messages(void)
{
    int sv[2], pv[2], fds[1], n;
    char buf[2048];
    size_t nfds = 1;
    pid_t pid, storm;

    rawipc_msg_socketpair2(sv, SOCK_CLOEXEC);
    EXPIRES(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, SHORT_MS), SHORT_MS,
            "msg_recv_timeout -> ETIMEDOUT, not early");
    EXPIRES(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, 0), 0,
            "msg_recv_timeout(0) -> ETIMEDOUT at once");
    EXPIRES(rawipc_msg_size_timeout(sv[1], SHORT_MS), SHORT_MS,
            "msg_size_timeout -> ETIMEDOUT, not early");
    EXPIRES(rawipc_msg_recv_fds_timeout(sv[1], buf, sizeof buf, fds, &nfds, SHORT_MS),
            SHORT_MS, "msg_recv_fds_timeout -> ETIMEDOUT, not early");
    FAILS(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, -2), EINVAL,
          "msg_recv_timeout(-2) -> EINVAL");
    FAILS(rawipc_msg_send_timeout(sv[0], "x", 1, -2), EINVAL,
          "msg_send_timeout(-2) -> EINVAL");
    FAILS(rawipc_msg_size_timeout(sv[1], -2), EINVAL, "msg_size_timeout(-2) -> EINVAL");
    FAILS(rawipc_msg_recv_timeout(-1, buf, sizeof buf, 10), EBADF,
          "msg_recv_timeout(fd -1) -> EBADF");
    FAILS(rawipc_msg_recv_timeout(sv[1], NULL, 8, 10), EFAULT,
          "msg_recv_timeout(NULL buf) -> EFAULT");
    FAILS(rawipc_msg_send_timeout(sv[0], "", 0, 10), EINVAL,
          "msg_send_timeout(len 0) -> EINVAL");
    FAILS(rawipc_msg_recv_fds_timeout(sv[1], buf, sizeof buf, fds, NULL, 10), EFAULT,
          "msg_recv_fds_timeout(NULL nfds) -> EFAULT");

    storm = start_storm(0);
    EXPIRES(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, SHORT_MS), SHORT_MS,
            "msg_recv_timeout under a signal storm (no SA_RESTART) -> ETIMEDOUT");
    stop_storm(storm);
    storm = start_storm(1);
    EXPIRES(rawipc_msg_size_timeout(sv[1], SHORT_MS), SHORT_MS,
            "msg_size_timeout under a signal storm (SA_RESTART) -> ETIMEDOUT");
    stop_storm(storm);

    /* A full socket: the timed-out sends send nothing. */
    memset(buf, 3, 1000);
    n = 0;
    while (rawipc_msg_send_timeout(sv[0], buf, 1000, 0) == 1000)
        n++;
    EXPIRES(rawipc_msg_send_timeout(sv[0], buf, 1000, SHORT_MS), SHORT_MS,
            "msg_send_timeout on a full socket -> ETIMEDOUT, not early");
    if (pipe(pv) != 0)
        return;
    EXPIRES(rawipc_msg_send_fds_timeout(sv[0], buf, 1000, pv, 1, SHORT_MS), SHORT_MS,
            "msg_send_fds_timeout on a full socket -> ETIMEDOUT, not early");
    {
        int got = 0;
        while (rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, 0) == 1000)
            got++;
        CHECK(got == n && errno == ETIMEDOUT,
              "the timed-out sends sent nothing; then ETIMEDOUT(0) once drained");
    }
    CHECK(rawipc_msg_send_fds_timeout(sv[0], "fd", 2, pv, 1, -1) == 2,
          "msg_send_fds_timeout(-1) sends");
    nfds = 1;
    CHECK(rawipc_msg_recv_fds_timeout(sv[1], buf, sizeof buf, fds, &nfds, 0) == 2 &&
              nfds == 1,
          "msg_recv_fds_timeout(0) takes what is there");
    close(fds[0]);
    close(pv[0]);
    close(pv[1]);

    /* A message that arrives in time; then the peer is gone: 0, soon. */
    pid = fork();
    if (pid == 0) {
        close(sv[1]);
        sleep_ms(30);
        rawipc_msg_send(sv[0], "late", 4);
        sleep_ms(30);
        _exit(0);
    }
    close(sv[0]);
    CHECK(rawipc_msg_size_timeout(sv[1], LONG_MS) == 4, "msg_size_timeout waits for it");
    CHECK(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, LONG_MS) == 4 &&
              memcmp(buf, "late", 4) == 0,
          "msg_recv_timeout receives a message that arrives in time");
    SOON(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, LONG_MS), 0,
         "msg_recv_timeout returns 0 soon after the peer is gone");
    CHECK(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, 0) == 0,
          "msg_recv_timeout(0) with the peer gone -> 0, not ETIMEDOUT");
    FAILS(rawipc_msg_send_timeout(sv[1], "x", 1, LONG_MS), EPIPE,
          "msg_send_timeout to a gone peer -> EPIPE at once");
    reap(pid);
    close(sv[1]);

    /* A non-blocking socket: the plain calls say EAGAIN, the timed ones
       wait their time. */
    rawipc_msg_socketpair2(sv, SOCK_CLOEXEC | SOCK_NONBLOCK);
    FAILS(rawipc_msg_recv(sv[1], buf, sizeof buf), EAGAIN,
          "msg_recv on a non-blocking socket, nothing yet -> EAGAIN");
    EXPIRES(rawipc_msg_recv_timeout(sv[1], buf, sizeof buf, SHORT_MS), SHORT_MS,
            "msg_recv_timeout on a non-blocking socket waits, then ETIMEDOUT");
    close(sv[0]);
    CHECK(rawipc_msg_recv(sv[1], buf, sizeof buf) == 0,
          "msg_recv on a non-blocking socket, peer gone -> 0");
    close(sv[1]);
}

static void reads(void)
{
    int p[2];
    char buf[64];
    pid_t pid, storm;

    if (pipe(p) != 0)
        return;
    EXPIRES(rawipc_read_timeout(p[0], buf, sizeof buf, SHORT_MS), SHORT_MS,
            "read_timeout on an empty pipe -> ETIMEDOUT, not early");
    EXPIRES(rawipc_read_timeout(p[0], buf, sizeof buf, 0), 0,
            "read_timeout(0) -> ETIMEDOUT at once");
    storm = start_storm(0);
    EXPIRES(rawipc_read_timeout(p[0], buf, sizeof buf, SHORT_MS), SHORT_MS,
            "read_timeout under a signal storm -> ETIMEDOUT");
    stop_storm(storm);
    FAILS(rawipc_read_timeout(p[0], buf, sizeof buf, -3), EINVAL,
          "read_timeout(-3) -> EINVAL");
    FAILS(rawipc_read_timeout(-1, buf, sizeof buf, 10), EBADF, "read_timeout(fd -1) -> EBADF");
    FAILS(rawipc_read_timeout(p[0], NULL, 8, 10), EFAULT, "read_timeout(NULL buf) -> EFAULT");
    FAILS(rawipc_read_timeout(p[0], buf, SIZE_MAX, 10), EINVAL,
          "read_timeout(count SIZE_MAX) -> EINVAL");
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        sleep_ms(30);
        write(p[1], "abc", 3);
        sleep_ms(30);
        _exit(0);
    }
    close(p[1]);
    CHECK(rawipc_read_timeout(p[0], buf, sizeof buf, LONG_MS) == 3 &&
              memcmp(buf, "abc", 3) == 0,
          "read_timeout reads what arrives in time");
    SOON(rawipc_read_timeout(p[0], buf, sizeof buf, LONG_MS), 0,
         "read_timeout returns 0 (end of file) soon after the writer is gone");
    CHECK(rawipc_read_timeout(p[0], buf, sizeof buf, -1) == 0, "read_timeout(-1) at EOF -> 0");
    reap(pid);
    close(p[0]);
}

static void mutexes(void)
{
    rawipc_mutex *m = rawipc_shared_alloc(sizeof *m);
    volatile int *held = rawipc_shared_alloc(sizeof *held);
    pid_t pid, storm;

    CHECK(rawipc_mutex_timedlock(m, 0) == 0, "mutex_timedlock(0) of a free mutex -> 0");
    CHECK(rawipc_mutex_unlock(m) == 0, "... and unlocks");
    FAILS(rawipc_mutex_timedlock(NULL, 10), EINVAL, "mutex_timedlock(NULL) -> EINVAL");
    FAILS(rawipc_mutex_timedlock(m, -2), EINVAL, "mutex_timedlock(-2) -> EINVAL");
    pid = fork();
    if (pid == 0) {
        rawipc_mutex_lock(m);
        *held = 1;
        for (;;)
            pause();
    }
    while (!*held)
        usleep(100);
    EXPIRES(rawipc_mutex_timedlock(m, SHORT_MS), SHORT_MS,
            "mutex_timedlock of a held mutex -> ETIMEDOUT, not early");
    EXPIRES(rawipc_mutex_timedlock(m, 0), 0, "mutex_timedlock(0) of a held mutex -> ETIMEDOUT");
    FAILS(rawipc_mutex_trylock(m), EBUSY, "a timed-out lock did not take it");
    storm = start_storm(0);
    EXPIRES(rawipc_mutex_timedlock(m, SHORT_MS), SHORT_MS,
            "mutex_timedlock under a signal storm -> ETIMEDOUT");
    stop_storm(storm);
    kill(pid, SIGKILL);
    reap(pid);
    errno = 0;
    CHECK(rawipc_mutex_timedlock(m, LONG_MS) == -1 && errno == EOWNERDEAD,
          "mutex_timedlock after the holder died -> EOWNERDEAD, held");
    CHECK(rawipc_mutex_consistent(m) == 0 && rawipc_mutex_unlock(m) == 0,
          "... and is repaired and unlocked");

    /* The holder dies during a long timed wait. */
    *held = 0;
    pid = fork();
    if (pid == 0) {
        rawipc_mutex_lock(m);
        *held = 1;
        sleep_ms(50);
        _exit(0);
    }
    while (!*held)
        usleep(100);
    {
        double start = now_ms();
        errno = 0;
        int r = rawipc_mutex_timedlock(m, LONG_MS);
        CHECK(r == -1 && errno == EOWNERDEAD && now_ms() - start < LATE_MS,
              "mutex_timedlock gets EOWNERDEAD soon after the holder dies mid-wait");
    }
    rawipc_mutex_consistent(m);
    rawipc_mutex_unlock(m);
    reap(pid);
    rawipc_shared_free(m, sizeof *m);
    rawipc_shared_free((void *) held, sizeof *held);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    chan_receives();
    chan_sends();
    chan_timed_out_sends_send_nothing();
    messages();
    reads();
    mutexes();
    printf("%s: %d failed\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
