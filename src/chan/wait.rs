//! Waiting for the other side: spinning, then sleeping on a futex, and
//! looking at the peer's life-line to learn that it died.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, Ordering};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::thread::futex;

use super::LIVENESS_CHECK_MS;
use super::ring::SLEEPING;
use crate::{Errno, OwnedFd, Result, retry};

/// What a waiting side is waiting for.
pub(super) enum Wait {
    /// Go on waiting.
    NotYet,
    /// Stop: what was waited for is there.
    Ready,
}

/// The peer's end of the life-line socket pair is closed: its process died
/// or dropped its end. Data to read counts as gone too: rawipc never writes
/// on a life-line, and a peer that does may have sent its own end into it,
/// where that end would outlive the peer and never close.
pub(super) fn peer_gone(life: &OwnedFd) -> Result<bool> {
    let mut fds = [PollFd::new(life, PollFlags::IN | PollFlags::RDHUP)];
    retry(|| {
        poll(
            &mut fds,
            Some(&Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        )
    })?;
    Ok(fds[0]
        .revents()
        .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR))
}

/// Waits until `check` says ready: spins for `spin_ns`, then sleeps on
/// `word` (expected to still hold `check`'s observed value) with `sleeping`
/// raised.
///
/// Whatever ends a sleep (a wake, a change of the word, a signal, a
/// spurious return), the waiter looks at the peer whenever the absolute time
/// set for that has passed: before the first sleep, then every
/// [`LIVENESS_CHECK_MS`] (during a long spin too). So a peer's death is
/// noticed in time even under a storm of signals, each of which cuts a
/// sleep short.
///
/// `check` returns the word's current value when not ready, so that the
/// futex sleeps only while nothing has changed. Errors: `EPIPE` when the
/// peer is gone and a last `check` still says not ready; `ETIMEDOUT` once
/// the absolute `deadline` ([`now_ns`]'s clock) has passed, after a last
/// look at the peer (gone: `EPIPE`) and a last `check`; `check`'s own.
pub(super) fn wait_until<'r>(
    spin_ns: u32,
    sleeping: &AtomicU32,
    life: &OwnedFd,
    deadline: Option<u64>,
    before_sleep: impl FnOnce(),
    mut check: impl FnMut() -> Result<(Wait, &'r AtomicU32, u32)>,
) -> Result<()> {
    let mut liveness = Liveness::new(life);
    if spin_ns > 0 {
        let start = now_ns();
        loop {
            for _ in 0..64 {
                if let (Wait::Ready, _, _) = check()? {
                    return Ok(());
                }
                core::hint::spin_loop();
            }
            let now = now_ns();
            liveness.look_if_due(now, &mut check)?;
            if deadline.is_some_and(|d| now >= d) {
                return liveness.expired(now, &mut check);
            }
            if now.saturating_sub(start) >= u64::from(spin_ns) {
                break;
            }
        }
    }
    before_sleep();
    // Look at the peer before the first sleep: one that died already is
    // found at once.
    liveness.next = 0;
    let result = loop {
        // A full barrier, paired with the peer's between publishing and
        // reading our flag: either it sees the flag, or we see its update.
        sleeping.swap(SLEEPING, Ordering::SeqCst);
        let (word, seen) = match check() {
            Ok((Wait::Ready, _, _)) => break Ok(()),
            Ok((Wait::NotYet, word, seen)) => (word, seen),
            Err(e) => break Err(e),
        };
        let now = now_ns();
        if let Err(e) = liveness.look_if_due(now, &mut check) {
            break Err(e);
        }
        let wake_at = match deadline {
            Some(d) if now >= d => break liveness.expired(now, &mut check),
            Some(d) => d.min(liveness.next),
            None => liveness.next,
        };
        if let Err(e) = sleep_until(word, seen, wake_at) {
            break Err(e);
        }
    };
    sleeping.store(0, Ordering::Relaxed);
    result
}

/// When a waiter looks at its peer next.
struct Liveness<'a> {
    life: &'a OwnedFd,
    /// The absolute time ([`now_ns`]) of the next look.
    next: u64,
}

impl<'a> Liveness<'a> {
    fn new(life: &'a OwnedFd) -> Self {
        Self {
            life,
            next: now_ns() + LIVENESS_NS,
        }
    }

    /// Looks at the peer if the time for it has come: `EPIPE` if it is gone
    /// and a last `check` (what it committed before it died is visible now)
    /// says not ready; `Ok` otherwise, also when that check says ready, which
    /// the caller's own next check then sees.
    fn look_if_due<'r>(
        &mut self,
        now: u64,
        check: &mut impl FnMut() -> Result<(Wait, &'r AtomicU32, u32)>,
    ) -> Result<()> {
        if now < self.next {
            return Ok(());
        }
        self.next = now + LIVENESS_NS;
        if !peer_gone(self.life)? {
            return Ok(());
        }
        match check()? {
            (Wait::Ready, _, _) => Ok(()),
            (Wait::NotYet, _, _) => Err(Errno::PIPE),
        }
    }
}

impl Liveness<'_> {
    /// The deadline has passed: a last look at the peer and at the word, so
    /// that a peer that is gone is reported as gone, never as a timeout, and
    /// what came in time is taken. `ETIMEDOUT` otherwise.
    fn expired<'r>(
        &mut self,
        now: u64,
        check: &mut impl FnMut() -> Result<(Wait, &'r AtomicU32, u32)>,
    ) -> Result<()> {
        self.next = now;
        self.look_if_due(now, check)?;
        match check()? {
            (Wait::Ready, _, _) => Ok(()),
            (Wait::NotYet, _, _) => Err(Errno::TIMEDOUT),
        }
    }
}

const LIVENESS_NS: u64 = LIVENESS_CHECK_MS as u64 * 1_000_000;

/// The monotonic clock in nanoseconds, the clock of every deadline.
pub(super) fn now_ns() -> u64 {
    crate::sys::monotonic_ns()
}

/// `FUTEX_WAIT_BITSET` on `word` while it holds `seen`, until the absolute
/// monotonic time `at` at the latest. Returns `Ok` whatever ended the sleep
/// (a wake, a changed word, a signal, the time): the caller looks again.
///
/// # References
/// - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)
pub(crate) fn sleep_until(word: &AtomicU32, seen: u32, at: u64) -> Result<()> {
    let at = Timespec {
        tv_sec: (at / 1_000_000_000) as i64,
        tv_nsec: (at % 1_000_000_000) as i64,
    };
    // Not PRIVATE: the word is shared between processes.
    match futex::wait_bitset(word, futex::Flags::empty(), seen, Some(&at), ANY) {
        Ok(()) | Err(Errno::AGAIN | Errno::INTR | Errno::TIMEDOUT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The bit set that matches every wake.
const ANY: NonZeroU32 = NonZeroU32::MAX;

/// Wakes the peer sleeping on `word` (kept out of the hot paths).
#[cold]
#[inline(never)]
pub(super) fn wake(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), 1);
}
