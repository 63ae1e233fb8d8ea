//! Message passing: a pair of connected sockets that keep message boundaries
//! (`AF_UNIX`, `SOCK_SEQPACKET`).
//!
//! Each [`send`] is one whole message and each [`recv`] takes one whole
//! message, never part of one and never two glued together. A message larger
//! than the receive buffer is not cut: the receive fails with `EMSGSIZE` and
//! leaves it queued, and [`next_size`] tells how large a buffer it needs.
//! Nor are fds passed with a message lost: [`recv`] leaves such a message
//! queued (`EMSGSIZE`) for [`recv_fds`].
//! Empty messages are refused, so a receive that returns 0 always means that
//! the peer is gone, like a pipe's end of file.
//!
//! As everywhere in rawipc's Rust API, the sockets are close-on-exec and
//! `EINTR` is retried. In C, `rawipc_msg_socketpair` makes sockets that `exec`
//! inherits, as `socketpair(2)` does (`rawipc_msg_socketpair2` takes
//! `SOCK_CLOEXEC`), while sending and receiving keep these conventions.
//!
//! Messages of any size up to [`MAX_SIZE`] (1 GiB): one larger than the
//! socket takes (its send buffer, ~208 KiB by default) travels in a sealed
//! memfd passed with it, which the receiver checks and reads into the
//! caller's buffer: the same whole message, the same calls (see [`send`]).
//!
//! The receiving calls take any fd, and refuse one that is not a
//! `SOCK_SEQPACKET` socket with `EPROTOTYPE` (`ENOTSOCK` for one that is no
//! socket): a stream socket keeps no boundaries, and a datagram one never
//! tells that its peer is gone, so a receive on either could only cut
//! messages or wait forever. A stream socket is refused at once; a datagram
//! socket (which keeps boundaries) before any wait: a message already queued
//! on one is received.

use core::time::Duration;

use rustix::event::PollFlags;
use rustix::net::{
    AddressFamily, RecvFlags, ReturnFlags, SendFlags, SocketFlags, SocketType, recv as raw_recv,
    send as raw_send, socketpair as raw_socketpair,
};

use crate::deadline::{self, wait_ready};
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, retry, sys};

mod fds;
mod large;
pub(crate) use fds::recv_fds_if;
pub use fds::{
    MAX_FDS, next_sizes, next_sizes_timeout, recv_fds, recv_fds_timeout, send_fds, send_fds_timeout,
};
pub use large::MAX_SIZE;

/// One end of a message socket pair; closed on drop.
#[derive(Debug)]
pub struct MsgSocket(OwnedFd);

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)`: makes two
/// connected message sockets. What one sends, the other receives.
///
/// Errors: `EMFILE`/`ENFILE` when out of file descriptors.
///
/// # References
/// - [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html)
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)
pub fn socketpair() -> Result<(MsgSocket, MsgSocket)> {
    let (a, b) = raw_socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((MsgSocket(a), MsgSocket(b)))
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
/// fds)`: as [`socketpair`], both sockets non-blocking: a send with no room
/// and a receive with nothing queued fail with `EAGAIN` instead of waiting
/// (see [`MsgSocket::set_nonblocking`]).
///
/// Errors: as [`socketpair`].
#[doc(alias = "SOCK_NONBLOCK")]
pub fn socketpair_nonblocking() -> Result<(MsgSocket, MsgSocket)> {
    let (a, b) = raw_socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    Ok((MsgSocket(a), MsgSocket(b)))
}

/// `send(fd, msg, len, MSG_NOSIGNAL)`, retried on `EINTR`: sends `msg` as one
/// message and returns its length.
///
/// A message larger than the socket takes (`EMSGSIZE` from `send`: above
/// its send buffer, less 32 bytes) is written into a memfd, sealed against
/// any change (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW`; `F_SEAL_WRITE`
/// becomes `F_SEAL_FUTURE_WRITE` when the kernel refuses it with `EBUSY`,
/// as it may while it holds pages just written) and sent as a
/// 24-byte header with that fd (`SCM_RIGHTS`); [`recv`] checks it and
/// delivers the message itself. A receiver that is not rawipc sees the
/// header and the fd.
///
/// Errors: `EINVAL` for an empty message; `EMSGSIZE` for one larger than
/// [`MAX_SIZE`] (nothing is sent); `ENOMEM` if a large message's memfd
/// cannot get the memory, `EMFILE`/`ENFILE` if it cannot get an fd,
/// `ETOOMANYREFS` if this user has too many fds in flight; `EPIPE` (never
/// `SIGPIPE`) when the peer is gone; `ENOTSOCK` for an fd that is no
/// socket. (A send cannot wait forever on a socket of another kind, and is
/// not refused: it is the receiver that needs the boundaries.)
///
/// # References
/// - [send(2)](https://man7.org/linux/man-pages/man2/send.2.html)
/// - [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)
pub fn send(fd: impl AsFd, msg: &[u8]) -> Result<usize> {
    send_until(fd.as_fd(), msg, None)
}

