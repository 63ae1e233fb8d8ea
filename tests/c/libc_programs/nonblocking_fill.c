/* nonblocking_fill.c: in the style of LTP's pipe tests. A non-blocking
   pipe is filled until write() answers EAGAIN: everything written fits the
   pipe's capacity exactly; an empty non-blocking read is EAGAIN; a write of
   more than the room left is short; O_DIRECT keeps each write a packet. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    static char buf[100000];
    int pfd[2], capacity;
    long total = 0;
    ssize_t n;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe2(pfd, O_NONBLOCK) == -1)
        return 1;
    capacity = fcntl(pfd[1], F_GETPIPE_SZ);
    errno = 0;
    n = read(pfd[0], buf, 10);
    printf("empty read -> %zd, %s\n", n, strerror(errno));
    while ((n = write(pfd[1], buf, 4096)) > 0)
        total += n;
    printf("filled with 4096-byte writes: %s, then %s\n", total == capacity ? "exactly the capacity" : "not the capacity",
           strerror(errno));
    n = read(pfd[0], buf, 1000);
    printf("read 1000 -> %zd\n", n);
    n = write(pfd[1], buf, sizeof buf);
    printf("write of 100000 into the room left -> %s\n", n > 0 && n < (ssize_t) sizeof buf ? "short" : "not short");
    close(pfd[0]);
    close(pfd[1]);

    if (pipe2(pfd, O_DIRECT) == -1)
        return 1;
    if (write(pfd[1], "one", 3) != 3 || write(pfd[1], "three", 5) != 5)
        return 1;
    n = read(pfd[0], buf, sizeof buf);
    printf("O_DIRECT: first read %zd\n", n);
    n = read(pfd[0], buf, sizeof buf);
    printf("O_DIRECT: second read %zd\n", n);
    errno = 0;
    printf("pipe2(bad flags) -> %d, %s\n", pipe2(pfd, O_APPEND), strerror(errno));
    return 0;
}
