//! Request and reply in one shared slot: a client calls with a small request
//! and waits for the reply, a server waits for a request and answers it, and
//! both travel in the same cache line.
//!
//! Two [`chan`](crate::chan) channels, one each way, cost two cache lines per
//! round trip. A [`Call`] costs one: a request of up to [`LINE_MESSAGE`]
//! bytes, the word that says whose turn it is and both sides' sleep flags
//! share one 64-byte line, which the reply then overwrites. Larger messages
//! (up to the size the call was made with, at most [`MAX_MESSAGE`]) run on
//! into the lines after it.
//!
//! Made before `fork`, a call is turned into its [`Client`] in one process
//! and its [`Server`] in the other:
//!
//! ```no_run
//! use rawipc::call::{Call, LINE_MESSAGE};
//! use rawipc::process::{self, Fork};
//!
//! # fn main() -> rawipc::Result<()> {
//! let call = Call::new(LINE_MESSAGE)?;
//! // SAFETY: this program has a single thread.
//! match unsafe { process::fork()? } {
//!     Fork::Child => {
//!         let mut server = call.into_server();
//!         let mut req = [0; LINE_MESSAGE];
//!         // 0: the client is gone.
//!         while let n @ 1.. = server.recv(&mut req)? {
//!             req[..n].reverse();
//!             server.reply(&req[..n])?;
//!         }
//!         process::exit(0);
//!     }
//!     Fork::Parent(_) => {
//!         let mut client = call.into_client();
//!         let mut reply = [0; LINE_MESSAGE];
//!         let n = client.call(b"ping", &mut reply)?;
//!         assert_eq!(&reply[..n], b"gnip");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//! The slot's first word is a sequence number: the client publishes request
//! `k` by making it `2k + 1`, the server its reply by making it `2k + 2`,
//! each after writing the message and its length. A side that waits spins
//! for a while ([`Client::set_spin`], default
//! [`DEFAULT_SPIN_NS`], plus the time the peer needs to copy the
//! exchange's bytes at 4 GB/s, so that a large message is not slowed by
//! wake-ups), then sleeps on that
//! word with a futex (process-shared, never `FUTEX_PRIVATE_FLAG`) after
//! raising its sleep flag; the other side makes the `FUTEX_WAKE` system call
//! only when that flag is up. The barrier that makes "either it sees my
//! message or I see its flag" hold is paid by the side about to sleep, with
//! `membarrier(2)`, so that the busy side publishes with a plain store (where
//! `membarrier` is refused, the publisher pays a full barrier instead). So
//! while both sides are busy a round trip is two transfers of one cache line,
//! no barrier and no system call.
//!
//! A dead peer is learned through end of file, as with a pipe: each side
//! keeps its end of a socket pair, which the kernel closes when its process
//! dies. A sleeping side looks at it every
//! [`LIVENESS_CHECK_MS`] ms, on an absolute
//! `CLOCK_MONOTONIC` deadline that signals cannot postpone: a call whose
//! server died fails with `EPIPE`, a server whose client died receives 0.
//!
//! # Waiting on many calls
//! Each side has a readiness fd ([`AsFd`]) that `poll`, `epoll` and
//! `select` report readable (`POLLIN`) when the side can make progress: a
//! request is waiting or the client is gone (server); the reply is in or the
//! server is gone (client). So a server can wait on many clients, and a
//! client on many servers, in one `epoll_wait`, beside other fds.
//!
//! The fd is armed as a channel end's is (see
//! [Waiting on many channels](crate::chan#waiting-on-many-channels)): by
//! [`Server::try_recv`] or [`Client::try_reply`] failing with `EAGAIN`. That
//! call raises a flag in the slot's line ("wake me through my fd"), then
//! looks once more; the peer, which reads that line's flag word on every
//! publish anyway, writes one byte into the fd only then. A busy call still
//! makes no system call. The client sends without waiting with
//! [`Client::send`]. The one rule, for `poll` and level- and edge-triggered
//! `epoll` alike:
//!
//! **call `try_recv` (or `try_reply`) until it fails with `EAGAIN`, then
//! wait on the fd again.**
//!
//! ```no_run
//! use rawipc::{AsFd, Errno};
//! use rustix::event::{PollFd, PollFlags, poll};
//!
//! # fn ask(client: &mut rawipc::call::Client) -> rawipc::Result<usize> {
//! let mut reply = [0; 64];
//! client.send(b"ping")?;
//! loop {
//!     match client.try_reply(&mut reply) {
//!         Ok(n) => return Ok(n), // the reply, reply[..n]
//!         Err(Errno::AGAIN) => {
//!             // Armed: wait until the reply is in, or the server gone.
//!             let mut fds = [PollFd::new(&*client, PollFlags::IN)];
//!             rustix::io::retry_on_intr(|| poll(&mut fds, None))?;
//!         }
//!         Err(e) => return Err(e), // EPIPE: the server is gone
//!     }
//! }
//! # }
//! ```
//!
//! A new server starts armed: its fd turns readable with the first request.
//! A wake-up may be stale (the fd readable, the next try `EAGAIN` again):
//! that try arms it again. A call that succeeds, or a blocking call, may
//! leave the fd unarmed, which is why the rule says "until `EAGAIN`". Once
//! the peer is gone the fd stays readable (end of file); the try call says
//! so (0 from `try_recv`, `EPIPE` from `try_reply`). The fd is a unix
//! socket, always writable: ask for `POLLIN` only.
//!
//! # Trust
//! The other process may write anything anywhere in the slot. Each side keeps
//! the sequence it expects and the slot's size in private memory and checks
//! every word it reads: a sequence number that is neither "not yet" nor the
//! one expected, or a length above the slot's size, gives `EPROTO` (and the
//! handle stays broken), never an access outside the slot, a panic or an
//! endless wait. What such a peer can still do is what any peer can: send
//! wrong bytes, or change them while they are being copied out.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering, compiler_fence};
use core::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
use rustix::thread::{MembarrierCommand, futex, membarrier};
use rustix::time::Timespec;

