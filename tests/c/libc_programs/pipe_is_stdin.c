/* pipe_is_stdin.c: standard input is closed before pipe(), so the read end
   is fd 0 already. The child rightly skips dup2(fd, fd) when the end is
   already where it belongs, and execs a counter ("wc -c", here this program
   run as "count") that reads its standard input to end of file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int count(void)
{
    char buf[512];
    ssize_t n;
    long total = 0;

    while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0)
        total += n;
    if (n == -1) {
        perror("count: read stdin");
        return 1;
    }
    printf("count: %ld bytes on standard input\n", total);
    return 0;
}

int main(int argc, char *argv[])
{
    int pfd[2], status;
    pid_t pid;

    if (argc == 2 && strcmp(argv[1], "count") == 0)
        return count();
    close(STDIN_FILENO);
    if (pipe(pfd) == -1) {
        perror("pipe");
        return 1;
    }
    printf("the read end is fd %d\n", pfd[0]);
    fflush(stdout);
    switch (pid = fork()) {
    case -1:
        perror("fork");
        return 1;
    case 0:
        if (pfd[0] != STDIN_FILENO) {
            if (dup2(pfd[0], STDIN_FILENO) == -1)
                _exit(126);
            close(pfd[0]);
        }
        close(pfd[1]);
        execl(argv[0], argv[0], "count", (char *) NULL);
        _exit(127);
    }
    close(pfd[0]);
    for (int i = 0; i < 100; i++)
        if (write(pfd[1], "0123456789\n", 11) != 11)
            perror("write");
    close(pfd[1]);
    if (wait(&status) != pid)
        perror("wait");
    printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
