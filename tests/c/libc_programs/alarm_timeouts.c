/* alarm_timeouts.c: alarm() as a timeout on a blocking read and on a
   blocking wait, as TLPI and Stevens teach it. Without SA_RESTART the
   handler interrupts the call (EINTR: "timed out"); with SA_RESTART the
   kernel restarts it, and the handler itself supplies what the call waits
   for (it writes to a pipe that the child is waiting on). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int go[2];

static void on_alarm(int sig)
{
    (void) sig;
    if (write(go[1], "g", 1) != 1)
        _exit(99);
}

static void handle(int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

/* A child that waits for the parent's handler, then writes and exits 7. */
static pid_t helper(int out)
{
    pid_t pid = fork();
    char c;

    if (pid == 0) {
        if (read(go[0], &c, 1) == 1 && write(out, "data", 4) == 4)
            _exit(7);
        _exit(8);
    }
    return pid;
}

int main(void)
{
    int pfd[2], status;
    char buf[16];
    ssize_t n;
    pid_t pid, got;

    if (pipe(go) == -1 || pipe(pfd) == -1)
        return 1;
    setvbuf(stdout, NULL, _IONBF, 0);

    for (int restart = 0; restart <= 1; restart++) {
        printf("-- %s\n", restart ? "SA_RESTART" : "no SA_RESTART");
        handle(restart ? SA_RESTART : 0);
        pid = helper(pfd[1]);
        alarm(1);
        n = read(pfd[0], buf, sizeof buf);
        if (n == -1 && errno == EINTR)
            printf("read: timed out (EINTR)\n");
        else
            printf("read: restarted, got %.*s\n", (int) n, buf);
        if (n == -1 && read(pfd[0], buf, 4) == 4)
            printf("read: the data came afterwards\n");
        waitpid(pid, &status, 0);

        /* wait(): the child exits only once the handler has run. */
        pid = fork();
        if (pid == 0) {
            char c;
            _exit(read(go[0], &c, 1) == 1 ? 5 : 6);
        }
        alarm(1);
        got = wait(&status);
        if (got == -1 && errno == EINTR) {
            printf("wait: timed out (EINTR)\n");
            got = wait(&status);
        } else {
            printf("wait: restarted\n");
        }
        printf("wait: reaped the child (%s), exit %d\n", got == pid ? "the right pid" : "another pid",
               WEXITSTATUS(status));
    }
    return 0;
}
