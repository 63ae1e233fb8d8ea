/* shm_counter_course.c

   The notes' shared-memory program, as the notes wrote it: the parent maps
   one int of shared memory (mmap with MAP_SHARED | MAP_ANONYMOUS), sets it to
   1 and forks; the child sets it to 5 and exits; the parent waits for the
   child and prints 5, the child's value, because parent and child share that
   page. (Ordinary memory would be copied by fork and the parent would print 1.)

   Only two changes from the notes: the #include lines, and the typo
   `*globvar = 1;` corrected to `*glob_var = 1;`. Like the notes, it checks no
   call (a failed mmap would crash it); its twin shm_counter_rawipc.c does the
   same through rawipc.h and checks every call.

   Usage: shm_counter_course
*/
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS is Linux's, not POSIX's: -std=c11 hides it */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int *glob_var;

int main(void){
	glob_var = mmap(NULL, sizeof *glob_var, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0); //MAP_ANONYMOUS prevents the memory from being backed up in a file

	*glob_var = 1;

	if (fork() == 0){
		*glob_var = 5;
		exit(EXIT_SUCCESS);
	}
	else {
		wait(NULL);
		printf("%d\n", *glob_var);
		munmap(glob_var, sizeof *glob_var);
	}
}
