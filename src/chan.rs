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
//! ([`Sender::set_spin`], default [`DEFAULT_SPIN_NS`], plus the time the
//! peer needs to copy a large message at 4 GB/s: for a receiver, twice the
//! last message it received; for a sender, the room it waits for), then
//! sleeps on a futex: process-shared, never `FUTEX_PRIVATE_FLAG`. The other side wakes it
//! only if it said it sleeps, so a busy channel makes no system call.
//!
//! A dead peer is learned the way the notes teach, through end of file: each
//! side keeps its end of a socket pair, which the kernel closes when its
//! process dies. A waiting side looks at it every [`LIVENESS_CHECK_MS`] ms,
//! by the clock, whatever else wakes it (a storm of signals cuts every sleep
//! short, and does not put the look off); so a receiver whose sender died
//! gets every message the sender committed and then "peer gone", and a
//! sender whose receiver died gets `EPIPE`, within about that time.
//!
//! # Waiting on many channels
//! Each end has a readiness fd ([`AsFd`]) that `poll`, `epoll` and
//! `select` report readable (`POLLIN`) when the end can make progress: a
//! message is there or the sender is gone (receiver); room was freed or
//! the receiver is gone (sender). So one thread can wait on many channels, and
//! on other fds, at once, and an async runtime can drive a channel (with
//! tokio: `tokio::io::unix::AsyncFd`).
//!
//! The fd is *armed* by a `try_` call that fails with `EAGAIN`
//! ([`Receiver::try_recv`], [`Receiver::try_recv_borrowed`],
//! [`Sender::try_send`], [`Sender::try_reserve`]): that call tells the peer
//! "wake me through my fd", then looks once more, so that nothing committed
//! in between is missed. The peer writes to the fd only then (one byte per
//! arming), so a busy channel still makes no system call; a side that spins
//! on a `try_` call instead of waiting costs its peer one system call per
//! message that follows an `EAGAIN` (spin with [`Receiver::recv`] instead,
//! which never arms the fd). One rule, for level-triggered and
//! edge-triggered `epoll` alike:
//!
//! **call the `try_` function until it fails with `EAGAIN`, then wait on
//! the fd again.**
//!
//! ```no_run
//! use rawipc::{AsFd, Errno};
//! use rustix::event::{PollFd, PollFlags, poll};
//!
//! # fn serve(rx: &mut rawipc::chan::Receiver) -> rawipc::Result<()> {
//! let mut buf = [0; 4096];
//! loop {
//!     match rx.try_recv(&mut buf) {
//!         Ok(0) => break, // the sender is gone, every message received
//!         Ok(n) => { /* handle buf[..n] */ let _ = n; }
//!         Err(Errno::AGAIN) => {
//!             // Armed: wait until the end can make progress.
//!             let mut fds = [PollFd::new(&*rx, PollFlags::IN)];
//!             rustix::io::retry_on_intr(|| poll(&mut fds, None))?;
//!         }
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A new channel's ends start armed: the receiver's fd turns readable
//! with the first message, the sender's is readable at once (there is
//! room), so a program may also wait first and try then.
//!
//! A wake-up may be spurious (the fd readable, the next `try_` call
//! `EAGAIN` again, for instance when the room freed is not enough for the
//! message): it then arms the fd again. A call that succeeds, or a
//! blocking call, may leave the fd unarmed, which is why the rule says
//! "until `EAGAIN`". After the peer is gone the fd stays readable (end of
//! file); the end reports it (0 on a receive, `EPIPE` on a send that finds
//! no room): take it out of the `epoll` set and drop it. The fd is a unix
//! socket, so `poll` also reports it writable (`POLLOUT`): ask for
//! `POLLIN` only.
//!
//! # Trust
//! The other process may be buggy or hostile and write any bytes anywhere in
//! the shared region. Each side keeps its own positions and the ring's size
//! in private memory, and checks every stamp, length and position it reads
//! from shared memory before using it: a corrupt ring gives `EPROTO` (and the
//! handle stays broken), never an access outside the region, a panic or an
//! endless wait. What such a peer can still do is what any peer can: send
//! wrong bytes, or change a message's bytes while it is being read.

