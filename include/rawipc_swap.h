/*
 * rawipc_swap.h: runs unmodified course code on rawipc's mirrors.
 *
 *     cc -include rawipc_swap.h -Iinclude prog.c target/release/librawipc.a
 *
 * turns every pipe, pipe2, read, write, close, fork, wait and waitpid in
 * prog.c into rawipc_pipe, rawipc_pipe2, ..., rawipc_waitpid, which behave
 * exactly as the libc calls (return value, errno, signals, exec inheritance,
 * EFAULT): the program's output, exit status and signals stay the same.
 *
 * How: object-like macros (`#define read rawipc_read`), so that a call, a
 * declaration in a system header, a function pointer (`f = read`), `(read)`
 * and a struct member named `read` are all renamed alike and stay
 * consistent. The system headers the program includes afterwards then
 * declare rawipc's functions, with the same types. This header includes no
 * system header itself: a forced include comes before the program's own
 * `#define _GNU_SOURCE`, which must still decide what <unistd.h> declares.
 *
 * Left to libc: mmap/munmap and socketpair. rawipc's shared memory and
 * message sockets are rawipc's own calls, with rawipc's conventions
 * (rawipc_shared_alloc returns NULL, not MAP_FAILED; rawipc_msg_socketpair
 * makes only AF_UNIX SOCK_SEQPACKET pairs): they cannot stand in for the
 * general calls, and for the notes' one case they make the same system call.
 *
 * For C only (in C++ the renaming would reach the members of iostreams).
 * _FORTIFY_SOURCE is turned off: its inline read() would call libc's read
 * directly, around rawipc_read.
 */
#ifndef RAWIPC_SWAP_H
#define RAWIPC_SWAP_H

#ifdef __cplusplus
#error "rawipc_swap.h is for C programs"
#endif

#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE
#endif

/* rawipc.h's declarations of the mirrors, in types that need no header:
   on Linux pid_t is int and ssize_t is the signed type of size_t's width. */
extern int rawipc_pipe(int fds[2]);
extern int rawipc_pipe2(int fds[2], int flags);
extern __PTRDIFF_TYPE__ rawipc_read(int fd, void *buf, __SIZE_TYPE__ count);
extern __PTRDIFF_TYPE__ rawipc_write(int fd, const void *buf, __SIZE_TYPE__ count);
extern int rawipc_close(int fd);
extern int rawipc_fork(void);
extern int rawipc_wait(int *status);
extern int rawipc_waitpid(int pid, int *status, int options);

#define pipe rawipc_pipe
#define pipe2 rawipc_pipe2
#define read rawipc_read
#define write rawipc_write
#define close rawipc_close
#define fork rawipc_fork
#define wait rawipc_wait
#define waitpid rawipc_waitpid

#endif
