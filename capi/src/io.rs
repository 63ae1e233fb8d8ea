//! rawipc's own reading and writing, with rawipc's conventions: all of it or
//! an error, EINTR retried, EPIPE and never SIGPIPE. What course code writes
//! as a loop around read() and write() (Stevens' readn and writen), for any
//! fd: pipes, sockets, files; and a read that gives up after a timeout, which
//! course code writes with poll() before read().

use core::ffi::{c_int, c_void};

use rawipc_core::Errno;
use rawipc_core::pipe::{WriteError, read, read_timeout, write_all_raw};

use crate::{borrow_fd, buffer_mut, errno, fail, libc, ssize_t, timeout};

/// The largest count whose result fits in a `ssize_t`.
const MAX_COUNT: usize = isize::MAX as usize;

/// Writes all `count` bytes of `buf` to `fd`, retrying after short writes
/// and signals (EINTR). A pipe or socket whose readers are all gone gives
/// EPIPE and never SIGPIPE: the process's SIGPIPE disposition, the thread's
/// signal mask and the signals pending are left exactly as they were.
///
/// Returns `count`. If an error comes after part of the buffer was written,
/// returns how much was written (less than `count`: the next call reports the
/// error); otherwise -1 with errno set: EBADF, EFAULT (`buf` not readable),
/// EINVAL (`count` > SSIZE_MAX), EPIPE (no reader left), EAGAIN (non-blocking
/// fd, full). A `count` of 0 makes one empty write, which reports a bad fd.
///
/// # Safety
/// The kernel reads up to `count` bytes at `buf`, as write() does.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_write_all(fd: c_int, buf: *const c_void, count: usize) -> ssize_t {
    if count > MAX_COUNT {
        return fail(Errno::INVAL);
    }
    let fd = match borrow_fd(fd) {
        Ok(fd) => fd,
        Err(e) => return fail(e),
    };
    // SAFETY: the caller's pointer goes to the kernel, which checks it.
    match unsafe { write_all_raw(fd, buf.cast(), count) } {
        Ok(()) => count as ssize_t,
        Err(WriteError { written, .. }) if written > 0 => written as ssize_t,
        Err(e) => fail(e.errno),
    }
}

/// Reads from `fd` into `buf` until `count` bytes have come or end of file,
/// retrying after signals (EINTR) and short reads.
///
/// Returns how many bytes were read: `count`, or less at end of file (0 if
/// there was nothing left), or less if an error came after some bytes (the
/// next call reports it). Otherwise -1 with errno set: EBADF, EFAULT (`buf`
/// not writable), EINVAL (`count` > SSIZE_MAX), EAGAIN (non-blocking fd,
/// nothing to read). A `count` of 0 makes one empty read, which reports a bad
/// fd.
///
/// # Safety
/// The kernel writes up to `count` bytes at `buf`, as read() does.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_read_full(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t {
    if count > MAX_COUNT {
        return fail(Errno::INVAL);
    }
    let mut got = 0;
    loop {
        // SAFETY: the caller's pointer (advanced within its `count` bytes)
        // goes to the kernel, which checks it; no reference is formed.
        let n = unsafe { libc::read(fd, buf.cast::<u8>().wrapping_add(got).cast(), count - got) };
        match n {
            0 => return got as ssize_t,
            n if n > 0 => got += n as usize,
            _ if errno() == Errno::INTR.raw_os_error() => continue,
            // errno is libc's; a short count keeps it set, too.
            _ if got > 0 => return got as ssize_t,
            _ => return -1,
        }
        if got >= count {
            return got as ssize_t;
        }
    }
}

/// Reads at most `count` bytes from `fd` into `buf`, as one read(), waiting
/// at most `timeout_ms` milliseconds (-1: no bound; 0: no wait) for
/// something to read, on a blocking fd or a non-blocking one; retried after
/// signals (EINTR), which do not move the deadline (CLOCK_MONOTONIC).
///
/// Returns how many bytes were read, 0 at end of file (for a pipe: every
/// writer gone, at once, never ETIMEDOUT). Otherwise -1 with errno set:
/// ETIMEDOUT (nothing came in time; nothing was read), EBADF, EFAULT (`buf`
/// NULL with `count` > 0, or not writable), EINVAL (`count` > SSIZE_MAX,
/// `timeout_ms` below -1). For one reader per pipe: another one reading the
/// same pipe may take the bytes between the wait and the read.
///
/// # Safety
/// A non-NULL `buf` must point to `count` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_read_timeout(
    fd: c_int,
    buf: *mut c_void,
    count: usize,
    timeout_ms: c_int,
) -> ssize_t {
    let got = timeout(timeout_ms).and_then(|t| {
        let fd = borrow_fd(fd)?;
        // SAFETY: the caller's promise is passed on.
        let buf = unsafe { buffer_mut(buf, count) }?;
        match t {
            None => read(fd, buf),
            Some(t) => read_timeout(fd, buf, t),
        }
    });
    match got {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}
