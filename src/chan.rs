//! A message channel over shared memory: one sender process, one receiver
//! process, messages of any size up to half the ring, at cache speed.
//!
//! The notes call shared memory "the simplest way" but leave its hard part
//! open: the OS "has no control over this memory", so a reader has no way to
//! wait for data, nor to learn that the writer died. A [`Channel`] answers
//! both. Made before `fork`, it is turned in each process into its
//! [`Sender`] or its [`Receiver`], as a pipe's unused end is closed:
//!
//! ```no_run
//! use rawipc::chan::Channel;
//! use rawipc::process::{self, Fork};
//!
//! # fn main() -> rawipc::Result<()> {
//! let chan = Channel::new(64 * 1024)?;
//! // SAFETY: this program has a single thread.
//! match unsafe { process::fork()? } {
//!     Fork::Child => {
//!         let mut tx = chan.into_sender();
//!         tx.send(b"hello")?;
//!         process::exit(0);
//!     }
//!     Fork::Parent(_) => {
//!         let mut rx = chan.into_receiver();
//!         let mut buf = [0; 64];
//!         let n = rx.recv(&mut buf)?; // 5
//!         assert_eq!(rx.recv(&mut buf)?, 0); // the child is gone
//!         # let _ = n;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//! Messages lie one after the other in a ring of bytes, each behind an 8-byte
//! header: a *stamp* (its position, odd, written last) and its length. The
//! receiver watches the stamp at its read position; a small message and its
//! stamp share a cache line, so while both sides are busy a message costs one
//! cache-line transfer. Before committing a message the sender zeroes the
//! next header, so the stamp a receiver looks at is either 0 (nothing yet) or
//! the one it expects: anything else is corruption.
//!
//! A side that must wait (empty ring, full ring) spins for a while
//! ([`Sender::set_spin`], default [`DEFAULT_SPIN_NS`]), then sleeps on a
//! futex: process-shared, never `FUTEX_PRIVATE_FLAG`. The other side wakes it
//! only if it said it sleeps, so a busy channel makes no system call.
//!
//! A dead peer is learned the way the notes teach, through end of file: each
//! side keeps its end of a socket pair, which the kernel closes when its
//! process dies. A sleeper wakes every [`LIVENESS_CHECK_MS`] ms to look; so a
//! receiver whose sender died gets every message the sender committed and
//! then "peer gone", and a sender whose receiver died gets `EPIPE`, within
//! about that time.
//!
//! # Trust
//! The other process may be buggy or hostile and write any bytes anywhere in
//! the shared region. Each side keeps its own positions and the ring's size
//! in private memory, and checks every stamp, length and position it reads
//! from shared memory before using it: a corrupt ring gives `EPROTO` (and the
//! handle stays broken), never an access outside the region, a panic or an
//! endless wait. What such a peer can still do is what any peer can: send
//! wrong bytes, or change a message's bytes while it is being read.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering, fence};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
use rustix::thread::futex;
use rustix::time::{ClockId, Timespec, clock_gettime};

use crate::shm::SharedRegion;
use crate::{AsFd, Errno, OwnedFd, Result, retry};

/// How long a waiting side spins before it sleeps, unless told otherwise: a
/// kernel wake-up costs ~25 µs one way on the machines this was tuned on.
pub const DEFAULT_SPIN_NS: u32 = 50_000;

/// How often a sleeping side wakes to check that its peer is still alive.
pub const LIVENESS_CHECK_MS: u32 = 20;

/// The smallest and largest ring; sizes are rounded up to a power of two.
pub const MIN_CAPACITY: usize = 1024;
/// See [`MIN_CAPACITY`].
pub const MAX_CAPACITY: usize = 1 << 30;

/// Bytes of a message header: stamp and length, each a `u32`.
const HDR: usize = 8;
/// The length that marks "the rest of this lap is unused, go to the next".
const WRAP: u32 = u32::MAX;
/// The ring starts one page into the region, after the control block.
const DATA_OFFSET: usize = 4096;

