/* contract.c

   The C contract test: checks every function of include/rawipc.h against
   what its documentation promises, success and failure alike, trusting
   nothing but the header. One line per check ("ok" or "FAIL"), then a
   summary; the exit status is 1 if any check failed.

   Scaffolding (syncing with helper children, reaping them, reading /proc)
   uses the C library's own calls, so that a rawipc bug cannot hide a rawipc
   bug. A helper child reports through its exit status: 0 for success, the
   line number of its first failed step otherwise.

   The signal checks install a SIGALRM handler without SA_RESTART and make
   sure the signal arrives while the call under test is blocked: a helper
   child waits until /proc says this process is sleeping, sends SIGALRM, and
   waits until the handler has run before it supplies what the call waits
   for. The blocked system call therefore returned EINTR: the mirrors
   (rawipc_read, rawipc_write, rawipc_wait, rawipc_waitpid) must return it,
   as libc's calls do (a control check shows libc's read() does), and
   rawipc's own calls must retry. With SA_RESTART the kernel restarts the
   mirrors' calls itself.

   Usage: contract [cycles]    (cycles for the leak checks, default 5000)
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawipc.h"

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

static int checks, failures;

static void check_at(int ok, int line, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (!ok)
        failures++;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok)
        printf("   [contract.c:%d]", line);
    printf("\n");
    fflush(stdout);
}

#define CHECK(cond, ...) check_at(!!(cond), __LINE__, __VA_ARGS__)

static void section(const char *name)
{
    printf("\n== %s ==\n", name);
    fflush(stdout);
}

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EFAULT: return "EFAULT";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOMEM: return "ENOMEM";
    case ENOTSOCK: return "ENOTSOCK";
    case EPROTOTYPE: return "EPROTOTYPE";
    case EPIPE: return "EPIPE";
    case ESRCH: return "ESRCH";
    default: return "another errno";
    }
}

/* `call` must return -1 (as a signed integer) and set errno to `e`. */
#define CHECK_ERR(call, e, what)                                              \
    do {                                                                      \
        long long r_;                                                         \
        int e_;                                                               \
        errno = 0;                                                            \
        r_ = (long long) (call);                                              \
        e_ = errno;                                                           \
        check_at(r_ == -1 && e_ == (e), __LINE__,                             \
                 "%s -> -1, %s (got %lld, %s %d)", what, errname(e), r_,     \
                 errname(e_), e_);                                            \
    } while (0)

/* `call` must return NULL and set errno to `e`. */
#define CHECK_NULL(call, e, what)                                             \
    do {                                                                      \
        void *p_;                                                             \
        int e_;                                                               \
        errno = 0;                                                            \
        p_ = (call);                                                          \
        e_ = errno;                                                           \
        check_at(p_ == NULL && e_ == (e), __LINE__,                           \
                 "%s -> NULL, %s (got %p, %s %d)", what, errname(e), p_,     \
                 errname(e_), e_);                                            \
    } while (0)

/* `call` must return exactly `want`. */
#define CHECK_RET(call, want, what)                                           \
    do {                                                                      \
        long long r_, w_ = (long long) (want);                                \
        int e_;                                                               \
        errno = 0;                                                            \
        r_ = (long long) (call);                                              \
        e_ = errno;                                                           \
        check_at(r_ == w_, __LINE__, "%s -> %lld (got %lld, errno %s %d)",    \
                 what, w_, r_, errname(e_), e_);                              \
    } while (0)

/* `call` must return what `libc_call` returns, with the same errno. */
#define CHECK_SAME_AS_LIBC(call, libc_call, what)                             \
    do {                                                                      \
        long long r_, l_;                                                     \
        int e_, le_;                                                          \
        errno = 0;                                                            \
        l_ = (long long) (libc_call);                                         \
        le_ = errno;                                                          \
        errno = 0;                                                            \
        r_ = (long long) (call);                                              \
        e_ = errno;                                                           \
        check_at(r_ == l_ && e_ == le_, __LINE__,                             \
                 "%s -> as libc: %lld, %s %d (got %lld, %s %d)", what, l_,    \
                 errname(le_), le_, r_, errname(e_), e_);                     \
    } while (0)

/* ------------------------------------------------------------------ */
/* Scaffolding: plain libc                                             */

static void die(const char *what)
{
    perror(what);
    printf("FAIL scaffolding: %s\n", what);
    exit(2);
}

/* In a helper child: give up on the first failed step, reporting its line. */
#define STEP(cond)                                                            \
    do {                                                                      \
        if (!(cond))                                                          \
            _exit(__LINE__ % 250 + 1);                                        \
    } while (0)

/* Forks a helper child (with libc's fork) that runs fn and _exits with its result. */
static pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == -1)
        die("fork");
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

/* Reaps `pid` with libc's waitpid and returns its raw status. */
static int reap(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) == -1)
        if (errno != EINTR)
            die("waitpid");
    return status;
}

static void check_child_ok(pid_t pid, const char *what)
{
    int st = reap(pid);

    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (child: %s %d)", what,
          WIFEXITED(st) ? "exit" : "signal",
          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void xpipe(int fds[2])
{
    if (pipe(fds) == -1)
        die("pipe");
}

static void xclose(int fd)
{
    if (close(fd) == -1)
        die("close");
}

/* Reads exactly n bytes with libc's read; 0 on success. */
static int read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, (char *) buf + got, n - got);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t) r;
    }
    return 0;
}

static int write_exact(int fd, const void *buf, size_t n)
{
    size_t put = 0;

    while (put < n) {
        ssize_t r = write(fd, (const char *) buf + put, n - put);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t) r;
    }
    return 0;
}

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char) (seed * 31u + i * 7u + (i >> 8));
}

static int matches(const unsigned char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char) (seed * 31u + i * 7u + (i >> 8)))
            return 0;
    return 1;
}

/* The lowest free fd number: what the next open() would return. */
/* Whether this program runs under valgrind, whose address space manager and
   fd table answer a few calls differently from the kernel (its preload
   library is in LD_PRELOAD). */
static int under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static int next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);

    if (fd == -1)
        die("open /dev/null");
    xclose(fd);
    return fd;
}

/* An fd number that is certainly not open. */
static int closed_fd(void)
{
    return next_fd();
}

/* An address with nothing mapped at it (a page mapped, then unmapped). */
static void *unmapped_page(void)
{
    static void *page;

    if (page == NULL) {
        page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED || munmap(page, 4096) == -1)
            die("mmap/munmap");
    }
    return page;
}

static int map_count(void)
{
    char line[512];
    int n = 0;
    FILE *f = fopen("/proc/self/maps", "r");

    if (f == NULL)
        die("fopen /proc/self/maps");
    while (fgets(line, sizeof line, f) != NULL)
        if (strchr(line, '\n') != NULL)
            n++;
    fclose(f);
    return n;
}

static void set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags == -1)
        die("fcntl F_GETFL");
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (fcntl(fd, F_SETFL, flags) == -1)
        die("fcntl F_SETFL");
}

