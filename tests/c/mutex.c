/*
 * mutex.c: the contract of rawipc_mutex_* as a C program sees it.
 *
 * A mutex in memory from rawipc_shared_alloc, shared with children made by
 * rawipc_fork: NULL and misaligned pointers give EINVAL; a held mutex gives
 * EBUSY to trylock and EPERM to a process that unlocks it without holding
 * it; after its holder dies of SIGKILL the next lock returns -1 with errno
 * EOWNERDEAD and the lock held; rawipc_mutex_consistent makes it ordinary
 * again, and unlocking without it leaves it ENOTRECOVERABLE until
 * rawipc_mutex_init.
 *
 * Built and run by tests/mutex/main.rs. Prints "all checks passed" and
 * exits 0, or reports each failed check on stderr and exits 1.
 *
 * Usage: mutex
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"

static int failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n",     \
                    __FILE__, __LINE__, #cond, errno, strerror(errno));     \
            failures++;                                                     \
        }                                                                   \
    } while (0)

/* The call must return -1 and set errno to err. */
#define FAILS_WITH(call, err)                                               \
    do {                                                                    \
        errno = 0;                                                          \
        int rc_ = (call);                                                   \
        if (rc_ != -1 || errno != (err)) {                                  \
            fprintf(stderr, "%s:%d: %s returned %d, errno %d (%s); "        \
                    "expected -1, errno %s\n", __FILE__, __LINE__, #call,   \
                    rc_, errno, strerror(errno), #err);                     \
            failures++;                                                     \
        }                                                                   \
    } while (0)

/* What parent and children share: a mutex and the value it protects. */
struct shared {
    rawipc_mutex lock;
    int value;
};

/* Waits for child `pid` and checks that SIGKILL ended it. */
static void expect_killed(pid_t pid)
{
    int status;

    CHECK(rawipc_waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void null_and_misaligned_pointers(struct shared *s)
{
    rawipc_mutex *odd;
    unsigned char before[sizeof(rawipc_mutex) + 1];

    FAILS_WITH(rawipc_mutex_init(NULL), EINVAL);
    FAILS_WITH(rawipc_mutex_lock(NULL), EINVAL);
    FAILS_WITH(rawipc_mutex_trylock(NULL), EINVAL);
    FAILS_WITH(rawipc_mutex_unlock(NULL), EINVAL);
    FAILS_WITH(rawipc_mutex_consistent(NULL), EINVAL);

    /* One byte into the shared memory: valid memory, but no rawipc_mutex
     * can be there (an integer-to-pointer conversion: implementation-defined,
     * not undefined). Nothing may be written through it. */
    odd = (rawipc_mutex *)((uintptr_t)s + 1);
    memcpy(before, s, sizeof before);
    FAILS_WITH(rawipc_mutex_init(odd), EINVAL);
    FAILS_WITH(rawipc_mutex_lock(odd), EINVAL);
    FAILS_WITH(rawipc_mutex_trylock(odd), EINVAL);
    FAILS_WITH(rawipc_mutex_unlock(odd), EINVAL);
    FAILS_WITH(rawipc_mutex_consistent(odd), EINVAL);
    CHECK(memcmp(before, s, sizeof before) == 0);
}

static void busy_and_not_held(struct shared *s)
{
    /* rawipc_shared_alloc's memory is zero-filled: an unlocked mutex. */
    CHECK(rawipc_mutex_trylock(&s->lock) == 0);
    FAILS_WITH(rawipc_mutex_trylock(&s->lock), EBUSY);
    FAILS_WITH(rawipc_mutex_consistent(&s->lock), EINVAL);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);
    FAILS_WITH(rawipc_mutex_unlock(&s->lock), EPERM);
    FAILS_WITH(rawipc_mutex_consistent(&s->lock), EINVAL);
    CHECK(rawipc_mutex_lock(&s->lock) == 0);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);
}

/* A child locks, tells the parent through a pipe, and waits to be killed:
 * while it lives the parent gets EBUSY and EPERM; once it is dead, EOWNERDEAD. */
static void holder_killed_while_holding(struct shared *s)
{
    int pfd[2];
    pid_t child;
    char byte;

    if (rawipc_pipe(pfd) == -1) {
        perror("rawipc_pipe");
        failures++;
        return;
    }
    child = rawipc_fork();
    if (child == -1) {
        perror("rawipc_fork");
        failures++;
        return;
    }
    if (child == 0) {
        close(pfd[0]);
        if (rawipc_mutex_lock(&s->lock) != 0)
            _exit(1);
        s->value = 1;
        if (rawipc_write(pfd[1], "L", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(pfd[1]);
    CHECK(rawipc_read(pfd[0], &byte, 1) == 1);
    close(pfd[0]);

    FAILS_WITH(rawipc_mutex_trylock(&s->lock), EBUSY);
    FAILS_WITH(rawipc_mutex_unlock(&s->lock), EPERM);
    FAILS_WITH(rawipc_mutex_consistent(&s->lock), EINVAL);

    CHECK(kill(child, SIGKILL) == 0);
    expect_killed(child);

    /* -1 and EOWNERDEAD, with the lock held and the data handed over. */
    FAILS_WITH(rawipc_mutex_lock(&s->lock), EOWNERDEAD);
    CHECK(s->value == 1);
    FAILS_WITH(rawipc_mutex_trylock(&s->lock), EBUSY);
    s->value = 2;
    CHECK(rawipc_mutex_consistent(&s->lock) == 0);
    FAILS_WITH(rawipc_mutex_consistent(&s->lock), EINVAL);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);

    CHECK(rawipc_mutex_lock(&s->lock) == 0);
    CHECK(s->value == 2);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);
}

/* A child locks and raises SIGKILL; the parent's trylock gets EOWNERDEAD,
 * and unlocking without rawipc_mutex_consistent makes it unrecoverable. */
static void not_recoverable_until_init(struct shared *s)
{
    pid_t child;

    child = rawipc_fork();
    if (child == -1) {
        perror("rawipc_fork");
        failures++;
        return;
    }
    if (child == 0) {
        if (rawipc_mutex_lock(&s->lock) != 0)
            _exit(1);
        s->value = 3;
        raise(SIGKILL);
        _exit(2);
    }
    expect_killed(child);

    FAILS_WITH(rawipc_mutex_trylock(&s->lock), EOWNERDEAD);
    CHECK(s->value == 3);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);

    FAILS_WITH(rawipc_mutex_lock(&s->lock), ENOTRECOVERABLE);
    FAILS_WITH(rawipc_mutex_trylock(&s->lock), ENOTRECOVERABLE);
    FAILS_WITH(rawipc_mutex_unlock(&s->lock), EPERM);
    FAILS_WITH(rawipc_mutex_consistent(&s->lock), EINVAL);
    FAILS_WITH(rawipc_mutex_lock(&s->lock), ENOTRECOVERABLE);

    CHECK(rawipc_mutex_init(&s->lock) == 0);
    CHECK(rawipc_mutex_lock(&s->lock) == 0);
    CHECK(rawipc_mutex_unlock(&s->lock) == 0);
}

int main(void)
{
    struct shared *s;

    s = rawipc_shared_alloc(sizeof *s);
    if (s == NULL) {
        perror("rawipc_shared_alloc");
        return 1;
    }

    null_and_misaligned_pointers(s);
    busy_and_not_held(s);
    holder_killed_while_holding(s);
    not_recoverable_until_init(s);

    if (rawipc_shared_free(s, sizeof *s) == -1) {
        perror("rawipc_shared_free");
        failures++;
    }
    if (failures != 0) {
        fprintf(stderr, "mutex.c: %d checks failed\n", failures);
        return 1;
    }
    printf("mutex.c: all checks passed\n");
    return 0;
}
