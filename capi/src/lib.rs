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

// The mirrors of libc's calls, in a file of their own; rawipc's own calls,
// with rawipc's conventions, in one file per mechanism.
mod mirrors;

mod chan;
mod msg;
mod mutex;
mod shm;

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::slice;

use rawipc_core::{BorrowedFd, Errno, IntoRawFd};

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
///
/// It is defined under its own name and given the name `rust_eh_personality`
/// with hidden visibility, so that the links inside the library resolve to it
/// and `librawipc.so` does not export it (a `#[no_mangle]` function would be
/// exported whatever the version script says).
#[cfg(not(test))]
extern "C" fn eh_personality() -> ! {
    // SAFETY: libc's abort takes no argument and raises SIGABRT.
    unsafe { abort() }
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

/// Writes two new fds into the caller's `int fds[2]`, or closes them.
///
/// # Safety
/// A non-NULL `fds` must point to two writable ints.
pub(crate) unsafe fn give_pair(
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

/// Returns rawipc's version, such as "0.1.0": a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
