/* shm_counter_rawipc.c

   The notes' shared-memory program through rawipc: the parent gets one int
   of shared memory from rawipc_shared_alloc(), sets it to 1 and forks with
   rawipc_fork(); the child sets it to 5 and exits; the parent waits for it
   with rawipc_wait() and prints 5, the value the child left in the memory
   they share.

   Differences from its twin shm_counter_course.c: every call is checked;
   rawipc_shared_alloc(size) stands for the whole mmap() line (no flags to
   get wrong: it is always readable, writable, shared and zero-filled) and
   returns NULL on failure rather than MAP_FAILED; and the program needs no
   POSIX header and no feature-test macro, only rawipc.h and the C library.

   Usage: shm_counter_rawipc
*/
#include <stdio.h>
#include <stdlib.h>

#include "rawipc.h"
#include "common.h"

static int *glob_var;

int main(void)
{
    pid_t pid;

    glob_var = rawipc_shared_alloc(sizeof *glob_var);
    if (glob_var == NULL)
        err_exit("rawipc_shared_alloc");

    *glob_var = 1;

    pid = rawipc_fork();
    if (pid == -1)
        err_exit("rawipc_fork");
    if (pid == 0) {             /* child */
        *glob_var = 5;
        exit(EXIT_SUCCESS);
    }

    /* parent */
    if (rawipc_wait(NULL) == -1)
        err_exit("rawipc_wait");
    printf("%d\n", *glob_var);
    if (rawipc_shared_free(glob_var, sizeof *glob_var) == -1)
        err_exit("rawipc_shared_free");
    exit(EXIT_SUCCESS);
}