use crate::chan::wait::{POLLING, arm_fenced, disarm, peer_gone, wake};
use crate::chan::{DEFAULT_SPIN_NS, LIVENESS_CHECK_MS};
use crate::shm::SharedRegion;
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result};

/// The largest request or reply that travels in the slot's first cache line,
/// with the slot's 16-byte header.
pub const LINE_MESSAGE: usize = LINE - HEADER;

/// The largest message a call can be made for (1 MiB); above
/// [`LINE_MESSAGE`] a message spans the lines after the first.
pub const MAX_MESSAGE: usize = 1 << 20;

const LINE: usize = 64;
/// Bytes before the message: the sequence, the length, two sleep flags.
const HEADER: usize = 16;

/// The slot's header, at the start of its first cache line.
#[repr(C, align(64))]
struct Header {
    /// Odd: request `(seq - 1) / 2` is waiting; even: its reply is there.
    seq: AtomicU32,
    /// The length of the message in the slot (request or reply).
    len: AtomicU32,
    /// Non-zero while the client sleeps or is about to ([`SLEEPING`]), or
    /// waits on its fd for the reply ([`POLLING`]).
    client_sleeping: AtomicU32,
    /// Non-zero while the server sleeps or is about to ([`SLEEPING`]), or
    /// waits on its fd for a request ([`POLLING`]).
    server_sleeping: AtomicU32,
}

const _: () = assert!(size_of::<Header>() == LINE && HEADER == 4 * size_of::<u32>());

/// A waiting side's sleep flag: it sleeps on the futex (wake it).
const SLEEPING: u32 = 1;

/// The slot as one side sees it: the shared region and, in private memory,
/// the largest message it was made for.
struct Slot {
    region: SharedRegion,
    max: usize,
    /// This process is registered for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`:
    /// its publishes need no fence (see [`Slot::publish`]).
    light: bool,
}

/// `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)`: lets a sleeping
/// peer's barrier reach this process, so that its publishes can skip theirs.
fn register() -> bool {
    membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
}

impl Slot {
    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the region starts with a Header (all atomics, valid for
        // any bytes), page-aligned, alive as long as self.
        unsafe { &*self.region.as_ptr().cast::<Header>() }
    }

    /// The message's first byte (`max` bytes follow inside the region).
    #[inline]
    fn data(&self) -> *mut u8 {
        // SAFETY: the region is HEADER + max bytes long at least.
        unsafe { self.region.as_ptr().add(HEADER) }
    }

    /// The length word, checked against the slot's private size.
    #[inline]
    fn checked_len(&self) -> Result<usize> {
        let len = self.header().len.load(Ordering::Relaxed) as usize;
        if len > self.max {
            return Err(Errno::PROTO);
        }
        Ok(len)
    }

    /// Writes `msg` and its length, then publishes `seq` and wakes the peer
    /// if it said it sleeps, or waits on its fd (through our end of the
    /// life-line, `bell`).
    #[inline]
    fn publish(&self, msg: &[u8], seq: u32, peer_sleeping: &AtomicU32, bell: &OwnedFd) {
        debug_assert!(msg.len() <= self.max);
        // SAFETY: msg.len() <= max: inside the region; the slot is ours to
        // write until `seq` is published.
        unsafe { copy_bytes(msg.as_ptr(), self.data(), msg.len()) };
        let h = self.header();
        h.len.store(msg.len() as u32, Ordering::Relaxed);
        // Either the sleeper sees `seq`, or we see its flag. In a registered
        // process the sleeper's membarrier(2) is the barrier between our store
        // and our load (it makes every registered CPU run one, or the store
        // is seen first), so the hot path needs only the compiler's order;
        // otherwise a full barrier here pairs with the sleeper's.
        if self.light {
            h.seq.store(seq, Ordering::Release);
            compiler_fence(Ordering::SeqCst);
        } else {
            h.seq.swap(seq, Ordering::SeqCst);
        }
        if peer_sleeping.load(Ordering::SeqCst) != 0 {
            wake(peer_sleeping, &h.seq, bell);
        }
    }

