/* zombies.c: children that are never waited for.

   What goes wrong: the parent forks three workers and ends without calling
   wait(). Each worker that has ended stays a zombie (an entry in the process
   table holding its exit status) until its parent waits for it; here nobody
   ever learns whether the workers succeeded. A long-running parent that
   does this fills the process table.

   How the notes avoid it: the parent calls wait(NULL) for the child it
   forked before it ends (and here, once per child).

   Usage: zombies
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        printf("started worker %d\n", (int) pid);
    }
    /* for (int i = 0; i < 3; i++) wait(NULL);   <- forgotten */
    printf("parent done\n");
    return 0;
}
