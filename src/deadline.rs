//! Timeouts, kept as deadlines: a `Duration` becomes, once, when a call
//! starts, an absolute time on `CLOCK_MONOTONIC` ([`crate::sys::monotonic_ns`]),
//! and every wait of the call is measured against it. A signal or a spurious
//! wake-up ends a sleep early, and the next sleep is for what is left: the
//! call returns neither later nor sooner than its deadline.

use core::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::{BorrowedFd, Errno, Result};

/// How long a call may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Patience {
    /// Not at all (the `try_` calls): `EAGAIN` (or `EBUSY`) at once.
    None,
    /// As long as it takes.
    Forever,
    /// Until this absolute monotonic time, in ns, then `ETIMEDOUT`.
    Until(u64),
}

impl Patience {
    /// The patience of a call given `timeout`, from now; a timeout too long
    /// to be added to the clock waits for ever.
    pub(crate) fn after(timeout: Duration) -> Self {
        match after(timeout) {
            Some(at) => Patience::Until(at),
            None => Patience::Forever,
        }
    }

    /// The deadline, if there is one (`None`: no wait, or for ever).
    pub(crate) fn deadline(self) -> Option<u64> {
        match self {
            Patience::Until(at) => Some(at),
            _ => None,
        }
    }
}

/// The absolute monotonic time `timeout` from now; `None` if it is too far
/// to be told (more than ~584 years): for ever.
pub(crate) fn after(timeout: Duration) -> Option<u64> {
    let ns = u64::try_from(timeout.as_nanos()).ok()?;
    crate::sys::monotonic_ns().checked_add(ns)
}

/// `poll(fd, events)` until something is there or the absolute `deadline`
/// has passed (`ETIMEDOUT`). With no deadline it returns at once: the call
/// that follows waits by itself. Any event counts, hang-ups and errors too
/// (the call that follows then reports them).
///
/// Each `poll` is for the time left, taken again from the clock after every
/// signal, and it never ends early: `ETIMEDOUT` only once the clock has
/// passed the deadline.
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
pub(crate) fn wait_ready(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<u64>,
) -> Result<()> {
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let mut fds = [PollFd::new(&fd, events)];
    loop {
        let left = deadline.saturating_sub(crate::sys::monotonic_ns());
        let left = Timespec {
            tv_sec: (left / 1_000_000_000) as i64,
            tv_nsec: (left % 1_000_000_000) as i64,
        };
        match poll(&mut fds, Some(&left)) {
            Ok(_) if !fds[0].revents().is_empty() => return Ok(()),
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
        if crate::sys::monotonic_ns() >= deadline {
            return Err(Errno::TIMEDOUT);
        }
    }
}

/// Sleeps a millisecond, or what is left before `deadline` if that is
/// less; `ETIMEDOUT` if it has passed. For a try that found the fd ready
/// and still could not go on (a socket with room, but not for this
/// message), so that the next try does not spin.
pub(crate) fn nap(deadline: Option<u64>) -> Result<()> {
    let now = crate::sys::monotonic_ns();
    let left = match deadline {
        Some(d) if now >= d => return Err(Errno::TIMEDOUT),
        Some(d) => (d - now).min(NAP_NS),
        None => NAP_NS,
    };
    let left = Timespec {
        tv_sec: 0,
        tv_nsec: left as i64,
    };
    match poll(&mut [], Some(&left)) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}

const NAP_NS: u64 = 1_000_000;