static int is_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    return flags != -1 && (flags & FD_CLOEXEC);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Waits (up to ~30 s) until `pid` sleeps in the kernel ("S" in /proc/pid/stat). */
static int wait_until_sleeping(pid_t pid)
{
    char path[64], buf[512];

    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    for (int tries = 0; tries < 30000; tries++) {
        int fd = open(path, O_RDONLY);
        ssize_t n;
        char *paren;

        if (fd == -1)
            return -1;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            return -1;
        buf[n] = '\0';
        paren = strrchr(buf, ')');
        if (paren != NULL && paren[1] == ' ' && paren[2] == 'S')
            return 0;
        sleep_ms(1);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* The SIGALRM set-up for the EINTR checks                             */

static volatile sig_atomic_t alarms;
static int alarm_pipe[2] = { -1, -1 };     /* the handler tells the helper it ran */

static void on_alarm(int sig)
{
    int saved = errno;

    (void) sig;
    alarms++;
    if (alarm_pipe[1] != -1)
        (void) write(alarm_pipe[1], "a", 1);
    errno = saved;
}

static void install_alarm_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART: a blocked call fails with EINTR */
    if (sigaction(SIGALRM, &sa, NULL) == -1)
        die("sigaction SIGALRM");
    xpipe(alarm_pipe);
}

/* What a helper child does after interrupting its parent: supply what the
   blocked call waits for. Returns 0 if all went well. */
struct interrupter {
    int (*then)(void *);
    void *arg;
};

static int interrupt_parent(void *p)
{
    struct interrupter *it = p;
    pid_t parent = getppid();
    char c;

    STEP(wait_until_sleeping(parent) == 0);
    STEP(kill(parent, SIGALRM) == 0);
    STEP(read_exact(alarm_pipe[0], &c, 1) == 0);      /* the handler has run */
    return it->then == NULL ? 0 : it->then(it->arg);
}

/* Forks a helper that interrupts this process's next blocking call with
   SIGALRM, then runs then(arg). */
static pid_t interrupt_next_call(struct interrupter *it)
{
    alarms = 0;
    return spawn(interrupt_parent, it);
}

/* ------------------------------------------------------------------ */
/* rawipc_version                                                      */

static void test_version(void)
{
    const char *v = rawipc_version();
    int major, minor, patch, end = 0;

    section("rawipc_version");
    CHECK(v != NULL, "rawipc_version() is not NULL");
    if (v == NULL)
        return;
    CHECK(sscanf(v, "%d.%d.%d%n", &major, &minor, &patch, &end) == 3 && end > 0,
          "rawipc_version() reads as MAJOR.MINOR.PATCH (\"%s\")", v);
    CHECK(strcmp(rawipc_version(), v) == 0, "rawipc_version() says the same every time");
}

/* ------------------------------------------------------------------ */
/* Shared memory                                                       */

static int *glob_var;

static void test_notes_shared_counter(void)
{
    pid_t pid;
    int st;

    section("shared memory: the notes' example");
    glob_var = rawipc_shared_alloc(sizeof *glob_var);
    CHECK(glob_var != NULL, "rawipc_shared_alloc(sizeof(int)) gives memory");
    if (glob_var == NULL)
        return;
    *glob_var = 1;
    pid = rawipc_fork();
    if (pid == 0) {
        *glob_var = 5;
        _exit(EXIT_SUCCESS);
    }
    CHECK(pid > 0, "rawipc_fork() gives the parent the child's pid (%d)", (int) pid);
    CHECK_RET(rawipc_wait(&st), pid, "rawipc_wait() reaps that child");
    CHECK(*glob_var == 5, "the parent sees the child's 5 (sees %d)", *glob_var);
    CHECK_RET(rawipc_shared_free(glob_var, sizeof *glob_var), 0, "rawipc_shared_free()");
}

struct shm_args {
    unsigned char *mem;
    size_t size;
    int go[2];                  /* parent -> child: "look now" */
    int done[2];                /* child -> parent: "I wrote" */
};

static int shm_child(void *p)
{
    struct shm_args *a = p;
    char c;

    xclose(a->go[1]);
    xclose(a->done[0]);
    /* It sees what the parent wrote after the fork... */
    STEP(read_exact(a->go[0], &c, 1) == 0);
    STEP(matches(a->mem, a->size, 9));
    /* ...and the parent sees what it writes. */
    fill(a->mem, a->size, 10);
    STEP(write_exact(a->done[1], "d", 1) == 0);
    /* Freeing its own mapping leaves the parent's alone. */
    STEP(rawipc_shared_free(a->mem, a->size) == 0);
    return 0;
}

static void test_shared_memory(void)
{
    const size_t page = (size_t) sysconf(_SC_PAGESIZE);
    struct shm_args a;
    unsigned char *mem;
    int zero = 1;
    pid_t pid;
    char c;

    section("shared memory");
    a.size = 3 * page + 1;
    mem = rawipc_shared_alloc(a.size);
    CHECK(mem != NULL, "rawipc_shared_alloc(3 pages + 1 byte) gives memory");
    if (mem == NULL)
        return;
    a.mem = mem;
    CHECK(((uintptr_t) mem % page) == 0, "the memory is page-aligned");
    for (size_t i = 0; i < a.size; i++)
        zero &= mem[i] == 0;
    CHECK(zero, "the memory is zero-filled");

    xpipe(a.go);
    xpipe(a.done);
    pid = spawn(shm_child, &a);
    xclose(a.go[0]);
    xclose(a.done[1]);
    fill(mem, a.size, 9);       /* written after the fork */
    if (write_exact(a.go[1], "g", 1) != 0 || read_exact(a.done[0], &c, 1) != 0)
        die("shm sync");
    CHECK(matches(mem, a.size, 10), "parent and child see each other's writes, last byte included");
    check_child_ok(pid, "the child saw the parent's writes made after fork, and freed its mapping");
    CHECK(matches(mem, a.size, 10), "after the child freed its mapping, the parent's is intact");
    mem[a.size - 1] = 0x5a;
    CHECK(mem[a.size - 1] == 0x5a, "and still writable");
    xclose(a.go[1]);
    xclose(a.done[0]);

    CHECK_ERR(rawipc_shared_free(NULL, a.size), EINVAL, "rawipc_shared_free(NULL, size)");
    CHECK_ERR(rawipc_shared_free(mem + 1, a.size - 1), EINVAL, "rawipc_shared_free(misaligned)");
    CHECK_ERR(rawipc_shared_free(mem, 0), EINVAL, "rawipc_shared_free(addr, 0)");
    CHECK(mem[0] == (unsigned char) (10 * 31u) && mem[a.size - 1] == 0x5a,
          "after those failures the memory is still mapped and intact");
    CHECK_RET(rawipc_shared_free(mem, a.size), 0, "rawipc_shared_free(addr, size)");

    CHECK_NULL(rawipc_shared_alloc(0), EINVAL, "rawipc_shared_alloc(0)");
    /* Above SSIZE_MAX no size is possible: EINVAL, as for every length. */
    CHECK_NULL(rawipc_shared_alloc(SIZE_MAX), EINVAL, "rawipc_shared_alloc(SIZE_MAX)");
    CHECK_NULL(rawipc_shared_alloc(SIZE_MAX - page), EINVAL, "rawipc_shared_alloc(SIZE_MAX - page)");
    CHECK_NULL(rawipc_shared_alloc((size_t) PTRDIFF_MAX + 1), EINVAL,
               "rawipc_shared_alloc(PTRDIFF_MAX + 1)");
    /* A possible size that is too much memory: ENOMEM. */
    if (!under_valgrind()) /* valgrind's mmap answers EINVAL itself */
        CHECK_NULL(rawipc_shared_alloc((size_t) PTRDIFF_MAX), ENOMEM, "rawipc_shared_alloc(PTRDIFF_MAX)");
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

static int atfork_prepare_runs, atfork_parent_runs, atfork_child_runs;

static void on_prepare(void) { atfork_prepare_runs++; }
static void on_parent(void) { atfork_parent_runs++; }
static void on_child(void) { atfork_child_runs++; }

static int fork_eagain_child(void *unused)
{
    struct rlimit none = { 0, 0 };
    pid_t pid;

    (void) unused;
    /* root ignores RLIMIT_NPROC: become an ordinary user first. */
    if (geteuid() == 0 && (setgid(65534) == -1 || setuid(65534) == -1))
        return 77;
    STEP(setrlimit(RLIMIT_NPROC, &none) == 0);
    errno = 0;
    pid = rawipc_fork();
    if (pid == 0)
        _exit(0);
    STEP(pid == -1);
    STEP(errno == EAGAIN);
    return 0;
}

static void test_fork(void)
{
    pthread_mutex_t mutex;
    pthread_mutexattr_t attr;
    int prepare0, parent0, child0;
    pid_t me = getpid(), pid;
    int st;

    section("rawipc_fork");
    if (pthread_atfork(on_prepare, on_parent, on_child) != 0)
        die("pthread_atfork");

    /* A recursive mutex the parent holds: only a child whose libc knows it
       is a new thread (libc's fork, not a raw system call) finds it busy. */
    if (pthread_mutexattr_init(&attr) != 0
        || pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) != 0
        || pthread_mutex_init(&mutex, &attr) != 0 || pthread_mutex_lock(&mutex) != 0)
        die("pthread_mutex");

    prepare0 = atfork_prepare_runs;
    parent0 = atfork_parent_runs;
    child0 = atfork_child_runs;
    fflush(stdout);
    pid = rawipc_fork();
    if (pid == 0) {
        int step = 0;
        if (atfork_prepare_runs != prepare0 + 1)
            step = 1;
        else if (atfork_child_runs != child0 + 1)
            step = 2;
        else if (atfork_parent_runs != parent0)
            step = 3;
        else if (getppid() != me || getpid() == me)
            step = 4;
        else if (pthread_mutex_trylock(&mutex) != EBUSY)
            step = 5;
        _exit(step);
    }
    CHECK(pid > 0, "rawipc_fork() returns the child's pid in the parent");
    CHECK(atfork_prepare_runs == prepare0 + 1, "pthread_atfork prepare handler ran once");
    CHECK(atfork_parent_runs == parent0 + 1, "pthread_atfork parent handler ran once in the parent");
    CHECK(atfork_child_runs == child0, "the child handler did not run in the parent");
    st = reap(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "in the child: prepare and child handlers ran, parent handler did not, getppid() is "
          "the parent, and libc knows it is a new thread (child exit %d; 1-5 name the failed one)",
          WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    pthread_mutex_unlock(&mutex);
    pthread_mutex_destroy(&mutex);
    pthread_mutexattr_destroy(&attr);

    st = reap(spawn(fork_eagain_child, NULL));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        printf("skip rawipc_fork() over RLIMIT_NPROC -> -1, EAGAIN (cannot drop root here)\n");
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "rawipc_fork() over RLIMIT_NPROC -> -1, EAGAIN, no child (helper exit %d)",
              WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

/* ------------------------------------------------------------------ */
/* wait and waitpid                                                    */

static void test_wait(void)
{
    int st, rel[2];
    pid_t pid, got;
    char c = 'x';

    section("rawipc_wait, rawipc_waitpid");
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;                       /* no stray children from earlier sections */

    CHECK_ERR(rawipc_wait(&st), ECHILD, "rawipc_wait() with no child");
    CHECK_ERR(rawipc_wait(NULL), ECHILD, "rawipc_wait(NULL) with no child");
    CHECK_ERR(rawipc_waitpid(-1, &st, WNOHANG), ECHILD, "rawipc_waitpid(-1, WNOHANG) with no child");
    CHECK_ERR(rawipc_waitpid(1, &st, 0), ECHILD, "rawipc_waitpid(1) (not our child)");
    CHECK_ERR(rawipc_waitpid(-99999, &st, 0), ECHILD, "rawipc_waitpid(-99999) (no such group)");

    /* Exit status. */
    pid = rawipc_fork();
    if (pid == 0)
        _exit(42);
    st = -1;
    got = rawipc_wait(&st);
    CHECK(got == pid, "rawipc_wait() returns the child's pid (%d, got %d)", (int) pid, (int) got);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42 && !WIFSIGNALED(st),
          "_exit(42): WIFEXITED, WEXITSTATUS == 42 (status 0x%x)", st);

    /* Killed by a signal; WNOHANG returns 0 while it lives. */
    pid = rawipc_fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    st = -7;
    CHECK_RET(rawipc_waitpid(pid, &st, WNOHANG), 0, "rawipc_waitpid(pid, WNOHANG) while the child lives");
    CHECK_RET(rawipc_waitpid(-1, NULL, WNOHANG), 0, "rawipc_waitpid(-1, NULL, WNOHANG) while it lives");
    if (kill(pid, SIGKILL) == -1)
        die("kill");
    st = -1;
    CHECK_RET(rawipc_waitpid(pid, &st, 0), pid, "rawipc_waitpid(pid) after SIGKILL");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !WIFEXITED(st),
          "WIFSIGNALED, WTERMSIG == SIGKILL (status 0x%x)", st);
    CHECK_ERR(rawipc_waitpid(pid, &st, 0), ECHILD, "rawipc_waitpid(pid) once reaped");

    /* Bad options: EINVAL, and the child is still there to reap. */
    xpipe(rel);
    pid = rawipc_fork();
    if (pid == 0) {
        char b;
        close(rel[1]);
        _exit(read(rel[0], &b, 1) == 1 ? 7 : 8);
    }
    xclose(rel[0]);
    CHECK_ERR(rawipc_waitpid(pid, &st, -1), EINVAL, "rawipc_waitpid(options -1)");
    CHECK_ERR(rawipc_waitpid(pid, &st, 0x10000), EINVAL, "rawipc_waitpid(options 0x10000, unknown)");
    CHECK_ERR(rawipc_waitpid(-1, &st, WNOWAIT), EINVAL, "rawipc_waitpid(options WNOWAIT, waitid's)");
    CHECK_ERR(rawipc_waitpid(pid, &st, WEXITED), EINVAL, "rawipc_waitpid(options WEXITED, waitid's)");
    if (write_exact(rel[1], &c, 1) != 0)
        die("write");
    xclose(rel[1]);
    st = -1;
    CHECK_RET(rawipc_waitpid(pid, &st, 0), pid, "after EINVAL, nothing lost: the child is reaped");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "with its status (0x%x)", st);

    /* Options pass through as in libc; a bad status pointer is EFAULT. */
    pid = rawipc_fork();
    if (pid == 0)
        _exit(6);
    st = -1;
    CHECK_RET(rawipc_waitpid(pid, &st, __WALL), pid, "rawipc_waitpid(pid, __WALL)");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 6, "with its status (0x%x)", st);
    pid = rawipc_fork();
    if (pid == 0)
        _exit(6);
    CHECK_RET(rawipc_waitpid(pid, NULL, __WNOTHREAD), pid, "rawipc_waitpid(pid, NULL, __WNOTHREAD)");
    pid = rawipc_fork();
    if (pid == 0)
        _exit(6);
    CHECK_ERR(rawipc_waitpid(pid, (int *) -1, 0), EFAULT, "rawipc_waitpid(pid, (int *) -1)");
    CHECK_SAME_AS_LIBC(rawipc_waitpid(pid, NULL, WNOHANG), waitpid(pid, NULL, WNOHANG),
                       "then the child is reaped, as with waitpid()");
    pid = rawipc_fork();
    if (pid == 0)
        _exit(6);
    CHECK_ERR(rawipc_wait(unmapped_page()), EFAULT, "rawipc_wait(an unmapped page)");

    /* Process groups: 0 is ours, -pgid a given one. */
    pid = rawipc_fork();
    if (pid == 0)
        _exit(3);
    st = -1;
    CHECK_RET(rawipc_waitpid(0, &st, 0), pid, "rawipc_waitpid(0): a child in our process group");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "with its status (0x%x)", st);
    pid = rawipc_fork();
    if (pid == 0)
        _exit(4);
    CHECK_RET(rawipc_waitpid(-getpgrp(), NULL, 0), pid, "rawipc_waitpid(-pgid, NULL): a child in that group");
    {
        int libc_errno;
        errno = 0;
        (void) waitpid(INT_MIN, NULL, WNOHANG);
        libc_errno = errno;
        errno = 0;
        CHECK(rawipc_waitpid(INT_MIN, NULL, WNOHANG) == -1 && errno == libc_errno,
              "rawipc_waitpid(INT_MIN) fails like waitpid(INT_MIN) (libc: %s %d)",
              errname(libc_errno), libc_errno);
    }

    /* Stopped and continued. */
    pid = rawipc_fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(5);
    }
    st = -1;
    CHECK_RET(rawipc_waitpid(pid, &st, WUNTRACED), pid, "rawipc_waitpid(WUNTRACED) sees a stopped child");
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "WIFSTOPPED, WSTOPSIG == SIGSTOP (status 0x%x)", st);
    if (kill(pid, SIGCONT) == -1)
        die("kill SIGCONT");
    st = -1;
    got = rawipc_waitpid(pid, &st, WCONTINUED);
    if (got == pid && WIFEXITED(st)) {
        /* It may already have exited: then WCONTINUED is not reported. */
        CHECK(WEXITSTATUS(st) == 5, "rawipc_waitpid(WCONTINUED): exited with 5 before we looked");
    } else {
        CHECK(got == pid && WIFCONTINUED(st), "rawipc_waitpid(WCONTINUED) sees it continued (status 0x%x)", st);
        st = -1;
        CHECK_RET(rawipc_waitpid(pid, &st, 0), pid, "then reaps it");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "with status 5 (0x%x)", st);
    }
}

