/* bad_pointers.c: as the syscall test suites check it, a bad address is
   EFAULT, never a crash, and leaves no fd behind: pipe() and pipe2() into
   an unmapped array, read() into and write() from unmapped memory,
   waitpid() and wait() with an unmapped status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r)
{
    /* (a pid is printed as 1: pids differ from run to run) */
    printf("%-40s -> %ld, %s\n", what, r, r == -1 ? strerror(errno) : "no error");
}

static int next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    close(fd);
    return fd;
}

int main(void)
{
    void *bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *volatile null = NULL;     /* volatile: the compiler must not refuse it */
    int fd0, pfd[2], status;
    pid_t pid;

    munmap(bad, 4096);
    fd0 = next_fd();
    errno = 0;
    report("pipe((int *) -1)", pipe((int *) -1));
    report("pipe(unmapped)", pipe(bad));
    report("pipe2(unmapped, O_CLOEXEC)", pipe2(bad, O_CLOEXEC));
    report("pipe(NULL)", pipe(null));
    printf("next fd unchanged: %s\n", next_fd() == fd0 ? "yes" : "no");

    if (pipe(pfd) == -1)
        return 1;
    report("write(unmapped, 10)", write(pfd[1], bad, 10));
    report("write(NULL, 0)", write(pfd[1], null, 0));
    report("write(\"abc\", 3)", write(pfd[1], "abc", 3));
    report("read(unmapped, 10)", read(pfd[0], bad, 10));
    report("read(NULL, 10)", read(pfd[0], null, 10));
    {
        char buf[8];
        long n = read(pfd[0], buf, sizeof buf);
        printf("then read gets %ld bytes: %.3s\n", n, buf);
    }
    report("read(closed fd)", read(next_fd(), pfd, 1));
    report("write(-1)", write(-1, "x", 1));
    report("close(-1)", close(-1));
    report("close(closed fd)", close(next_fd()));

    pid = fork();
    if (pid == 0)
        _exit(3);
    report("waitpid(pid, (int *) 1, 0)", waitpid(pid, (int *) 1, 0) == pid ? 1 : -1);
    report("waitpid(pid, &status, WNOHANG) after", waitpid(pid, &status, WNOHANG));
    pid = fork();
    if (pid == 0)
        _exit(4);
    report("wait(unmapped)", wait(bad) == pid ? 1 : -1);
    report("wait(&status) with no child left", wait(&status));
    close(pfd[0]);
    close(pfd[1]);
    printf("next fd at the end unchanged: %s\n", next_fd() == fd0 ? "yes" : "no");
    return 0;
}
