/* header_check.c

   Compiled (never run) as C99, C11 and C++ with -Wall -Wextra -Wpedantic
   -Werror by tests/c_abi.rs: include/rawipc.h must stand on its own (it
   comes first, before any other header), survive being included twice, and
   declare each function of the foundation with exactly the type its
   documentation gives. Assigning a function to a pointer of the documented
   type is a warning (so an error here) in C, and an error in C++, when the
   types differ.
*/
#include "rawipc.h"
#include "rawipc.h"

#include <stddef.h>
#include <sys/types.h>

typedef void *shared_alloc_fn(size_t);
typedef int shared_free_fn(void *, size_t);
typedef pid_t fork_fn(void);
typedef pid_t wait_fn(int *);
typedef pid_t waitpid_fn(pid_t, int *, int);
typedef int fds_fn(int *);
typedef ssize_t read_fn(int, void *, size_t);
typedef ssize_t write_fn(int, const void *, size_t);
typedef int close_fn(int);
typedef ssize_t size_fn(int);
typedef const char *version_fn(void);

int main(void)
{
    shared_alloc_fn *shared_alloc = rawipc_shared_alloc;
    shared_free_fn *shared_free = rawipc_shared_free;
    fork_fn *fork_ = rawipc_fork;
    wait_fn *wait_ = rawipc_wait;
    waitpid_fn *waitpid_ = rawipc_waitpid;
    fds_fn *pipe_ = rawipc_pipe;
    read_fn *read_ = rawipc_read;
    write_fn *write_ = rawipc_write;
    close_fn *close_ = rawipc_close;
    fds_fn *msg_socketpair = rawipc_msg_socketpair;
    write_fn *msg_send = rawipc_msg_send;
    read_fn *msg_recv = rawipc_msg_recv;
    size_fn *msg_size = rawipc_msg_size;
    version_fn *version = rawipc_version;

    return shared_alloc == NULL || shared_free == NULL || fork_ == NULL || wait_ == NULL
        || waitpid_ == NULL || pipe_ == NULL || read_ == NULL || write_ == NULL
        || close_ == NULL || msg_socketpair == NULL || msg_send == NULL || msg_recv == NULL
        || msg_size == NULL || version == NULL;
}