/// The shared control block, each word on its own cache line so that the
/// sides never write the same line.
#[repr(C)]
struct Control {
    /// The receiver's read position (low 32 bits), for the sender's free space.
    head: Line,
    /// Non-zero while the receiver sleeps or is about to.
    rx_sleeping: Line,
    /// Non-zero while the sender sleeps or is about to.
    tx_sleeping: Line,
}

#[repr(C, align(128))]
struct Line(AtomicU32);

const _: () = assert!(size_of::<Control>() <= DATA_OFFSET);

/// The ring as one side sees it: the shared region and, in private memory,
/// the size it was made with.
struct Ring {
    region: SharedRegion,
    cap: usize,
}

impl Ring {
    fn control(&self) -> &Control {
        // SAFETY: the region starts with a Control (all atomics, valid for
        // any bytes), page-aligned, alive as long as self.
        unsafe { &*self.region.as_ptr().cast::<Control>() }
    }

    /// The ring's first byte.
    fn data(&self) -> *mut u8 {
        // SAFETY: the region is DATA_OFFSET + cap bytes long.
        unsafe { self.region.as_ptr().add(DATA_OFFSET) }
    }

    /// Where position `pos` lies in the ring.
    fn offset(&self, pos: u64) -> usize {
        (pos as usize) & (self.cap - 1)
    }

    /// The stamp word of the header at `off` (8-aligned, below `cap`).
    fn stamp(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % HDR == 0 && off < self.cap);
        // SAFETY: in bounds and 4-aligned; an atomic is valid for any bytes.
        unsafe { AtomicU32::from_ptr(self.data().add(off).cast()) }
    }

    /// The length word of the header at `off`.
    fn len(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % HDR == 0 && off < self.cap);
        // SAFETY: in bounds (off + 8 <= cap) and 4-aligned.
        unsafe { AtomicU32::from_ptr(self.data().add(off + 4).cast()) }
    }

    /// The largest message this ring takes.
    fn max_message(&self) -> usize {
        self.cap / 2 - 2 * HDR
    }
}

/// The stamp of a header at position `pos`: never 0, different each lap.
fn stamp_for(pos: u64) -> u32 {
    (pos as u32) | 1
}

fn padded(len: usize) -> usize {
    (len + HDR - 1) & !(HDR - 1)
}

/// A channel before `fork`: both ends, to be turned into one of them in each
/// process with [`Channel::into_sender`] or [`Channel::into_receiver`].
pub struct Channel {
    ring: Ring,
    tx_life: OwnedFd,
    rx_life: OwnedFd,
}

impl Channel {
    /// Maps a channel whose ring holds `capacity` bytes (rounded up to a
    /// power of two, at least [`MIN_CAPACITY`]). Messages may be up to half
    /// of it, less 16 bytes ([`Channel::max_message`]).
    ///
    /// Errors: `EINVAL` if `capacity` is 0 or above [`MAX_CAPACITY`];
    /// `ENOMEM`; `EMFILE`/`ENFILE` (it uses a socket pair to learn of a
    /// peer's death).
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Errno::INVAL);
        }
        let cap = capacity.max(MIN_CAPACITY).next_power_of_two();
        let region = SharedRegion::new(DATA_OFFSET + cap)?;
        let (tx_life, rx_life) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(Self {
            ring: Ring { region, cap },
            tx_life,
            rx_life,
        })
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap
    }

    /// The largest message the channel takes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message()
    }

    /// Keeps the sending end in this process and closes the receiving one.
    pub fn into_sender(self) -> Sender {
        Sender::new(self.ring, self.tx_life)
    }

    /// Keeps the receiving end in this process and closes the sending one.
    pub fn into_receiver(self) -> Receiver {
        Receiver::new(self.ring, self.rx_life)
    }

    /// Both ends in this process, for two threads (or for tests): each end
    /// maps the ring on its own.
    ///
    /// Errors: `ENOMEM` (a second mapping of the ring could not be made).
    pub fn split(self) -> Result<(Sender, Receiver)> {
        let again = Ring {
            region: self.ring.region.map_again()?,
            cap: self.ring.cap,
        };
        Ok((
            Sender::new(self.ring, self.tx_life),
            Receiver::new(again, self.rx_life),
        ))
    }

    /// The shared region: its first byte and length. Only for looking at the
    /// bytes (or, in tests, for playing a hostile peer).
    pub fn region(&self) -> (*mut u8, usize) {
        (self.ring.region.as_ptr(), self.ring.region.len())
    }
}

