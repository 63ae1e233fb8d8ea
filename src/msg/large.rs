//! Messages larger than the socket takes: the bytes travel in a sealed
//! `memfd`, passed with a small header message (`SCM_RIGHTS`).
//!
//! A `SOCK_SEQPACKET` socket refuses a message larger than its send buffer
//! (`EMSGSIZE`; ~208 KiB by default). [`super::send`] then writes the
//! message into a new memfd with `pwrite`, seals it against writing,
//! shrinking and growing (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW`, and
//! `F_SEAL_SEAL`; `F_SEAL_FUTURE_WRITE` for `F_SEAL_WRITE` when the kernel
//! refuses that one with `EBUSY`, see [`NO_WRITES`]), and sends a [`HEADER`]-byte message that announces the
//! length, with the memfd as its one fd. The sender never maps the memfd and
//! gives up its fd once sent: from the seal on, nobody can change a byte.
//!
//! The wire format is told from a user's message by its fd: a message that
//! [`super::send`] sends directly never carries one, so a user's message
//! that happens to hold the header's bytes is delivered as the bytes it is.
//! Only a message of exactly [`HEADER`] bytes, starting with the magic, whose
//! length and its complement agree, and that carries exactly one fd, is a
//! large message; [`super::send_fds`] refuses to send such a message itself.
//!
//! The receiver distrusts it: the fd must be a memory file sealed against
//! writing, shrinking and growing (only a memfd can be), whose size is the
//! announced length, at most [`MAX_SIZE`]. It reads the bytes with `pread`
//! (no mapping, so nothing to leak and no `SIGBUS`), straight into the
//! caller's buffer, and only then takes the header message off the queue.
//! A header whose fd fails a check (a pipe, a file, an unsealed memfd, one
//! of another size) is no message: it is taken off the queue, its fd
//! closed, and the receive fails with `EBADMSG`; the next receive gets the
//! next message.

use rustix::event::PollFlags;
use rustix::fs::{FileType, MemfdFlags, SealFlags, fcntl_add_seals, fcntl_get_seals, fstat};
use rustix::net::RecvFlags;

use super::retry_reset;
use crate::{BorrowedFd, Errno, OwnedFd, Result, retry, sys};

/// The largest message [`super::send`] sends and [`super::recv`] accepts:
/// 1 GiB. It keeps every message within one `pwrite` and one `pread`
/// (Linux moves at most 2 GiB less a page per call), within a C `int`, and
/// caps what a peer can make a receiver allocate that sizes its buffer by
/// [`super::next_size`].
pub const MAX_SIZE: usize = 1 << 30;

/// The header message's length: the magic, the length, its complement.
pub(super) const HEADER: usize = 24;

/// The header's first bytes.
const MAGIC: [u8; 8] = *b"\x7frawipcM";

/// The seals a large message's memfd must have: nobody can shrink or grow
/// it, and nobody can write it ([`NO_WRITES`]).
const NEEDED: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// Either seal against writing: `F_SEAL_WRITE`, or `F_SEAL_FUTURE_WRITE`,
/// which the sender takes when the kernel refuses the first with `EBUSY`
/// (it does while it holds extra references to pages just written, such as
/// page migration's). `F_SEAL_FUTURE_WRITE` leaves writable only the shared
/// mappings made before it, and rawipc's sender never maps the memfd; a
/// sender that did could change bytes while they are read, which gives the
/// receiver nothing it could not have sent: the receiver copies the bytes
/// out once, with `pread`, and never looks at them in the memfd again.
const NO_WRITES: SealFlags = SealFlags::WRITE.union(SealFlags::FUTURE_WRITE);

/// The header that announces a message of `len` bytes.
fn header(len: usize) -> [u8; HEADER] {
    let len = (len as u64).to_le_bytes();
    let check = (!u64::from_le_bytes(len)).to_le_bytes();
    let mut h = [0u8; HEADER];
    for (i, byte) in h.iter_mut().enumerate() {
        *byte = match i {
            0..8 => MAGIC.get(i),
            8..16 => len.get(i - 8),
            _ => check.get(i - 16),
        }
        .copied()
        .unwrap_or(0);
    }
    h
}

/// The length a header announces, if `bytes` is one.
pub(super) fn announced(bytes: &[u8]) -> Option<u64> {
    let h: &[u8; HEADER] = bytes.try_into().ok()?;
    let (magic, rest) = h.split_first_chunk::<8>()?;
    let (len, check) = rest.split_first_chunk::<8>()?;
    let len = u64::from_le_bytes(*len);
    let check = u64::from_le_bytes(check.first_chunk::<8>().copied()?);
    (*magic == MAGIC && check == !len).then_some(len)
}