use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{Ordering, compiler_fence};
use core::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};

use crate::deadline::Patience;
use crate::shm::SharedRegion;
use crate::{AsFd, Errno, OwnedFd, Result};

pub mod handover;
mod ring;
pub(crate) mod wait;

use ring::{
    ALIGN_FROM, HDR, LINE, PAD, Ring, WRAP, observed_head, padded, publish_head, stamp_for,
};
use wait::{Wait, arm, arm_fenced, disarm, peer_gone, register, start_armed, wait_until, wake};

/// How long a waiting side spins before it sleeps, unless told otherwise: a
/// kernel wake-up costs ~25 µs one way on the machines this was tuned on.
pub const DEFAULT_SPIN_NS: u32 = 50_000;

/// How often a waiting side checks that its peer is still alive: by the
/// clock, whatever wakes it meanwhile (signals included).
pub const LIVENESS_CHECK_MS: u32 = 20;

/// The smallest and largest ring; sizes are rounded up to a power of two.
pub const MIN_CAPACITY: usize = 1024;
/// See [`MIN_CAPACITY`].
pub const MAX_CAPACITY: usize = 1 << 30;

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
    /// of it, less 80 bytes ([`Channel::max_message`]).
    ///
    /// Errors: `EINVAL` if `capacity` is 0 or above [`MAX_CAPACITY`];
    /// `ENOMEM`; `EMFILE`/`ENFILE` (it uses a socket pair to learn of a
    /// peer's death).
    pub fn new(capacity: usize) -> Result<Self> {
        let cap = Self::ring_size(capacity)?;
        Self::in_region(SharedRegion::new(Ring::region_len(cap))?, cap)
    }

    /// The ring's size for `capacity` bytes; `EINVAL` as [`Channel::new`].
    fn ring_size(capacity: usize) -> Result<usize> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Errno::INVAL);
        }
        Ok(capacity.max(MIN_CAPACITY).next_power_of_two())
    }

    /// A channel whose ring of `cap` bytes lies in `region`, with its
    /// life-lines.
    fn in_region(region: SharedRegion, cap: usize) -> Result<Self> {
        let (tx_life, rx_life) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let ring = Ring::new(region, cap)?;
        start_armed(&ring.control().rx_sleeping.0, &rx_life);
        Ok(Self {
            ring,
            tx_life,
            rx_life,
        })
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap()
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
        let again = self.ring.map_again()?;
        Ok((
            Sender::new(self.ring, self.tx_life),
            Receiver::new(again, self.rx_life),
        ))
    }

    /// The shared region: its first byte and length. Only for looking at the
    /// bytes (or, in tests, for playing a hostile peer).
    pub fn region(&self) -> (*mut u8, usize) {
        (self.ring.region().as_ptr(), self.ring.region().len())
    }
}

/// The sending end of a channel.
///
/// One process sends: a `Sender` alive across [`fork`](crate::process::fork)
/// may be used afterwards by the parent or by the child, never by both (see
/// fork's safety contract); fork with the [`Channel`] instead.
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
///
/// One process receives: a `Receiver` alive across
/// [`fork`](crate::process::fork) may be used afterwards by the parent or by
/// the child, never by both (see fork's safety contract).
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
    /// The position last published for the sender.
    published: u64,
    /// The length of a message lent out with [`Message::keep`]: it stays
    /// at the read position until [`Receiver::release_kept`].
    kept: usize,
    /// This process is registered for `membarrier(2)`: a release needs no
    /// barrier of its own (see [`Receiver::release`]).
    light: bool,
    /// The length of the last message received: the next is likely as
    /// long, and a wait for it spins on for the time its copy takes.
    last_len: usize,
}

