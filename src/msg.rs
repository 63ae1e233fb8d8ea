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

use rustix::net::{
    AddressFamily, RecvFlags, ReturnFlags, SendFlags, SocketFlags, SocketType, recv as raw_recv,
    send as raw_send, socketpair as raw_socketpair,
};

use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, retry, sys};

mod fds;
pub(crate) use fds::recv_fds_if;
pub use fds::{MAX_FDS, next_sizes, recv_fds, send_fds};

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
    if msg.is_empty() {
        return Err(Errno::INVAL);
    }
    let fd = fd.as_fd();
    retry_reset(|| raw_send(fd, msg, SendFlags::NOSIGNAL))
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
    let fd = fd.as_fd();
    check_kind(fd)?;
    loop {
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
    let fd = fd.as_fd();
    let size = next_size(fd)?;
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
}

crate::pipe::fd_conversions!(
    MsgSocket: "Adopts an fd as a message socket (it should be a `SOCK_SEQPACKET` one).",
);