/* ------------------------------------------------------------------ */
/* Pipes                                                               */

static int pipe_writer_child(void *p)
{
    int *fds = p;

    STEP(rawipc_close(fds[0]) == 0);
    STEP(rawipc_write(fds[1], "hello, ", 7) == 7);
    STEP(rawipc_write(fds[1], "parent", 6) == 6);
    return 0;                   /* exits with the write end open: death closes it */
}

struct big_transfer {
    int fd;
    size_t skip;                /* bytes to read and ignore first */
    size_t size;
    unsigned seed;
};

static int big_reader(void *p)
{
    struct big_transfer *t = p;
    unsigned char *buf = malloc(t->skip + t->size);

    STEP(buf != NULL);
    STEP(read_exact(t->fd, buf, t->skip + t->size) == 0);
    STEP(matches(buf + t->skip, t->size, t->seed));
    free(buf);
    return 0;
}

static int read_some_then_quit(void *p)
{
    int *fds = p;
    static unsigned char buf[131072];

    close(fds[1]);
    STEP(read_exact(fds[0], buf, sizeof buf) == 0);
    return 0;                   /* closes the read end */
}

/* A child that writes to a pipe with no reader, SIGPIPE at SIG_DFL. */
static int write_to_broken_pipe(void *unused)
{
    int p[2];

    (void) unused;
    STEP(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    STEP(pipe(p) == 0);
    STEP(close(p[0]) == 0);
    (void) rawipc_write(p[1], "x", 1);
    return 0;                   /* not reached: SIGPIPE killed it */
}

static void check_no_sigpipe(const char *after)
{
    struct sigaction now;
    sigset_t pending, mask;

    if (sigaction(SIGPIPE, NULL, &now) == -1 || sigpending(&pending) == -1
        || sigprocmask(SIG_BLOCK, NULL, &mask) == -1)
        die("sigaction/sigpending");
    CHECK(now.sa_handler == SIG_DFL, "%s: SIGPIPE's disposition is still SIG_DFL", after);
    CHECK(!sigismember(&pending, SIGPIPE), "%s: no SIGPIPE is left pending", after);
    CHECK(!sigismember(&mask, SIGPIPE), "%s: SIGPIPE is not left blocked", after);
}

static void test_pipe(void)
{
    int fds[2] = { -7, -7 };
    unsigned char buf[256];
    struct big_transfer t;
    const size_t big = 4u << 20;
    unsigned char *data;
    ssize_t n;
    pid_t pid;

    section("rawipc_pipe, rawipc_read, rawipc_write, rawipc_close");
    CHECK_ERR(rawipc_pipe(NULL), EFAULT, "rawipc_pipe(NULL)");
    CHECK_ERR(rawipc_pipe((int *) -1), EFAULT, "rawipc_pipe((int *) -1)");
    CHECK_ERR(rawipc_pipe(unmapped_page()), EFAULT, "rawipc_pipe(an unmapped page)");
    CHECK_RET(rawipc_pipe(fds), 0, "rawipc_pipe(fds)");
    CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1], "two distinct fds (%d, %d)", fds[0], fds[1]);
    CHECK(!is_cloexec(fds[0]) && !is_cloexec(fds[1]), "neither is close-on-exec, as with pipe()");
    CHECK_RET(rawipc_write(fds[1], "abc", 3), 3, "rawipc_write(write end, 3 bytes)");
    CHECK_ERR(rawipc_write(fds[0], "abc", 3), EBADF, "rawipc_write(read end)");
    CHECK_ERR(rawipc_read(fds[1], buf, sizeof buf), EBADF, "rawipc_read(write end)");
    CHECK_ERR(rawipc_read(fds[0], NULL, 10), EFAULT, "rawipc_read(buf NULL, 10)");
    CHECK_ERR(rawipc_read(fds[0], unmapped_page(), 10), EFAULT, "rawipc_read(buf unmapped, 10)");
    /* Counts above SSIZE_MAX: whatever the kernel answers (volatile, so that
       the compiler does not refuse the libc calls as overflows). */
    {
        volatile size_t above = (size_t) SSIZE_MAX + 1, max = SIZE_MAX;
        CHECK_SAME_AS_LIBC(rawipc_read(fds[0], buf, above), read(fds[0], buf, above), "rawipc_read(count SSIZE_MAX + 1)");
        CHECK_SAME_AS_LIBC(rawipc_read(fds[0], buf, max), read(fds[0], buf, max), "rawipc_read(count SIZE_MAX)");
        CHECK_SAME_AS_LIBC(rawipc_write(fds[1], buf, above), write(fds[1], buf, above),
                           "rawipc_write(count SSIZE_MAX + 1)");
    }
    CHECK_RET(rawipc_read(fds[0], NULL, 0), 0, "rawipc_read(buf NULL, 0)");
    CHECK_RET(rawipc_read(fds[0], buf, 0), 0, "rawipc_read(buf, 0)");
    memset(buf, 0, sizeof buf);
    CHECK(rawipc_read(fds[0], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0,
          "after those, nothing lost: rawipc_read gets \"abc\"");
    CHECK_ERR(rawipc_write(fds[1], NULL, 10), EFAULT, "rawipc_write(buf NULL, 10)");
    CHECK_ERR(rawipc_write(fds[1], unmapped_page(), 10), EFAULT, "rawipc_write(buf unmapped, 10)");
    CHECK_RET(rawipc_write(fds[1], NULL, 0), 0, "rawipc_write(buf NULL, 0)");
    set_nonblocking(fds[0], 1);
    CHECK_ERR(rawipc_read(fds[0], buf, sizeof buf), EAGAIN, "rawipc_read(empty non-blocking pipe)");
    set_nonblocking(fds[0], 0);

    /* A non-blocking pipe that fills: part written, then EAGAIN. */
    data = malloc(big);
    if (data == NULL)
        die("malloc");
    fill(data, big, 1);
    set_nonblocking(fds[1], 1);
    n = rawipc_write(fds[1], data, big);
    CHECK(n > 0 && (size_t) n < big, "rawipc_write(non-blocking, 4 MiB) -> what fit (%zd bytes)", n);
    CHECK_ERR(rawipc_write(fds[1], data, big), EAGAIN, "rawipc_write(non-blocking, full pipe)");
    set_nonblocking(fds[1], 0);

    CHECK_RET(rawipc_close(fds[0]), 0, "rawipc_close(read end)");
    CHECK_RET(rawipc_close(fds[1]), 0, "rawipc_close(write end)");
    CHECK_ERR(rawipc_close(fds[0]), EBADF, "rawipc_close(an fd already closed)");
    CHECK_ERR(rawipc_close(-1), EBADF, "rawipc_close(-1)");
    CHECK_ERR(rawipc_close(INT_MAX), EBADF, "rawipc_close(INT_MAX)");
    CHECK_ERR(rawipc_read(-1, buf, sizeof buf), EBADF, "rawipc_read(-1)");
    CHECK_ERR(rawipc_read(closed_fd(), buf, sizeof buf), EBADF, "rawipc_read(closed fd)");
    CHECK_ERR(rawipc_write(-1, "x", 1), EBADF, "rawipc_write(-1)");
    CHECK_ERR(rawipc_write(closed_fd(), "x", 1), EBADF, "rawipc_write(closed fd)");

    /* The notes: the child writes, the parent reads until end of file. */
    CHECK_RET(rawipc_pipe(fds), 0, "rawipc_pipe(fds) for a child");
    pid = spawn(pipe_writer_child, fds);
    CHECK_RET(rawipc_close(fds[1]), 0, "the parent closes its write end");
    {
        size_t got = 0;
        while ((n = rawipc_read(fds[0], buf + got, sizeof buf - got)) > 0)
            got += (size_t) n;
        CHECK(n == 0 && got == 13 && memcmp(buf, "hello, parent", 13) == 0,
              "the parent reads \"hello, parent\" then 0, end of file, once the writer exited");
    }
    CHECK_RET(rawipc_read(fds[0], buf, sizeof buf), 0, "and 0 again on the next read");
    check_child_ok(pid, "the child's writes succeeded");
    CHECK_RET(rawipc_close(fds[0]), 0, "rawipc_close(read end)");

    /* A big write to a reader: short writes are continued, bytes intact. */
    CHECK_RET(rawipc_pipe(fds), 0, "rawipc_pipe(fds) for a 4 MiB transfer");
    t.fd = fds[0];
    t.skip = 0;
    t.size = big;
    t.seed = 1;
    pid = spawn(big_reader, &t);
    CHECK_RET(rawipc_write(fds[1], data, big), (ssize_t) big, "rawipc_write(4 MiB) to a reading child writes it all");
    check_child_ok(pid, "the child read the 4 MiB intact");
    CHECK_RET(rawipc_close(fds[0]), 0, "rawipc_close");
    CHECK_RET(rawipc_close(fds[1]), 0, "rawipc_close");

    /* A write to a pipe with no reader raises SIGPIPE, as write(2) does. */
    {
        int st = reap(spawn(write_to_broken_pipe, NULL));
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE,
              "rawipc_write(no reader left), SIGPIPE at SIG_DFL: the writer dies of SIGPIPE (status 0x%x)", st);
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("signal SIGPIPE");
    CHECK_RET(rawipc_pipe(fds), 0, "rawipc_pipe(fds) for EPIPE");
    CHECK_RET(rawipc_close(fds[0]), 0, "close the only read end");
    CHECK_ERR(rawipc_write(fds[1], "x", 1), EPIPE, "rawipc_write(no reader left), SIGPIPE ignored");
    if (signal(SIGPIPE, SIG_DFL) == SIG_ERR)
        die("signal SIGPIPE");
    CHECK_RET(rawipc_close(fds[1]), 0, "rawipc_close(write end)");

    /* The reader goes away in the middle of a big write: the bytes written
       so far are reported, then EPIPE. */
    CHECK_RET(rawipc_pipe(fds), 0, "rawipc_pipe(fds) for a reader that quits");
    pid = spawn(read_some_then_quit, fds);
    CHECK_RET(rawipc_close(fds[0]), 0, "the parent closes its read end");
    n = rawipc_write_all(fds[1], data, big);
    CHECK(n >= 131072 && (size_t) n < big,
          "rawipc_write_all(4 MiB), reader quits after 128 KiB -> the count written (%zd)", n);
    check_no_sigpipe("after the short write");
    CHECK_ERR(rawipc_write_all(fds[1], data, big), EPIPE, "then rawipc_write_all -> EPIPE");
    check_child_ok(pid, "the reader read its 128 KiB");
    CHECK_RET(rawipc_close(fds[1]), 0, "rawipc_close");
    free(data);

    /* Out of file descriptors: EMFILE, the array untouched, nothing leaked. */
    {
        struct rlimit old, tight;
        int before = next_fd();
        if (getrlimit(RLIMIT_NOFILE, &old) == -1)
            die("getrlimit");
        tight = old;
        tight.rlim_cur = (rlim_t) before + 1;   /* room for one fd, not two */
        if (setrlimit(RLIMIT_NOFILE, &tight) == -1)
            die("setrlimit");
        fds[0] = fds[1] = -7;
        CHECK_ERR(rawipc_pipe(fds), EMFILE, "rawipc_pipe() with room for one fd");
        if (!under_valgrind()) /* valgrind's pipe writes fds even when it fails */
            CHECK(fds[0] == -7 && fds[1] == -7, "fds is left untouched");
        if (!under_valgrind()) { /* valgrind's socketpair ignores the lowered limit */
            CHECK_ERR(rawipc_msg_socketpair(fds), EMFILE, "rawipc_msg_socketpair() with room for one fd");
            CHECK(fds[0] == -7 && fds[1] == -7, "fds is left untouched");
        }
        if (setrlimit(RLIMIT_NOFILE, &old) == -1)
            die("setrlimit");
        CHECK(next_fd() == before, "no fd leaked by the failures (next fd %d)", before);
    }
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static const size_t msg_sizes[] = { 1, 7, 300, 4096, 65000, 2, 1000, 3 };
#define N_MSGS (sizeof msg_sizes / sizeof msg_sizes[0])

static int msg_sender_child(void *p)
{
    int *sv = p;
    static unsigned char buf[65536];

    STEP(rawipc_close(sv[0]) == 0);
    for (size_t i = 0; i < N_MSGS; i++) {
        fill(buf, msg_sizes[i], (unsigned) i);
        STEP(rawipc_msg_send(sv[1], buf, msg_sizes[i]) == (ssize_t) msg_sizes[i]);
    }
    return 0;
}

static void test_msg(void)
{
    static unsigned char buf[131072];
    int sv[2] = { -7, -7 }, type = 0, domain = 0;
    socklen_t len = sizeof type;
    ssize_t n;
    pid_t pid;
    int ok;

    section("rawipc_msg_socketpair, rawipc_msg_send, rawipc_msg_recv, rawipc_msg_size");
    CHECK_ERR(rawipc_msg_socketpair(NULL), EFAULT, "rawipc_msg_socketpair(NULL)");
    CHECK_ERR(rawipc_msg_socketpair((int *) 7), EFAULT, "rawipc_msg_socketpair((int *) 7)");
    CHECK_ERR(rawipc_msg_socketpair2((int *) -1, SOCK_CLOEXEC), EFAULT, "rawipc_msg_socketpair2((int *) -1)");
    CHECK_ERR(rawipc_msg_socketpair2(sv, 1), EINVAL, "rawipc_msg_socketpair2(flags 1: a socket type bit)");
    CHECK_ERR(rawipc_msg_socketpair2(sv, O_APPEND), EINVAL, "rawipc_msg_socketpair2(flags O_APPEND)");
    CHECK_ERR(rawipc_msg_socketpair2(sv, -1), EINVAL, "rawipc_msg_socketpair2(flags -1)");
    CHECK_RET(rawipc_msg_socketpair2(sv, SOCK_CLOEXEC | SOCK_NONBLOCK), 0,
              "rawipc_msg_socketpair2(SOCK_CLOEXEC | SOCK_NONBLOCK)");
    CHECK(is_cloexec(sv[0]) && is_cloexec(sv[1]) && (fcntl(sv[0], F_GETFL) & O_NONBLOCK)
              && (fcntl(sv[1], F_GETFL) & O_NONBLOCK),
          "both close-on-exec and non-blocking");
    CHECK_ERR(rawipc_msg_recv(sv[0], buf, sizeof buf), EAGAIN, "rawipc_msg_recv(non-blocking, none)");
    xclose(sv[0]);
    xclose(sv[1]);
    CHECK_RET(rawipc_msg_socketpair2(sv, SOCK_CLOEXEC), 0, "rawipc_msg_socketpair2(SOCK_CLOEXEC)");
    CHECK(is_cloexec(sv[0]) && is_cloexec(sv[1]) && !(fcntl(sv[0], F_GETFL) & O_NONBLOCK),
          "both close-on-exec, blocking");
    xclose(sv[0]);
    xclose(sv[1]);
    CHECK_RET(rawipc_msg_socketpair(sv), 0, "rawipc_msg_socketpair(fds)");
    CHECK(sv[0] >= 0 && sv[1] >= 0 && sv[0] != sv[1], "two distinct fds (%d, %d)", sv[0], sv[1]);
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof domain;
    getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &domain, &len);
    CHECK(type == SOCK_SEQPACKET && domain == AF_UNIX, "they are AF_UNIX, SOCK_SEQPACKET sockets");
    CHECK(!is_cloexec(sv[0]) && !is_cloexec(sv[1]), "neither is close-on-exec, as with socketpair()");

    /* Boundaries, both ways: several sizes queued, received one by one. */
    for (int dir = 0; dir < 2; dir++) {
        int from = sv[dir], to = sv[1 - dir];
        static unsigned char out[65536];
        ok = 1;
        for (size_t i = 0; i < N_MSGS; i++) {
            fill(out, msg_sizes[i], (unsigned) i + 50);
            ok &= rawipc_msg_send(from, out, msg_sizes[i]) == (ssize_t) msg_sizes[i];
        }
        CHECK(ok, "fds[%d] -> fds[%d]: %zu messages of 1 to 65000 bytes sent, each returning its length",
              dir, 1 - dir, N_MSGS);
        ok = 1;
        for (size_t i = 0; i < N_MSGS; i++) {
            ok &= rawipc_msg_size(to) == (ssize_t) msg_sizes[i];
            n = rawipc_msg_recv(to, buf, sizeof buf);
            ok &= n == (ssize_t) msg_sizes[i] && matches(buf, (size_t) n, (unsigned) i + 50);
        }
        CHECK(ok, "fds[%d]: rawipc_msg_size then rawipc_msg_recv give each whole, one at a time, in order",
              1 - dir);
    }

    /* EMSGSIZE loses nothing. */
    fill(buf, 1000, 77);
    CHECK_RET(rawipc_msg_send(sv[0], buf, 1000), 1000, "rawipc_msg_send(1000 bytes)");
    CHECK_RET(rawipc_msg_send(sv[0], "next", 4), 4, "rawipc_msg_send(\"next\")");
    CHECK_ERR(rawipc_msg_recv(sv[1], buf, 10), EMSGSIZE, "rawipc_msg_recv(cap 10) of 1000 bytes");
    CHECK_ERR(rawipc_msg_recv(sv[1], buf, 999), EMSGSIZE, "rawipc_msg_recv(cap 999) of 1000 bytes");
    CHECK_ERR(rawipc_msg_recv(sv[1], NULL, 0), EMSGSIZE, "rawipc_msg_recv(NULL, 0) of 1000 bytes");
    CHECK_RET(rawipc_msg_size(sv[1]), 1000, "rawipc_msg_size() reports 1000");
    CHECK_RET(rawipc_msg_size(sv[1]), 1000, "rawipc_msg_size() again: it took nothing");
    n = rawipc_msg_recv(sv[1], buf, 1000);
    CHECK(n == 1000 && matches(buf, 1000, 77), "rawipc_msg_recv(cap 1000) then gets it intact (%zd)", n);
    n = rawipc_msg_recv(sv[1], buf, sizeof buf);
    CHECK(n == 4 && memcmp(buf, "next", 4) == 0, "and the next message is still next");

    /* Bad input. */
    CHECK_ERR(rawipc_msg_send(sv[0], "x", 0), EINVAL, "rawipc_msg_send(len 0): empty messages refused");
    CHECK_ERR(rawipc_msg_send(sv[0], NULL, 5), EFAULT, "rawipc_msg_send(NULL, 5)");
    {
        long long r;
        int e;
        errno = 0;
        r = rawipc_msg_send(sv[0], NULL, 0);
        e = errno;
        CHECK(r == -1 && (e == EINVAL || e == EFAULT), "rawipc_msg_send(NULL, 0) -> -1, EINVAL or EFAULT (%s)",
              errname(e));
    }
    CHECK_ERR(rawipc_msg_send(sv[0], buf, (size_t) SSIZE_MAX + 1), EINVAL, "rawipc_msg_send(len SSIZE_MAX + 1)");
    {
        /* Zero pages, never touched: the size alone refuses it. */
        size_t len = RAWIPC_MSG_MAX_SIZE + 1;
        void *huge = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (huge == MAP_FAILED)
            die("mmap");
        CHECK_ERR(rawipc_msg_send(sv[0], huge, len), EMSGSIZE, "rawipc_msg_send(RAWIPC_MSG_MAX_SIZE + 1)");
        munmap(huge, len);
    }
    CHECK_RET(rawipc_msg_send(sv[0], "after", 5), 5, "rawipc_msg_send(\"after\")");
    CHECK_ERR(rawipc_msg_recv(sv[1], NULL, 100), EFAULT, "rawipc_msg_recv(NULL, 100)");
    CHECK_ERR(rawipc_msg_recv(sv[1], buf, (size_t) SSIZE_MAX + 1), EINVAL, "rawipc_msg_recv(cap SSIZE_MAX + 1)");
    n = rawipc_msg_recv(sv[1], buf, sizeof buf);
    CHECK(n == 5 && memcmp(buf, "after", 5) == 0,
          "nothing lost: no refused message was queued, and \"after\" survived the bad receives");
    set_nonblocking(sv[1], 1);
    CHECK_ERR(rawipc_msg_recv(sv[1], buf, sizeof buf), EAGAIN, "rawipc_msg_recv(non-blocking, none)");
    CHECK_ERR(rawipc_msg_size(sv[1]), EAGAIN, "rawipc_msg_size(non-blocking, none)");
    set_nonblocking(sv[1], 0);
    CHECK_ERR(rawipc_msg_send(-1, "x", 1), EBADF, "rawipc_msg_send(-1)");
    CHECK_ERR(rawipc_msg_recv(-1, buf, sizeof buf), EBADF, "rawipc_msg_recv(-1)");
    CHECK_ERR(rawipc_msg_size(-1), EBADF, "rawipc_msg_size(-1)");
    CHECK_ERR(rawipc_msg_send(closed_fd(), "x", 1), EBADF, "rawipc_msg_send(closed fd)");
    CHECK_ERR(rawipc_msg_recv(closed_fd(), buf, sizeof buf), EBADF, "rawipc_msg_recv(closed fd)");
    CHECK_ERR(rawipc_msg_size(closed_fd()), EBADF, "rawipc_msg_size(closed fd)");
    {
        int p[2];
        xpipe(p);
        CHECK_ERR(rawipc_msg_send(p[1], "x", 1), ENOTSOCK, "rawipc_msg_send(a pipe)");
        CHECK_ERR(rawipc_msg_recv(p[0], buf, sizeof buf), ENOTSOCK, "rawipc_msg_recv(a pipe)");
        CHECK_ERR(rawipc_msg_size(p[0]), ENOTSOCK, "rawipc_msg_size(a pipe)");
        xclose(p[0]);
        xclose(p[1]);
    }
    {
        /* A stream socket, with data queued: EPROTOTYPE at once (no
           spinning, no endless wait), and the data stays. A datagram socket:
           a message queued is received (boundaries are kept), and a receive
           that would wait is EPROTOTYPE at once (its peer's end is never
           seen). */
        int st[2];
        CHECK_RET(socketpair(AF_UNIX, SOCK_STREAM, 0, st), 0, "socketpair(SOCK_STREAM)");
        CHECK_RET(write(st[0], "queued", 6), 6, "(data queued)");
        CHECK_ERR(rawipc_msg_recv(st[1], buf, sizeof buf), EPROTOTYPE, "rawipc_msg_recv(SOCK_STREAM)");
        CHECK_ERR(rawipc_msg_size(st[1]), EPROTOTYPE, "rawipc_msg_size(SOCK_STREAM)");
        CHECK_RET(read(st[1], buf, sizeof buf), 6, "the data is still queued");
        xclose(st[0]);
        xclose(st[1]);
        CHECK_RET(socketpair(AF_UNIX, SOCK_DGRAM, 0, st), 0, "socketpair(SOCK_DGRAM)");
        CHECK_ERR(rawipc_msg_recv(st[1], buf, sizeof buf), EPROTOTYPE, "rawipc_msg_recv(SOCK_DGRAM, none queued)");
        CHECK_ERR(rawipc_msg_size(st[1]), EPROTOTYPE, "rawipc_msg_size(SOCK_DGRAM, none queued)");
        CHECK_RET(write(st[0], "queued", 6), 6, "(a datagram queued)");
        CHECK_RET(rawipc_msg_size(st[1]), 6, "rawipc_msg_size(SOCK_DGRAM, one queued)");
        CHECK_RET(rawipc_msg_recv(st[1], buf, sizeof buf), 6, "rawipc_msg_recv(SOCK_DGRAM, one queued)");
        CHECK_ERR(rawipc_msg_recv(st[1], buf, sizeof buf), EPROTOTYPE, "rawipc_msg_recv(SOCK_DGRAM, none left)");
        xclose(st[0]);
        xclose(st[1]);
    }

    /* A peer that sends an empty message (rawipc refuses to, but another
       program may): a receive of 0 must still mean only "peer gone". */
    CHECK_RET(send(sv[0], "", 0, 0), 0, "(libc send of an empty message, as a foreign peer might)");
    CHECK_RET(rawipc_msg_send(sv[0], "real", 4), 4, "rawipc_msg_send(\"real\")");
    n = rawipc_msg_recv(sv[1], buf, sizeof buf);
    CHECK(n == 4 && memcmp(buf, "real", 4) == 0,
          "rawipc_msg_recv skips the empty message of a live peer and returns \"real\" (%zd)", n);

    /* The peer goes: queued messages first, then 0, and 0 again. */
    CHECK_RET(rawipc_msg_send(sv[0], "last words", 10), 10, "rawipc_msg_send(\"last words\")");
    CHECK_RET(rawipc_close(sv[0]), 0, "rawipc_close(the sender)");
    n = rawipc_msg_recv(sv[1], buf, sizeof buf);
    CHECK(n == 10 && memcmp(buf, "last words", 10) == 0, "the message queued before the close still comes");
    CHECK_RET(rawipc_msg_size(sv[1]), 0, "then rawipc_msg_size() -> 0: peer gone");
    CHECK_RET(rawipc_msg_recv(sv[1], buf, sizeof buf), 0, "rawipc_msg_recv() -> 0: peer gone");
    CHECK_RET(rawipc_msg_recv(sv[1], buf, sizeof buf), 0, "and 0 again");
    CHECK_RET(rawipc_msg_recv(sv[1], NULL, 0), 0, "rawipc_msg_recv(NULL, 0) -> 0 too");
    CHECK_RET(rawipc_close(sv[1]), 0, "rawipc_close");

    /* A peer that sent an empty message, then a real one, then left. */
    CHECK_RET(rawipc_msg_socketpair(sv), 0, "rawipc_msg_socketpair(fds)");
    send(sv[0], "", 0, 0);
    CHECK_RET(rawipc_msg_send(sv[0], "still here", 10), 10, "(empty message, then \"still here\", then close)");
    CHECK_RET(rawipc_close(sv[0]), 0, "rawipc_close(the sender)");
    n = rawipc_msg_recv(sv[1], buf, sizeof buf);
    CHECK(n == 10 && memcmp(buf, "still here", 10) == 0,
          "a message queued behind an empty one is not lost when the peer is gone (got %zd)", n);
    CHECK_RET(rawipc_msg_recv(sv[1], buf, sizeof buf), 0, "then 0: peer gone");
    CHECK_RET(rawipc_close(sv[1]), 0, "rawipc_close");

    /* EPIPE, never SIGPIPE. */
    if (signal(SIGPIPE, SIG_DFL) == SIG_ERR)
        die("signal");
    CHECK_RET(rawipc_msg_socketpair(sv), 0, "rawipc_msg_socketpair(fds)");
    CHECK_RET(rawipc_close(sv[1]), 0, "rawipc_close(the receiver)");
    CHECK_ERR(rawipc_msg_send(sv[0], "x", 1), EPIPE, "rawipc_msg_send(peer gone), SIGPIPE at SIG_DFL");
    check_no_sigpipe("after the send's EPIPE");
    CHECK_RET(rawipc_close(sv[0]), 0, "rawipc_close");

    /* Between processes, as in the notes. */
    CHECK_RET(rawipc_msg_socketpair(sv), 0, "rawipc_msg_socketpair(fds) for a child");
    pid = spawn(msg_sender_child, sv);
    CHECK_RET(rawipc_close(sv[1]), 0, "the parent closes the child's end");
    check_child_ok(pid, "the child sent its messages and exited");
    ok = 1;
    for (size_t i = 0; i < N_MSGS; i++) {
        n = rawipc_msg_recv(sv[0], buf, sizeof buf);
        ok &= n == (ssize_t) msg_sizes[i] && matches(buf, (size_t) n, (unsigned) i);
    }
    CHECK(ok, "the parent receives the child's %zu messages whole, in order, after it died", N_MSGS);
    CHECK_RET(rawipc_msg_recv(sv[0], buf, sizeof buf), 0, "then 0: the child is gone");
    CHECK_RET(rawipc_close(sv[0]), 0, "rawipc_close");
}

