/* wait_before_read.c: the parent waits for the child before reading what
   the child sends.

   What goes wrong: the child writes more than the pipe holds (64 KiB on
   Linux). Once the pipe is full, its write() waits for the parent to read;
   the parent is in wait(), waiting for the child to exit. Each waits for the
   other, forever.

   How the notes avoid it: the parent "uses the read command on the read
   side of the fd to get the data sent" until read() returns 0 (end of
   file), and only then waits for the child.

   Usage: wait_before_read    (hangs: run it under a timeout)
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char data[100000];

int main(void)
{
    int fd[2], status;
    long total = 0;
    ssize_t n;

    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(fd);
    if (fork() == 0) {
        close(fd[0]);
        memset(data, 'x', sizeof data);
        write(fd[1], data, sizeof data);
        _exit(0);
    }
    close(fd[1]);
    wait(&status);              /* too early: the child cannot finish */
    while ((n = read(fd[0], data, sizeof data)) > 0)
        total += n;
    printf("read %ld bytes\n", total);
    return 0;
}
