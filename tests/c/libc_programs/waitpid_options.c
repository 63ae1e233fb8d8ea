/* waitpid_options.c: LTP-style waitpid checks. Options pass to the kernel
   as given (__WALL, __WCLONE, __WNOTHREAD are Linux's), unknown ones are
   EINVAL, ECHILD when there is nothing to wait for, process groups. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, int r, int child)
{
    if (r == -1)
        printf("%-36s -> -1, %s\n", what, strerror(errno));
    else
        printf("%-36s -> %s\n", what, r == child ? "the child" : r == 0 ? "0" : "another pid");
}

int main(void)
{
    int status;
    pid_t pid;

    setvbuf(stdout, NULL, _IONBF, 0);
    pid = fork();
    if (pid == 0)
        _exit(1);
    report("waitpid(pid, __WALL)", waitpid(pid, &status, __WALL), pid);
    pid = fork();
    if (pid == 0)
        _exit(2);
    report("waitpid(pid, __WCLONE) of a fork child", waitpid(pid, &status, __WCLONE | WNOHANG), pid);
    report("waitpid(pid, __WNOTHREAD)", waitpid(pid, &status, __WNOTHREAD), pid);
    pid = fork();
    if (pid == 0)
        _exit(3);
    report("waitpid(pid, 0x10000)", waitpid(pid, &status, 0x10000), pid);
    report("waitpid(pid, -1)", waitpid(pid, &status, -1), pid);
    report("waitpid(pid, WNOWAIT)", waitpid(pid, &status, WNOWAIT), pid);
    report("waitpid(INT_MIN, WNOHANG)", waitpid(INT_MIN, &status, WNOHANG), pid);
    report("waitpid(0, 0)", waitpid(0, &status, 0), pid);
    report("waitpid(-1, WNOHANG), no child", waitpid(-1, &status, WNOHANG), pid);
    report("wait(NULL), no child", wait(NULL), pid);
    report("waitpid(1, 0), not a child", waitpid(1, &status, 0), pid);
    return 0;
}