/* ------------------------------------------------------------------ */
/* A signal in the middle of a blocking call                           */

static int exit_42(void *unused)
{
    (void) unused;
    return 42;
}

static int write_abc(void *p)
{
    return write_exact(*(int *) p, "abc", 3) == 0 ? 0 : 1;
}

static int send_hello(void *p)
{
    return send(*(int *) p, "hello", 5, 0) == 5 ? 0 : 1;
}

struct drain_msgs {
    int fd;
    int count;
    size_t last_size;
};

static int drain_msgs(void *p)
{
    struct drain_msgs *d = p;
    static unsigned char buf[65536];
    ssize_t n;

    for (int i = 0; i < d->count; i++)
        STEP(recv(d->fd, buf, sizeof buf, 0) > 0);
    n = recv(d->fd, buf, sizeof buf, 0);
    STEP(n == (ssize_t) d->last_size);
    STEP(matches(buf, (size_t) n, 3));
    return 0;
}

static void test_eintr(void)
{
    static unsigned char big[1u << 20];
    struct interrupter it;
    struct big_transfer t;
    unsigned char buf[64];
    int fds[2], sv[2], st;
    size_t prefill;
    ssize_t n;
    pid_t pid;

    section("a SIGALRM handler without SA_RESTART interrupts a blocked call");
    install_alarm_handler();

    /* Control: libc's read() does fail with EINTR in this set-up. */
    xpipe(fds);
    it.then = write_abc;
    it.arg = &fds[1];
    pid = interrupt_next_call(&it);
    errno = 0;
    n = read(fds[0], buf, sizeof buf);
    CHECK(n == -1 && errno == EINTR && alarms == 1,
          "control: libc read() is interrupted -> -1, EINTR (got %zd, %s)", n, errname(errno));
    check_child_ok(pid, "control: the helper interrupted the blocked read, then wrote");
    xclose(fds[0]);
    xclose(fds[1]);

    /* rawipc_read: EINTR, as read(); rawipc_read_full retries. */
    xpipe(fds);
    it.arg = &fds[1];
    pid = interrupt_next_call(&it);
    errno = 0;
    n = rawipc_read(fds[0], buf, sizeof buf);
    CHECK(n == -1 && errno == EINTR && alarms == 1,
          "rawipc_read() is interrupted -> -1, EINTR, as read() (got %zd, %s)", n, errname(errno));
    check_child_ok(pid, "the helper interrupted the blocked rawipc_read, then wrote");
    CHECK(rawipc_read(fds[0], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0,
          "nothing lost: the next rawipc_read() gets \"abc\"");
    pid = interrupt_next_call(&it);
    n = rawipc_read_full(fds[0], buf, 3);
    CHECK(n == 3 && memcmp(buf, "abc", 3) == 0 && alarms == 1,
          "rawipc_read_full() retries after EINTR and returns the data (%zd, %d alarm)", n, (int) alarms);
    check_child_ok(pid, "the helper interrupted the blocked rawipc_read_full");
    xclose(fds[0]);
    xclose(fds[1]);

    /* With SA_RESTART the kernel restarts the read itself. */
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        if (sigaction(SIGALRM, &sa, NULL) == -1)
            die("sigaction");
        xpipe(fds);
        it.arg = &fds[1];
        pid = interrupt_next_call(&it);
        n = rawipc_read(fds[0], buf, sizeof buf);
        CHECK(n == 3 && memcmp(buf, "abc", 3) == 0 && alarms == 1,
              "with SA_RESTART, rawipc_read() is restarted and returns the data (%zd)", n);
        check_child_ok(pid, "the helper interrupted the blocked rawipc_read (SA_RESTART)");
        it.then = exit_42;
        pid = interrupt_next_call(&it);
        CHECK_RET(rawipc_wait(&st), pid, "with SA_RESTART, rawipc_wait() is restarted and reaps the child");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42 && alarms == 1, "with its status (0x%x)", st);
        it.then = write_abc;
        sa.sa_flags = 0;
        if (sigaction(SIGALRM, &sa, NULL) == -1)
            die("sigaction");
        xclose(fds[0]);
        xclose(fds[1]);
    }

    /* rawipc_write, blocked on a full pipe: EINTR, nothing written;
       rawipc_write_all retries and writes it all. */
    xpipe(fds);
    set_nonblocking(fds[1], 1);
    memset(buf, 0, sizeof buf);
    for (prefill = 0; write(fds[1], buf, sizeof buf) == (ssize_t) sizeof buf; prefill += sizeof buf)
        ;
    set_nonblocking(fds[1], 0);
    fill(big, sizeof big, 2);
    t.fd = fds[0];
    t.skip = prefill;
    t.size = sizeof big;
    t.seed = 2;
    it.then = big_reader;
    it.arg = &t;
    it.then = NULL;
    pid = interrupt_next_call(&it);
    errno = 0;
    n = rawipc_write(fds[1], big, sizeof big);
    CHECK(n == -1 && errno == EINTR && alarms == 1,
          "rawipc_write(1 MiB) into a full pipe is interrupted -> -1, EINTR, as write() (got %zd, %s)", n,
          errname(errno));
    check_child_ok(pid, "the helper interrupted the blocked rawipc_write");
    it.then = big_reader;
    pid = interrupt_next_call(&it);
    n = rawipc_write_all(fds[1], big, sizeof big);
    CHECK(n == (ssize_t) sizeof big && alarms == 1,
          "rawipc_write_all(1 MiB) into a full pipe retries after EINTR and writes it all (%zd)", n);
    check_child_ok(pid, "the helper interrupted the blocked rawipc_write_all, then read the 1 MiB intact");
    xclose(fds[0]);
    xclose(fds[1]);

    /* rawipc_wait and rawipc_waitpid: the helper is the child waited for. */
    it.then = exit_42;
    it.arg = NULL;
    pid = interrupt_next_call(&it);
    st = -1;
    CHECK_ERR(rawipc_wait(&st), EINTR, "rawipc_wait() is interrupted, as wait()");
    CHECK(st == -1 && alarms == 1, "status untouched, after the alarm");
    CHECK_RET(rawipc_wait(&st), pid, "the next rawipc_wait() reaps the child");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42, "with its status, exit 42 (0x%x)", st);
    pid = interrupt_next_call(&it);
    st = -1;
    CHECK_ERR(rawipc_waitpid(pid, &st, 0), EINTR, "rawipc_waitpid(pid) is interrupted, as waitpid()");
    CHECK_RET(rawipc_waitpid(pid, &st, 0), pid, "the next rawipc_waitpid(pid) reaps the child");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42 && alarms == 1, "with its status (0x%x)", st);

    /* rawipc_msg_recv and rawipc_msg_size */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1)
        die("socketpair");
    it.then = send_hello;
    it.arg = &sv[1];
    pid = interrupt_next_call(&it);
    n = rawipc_msg_recv(sv[0], buf, sizeof buf);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0 && alarms == 1,
          "rawipc_msg_recv() retries after EINTR and returns the message (%zd)", n);
    check_child_ok(pid, "the helper interrupted the blocked rawipc_msg_recv");
    pid = interrupt_next_call(&it);
    CHECK_RET(rawipc_msg_size(sv[0]), 5, "rawipc_msg_size() retries after EINTR and returns the size");
    check_child_ok(pid, "the helper interrupted the blocked rawipc_msg_size");
    CHECK_RET(rawipc_msg_recv(sv[0], buf, sizeof buf), 5, "(and the message is then received)");

    /* rawipc_msg_send, blocked on a full socket */
    {
        struct drain_msgs d;
        static unsigned char chunk[4096];
        int count = 0;
        memset(chunk, 0, sizeof chunk);
        while (send(sv[1], chunk, sizeof chunk, MSG_DONTWAIT) == (ssize_t) sizeof chunk)
            count++;
        fill(big, 8192, 3);
        d.fd = sv[0];
        d.count = count;
        d.last_size = 8192;
        it.then = drain_msgs;
        it.arg = &d;
        pid = interrupt_next_call(&it);
        CHECK_RET(rawipc_msg_send(sv[1], big, 8192), 8192,
                  "rawipc_msg_send() into a full socket retries after EINTR and sends");
        CHECK(alarms == 1, "(the alarm came during that send)");
        check_child_ok(pid, "the helper interrupted the blocked send, then received the message intact");
    }
    xclose(sv[0]);
    xclose(sv[1]);

    signal(SIGALRM, SIG_DFL);
    xclose(alarm_pipe[0]);
    xclose(alarm_pipe[1]);
    alarm_pipe[0] = alarm_pipe[1] = -1;
}

