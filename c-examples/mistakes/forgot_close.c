/* forgot_close.c: the parent forgets to close its copy of the write end.

   What goes wrong: the child writes its message and exits, and the parent
   reads until end of file. But end of file comes only when every write end
   of the pipe is closed, and the parent still holds one: its last read()
   waits forever, for a write that only the parent itself could make.

   How the notes avoid it: "The parent closes the write side of the fd and
   uses the read command on the read side of the fd": close(fd[1]) in the
   parent right after fork(), before the first read.

   Usage: forgot_close        (hangs: run it under a timeout)
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd[2];
    char buf[64];
    ssize_t n;

    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(fd);
    if (fork() == 0) {
        close(fd[0]);
        write(fd[1], "hello from the child\n", 21);
        _exit(0);
    }
    /* close(fd[1]);   <- forgotten */
    while ((n = read(fd[0], buf, sizeof buf)) > 0)
        printf("parent got: %.*s", (int) n, buf);
    printf("end of file\n");
    wait(NULL);
    return 0;
}