/// The sending end of a channel.
pub struct Sender {
    ring: Ring,
    life: OwnedFd,
    /// The next position to write (private: never read back from shared memory).
    tail: u64,
    /// The receiver's read position as last seen.
    head: u64,
    spin_ns: u32,
    /// Set by `EPROTO` (corrupt ring) or `EPIPE` (receiver gone): every
    /// later send fails the same way, as a pipe's writes do.
    broken: Option<Errno>,
}

/// The receiving end of a channel.
pub struct Receiver {
    ring: Ring,
    life: OwnedFd,
    /// The next position to read (private).
    head: u64,
    spin_ns: u32,
    /// Set by `EPROTO`: the ring is corrupt, every later receive fails.
    broken: bool,
    /// The sender is known to be gone: no more waiting, only draining.
    sender_gone: bool,
}

/// Space reserved in the ring by [`Sender::reserve`]: write the message in
/// place, then [`Reservation::commit`] it. Dropped uncommitted, it sends nothing.
pub struct Reservation<'a> {
    sender: &'a mut Sender,
    buf: NonNull<u8>,
    len: usize,
}

/// A message borrowed in place by [`Receiver::recv_borrowed`]; its space is
/// given back to the sender when it is dropped.
pub struct Message<'a> {
    receiver: &'a mut Receiver,
    buf: NonNull<u8>,
    len: usize,
}

/// What a waiting side is waiting for.
enum Wait {
    /// Go on waiting.
    NotYet,
    /// Stop: what was waited for is there.
    Ready,
}

/// The peer's end of the life-line socket pair is closed: its process died
/// or dropped its end.
fn peer_gone(life: &OwnedFd) -> Result<bool> {
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
        .intersects(PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR))
}

fn now_ns() -> u64 {
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
fn wait_until<'r>(
    spin_ns: u32,
    sleeping: &AtomicU32,
    life: &OwnedFd,
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
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(LIVENESS_CHECK_MS) * 1_000_000,
    };
    let result = loop {
        sleeping.store(1, Ordering::Relaxed);
        // Pairs with the peer's fence between publishing and reading
        // `sleeping`: either it sees our flag, or we see its update.
        fence(Ordering::SeqCst);
        let (word, seen) = match check() {
            Ok((Wait::Ready, _, _)) => break Ok(()),
            Ok((Wait::NotYet, word, seen)) => (word, seen),
            Err(e) => break Err(e),
        };
        match futex::wait(word, futex::Flags::empty(), seen, Some(&timeout)) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(Errno::TIMEDOUT) => match peer_gone(life) {
                // What the peer committed before it died is visible now.
                Ok(true) => match check() {
                    Ok((Wait::Ready, _, _)) => break Ok(()),
                    Ok(_) => break Err(Errno::PIPE),
                    Err(e) => break Err(e),
                },
                Ok(false) => {}
                Err(e) => break Err(e),
            },
            Err(e) => break Err(e),
        }
    };
    sleeping.store(0, Ordering::Relaxed);
    result
}

impl Sender {
    fn new(ring: Ring, life: OwnedFd) -> Self {
        Self {
            ring,
            life,
            tail: 0,
            head: 0,
            spin_ns: DEFAULT_SPIN_NS,
            broken: None,
        }
    }

    /// Sets how long a send spins on a full ring before it sleeps;
    /// 0 makes it sleep at once (blocking-only mode).
    pub fn set_spin(&mut self, ns: u32) {
        self.spin_ns = ns;
    }

