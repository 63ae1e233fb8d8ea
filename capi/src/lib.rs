//! The C ABI of rawipc: `librawipc.a`, `librawipc.so` and `include/rawipc.h`.
//!
//! Every function is POSIX-shaped: it returns what the call it mirrors
//! returns, or -1 (NULL for pointers) with `errno` set, so `perror` works and
//! course code can swap `pipe` for `rawipc_pipe` and change nothing else.
//! `fail()` is the one place where a Rust error becomes that convention.
//!
//! The library is built with `panic = "abort"`: rawipc does not panic on any
//! input, and if a bug ever made it panic, the process would abort (SIGABRT)
//! rather than unwind into C.

#![no_std]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

mod chan;
mod mutex;

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::slice;

use rawipc_core::process::{Fork, Pid, WaitOptions};
use rawipc_core::{BorrowedFd, Errno, IntoRawFd, msg, pipe, process};

/// A process id, as `<sys/types.h>` defines it.
pub type pid_t = c_int;
/// A signed size, as `<sys/types.h>` defines it.
pub type ssize_t = isize;

unsafe extern "C" {
    fn __errno_location() -> *mut c_int;
    #[cfg_attr(test, allow(dead_code))]
    fn abort() -> !;
}

/// rawipc does not panic on any input; should a bug make it, the process
/// aborts (SIGABRT) instead of unwinding into C. Both profiles build with
/// `panic = "abort"`. (A `cargo clippy --all-targets` test build has std's.)
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: libc's abort takes no argument and raises SIGABRT.
    unsafe { abort() }
}

/// The unwinding personality routine that the precompiled `core` (built with
/// panic=unwind) refers to from its landing pads, and that only std defines.
/// Without it `librawipc.so` has it undefined and `gcc prog.c librawipc.a`
/// fails to link (rust-lang/rust#56152, #106864). Nothing unwinds in this
/// library, so it is never called; if a foreign unwind ever reached it, the
/// process aborts, as a panic would.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() -> ! {
    // SAFETY: libc's abort takes no argument and raises SIGABRT.
    unsafe { abort() }
}

/// Sets `errno` and returns the failure value of the caller's return type:
/// the only place where a Rust error becomes the C convention.
pub(crate) fn fail<T: Failure>(e: Errno) -> T {
    // SAFETY: libc's errno location is valid for the calling thread.
    unsafe { *__errno_location() = e.raw_os_error() };
    T::FAILURE
}

/// The value a C function returns on failure.
pub(crate) trait Failure {
    const FAILURE: Self;
}
impl Failure for c_int {
    const FAILURE: Self = -1;
}
impl Failure for isize {
    const FAILURE: Self = -1;
}
impl Failure for *mut c_void {
    const FAILURE: Self = ptr::null_mut();
}

/// A caller's fd, borrowed for one call; `EBADF` if it cannot be one.
fn borrow_fd<'a>(fd: c_int) -> Result<BorrowedFd<'a>, Errno> {
    if fd < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: a non-negative number; if it is not an open fd the kernel says
    // EBADF, and it is only used for the duration of this call.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// A caller's buffer as a slice: EFAULT for NULL (unless `len` is 0), EINVAL
/// for a length no buffer can have.
///
/// # Safety
/// A non-NULL `buf` must point to `len` bytes the caller lets us use.
pub(crate) unsafe fn buffer<'a>(buf: *const c_void, len: usize) -> Result<&'a [u8], Errno> {
    if len > isize::MAX as usize {
        return Err(Errno::INVAL);
    }
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(Errno::FAULT);
    }
    // SAFETY: the caller's promise above.
    Ok(unsafe { slice::from_raw_parts(buf.cast::<u8>(), len) })
}