    /// Copies the message of checked length `len` into `buf`.
    #[inline]
    fn copy_out(&self, len: usize, buf: &mut [u8]) {
        debug_assert!(len <= self.max && len <= buf.len());
        // SAFETY: len <= max: inside the region; buf holds len bytes.
        unsafe { copy_bytes(self.data(), buf.as_mut_ptr(), len) };
    }
}

/// A call before `fork`: both sides, to be turned into one of them in each
/// process with [`Call::into_client`] or [`Call::into_server`].
pub struct Call {
    slot: Slot,
    client_life: OwnedFd,
    server_life: OwnedFd,
}

impl Call {
    /// Maps a slot for requests and replies of up to `max_message` bytes:
    /// [`LINE_MESSAGE`] or less keeps every message in one cache line.
    ///
    /// Errors: `EINVAL` if `max_message` is 0 or above [`MAX_MESSAGE`];
    /// `ENOMEM`; `EMFILE`/`ENFILE` (a socket pair tells each side of the
    /// other's death).
    pub fn new(max_message: usize) -> Result<Self> {
        if max_message == 0 || max_message > MAX_MESSAGE {
            return Err(Errno::INVAL);
        }
        let region = SharedRegion::new(HEADER + max_message.max(LINE_MESSAGE))?;
        let (client_life, server_life) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let slot = Slot {
            region,
            max: max_message,
            light: false,
        };
        // The server starts armed: its fd turns readable with the first
        // request, so that a server may wait on it before its first try.
        slot.header()
            .server_sleeping
            .store(POLLING, Ordering::Relaxed);
        Ok(Self {
            slot,
            client_life,
            server_life,
        })
    }

    /// The largest request or reply, as given to [`Call::new`].
    pub fn max_message(&self) -> usize {
        self.slot.max
    }

    /// Keeps the client in this process and closes the server's end.
    pub fn into_client(mut self) -> Client {
        self.slot.light = register();
        Client::new(self.slot, self.client_life)
    }

    /// Keeps the server in this process and closes the client's end.
    pub fn into_server(mut self) -> Server {
        self.slot.light = register();
        Server::new(self.slot, self.server_life)
    }

    /// Both sides in this process, for two threads (or for tests): each
    /// maps the slot on its own.
    ///
    /// Errors: `ENOMEM` (a second mapping could not be made).
    pub fn split(self) -> Result<(Client, Server)> {
        let light = register();
        let again = Slot {
            region: self.slot.region.map_again()?,
            max: self.slot.max,
            light,
        };
        let slot = Slot { light, ..self.slot };
        Ok((
            Client::new(slot, self.client_life),
            Server::new(again, self.server_life),
        ))
    }

    /// The shared slot: its first byte and length. Only for looking at the
    /// bytes (or, in tests, for playing a hostile peer).
    pub fn region(&self) -> (*mut u8, usize) {
        (self.slot.region.as_ptr(), self.slot.region.len())
    }
}

/// Where a client is between calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// No call made yet, or the last reply was taken.
    Idle,
    /// A request is published; its reply is not in yet (a timed-out call).
    Waiting,
    /// The reply is in the slot, `len` bytes long, and stays there until
    /// the next call: one that did not fit the caller's buffer.
    Kept(usize),
}

/// The calling side of a [`Call`].
pub struct Client {
    slot: Slot,
    life: OwnedFd,
    /// The last sequence number published (private: never read back).
    seq: u32,
    state: ClientState,
    spin_ns: u32,
    /// The length of the request last sent and of the reply last taken:
    /// what the server copies before it answers (see [`spin_budget`]).
    sent: usize,
    last_reply: usize,
    /// Set by `EPROTO` (corrupt slot) or `EPIPE` (server gone): every later
    /// call fails the same way.
    broken: Option<Errno>,
}

/// The answering side of a [`Call`].
pub struct Server {
    slot: Slot,
    life: OwnedFd,
    /// The sequence number of the last reply (private).
    seq: u32,
    /// The length of a request taken and not answered yet.
    taken: Option<usize>,
    spin_ns: u32,
    /// The length of the last request and of the last reply: what the
    /// client copies before its next request is in (see [`spin_budget`]).
    last_request: usize,
    last_reply: usize,
    /// Set by `EPROTO`: the slot is corrupt, every later call fails.
    broken: bool,
    /// The client is known to be gone.
    client_gone: bool,
}

/// A wait's outcome, before the caller checks the new sequence number.
enum Waited {
    /// The sequence number moved from the one waited on: this is its value.
    Moved(u32),
    /// The peer is gone and the sequence number did not move.
    PeerGone,
}