/// As [`send`], but waits for room at most `timeout`, then fails with
/// `ETIMEDOUT` having sent nothing (a zero `timeout` does not wait). A peer
/// that is gone gives `EPIPE` at once.
pub fn send_timeout(fd: impl AsFd, msg: &[u8], timeout: Duration) -> Result<usize> {
    send_until(fd.as_fd(), msg, deadline::after(timeout))
}

fn send_until(fd: BorrowedFd<'_>, msg: &[u8], deadline: Option<u64>) -> Result<usize> {
    if msg.is_empty() {
        return Err(Errno::INVAL);
    }
    let sent = by_deadline(fd, PollFlags::OUT, deadline, |nowait| {
        raw_send(fd, msg, SendFlags::NOSIGNAL | send_nowait(nowait))
    });
    match sent {
        // Too large for the socket: in a sealed memfd, by the same deadline.
        Err(Errno::MSGSIZE) => large::send(fd, msg, deadline),
        sent => sent,
    }
}

/// `recvmsg(fd, {NULL, 0}, MSG_PEEK | MSG_TRUNC)`: waits for the next
/// message and returns its size without taking it; 0 when the peer is gone.
/// For a large message (one that came in a memfd) it is the message's own
/// size, the buffer [`recv`] needs.
///
/// An empty message (which rawipc never sends, but another program might) is
/// taken and skipped, so that 0 keeps meaning "peer gone".
///
/// Errors: `EMSGSIZE` if the message carries fds ([`send_fds`]): a receive
/// with no room for them would lose them, so it stays queued for
/// [`recv_fds`] ([`next_sizes`] tells its size and how many fds);
/// `EBADMSG` for a large message's header whose fd fails the checks (not a
/// memfd, not sealed against writing, shrinking and growing, not of the
/// announced size): it is taken off the queue, and the next call sees the
/// next message; `EMFILE` if this process has no fd free to look at a large
/// message's memfd (it stays queued); `EPROTOTYPE` for a socket that is not
/// `SOCK_SEQPACKET`, `ENOTSOCK` for an fd that is no socket; `EAGAIN` on a
/// non-blocking socket with nothing queued.
#[doc(alias = "MSG_PEEK")]
pub fn next_size(fd: impl AsFd) -> Result<usize> {
    next_size_until(fd.as_fd(), None)
}

/// As [`next_size`], but waits at most `timeout` for a message, then fails
/// with `ETIMEDOUT`.
pub fn next_size_timeout(fd: impl AsFd, timeout: Duration) -> Result<usize> {
    next_size_until(fd.as_fd(), deadline::after(timeout))
}

fn next_size_until(fd: BorrowedFd<'_>, deadline: Option<u64>) -> Result<usize> {
    Ok(match head(fd, deadline)? {
        Head::Gone => 0,
        Head::Plain(size) => size,
        Head::Large(large) => large.len(),
    })
}

/// What is at the head of a message socket's queue.
enum Head {
    /// Nothing more can come.
    Gone,
    /// A message of this size, with no fds.
    Plain(usize),
    /// A large message, its memfd checked.
    Large(large::Large),
}

/// Waits for the next message (until `deadline`, if there is one) and looks
/// at it (see [`next_size`]).
fn head(fd: BorrowedFd<'_>, deadline: Option<u64>) -> Result<Head> {
    let mut kind = Kind::default();
    if deadline.is_some() {
        // A wait on a socket of another kind could only time out: say why.
        kind.check(fd)?;
    }
    let mut settled = false;
    loop {
        wait_ready(fd, PollFlags::IN, deadline)?;
        let (size, returned) = kind.peek(fd, |wait| {
            sys::recvmsg(
                fd,
                &mut [],
                &mut [],
                wait | RecvFlags::PEEK | RecvFlags::TRUNC,
            )
        })?;
        if returned.contains(ReturnFlags::CTRUNC) && fds::carries_fds(fd)? {
            return match large::look(fd)? {
                Some(large) => Ok(Head::Large(large)),
                None => Err(Errno::MSGSIZE),
            };
        }
        if size > 0 {
            return Ok(Head::Plain(size));
        }
        if let Nothing::Gone = found_nothing(fd, &mut settled)? {
            return Ok(Head::Gone);
        }
    }
}

/// What a peek that found neither bytes nor fds means.
enum Nothing {
    /// End of file: every message the peer sent has been received.
    Gone,
    /// Look again: an empty message was skipped, or the peek may have
    /// ended too early.
    LookAgain,
}

