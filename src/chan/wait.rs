//! Waiting for the other side: spinning, then sleeping on a futex, or
//! waiting in `poll` on the end's fd; and looking at the peer's life-line to
//! learn that it died.
//!
//! # The wake protocol
//! Each side has a flag word in the control block (`rx_sleeping` for the
//! receiver, `tx_waiting` for the sender) that only says how it waits:
//! [`SLEEPING`] on a futex, [`POLLING`] on its fd. A side raises its flag
//! with a full barrier before its last look at the ring; the other side
//! makes its change to the ring with a full barrier, then reads the flag,
//! and signals only if it is raised: either the waiter sees the change, or
//! the other side sees the flag. So a busy channel makes no system call.
//!
//! One change is made without a barrier of its own: the receiver's release
//! of a message, on the busy path, in a process registered for
//! `membarrier(2)` ([`register`]). There the sender that arms its fd for
//! room pays that barrier for it ([`arm_fenced`]): `membarrier` makes every
//! CPU running a registered process execute one, so either the release's
//! store is seen, or the release's later look at the flag sees it raised.
//! Where `membarrier` is refused, the receiver's release takes a full
//! barrier itself.
//!
//! A side's fd is its end of the life-line, a unix stream socket pair whose
//! other end the peer holds. To signal a side waiting on its fd ([`wake`]),
//! the peer takes [`POLLING`] off the flag with one atomic operation and,
//! if it was there, writes one byte into the life-line: one byte at most
//! per arming. The peer's death closes its end, which makes the same fd
//! readable (end of file): "progress possible" covers both. The waiting
//! side drains what is there before it arms again ([`peer_gone`]).
//!
//! The request and reply of [`crate::call`] wait for each other through
//! the same functions ([`arm_fenced`], [`disarm`], [`wake`], [`peer_gone`]),
//! with their flags in the slot's cache line.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, Ordering};

use rustix::event::Timespec;
use rustix::thread::futex;

use rustix::net::{RecvFlags, SendFlags, recv, send};
use rustix::thread::{MembarrierCommand, membarrier};

use super::LIVENESS_CHECK_MS;
pub(crate) use super::ring::POLLING;
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
/// or dropped its end. Drains what the life-line holds on the way, without
/// waiting: wake-up bytes, and whatever a hostile peer wrote (its fds, if it
/// sent any, are closed by a receive without room for them, so that a peer
/// that sends its own end into the life-line cannot keep it open after its
/// death). A peer that keeps writing is alive; the drain stops after
/// [`DRAIN_LIMIT`] bytes and says so.
///
/// # References
/// - [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html)
pub(crate) fn peer_gone(life: &OwnedFd) -> Result<bool> {
    let mut buf = [0u8; 512];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match retry(|| recv(life, &mut buf, RecvFlags::DONTWAIT)) {
            Ok((0, _)) => return Ok(true),
            Ok((n, _)) => drained += n,
            Err(Errno::AGAIN) => return Ok(false),
            Err(Errno::CONNRESET | Errno::PIPE) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The most bytes one [`peer_gone`] drains: more than a peer that keeps to
/// the protocol ever leaves (one byte per arming), few enough that a flood
/// cannot hold a caller.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Raises [`POLLING`] on this side's `flag`: "wake me through my fd". A full
/// barrier, so that the caller's next look at the ring either sees the
/// peer's change or the peer sees the flag.
pub(super) fn arm(flag: &AtomicU32) {
    flag.fetch_or(POLLING, Ordering::SeqCst);
}

/// Makes a new channel's ends start armed, so that a program may wait on
/// an end's fd before its first `try_` call: raises [`POLLING`] on the
/// receiver's `rx_flag` (its first message wakes it), and writes one byte
/// into the receiver's life-line end `rx_bell`, which makes the sender's
/// fd readable: there is room.
pub(super) fn start_armed(rx_flag: &AtomicU32, rx_bell: &OwnedFd) {
    rx_flag.store(POLLING, Ordering::Relaxed);
    let _ = retry(|| send(rx_bell, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL));
}

/// As [`arm`], for a sender that waits for room: then runs
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, the barrier that a
/// registered receiver's release does not take itself (see the module).
///
/// # References
/// - [membarrier(2)](https://man7.org/linux/man-pages/man2/membarrier.2.html)
pub(crate) fn arm_fenced(flag: &AtomicU32) {
    arm(flag);
    let _ = membarrier(MembarrierCommand::GlobalExpedited);
}

/// `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)`: lets the barrier
/// of a sender arming its fd ([`arm_fenced`]) reach this process, so that
/// a receiver here releases messages without one. Whether it worked.
pub(super) fn register() -> bool {
    membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
}

/// Takes [`POLLING`] off this side's `flag` again, after a last look found
/// what it waited for (a wake-up byte already on its way only makes the fd
/// readable once more for nothing).
pub(crate) fn disarm(flag: &AtomicU32) {
    flag.fetch_and(!POLLING, Ordering::Relaxed);
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

/// Wakes the peer, whose `flag` the caller has just read as non-zero after
/// its change to the ring (or to a call's slot): writes one byte into the life-line `bell` if the
/// peer waits on its fd (taking [`POLLING`] off its flag, so that one byte
/// at most is written per arming), and wakes a futex sleeper on `word`.
/// Kept out of the hot paths. A flag with other bits (a hostile peer's)
/// only costs a needless wake.
///
/// The write never waits and never raises `SIGPIPE`: a full life-line
/// already makes the peer's fd readable, a closed one says it is gone.
///
/// # References
/// - [send(2)](https://man7.org/linux/man-pages/man2/send.2.html)
/// - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)
#[cold]
#[inline(never)]
pub(crate) fn wake(flag: &AtomicU32, word: &AtomicU32, bell: &OwnedFd) {
    let mut seen = flag.load(Ordering::Relaxed);
    if seen & POLLING != 0 {
        seen = flag.fetch_and(!POLLING, Ordering::SeqCst);
        if seen & POLLING != 0 {
            let _ = retry(|| send(bell, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL));
        }
    }
    if seen & !POLLING != 0 {
        let _ = futex::wake(word, futex::Flags::empty(), 1);
    }
}
