/* several_writers.c: Beej's several children writing to one pipe. Each of
   four children writes 200 records of PIPE_BUF bytes (a write of at most
   PIPE_BUF bytes is atomic, so records never interleave); the parent reads
   records with a readn() loop until end of file and counts them per writer. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WRITERS 4
#define RECORDS 200

/* Stevens' readn: read n bytes unless end of file comes first. */
static ssize_t readn(int fd, void *vptr, size_t n)
{
    size_t nleft = n;
    char *ptr = vptr;

    while (nleft > 0) {
        ssize_t nread = read(fd, ptr, nleft);
        if (nread < 0) {
            if (errno == EINTR)
                nread = 0;
            else
                return -1;
        } else if (nread == 0) {
            break;
        }
        nleft -= (size_t) nread;
        ptr += nread;
    }
    return (ssize_t) (n - nleft);
}

int main(void)
{
    static char record[PIPE_BUF];
    int pfd[2], counts[WRITERS] = { 0 }, torn = 0, status, ok = 1;

    if (pipe(pfd) == -1)
        return 1;
    for (int w = 0; w < WRITERS; w++) {
        if (fork() == 0) {
            close(pfd[0]);
            memset(record, 'A' + w, sizeof record);
            for (int r = 0; r < RECORDS; r++)
                if (write(pfd[1], record, sizeof record) != (ssize_t) sizeof record)
                    _exit(1);
            _exit(0);
        }
    }
    close(pfd[1]);
    while (readn(pfd[0], record, sizeof record) == (ssize_t) sizeof record) {
        int w = record[0] - 'A';
        for (size_t i = 1; i < sizeof record; i++)
            if (record[i] != record[0])
                torn = 1;
        if (w >= 0 && w < WRITERS)
            counts[w]++;
    }
    for (int w = 0; w < WRITERS; w++) {
        wait(&status);
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
        printf("writer %c: %d records\n", 'A' + w, counts[w]);
    }
    printf("torn records: %s; every writer exited 0: %s\n", torn ? "yes" : "none", ok ? "yes" : "no");
    return 0;
}