/// Sends `msg` (too large for the socket) in a sealed memfd; returns its
/// length. Waits for room in the socket until `deadline` if there is one
/// (then `ETIMEDOUT`, nothing sent), for ever if not.
///
/// Errors: `EMSGSIZE` above [`MAX_SIZE`]; `ENOMEM` if the memory cannot be
/// had; `EMFILE`/`ENFILE` (the memfd needs an fd); those of
/// [`super::send_fds`].
pub(super) fn send(fd: BorrowedFd<'_>, msg: &[u8], deadline: Option<u64>) -> Result<usize> {
    if msg.len() > MAX_SIZE {
        return Err(Errno::MSGSIZE);
    }
    let owned = sys::memfd_create(
        c"rawipc-msg",
        MemfdFlags::ALLOW_SEALING | MemfdFlags::CLOEXEC,
    )?;
    let memfd = sys::borrow(&owned);
    let mut done = 0;
    while let Some(rest) = msg.get(done..).filter(|r| !r.is_empty()) {
        match retry(|| rustix::io::pwrite(memfd, rest, done as u64)) {
            Ok(0) | Err(Errno::NOSPC | Errno::FBIG) => return Err(Errno::NOMEM),
            Ok(n) => done += n,
            Err(e) => return Err(e),
        }
    }
    let seals = NEEDED.union(SealFlags::SEAL);
    match fcntl_add_seals(memfd, seals.union(SealFlags::WRITE)) {
        // Pages still referenced by the kernel (none of them mapped).
        Err(Errno::BUSY) => fcntl_add_seals(memfd, seals.union(SealFlags::FUTURE_WRITE))?,
        sealed => sealed?,
    }
    let header = header(msg.len());
    super::by_deadline(fd, PollFlags::OUT, deadline, |nowait| {
        sys::send_one_fd(fd, &header, memfd, nowait)
    })?;
    Ok(msg.len())
}

/// A large message at the head of the queue, its memfd checked.
#[derive(Debug)]
pub(super) struct Large {
    memfd: OwnedFd,
    len: usize,
}

impl Large {
    /// The message's length.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Looks at the next message, which carries fds: a large message (its
/// memfd checked), or `None` for any other message with fds.
///
/// Errors: `EBADMSG` for a header whose fd fails the checks (the message is
/// taken off the queue and its fd closed); `EMFILE` if this process has no
/// fd free for a copy of the memfd (the message stays queued).
pub(super) fn look(fd: BorrowedFd<'_>) -> Result<Option<Large>> {
    let mut head = [0u8; HEADER + 1];
    let mut copies = [const { None }; super::MAX_FDS];
    let (len, n) = super::fds::peek_into(fd, &mut head, &mut copies)?;
    let Some(announced) = head.get(..len).and_then(announced).filter(|_| n == 1) else {
        return Ok(None);
    };
    let Some(memfd) = copies[0].take() else {
        return Ok(None);
    };
    match usize::try_from(announced) {
        Ok(len) if checked(sys::borrow(&memfd), len) => Ok(Some(Large { memfd, len })),
        _ => {
            drop(memfd);
            discard(fd)?;
            Err(Errno::BADMSG)
        }
    }
}

/// Whether `memfd` is a memory file of `len` bytes (1 to [`MAX_SIZE`]) that
/// nobody can write, shrink or grow: `F_GET_SEALS` first (files that are no
/// memfd refuse it: pipes, sockets, files on disk; a tmpfs file has only
/// `F_SEAL_SEAL`), then `fstat`, whose size the seals keep.
fn checked(memfd: BorrowedFd<'_>, len: usize) -> bool {
    if len == 0 || len > MAX_SIZE {
        return false;
    }
    let sealed =
        fcntl_get_seals(memfd).is_ok_and(|s| s.contains(NEEDED) && s.intersects(NO_WRITES));
    sealed
        && fstat(memfd).is_ok_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && u64::try_from(st.st_size) == Ok(len as u64)
        })
}

/// Takes the next message off the queue unread; its fds are closed by the
/// kernel (no control room).
fn discard(fd: BorrowedFd<'_>) -> Result<()> {
    retry_reset(|| sys::recvmsg(fd, &mut [], &mut [], RecvFlags::TRUNC)).map(drop)
}

/// Receives `large`, the message at the head of the queue, into `buf`:
/// reads its bytes from the memfd, then takes the header off the queue.
///
/// Errors: `EMSGSIZE` if `buf` is too small (it stays queued).
pub(super) fn take(fd: BorrowedFd<'_>, large: Large, buf: &mut [u8]) -> Result<usize> {
    let Some(buf) = buf.get_mut(..large.len) else {
        return Err(Errno::MSGSIZE);
    };
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match retry(|| rustix::io::pread(sys::borrow(&large.memfd), &mut *rest, done as u64))? {
            // Cannot happen to a file sealed against shrinking.
            0 => return discard(fd).and(Err(Errno::BADMSG)),
            n => done += n,
        }
    }
    let (got, _) = retry_reset(|| sys::recvmsg(fd, &mut [], &mut [], RecvFlags::TRUNC))?;
    if got != HEADER {
        // Another receiver took the message looked at.
        return Err(Errno::MSGSIZE);
    }
    Ok(large.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_says_its_length_and_nothing_else_is_one() {
        for len in [1, 212_961, MAX_SIZE, MAX_SIZE + 1, usize::MAX] {
            assert_eq!(announced(&header(len)), Some(len as u64));
        }
        let mut h = header(1000);
        assert_eq!(announced(&h[..HEADER - 1]), None);
        h[20] ^= 1;
        assert_eq!(announced(&h), None, "length and complement disagree");
        let mut h = header(1000);
        h[0] = 0;
        assert_eq!(announced(&h), None, "no magic");
        let mut longer = [0u8; HEADER + 1];
        longer[..HEADER].copy_from_slice(&header(1000));
        assert_eq!(announced(&longer), None);
    }
}