/* ------------------------------------------------------------------ */
/* rawipc_pipe2                                                        */

static void test_pipe2(void)
{
    int fds[2] = { -7, -7 }, before = next_fd();
    char c;

    section("rawipc_pipe2");
    CHECK_RET(rawipc_pipe2(fds, 0), 0, "rawipc_pipe2(fds, 0)");
    CHECK(!is_cloexec(fds[0]) && !is_cloexec(fds[1]), "flags 0: neither close-on-exec");
    xclose(fds[0]);
    xclose(fds[1]);
    CHECK_RET(rawipc_pipe2(fds, O_CLOEXEC), 0, "rawipc_pipe2(fds, O_CLOEXEC)");
    CHECK(is_cloexec(fds[0]) && is_cloexec(fds[1]), "both close-on-exec");
    xclose(fds[0]);
    xclose(fds[1]);
    CHECK_RET(rawipc_pipe2(fds, O_NONBLOCK), 0, "rawipc_pipe2(fds, O_NONBLOCK)");
    CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) && (fcntl(fds[1], F_GETFL) & O_NONBLOCK), "both non-blocking");
    CHECK_ERR(rawipc_read(fds[0], &c, 1), EAGAIN, "rawipc_read(empty non-blocking pipe2)");
    xclose(fds[0]);
    xclose(fds[1]);
    CHECK_RET(rawipc_pipe2(fds, O_DIRECT), 0, "rawipc_pipe2(fds, O_DIRECT)");
    {
        char buf[16];
        CHECK(rawipc_write(fds[1], "ab", 2) == 2 && rawipc_write(fds[1], "cde", 3) == 3,
              "two writes into a packet pipe");
        CHECK(rawipc_read(fds[0], buf, sizeof buf) == 2 && rawipc_read(fds[0], buf, sizeof buf) == 3,
              "O_DIRECT: each read takes one packet (2, then 3 bytes)");
    }
    xclose(fds[0]);
    xclose(fds[1]);
    fds[0] = fds[1] = -7;
    CHECK_ERR(rawipc_pipe2(fds, O_APPEND), EINVAL, "rawipc_pipe2(O_APPEND)");
    CHECK_ERR(rawipc_pipe2(fds, -1), EINVAL, "rawipc_pipe2(-1)");
    CHECK_SAME_AS_LIBC(rawipc_pipe2(fds, O_EXCL), pipe2(fds, O_EXCL), "rawipc_pipe2(O_EXCL, a notification pipe)");
    if (fds[0] != -7) {
        xclose(fds[0]);
        xclose(fds[1]);
        fds[0] = fds[1] = -7;
    }
    CHECK(fds[0] == -7 && fds[1] == -7, "fds untouched by the failures");
    CHECK_ERR(rawipc_pipe2(NULL, O_CLOEXEC), EFAULT, "rawipc_pipe2(NULL)");
    CHECK_ERR(rawipc_pipe2(unmapped_page(), 0), EFAULT, "rawipc_pipe2(an unmapped page)");
    CHECK(next_fd() == before, "no fd leaked (next fd %d)", before);
}

