//! Explain mode: rawipc tells a student, on stderr and as it happens, which
//! of the notes' classic pipe mistakes the program is making.
//!
//! Off by default. In Rust, [`enable`] turns it on for the process; with the
//! `std` feature the environment variable `RAWIPC_EXPLAIN=1` does too (read
//! once, at the first check). With `freestanding` it is never on. C programs linked with the C library turn it on
//! with `RAWIPC_EXPLAIN=1`.
//!
//! On, a read of an empty pipe ([`pipe::read`](crate::pipe::read) and the
//! [`ReadEnd`](crate::pipe::ReadEnd) methods) or a [`wait`](crate::process::wait)
//! or [`waitpid`](crate::process::waitpid) that has blocked for
//! [`BLOCKED_SECONDS`] is explained: what it waits on and, when this process
//! itself holds the write end that keeps end of file from coming (the parent
//! that forgot to drop its `WriteEnd`), which fds; a wait that begins while
//! this process holds the read end of a full pipe is explained at once. The
//! C library adds what only C programs can do: die of SIGPIPE (the Rust API
//! returns `EPIPE`), and exit with children never waited for. Each finding
//! is printed once, only when true, and never changes what a call does:
//! these calls retry `EINTR` anyway, so waiting first in `poll` (retried
//! too) before the real call returns the same thing.
//!
//! Off, each of those calls costs one relaxed load and a predictable branch.
//!
//! [`sees`] and [`says`] are shared with the C library and are not part of
//! the Rust API.

use core::sync::atomic::{AtomicU8, Ordering};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::BorrowedFd;
use crate::process::Pid;

#[doc(hidden)]
pub mod says;
#[doc(hidden)]
pub mod sees;

/// How long a read or a wait must have blocked before it is explained.
pub const BLOCKED_SECONDS: u64 = 3;

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Turns explain mode on for this process (and the children it forks
/// afterwards).
pub fn enable() {
    STATE.store(ON, Ordering::Relaxed);
}

/// Whether explain mode is on: [`enable`] was called, or (with `std`)
/// `RAWIPC_EXPLAIN` is set to something other than "" or "0".
///
/// Always false with the `freestanding` feature: a program with no libc is
/// kept as small as it can be, and explain mode is for students' programs.
#[inline(always)]
pub fn is_enabled() -> bool {
    if cfg!(feature = "freestanding") {
        return false;
    }
    match STATE.load(Ordering::Relaxed) {
        OFF => false,
        ON => true,
        _ => read_environment(),
    }
}

#[cold]
fn read_environment() -> bool {
    #[cfg(feature = "std")]
    let on = std::env::var_os("RAWIPC_EXPLAIN").is_some_and(|v| !v.is_empty() && v != "0");
    #[cfg(not(feature = "std"))]
    let on = false;
    // enable() may have run meanwhile: it wins.
    let _ = STATE.compare_exchange(
        UNKNOWN,
        if on { ON } else { OFF },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    STATE.load(Ordering::Relaxed) == ON
}

/// Before a read of `fd`: if it is an empty pipe, waits (as the read would)
/// until it is not, or explains it after BLOCKED_SECONDS.
#[inline(always)]
pub(crate) fn before_read(fd: BorrowedFd<'_>, len: usize) {
    if is_enabled() && len > 0 {
        sit_out_read(fd);
    }
}

/// Before a wait for `pid` (None: any child): explains a full pipe held,
/// then waits as the wait would, explaining it after BLOCKED_SECONDS.
#[inline(always)]
pub(crate) fn before_wait(pid: Option<Pid>, options: i32) {
    if is_enabled() {
        sit_out_wait(pid.map_or(-1, |p| p.as_raw_nonzero().get()), options);
    }
}

/// The waits are counted in tenths of a second that passed in full (no
/// clock: in a program without libc, rustix's would need a vDSO lookup); a
/// tenth cut short by a signal does not count, so "3 seconds" is at least
/// that.
const TENTHS: u32 = BLOCKED_SECONDS as u32 * 10;
const TENTH: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};

#[cold]
#[inline(never)]
fn sit_out_read(fd: BorrowedFd<'_>) {
    use rustix::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    if !sees::empty_blocking_pipe(raw) {
        return;
    }
    let mut tenths = 0;
    while tenths < TENTHS {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&TENTH)) {
            Ok(0) => tenths += 1,
            Err(rustix::io::Errno::INTR) => {}
            _ => return,
        }
    }
    says::blocked_read(raw);
}

#[cold]
#[inline(never)]
fn sit_out_wait(pid: i32, options: i32) {
    if !sees::wait_would_block(pid, options) {
        return;
    }
    if let Some(full) = sees::full_pipe_held() {
        says::explain(says::Finding::FullPipeWait, full.fd, pid);
    }
    let mut tenths = 0;
    while sees::wait_would_block(pid, options) {
        if tenths >= TENTHS {
            return says::blocked_wait(pid, options);
        }
        // Interrupted or not, the wait itself would go on: so does this.
        if let rustix::thread::NanosleepRelativeResult::Ok = rustix::thread::nanosleep(&TENTH) {
            tenths += 1;
        }
    }
}
