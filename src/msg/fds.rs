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
use core::time::Duration;

use rustix::event::PollFlags;
use rustix::fd::FromRawFd;
use rustix::io::IoSlice;
use rustix::net::{
    RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg,
};

use super::{Nothing, by_deadline, found_nothing, retry_reset, send_nowait};
use crate::deadline::{self, wait_ready};
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, sys};

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
/// Errors: `EINVAL` for an empty message or more than [`MAX_FDS`] fds, or
/// for the one message [`super::recv`] would take for a large message's
/// header (24 bytes that start with its magic, with one fd);
/// `EMSGSIZE` for a message larger than the socket's send buffer (fds travel
/// only with messages the socket takes whole); `EPIPE`
/// (never `SIGPIPE`) when the peer is gone; `ETOOMANYREFS` when this user
/// has too many fds in flight (the limit is `RLIMIT_NOFILE`); `EBADF`.
///
/// # References
/// - [sendmsg(2)](https://man7.org/linux/man-pages/man2/sendmsg.2.html)
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SCM_RIGHTS`)
#[doc(alias = "SCM_RIGHTS")]
pub fn send_fds(fd: impl AsFd, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    send_fds_until(fd.as_fd(), msg, fds, None)
}

/// As [`send_fds`], but waits for room at most `timeout`, then fails with
/// `ETIMEDOUT` having sent nothing.
pub fn send_fds_timeout(
    fd: impl AsFd,
    msg: &[u8],
    fds: &[BorrowedFd<'_>],
    timeout: Duration,
) -> Result<usize> {
    send_fds_until(fd.as_fd(), msg, fds, deadline::after(timeout))
}

fn send_fds_until(
    fd: BorrowedFd<'_>,
    msg: &[u8],
    fds: &[BorrowedFd<'_>],
    deadline: Option<u64>,
) -> Result<usize> {
    if fds.len() == 1 && super::large::announced(msg).is_some() {
        return Err(Errno::INVAL);
    }
    if msg.is_empty() || fds.len() > MAX_FDS {
        return Err(Errno::INVAL);
    }
    let mut space = [MaybeUninit::<u8>::uninit(); CONTROL];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::INVAL);
    }
    let iov = [IoSlice::new(msg)];
    by_deadline(fd, PollFlags::OUT, deadline, |nowait| {
        let flags = SendFlags::NOSIGNAL | send_nowait(nowait);
        sendmsg(fd, &iov, &mut control, flags)
    })
}

/// `recvmsg(fd, data, MSG_PEEK | MSG_TRUNC | MSG_CMSG_CLOEXEC)` with `room`
/// bytes (at most [`CONTROL`]) for control messages: the message's length,
/// whether control data was cut (`MSG_CTRUNC`), and the fds the kernel
/// installed, put in `copies` (their number is returned; beyond its slots
/// they are closed).
///
/// The control messages are read here rather than by rustix: its parser
/// makes a `UCred` of any credentials, whose pid cannot be the 0 the
/// kernel reports for a sender in another pid namespace.
fn peek_control(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    room: usize,
    copies: &mut [Option<OwnedFd>; MAX_FDS],
    wait: RecvFlags,
) -> Result<((usize, usize), ReturnFlags)> {
    // Zero-filled, so that the end of what the kernel wrote reads as a
    // header of length 0.
    let mut space = [0u8; CONTROL];
    let control = space.get_mut(..room.min(CONTROL)).unwrap_or(&mut []);
    let flags = wait | RecvFlags::PEEK | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC;
    let (len, returned) = retry_reset(|| sys::recvmsg(fd, &mut *data, &mut *control, flags))?;
    let n = take_rights(control, copies);
    Ok(((len, n), returned))
}

/// The `N` bytes of `bytes` at `at`, if there are that many.
fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..)?.first_chunk().copied()
}

/// The fds of the `SCM_RIGHTS` messages in `control` (as `recvmsg` wrote
/// it, zeros after), owned at last: into `copies`, or closed if no slot is
/// left. Returns how many went into `copies`. The pidfd of an `SCM_PIDFD`
/// message (a socket with `SO_PASSPIDFD` on) is closed, never leaked.
fn take_rights(control: &[u8], copies: &mut [Option<OwnedFd>; MAX_FDS]) -> usize {
    const WORD: usize = size_of::<usize>();
    // `cmsg_len` (a size_t), `cmsg_level`, `cmsg_type`, then the data at
    // the next word boundary.
    const HEADER: usize = (WORD + 8).next_multiple_of(WORD);
    const SCM_RIGHTS: i32 = 1;
    const SCM_PIDFD: i32 = 4;
    let mut n = 0;
    let mut rest = control;
    while let Some(header) = rest.first_chunk::<HEADER>() {
        let (Some(len), Some(level), Some(kind)) = (
            bytes_at(header, 0).map(usize::from_ne_bytes),
            bytes_at(header, WORD).map(i32::from_ne_bytes),
            bytes_at(header, WORD + 4).map(i32::from_ne_bytes),
        ) else {
            break;
        };
        if len < HEADER {
            break;
        }
        // The data, as much of it as the kernel wrote.
        let data = rest.get(HEADER..len.min(rest.len())).unwrap_or(&[]);
        if level == crate::sys::SOL_SOCKET && (kind == SCM_RIGHTS || kind == SCM_PIDFD) {
            let raws = data.chunks_exact(4).filter_map(|raw| raw.try_into().ok());
            for raw in raws.map(i32::from_ne_bytes) {
                if raw < 0 {
                    // A pidfd the kernel could not make (its error).
                    continue;
                }
                // SAFETY: the kernel has just installed this fd for this
                // call, and nothing else knows of it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                match copies.get_mut(n) {
                    Some(slot) if kind == SCM_RIGHTS => {
                        *slot = Some(fd);
                        n += 1;
                    }
                    _ => drop(fd),
                }
            }
        }
        let Some(next) = len.checked_next_multiple_of(WORD) else {
            break;
        };
        rest = rest.get(next..).unwrap_or(&[]);
    }
    n
}

/// Looks at the next message without taking it: its length, its first
/// bytes (copied into `data`), and copies of its fds in `copies` (their
/// number is returned).
///
/// Errors: `EMFILE` if this process could not hold copies of all its fds
/// (the message stays queued).
pub(super) fn peek_into(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    copies: &mut [Option<OwnedFd>; MAX_FDS],
) -> Result<(usize, usize)> {
    peek_into_flags(fd, data, copies, RecvFlags::empty()).map(|(sizes, _)| sizes)
}

/// [`peek_into`] with `wait` added to the flags; also returns the flags the
/// kernel returned.
fn peek_into_flags(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    copies: &mut [Option<OwnedFd>; MAX_FDS],
    wait: RecvFlags,
) -> Result<((usize, usize), ReturnFlags)> {
    // The room is for the kernel's maximum: what is cut was never made.
    let (sizes, returned) = peek_control(fd, data, CONTROL, copies, wait)?;
    if returned.contains(ReturnFlags::CTRUNC) {
        // Out of fds: some copies could not be made. Nothing is taken.
        copies.iter_mut().for_each(|c| *c = None);
        return Err(Errno::MFILE);
    }
    Ok((sizes, returned))
}

/// Whether the next message, whose control data did not fit a peek with no
/// room for any (`MSG_CTRUNC`), carries fds. Fds are the only control data
/// a unix socket receives unless it asks for credentials (`SO_PASSCRED`);
/// then a peek with room for the credentials, which come first, and none for
/// fds tells, again installing nothing.
pub(super) fn carries_fds(fd: BorrowedFd<'_>) -> Result<bool> {
    if !sys::passcred(fd)? {
        return Ok(true);
    }
    let mut copies = [const { None }; MAX_FDS];
    let room = rustix::cmsg_space!(ScmCredentials(1));
    // Copies of fds that did fit (had the option just been turned off) are
    // closed as `copies` is dropped.
    let ((_, n), returned) = peek_control(fd, &mut [], room, &mut copies, RecvFlags::empty())?;
    Ok(returned.contains(ReturnFlags::CTRUNC) || n > 0)
}

/// The length of the next message and the number of fds it carries, waiting
/// for one, without taking it; `(0, 0)` when the peer is gone. A large
/// message (see [`super::send`]) is its own length and no fds.
///
/// Errors: `EMFILE` (this process is too short of fds to look at them: the
/// message stays queued), and those of [`super::next_size`].
pub fn next_sizes(fd: impl AsFd) -> Result<(usize, usize)> {
    next_sizes_until(fd.as_fd(), None)
}

/// As [`next_sizes`], but waits at most `timeout` for a message, then fails
/// with `ETIMEDOUT`.
pub fn next_sizes_timeout(fd: impl AsFd, timeout: Duration) -> Result<(usize, usize)> {
    next_sizes_until(fd.as_fd(), deadline::after(timeout))
}

fn next_sizes_until(fd: BorrowedFd<'_>, deadline: Option<u64>) -> Result<(usize, usize)> {
    let mut copies = [const { None }; MAX_FDS];
    let (len, n) = next_peeked(fd, &mut [], &mut copies, deadline)?;
    Ok(match large_at_head(fd, len, n)? {
        Some(large) => (large.len(), 0),
        None => (len, n),
    })
}

/// The large message at the head of the queue, if the message looked at
/// (of `len` bytes and `n` fds) is one.
fn large_at_head(fd: BorrowedFd<'_>, len: usize, n: usize) -> Result<Option<super::large::Large>> {
    if len != super::large::HEADER || n != 1 {
        return Ok(None);
    }
    super::large::look(fd)
}

/// [`peek_into`] the next message, skipping empty messages that carry no
/// fd; `(0, 0)` when the peer is gone; `ETIMEDOUT` if none came by the
/// `deadline`.
fn next_peeked(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    copies: &mut [Option<OwnedFd>; MAX_FDS],
    deadline: Option<u64>,
) -> Result<(usize, usize)> {
    let mut kind = super::Kind::default();
    if deadline.is_some() {
        // A wait on a socket of another kind could only time out: say why.
        kind.check(fd)?;
    }
    let mut settled = false;
    loop {
        wait_ready(fd, PollFlags::IN, deadline)?;
        let ((len, n), _) = kind.peek(fd, |wait| peek_into_flags(fd, data, copies, wait))?;
        if len > 0 || n > 0 {
            return Ok((len, n));
        }
        if let Nothing::Gone = found_nothing(fd, &mut settled)? {
            return Ok((0, 0));
        }
    }
}

/// Receives one whole message into `buf` and its fds into the first slots
/// of `fds`, waiting for one. Returns the message's length and the number
/// of fds; `(0, 0)` when the peer is gone (every message it sent has been
/// received). Received fds are close-on-exec; fds already in the slots are
/// closed when replaced. A large message (see [`super::send`]) is received
/// as [`super::recv`] does, with no fds.
///
/// Nothing is lost. Errors, each leaving the message and all its fds queued:
/// - `EMSGSIZE`: the message is longer than `buf`, or carries more fds than
///   `fds` has slots ([`next_sizes`] tells how much room it needs);
/// - `EMFILE`: this process has too few free fds for the message's fds;
/// - those of [`super::recv`] (`EBADMSG` for a large message's header whose
///   fd fails the checks takes that header off the queue).
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
    recv_fds_until(fd.as_fd(), buf, fds, None)
}

/// As [`recv_fds`], but waits at most `timeout` for a message, then fails
/// with `ETIMEDOUT`, taking nothing; `(0, 0)` at once when the peer is gone.
pub fn recv_fds_timeout(
    fd: impl AsFd,
    buf: &mut [u8],
    fds: &mut [Option<OwnedFd>],
    timeout: Duration,
) -> Result<(usize, usize)> {
    recv_fds_until(fd.as_fd(), buf, fds, deadline::after(timeout))
}

fn recv_fds_until(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut [Option<OwnedFd>],
    deadline: Option<u64>,
) -> Result<(usize, usize)> {
    let mut copies = [const { None }; MAX_FDS];
    let (len, n) = next_peeked(fd, &mut [], &mut copies, deadline)?;
    if len == 0 && n == 0 {
        return Ok((0, 0));
    }
    if let Some(large) = large_at_head(fd, len, n)? {
        return Ok((super::large::take(fd, large, buf)?, 0));
    }
    if len > buf.len() || n > fds.len() {
        return Err(Errno::MSGSIZE);
    }
    // Take the message. With no control room the kernel closes its own
    // references to the fds; the copies made by the peek are the same open
    // files, and they are what the caller gets.
    let data = buf.get_mut(..len).unwrap_or(&mut []);
    let (got, _) = retry_reset(|| sys::recvmsg(fd, &mut *data, &mut [], RecvFlags::TRUNC))?;
    if got != len {
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
    let (len, n) = next_peeked(fd, buf, &mut copies, None)?;
    if len == 0 && n == 0 {
        return Ok((0, 0));
    }
    if len > buf.len() || n > fds.len() {
        return Err(Errno::MSGSIZE);
    }
    accept(buf.get(..len).unwrap_or(&[]), n)?;
    // Its bytes are in `buf` and its fds in `copies`: take it off the queue.
    let (got, _) = retry_reset(|| sys::recvmsg(fd, &mut [], &mut [], RecvFlags::TRUNC))?;
    if got != len {
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

    /// Sends `msg` with `fds`, waiting for room at most `timeout`. See
    /// [`send_fds_timeout`].
    pub fn send_fds_timeout(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<usize> {
        send_fds_timeout(self, msg, fds, timeout)
    }

    /// Receives one whole message and its fds, waiting at most `timeout`.
    /// See [`recv_fds_timeout`].
    pub fn recv_fds_timeout(
        &self,
        buf: &mut [u8],
        fds: &mut [Option<OwnedFd>],
        timeout: Duration,
    ) -> Result<(usize, usize)> {
        recv_fds_timeout(self, buf, fds, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::{AsRawFd, IntoRawFd};

    /// One control message as the kernel lays it out on this machine.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> [u8; 64] {
        let word = size_of::<usize>();
        let header = (word + 8).next_multiple_of(word);
        let mut m = [0u8; 64];
        m[..word].copy_from_slice(&(header + data.len()).to_ne_bytes());
        m[word..word + 4].copy_from_slice(&level.to_ne_bytes());
        m[word + 4..word + 8].copy_from_slice(&kind.to_ne_bytes());
        m[header..header + data.len()].copy_from_slice(data);
        m
    }

    #[test]
    fn rights_are_found_behind_credentials_with_pid_0() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (r, w) = (r.into_raw_fd(), w.into_raw_fd());
        let word = size_of::<usize>();
        let header = (word + 8).next_multiple_of(word);
        // Credentials: pid 0 (a sender in another pid namespace), uid, gid.
        let creds = cmsg(crate::sys::SOL_SOCKET, 2, &[0; 12]);
        let mut fds = [0u8; 8];
        fds[..4].copy_from_slice(&r.to_ne_bytes());
        fds[4..].copy_from_slice(&w.to_ne_bytes());
        let rights = cmsg(crate::sys::SOL_SOCKET, 1, &fds);
        let creds_space = (header + 12).next_multiple_of(word);
        let mut control = [0u8; 256];
        control[..creds_space].copy_from_slice(&creds[..creds_space]);
        control[creds_space..creds_space + header + 8].copy_from_slice(&rights[..header + 8]);
        let mut copies = [const { None }; MAX_FDS];
        assert_eq!(take_rights(&control, &mut copies), 2);
        let got: [i32; 2] = [0, 1].map(|i| copies[i].as_ref().unwrap().as_raw_fd());
        assert_eq!(got, [r, w]);
        // Nothing at all, and a header cut short, give none.
        assert_eq!(take_rights(&[0; 64], &mut [const { None }; MAX_FDS]), 0);
        assert_eq!(
            take_rights(&rights[..header - 1], &mut [const { None }; MAX_FDS]),
            0
        );
    }

    #[test]
    fn a_length_past_the_end_takes_what_is_there_and_stops() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (r, w) = (r.into_raw_fd(), w.into_raw_fd());
        let word = size_of::<usize>();
        let mut fds = [0u8; 8];
        fds[..4].copy_from_slice(&r.to_ne_bytes());
        fds[4..].copy_from_slice(&w.to_ne_bytes());
        let header = (word + 8).next_multiple_of(word);
        let mut control = cmsg(crate::sys::SOL_SOCKET, 1, &fds);
        // A length no buffer has, up to one that would wrap past the end of
        // the address space when rounded up to the next header.
        for len in [1000, usize::MAX - 2, usize::MAX] {
            control[..word].copy_from_slice(&len.to_ne_bytes());
            let mut copies = [const { None }; MAX_FDS];
            let written = &control[..header + 8];
            assert_eq!(take_rights(written, &mut copies), 2, "cmsg_len {len}");
            let got: [i32; 2] = [0, 1].map(|i| copies[i].take().unwrap().into_raw_fd());
            assert_eq!(got, [r, w]);
        }
    }
}