impl Client {
    fn new(slot: Slot, life: OwnedFd) -> Self {
        Self {
            slot,
            life,
            seq: 0,
            state: ClientState::Idle,
            spin_ns: DEFAULT_SPIN_NS,
            sent: 0,
            last_reply: 0,
            broken: None,
        }
    }

    /// Sets how long the client spins for a reply before it sleeps (and,
    /// on top, the time the server takes to copy the request and a reply as
    /// long as the last one: see the module's doc); 0 makes it sleep at
    /// once (blocking-only mode).
    pub fn set_spin(&mut self, ns: u32) {
        self.spin_ns = ns;
    }

    /// The largest request or reply.
    pub fn max_message(&self) -> usize {
        self.slot.max
    }

    /// Sends `request`, waits for the reply and copies it into `reply`;
    /// returns its length (a reply may be empty).
    ///
    /// Errors: `EINVAL` for an empty request; `EMSGSIZE` for a request
    /// above [`Client::max_message`] (nothing is sent), or a reply longer
    /// than `reply` (it stays in the slot until the next call: take it with
    /// [`Client::reply`]); `EPIPE` if the server is gone; `EPROTO` if the
    /// slot is corrupt; `EBUSY` while a timed-out call's reply is still due.
    #[inline]
    pub fn call(&mut self, request: &[u8], reply: &mut [u8]) -> Result<usize> {
        self.call_until(request, reply, None)
    }

    /// As [`Client::call`], but gives up with `ETIMEDOUT` after `timeout`.
    /// The request then stays made: its reply is taken with
    /// [`Client::reply_timeout`] (and until then a new call fails with
    /// `EBUSY`).
    pub fn call_timeout(
        &mut self,
        request: &[u8],
        reply: &mut [u8],
        timeout: Duration,
    ) -> Result<usize> {
        self.call_until(request, reply, Some(deadline_after(timeout)))
    }

