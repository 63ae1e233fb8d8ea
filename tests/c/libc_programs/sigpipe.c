/* sigpipe.c: a writer whose reader is gone, under each SIGPIPE disposition.
   Default: the writer dies of SIGPIPE (reported by the parent, then by this
   process's own death at the end). A handler: it runs once, and write fails
   with EPIPE. SIG_IGN: EPIPE, no signal. Blocked: EPIPE, and the SIGPIPE
   stays pending until sigwait() takes it. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_pipe(int sig)
{
    (void) sig;
    caught++;
}

static int broken_pipe(void)
{
    int pfd[2];

    if (pipe(pfd) == -1)
        return -1;
    close(pfd[0]);
    return pfd[1];
}

static void try_write(const char *what)
{
    int fd = broken_pipe();
    ssize_t n;

    caught = 0;
    errno = 0;
    n = write(fd, "x", 1);
    printf("%s: write -> %zd (%s), handler ran %d time(s)\n", what, n, strerror(errno), (int) caught);
    close(fd);
}

int main(void)
{
    struct sigaction sa;
    sigset_t set, pending;
    int status, sig;
    pid_t pid;

    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_DFL);
    pid = fork();
    if (pid == 0) {
        int fd = broken_pipe();
        (void) write(fd, "x", 1);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        printf("default: the child was killed by signal %d (SIGPIPE is %d)\n", WTERMSIG(status), SIGPIPE);
    else
        printf("default: the child exited with %d\n", WEXITSTATUS(status));

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_pipe;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    try_write("handler");

    signal(SIGPIPE, SIG_IGN);
    try_write("SIG_IGN");

    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    try_write("blocked");
    sigpending(&pending);
    printf("blocked: SIGPIPE %s pending\n", sigismember(&pending, SIGPIPE) ? "is" : "is not");
    if (sigwait(&set, &sig) == 0)
        printf("blocked: sigwait took signal %d\n", sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    printf("and now this process writes to a broken pipe with SIGPIPE at its default\n");
    (void) write(broken_pipe(), "x", 1);
    printf("not reached\n");
    return 0;
}