/* ------------------------------------------------------------------ */
/* rawipc_write_all and rawipc_read_full                               */

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void) sig;
    sigpipes++;
}

/* How many SIGPIPEs are pending (SIGPIPE blocked): takes them all. */
static int take_sigpipes(void)
{
    sigset_t set;
    struct timespec zero = { 0, 0 };
    int n = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
        n++;
    return n;
}

/* rawipc_write_all to a pipe with no reader in one SIGPIPE state: EPIPE, no
   handler run, mask and disposition unchanged, exactly the SIGPIPEs pending
   before still pending. */
static void sigpipe_state(const char *name, void (*disposition)(int), int blocked, int thread_pending,
                          int process_pending)
{
    struct sigaction sa, now;
    sigset_t pipeset, mask_before, mask_after, pending;
    int fds[2], handled;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = disposition;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) == -1)
        die("sigaction");
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    if (sigprocmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &pipeset, NULL) == -1)
        die("sigprocmask");
    sigprocmask(SIG_BLOCK, NULL, &mask_before);
    xpipe(fds);
    xclose(fds[0]);
    if (thread_pending)
        raise(SIGPIPE);                 /* raise() is tgkill(): for this thread */
    if (process_pending)
        kill(getpid(), SIGPIPE);        /* for the process */
    sigpipes = 0;
    CHECK_ERR(rawipc_write_all(fds[1], "x", 1), EPIPE, name);
    handled = sigpipes;
    sigprocmask(SIG_BLOCK, NULL, &mask_after);
    sigaction(SIGPIPE, NULL, &now);
    sigpending(&pending);
    CHECK(handled == 0 && now.sa_handler == disposition
              && sigismember(&mask_after, SIGPIPE) == sigismember(&mask_before, SIGPIPE),
          "  and no handler ran, the disposition and the mask are as they were");
    if (blocked) {
        int want = thread_pending + process_pending;
        int got = take_sigpipes();
        CHECK(got == want, "  and %d SIGPIPE(s) pending, as before (%d)", want, got);
        sigprocmask(SIG_UNBLOCK, &pipeset, NULL);
    } else {
        CHECK(!sigismember(&pending, SIGPIPE), "  and no SIGPIPE pending");
    }
    xclose(fds[1]);
    signal(SIGPIPE, SIG_DFL);
}

