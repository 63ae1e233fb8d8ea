/* explain_errno.c: run with RAWIPC_EXPLAIN=1. The checks explain mode makes
   around each mirror leave errno as the call leaves it: untouched by a call
   that succeeds, set by one that fails, exactly as without explain mode.
   Exits 0 if every check held; prints "not ok" lines otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"

static int failed;

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("not ok %s (errno %d)\n", what, errno);
        failed = 1;
    }
}

int main(void)
{
    int fds[2], status;
    char c;
    pid_t pid;

    signal(SIGPIPE, SIG_IGN);
    check(rawipc_pipe(fds) == 0, "pipe");
    errno = 1234;
    check(rawipc_write(fds[1], "x", 1) == 1 && errno == 1234, "write keeps errno");
    check(rawipc_read(fds[0], &c, 1) == 1 && errno == 1234, "read keeps errno");
    check(rawipc_read(fds[1], &c, 1) == -1 && errno == EBADF, "read of the write end: EBADF at once");
    errno = 1234;
    pid = rawipc_fork();
    if (pid == 0) {
        char b;
        _exit(rawipc_read(fds[0], &b, 1) == 1 ? 7 : 8);   /* the parent writes */
    }
    check(pid > 0 && errno == 1234, "fork keeps errno");
    check(rawipc_write(fds[1], "y", 1) == 1, "write to the child");
    check(rawipc_waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 7 && errno == 1234,
          "waitpid keeps errno");
    check(rawipc_wait(&status) == -1 && errno == ECHILD, "wait with no child: ECHILD");
    check(rawipc_waitpid(-1, &status, WNOWAIT) == -1 && errno == EINVAL, "waitpid(WNOWAIT): EINVAL at once");
    check(rawipc_close(fds[0]) == 0, "close the read end");
    errno = 0;
    check(rawipc_write(fds[1], "z", 1) == -1 && errno == EPIPE, "write with SIGPIPE ignored: EPIPE");
    check(rawipc_read(-1, &c, 1) == -1 && errno == EBADF, "read(-1): EBADF");
    if (!failed)
        printf("ok: errno as without explain mode\n");
    return failed;
}
