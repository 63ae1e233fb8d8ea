//! Passing file descriptors with a message (`SCM_RIGHTS`), losing none.
//!
//! [`send_fds`] sends a message and up to [`MAX_FDS`] fds with it; the
//! receiver gets new fds (close-on-exec) for the same open files: a pipe end,
//! a socket, a sealed memory region ([`crate::shm::SealedRegion`]).
//!
//! The kernel loses fds in two ways that [`recv_fds`] is built to avoid:
//! a receive whose control buffer is too small closes the fds that do not
//! fit, and a receive in a process out of fds closes those it cannot install
//! (both with `MSG_CTRUNC`, which most code never checks). So `recv_fds`
//! first *peeks* at the message with room for the kernel's own maximum of
//! fds, which installs copies of them; only if the message and all its fds
//! fit the caller's room, and all were installed, does it take the message
//! off the queue (and the kernel then drops its own references, the copies
//! being the fds the caller gets). Otherwise the copies are closed and the
//! message stays queued, whole, with `EMSGSIZE` or `EMFILE`.

use core::mem::MaybeUninit;

use rustix::io::{IoSlice, IoSliceMut};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

use super::{peer_gone, retry_reset};
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result};

/// The most fds one message carries: the kernel's own limit (`SCM_MAX_FD`),
/// so that whatever any sender can send, a receive has room to look at it.
pub const MAX_FDS: usize = 253;

/// Control-message room for [`MAX_FDS`] fds, and for credentials in case
/// the socket has `SO_PASSCRED` on (so that they never crowd fds out).
const CONTROL: usize = rustix::cmsg_space!(ScmRights(MAX_FDS), ScmCredentials(1));

/// `sendmsg(fd, {msg, SCM_RIGHTS: fds}, MSG_NOSIGNAL)`, retried on `EINTR`:
/// sends `msg` as one message with `fds` (the receiver gets copies; the
/// sender's stay open). Returns `msg.len()`.
///
/// Errors: `EINVAL` for an empty message or more than [`MAX_FDS`] fds;
/// `EMSGSIZE` for a message larger than the socket's send buffer; `EPIPE`
/// (never `SIGPIPE`) when the peer is gone; `ETOOMANYREFS` when this user
/// has too many fds in flight (the limit is `RLIMIT_NOFILE`); `EBADF`.
///
/// # References
/// - [sendmsg(2)](https://man7.org/linux/man-pages/man2/sendmsg.2.html)
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SCM_RIGHTS`)
#[doc(alias = "SCM_RIGHTS")]
pub fn send_fds(fd: impl AsFd, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    if msg.is_empty() || fds.len() > MAX_FDS {
        return Err(Errno::INVAL);
    }
    let fd = fd.as_fd();
    let mut space = [MaybeUninit::<u8>::uninit(); CONTROL];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::INVAL);
    }
    let iov = [IoSlice::new(msg)];
    retry_reset(|| sendmsg(fd, &iov, &mut control, SendFlags::NOSIGNAL))
}

/// Looks at the next message without taking it: its length, its first
/// bytes (copied into `data`), and copies of its fds in `copies` (their
/// number is returned).
///
/// Errors: `EMFILE` if this process could not hold copies of all its fds
/// (the message stays queued).
fn peek_into(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    copies: &mut [Option<OwnedFd>; MAX_FDS],
) -> Result<(usize, usize)> {
    let mut space = [MaybeUninit::<u8>::uninit(); CONTROL];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let flags = RecvFlags::PEEK | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC;
    let mut iov = [IoSliceMut::new(data)];
    let got = retry_reset(|| recvmsg(fd, &mut iov, &mut control, flags))?;
    let mut n = 0;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            for copy in received {
                // The room is for the kernel's maximum: a slot is always free.
                if let Some(slot) = copies.get_mut(n) {
                    *slot = Some(copy);
                    n += 1;
                }
            }
        }
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        // Out of fds: some copies could not be made. Nothing is taken.
        copies.iter_mut().for_each(|c| *c = None);
        return Err(Errno::MFILE);
    }
    Ok((got.bytes, n))
}

/// Whether the next message, whose control data did not fit a peek with no
/// room for any (`MSG_CTRUNC`), carries fds. Fds are the only control data
/// a unix socket receives unless it asks for credentials (`SO_PASSCRED`);
/// then a peek with room for the credentials, which come first, and none for
/// fds tells, again installing nothing.
pub(super) fn carries_fds(fd: BorrowedFd<'_>) -> Result<bool> {
    if !rustix::net::sockopt::socket_passcred(fd)? {
        return Ok(true);
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let flags = RecvFlags::PEEK | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC;
    let got = retry_reset(|| recvmsg(fd, &mut [], &mut control, flags))?;
    // Copies of fds that did fit (had the option just been turned off) are
    // closed as they are dropped.
    let copies = control
        .drain()
        .any(|m| matches!(m, RecvAncillaryMessage::ScmRights(_)));
    Ok(got.flags.contains(ReturnFlags::CTRUNC) || copies)
}

/// The length of the next message and the number of fds it carries, waiting
/// for one, without taking it; `(0, 0)` when the peer is gone.
///
/// Errors: `EMFILE` (this process is too short of fds to look at them: the
/// message stays queued), and those of [`super::next_size`].
pub fn next_sizes(fd: impl AsFd) -> Result<(usize, usize)> {
    let fd = fd.as_fd();
    let mut copies = [const { None }; MAX_FDS];
    next_peeked(fd, &mut [], &mut copies)
}

/// [`peek_into`] the next message, skipping empty messages that carry no
/// fd; `(0, 0)` when the peer is gone.
fn next_peeked(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    copies: &mut [Option<OwnedFd>; MAX_FDS],
) -> Result<(usize, usize)> {
    loop {
        let (len, n) = peek_into(fd, data, copies)?;
        if len > 0 || n > 0 {
            return Ok((len, n));
        }
        // End of file, or an empty message (as in `next_size`).
        if peer_gone(fd)? && rustix::io::ioctl_fionread(fd)? == 0 {
            return Ok((0, 0));
        }
        retry_reset(|| rustix::net::recv(fd, &mut [0u8; 0], RecvFlags::DONTWAIT))?;
    }
}

/// Receives one whole message into `buf` and its fds into the first slots
/// of `fds`, waiting for one. Returns the message's length and the number
/// of fds; `(0, 0)` when the peer is gone (every message it sent has been
/// received). Received fds are close-on-exec; fds already in the slots are
/// closed when replaced.
///
/// Nothing is lost. Errors, each leaving the message and all its fds queued:
/// - `EMSGSIZE`: the message is longer than `buf`, or carries more fds than
///   `fds` has slots ([`next_sizes`] tells how much room it needs);
/// - `EMFILE`: this process has too few free fds for the message's fds;
/// - those of [`super::recv`].
///
/// One receiver per socket end (as for [`super::recv`]): the message is
/// looked at, then taken, and a second receiver in between could take it.
///
/// # References
/// - [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html)
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SCM_RIGHTS`)
#[doc(alias = "MSG_CMSG_CLOEXEC")]
pub fn recv_fds(
    fd: impl AsFd,
    buf: &mut [u8],
    fds: &mut [Option<OwnedFd>],
) -> Result<(usize, usize)> {
    let fd = fd.as_fd();
    let mut copies = [const { None }; MAX_FDS];
    let (len, n) = next_peeked(fd, &mut [], &mut copies)?;
    if len == 0 && n == 0 {
        return Ok((0, 0));
    }
    if len > buf.len() || n > fds.len() {
        return Err(Errno::MSGSIZE);
    }
    // Take the message. With no control room the kernel closes its own
    // references to the fds; the copies made by the peek are the same open
    // files, and they are what the caller gets.
    let mut iov = [IoSliceMut::new(&mut buf[..len])];
    let mut none = RecvAncillaryBuffer::new(&mut []);
    let got = retry_reset(|| recvmsg(fd, &mut iov, &mut none, RecvFlags::TRUNC))?;
    if got.bytes != len {
        // Another receiver took the message looked at: this is another one.
        return Err(Errno::MSGSIZE);
    }
    for (slot, copy) in fds.iter_mut().zip(copies.iter_mut().take(n)) {
        *slot = copy.take();
    }
    Ok((len, n))
}