/// As [`buffer`], writable.
///
/// # Safety
/// A non-NULL `buf` must point to `len` writable bytes the caller lets us use.
pub(crate) unsafe fn buffer_mut<'a>(buf: *mut c_void, len: usize) -> Result<&'a mut [u8], Errno> {
    if len > isize::MAX as usize {
        return Err(Errno::INVAL);
    }
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Errno::FAULT);
    }
    // SAFETY: the caller's promise above.
    Ok(unsafe { slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// Writes two new fds into the caller's `int fds[2]`, or closes them.
///
/// # Safety
/// A non-NULL `fds` must point to two writable ints.
unsafe fn give_pair(
    fds: *mut c_int,
    pair: Result<(rawipc_core::OwnedFd, rawipc_core::OwnedFd), Errno>,
) -> c_int {
    if fds.is_null() {
        return fail(Errno::FAULT);
    }
    match pair {
        Ok((a, b)) => {
            // SAFETY: the caller's promise above; the fds now belong to the caller.
            unsafe {
                fds.write(a.into_raw_fd());
                fds.add(1).write(b.into_raw_fd());
            }
            0
        }
        Err(e) => fail(e),
    }
}

/// Maps `size` bytes of zero-filled memory shared with every child forked
/// afterwards: `mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED |
/// MAP_ANONYMOUS, -1, 0)`.
///
/// Returns the memory's address (page-aligned), or NULL with errno set:
/// EINVAL if `size` is 0, ENOMEM if that much memory cannot be had.
/// Free it with rawipc_shared_free(addr, size), in each process that has it.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_shared_alloc(size: usize) -> *mut c_void {
    match rawipc_core::shm::SharedRegion::new(size) {
        Ok(region) => region.into_raw().0.cast(),
        Err(e) => fail(e),
    }
}

/// Unmaps shared memory from rawipc_shared_alloc: `munmap(addr, size)`, with
/// the same `size` as the allocation. Other processes keep their mapping.
///
/// Returns 0, or -1 with errno set: EINVAL if `addr` is NULL or not
/// page-aligned, or if `size` is 0.
///
/// # Safety
/// Nothing in this process may use the memory afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_shared_free(addr: *mut c_void, size: usize) -> c_int {
    if addr.is_null() || size == 0 {
        return fail(Errno::INVAL);
    }
    // SAFETY: the caller gives the mapping up; munmap checks alignment.
    match unsafe { rustix::mm::munmap(addr, size) } {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

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

/// Makes two connected message sockets (AF_UNIX, SOCK_SEQPACKET): a message
/// sent on `fds[0]` is received whole on `fds[1]`, and the other way round. Both
/// are inherited by fork, closed on exec, and owned by the caller.
///
/// Returns 0, or -1 with errno set (and `fds` untouched): EFAULT if `fds` is
/// NULL, EMFILE or ENFILE when out of file descriptors.
///
/// # Safety
/// A non-NULL `fds` must point to two writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_socketpair(fds: *mut c_int) -> c_int {
    let pair = if fds.is_null() {
        Err(Errno::FAULT)
    } else {
        msg::socketpair().map(|(a, b)| (a.into(), b.into()))
    };
    // SAFETY: the caller's promise is passed on.
    unsafe { give_pair(fds, pair) }
}

/// Sends the `len` bytes at `buf` as one message, retrying if a signal
/// interrupts.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` is 0: empty messages are
/// refused, so that a receive of 0 always means the peer is gone, or `len` >
/// SSIZE_MAX), EFAULT (`buf` NULL with `len` > 0), EMSGSIZE (larger than the
/// socket's send buffer), EPIPE (peer gone; never SIGPIPE), EBADF, ENOTSOCK.
///
/// # Safety
/// A non-NULL `buf` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_send(fd: c_int, buf: *const c_void, len: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let sent = borrow_fd(fd).and_then(|fd| msg::send(fd, unsafe { buffer(buf, len) }?));
    match sent {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Receives one whole message into `buf`, waiting for one, retrying if a
/// signal interrupts.
///
/// Returns the message's length; 0 when the peer is gone (every message it
/// sent has been received). On error returns -1 with errno set: EMSGSIZE if
/// the message is larger than `cap` (it stays queued: ask rawipc_msg_size and
/// receive it into a larger buffer), EFAULT (`buf` NULL with `cap` > 0),
/// EINVAL (`cap` > SSIZE_MAX), EBADF, ENOTSOCK, EAGAIN (non-blocking, none).
///
/// # Safety
/// A non-NULL `buf` must point to `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_recv(fd: c_int, buf: *mut c_void, cap: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let got = borrow_fd(fd).and_then(|fd| msg::recv(fd, unsafe { buffer_mut(buf, cap) }?));
    match got {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Returns the size of the next message on `fd` without receiving it,
/// waiting for one; 0 when the peer is gone. On error returns -1 with errno
/// set: EBADF, ENOTSOCK, EAGAIN (non-blocking, none).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_msg_size(fd: c_int) -> ssize_t {
    match borrow_fd(fd).and_then(msg::next_size) {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Returns rawipc's version, such as "0.1.0": a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