    /// As [`Client::call`], with one buffer for both: sends `buf[..len]`
    /// and copies the reply over it (room: all of `buf`). A large message
    /// then cycles through two buffers' worth of cache, the caller's and the
    /// slot, instead of three.
    ///
    /// Errors: `EINVAL` if `len` is 0 or above `buf.len()`; otherwise as
    /// [`Client::call`].
    #[inline]
    pub fn call_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        self.call_in_place_until(buf, len, None)
    }

    /// As [`Client::call_in_place`], but gives up with `ETIMEDOUT` after
    /// `timeout`, as [`Client::call_timeout`].
    pub fn call_in_place_timeout(
        &mut self,
        buf: &mut [u8],
        len: usize,
        timeout: Duration,
    ) -> Result<usize> {
        self.call_in_place_until(buf, len, Some(deadline_after(timeout)))
    }

    #[inline]
    fn call_until(
        &mut self,
        request: &[u8],
        reply: &mut [u8],
        deadline: Option<Timespec>,
    ) -> Result<usize> {
        self.send(request)?;
        self.take_reply(reply, deadline)
    }

    #[inline]
    fn call_in_place_until(
        &mut self,
        buf: &mut [u8],
        len: usize,
        deadline: Option<Timespec>,
    ) -> Result<usize> {
        let Some(request) = buf.get(..len) else {
            return Err(Errno::INVAL);
        };
        self.send(request)?;
        self.take_reply(buf, deadline)
    }

    /// Sends `request` as the next call without waiting for its reply,
    /// which is then taken with [`Client::try_reply`] (for a client that
    /// waits on its fd: see [Waiting on many calls](self#waiting-on-many-calls)),
    /// [`Client::reply`] or [`Client::reply_timeout`]. A server that is gone
    /// is reported by those.
    ///
    /// Errors: `EINVAL` for an empty request; `EMSGSIZE` for one above
    /// [`Client::max_message`]; `EBUSY` while the last call's reply is still
    /// due; `EPIPE` or `EPROTO` once the client is broken (see
    /// [`Client::call`]). Nothing is sent then.
    #[inline]
    pub fn send(&mut self, request: &[u8]) -> Result<()> {
        if self.broken.is_some()
            || self.state == ClientState::Waiting
            || request.is_empty()
            || request.len() > self.slot.max
        {
            return Err(self.refusal(request.len()));
        }
        self.seq = self.seq.wrapping_add(1);
        let h = self.slot.header();
        self.slot
            .publish(request, self.seq, &h.server_sleeping, &self.life);
        self.state = ClientState::Waiting;
        self.sent = request.len();
        Ok(())
    }

    /// Why a call of a `len`-byte request is refused before it is made.
    #[cold]
    fn refusal(&self, len: usize) -> Errno {
        match self.broken {
            Some(e) => e,
            None if self.state == ClientState::Waiting => Errno::BUSY,
            None if len == 0 => Errno::INVAL,
            None => Errno::MSGSIZE,
        }
    }

    /// Takes the reply of the last call: one that did not fit its buffer
    /// (`EMSGSIZE`), or, waiting for it, one whose call timed out.
    ///
    /// Errors: `EINVAL` if there is no call whose reply is due or kept;
    /// otherwise as [`Client::call`].
    pub fn reply(&mut self, reply: &mut [u8]) -> Result<usize> {
        self.reply_until(reply, None)
    }

    /// As [`Client::reply`], giving up with `ETIMEDOUT` after `timeout`.
    pub fn reply_timeout(&mut self, reply: &mut [u8], timeout: Duration) -> Result<usize> {
        self.reply_until(reply, Some(deadline_after(timeout)))
    }

    fn reply_until(&mut self, reply: &mut [u8], deadline: Option<Timespec>) -> Result<usize> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        match self.state {
            ClientState::Idle => Err(Errno::INVAL),
            ClientState::Waiting => self.take_reply(reply, deadline),
            ClientState::Kept(_) => self.copy_reply(reply),
        }
    }

    /// As [`Client::reply`], but fails with `EAGAIN` instead of waiting for
    /// a reply that is not in yet; that `EAGAIN` arms the client's fd
    /// ([`AsFd`]), which turns readable when the reply comes or the server
    /// goes (see [Waiting on many calls](self#waiting-on-many-calls)).
    ///
    /// Errors: `EAGAIN`; `EPIPE` if the server is gone without answering;
    /// otherwise as [`Client::reply`].
    pub fn try_reply(&mut self, reply: &mut [u8]) -> Result<usize> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        match self.state {
            ClientState::Idle => Err(Errno::INVAL),
            ClientState::Kept(_) => self.copy_reply(reply),
            ClientState::Waiting => {
                let moved = match self.slot.header().seq.load(Ordering::Acquire) {
                    seq if seq != self.seq => seq,
                    _ => self.reply_not_in()?,
                };
                self.take_moved(moved, reply)
            }
        }
    }

    /// No reply yet, and the caller does not wait: `EPIPE` if the server
    /// is gone (after a last look: a reply made just before it died shows
    /// now); else arms the fd and looks once more; `EAGAIN`. The barrier
    /// that a registered server's publish does not take itself is paid
    /// here ([`arm_fenced`]).
    #[cold]
    fn reply_not_in(&mut self) -> Result<u32> {
        let h = self.slot.header();
        if peer_gone(&self.life)? {
            return match h.seq.load(Ordering::Acquire) {
                seq if seq != self.seq => Ok(seq),
                _ => Err(self.fail(Errno::PIPE)),
            };
        }
        arm_fenced(&h.client_sleeping);
        match h.seq.load(Ordering::SeqCst) {
            seq if seq != self.seq => {
                disarm(&h.client_sleeping);
                Ok(seq)
            }
            _ => Err(Errno::AGAIN),
        }
    }

    /// Waits for the reply to request `self.seq` and copies it out.
    #[inline]
    fn take_reply(&mut self, reply: &mut [u8], deadline: Option<Timespec>) -> Result<usize> {
        let h = self.slot.header();
        let moved = match spin_briefly(&h.seq, self.seq, self.spin_ns) {
            Some(seq) => seq,
            None => self.wait_reply(deadline)?,
        };
        self.take_moved(moved, reply)
    }

    /// Takes the reply once the sequence number moved to `moved`: checks
    /// it and the length, and copies it out if it fits.
    #[inline]
    fn take_moved(&mut self, moved: u32, reply: &mut [u8]) -> Result<usize> {
        let want = self.seq.wrapping_add(1);
        if moved != want {
            return Err(self.fail(Errno::PROTO));
        }
        self.seq = want;
        // The length is read once, checked, and is the one copied: a peer
        // that changes it meanwhile changes nothing here.
        let Ok(len) = self.slot.checked_len() else {
            return Err(self.fail(Errno::PROTO));
        };
        self.last_reply = len;
        if len > reply.len() {
            self.state = ClientState::Kept(len);
            return Err(Errno::MSGSIZE);
        }
        self.slot.copy_out(len, reply);
        self.state = ClientState::Idle;
        Ok(len)
    }

    /// The reply is not in after the first looks: spins on, then sleeps.
    #[inline(never)]
    fn wait_reply(&mut self, deadline: Option<Timespec>) -> Result<u32> {
        let h = self.slot.header();
        let spin = spin_budget(self.spin_ns, self.sent.saturating_add(self.last_reply));
        match wait_slow(
            &h.seq,
            self.seq,
            &h.client_sleeping,
            &self.life,
            spin,
            deadline,
        ) {
            Ok(Waited::Moved(seq)) => Ok(seq),
            Ok(Waited::PeerGone) => Err(self.fail(Errno::PIPE)),
            Err(Errno::TIMEDOUT) => Err(Errno::TIMEDOUT),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Copies the reply kept in the slot, if it fits.
    fn copy_reply(&mut self, reply: &mut [u8]) -> Result<usize> {
        // The length is read again: the slot is shared, and checked each time.
        let len = match self.slot.checked_len() {
            Ok(len) => len,
            Err(e) => return Err(self.fail(e)),
        };
        if len > reply.len() {
            return Err(Errno::MSGSIZE);
        }
        self.slot.copy_out(len, reply);
        self.state = ClientState::Idle;
        Ok(len)
    }

    #[cold]
    fn fail(&mut self, e: Errno) -> Errno {
        self.broken = Some(e);
        e
    }
}

impl Server {
    fn new(slot: Slot, life: OwnedFd) -> Self {
        Self {
            slot,
            life,
            seq: 0,
            taken: None,
            spin_ns: DEFAULT_SPIN_NS,
            last_request: 0,
            last_reply: 0,
            broken: false,
            client_gone: false,
        }
    }

    /// Sets how long the server spins for a request before it sleeps (and,
    /// on top, the time the client takes to copy the last reply and a
    /// request as long as the last one); 0 makes it sleep at once
    /// (blocking-only mode).
    pub fn set_spin(&mut self, ns: u32) {
        self.spin_ns = ns;
    }

    /// The largest request or reply.
    pub fn max_message(&self) -> usize {
        self.slot.max
    }

    /// Waits for a request and copies it into `buf`; returns its length,
    /// or 0 once the client is gone (as a pipe's read returns end of file).
    /// The request is then answered with [`Server::reply`].
    ///
    /// Errors: `EMSGSIZE` if the request is longer than `buf` (it stays
    /// there for a larger buffer); `EINVAL` if the last request taken is not
    /// answered yet; `EPROTO` if the slot is corrupt.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_until(buf, None)
    }

    /// As [`Server::recv`], but gives up with `ETIMEDOUT` after `timeout`
    /// (at once, if it is zero).
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        self.recv_until(buf, Some(deadline_after(timeout)))
    }

    /// As [`Server::recv`], but fails with `EAGAIN` instead of waiting (0
    /// still when the client is gone); that `EAGAIN` arms the server's fd
    /// ([`AsFd`]), which turns readable when a request comes or the client
    /// goes (see [Waiting on many calls](self#waiting-on-many-calls)).
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.broken || self.taken.is_some() {
            return Err(self.refusal());
        }
        let moved = match self.slot.header().seq.load(Ordering::Acquire) {
            seq if seq != self.seq => seq,
            _ => match self.request_not_in()? {
                Some(seq) => seq,
                None => return Ok(0),
            },
        };
        self.take_moved(moved, buf)
    }

    /// No request yet, and the caller does not wait: `None` if the client
    /// is gone (after a last look: a request made just before it died shows
    /// now); else arms the fd and looks once more; `EAGAIN`.
    #[cold]
    fn request_not_in(&mut self) -> Result<Option<u32>> {
        let h = self.slot.header();
        if self.client_gone || peer_gone(&self.life)? {
            self.client_gone = true;
            return Ok(match h.seq.load(Ordering::Acquire) {
                seq if seq == self.seq => None,
                seq => Some(seq),
            });
        }
        arm_fenced(&h.server_sleeping);
        match h.seq.load(Ordering::SeqCst) {
            seq if seq != self.seq => {
                disarm(&h.server_sleeping);
                Ok(Some(seq))
            }
            _ => Err(Errno::AGAIN),
        }
    }

    #[inline]
    fn recv_until(&mut self, buf: &mut [u8], deadline: Option<Timespec>) -> Result<usize> {
        if self.broken || self.taken.is_some() {
            return Err(self.refusal());
        }
        let h = self.slot.header();
        let moved = match spin_briefly(&h.seq, self.seq, self.spin_ns) {
            Some(seq) => seq,
            None => match self.wait_request(deadline)? {
                Some(seq) => seq,
                None => return Ok(0),
            },
        };
        self.take_moved(moved, buf)
    }

    /// Takes the request once the sequence number moved to `moved`: checks
    /// it and the length, and copies it out if it fits.
    #[inline]
    fn take_moved(&mut self, moved: u32, buf: &mut [u8]) -> Result<usize> {
        let want = self.seq.wrapping_add(1);
        if moved != want {
            return Err(self.fail());
        }
        let len = match self.slot.checked_len() {
            Ok(len) if len > 0 => len,
            _ => return Err(self.fail()),
        };
        if len > buf.len() {
            return Err(Errno::MSGSIZE);
        }
        self.slot.copy_out(len, buf);
        self.taken = Some(len);
        self.last_request = len;
        Ok(len)
    }

    /// Why a receive or a reply is refused: the slot was found corrupt, or
    /// it is not its turn.
    #[cold]
    fn refusal(&self) -> Errno {
        match self.broken {
            true => Errno::PROTO,
            false => Errno::INVAL,
        }
    }

    /// The slot is found corrupt: this and every later call fail.
    #[cold]
    fn fail(&mut self) -> Errno {
        self.broken = true;
        Errno::PROTO
    }

    /// No request after the first looks: spins on, then sleeps. `None`:
    /// the client is gone and published nothing new.
    #[inline(never)]
    fn wait_request(&mut self, deadline: Option<Timespec>) -> Result<Option<u32>> {
        let h = self.slot.header();
        if self.client_gone {
            // Only what the client published before it died.
            return Ok(match h.seq.load(Ordering::Acquire) {
                seq if seq == self.seq => None,
                seq => Some(seq),
            });
        }
        let spin = spin_budget(
            self.spin_ns,
            self.last_reply.saturating_add(self.last_request),
        );
        match wait_slow(
            &h.seq,
            self.seq,
            &h.server_sleeping,
            &self.life,
            spin,
            deadline,
        )? {
            Waited::Moved(seq) => Ok(Some(seq)),
            Waited::PeerGone => {
                self.client_gone = true;
                Ok(None)
            }
        }
    }

    /// Answers the request last taken with `reply` (which may be empty),
    /// without waiting. A reply to a client that died meanwhile is lost with
    /// it; the next [`Server::recv`] returns 0.
    ///
    /// Errors: `EINVAL` if no request is waiting for its answer; `EMSGSIZE`
    /// for a reply above [`Server::max_message`] (the request still waits);
    /// `EPROTO` if the slot was found corrupt.
    #[inline]
    pub fn reply(&mut self, reply: &[u8]) -> Result<()> {
        if self.broken || self.taken.is_none() || reply.len() > self.slot.max {
            return Err(match self.taken {
                Some(_) if !self.broken => Errno::MSGSIZE,
                _ => self.refusal(),
            });
        }
        self.seq = self.seq.wrapping_add(2);
        let h = self.slot.header();
        self.slot
            .publish(reply, self.seq, &h.client_sleeping, &self.life);
        self.taken = None;
        self.last_reply = reply.len();
        Ok(())
    }
}

