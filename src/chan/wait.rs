//! Waiting for the other side: spinning, then sleeping on a futex, and
//! looking at the peer's life-line to learn that it died.

use core::sync::atomic::{AtomicU32, Ordering};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::thread::futex;
use rustix::time::{ClockId, Timespec, clock_gettime};

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

pub(super) fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Waits until `check` says ready: spins for `spin_ns`, then sleeps on
/// `word` (expected to still hold `check`'s observed value) with `sleeping`
/// raised, waking every [`LIVENESS_CHECK_MS`] to look at the peer.
///
/// `check` returns the word's current value when not ready, so that the
/// futex sleeps only while nothing has changed. Returns `EPIPE` when the
/// peer is gone and a last `check` still says not ready.
pub(super) fn wait_until<'r>(
    spin_ns: u32,
    sleeping: &AtomicU32,
    life: &OwnedFd,
    before_sleep: impl FnOnce(),
    mut check: impl FnMut() -> Result<(Wait, &'r AtomicU32, u32)>,
) -> Result<()> {
    if spin_ns > 0 {
        let start = now_ns();
        loop {
            for _ in 0..64 {
                if let (Wait::Ready, _, _) = check()? {
                    return Ok(());
                }
                core::hint::spin_loop();
            }
            if now_ns().saturating_sub(start) >= u64::from(spin_ns) {
                break;
            }
        }
    }
    before_sleep();
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(LIVENESS_CHECK_MS) * 1_000_000,
    };
    // Look at the peer before the first sleep (one that died already is
    // found at once), then each time a sleep times out.
    let mut look_at_peer = true;
    let result = loop {
        // A full barrier, paired with the peer's between publishing and
        // reading our flag: either it sees the flag, or we see its update.
        sleeping.swap(SLEEPING, Ordering::SeqCst);
        let (word, seen) = match check() {
            Ok((Wait::Ready, _, _)) => break Ok(()),
            Ok((Wait::NotYet, word, seen)) => (word, seen),
            Err(e) => break Err(e),
        };
        if look_at_peer {
            match peer_gone(life) {
                // What the peer committed before it died is visible now.
                Ok(true) => match check() {
                    Ok((Wait::Ready, _, _)) => break Ok(()),
                    Ok(_) => break Err(Errno::PIPE),
                    Err(e) => break Err(e),
                },
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        }
        look_at_peer = match futex::wait(word, futex::Flags::empty(), seen, Some(&timeout)) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => false,
            Err(Errno::TIMEDOUT) => true,
            Err(e) => break Err(e),
        };
    };
    sleeping.store(0, Ordering::Relaxed);
    result
}

/// Wakes the peer sleeping on `word` (kept out of the hot paths).
#[cold]
#[inline(never)]
pub(super) fn wake(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), 1);
}
