//! rawipc: the inter-process communication of a course's notes, as a small
//! Linux library with no allocator and no libc.
//!
//! | the notes | module |
//! |---|---|
//! | shared memory: `mmap(MAP_SHARED \| MAP_ANONYMOUS)` before `fork` | [`shm`] |
//! | `fork`, `wait`, `exit` | [`process`] |
//! | pipes, and end of file telling a reader that its writer died | [`pipe`] |
//! | message passing over a socket | [`msg`] |
//!
//! Every system call goes through [rustix] (its `linux_raw` backend, no libc
//! crate); the library never allocates, and is `#![no_std]` unless the `std`
//! feature adds `std::io` traits. Errors are [`Errno`] values: the kernel's
//! error numbers, which the C ABI hands to C programs as `errno`.
//!
//! Calls retry `EINTR` themselves, so a signal handler in the middle of a read,
//! a write or a wait never surfaces as an error.
//!
//! ```no_run
//! use core::sync::atomic::{AtomicI32, Ordering};
//! use rawipc::process::{self, Fork};
//! use rawipc::shm::Shared;
//!
//! # fn main() -> Result<(), rawipc::Errno> {
//! let glob_var = Shared::new(AtomicI32::new(1))?;
//! // SAFETY: this program has a single thread.
//! match unsafe { process::fork()? } {
//!     Fork::Child => {
//!         glob_var.store(5, Ordering::SeqCst);
//!         process::exit(0);
//!     }
//!     Fork::Parent(_) => {
//!         process::wait()?;
//!         assert_eq!(glob_var.load(Ordering::SeqCst), 5);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [rustix]: https://docs.rs/rustix

#![no_std]
#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

#[cfg(not(target_os = "linux"))]
compile_error!("rawipc is a Linux library: it calls the Linux kernel directly");

#[cfg(feature = "std")]
extern crate std;

pub mod msg;
pub mod pipe;
pub mod process;
pub mod shm;
mod sys;

pub use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
pub use rustix::io::Errno;

/// The result of every rawipc call: a value, or the kernel's error number.
pub type Result<T> = core::result::Result<T, Errno>;

/// Runs `op` again for as long as a signal interrupts it.
#[inline]
fn retry<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match op() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}
