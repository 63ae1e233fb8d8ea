/* explain_cost.c: what explain mode costs rawipc_read, off and on, against
   libc's read, in one run.

       cc -O2 -Iinclude benches/c/explain_cost.c target/release/librawipc.a -o explain_cost
       ./explain_cost

   A pipe enlarged to 1 MiB is filled with 1,000,000 bytes, then read back
   one byte per call: libc's read, then rawipc_read with explain mode off
   (this process) and on (a child that sets RAWIPC_EXPLAIN=1 before its first
   rawipc call; the variable is read once, at the first call). Each row is
   the best of 5 passes, in nanoseconds per call, with its ratio to libc.
   Off, rawipc_read is read() plus one relaxed load and a predictable
   branch; on, it adds the checks (fstat, F_GETFL, FIONREAD) to every read
   of a pipe. The machine is shared and noisy: one run, a rough figure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawipc.h"

#define CALLS  1000000
#define PASSES 5

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

/* Best ns per call of reading the full pipe back one byte at a time. */
static double measure(int use_rawipc)
{
    static char block[CALLS];
    double best = 1e18;
    int fds[2];
    char c;

    if (pipe(fds) == -1 || fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) < (1 << 20)) {
        perror("pipe of 1 MiB");
        exit(1);
    }
    for (int pass = 0; pass < PASSES; pass++) {
        if (write(fds[1], block, CALLS) != CALLS) {
            perror("fill");
            exit(1);
        }
        double start = now_ns();
        for (int i = 0; i < CALLS; i++)
            if ((use_rawipc ? rawipc_read(fds[0], &c, 1) : read(fds[0], &c, 1)) != 1)
                exit(2);
        double per_call = (now_ns() - start) / CALLS;
        if (per_call < best)
            best = per_call;
    }
    close(fds[0]);
    close(fds[1]);
    return best;
}

int main(void)
{
    double libc_ns, off_ns, on_ns;
    int from_child[2], status;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(from_child) == -1)
        return 1;
    if (fork() == 0) {      /* libc's fork: rawipc has not read the variable yet */
        setenv("RAWIPC_EXPLAIN", "1", 1);
        on_ns = measure(1);
        if (write(from_child[1], &on_ns, sizeof on_ns) != sizeof on_ns)
            _exit(1);
        _exit(0);
    }
    if (read(from_child[0], &on_ns, sizeof on_ns) != sizeof on_ns || wait(&status) == -1)
        return 1;
    libc_ns = measure(0);
    off_ns = measure(1);
    printf("%d one-byte reads of a pipe, best of %d passes\n", CALLS, PASSES);
    printf("read (libc)                     %7.1f ns/call\n", libc_ns);
    printf("rawipc_read, explain mode off   %7.1f ns/call   ratio %.3f\n", off_ns, off_ns / libc_ns);
    printf("rawipc_read, explain mode on    %7.1f ns/call   ratio %.3f\n", on_ns, on_ns / libc_ns);
    return 0;
}
