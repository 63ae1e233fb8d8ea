/* exec_fd_by_number.c: the parent makes a pipe, forks, and the child execs
   a reader (this same program, run as "reader FD"), handing it the read end's
   number on the command line, as TLPI's and Beej's examples do. The pipe
   end must survive exec (pipe() makes no close-on-exec fd). A second pipe,
   made with pipe2(O_CLOEXEC), must not survive. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int reader(const char *fdstr, const char *closed)
{
    int fd = atoi(fdstr);
    char buf[128];
    ssize_t n, total = 0;

    if (fcntl(atoi(closed), F_GETFD) == -1 && errno == EBADF)
        printf("reader: the O_CLOEXEC pipe end was closed by exec\n");
    else
        printf("reader: the O_CLOEXEC pipe end survived exec\n");
    while ((n = read(fd, buf + total, sizeof buf - 1 - (size_t) total)) > 0)
        total += n;
    if (n == -1) {
        printf("reader: read fd %d: %s\n", fd, strerror(errno));
        return 1;
    }
    buf[total] = '\0';
    printf("reader: got \"%s\" from the fd number it was given\n", buf);
    return 0;
}

int main(int argc, char *argv[])
{
    int pfd[2], cfd[2], status;
    char fdstr[16], closedstr[16];
    pid_t pid;

    if (argc == 4 && strcmp(argv[1], "reader") == 0)
        return reader(argv[2], argv[3]);
    if (pipe(pfd) == -1 || pipe2(cfd, O_CLOEXEC) == -1) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    switch (pid = fork()) {
    case -1:
        perror("fork");
        return 1;
    case 0:
        close(pfd[1]);
        snprintf(fdstr, sizeof fdstr, "%d", pfd[0]);
        snprintf(closedstr, sizeof closedstr, "%d", cfd[0]);
        execl(argv[0], argv[0], "reader", fdstr, closedstr, (char *) NULL);
        perror("execl");
        _exit(127);
    }
    close(pfd[0]);
    if (write(pfd[1], "across exec", 11) != 11)
        perror("write");
    close(pfd[1]);
    if (waitpid(pid, &status, 0) != pid)
        perror("waitpid");
    printf("parent: reader exited with %d\n", WEXITSTATUS(status));
    return 0;
}