/// As [`recv_fds`], but takes the message only if `accept` accepts its bytes
/// and its number of fds (looked at in place, before anything is taken);
/// otherwise fails with `accept`'s error and leaves it queued, whole. For
/// protocols on top of fd passing (a channel hand-over), so that a message
/// that is not theirs is never lost.
pub(crate) fn recv_fds_if(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut [Option<OwnedFd>],
    accept: impl FnOnce(&[u8], usize) -> Result<()>,
) -> Result<(usize, usize)> {
    let mut copies = [const { None }; MAX_FDS];
    let (len, n) = next_peeked(fd, buf, &mut copies)?;
    if len == 0 && n == 0 {
        return Ok((0, 0));
    }
    if len > buf.len() || n > fds.len() {
        return Err(Errno::MSGSIZE);
    }
    accept(&buf[..len], n)?;
    // Its bytes are in `buf` and its fds in `copies`: take it off the queue.
    let mut none = RecvAncillaryBuffer::new(&mut []);
    let got = retry_reset(|| recvmsg(fd, &mut [], &mut none, RecvFlags::TRUNC))?;
    if got.bytes != len {
        return Err(Errno::MSGSIZE);
    }
    for (slot, copy) in fds.iter_mut().zip(copies.iter_mut().take(n)) {
        *slot = copy.take();
    }
    Ok((len, n))
}

impl super::MsgSocket {
    /// Sends `msg` with `fds`. See [`send_fds`].
    pub fn send_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
        send_fds(self, msg, fds)
    }

    /// Receives one whole message and its fds. See [`recv_fds`].
    pub fn recv_fds(&self, buf: &mut [u8], fds: &mut [Option<OwnedFd>]) -> Result<(usize, usize)> {
        recv_fds(self, buf, fds)
    }
}