/// Space reserved in the ring by [`Sender::reserve`]: write the message in
/// place, then [`Reservation::commit`] it. Dropped uncommitted (or after a
/// commit that failed), it sends nothing and leaves nothing in the ring.
///
/// A reservation alive across [`fork`](crate::process::fork) must be used on
/// one side at most (see fork's safety contract): both would write the same
/// bytes of the shared ring.
///
/// So `tx.reserve(8)?;`, which drops it at once, is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn send_nothing(tx: &mut rawipc::chan::Sender) -> rawipc::Result<()> {
///     tx.reserve(8)?;
///     Ok(())
/// }
/// ```
#[must_use = "dropped without `commit`, a reservation sends nothing"]
pub struct Reservation<'a> {
    sender: &'a mut Sender,
    buf: NonNull<u8>,
    len: usize,
    /// The bytes the commit skips first, with a wrap marker then a pad
    /// marker: published only by the commit, so that a reservation let go
    /// leaves nothing behind in the ring.
    skip: usize,
    pad: usize,
}

/// A message borrowed in place by [`Receiver::recv_borrowed`]; its space is
/// given back to the sender when it is dropped (or, after
/// [`Message::keep`], by [`Receiver::release_kept`]).
///
/// A message alive across [`fork`](crate::process::fork) must be used on
/// one side at most (see fork's safety contract): both would give the same
/// space back.
#[must_use = "dropped unread, the message is lost"]
pub struct Message<'a> {
    receiver: &'a mut Receiver,
    buf: NonNull<u8>,
    len: usize,
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

    /// Sets how long a send spins on a full ring before it sleeps (plus the
    /// time the receiver needs to copy out the room it waits for, at
    /// 4 GB/s); 0 makes it sleep at once (blocking-only mode).
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
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let len = msg.len();
        let cap = self.ring.cap();
        let size = HDR + padded(len);
        let off = self.ring.offset(self.tail);
        // The common case, with no wait, marker or error: a message too small
        // to be aligned, that fits before the ring's end, with room by the
        // receiver's position as last seen.
        if self.broken.is_none()
            && len != 0
            && len < ALIGN_FROM
            && len <= self.ring.max_message()
            && off + size <= cap
            && self.tail - self.head + (size + HDR) as u64 <= cap as u64
        {
            // SAFETY: off + HDR + len <= cap: inside the ring; ours until published.
            unsafe { copy_bytes(msg.as_ptr(), self.ring.data().add(off + HDR), len) };
            self.commit_written(len);
            return Ok(());
        }
        self.send_slow(msg)
    }

    #[inline(never)]
    fn send_slow(&mut self, msg: &[u8]) -> Result<()> {
        let mut r = self.reserve(msg.len())?;
        r.copy_from_slice(msg);
        r.commit(msg.len())
    }

    /// As [`Sender::send`], but fails with `EAGAIN` instead of waiting; that
    /// `EAGAIN` arms the end's fd ([`AsFd`]), which turns readable when room
    /// is freed (see [Waiting on many channels](self#waiting-on-many-channels)).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        let mut r = self.try_reserve(msg.len())?;
        r.copy_from_slice(msg);
        r.commit(msg.len())
    }

    /// As [`Sender::send`], but waits for room at most `timeout`, then fails
    /// with `ETIMEDOUT` having sent nothing (a zero `timeout` does not wait).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        let mut r = self.reserve_timeout(msg.len(), timeout)?;
        r.copy_from_slice(msg);
        r.commit(msg.len())
    }

    /// Reserves `len` bytes in the ring, waiting for room, for a message to
    /// be written in place and committed (zero-copy send).
    ///
    /// Errors: as [`Sender::send`].
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.reserve_with(len, Patience::Forever)
    }

    /// As [`Sender::reserve`], but fails with `EAGAIN` instead of waiting
    /// (which arms the fd, as [`Sender::try_send`]).
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.reserve_with(len, Patience::None)
    }

    /// As [`Sender::reserve`], but waits for room at most `timeout`, then
    /// fails with `ETIMEDOUT`, reserving nothing.
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<Reservation<'_>> {
        self.reserve_with(len, Patience::after(timeout))
    }

    fn reserve_with(&mut self, len: usize, patience: Patience) -> Result<Reservation<'_>> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        if len == 0 {
            return Err(Errno::INVAL);
        }
        if len > self.ring.max_message() {
            return Err(Errno::MSGSIZE);
        }
        let cap = self.ring.cap();
        let off = self.ring.offset(self.tail);
        let size = HDR + padded(len);
        // Bytes before the header, skipped by a pad marker, so that a large
        // message's payload starts a cache line.
        let pad_at = |off: usize| match len >= ALIGN_FROM {
            true => (LINE - (off + HDR) % LINE) % LINE,
            false => 0,
        };
        let mut pad = pad_at(off);
        // If the message does not fit before the ring's end, the rest of the
        // lap is skipped by a wrap marker and the message goes at its start.
        let skip = if off + pad + size <= cap {
            0
        } else {
            cap - off
        };
        if skip > 0 {
            pad = pad_at(0);
        }
        // Room for all that and the next header, which the commit zeroes.
        let needed = (skip + pad + size + HDR) as u64;
        let room = self.has_room(needed)?
            || (matches!(patience, Patience::None) && self.room_after_arming(needed)?);
        if !room {
            if let Patience::None = patience {
                return Err(Errno::AGAIN);
            }
            // The room comes as the receiver copies messages out: spin on
            // for the time it takes to copy out as many bytes as needed.
            let spin = spin_for_copy(self.spin_ns, needed as usize);
            let ring = &self.ring;
            let (tail, head) = (self.tail, &mut self.head);
            let result = wait_until(
                spin,
                &ring.control().tx_waiting.0,
                &self.life,
                patience.deadline(),
                || {},
                || {
                    let word = &ring.control().head.0;
                    let seen = word.load(Ordering::Acquire);
                    *head = observed_head(tail, seen, ring.cap())?;
                    let ready = if tail - *head + needed <= ring.cap() as u64 {
                        Wait::Ready
                    } else {
                        Wait::NotYet
                    };
                    Ok((ready, word, seen))
                },
            );
            if let Err(e @ (Errno::PROTO | Errno::PIPE)) = result {
                self.broken = Some(e);
            }
            result?;
        }
        let off = self.ring.offset(self.tail + (skip + pad) as u64);
        // SAFETY: off + HDR + len <= cap (checked above): inside the ring.
        let buf = unsafe { NonNull::new_unchecked(self.ring.data().add(off + HDR)) };
        Ok(Reservation {
            sender: self,
            buf,
            len,
            skip,
            pad,
        })
    }

    /// Commits a reservation: its markers (a wrap, a pad), then its `len`
    /// bytes. Each marker sends the receiver on to where the next header
    /// will be, which it zeroes first; none touches the payload.
    fn commit_reserved(&mut self, skip: usize, pad: usize, len: usize) {
        if skip > 0 {
            self.mark(self.ring.offset(self.tail), WRAP, skip);
        }
        if pad > 0 {
            self.mark(self.ring.offset(self.tail), PAD, pad);
        }
        self.commit_written(len);
    }

    /// There is no room for `needed` bytes and the caller does not wait:
    /// `EPIPE` if the receiver is gone; else arms the fd and looks once
    /// more: whether there is room now.
    fn room_after_arming(&mut self, needed: u64) -> Result<bool> {
        if peer_gone(&self.life)? {
            self.broken = Some(Errno::PIPE);
            return Err(Errno::PIPE);
        }
        arm_fenced(&self.ring.control().tx_waiting.0);
        let room = self.has_room(needed)?;
        if room {
            disarm(&self.ring.control().tx_waiting.0);
        }
        Ok(room)
    }

    /// Whether `needed` bytes are free, reading the receiver's position
    /// again only if the last one seen is not enough.
    fn has_room(&mut self, needed: u64) -> Result<bool> {
        let cap = self.ring.cap() as u64;
        if self.tail - self.head + needed <= cap {
            return Ok(true);
        }
        let seen = self.ring.control().head.0.load(Ordering::Acquire);
        match observed_head(self.tail, seen, self.ring.cap()) {
            Ok(head) => self.head = head,
            Err(e) => {
                self.broken = Some(e);
                return Err(e);
            }
        }
        Ok(self.tail - self.head + needed <= cap)
    }

    /// Sends the `len` bytes written at the tail's payload: zeroes the next
    /// header (so the receiver never reads a stale one), then stamps this.
    #[inline]
    fn commit_written(&mut self, len: usize) {
        let off = self.ring.offset(self.tail);
        let size = (HDR + padded(len)) as u64;
        self.ring
            .stamp(self.ring.offset(self.tail + size))
            .store(0, Ordering::Relaxed);
        self.ring.len(off).store(len as u32, Ordering::Relaxed);
        self.publish(off);
        self.tail += size;
    }

    /// Publishes a marker (`WRAP` or `PAD`) at `off`, which moves the
    /// receiver `skip` bytes on.
    fn mark(&mut self, off: usize, marker: u32, skip: usize) {
        let next = self.ring.offset(self.tail + skip as u64);
        self.ring.stamp(next).store(0, Ordering::Relaxed);
        self.ring.len(off).store(marker, Ordering::Relaxed);
        self.publish(off);
        self.tail += skip as u64;
    }

    /// Stamps the header at `off` (its length already written), which makes
    /// it visible, and wakes the receiver if it sleeps on it.
    #[inline]
    fn publish(&self, off: usize) {
        let stamp = self.ring.stamp(off);
        // A full barrier (xchg on x86): either the receiver, about to sleep,
        // sees the stamp, or we see that it sleeps.
        stamp.swap(stamp_for(self.tail), Ordering::SeqCst);
        let flag = &self.ring.control().rx_sleeping.0;
        if flag.load(Ordering::SeqCst) != 0 {
            wake(flag, stamp, &self.life);
        }
    }
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
        self.sender.commit_reserved(self.skip, self.pad, len);
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
            published: 0,
            kept: 0,
            light: register(),
            last_len: 0,
        }
    }

    /// Sets how long a receive spins on an empty ring before it sleeps (plus
    /// the time the sender needs to copy twice the last message received, at
    /// 4 GB/s: in a request and reply over two channels, the request out and
    /// the reply in); 0 makes it sleep at once (blocking-only mode).
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
    /// queued: see [`Receiver::next_size`]), `EPROTO` if the ring is corrupt,
    /// `EBUSY` while a message is kept ([`Message::keep`]).
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let ring = &self.ring;
        let off = ring.offset(self.head);
        let stamp = ring.stamp(off);
        // A short first spin, inline (unless the sender waits for room, which
        // the slow path gives it first): a busy peer answers within it.
        if !self.broken
            && self.spin_ns > 0
            && ring.control().tx_waiting.0.load(Ordering::Relaxed) == 0
        {
            for _ in 0..FIRST_SPIN {
                if stamp.load(Ordering::Relaxed) != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
        }
        // The common case: a message is there, valid, and fits in `buf` (a
        // marker's length fails the size check).
        if !self.broken && self.kept == 0 && stamp.load(Ordering::Acquire) == stamp_for(self.head) {
            let len = ring.message_len(off);
            if let Some(len) = len.filter(|&len| len <= buf.len()) {
                // SAFETY: checked just above: inside the ring; `buf` is ours.
                unsafe { copy_bytes(ring.data().add(off + HDR), buf.as_mut_ptr(), len) };
                self.release(len);
                return Ok(len);
            }
        }
        self.recv_slow(buf)
    }

    #[inline(never)]
    fn recv_slow(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(buf, Patience::Forever)
    }

    /// As [`Receiver::recv`], but fails with `EAGAIN` instead of waiting (0
    /// still when the sender is gone); that `EAGAIN` arms the end's fd
    /// ([`AsFd`]), which turns readable when a message comes or the sender
    /// goes (see [Waiting on many channels](self#waiting-on-many-channels)).
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(buf, Patience::None)
    }

    /// As [`Receiver::recv`], but waits at most `timeout`, then fails with
    /// `ETIMEDOUT`, taking nothing (a zero `timeout` does not wait). A sender
    /// that is gone gives 0 at once, never `ETIMEDOUT`.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        self.recv_with(buf, Patience::after(timeout))
    }

    fn recv_with(&mut self, buf: &mut [u8], patience: Patience) -> Result<usize> {
        match self.next(patience)? {
            None => Ok(0),
            Some((off, len)) => self.copy_out(off, len, buf),
        }
    }

    /// The size of the next message, waiting for one; 0 when the sender is
    /// gone.
    pub fn next_size(&mut self) -> Result<usize> {
        Ok(self.next(Patience::Forever)?.map_or(0, |(_, len)| len))
    }

    /// As [`Receiver::next_size`], but waits at most `timeout`, then fails
    /// with `ETIMEDOUT`.
    pub fn next_size_timeout(&mut self, timeout: Duration) -> Result<usize> {
        let patience = Patience::after(timeout);
        Ok(self.next(patience)?.map_or(0, |(_, len)| len))
    }

    /// Borrows the next message in place (zero-copy receive), waiting for
    /// one; `None` when the sender is gone. Dropping the message gives its
    /// space back.
    pub fn recv_borrowed(&mut self) -> Result<Option<Message<'_>>> {
        self.borrow_with(Patience::Forever)
    }

    /// As [`Receiver::recv_borrowed`], but fails with `EAGAIN` instead of
    /// waiting (`None` still when the sender is gone; an `EAGAIN` arms the
    /// fd, as [`Receiver::try_recv`]).
    pub fn try_recv_borrowed(&mut self) -> Result<Option<Message<'_>>> {
        self.borrow_with(Patience::None)
    }

    /// As [`Receiver::recv_borrowed`], but waits at most `timeout`, then
    /// fails with `ETIMEDOUT`, taking nothing.
    pub fn recv_borrowed_timeout(&mut self, timeout: Duration) -> Result<Option<Message<'_>>> {
        self.borrow_with(Patience::after(timeout))
    }

    /// Gives back the message kept with [`Message::keep`]: exactly the
    /// bytes lent, whatever the peer wrote into shared memory meanwhile.
    ///
    /// Errors: `EINVAL` if no message is kept.
    pub fn release_kept(&mut self) -> Result<()> {
        match core::mem::take(&mut self.kept) {
            0 => Err(Errno::INVAL),
            len => {
                self.release(len);
                Ok(())
            }
        }
    }

    fn borrow_with(&mut self, patience: Patience) -> Result<Option<Message<'_>>> {
        if self.kept > 0 {
            let off = self.ring.offset(self.head);
            let len = core::mem::take(&mut self.kept);
            // SAFETY: the message was checked when it was first lent, and
            // the read position has not moved since.
            let buf = unsafe { NonNull::new_unchecked(self.ring.data().add(off + HDR)) };
            return Ok(Some(Message {
                receiver: self,
                buf,
                len,
            }));
        }
        Ok(self.next(patience)?.map(|(off, len)| {
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
    /// when the sender is gone; `EAGAIN` with no patience and none there,
    /// `ETIMEDOUT` when the patience ran out.
    fn next(&mut self, patience: Patience) -> Result<Option<(usize, usize)>> {
        if self.broken {
            return Err(Errno::PROTO);
        }
        if self.kept > 0 {
            return Err(Errno::BUSY);
        }
        let result = self.next_checked(patience);
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

    fn next_checked(&mut self, patience: Patience) -> Result<(usize, usize)> {
        loop {
            if let Some(found) = self.peek()? {
                return Ok(found);
            }
            // Caught up: let the sender see all the room there is (with
            // the full protocol before giving up: a sender may wait for it
            // on its fd).
            self.publish_head(matches!(patience, Patience::None));
            if self.sender_gone {
                return Err(Errno::PIPE);
            }
            if let Patience::None = patience {
                return self.nothing_now();
            }
            // The sender is likely copying a message as long as the last
            // one in (and, in a request and reply over two channels, one
            // out): spin on for that, rather than sleep through it.
            let spin = spin_for_copy(self.spin_ns, self.last_len.saturating_mul(2));
            let (ring, head) = (&self.ring, self.head);
            let wait_for_stamp = || {
                let word = ring.stamp(ring.offset(head));
                let seen = word.load(Ordering::Acquire);
                match seen {
                    0 => Ok((Wait::NotYet, word, seen)),
                    s if s == stamp_for(head) => Ok((Wait::Ready, word, seen)),
                    _ => Err(Errno::PROTO),
                }
            };
            // Before sleeping, publish with the full protocol, so that a
            // sender waiting for room cannot sleep on a stale position too.
            let life = &self.life;
            let before_sleep = || publish_head(ring, head, true, life);
            wait_until(
                spin,
                &ring.control().rx_sleeping.0,
                &self.life,
                patience.deadline(),
                before_sleep,
                wait_for_stamp,
            )?;
            self.published = head;
        }
    }

    /// Nothing at the read position, and the caller does not wait: `EPIPE`
    /// if the sender is gone (after a last look: a message committed just
    /// before it died shows now); else arms the fd and looks once more;
    /// `EAGAIN`.
    fn nothing_now(&mut self) -> Result<(usize, usize)> {
        if peer_gone(&self.life)? {
            return self.peek()?.ok_or(Errno::PIPE);
        }
        arm(&self.ring.control().rx_sleeping.0);
        if let Some(found) = self.peek()? {
            disarm(&self.ring.control().rx_sleeping.0);
            return Ok(found);
        }
        // The look may have passed markers: their room is the sender's too.
        if self.published != self.head {
            self.publish_head(true);
        }
        Err(Errno::AGAIN)
    }

    /// Looks at the header at the read position without waiting, following
    /// markers (at most a wrap, then a pad); `None` if nothing is committed
    /// there yet.
    fn peek(&mut self) -> Result<Option<(usize, usize)>> {
        let mut after: Option<u32> = None;
        loop {
            let ring = &self.ring;
            let off = ring.offset(self.head);
            match ring.stamp(off).load(Ordering::Acquire) {
                0 => return Ok(None),
                s if s != stamp_for(self.head) => return Err(Errno::PROTO),
                _ => {}
            }
            let len = ring.len(off).load(Ordering::Relaxed);
            let Some(skip) = ring.marker_skip(off, len, after)? else {
                return ring
                    .message_len(off)
                    .map(|len| Some((off, len)))
                    .ok_or(Errno::PROTO);
            };
            after = Some(len);
            self.head += skip as u64;
        }
    }

    /// Gives the message of `len` bytes at the read position back, and
    /// tells the sender at once: a plain store to a line that the sender
    /// reads only when the room it knows of is not enough, then a look at
    /// the sender's flag, so a busy channel pays nothing for it and a
    /// waiting sender sees every byte freed and is woken. A sender that
    /// arms its fd for room pays the barrier between the store and the look
    /// with `membarrier(2)`; where this process could not register for it,
    /// the store is a full barrier itself.
    #[inline]
    fn release(&mut self, len: usize) {
        self.last_len = len;
        self.head += (HDR + padded(len)) as u64;
        if !self.light {
            return self.publish_head(true);
        }
        let control = self.ring.control();
        control.head.0.store(self.head as u32, Ordering::Release);
        self.published = self.head;
        compiler_fence(Ordering::SeqCst);
        if control.tx_waiting.0.load(Ordering::SeqCst) != 0 {
            self.publish_head(true);
        }
    }

    /// Tells the sender how far we have read; `full`: with a barrier, and
    /// waking it if it sleeps.
    fn publish_head(&mut self, full: bool) {
        if full || self.published != self.head {
            publish_head(&self.ring, self.head, full, &self.life);
            self.published = self.head;
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

impl Message<'_> {
    /// Keeps the message lent out after this value is gone, for a caller
    /// that holds on to its address (as the C library's borrow does): its
    /// space stays taken, [`Receiver::recv_borrowed`] lends the same message
    /// again without looking at shared memory, the other receives fail with
    /// `EBUSY`, and [`Receiver::release_kept`] gives it back.
    pub fn keep(self) {
        self.receiver.kept = self.len;
        core::mem::forget(self);
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        self.receiver.release(self.len);
    }
}

impl AsFd for Sender {
    /// The end's readiness fd, for `poll`, `epoll` or `select`: readable
    /// (`POLLIN`) when a send can make progress, because room was freed or
    /// because the receiver is gone. It belongs to the handle (closed with
    /// it): do not close, read or write it. A [`Sender::try_send`] or
    /// [`Sender::try_reserve`] that fails with `EAGAIN` arms it; see
    /// [Waiting on many channels](self#waiting-on-many-channels).
    fn as_fd(&self) -> crate::BorrowedFd<'_> {
        self.life.as_fd()
    }
}

impl AsFd for Receiver {
    /// The end's readiness fd, for `poll`, `epoll` or `select`: readable
    /// (`POLLIN`) when a receive can make progress, because a message is
    /// there or because the sender is gone. It belongs to the handle (closed
    /// with it): do not close, read or write it. A [`Receiver::try_recv`] or
    /// [`Receiver::try_recv_borrowed`] that fails with `EAGAIN` arms it; see
    /// [Waiting on many channels](self#waiting-on-many-channels).
    fn as_fd(&self) -> crate::BorrowedFd<'_> {
        self.life.as_fd()
    }
}

/// Copies `len` bytes; a message of 8 to 16 bytes without a call.
///
/// # Safety
/// As `ptr::copy_nonoverlapping`.
#[inline]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    if (8..=16).contains(&len) {
        // SAFETY: two 8-byte copies inside the `len` bytes, overlapping when
        // len < 16.
        unsafe {
            let a = ptr::read_unaligned(src.cast::<u64>());
            let b = ptr::read_unaligned(src.add(len - 8).cast::<u64>());
            ptr::write_unaligned(dst.cast::<u64>(), a);
            ptr::write_unaligned(dst.add(len - 8).cast::<u64>(), b);
        }
    } else {
        // SAFETY: the caller's.
        unsafe { ptr::copy_nonoverlapping(src, dst, len) };
    }
}

/// How long a waiting side spins: its `spin_ns`, plus the time the peer
/// needs to copy `bytes` at a slow copy's pace, as a call's wait does
/// ([`crate::call`]): a large message is then not slowed by a sleep and a
/// wake-up (~25 µs each on a VM) for the copying alone. 0 stays 0.
fn spin_for_copy(spin_ns: u32, bytes: usize) -> u32 {
    u32::try_from(crate::call::spin_budget(spin_ns, bytes)).unwrap_or(u32::MAX)
}

/// Looks of the inline first spin of `recv` (a `pause` takes ~36 ns on the
/// machine this was tuned on: ~2 µs in all).
const FIRST_SPIN: u32 = 64;

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("capacity", &self.capacity())
            .field("max_message", &self.max_message())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.ring.cap())
            .field("spin_ns", &self.spin_ns)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.ring.cap())
            .field("spin_ns", &self.spin_ns)
            .field("broken", &self.broken)
            .field("sender_gone", &self.sender_gone)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::spin_for_copy;

    #[test]
    fn a_wait_spins_on_for_the_copy_and_blocking_only_stays_so() {
        assert_eq!(spin_for_copy(0, 1 << 30), 0, "blocking-only");
        assert_eq!(spin_for_copy(50_000, 0), 50_000, "nothing received yet");
        // Two 1 MiB messages at 4 GB/s: 0.5 ms.
        assert_eq!(spin_for_copy(50_000, 2 << 20), 50_000 + 524_288);
        // A ring's largest messages (1 GiB rings) saturate, never wrap.
        assert_eq!(spin_for_copy(50_000, usize::MAX), u32::MAX);
    }
}
