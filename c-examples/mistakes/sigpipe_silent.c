/* sigpipe_silent.c: a writer whose reader is gone dies of SIGPIPE without
   a word.

   What goes wrong: the child reads one message and exits. The parent writes
   a second message to a pipe that no process reads any more: the kernel
   sends it SIGPIPE, whose default action ends the process at once. Nothing
   is printed; the shell shows exit status 141 (128 + SIGPIPE).

   How the notes avoid it: the reader keeps reading the read side of the fd
   until end of file, so it outlives the writer. A writer that must survive
   a reader's death ignores SIGPIPE and checks for write() returning -1 with
   errno EPIPE.

   Usage: sigpipe_silent      (dies of SIGPIPE)
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd[2];
    char buf[6];

    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(fd);
    if (fork() == 0) {
        close(fd[1]);
        read(fd[0], buf, sizeof buf);       /* one message, then it is done */
        _exit(0);
    }
    close(fd[0]);
    write(fd[1], "first", 6);
    wait(NULL);                             /* the reader is gone now */
    write(fd[1], "second", 7);
    printf("sent both messages\n");         /* never printed */
    return 0;
}
