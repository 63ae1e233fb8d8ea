//! Handing a channel end to a process that did not fork from this one, over
//! a connected message socket (from [`crate::endpoint`], or any
//! `SOCK_SEQPACKET` unix socket).
//!
//! One process makes the channel and gives one of its ends away
//! ([`give_receiver`] keeps the sender, [`give_sender`] the receiver); the
//! other takes it ([`take_receiver`], [`take_sender`]). From then on both
//! use the ends exactly as those of a channel made before `fork`: the same
//! calls, the same ring at the same speed, the same dead-peer reporting.
//!
//! ```no_run
//! use rawipc::chan::handover;
//! use rawipc::endpoint;
//!
//! # fn main() -> rawipc::Result<()> {
//! // The server:
//! let listener = endpoint::listen("clock")?;
//! let conn = listener.accept()?;
//! let mut tx = handover::give_receiver(&conn, 64 * 1024)?;
//! tx.send(b"tick")?;
//!
//! // The client, another program:
//! let conn = endpoint::connect("clock")?;
//! let mut rx = handover::take_receiver(&conn)?;
//! let mut buf = [0; 64];
//! let n = rx.recv(&mut buf)?;
//! # let _ = n;
//! # Ok(())
//! # }
//! ```
//!
//! # What is sent
//! One message: a 24-byte header (magic, version, which end, the ring's
//! size) and two fds: the ring's memory, a memfd sealed against shrinking
//! and growing ([`crate::shm::SealedRegion`]), and the end's life-line
//! socket, whose other end the giver keeps (so each side learns of the
//! other's death as with a channel made before fork).
//!
//! # Trust
//! The taker trusts nothing it receives: the memory must be a memfd that can
//! never shrink, writable, and exactly as large as a ring of the stated size,
//! itself a power of two within [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]; the
//! life-line must be a connected unix stream socket (a listening one would
//! never report the giver's death). The ring's size is kept in private memory from
//! then on, and the ring's contents are checked as for any channel.
//!
//! # A peer that dies
//! - before giving: [`take_receiver`]/[`take_sender`] fail with `EPIPE`;
//! - after giving, before taking: the message dies with its socket, which
//!   closes the life-line it carried, so the giver's end reports the peer
//!   gone (`EPIPE` on a send, 0 on a receive), as for a peer that took it
//!   and died.
//!
//! A hostile peer could keep its end of the life-line open after its death
//! by sending it, as an fd, into a socket this process holds. Sent into
//! the life-line itself, it is seen (anything to read on a life-line counts
//! as the peer gone); sent over the connection, it lives as long as the
//! connection's unread messages: close the connection once the channel is
//! handed over (the channel does not need it).

use rustix::net::{AddressFamily, SocketType, getpeername, sockopt};

use super::ring::Ring;
use super::{Channel, MAX_CAPACITY, MIN_CAPACITY, Receiver, Sender};
use crate::msg;
use crate::shm::{map_checked, sealed_memfd, sealed_size};
use crate::{AsFd, Errno, OwnedFd, Result};

const MAGIC: &[u8; 8] = b"rawipcch";
const VERSION: u32 = 1;
const HEADER: usize = 24;

/// Which end a hand-over message carries.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum End {
    Sender = 1,
    Receiver = 2,
}

/// A channel whose ring is in a sealed memfd (so that it can be passed),
/// and that memfd.
fn shareable(capacity: usize) -> Result<(Channel, OwnedFd)> {
    let cap = Channel::ring_size(capacity)?;
    let memfd = sealed_memfd(Ring::region_len(cap))?;
    let region = map_checked(memfd.as_fd(), Ring::region_len(cap))?;
    Ok((Channel::in_region(region, cap)?, memfd))
}

fn header(end: End, cap: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_ne_bytes());
    h[12..16].copy_from_slice(&(end as u32).to_ne_bytes());
    h[16..24].copy_from_slice(&(cap as u64).to_ne_bytes());
    h
}

/// Sends `end` of a new channel, its memfd and its life-line over `sock`.
fn give(sock: impl AsFd, end: End, memfd: &OwnedFd, life: &OwnedFd, cap: usize) -> Result<()> {
    let fds = [memfd.as_fd(), life.as_fd()];
    msg::send_fds(sock, &header(end, cap), &fds)?;
    Ok(())
}

/// Makes a channel of `capacity` bytes (as [`Channel::new`]), gives its
/// receiving end to the process at the other end of `sock`, and returns
/// the sending end. Nothing is left in flight on failure.
///
/// Errors: those of [`Channel::new`]; `EPIPE` if the peer is gone; those of
/// [`msg::send_fds`].
pub fn give_receiver(sock: impl AsFd, capacity: usize) -> Result<Sender> {
    let (chan, memfd) = shareable(capacity)?;
    give(sock, End::Receiver, &memfd, &chan.rx_life, chan.ring.cap())?;
    Ok(chan.into_sender())
}