/* The counterpart of a storm: moves `size` bytes of seed `seed` through a
   pipe with the other end in a child, SIGALRM arriving every 500 us without
   SA_RESTART. */
struct storm {
    int fd;
    size_t size;
    unsigned seed;
};

static int storm_reader(void *p)
{
    struct storm *st = p;
    unsigned char *buf = malloc(st->size);

    STEP(buf != NULL);
    STEP(read_exact(st->fd, buf, st->size) == 0);
    STEP(matches(buf, st->size, st->seed));
    return 0;
}

static int storm_writer(void *p)
{
    struct storm *st = p;
    unsigned char *buf = malloc(st->size);

    STEP(buf != NULL);
    fill(buf, st->size, st->seed);
    STEP(write_exact(st->fd, buf, st->size) == 0);
    return 0;
}

static void storm(int on)
{
    struct itimerval it = { { 0, on ? 500 : 0 }, { 0, on ? 500 : 0 } };
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_alarm : SIG_DFL;
    sa.sa_flags = 0;
    /* The handler is in place before the timer starts and until it has
       stopped (a last SIGALRM is delivered at once, to the handler). */
    if (on ? sigaction(SIGALRM, &sa, NULL) == -1 || setitimer(ITIMER_REAL, &it, NULL) == -1
           : setitimer(ITIMER_REAL, &it, NULL) == -1 || sigaction(SIGALRM, &sa, NULL) == -1)
        die("storm");
}