/// After a peek that found neither bytes nor fds: an empty message at the
/// head of the queue (which rawipc never sends, but another program might),
/// or end of file. Or an end of file that came too early: a receive looks
/// at the queue and, finding it empty, then at whether the peer is gone,
/// and a peer that sends its last message and closes in between leaves
/// that message queued behind an end of file (the kernel takes no lock
/// across the two looks). So end of file is believed only from a peek made
/// once the peer was already seen gone (`settled`): by then everything it
/// sent is queued, and the peek sees the queue as it stays.
///
/// An empty message is taken and skipped, so that 0 keeps meaning "peer
/// gone": it is at the head when the peer is still there (a live peer
/// gives no end of file), or when a settled peek found nothing while bytes
/// are still queued (`FIONREAD` on a `SOCK_SEQPACKET` socket counts the
/// bytes of every queued message, so a gone peer's real messages behind an
/// empty one are not lost).
fn found_nothing(fd: BorrowedFd<'_>, settled: &mut bool) -> Result<Nothing> {
    if !*settled {
        if peer_gone(fd)? {
            *settled = true;
            return Ok(Nothing::LookAgain);
        }
    } else if rustix::io::ioctl_fionread(fd)? == 0 {
        return Ok(Nothing::Gone);
    }
    retry_reset(|| raw_recv(fd, &mut [0u8; 0], RecvFlags::DONTWAIT))?;
    Ok(Nothing::LookAgain)
}

/// What a receive knows of its socket's kind, so that it asks
/// (`getsockopt(SO_TYPE)`, [`check_kind`]) only where the answer matters:
/// before it waits, and when a peek's answer could come from a stream.
///
/// A peek with `MSG_TRUNC` and no room for data tells a message's length
/// with `MSG_TRUNC` among the returned flags on a socket that keeps
/// boundaries (`SOCK_SEQPACKET`, `SOCK_DGRAM`), and returns 0 without it on
/// a stream. So a peek that finds a message waiting needs no question; one
/// that would wait (`EAGAIN` from a first, non-waiting peek: a datagram
/// socket would wait forever for a peer that is gone) or that returns no
/// `MSG_TRUNC` (a stream, an empty message, end of file) asks first.
#[derive(Default)]
struct Kind {
    known: bool,
}

