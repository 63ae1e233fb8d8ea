/* common.h

   The one helper the examples share: err_exit(), after TLPI's errExit().
   Every call in the examples is checked on its own line; when one fails,
   err_exit() prints what failed and why, and ends the program. perror() reads
   errno, which the rawipc functions set exactly as the system calls do, so
   the helper serves both versions of each example.
*/
#ifndef COMMON_H
#define COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* Prints "what: <the error errno names>" on stderr and exits with failure. */
static inline _Noreturn void err_exit(const char *what)
{
    perror(what);
    exit(EXIT_FAILURE);
}

#endif
