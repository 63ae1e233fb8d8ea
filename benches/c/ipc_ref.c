/* ipc_ref.c

   The plain-C references of rawipc's IPC benchmark (benches/ipc.rs): the
   same work as the rawipc side, written with libc's calls the way a C
   programmer would. Each mode but the *-call ones forks one child; the
   parent measures (after a warm-up of a tenth, or an eighth, of the work),
   prints one number on standard output, and waits for the child.

   Round trips of an 8-byte message, parent -> child -> parent (prints ns):
     pipe-rtt N     over two pipes (one each way), read() and write()
     socket-rtt N   over a SOCK_SEQPACKET socket pair, send() and recv()
     spin-rtt N     through one cache line of shared memory: a sequence
                    number and the message; both sides spin, never sleep
     spin2-rtt N    as spin-rtt, but through two cache lines, one each way
                    (the shape of two one-way channels)
     futex-rtt N    through a futex word in shared memory: both sides sleep
                    in FUTEX_WAIT and wake each other with FUTEX_WAKE
     eventfd-rtt N  the message in shared memory, each side woken through
                    an eventfd of its own: write() to wake, read() to wait
   Round trips of a SIZE-byte message, parent -> child -> parent (prints ns):
     stream-rtt-SIZE N  over a SOCK_STREAM socket pair, write() and read()
                    until the whole message is through (what a local socket
                    stream does for messages larger than a SOCK_SEQPACKET
                    socket takes)
   The calls alone, in one process that never waits (prints ns per pair):
     pipe-call N    write() 8 bytes into a pipe, read() them back
     socket-call N  send() 8 bytes on a SOCK_SEQPACKET pair, recv() them
   Throughput of 64 KiB messages, child -> parent (prints GB/s):
     pipe-tput MIB  write() into a default-size pipe, read() out of it
     ring-tput MIB  a ring of 16 slots of 64 KiB in shared memory, each
                    message copied in and copied out, both sides spinning
   Meeting another process (prints ns per meeting):
     meet N         the child listens on an abstract unix socket name; each
                    time, the parent connects, the child accepts, makes an
                    8 KiB memfd, maps it and sends its fd (SCM_RIGHTS), and
                    the parent receives it, maps it, and unmaps and closes
                    all (what a channel hand-over does, by hand, unchecked)
   Idle (prints % of one CPU):
     idle MS        a child blocked in read() on an idle pipe for MS ms: its
                    CPU time (getrusage(RUSAGE_CHILDREN)) over the wall time

   With PARENT_CPU and CHILD_CPU, the parent runs on the first CPU and the
   child on the second (the one-process modes on the first), as the rawipc
   side does; otherwise the scheduler places them.

   Usage: ipc_ref MODE COUNT [PARENT_CPU CHILD_CPU]
*/
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Both sizes can be set when compiling (-DMSG=n -DCHUNK=n): the peers'
   benchmark (benches/peers) builds one program per size of its sweep. */
#ifndef MSG
#define MSG 8                   /* bytes of a round-trip message */
#endif
#ifndef CHUNK
#define CHUNK (64 * 1024)       /* bytes of a throughput message */
#endif
#define SLOTS 16                /* slots of the shared-memory ring */
#define LINE 64                 /* a cache line */

/* What a spinning loop does between two looks: let the other hyper-thread run. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void) 0)
#endif

static _Noreturn void err_exit(const char *what)
{
    perror(what);
    exit(EXIT_FAILURE);
}

static int parent_cpu = -1, child_cpu = -1;    /* -1: not pinned */

/* Keeps the calling process on one CPU (none if cpu is -1). */
static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) == -1)
        err_exit("sched_setaffinity");
}

/* fork(), with the parent on parent_cpu and the child on child_cpu. */
static pid_t fork_pinned(void)
{
    pid_t pid;

    pin(parent_cpu);
    pid = fork();
    if (pid == -1)
        err_exit("fork");
    if (pid == 0)
        pin(child_cpu);
    return pid;
}

static _Noreturn void usage_exit(const char *prog)
{
    fprintf(stderr, "Usage: %s {pipe-rtt|socket-rtt|spin-rtt|spin2-rtt|futex-rtt|eventfd-rtt|"
            "pipe-call|socket-call|pipe-tput|ring-tput|idle} COUNT [PARENT_CPU CHILD_CPU]\n", prog);
    exit(EXIT_FAILURE);
}

static double now(void)
{
    struct timespec t;

    if (clock_gettime(CLOCK_MONOTONIC, &t) == -1)
        err_exit("clock_gettime");
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Writes all of buf, as rawipc's write_all() does: a pipe may take less. */
static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == -1)
            err_exit("write");
        p += n;
        len -= n;
    }
}

