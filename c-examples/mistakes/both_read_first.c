/* both_read_first.c: two pipes, one each way, and both processes read first.

   What goes wrong: the parent waits for the child's answer before it sends
   its question; the child waits for the question before it answers. Each
   read() waits for the other process to write, and neither ever does. Both
   have closed the ends they do not use, so no end of file comes either.

   How the notes avoid it: one side writes first. Here the parent writes its
   question on the write side of one pipe, then reads the answer from the
   read side of the other.

   Usage: both_read_first     (hangs: run it under a timeout)
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int question[2], answer[2];
    char buf[16];

    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(question);
    pipe(answer);
    if (fork() == 0) {
        close(question[1]);
        close(answer[0]);
        read(question[0], buf, sizeof buf);     /* waits for the question */
        write(answer[1], "42", 3);
        _exit(0);
    }
    close(question[0]);
    close(answer[1]);
    read(answer[0], buf, sizeof buf);           /* waits for the answer: too early */
    write(question[1], "why?", 5);
    printf("answer: %s\n", buf);
    wait(NULL);
    return 0;
}
