//! The C ABI of rawipc: `librawipc.a`, `librawipc.so` and `include/rawipc.h`.
//!
//! Two layers. The mirrors (`mirrors.rs`: `rawipc_pipe`, `rawipc_pipe2`,
//! `rawipc_read`, `rawipc_write`, `rawipc_close`, `rawipc_fork`,
//! `rawipc_wait`, `rawipc_waitpid`) behave exactly as the libc calls they are
//! named after, signals, exec inheritance and bad pointers included, so
//! course code can swap `pipe` for `rawipc_pipe` and change nothing else.
//! rawipc's own calls (`io.rs`: `rawipc_write_all`, `rawipc_read_full`,
//! `rawipc_read_timeout`; the
//! messages, shared memory, mutex and channel) have rawipc's safer
//! conventions: everything or an error, EINTR retried, EPIPE and never
//! SIGPIPE, fds close-on-exec unless asked otherwise. Both return -1 (NULL
//! for pointers) with `errno` set on failure, so `perror` works; `fail()` is
//! the one place where a Rust error becomes that convention.
//!
//! The library is built with `panic = "abort"`: rawipc does not panic on any
//! input, and if a bug ever made it panic, the process would abort (SIGABRT)
//! rather than unwind into C.

#![no_std]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

// The mirrors of libc's calls, in a file of their own; rawipc's own calls,
// with rawipc's conventions, in one file per mechanism.
mod mirrors;

mod io;

mod call;
// Explain mode (RAWIPC_EXPLAIN=1): what the mirrors see of the notes'
// classic pipe mistakes, told on stderr.
mod explain;

mod chan;
mod endpoint;
// The handles in C callers' memory that rawipc's objects keep their state in,
// checked before use.
mod handle;
mod msg;
mod mutex;
mod pipe_fast;
mod shm;

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::slice;
use core::time::Duration;

use rawipc_core::{BorrowedFd, Errno};

/// A process id, as `<sys/types.h>` defines it.
pub type pid_t = c_int;
/// A signed size, as `<sys/types.h>` defines it.
pub type ssize_t = isize;
/// A user id, as `<sys/types.h>` defines it.
pub type uid_t = u32;
/// A group id, as `<sys/types.h>` defines it.
pub type gid_t = u32;

/// The C library's functions that rawipc calls (the C library is always
/// linked with one): the mirrors are libc's own calls, so that they behave
/// exactly as those.
pub(crate) mod libc {
    use super::{c_char, c_int, c_void, pid_t, ssize_t};
    unsafe extern "C" {
        pub(crate) fn __errno_location() -> *mut c_int;
        #[cfg_attr(test, allow(dead_code))]
        pub(crate) fn abort() -> !;
        pub(crate) fn pipe(fds: *mut c_int) -> c_int;
        pub(crate) fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
        pub(crate) fn read(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t;
        pub(crate) fn write(fd: c_int, buf: *const c_void, count: usize) -> ssize_t;
        pub(crate) fn close(fd: c_int) -> c_int;
        pub(crate) fn wait(status: *mut c_int) -> pid_t;
        pub(crate) fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
        pub(crate) fn socketpair(
            domain: c_int,
            kind: c_int,
            protocol: c_int,
            fds: *mut c_int,
        ) -> c_int;
        // Explain mode only (explain.rs): the environment variable, SIGPIPE's
        // disposition and mask, what is pending, the exit check.
        pub(crate) fn getenv(name: *const c_char) -> *mut c_char;
        pub(crate) fn sigaction(sig: c_int, act: *const c_void, old: *mut c_void) -> c_int;
        pub(crate) fn pthread_sigmask(how: c_int, set: *const c_void, old: *mut c_void) -> c_int;
        pub(crate) fn sigpending(set: *mut c_void) -> c_int;
        pub(crate) fn signalfd(fd: c_int, mask: *const c_void, flags: c_int) -> c_int;
        pub(crate) fn atexit(f: extern "C" fn()) -> c_int;
        pub(crate) fn clock_gettime(clock: c_int, time: *mut c_void) -> c_int;
    }
}

/// This thread's `errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: libc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

/// rawipc does not panic on any input; should a bug make it, the process
/// aborts (SIGABRT) instead of unwinding into C. Both profiles build with
/// `panic = "abort"`. (A `cargo clippy --all-targets` test build has std's.)
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: libc's abort takes no argument and raises SIGABRT.
    unsafe { libc::abort() }
}

/// The unwinding personality routine that the precompiled `core` (built with
/// panic=unwind) refers to from its landing pads, and that only std defines.
/// Without it `librawipc.so` has it undefined and `gcc prog.c librawipc.a`
/// fails to link (rust-lang/rust#56152, #106864). Nothing unwinds in this
/// library, so it is never called; if a foreign unwind ever reached it, the
/// process aborts, as a panic would.
///
/// It is defined under its own name and given the name `rust_eh_personality`
/// with hidden visibility, so that the links inside the library resolve to it
/// and `librawipc.so` does not export it (a `#[no_mangle]` function would be
/// exported whatever the version script says).
#[cfg(not(test))]
extern "C" fn eh_personality() -> ! {
    // SAFETY: libc's abort takes no argument and raises SIGABRT.
    unsafe { libc::abort() }
}

#[cfg(not(test))]
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".set rust_eh_personality, {personality}",
    personality = sym eh_personality,
);

/// Sets `errno` and returns the failure value of the caller's return type:
/// the only place where a Rust error becomes the C convention.
pub(crate) fn fail<T: Failure>(e: Errno) -> T {
    // SAFETY: libc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() = e.raw_os_error() };
    T::FAILURE
}

/// A length as a C call returns it: the length, or -1 with errno set.
pub(crate) fn ret_len(r: Result<usize, Errno>) -> ssize_t {
    match r {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// A C call's status: 0, or -1 with errno set.
pub(crate) fn ret_int(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
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

/// A C timeout in milliseconds, as poll(2) takes it: -1 waits for ever
/// (`None`), 0 does not wait, any other negative number is EINVAL.
pub(crate) fn timeout(ms: c_int) -> Result<Option<Duration>, Errno> {
    match ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        _ => Err(Errno::INVAL),
    }
}

/// How long a call waits.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all: EAGAIN (the `_try_` calls).
    Not,
    /// For ever (`None`), or at most this long, then ETIMEDOUT.
    For(Option<Duration>),
}

/// A caller's fd, borrowed for one call; `EBADF` if it cannot be one.
pub(crate) fn borrow_fd<'a>(fd: c_int) -> Result<BorrowedFd<'a>, Errno> {
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

/// Returns rawipc's version, such as "0.1.0": a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