impl AsFd for Client {
    /// The client's readiness fd, for `poll`, `epoll` or `select`: readable
    /// (`POLLIN`) when the reply is in or the server is gone. It belongs to
    /// the handle (closed with it): do not close, read or write it. A
    /// [`Client::try_reply`] that fails with `EAGAIN` arms it and drains
    /// what it holds; try until `EAGAIN`, then wait again. A wake-up may be
    /// stale. See [Waiting on many calls](self#waiting-on-many-calls).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.life.as_fd()
    }
}

impl AsFd for Server {
    /// The server's readiness fd, for `poll`, `epoll` or `select`: readable
    /// (`POLLIN`) when a request is waiting or the client is gone. It belongs
    /// to the handle (closed with it): do not close, read or write it. A new
    /// server's fd starts armed; a [`Server::try_recv`] that fails with
    /// `EAGAIN` arms it again and drains what it holds; try until `EAGAIN`,
    /// then wait again. A wake-up may be stale. See
    /// [Waiting on many calls](self#waiting-on-many-calls).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.life.as_fd()
    }
}

/// The first looks of a wait, inline: the new value of `seq` if it moved
/// from `seen` (the peer answered while we were busy, or within a few
/// `pause`s), `None` to go on in [`wait_slow`]. In blocking-only mode
/// (`spin_ns` 0), one look.
#[inline(always)]
fn spin_briefly(seq: &AtomicU32, seen: u32, spin_ns: u32) -> Option<u32> {
    let looks = if spin_ns == 0 { 1 } else { FIRST_SPIN };
    for _ in 0..looks {
        match seq.load(Ordering::Acquire) {
            s if s != seen => return Some(s),
            _ => core::hint::spin_loop(),
        }
    }
    None
}