    /// The largest message the channel takes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message()
    }

    /// Sends `msg` as one message, waiting while the ring is full.
    ///
    /// Errors: `EINVAL` for an empty message, `EMSGSIZE` for one above
    /// [`Sender::max_message`], `EPIPE` if the receiver is gone while the
    /// ring is full, `EPROTO` if the shared ring is corrupt.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let mut r = self.reserve(msg.len())?;
        r.copy_from_slice(msg);
        r.commit(msg.len())
    }

    /// As [`Sender::send`], but fails with `EAGAIN` instead of waiting.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        let mut r = self.try_reserve(msg.len())?;
        r.copy_from_slice(msg);
        r.commit(msg.len())
    }

    /// Reserves `len` bytes in the ring, waiting for room, for a message to
    /// be written in place and committed (zero-copy send).
    ///
    /// Errors: as [`Sender::send`].
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.reserve_with(len, true)
    }

    /// As [`Sender::reserve`], but fails with `EAGAIN` instead of waiting.
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.reserve_with(len, false)
    }

    fn reserve_with(&mut self, len: usize, wait: bool) -> Result<Reservation<'_>> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        if len == 0 {
            return Err(Errno::INVAL);
        }
        if len > self.ring.max_message() {
            return Err(Errno::MSGSIZE);
        }
        let cap = self.ring.cap;
        let off = self.ring.offset(self.tail);
        let size = HDR + padded(len);
        // Room for the message and the next header, which the commit zeroes;
        // if the message does not fit before the ring's end, also the rest
        // of this lap, skipped by a wrap marker.
        let skip = if off + size <= cap { 0 } else { cap - off };
        let needed = (skip + size + HDR) as u64;
        if !self.has_room(needed)? {
            if !wait {
                if peer_gone(&self.life)? {
                    self.broken = Some(Errno::PIPE);
                    return Err(Errno::PIPE);
                }
                return Err(Errno::AGAIN);
            }
            let spin = self.spin_ns;
            let ring = &self.ring;
            let (tail, head) = (self.tail, &mut self.head);
            let result = wait_until(spin, &ring.control().tx_sleeping.0, &self.life, || {
                let word = &ring.control().head.0;
                let seen = word.load(Ordering::Acquire);
                *head = observed_head(tail, seen, ring.cap)?;
                let ready = if tail - *head + needed <= ring.cap as u64 {
                    Wait::Ready
                } else {
                    Wait::NotYet
                };
                Ok((ready, word, seen))
            });
            if let Err(e @ (Errno::PROTO | Errno::PIPE)) = result {
                self.broken = Some(e);
            }
            result?;
        }
        if skip > 0 {
            // The receiver, reaching the marker, goes on at the next lap's
            // start: zero the header there first.
            self.ring.stamp(0).store(0, Ordering::Relaxed);
            self.ring.len(off).store(WRAP, Ordering::Relaxed);
            self.publish(off);
            self.tail += skip as u64;
        }
        let off = self.ring.offset(self.tail);
        // SAFETY: off + HDR + len <= cap (checked above): inside the ring.
        let buf = unsafe { NonNull::new_unchecked(self.ring.data().add(off + HDR)) };
        Ok(Reservation {
            sender: self,
            buf,
            len,
        })
    }

    /// Whether `needed` bytes are free, reading the receiver's position
    /// again only if the last one seen is not enough.
    fn has_room(&mut self, needed: u64) -> Result<bool> {
        let cap = self.ring.cap as u64;
        if self.tail - self.head + needed <= cap {
            return Ok(true);
        }
        let seen = self.ring.control().head.0.load(Ordering::Acquire);
        match observed_head(self.tail, seen, self.ring.cap) {
            Ok(head) => self.head = head,
            Err(e) => {
                self.broken = Some(e);
                return Err(e);
            }
        }
        Ok(self.tail - self.head + needed <= cap)
    }

    /// Stamps the header at `off` (its length already written), which makes
    /// it visible, and wakes the receiver if it sleeps on it.
    fn publish(&self, off: usize) {
        let stamp = self.ring.stamp(off);
        stamp.store(stamp_for(self.tail), Ordering::Release);
        fence(Ordering::SeqCst);
        if self.ring.control().rx_sleeping.0.load(Ordering::Relaxed) != 0 {
            let _ = futex::wake(stamp, futex::Flags::empty(), 1);
        }
    }
}

