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
//! The receiving calls take any fd, and refuse one that is not a
//! `SOCK_SEQPACKET` socket with `EPROTOTYPE` (`ENOTSOCK` for one that is no
//! socket): a stream socket keeps no boundaries, and a datagram one never
//! tells that its peer is gone, so a receive on either could only cut
//! messages or wait forever.

use core::time::Duration;

use rustix::event::PollFlags;
use rustix::net::{
    AddressFamily, RecvFlags, ReturnFlags, SendFlags, SocketFlags, SocketType, recv as raw_recv,
    send as raw_send, socketpair as raw_socketpair,
};

use crate::deadline::{self, wait_ready};
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, retry, sys};

mod fds;
pub(crate) use fds::recv_fds_if;
pub use fds::{
    MAX_FDS, next_sizes, next_sizes_timeout, recv_fds, recv_fds_timeout, send_fds, send_fds_timeout,
};

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
/// Errors: `EINVAL` for an empty message; `EMSGSIZE` for one larger than the
/// socket's send buffer; `EPIPE` (never `SIGPIPE`) when the peer is gone;
/// `ENOTSOCK` for an fd that is no socket. (A send cannot wait forever on a
/// socket of another kind, and is not refused: it is the receiver that
/// needs the boundaries.)
///
/// # References
/// - [send(2)](https://man7.org/linux/man-pages/man2/send.2.html)
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
    by_deadline(fd, PollFlags::OUT, deadline, |nowait| {
        raw_send(fd, msg, SendFlags::NOSIGNAL | send_nowait(nowait))
    })
}

/// `recvmsg(fd, {NULL, 0}, MSG_PEEK | MSG_TRUNC)`: waits for the next
/// message and returns its size without taking it; 0 when the peer is gone.
///
/// An empty message (which rawipc never sends, but another program might) is
/// taken and skipped, so that 0 keeps meaning "peer gone".
///
/// Errors: `EMSGSIZE` if the message carries fds ([`send_fds`]): a receive
/// with no room for them would lose them, so it stays queued for
/// [`recv_fds`] ([`next_sizes`] tells its size and how many fds);
/// `EPROTOTYPE` for a socket that is not `SOCK_SEQPACKET`, `ENOTSOCK` for an
/// fd that is no socket; `EAGAIN` on a non-blocking socket with nothing
/// queued.
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
    check_kind(fd)?;
    loop {
        wait_ready(fd, PollFlags::IN, deadline)?;
        let size = peek_size(fd)?;
        if size > 0 {
            return Ok(size);
        }
        // End of file, or an empty message at the head of the queue. FIONREAD
        // on a SOCK_SEQPACKET socket counts the bytes of every queued message,
        // so a gone peer's real messages behind an empty one are not lost.
        if peer_gone(fd)? && rustix::io::ioctl_fionread(fd)? == 0 {
            return Ok(0);
        }
        // An empty message sent by another program: take it, wait for the next.
        retry_reset(|| raw_recv(fd, &mut [0u8; 0], RecvFlags::DONTWAIT))?;
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

/// The next message's size, looked at with no room for control data:
/// `MSG_CTRUNC` then tells that some came, and being a peek, nothing is
/// installed or closed. `EMSGSIZE` if that was fds.
fn peek_size(fd: BorrowedFd<'_>) -> Result<usize> {
    let flags = RecvFlags::PEEK | RecvFlags::TRUNC;
    let (size, returned) = retry_reset(|| sys::recvmsg(fd, &mut [], &mut [], flags))?;
    if returned.contains(ReturnFlags::CTRUNC) && fds::carries_fds(fd)? {
        return Err(Errno::MSGSIZE);
    }
    Ok(size)
}

/// Receives one whole message into `buf` and returns its length; 0 when the
/// peer is gone (every message it sent has been received).
///
/// Errors: `EMSGSIZE` if the next message is larger than `buf`, or carries
/// fds (receive it with [`recv_fds`]); it stays queued (see [`next_size`]);
/// `EPROTOTYPE`, `ENOTSOCK` as [`next_size`]. Waits for a message unless the
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
    let size = next_size_until(fd, deadline)?;
    if size > buf.len() {
        return Err(Errno::MSGSIZE);
    }
    if size == 0 {
        return Ok(0);
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
