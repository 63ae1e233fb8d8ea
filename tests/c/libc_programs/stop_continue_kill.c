/* stop_continue_kill.c: TLPI's child status reporting. A child stops
   itself with SIGSTOP, is continued with SIGCONT, and is killed with
   SIGTERM; the parent sees each change with waitpid(WUNTRACED | WCONTINUED)
   and prints it the way TLPI's printWaitStatus() does. Also WNOHANG while
   nothing has changed, and a child that exits normally. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void print_status(const char *msg, int status)
{
    if (WIFEXITED(status))
        printf("%s: exited, status=%d\n", msg, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d%s\n", msg, WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    else if (WIFSTOPPED(status))
        printf("%s: stopped by signal %d\n", msg, WSTOPSIG(status));
    else if (WIFCONTINUED(status))
        printf("%s: continued\n", msg);
}

int main(void)
{
    int status, sync[2];
    pid_t pid;
    char c;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(sync) == -1)
        return 1;
    pid = fork();
    if (pid == 0) {
        close(sync[0]);
        raise(SIGSTOP);
        if (write(sync[1], "c", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(sync[1]);
    if (waitpid(pid, &status, WUNTRACED) == pid)
        print_status("waitpid(WUNTRACED)", status);
    printf("waitpid(WNOHANG) while stopped -> %d\n", (int) waitpid(pid, &status, WNOHANG));
    kill(pid, SIGCONT);
    if (waitpid(pid, &status, WCONTINUED) == pid)
        print_status("waitpid(WCONTINUED)", status);
    if (read(sync[0], &c, 1) == 1)
        printf("the child runs again\n");
    kill(pid, SIGTERM);
    if (waitpid(pid, &status, 0) == pid)
        print_status("waitpid(0)", status);

    pid = fork();
    if (pid == 0)
        _exit(42);
    if (wait(&status) == pid)
        print_status("wait", status);
    pid = fork();
    if (pid == 0) {
        kill(getpid(), SIGKILL);
        _exit(0);
    }
    if (waitpid(-1, &status, 0) == pid)
        print_status("waitpid(-1)", status);
    return 0;
}