/* Reads exactly len bytes; end of file before that is an error here. */
static void read_full(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == -1)
            err_exit("read");
        if (n == 0) {
            fprintf(stderr, "read: unexpected end of file\n");
            exit(EXIT_FAILURE);
        }
        p += n;
        len -= n;
    }
}

static void *shared_memory(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        err_exit("mmap");
    return p;
}

static void reap(pid_t pid)
{
    int status;

    if (waitpid(pid, &status, 0) == -1)
        err_exit("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed (status %#x)\n", status);
        exit(EXIT_FAILURE);
    }
}

/* ---- round trips ---- */

static void pipe_rtt(long iters)
{
    int to_child[2], to_parent[2];
    char msg[MSG] = { 'p' };
    long warm = iters / 10;
    pid_t pid;
    double t0;

    if (pipe(to_child) == -1)
        err_exit("pipe");
    if (pipe(to_parent) == -1)
        err_exit("pipe");
    pid = fork_pinned();
    if (pid == 0) {
        if (close(to_child[1]) == -1)
            err_exit("close");
        if (close(to_parent[0]) == -1)
            err_exit("close");
        for (long i = 0; i < warm + iters; i++) {
            read_full(to_child[0], msg, MSG);
            msg[0]++;
            write_all(to_parent[1], msg, MSG);
        }
        _exit(EXIT_SUCCESS);
    }
    if (close(to_child[0]) == -1)
        err_exit("close");
    if (close(to_parent[1]) == -1)
        err_exit("close");
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        write_all(to_child[1], msg, MSG);
        read_full(to_parent[0], msg, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

static void send_msg(int fd, const char *msg)
{
    if (send(fd, msg, MSG, MSG_NOSIGNAL) != MSG)
        err_exit("send");
}

static void recv_msg(int fd, char *msg)
{
    if (recv(fd, msg, MSG, 0) != MSG)
        err_exit("recv");
}

static void socket_rtt(long iters)
{
    int sv[2];
    char msg[MSG] = { 'p' };
    long warm = iters / 10;
    pid_t pid;
    double t0;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1)
        err_exit("socketpair");
    pid = fork_pinned();
    if (pid == 0) {
        if (close(sv[0]) == -1)
            err_exit("close");
        for (long i = 0; i < warm + iters; i++) {
            recv_msg(sv[1], msg);
            msg[0]++;
            send_msg(sv[1], msg);
        }
        _exit(EXIT_SUCCESS);
    }
    if (close(sv[1]) == -1)
        err_exit("close");
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        send_msg(sv[0], msg);
        recv_msg(sv[0], msg);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

static void stream_rtt(long iters, size_t size)
{
    int sv[2];
    char *msg = calloc(size, 1);
    long warm = iters / 10 > 0 ? iters / 10 : 1;
    pid_t pid;
    double t0;

    if (msg == NULL)
        err_exit("calloc");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
        err_exit("socketpair");
    pid = fork_pinned();
    if (pid == 0) {
        if (close(sv[0]) == -1)
            err_exit("close");
        for (long i = 0; i < warm + iters; i++) {
            read_full(sv[1], msg, size);
            msg[0]++;
            write_all(sv[1], msg, size);
        }
        _exit(EXIT_SUCCESS);
    }
    if (close(sv[1]) == -1)
        err_exit("close");
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        write_all(sv[0], msg, size);
        read_full(sv[0], msg, size);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
    free(msg);
}

/* The shared cache line of spin-rtt: odd seq = a message for the child, even
   (non-zero) = the child's reply. */
struct spin_line {
    _Alignas(LINE) _Atomic uint64_t seq;
    char msg[MSG];
};

static void spin_until(_Atomic uint64_t *seq, uint64_t want)
{
    while (atomic_load_explicit(seq, memory_order_acquire) != want)
        cpu_relax();
}

static void spin_rtt(long iters)
{
    struct spin_line *line = shared_memory(sizeof *line);
    char msg[MSG] = { 'p' };
    long warm = iters / 10;
    pid_t pid;
    double t0;

    pid = fork_pinned();
    if (pid == 0) {
        for (long i = 0; i < warm + iters; i++) {
            spin_until(&line->seq, 2 * i + 1);
            memcpy(msg, line->msg, MSG);
            msg[0]++;
            memcpy(line->msg, msg, MSG);
            atomic_store_explicit(&line->seq, 2 * i + 2, memory_order_release);
        }
        _exit(EXIT_SUCCESS);
    }
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        memcpy(line->msg, msg, MSG);
        atomic_store_explicit(&line->seq, 2 * i + 1, memory_order_release);
        spin_until(&line->seq, 2 * i + 2);
        memcpy(msg, line->msg, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

/* spin2-rtt: one line per direction, each written by one side only. */
struct spin_lines {
    struct spin_line to_child;
    struct spin_line to_parent;
};

static void spin2_rtt(long iters)
{
    struct spin_lines *lines = shared_memory(sizeof *lines);
    char msg[MSG] = { 'p' };
    long warm = iters / 10;
    pid_t pid;
    double t0;

    pid = fork_pinned();
    if (pid == 0) {
        for (long i = 0; i < warm + iters; i++) {
            spin_until(&lines->to_child.seq, i + 1);
            memcpy(msg, lines->to_child.msg, MSG);
            msg[0]++;
            memcpy(lines->to_parent.msg, msg, MSG);
            atomic_store_explicit(&lines->to_parent.seq, i + 1, memory_order_release);
        }
        _exit(EXIT_SUCCESS);
    }
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        memcpy(lines->to_child.msg, msg, MSG);
        atomic_store_explicit(&lines->to_child.seq, i + 1, memory_order_release);
        spin_until(&lines->to_parent.seq, i + 1);
        memcpy(msg, lines->to_parent.msg, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

/* No FUTEX_PRIVATE_FLAG: the word is shared between two processes. */
static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Sleeps until *turn == mine; then takes the message. */
static void futex_await(_Atomic uint32_t *turn, uint32_t mine)
{
    uint32_t seen;

    while ((seen = atomic_load_explicit(turn, memory_order_acquire)) != mine) {
        if (futex(turn, FUTEX_WAIT, seen) == -1 && errno != EAGAIN && errno != EINTR)
            err_exit("futex wait");
    }
}

/* Hands the turn to the other side and wakes it. */
static void futex_pass(_Atomic uint32_t *turn, uint32_t theirs)
{
    atomic_store_explicit(turn, theirs, memory_order_release);
    if (futex(turn, FUTEX_WAKE, 1) == -1)
        err_exit("futex wake");
}

struct futex_line {
    _Alignas(LINE) _Atomic uint32_t turn;       /* 0: parent's turn, 1: child's */
    char msg[MSG];
};

static void futex_rtt(long iters)
{
    struct futex_line *line = shared_memory(sizeof *line);
    char msg[MSG] = { 'p' };
    long warm = iters / 10;
    pid_t pid;
    double t0;

    pid = fork_pinned();
    if (pid == 0) {
        for (long i = 0; i < warm + iters; i++) {
            futex_await(&line->turn, 1);
            memcpy(msg, line->msg, MSG);
            msg[0]++;
            memcpy(line->msg, msg, MSG);
            futex_pass(&line->turn, 0);
        }
        _exit(EXIT_SUCCESS);
    }
    t0 = 0;
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        memcpy(line->msg, msg, MSG);
        futex_pass(&line->turn, 1);
        futex_await(&line->turn, 0);
        memcpy(msg, line->msg, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

/* eventfd-rtt: the message in shared memory; each side blocks in read() on
   its own eventfd, and the other wakes it with write(). */
static void eventfd_rtt(long iters)
{
    char *line = shared_memory(MSG);
    char msg[MSG] = { 'p' };
    int to_child = eventfd(0, EFD_CLOEXEC), to_parent = eventfd(0, EFD_CLOEXEC);
    uint64_t one = 1, got;
    long warm = iters / 10;
    pid_t pid;
    double t0 = 0;

    if (to_child == -1 || to_parent == -1)
        err_exit("eventfd");
    pid = fork_pinned();
    if (pid == 0) {
        for (long i = 0; i < warm + iters; i++) {
            if (read(to_child, &got, sizeof got) != sizeof got)
                err_exit("read");
            memcpy(msg, line, MSG);
            msg[0]++;
            memcpy(line, msg, MSG);
            if (write(to_parent, &one, sizeof one) != sizeof one)
                err_exit("write");
        }
        _exit(EXIT_SUCCESS);
    }
    for (long i = 0; i < warm + iters; i++) {
        if (i == warm)
            t0 = now();
        memcpy(line, msg, MSG);
        if (write(to_child, &one, sizeof one) != sizeof one)
            err_exit("write");
        if (read(to_parent, &got, sizeof got) != sizeof got)
            err_exit("read");
        memcpy(msg, line, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

/* ---- calls ---- */

static void pipe_call(long iters)
{
    int fds[2];
    char msg[MSG] = { 'p' };
    double t0 = 0;

    pin(parent_cpu);
    if (pipe(fds) == -1)
        err_exit("pipe");
    for (long i = 0; i < iters / 10 + iters; i++) {
        if (i == iters / 10)
            t0 = now();
        write_all(fds[1], msg, MSG);
        read_full(fds[0], msg, MSG);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
}

static void socket_call(long iters)
{
    int sv[2];
    char msg[MSG] = { 'p' };
    double t0 = 0;

    pin(parent_cpu);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1)
        err_exit("socketpair");
    for (long i = 0; i < iters / 10 + iters; i++) {
        if (i == iters / 10)
            t0 = now();
        send_msg(sv[0], msg);
        recv_msg(sv[1], msg);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
}

/* ---- throughput ---- */

static void pipe_tput(long mib)
{
    int fds[2];
    long total = mib << 20, warm = total / 8;
    char *buf = malloc(CHUNK);
    double t0;
    pid_t pid;

    if (buf == NULL)
        err_exit("malloc");
    memset(buf, 1, CHUNK);
    if (pipe(fds) == -1)
        err_exit("pipe");
    pid = fork_pinned();
    if (pid == 0) {
        if (close(fds[0]) == -1)
            err_exit("close");
        for (long done = 0; done < warm + total; done += CHUNK)
            write_all(fds[1], buf, CHUNK);
        _exit(EXIT_SUCCESS);
    }
    if (close(fds[1]) == -1)
        err_exit("close");
    for (long got = 0; got < warm; got += CHUNK)
        read_full(fds[0], buf, CHUNK);
    t0 = now();
    for (long got = 0;;) {
        ssize_t n = read(fds[0], buf, CHUNK);
        if (n == -1)
            err_exit("read");
        if (n == 0) {
            if (got != total) {
                fprintf(stderr, "pipe-tput: got %ld bytes of %ld\n", got, total);
                exit(EXIT_FAILURE);
            }
            break;
        }
        got += n;
    }
    printf("%.3f\n", total / (now() - t0) / 1e9);
    reap(pid);
}

/* The ring of ring-tput: the child writes slot head % SLOTS and then
   publishes head; the parent reads slot tail % SLOTS and then publishes tail.
   Each index on its own cache line. */
struct ring {
    _Alignas(LINE) _Atomic uint64_t head;
    _Alignas(LINE) _Atomic uint64_t tail;
    _Alignas(4096) char slot[SLOTS][CHUNK];
};

static void ring_tput(long mib)
{
    struct ring *ring = shared_memory(sizeof *ring);
    uint64_t n = ((uint64_t)mib << 20) / CHUNK, warm = n / 8;
    char *buf = malloc(CHUNK);
    double t0 = 0;
    pid_t pid;

    if (buf == NULL)
        err_exit("malloc");
    memset(buf, 1, CHUNK);
    pid = fork_pinned();
    if (pid == 0) {
        for (uint64_t i = 0; i < warm + n; i++) {
            while (i - atomic_load_explicit(&ring->tail, memory_order_acquire) >= SLOTS)
                cpu_relax();
            memcpy(ring->slot[i % SLOTS], buf, CHUNK);
            atomic_store_explicit(&ring->head, i + 1, memory_order_release);
        }
        _exit(EXIT_SUCCESS);
    }
    for (uint64_t i = 0; i < warm + n; i++) {
        if (i == warm)
            t0 = now();
        while (atomic_load_explicit(&ring->head, memory_order_acquire) <= i)
            cpu_relax();
        memcpy(buf, ring->slot[i % SLOTS], CHUNK);
        atomic_store_explicit(&ring->tail, i + 1, memory_order_release);
    }
    printf("%.3f\n", (double)n * CHUNK / (now() - t0) / 1e9);
    reap(pid);
}

/* ---- idle ---- */

static double cpu_of_children(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_CHILDREN, &ru) == -1)
        err_exit("getrusage");
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6
        + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void idle(long ms)
{
    struct timespec nap = { ms / 1000, ms % 1000 * 1000000 };
    double cpu0 = cpu_of_children(), t0 = now();
    int fds[2];
    char c = 'x';
    pid_t pid;

    if (pipe(fds) == -1)
        err_exit("pipe");
    pid = fork();
    if (pid == -1)
        err_exit("fork");
    if (pid == 0) {
        if (close(fds[1]) == -1)
            err_exit("close");
        read_full(fds[0], &c, 1);       /* blocks until the parent writes */
        _exit(EXIT_SUCCESS);
    }
    if (close(fds[0]) == -1)
        err_exit("close");
    while (nanosleep(&nap, &nap) == -1)
        if (errno != EINTR)
            err_exit("nanosleep");
    write_all(fds[1], &c, 1);
    reap(pid);
    printf("%.4f\n", (cpu_of_children() - cpu0) / (now() - t0) * 100);
}

#define MEET_REGION 8192

static void meet(long iters)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int len = snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "ipc-ref-%d", (int) getpid());
    socklen_t alen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) len);
    long warm = iters / 10;
    int listener;
    pid_t pid;
    double t0 = 0;

    listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (listener == -1)
        err_exit("socket");
    if (bind(listener, (struct sockaddr *) &addr, alen) == -1 || listen(listener, 64) == -1)
        err_exit("bind/listen");
    pid = fork_pinned();
    if (pid == 0) {
        for (long i = 0; i < warm + iters; i++) {
            char byte = 'm', control[CMSG_SPACE(sizeof(int))] = { 0 };
            struct iovec iov = { &byte, 1 };
            struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                                  .msg_control = control, .msg_controllen = sizeof control };
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
            int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            int memfd = memfd_create("ipc-ref", MFD_CLOEXEC);
            void *p;
            if (conn == -1 || memfd == -1 || ftruncate(memfd, MEET_REGION) == -1)
                err_exit("accept4/memfd_create/ftruncate");
            p = mmap(NULL, MEET_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
            if (p == MAP_FAILED)
                err_exit("mmap");
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
            if (sendmsg(conn, &msg, MSG_NOSIGNAL) != 1)
                err_exit("sendmsg");
            munmap(p, MEET_REGION);
            close(memfd);
            close(conn);
        }
        _exit(EXIT_SUCCESS);
    }
    if (close(listener) == -1)
        err_exit("close");
    for (long i = 0; i < warm + iters; i++) {
        char byte, control[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { &byte, 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control, .msg_controllen = sizeof control };
        int conn, memfd;
        void *p;
        if (i == warm)
            t0 = now();
        conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (conn == -1 || connect(conn, (struct sockaddr *) &addr, alen) == -1)
            err_exit("socket/connect");
        if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) != 1 || CMSG_FIRSTHDR(&msg) == NULL)
            err_exit("recvmsg");
        memcpy(&memfd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
        p = mmap(NULL, MEET_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (p == MAP_FAILED)
            err_exit("mmap");
        munmap(p, MEET_REGION);
        close(memfd);
        close(conn);
    }
    printf("%.1f\n", (now() - t0) / iters * 1e9);
    reap(pid);
}

int main(int argc, char *argv[])
{
    long count;
    char *end;

    if (argc != 3 && argc != 5)
        usage_exit(argv[0]);
    count = strtol(argv[2], &end, 10);
    if (*end != '\0' || count < 1)
        usage_exit(argv[0]);
    if (argc == 5) {
        parent_cpu = (int) strtol(argv[3], &end, 10);
        if (*end != '\0' || parent_cpu < 0 || parent_cpu >= CPU_SETSIZE)
            usage_exit(argv[0]);
        child_cpu = (int) strtol(argv[4], &end, 10);
        if (*end != '\0' || child_cpu < 0 || child_cpu >= CPU_SETSIZE)
            usage_exit(argv[0]);
    }

    if (strcmp(argv[1], "pipe-rtt") == 0)
        pipe_rtt(count);
    else if (strcmp(argv[1], "socket-rtt") == 0)
        socket_rtt(count);
    else if (strcmp(argv[1], "spin-rtt") == 0)
        spin_rtt(count);
    else if (strcmp(argv[1], "spin2-rtt") == 0)
        spin2_rtt(count);
    else if (strcmp(argv[1], "futex-rtt") == 0)
        futex_rtt(count);
    else if (strcmp(argv[1], "eventfd-rtt") == 0)
        eventfd_rtt(count);
    else if (strncmp(argv[1], "stream-rtt-", 11) == 0) {
        long size = strtol(argv[1] + 11, &end, 10);
        if (*end != '\0' || size < 1)
            usage_exit(argv[0]);
        stream_rtt(count, (size_t) size);
    }
    else if (strcmp(argv[1], "pipe-call") == 0)
        pipe_call(count);
    else if (strcmp(argv[1], "socket-call") == 0)
        socket_call(count);
    else if (strcmp(argv[1], "pipe-tput") == 0)
        pipe_tput(count);
    else if (strcmp(argv[1], "ring-tput") == 0)
        ring_tput(count);
    else if (strcmp(argv[1], "meet") == 0)
        meet(count);
    else if (strcmp(argv[1], "idle") == 0)
        idle(count);
    else
        usage_exit(argv[0]);
    if (fflush(stdout) == EOF)
        err_exit("fflush");
    exit(EXIT_SUCCESS);
}
