//! The mirrors: C calls named after libc's (`pipe`, `read`, `write`,
//! `close`, `fork`, `wait`, `waitpid`), for course code to call in their
//! place and compare side by side.

use core::ffi::{c_int, c_void};

use rawipc_core::process::{Fork, Pid, WaitOptions};
use rawipc_core::{Errno, pipe, process};

use crate::{borrow_fd, buffer, buffer_mut, fail, give_pair, pid_t, ssize_t};

/// Makes a child process, through the C library's own fork(), so that
/// pthread_atfork handlers run.
///
/// Returns the child's pid in the parent and 0 in the child, or -1 with errno
/// set (EAGAIN, ENOMEM) and no child.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_fork() -> pid_t {
    // SAFETY: fork's contract (only async-signal-safe calls in a child of a
    // threaded process) is the C caller's, exactly as with fork() itself.
    match unsafe { process::fork() } {
        Ok(Fork::Child) => 0,
        Ok(Fork::Parent(pid)) => pid.as_raw_nonzero().get(),
        Err(e) => fail(e),
    }
}

/// Waits for any child to end and reaps it, retrying if a signal interrupts.
///
/// Returns the child's pid and, if `status` is not NULL, stores its status
/// there (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG apply). Returns -1
/// with errno ECHILD if there is no child to wait for.
///
/// # Safety
/// A non-NULL `status` must point to a writable int.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_wait(status: *mut c_int) -> pid_t {
    // SAFETY: the caller's promise is passed on.
    unsafe { rawipc_waitpid(-1, status, 0) }
}

/// Waits for a child to change state, retrying if a signal interrupts:
/// `pid` > 0 is that child, -1 any child, 0 any child in the caller's process
/// group, < -1 any child in process group -pid. `options` is 0 or an OR of
/// WNOHANG, WUNTRACED and WCONTINUED.
///
/// Returns the child's pid and, if `status` is not NULL, stores its status
/// there; returns 0 with WNOHANG if no child has changed state yet (`status`
/// is then not written). On error returns -1 with errno set: ECHILD (no such
/// child), EINVAL (options other than those three), ESRCH (`pid` INT_MIN).
///
/// # Safety
/// A non-NULL `status` must point to a writable int.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let Some(options) = u32::try_from(options).ok().and_then(WaitOptions::from_bits) else {
        return fail(Errno::INVAL);
    };
    let waited = rustix::io::retry_on_intr(|| match pid {
        -1 => rustix::process::wait(options),
        0 => rustix::process::waitpid(None, options),
        p if p > 0 => rustix::process::waitpid(Pid::from_raw(p), options),
        p => match p.checked_neg().and_then(Pid::from_raw) {
            Some(group) => rustix::process::waitpgid(group, options),
            None => Err(Errno::SRCH),
        },
    });
    match waited {
        Ok(Some((child, raw))) => {
            if !status.is_null() {
                // SAFETY: the caller's promise above.
                unsafe { status.write(raw.as_raw()) };
            }
            child.as_raw_nonzero().get()
        }
        Ok(None) => 0,
        Err(e) => fail(e),
    }
}

/// Makes a pipe: `fds[0]` is its read end, `fds[1]` its write end. Both are
/// inherited by fork and closed on exec (close-on-exec); the caller owns both
/// and closes them with rawipc_close or close.
///
/// Returns 0, or -1 with errno set (and `fds` untouched): EFAULT if `fds` is
/// NULL, EMFILE or ENFILE when out of file descriptors.
///
/// # Safety
/// A non-NULL `fds` must point to two writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_pipe(fds: *mut c_int) -> c_int {
    let pair = if fds.is_null() {
        Err(Errno::FAULT)
    } else {
        pipe::pipe().map(|(r, w)| (r.into(), w.into()))
    };
    // SAFETY: the caller's promise is passed on.
    unsafe { give_pair(fds, pair) }
}

/// Reads at most `count` bytes from `fd` into `buf`, retrying if a signal
/// interrupts.
///
/// Returns the number of bytes read; 0 at end of file (for a pipe: every write
/// end is closed, so the writer is gone). On error returns -1 with errno set:
/// EBADF (not an open fd), EFAULT (`buf` NULL with `count` > 0), EINVAL
/// (`count` > SSIZE_MAX), EAGAIN (non-blocking fd, nothing to read).
///
/// # Safety
/// A non-NULL `buf` must point to `count` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_read(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let read = borrow_fd(fd).and_then(|fd| pipe::read(fd, unsafe { buffer_mut(buf, count) }?));
    match read {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Writes all `count` bytes of `buf` to `fd`, retrying after signals and
/// short writes. A pipe whose read ends are all closed gives EPIPE: the
/// process never gets SIGPIPE, and its SIGPIPE disposition is not changed.
///
/// Returns `count`. If an error comes after part of the buffer was written,
/// returns how much was written (less than `count`), as write() would;
/// otherwise -1 with errno set: EBADF, EFAULT (`buf` NULL with `count` > 0),
/// EINVAL (`count` > SSIZE_MAX), EPIPE (no reader left), EAGAIN
/// (non-blocking fd, full).
///
/// # Safety
/// A non-NULL `buf` must point to `count` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_write(fd: c_int, buf: *const c_void, count: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let (fd, buf) = match borrow_fd(fd).and_then(|fd| Ok((fd, unsafe { buffer(buf, count) }?))) {
        Ok(args) => args,
        Err(e) => return fail(e),
    };
    match pipe::write_all(fd, buf) {
        Ok(()) => count as ssize_t,
        Err(e) if e.written > 0 => e.written as ssize_t,
        Err(e) => fail(e.errno),
    }
}

/// Closes `fd`. The fd is closed even if a signal interrupts (Linux frees it
/// at once), so this returns 0 then too and must not be retried.
///
/// Returns 0, or -1 with errno EBADF if `fd` is not an open fd.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_close(fd: c_int) -> c_int {
    if fd < 0 {
        return fail(Errno::BADF);
    }
    // SAFETY: the caller gives `fd` up; nothing in rawipc holds it.
    match unsafe { rustix::io::try_close(fd) } {
        Ok(()) | Err(Errno::INTR) => 0,
        Err(e) => fail(e),
    }
}