/// How long a side spins before it sleeps: its `spin_ns`, plus the time the
/// peer needs to copy `bytes` out of and into the slot at a slow copy's pace
/// ([`COPY_NS_PER_KIB`]), so that large messages do not pay two wake-ups
/// (~25 µs each on a VM) for the copying alone. 0 stays 0: blocking-only.
pub(crate) fn spin_budget(spin_ns: u32, bytes: usize) -> u64 {
    match spin_ns {
        0 => 0,
        ns => u64::from(ns).saturating_add((bytes as u64).saturating_mul(COPY_NS_PER_KIB) / 1024),
    }
}

/// A slow copy: 4 GB/s (copies between two cores run at ~25 GB/s on the
/// developers' VM).
const COPY_NS_PER_KIB: u64 = 256;

/// Looks of the inline first spin of a wait (~2 µs of `pause`).
const FIRST_SPIN: u32 = 64;

/// Waits until `seq` moves from `seen`, after [`spin_briefly`]: spins for
/// `spin_ns`, then sleeps on it with `sleeping` raised, looking at the peer
/// before the first sleep and then every [`LIVENESS_CHECK_MS`] on an
/// absolute deadline, until the caller's `deadline` (absolute,
/// `CLOCK_MONOTONIC`) if it has one.
///
/// Errors: `ETIMEDOUT` at the caller's deadline; what `poll` or the futex
/// give that is not theirs to retry.
#[inline(never)]
fn wait_slow(
    seq: &AtomicU32,
    seen: u32,
    sleeping: &AtomicU32,
    life: &OwnedFd,
    spin_ns: u64,
    deadline: Option<Timespec>,
) -> Result<Waited> {
    let start = now();
    let spin_end = add_ns(start, spin_ns);
    let spin_end = match deadline {
        Some(d) if before(d, spin_end) => d,
        _ => spin_end,
    };
    'spin: while before(now(), spin_end) {
        for _ in 0..64 {
            match seq.load(Ordering::Acquire) {
                s if s != seen => return Ok(Waited::Moved(s)),
                _ => core::hint::spin_loop(),
            }
            if spin_ns == 0 {
                break 'spin;
            }
        }
    }
    // Look at the peer before the first sleep (one that died already is
    // found at once), then at each liveness deadline.
    let mut next_look = start;
    let mut fenced = None;
    let result = loop {
        // A full barrier, paired with the publisher's between writing `seq`
        // and reading our flag: either it sees the flag, or we see `seq`.
        sleeping.swap(SLEEPING, Ordering::SeqCst);
        // And one on every CPU that runs a registered publisher, which then
        // needs none of its own (see `Slot::publish`); once per wait, as the
        // flag stays up until it ends.
        let fenced =
            *fenced.get_or_insert_with(|| membarrier(MembarrierCommand::GlobalExpedited).is_ok());
        let s = seq.load(Ordering::SeqCst);
        if s != seen {
            break Ok(Waited::Moved(s));
        }
        let t = now();
        // At the deadline too: a peer that is gone is reported as gone.
        let expired = deadline.is_some_and(|d| !before(t, d));
        if expired || !before(t, next_look) {
            match peer_gone(life) {
                // What the peer published before it died is visible now.
                Ok(true) => match seq.load(Ordering::Acquire) {
                    s if s != seen => break Ok(Waited::Moved(s)),
                    _ => break Ok(Waited::PeerGone),
                },
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            next_look = add_ns(t, u64::from(LIVENESS_CHECK_MS) * 1_000_000);
        }
        let until = match deadline {
            Some(d) if !before(t, d) => break Err(Errno::TIMEDOUT),
            Some(d) if before(d, next_look) => d,
            _ => next_look,
        };
        // Without that barrier a registered publisher's wake-up may be
        // missed: sleep in short steps then.
        let until = match fenced {
            false => until.min(add_ns(t, UNFENCED_SLEEP_NS)),
            true => until,
        };
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: a
        // signal (EINTR) or a spurious wake-up does not move the deadline.
        match futex::wait_bitset(seq, futex::Flags::empty(), seen, Some(&until), ALL_BITS) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::TIMEDOUT) => {}
            Err(e) => break Err(e),
        }
    };
    sleeping.store(0, Ordering::Relaxed);
    result
}

