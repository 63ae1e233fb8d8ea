//! The mirrors: C calls named after libc's (`pipe`, `pipe2`, `read`,
//! `write`, `close`, `fork`, `wait`, `waitpid`), for course code to call in
//! their place and compare side by side.
//!
//! Each behaves exactly as the call it is named after: the same return
//! value and errno, the same signals (`SIGPIPE` from a write to a pipe with
//! no reader, `EINTR` when a handler installed without `SA_RESTART`
//! interrupts a blocked call), the same inheritance across `exec` (no
//! close-on-exec unless asked for), the same answer to a bad pointer
//! (`EFAULT`, never a crash). To be that by construction, each calls the C
//! library's own function of the same name, one call each: the caller's
//! pointers go to the kernel untouched (rawipc never reads or writes through
//! them, so an unmapped one cannot fault in rawipc), the options go through
//! as given, and they stay the thread cancellation points that libc's are.
//!
//! rawipc's safer conventions (everything written, EINTR retried, EPIPE and
//! never SIGPIPE) are in rawipc's own calls: `rawipc_write_all` and
//! `rawipc_read_full` (io.rs), the messages, the channel.

use core::ffi::{c_int, c_void};

use rawipc_core::process::{self, Fork};

use crate::{explain, fail, libc, pid_t, ssize_t};

/// Makes a child process, as fork(): through the C library's own fork(), so
/// that pthread_atfork handlers run.
///
/// Returns the child's pid in the parent and 0 in the child, or -1 with errno
/// set (EAGAIN, ENOMEM) and no child.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_fork() -> pid_t {
    // SAFETY: fork's contract (only async-signal-safe calls in a child of a
    // threaded process) is the C caller's, exactly as with fork() itself.
    explain::fork(|| match unsafe { process::fork() } {
        Ok(Fork::Child) => 0,
        Ok(Fork::Parent(pid)) => pid.as_raw_nonzero().get(),
        Err(e) => fail(e),
    })
}

/// Waits for any child to end and reaps it, as wait().
///
/// Returns the child's pid and, if `status` is not NULL, stores its status
/// there (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG apply). Returns -1
/// with errno set: ECHILD (no child to wait for), EINTR (a signal handler
/// installed without SA_RESTART ran first), EFAULT (`status` not writable:
/// the kernel has reaped the child by then, as with wait()).
///
/// # Safety
/// As wait(): the kernel writes `status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_wait(status: *mut c_int) -> pid_t {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    explain::wait(-1, 0, move || unsafe { libc::wait(status) })
}

/// Waits for a child to change state, as waitpid(): `pid` > 0 is that child,
/// -1 any child, 0 any child in the caller's process group, < -1 any child in
/// process group -pid. `options` goes to the kernel as given: WNOHANG,
/// WUNTRACED, WCONTINUED, __WALL, __WCLONE, __WNOTHREAD.
///
/// Returns the child's pid and, if `status` is not NULL, stores its status
/// there; returns 0 with WNOHANG if no child has changed state yet. On error
/// returns -1 with errno set: ECHILD (no such child), EINVAL (options the
/// kernel does not take), EINTR (a signal handler installed without
/// SA_RESTART ran first), EFAULT (`status` not writable), ESRCH (`pid`
/// INT_MIN).
///
/// # Safety
/// As waitpid(): the kernel writes `status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    explain::wait(pid, options, move || unsafe {
        libc::waitpid(pid, status, options)
    })
}

/// Makes a pipe, as pipe(): `fds[0]` is its read end, `fds[1]` its write end.
/// Both are inherited by fork and by exec (no close-on-exec: use
/// rawipc_pipe2(fds, O_CLOEXEC) for that); the caller owns both and closes
/// them with rawipc_close or close.
///
/// Returns 0, or -1 with errno set (and no fd made): EFAULT if `fds` is not
/// writable, EMFILE or ENFILE when out of file descriptors.
///
/// # Safety
/// As pipe(): the kernel writes `fds`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    unsafe { libc::pipe(fds) }
}

/// Makes a pipe, as pipe2(): rawipc_pipe with `flags`, an OR of O_CLOEXEC
/// (closed on exec), O_NONBLOCK (both ends non-blocking) and O_DIRECT (a
/// packet pipe: each write is read as one packet).
///
/// Returns 0, or -1 with errno set (and no fd made): EINVAL for flags the
/// kernel does not take, EFAULT, EMFILE, ENFILE.
///
/// # Safety
/// As pipe2(): the kernel writes `fds`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    unsafe { libc::pipe2(fds, flags) }
}

/// Reads at most `count` bytes from `fd` into `buf`, as read(): one read.
///
/// Returns the number of bytes read; 0 at end of file (for a pipe: every write
/// end is closed, so the writer is gone). On error returns -1 with errno set:
/// EBADF (not an fd open for reading), EFAULT (`buf` not writable), EAGAIN
/// (non-blocking fd, nothing to read), EINTR (a signal handler installed
/// without SA_RESTART ran before anything was read). rawipc_read_full reads
/// until `count` bytes or end of file, retrying EINTR.
///
/// # Safety
/// As read(): the kernel writes up to `count` bytes at `buf`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_read(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    explain::read(fd, count, move || unsafe { libc::read(fd, buf, count) })
}

/// Writes up to `count` bytes of `buf` to `fd`, as write(): one write, which
/// may take less than `count` (a non-blocking pipe with less room, a signal
/// handler after part of it).
///
/// A pipe whose read ends are all closed raises SIGPIPE, which kills the
/// process unless it ignores, blocks or handles SIGPIPE; then -1 with errno
/// EPIPE. Other errors: EBADF, EFAULT (`buf` not readable), EAGAIN
/// (non-blocking fd, full), EINTR (a signal handler installed without
/// SA_RESTART ran before anything was written). rawipc_write_all writes
/// everything, retrying, with EPIPE and never SIGPIPE.
///
/// # Safety
/// As write(): the kernel reads up to `count` bytes at `buf`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_write(fd: c_int, buf: *const c_void, count: usize) -> ssize_t {
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    explain::write(fd, move || unsafe { libc::write(fd, buf, count) })
}

/// Closes `fd`, as close().
///
/// Returns 0, or -1 with errno set: EBADF if `fd` is not an open fd, EINTR or
/// EIO as close() reports them (on Linux the fd is closed even then: never
/// retry a close).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_close(fd: c_int) -> c_int {
    // SAFETY: the caller gives `fd` up; nothing in rawipc holds it.
    unsafe { libc::close(fd) }
}