impl Kind {
    /// Runs the peek `op` (given the flags to add: `MSG_DONTWAIT` until the
    /// kind is known), checking the kind where it matters.
    fn peek<T>(
        &mut self,
        fd: BorrowedFd<'_>,
        mut op: impl FnMut(RecvFlags) -> Result<(T, ReturnFlags)>,
    ) -> Result<(T, ReturnFlags)> {
        loop {
            let wait = match self.known {
                true => RecvFlags::empty(),
                false => RecvFlags::DONTWAIT,
            };
            match retry_reset(|| op(wait)) {
                Err(Errno::AGAIN) if !self.known => self.check(fd)?,
                Ok((got, returned)) => {
                    if !returned.contains(ReturnFlags::TRUNC) {
                        self.check(fd)?;
                    }
                    return Ok((got, returned));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn check(&mut self, fd: BorrowedFd<'_>) -> Result<()> {
        if !self.known {
            check_kind(fd)?;
            self.known = true;
        }
        Ok(())
    }
}

/// `getsockopt(SO_TYPE)`: `EPROTOTYPE` unless `fd` is a `SOCK_SEQPACKET`
/// socket, the only kind whose messages keep their boundaries and whose
/// peer's end is seen as end of file.
fn check_kind(fd: BorrowedFd<'_>) -> Result<()> {
    match crate::sys::socket_type(fd)? {
        5 => Ok(()), // SOCK_SEQPACKET
        _ => Err(Errno::PROTOTYPE),
    }
}

/// [`retry`], and one more try on `ECONNRESET`: a unix socket whose peer
/// closed with messages unread reports that error once (the next call no
/// longer sees it), ahead of any message still queued. The peer being gone is
/// told by end of file and `EPIPE`; the reset must not hide the queued messages.
fn retry_reset<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    match retry(&mut op) {
        Err(Errno::CONNRESET) => retry(op),
        other => other,
    }
}

/// [`retry_reset`] of `op(false)`; or, with a `deadline`, of `op(true)` (a
/// `MSG_DONTWAIT` try), again each time [`wait_ready`] finds `events` on
/// `fd`, for as long as it says `EAGAIN`. A socket can poll writable and
/// still lack room for a large message: it naps between such tries.
fn by_deadline<T>(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<u64>,
    mut op: impl FnMut(bool) -> Result<T>,
) -> Result<T> {
    if deadline.is_none() {
        return retry_reset(|| op(false));
    }
    let mut polled = false;
    loop {
        match retry_reset(|| op(true)) {
            Err(Errno::AGAIN) => {}
            other => return other,
        }
        if polled {
            deadline::nap(deadline)?;
        }
        wait_ready(fd, events, deadline)?;
        polled = true;
    }
}

/// `MSG_DONTWAIT` if `nowait`.
fn send_nowait(nowait: bool) -> SendFlags {
    match nowait {
        true => SendFlags::DONTWAIT,
        false => SendFlags::empty(),
    }
}

/// Whether nothing more can come: the peer closed its end (and, for a
/// message socket, no queued message is left before that end of file).
fn peer_gone(fd: BorrowedFd<'_>) -> Result<bool> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN | PollFlags::RDHUP)];
    retry(|| {
        poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        )
    })?;
    Ok(fds[0]
        .revents()
        .intersects(PollFlags::HUP | PollFlags::RDHUP))
}

/// Receives one whole message into `buf` and returns its length; 0 when the
/// peer is gone (every message it sent has been received).
///
/// A large message (see [`send`]) is read from its memfd into `buf`, then
/// taken off the queue; the memfd is closed.
///
/// Errors: `EMSGSIZE` if the next message is larger than `buf` (also a large
/// one), or carries fds (receive it with [`recv_fds`]); it stays queued
/// (see [`next_size`]); `EBADMSG`, `EMFILE`, `EPROTOTYPE`, `ENOTSOCK` as
/// [`next_size`]. Waits for a message unless the
/// socket is non-blocking (`EAGAIN`). One receiver per socket end: two
/// processes receiving on the same end at once could take each other's
/// message between the size check and the receive.
///
/// # References
/// - [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html)
pub fn recv(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    recv_until(fd.as_fd(), buf, None)
}

/// As [`recv`], but waits at most `timeout` for a message, then fails with
/// `ETIMEDOUT`, taking nothing (a zero `timeout` does not wait). A peer
/// that is gone gives 0 at once (once its messages are all received),
/// never `ETIMEDOUT`. Works the same on a non-blocking socket.
pub fn recv_timeout(fd: impl AsFd, buf: &mut [u8], timeout: Duration) -> Result<usize> {
    recv_until(fd.as_fd(), buf, deadline::after(timeout))
}

/// As [`recv`], but never waits: `EAGAIN` when no message is queued yet,
/// 0 when the peer is gone, blocking socket or not.
pub fn try_recv(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    match recv_until(fd.as_fd(), buf, Some(0)) {
        Err(Errno::TIMEDOUT) => Err(Errno::AGAIN),
        other => other,
    }
}

/// As [`send`], but never waits: `EAGAIN` when the socket has no room for
/// the message now (nothing is sent), blocking socket or not.
pub fn try_send(fd: impl AsFd, msg: &[u8]) -> Result<usize> {
    match send_until(fd.as_fd(), msg, Some(0)) {
        Err(Errno::TIMEDOUT) => Err(Errno::AGAIN),
        other => other,
    }
}

fn recv_until(fd: BorrowedFd<'_>, buf: &mut [u8], deadline: Option<u64>) -> Result<usize> {
    let size = match head(fd, deadline)? {
        Head::Gone => return Ok(0),
        Head::Plain(size) => size,
        Head::Large(large) => return large::take(fd, large, buf),
    };
    if size > buf.len() {
        return Err(Errno::MSGSIZE);
    }
    let (got, real) = retry_reset(|| raw_recv(fd, &mut *buf, RecvFlags::TRUNC))?;
    if real > got {
        // Another receiver swapped the message under us: it was cut.
        return Err(Errno::MSGSIZE);
    }
    Ok(got)
}

impl MsgSocket {
    /// Sends `msg` as one message. See [`send`].
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        send(self, msg)
    }

    /// Receives one whole message. See [`recv`].
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv(self, buf)
    }

    /// The size of the next message, waiting for one. See [`next_size`].
    pub fn next_size(&self) -> Result<usize> {
        next_size(self)
    }

    /// Sends `msg`, waiting for room at most `timeout`. See [`send_timeout`].
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<usize> {
        send_timeout(self, msg, timeout)
    }

    /// Receives one whole message, waiting at most `timeout`. See
    /// [`recv_timeout`].
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        recv_timeout(self, buf, timeout)
    }

    /// The size of the next message, waiting at most `timeout`. See
    /// [`next_size_timeout`].
    pub fn next_size_timeout(&self, timeout: Duration) -> Result<usize> {
        next_size_timeout(self, timeout)
    }

    /// Receives one whole message if one is queued: `EAGAIN` if none is
    /// yet, 0 if the peer is gone. See [`try_recv`].
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<usize> {
        try_recv(self, buf)
    }

    /// Sends `msg` if there is room now, else `EAGAIN`. See [`try_send`].
    pub fn try_send(&self, msg: &[u8]) -> Result<usize> {
        try_send(self, msg)
    }
}

crate::pipe::fd_conversions!(
    MsgSocket: "Adopts an fd as a message socket (it should be a `SOCK_SEQPACKET` one).",
);