/// The longest sleep when `membarrier` failed (a filter refused it).
const UNFENCED_SLEEP_NS: u64 = 1_000_000;

/// The bitset that matches every `FUTEX_WAKE`.
const ALL_BITS: core::num::NonZeroU32 = core::num::NonZeroU32::MAX;

/// `clock_gettime(CLOCK_MONOTONIC)` as a `Timespec`: the clock every
/// rawipc wait uses ([`crate::sys::monotonic_ns`]: libc's where there is a
/// libc, so that it works under valgrind).
fn now() -> Timespec {
    let ns = crate::sys::monotonic_ns();
    Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

fn add_ns(t: Timespec, ns: u64) -> Timespec {
    let total = t.tv_nsec as u64 + ns % 1_000_000_000;
    Timespec {
        tv_sec: t
            .tv_sec
            .saturating_add((ns / 1_000_000_000 + total / 1_000_000_000) as i64),
        tv_nsec: (total % 1_000_000_000) as i64,
    }
}

fn before(a: Timespec, b: Timespec) -> bool {
    a < b
}

fn deadline_after(timeout: Duration) -> Timespec {
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    add_ns(now(), ns)
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

impl core::fmt::Debug for Call {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_MESSAGE, spin_budget};

    #[test]
    fn spin_budget_adds_the_copying_and_keeps_blocking_only_mode() {
        assert_eq!(spin_budget(0, MAX_MESSAGE), 0, "blocking-only stays so");
        assert_eq!(spin_budget(50_000, 0), 50_000);
        assert_eq!(spin_budget(50_000, 8), 50_002);
        // A 1 MiB request and a 1 MiB reply: 0.5 ms of copying at 4 GB/s.
        assert_eq!(spin_budget(50_000, 2 * MAX_MESSAGE), 50_000 + 524_288);
        assert_eq!(
            spin_budget(u32::MAX, usize::MAX),
            u64::from(u32::MAX) + u64::MAX / 1024
        );
    }
}