/// Makes a channel of `capacity` bytes, gives its sending end to the
/// process at the other end of `sock`, and returns the receiving end.
/// Errors as [`give_receiver`].
pub fn give_sender(sock: impl AsFd, capacity: usize) -> Result<Receiver> {
    let (chan, memfd) = shareable(capacity)?;
    give(sock, End::Sender, &memfd, &chan.tx_life, chan.ring.cap())?;
    Ok(chan.into_receiver())
}

/// Takes the receiving end of a channel given over `sock` with
/// [`give_receiver`], waiting for it.
///
/// Errors: `EPIPE` if the peer is gone without giving one; `EPROTO` if the
/// next message is not a hand-over of a receiving end (it is left queued,
/// for [`msg::recv`] or [`msg::recv_fds`]), or is one whose memory or
/// life-line is not what it must be (memory of another size, or that this
/// side cannot write; a life-line that is no connected unix stream socket:
/// it is taken and its fds closed);
/// `EPERM` if its memory could still be shrunk (taken, closed); `EMSGSIZE`
/// if the next message is larger than a hand-over or carries more than two
/// fds (left queued); `EMFILE` (left queued); `ENOMEM`.
pub fn take_receiver(sock: impl AsFd) -> Result<Receiver> {
    let (ring, life) = take(sock, End::Receiver)?;
    Ok(Receiver::new(ring, life))
}

/// Takes the sending end of a channel given over `sock` with
/// [`give_sender`]. Errors as [`take_receiver`].
pub fn take_sender(sock: impl AsFd) -> Result<Sender> {
    let (ring, life) = take(sock, End::Sender)?;
    Ok(Sender::new(ring, life))
}

/// Whether `msg` with `nfds` fds is a hand-over of `end`, and its capacity.
fn parse(msg: &[u8], nfds: usize, end: End) -> Result<usize> {
    if msg.len() != HEADER || nfds != 2 || msg[..8] != MAGIC[..] {
        return Err(Errno::PROTO);
    }
    let word = |at: usize| u32::from_ne_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    if word(8) != VERSION || word(12) != end as u32 {
        return Err(Errno::PROTO);
    }
    let mut cap = [0u8; 8];
    cap.copy_from_slice(&msg[16..24]);
    match usize::try_from(u64::from_ne_bytes(cap)) {
        Ok(cap) if cap.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) => Ok(cap),
        _ => Err(Errno::PROTO),
    }
}

/// Receives a hand-over of `end` and checks everything in it.
fn take(sock: impl AsFd, end: End) -> Result<(Ring, OwnedFd)> {
    let mut buf = [0u8; HEADER];
    let mut fds = [None, None];
    // A message that is not a hand-over of this end stays queued.
    let (len, n) = msg::recv_fds_if(sock.as_fd(), &mut buf, &mut fds, |msg, nfds| {
        parse(msg, nfds, end).map(drop)
    })?;
    if len == 0 && n == 0 {
        return Err(Errno::PIPE);
    }
    let cap = parse(&buf[..len], n, end)?;
    let [Some(memfd), Some(life)] = fds else {
        return Err(Errno::PROTO);
    };
    // The memory: sealed so that it never shrinks, and exactly a ring's size
    // (checked before mapping, so a huge one is never mapped).
    let size = match sealed_size(memfd.as_fd()) {
        Err(Errno::PERM) => return Err(Errno::PERM),
        Err(_) => return Err(Errno::PROTO),
        Ok(size) => size,
    };
    if size != Ring::region_len(cap) {
        return Err(Errno::PROTO);
    }
    // The life-line: a connected unix stream socket (its peer's end is the
    // giver's). A listening one would never tell that the giver died.
    let is_life_line = matches!(sockopt::socket_type(&life), Ok(SocketType::STREAM))
        && matches!(sockopt::socket_domain(&life), Ok(AddressFamily::UNIX))
        && getpeername(&life).is_ok();
    if !is_life_line {
        return Err(Errno::PROTO);
    }
    // Memory this side cannot write (sealed against writing, or open
    // read-only) is no ring either.
    let region = map_checked(memfd.as_fd(), size).map_err(|e| match e {
        Errno::PERM | Errno::ACCESS => Errno::PROTO,
        e => e,
    })?;
    let ring = Ring::new(region, cap).map_err(|_| Errno::PROTO)?;
    Ok((ring, life))
}
