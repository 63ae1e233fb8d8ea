//! rawipc: the inter-process communication of a course's notes, as a small
//! Linux library with no allocator, that needs no libc.
//!
//! | the notes | module |
//! |---|---|
//! | shared memory: `mmap(MAP_SHARED \| MAP_ANONYMOUS)` before `fork` | [`shm`] |
//! | `fork`, `wait`, `exit` | [`process`] |
//! | pipes, and end of file telling a reader that its writer died | [`pipe`] |
//! | message passing over a socket | [`msg`] |
//! | a mutex in shared memory that survives its holder's death | [`mutex`] |
//! | a message channel in shared memory, at cache speed | [`chan`] |
//! | a request and its reply in one shared cache line | [`call`] |
//! | programs that did not fork from each other: a name to meet by, no file system | [`endpoint`] |
//! | ... fds passed with a message, none lost | [`msg::send_fds`], [`msg::recv_fds`] |
//! | ... shared memory a peer cannot shrink (a sealed memfd) | [`shm::SealedRegion`] |
//! | ... a channel end handed over a connection | [`chan::handover`] |
//!
//! Its system calls go through [rustix] (its `linux_raw` backend, no libc
//! crate), but for `fork`, `_exit` and the signal mask, which in a process
//! that has a libc must be libc's (see below); the write that never raises
//! `SIGPIPE` (`pwritev2` with `RWF_NOSIGNAL`), which rawipc makes itself on
//! x86_64 and aarch64; and `SO_PEERCRED`, whose pid may be 0 (a peer in
//! another pid namespace), which rustix's type cannot hold. The library never
//! allocates.
//!
//! ## Features
//!
//! - `std` (on by default): `std::io::Read` and `Write` for the pipe ends,
//!   conversions into `std::process::Stdio` and std's `OwnedFd`,
//!   `std::error::Error` for the error types and `From` them into
//!   `std::io::Error`. None of it allocates.
//! - Without default features (`default-features = false`) the crate is
//!   `#![no_std]` and needs no allocator: what the C library and programs
//!   with no libc use.
//! - `freestanding`: fork and exit as raw system calls, for programs with no
//!   libc (below); use it with `default-features = false`.
//!
//! Errors are [`Errno`] values: the kernel's error numbers, which the C ABI
//! hands to C programs as `errno`.
//!
//! ## Waiting, timeouts and non-blocking calls
//!
//! Every call that can wait has a `_timeout` variant taking a
//! [`Duration`](core::time::Duration) ([`chan::Receiver::recv_timeout`],
//! [`msg::recv_timeout`], [`pipe::read_timeout`],
//! [`mutex::RawMutex::lock_timeout`], [`call::Client::call_timeout`], ...).
//! The timeout becomes, once, on entry, an absolute deadline on
//! `CLOCK_MONOTONIC`: signals and spurious wake-ups neither extend it nor cut
//! it short, and `ETIMEDOUT` never comes before it. A peer that dies during
//! the wait is noticed within about [`chan::LIVENESS_CHECK_MS`] ms, and
//! looked at once more at the deadline. A call that timed out took or sent
//! nothing. A `Duration` too large to add to the clock waits for ever.
//! Pipes and message sockets can also be made non-blocking
//! ([`pipe::pipe_nonblocking`], [`msg::socketpair_nonblocking`],
//! `set_nonblocking`), and [`msg::MsgSocket::try_recv`] never waits.
//!
//! One rule tells "nothing yet" from "peer gone", in every receive, blocking,
//! `try_` or timed (and in C):
//!
//! | | copying receive | borrowed receive | send |
//! |---|---|---|---|
//! | the peer is gone, and all it sent received | `Ok(0)`, never `ETIMEDOUT` | `Ok(None)` | `EPIPE` |
//! | nothing yet: a `try_` call, a non-blocking fd | `EAGAIN` | `EAGAIN` | `EAGAIN` |
//! | nothing yet: the timeout expired (zero included) | `ETIMEDOUT` | `ETIMEDOUT` | `ETIMEDOUT` |
//!
//! 0 cannot be a message, since empty messages are refused at send: it is
//! the end of file of a pipe's read. (A call's client, whose replies may be
//! empty, gets `EPIPE`; a channel's sender learns that its receiver is gone
//! when it must wait for room, and a busy channel makes no system call to
//! ask.)
//!
//! Calls retry `EINTR` themselves, so a signal handler in the middle of a read,
//! a write or a wait never surfaces as an error; fds are close-on-exec; a
//! write to a pipe with no reader is `EPIPE`, never `SIGPIPE`. (The C
//! library's mirrors of libc's calls behave as libc's instead; each module
//! says how.)
//!
//! ## With libc or without
//!
//! By default [`process::fork`] and [`process::exit`] are libc's `fork` and
//! `_exit` (declared, not through the libc crate; the thread's signal mask,
//! too, is set through libc). Keep that default in every program that has a
//! libc: every C program, every Rust program that uses `std`. libc's `fork`
//! runs the `pthread_atfork` handlers and keeps libc's own state (its cached
//! thread id, its locks) right in the child; a raw kernel fork does not.
//!
//! The `freestanding` feature is for `#![no_std]`, `#![no_main]` programs
//! linked with no libc at all, where there is no libc `fork` to call: fork
//! becomes the raw `clone(SIGCHLD)` system call and exit `exit_group`
//! (x86_64 and aarch64; other architectures do not compile). Turn it on only
//! in such a program's own `Cargo.toml`, never in a library crate, which
//! would turn it on for every program using that library.
//! `examples/freestanding` is such a program.
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
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

#[cfg(not(target_os = "linux"))]
compile_error!("rawipc is a Linux library: it calls the Linux kernel directly");

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod call;
pub mod chan;
mod deadline;
pub mod endpoint;
pub mod explain;
pub mod msg;
pub mod mutex;
pub mod pipe;
pub mod process;
pub mod shm;
mod sys;

pub use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
pub use rustix::io::Errno;

/// The result of every rawipc call: a value, or the kernel's error number.
pub type Result<T> = core::result::Result<T, Errno>;

/// Runs an operation again for as long as a signal interrupts it (`EINTR`).
use rustix::io::retry_on_intr as retry;