static void test_write_all_read_full(void)
{
    const size_t big = 8u << 20;
    unsigned char *data, *back, buf[64];
    struct storm st;
    int fds[2], before = next_fd();
    ssize_t n;
    pid_t pid;

    section("rawipc_write_all, rawipc_read_full");
    data = malloc(big);
    back = malloc(big);
    if (data == NULL || back == NULL)
        die("malloc");

    /* Every SIGPIPE state. */
    sigpipe_state("rawipc_write_all(no reader), SIGPIPE at SIG_DFL", SIG_DFL, 0, 0, 0);
    sigpipe_state("rawipc_write_all(no reader), SIGPIPE ignored", SIG_IGN, 0, 0, 0);
    sigpipe_state("rawipc_write_all(no reader), SIGPIPE handled", on_sigpipe, 0, 0, 0);
    for (int d = 0; d < 3; d++) {
        void (*disp)(int) = d == 0 ? SIG_DFL : d == 1 ? SIG_IGN : on_sigpipe;
        const char *dn = d == 0 ? "SIG_DFL" : d == 1 ? "ignored" : "handled";
        char name[160];
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "rawipc_write_all(no reader), SIGPIPE %s, blocked, pending: %s",
                     dn, k == 0 ? "none" : k == 1 ? "thread" : k == 2 ? "process" : "thread and process");
            sigpipe_state(name, disp, 1, k & 1, (k >> 1) & 1);
        }
    }
    /* With a handler, unblocking runs it once per SIGPIPE pending before. */
    {
        sigset_t pipeset;
        int fds2[2];
        sigemptyset(&pipeset);
        sigaddset(&pipeset, SIGPIPE);
        signal(SIGPIPE, on_sigpipe);
        sigprocmask(SIG_BLOCK, &pipeset, NULL);
        xpipe(fds2);
        xclose(fds2[0]);
        kill(getpid(), SIGPIPE);
        sigpipes = 0;
        CHECK_ERR(rawipc_write_all(fds2[1], "x", 1), EPIPE,
                  "rawipc_write_all(no reader), handler, blocked, a process-directed SIGPIPE pending");
        sigprocmask(SIG_UNBLOCK, &pipeset, NULL);
        CHECK(sigpipes == 1, "  unblocking runs the handler once, for the kill (ran %d times)", (int) sigpipes);
        signal(SIGPIPE, SIG_DFL);
        xclose(fds2[1]);
    }

    /* Bad input, and nothing lost. */
    xpipe(fds);
    CHECK_ERR(rawipc_write_all(-1, "x", 1), EBADF, "rawipc_write_all(-1)");
    CHECK_ERR(rawipc_write_all(closed_fd(), "x", 1), EBADF, "rawipc_write_all(closed fd)");
    CHECK_ERR(rawipc_write_all(fds[0], "x", 1), EBADF, "rawipc_write_all(read end)");
    CHECK_ERR(rawipc_write_all(fds[1], NULL, 5), EFAULT, "rawipc_write_all(NULL, 5)");
    CHECK_ERR(rawipc_write_all(fds[1], unmapped_page(), 5), EFAULT, "rawipc_write_all(unmapped, 5)");
    CHECK_ERR(rawipc_write_all(fds[1], "x", (size_t) SSIZE_MAX + 1), EINVAL, "rawipc_write_all(SSIZE_MAX + 1)");
    CHECK_ERR(rawipc_write_all(closed_fd(), "x", 0), EBADF, "rawipc_write_all(closed fd, 0): the empty write reports it");
    CHECK_RET(rawipc_write_all(fds[1], NULL, 0), 0, "rawipc_write_all(NULL, 0)");
    CHECK_ERR(rawipc_read_full(-1, buf, 1), EBADF, "rawipc_read_full(-1)");
    CHECK_ERR(rawipc_read_full(fds[1], buf, 1), EBADF, "rawipc_read_full(write end)");
    CHECK_ERR(rawipc_read_full(closed_fd(), buf, 0), EBADF, "rawipc_read_full(closed fd, 0)");
    CHECK_ERR(rawipc_read_full(fds[0], buf, (size_t) SSIZE_MAX + 1), EINVAL, "rawipc_read_full(SSIZE_MAX + 1)");
    CHECK_RET(rawipc_write_all(fds[1], "hello", 5), 5, "rawipc_write_all(\"hello\")");
    CHECK_ERR(rawipc_read_full(fds[0], NULL, 5), EFAULT, "rawipc_read_full(NULL, 5)");
    CHECK_ERR(rawipc_read_full(fds[0], unmapped_page(), 5), EFAULT, "rawipc_read_full(unmapped, 5)");
    CHECK_RET(rawipc_read_full(fds[0], buf, 0), 0, "rawipc_read_full(buf, 0)");
    CHECK(rawipc_read_full(fds[0], buf, 5) == 5 && memcmp(buf, "hello", 5) == 0,
          "nothing lost: rawipc_read_full(5) gets \"hello\"");

    /* A buffer whose end is unmapped: the kernel answers EFAULT (a pipe
       takes nothing from a copy that faulted, and gives nothing away). */
    {
        long page = sysconf(_SC_PAGESIZE);
        unsigned char *two = mmap(NULL, 2 * (size_t) page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (two == MAP_FAILED || munmap(two + page, (size_t) page) == -1)
            die("mmap");
        memset(two, 'm', (size_t) page);
        CHECK_SAME_AS_LIBC(rawipc_write_all(fds[1], two + page - 10, 20), write(fds[1], two + page - 10, 20),
                           "rawipc_write_all(10 mapped bytes, then 10 unmapped)");
        CHECK_RET(rawipc_write_all(fds[1], "0123456789", 10), 10, "rawipc_write_all(10 bytes)");
        CHECK_ERR(rawipc_read_full(fds[0], two + page - 4, 10), EFAULT,
                  "rawipc_read_full(4 mapped bytes, then 6 unmapped)");
        n = rawipc_read_full(fds[0], buf, 10);
        CHECK(n == 10 && memcmp(buf, "0123456789", 10) == 0, "  and the 10 bytes are all still there (%zd)", n);
        munmap(two, (size_t) page);
    }

    /* Short at end of file, non-blocking. */
    CHECK_RET(rawipc_write_all(fds[1], "abc", 3), 3, "rawipc_write_all(\"abc\")");
    set_nonblocking(fds[0], 1);
    n = rawipc_read_full(fds[0], buf, 10);
    CHECK(n == 3, "rawipc_read_full(10) of 3 bytes, non-blocking -> 3 (%zd)", n);
    CHECK_ERR(rawipc_read_full(fds[0], buf, 10), EAGAIN, "then -> EAGAIN");
    set_nonblocking(fds[0], 0);
    set_nonblocking(fds[1], 1);
    fill(data, big, 5);
    n = rawipc_write_all(fds[1], data, big);
    CHECK(n > 0 && (size_t) n < big, "rawipc_write_all(non-blocking, 8 MiB) -> what fit (%zd)", n);
    CHECK_ERR(rawipc_write_all(fds[1], data, 1), EAGAIN, "then -> EAGAIN");
    set_nonblocking(fds[1], 0);
    xclose(fds[1]);
    {
        ssize_t got = rawipc_read_full(fds[0], back, big);
        CHECK(got == n && matches(back, (size_t) got, 5), "rawipc_read_full reads all of it, then end of file (%zd)",
              got);
    }
    CHECK_RET(rawipc_read_full(fds[0], buf, sizeof buf), 0, "rawipc_read_full at end of file -> 0");
    xclose(fds[0]);

    /* Signal storms: SIGALRM every 500 us, without SA_RESTART (not under
       valgrind, whose slow signal delivery would turn the storm into a
       livelock of the test itself). */
    if (under_valgrind()) {
        free(data);
        free(back);
        return;
    }
    xpipe(fds);
    st.fd = fds[0];
    st.size = big;
    st.seed = 6;
    fill(data, big, 6);
    pid = spawn(storm_reader, &st);
    alarms = 0;
    storm(1);
    n = rawipc_write_all(fds[1], data, big);
    storm(0);
    CHECK(n == (ssize_t) big, "rawipc_write_all(8 MiB) under a SIGALRM storm writes it all (%zd, %d alarms)", n,
          (int) alarms);
    check_child_ok(pid, "the child read the 8 MiB intact");
    st.fd = fds[1];
    st.seed = 7;
    pid = spawn(storm_writer, &st);
    alarms = 0;
    storm(1);
    n = rawipc_read_full(fds[0], back, big);
    storm(0);
    CHECK(n == (ssize_t) big && matches(back, big, 7),
          "rawipc_read_full(8 MiB) under a SIGALRM storm reads it all, intact (%zd, %d alarms)", n, (int) alarms);
    check_child_ok(pid, "the child wrote the 8 MiB");
    xclose(fds[0]);
    xclose(fds[1]);
    CHECK(next_fd() == before, "no fd left behind (next fd %d)", before);
    free(data);
    free(back);
}

/* ------------------------------------------------------------------ */
/* Nothing left behind                                                 */

static void test_no_leaks(int cycles)
{
    int fds[2], fd0, maps0, ok;
    pid_t pid;
    void *p;

    section("nothing left behind");
    printf("(%d cycles each)\n", cycles);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    (void) map_count();         /* stdio's first buffers are in place */
    fd0 = next_fd();
    maps0 = map_count();

    ok = 1;
    for (int i = 0; i < cycles && ok; i++)
        ok = rawipc_pipe(fds) == 0 && rawipc_close(fds[0]) == 0 && rawipc_close(fds[1]) == 0;
    CHECK(ok && next_fd() == fd0, "rawipc_pipe/rawipc_close: the next fd is still %d (is %d)", fd0, next_fd());

    ok = 1;
    for (int i = 0; i < cycles && ok; i++)
        ok = rawipc_msg_socketpair(fds) == 0 && rawipc_close(fds[0]) == 0 && rawipc_close(fds[1]) == 0;
    CHECK(ok && next_fd() == fd0, "rawipc_msg_socketpair/rawipc_close: the next fd is still %d", fd0);

    ok = 1;
    for (int i = 0; i < cycles && ok; i++) {
        p = rawipc_shared_alloc(4096 * (size_t) (1 + i % 3));
        ok = p != NULL && rawipc_shared_free(p, 4096 * (size_t) (1 + i % 3)) == 0;
    }
    CHECK(ok && map_count() == maps0, "rawipc_shared_alloc/rawipc_shared_free: %d mappings before, %d after",
          maps0, map_count());

    ok = 1;
    for (int i = 0; i < cycles && ok; i++) {
        int st;
        pid = rawipc_fork();
        if (pid == 0)
            _exit(i & 0x7f);
        ok = pid > 0 && rawipc_waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == (i & 0x7f);
    }
    CHECK(ok, "rawipc_fork/rawipc_waitpid: every child reaped with its own status");
    CHECK_ERR(rawipc_wait(NULL), ECHILD, "and no child is left");

    ok = 1;
    for (int i = 0; i < cycles && ok; i++) {
        ok = rawipc_pipe(NULL) == -1 && rawipc_msg_socketpair(NULL) == -1 && rawipc_pipe((int *) -1) == -1
             && rawipc_pipe2(unmapped_page(), O_CLOEXEC) == -1 && rawipc_msg_socketpair((int *) 7) == -1
             && rawipc_msg_socketpair2(unmapped_page(), SOCK_CLOEXEC) == -1
             && rawipc_shared_alloc(0) == NULL && rawipc_shared_alloc(SIZE_MAX) == NULL;
    }
    CHECK(ok && next_fd() == fd0 && map_count() == maps0, "failed calls leave no fd and no mapping either");
    CHECK(next_fd() == fd0 && map_count() == maps0, "overall: next fd %d, %d mappings, as before", next_fd(),
          map_count());
}

int main(int argc, char *argv[])
{
    int cycles = argc > 1 ? atoi(argv[1]) : 5000;

    /* A test runner may hand us SIGPIPE ignored (Rust's does): the EPIPE
       checks are about the default disposition. */
    if (signal(SIGPIPE, SIG_DFL) == SIG_ERR)
        die("signal");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("rawipc C contract test, rawipc %s\n", rawipc_version());

    test_version();
    test_notes_shared_counter();
    test_shared_memory();
    test_fork();
    test_wait();
    test_pipe();
    test_pipe2();
    test_write_all_read_full();
    test_msg();
    test_eintr();
    test_no_leaks(cycles);

    printf("\n%d checks, %d failed\n", checks, failures);
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
