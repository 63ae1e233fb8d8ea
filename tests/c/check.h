/* check.h: the checks of rawipc's C tests. Each check prints one line, "ok"
   or "FAIL" with the line and errno; `failures` counts the failed ones, and a
   test's main returns `failures ? 1 : 0`.

   Include it after <errno.h>, <stdio.h> and <string.h>.
*/
#ifndef RAWIPC_TESTS_CHECK_H
#define RAWIPC_TESTS_CHECK_H

#include <stddef.h>

static int failures;

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (cond) {                                                              \
            printf("ok   %s\n", what);                                           \
        } else {                                                                 \
            printf("FAIL %s (line %d, errno %d: %s)\n", what, __LINE__, errno,   \
                   strerror(errno));                                             \
            failures++;                                                          \
        }                                                                        \
        fflush(stdout);                                                          \
    } while (0)

static inline int check_failed_ptr_(const void *r) { return r == NULL; }
static inline int check_failed_int_(long long r) { return r == -1; }

/* The call failed, with this errno: -1 from a call that returns a number,
   NULL from one that returns a pointer. */
#define FAILS(call, err, what)                                                   \
    do {                                                                         \
        errno = 0;                                                               \
        int failed_ = _Generic((call),                                           \
                               void *: check_failed_ptr_,                        \
                               const void *: check_failed_ptr_,                  \
                               const char *: check_failed_ptr_,                  \
                               default: check_failed_int_)(call);                \
        CHECK(failed_ && errno == (err), what);                                  \
    } while (0)

#endif