/// The receiver's position from the shared `seen` (its low 32 bits): at most
/// `cap` behind `tail`, or the ring is corrupt.
fn observed_head(tail: u64, seen: u32, cap: usize) -> Result<u64> {
    let behind = (tail as u32).wrapping_sub(seen);
    if behind as usize > cap || u64::from(behind) > tail {
        return Err(Errno::PROTO);
    }
    Ok(tail - u64::from(behind))
}

impl core::ops::Deref for Reservation<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` reserved bytes inside the ring, ours until commit.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr(), self.len) }
    }
}

impl core::ops::DerefMut for Reservation<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access unique here.
        unsafe { core::slice::from_raw_parts_mut(self.buf.as_ptr(), self.len) }
    }
}

impl Reservation<'_> {
    /// Sends the first `len` bytes of the reservation as one message.
    ///
    /// Errors: `EINVAL` if `len` is 0 or more than was reserved (nothing is
    /// sent; reserve again).
    pub fn commit(self, len: usize) -> Result<()> {
        if len == 0 || len > self.len {
            return Err(Errno::INVAL);
        }
        let s = self.sender;
        let off = s.ring.offset(s.tail);
        let next = s.ring.offset(s.tail + (HDR + padded(len)) as u64);
        s.ring.stamp(next).store(0, Ordering::Relaxed);
        s.ring.len(off).store(len as u32, Ordering::Relaxed);
        s.publish(off);
        s.tail += (HDR + padded(len)) as u64;
        Ok(())
    }
}

impl Receiver {
    fn new(ring: Ring, life: OwnedFd) -> Self {
        Self {
            ring,
            life,
            head: 0,
            spin_ns: DEFAULT_SPIN_NS,
            broken: false,
            sender_gone: false,
        }
    }

    /// Sets how long a receive spins on an empty ring before it sleeps;
    /// 0 makes it sleep at once (blocking-only mode).
    pub fn set_spin(&mut self, ns: u32) {
        self.spin_ns = ns;
    }

    /// The largest message the channel takes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message()
    }

    /// Receives one whole message into `buf` and returns its length,
    /// waiting for one; 0 when the sender is gone and every message it
    /// committed has been received.
    ///
    /// Errors: `EMSGSIZE` if the message is larger than `buf` (it stays
    /// queued: see [`Receiver::next_size`]), `EPROTO` if the ring is corrupt.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self.next(true)? {
            None => Ok(0),
            Some((off, len)) => self.copy_out(off, len, buf),
        }
    }

    /// As [`Receiver::recv`], but fails with `EAGAIN` instead of waiting.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self.next(false)? {
            None => Ok(0),
            Some((off, len)) => self.copy_out(off, len, buf),
        }
    }

    /// The size of the next message, waiting for one; 0 when the sender is
    /// gone.
    pub fn next_size(&mut self) -> Result<usize> {
        Ok(self.next(true)?.map_or(0, |(_, len)| len))
    }

    /// Borrows the next message in place (zero-copy receive), waiting for
    /// one; `None` when the sender is gone. Dropping the message gives its
    /// space back.
    pub fn recv_borrowed(&mut self) -> Result<Option<Message<'_>>> {
        self.borrow_with(true)
    }

    /// As [`Receiver::recv_borrowed`], but fails with `EAGAIN` instead of
    /// waiting.
    pub fn try_recv_borrowed(&mut self) -> Result<Option<Message<'_>>> {
        self.borrow_with(false)
    }

    fn borrow_with(&mut self, wait: bool) -> Result<Option<Message<'_>>> {
        Ok(self.next(wait)?.map(|(off, len)| {
            // SAFETY: `next` checked off + HDR + len <= cap.
            let buf = unsafe { NonNull::new_unchecked(self.ring.data().add(off + HDR)) };
            Message {
                receiver: self,
                buf,
                len,
            }
        }))
    }

    fn copy_out(&mut self, off: usize, len: usize, buf: &mut [u8]) -> Result<usize> {
        let Some(dst) = buf.get_mut(..len) else {
            return Err(Errno::MSGSIZE);
        };
        // SAFETY: `next` checked off + HDR + len <= cap; `dst` is ours.
        unsafe { ptr::copy_nonoverlapping(self.ring.data().add(off + HDR), dst.as_mut_ptr(), len) };
        self.release(len);
        Ok(len)
    }

    /// The next message's offset and length, after checking both: `None`
    /// when the sender is gone; `EAGAIN` if `wait` is false and none is there.
    fn next(&mut self, wait: bool) -> Result<Option<(usize, usize)>> {
        if self.broken {
            return Err(Errno::PROTO);
        }
        let result = self.next_checked(wait);
        match result {
            Err(Errno::PROTO) => self.broken = true,
            Err(Errno::PIPE) => {
                self.sender_gone = true;
                return Ok(None);
            }
            _ => {}
        }
        result.map(Some)
    }

    fn next_checked(&mut self, wait: bool) -> Result<(usize, usize)> {
        loop {
            if let Some(found) = self.peek()? {
                return Ok(found);
            }
            if self.sender_gone {
                return Err(Errno::PIPE);
            }
            if !wait {
                return match peer_gone(&self.life)? {
                    // A message committed just before the sender died shows now.
                    true => self.peek()?.ok_or(Errno::PIPE),
                    false => Err(Errno::AGAIN),
                };
            }
            let (spin, ring, head) = (self.spin_ns, &self.ring, self.head);
            wait_until(spin, &ring.control().rx_sleeping.0, &self.life, || {
                let word = ring.stamp(ring.offset(head));
                let seen = word.load(Ordering::Acquire);
                match seen {
                    0 => Ok((Wait::NotYet, word, seen)),
                    s if s == stamp_for(head) => Ok((Wait::Ready, word, seen)),
                    _ => Err(Errno::PROTO),
                }
            })?;
        }
    }

    /// Looks at the header at the read position without waiting, following
    /// a wrap marker; `None` if nothing is committed there yet.
    fn peek(&mut self) -> Result<Option<(usize, usize)>> {
        let ring = &self.ring;
        let off = ring.offset(self.head);
        match ring.stamp(off).load(Ordering::Acquire) {
            0 => return Ok(None),
            s if s != stamp_for(self.head) => return Err(Errno::PROTO),
            _ => {}
        }
        let len = ring.len(off).load(Ordering::Relaxed);
        if len == WRAP {
            // A marker at a lap's start would skip a whole lap, forever.
            if off == 0 {
                return Err(Errno::PROTO);
            }
            self.head += (ring.cap - off) as u64;
            self.publish_head();
            return self.peek_after_wrap();
        }
        let len = len as usize;
        if len == 0 || len > ring.max_message() || off + HDR + padded(len) > ring.cap {
            return Err(Errno::PROTO);
        }
        Ok(Some((off, len)))
    }

    /// `peek` at a lap's start, where no wrap marker may stand.
    fn peek_after_wrap(&mut self) -> Result<Option<(usize, usize)>> {
        match self.ring.stamp(0).load(Ordering::Acquire) {
            0 => Ok(None),
            s if s != stamp_for(self.head) => Err(Errno::PROTO),
            _ if self.ring.len(0).load(Ordering::Relaxed) == WRAP => Err(Errno::PROTO),
            _ => self.peek(),
        }
    }

    /// Gives the message of `len` bytes at the read position back.
    fn release(&mut self, len: usize) {
        self.head += (HDR + padded(len)) as u64;
        self.publish_head();
    }

    /// Tells the sender how far we have read, and wakes it if it sleeps.
    fn publish_head(&self) {
        let head = &self.ring.control().head.0;
        head.store(self.head as u32, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.ring.control().tx_sleeping.0.load(Ordering::Relaxed) != 0 {
            let _ = futex::wake(head, futex::Flags::empty(), 1);
        }
    }
}

impl core::ops::Deref for Message<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a committed message inside the ring, which the sender does
        // not touch until we release it (a hostile sender may, see "Trust").
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr(), self.len) }
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        self.receiver.release(self.len);
    }
}

macro_rules! life_fd {
    ($($side:ident),*) => { $(
        impl AsFd for $side {
            /// The side's end of the socket pair that tells the other side
            /// this one is gone (for `poll`); do not read or write it.
            fn as_fd(&self) -> crate::BorrowedFd<'_> {
                self.life.as_fd()
            }
        }
    )* };
}
life_fd!(Sender, Receiver);
