//! Fast pipes: a pipe's capacity, and bulk writes that hand the kernel
//! pages instead of copying into it.
//!
//! A pipe holds 64 KiB by default, so a writer of large blocks is stopped and
//! woken every 64 KiB. [`set_capacity`] (`F_SETPIPE_SZ`) grows it, up to the
//! limit in `/proc/sys/fs/pipe-max-size` ([`max_capacity`]; 1 MiB unless the
//! administrator changed it) for a process without `CAP_SYS_RESOURCE`; above
//! that the kernel says `EPERM`, and rawipc passes it on rather than quietly
//! setting less.
//!
//! [`SpliceWriter`] goes further: it writes with `vmsplice(2)`. Its own doc
//! says what that requires of a writer, and how it keeps to it.

use core::ptr::NonNull;

use rustix::fd::AsFd;
use rustix::io;
use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous, munmap};
use rustix::pipe::{IoSliceRaw, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, vmsplice};

use super::{WriteEnd, WriteError};
use crate::{Errno, Result, retry, sys};

/// `fcntl(fd, F_GETPIPE_SZ)`: the pipe's capacity in bytes.
///
/// Errors: `EBADF`; `EINVAL` if `fd` is not a pipe.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Changing the capacity of a pipe"
#[doc(alias = "F_GETPIPE_SZ")]
pub fn capacity(fd: impl AsFd) -> Result<usize> {
    fcntl_getpipe_size(fd)
}

/// `fcntl(fd, F_SETPIPE_SZ, size)`: sets the pipe's capacity to at least
/// `size` bytes and returns the capacity set (the kernel rounds up to a
/// power of two pages).
///
/// A pipe holds 64 KiB by default, so a writer of large blocks is stopped
/// and woken every 64 KiB; a 1 MiB pipe moves large writes several times
/// faster. Above [`max_capacity`] the kernel says `EPERM` to a process
/// without `CAP_SYS_RESOURCE`, and rawipc passes that on rather than quietly
/// setting less.
///
/// Errors: `EPERM` above [`max_capacity`] for a process without
/// `CAP_SYS_RESOURCE`, or when the user's pipes already hold more than
/// `/proc/sys/fs/pipe-user-pages-soft` pages; `EBUSY` if the pipe holds more
/// than `size` bytes now; `EINVAL` for 0 or above 2^31, or if `fd` is not a
/// pipe; `EBADF`; `ENOMEM`.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Changing the capacity of a pipe"
#[doc(alias = "F_SETPIPE_SZ")]
pub fn set_capacity(fd: impl AsFd, size: usize) -> Result<usize> {
    if size == 0 || size > 1 << 31 {
        return Err(Errno::INVAL);
    }
    fcntl_setpipe_size(fd, size)
}

/// The largest capacity a process without `CAP_SYS_RESOURCE` may give a
/// pipe: `/proc/sys/fs/pipe-max-size`.
///
/// Errors: `ENOENT` or `EACCES` if `/proc` is not mounted or readable;
/// `EPROTO` if the file does not hold a number.
///
/// # References
/// - [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html), "/proc files"
pub fn max_capacity() -> Result<usize> {
    use rustix::fs::{Mode, OFlags, open};
    let fd = open(
        "/proc/sys/fs/pipe-max-size",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 24];
    let n = retry(|| io::read(&fd, &mut buf))?;
    parse_number(&buf[..n]).ok_or(Errno::PROTO)
}

fn parse_number(text: &[u8]) -> Option<usize> {
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))?
    })
}

impl WriteEnd {
    /// The pipe's capacity. See [`capacity`].
    pub fn capacity(&self) -> Result<usize> {
        capacity(self)
    }

    /// Sets the pipe's capacity; returns the capacity set. See [`set_capacity`].
    pub fn set_capacity(&self, size: usize) -> Result<usize> {
        set_capacity(self, size)
    }
}

impl super::ReadEnd {
    /// The pipe's capacity. See [`capacity`].
    pub fn capacity(&self) -> Result<usize> {
        capacity(self)
    }

    /// Sets the pipe's capacity; returns the capacity set. See [`set_capacity`].
    pub fn set_capacity(&self, size: usize) -> Result<usize> {
        set_capacity(self, size)
    }
}

const PAGE: usize = 4096;

/// A pipe's write end that writes with `vmsplice(2)`. It owns the write end
/// and a buffer of its own, twice the pipe's capacity, and `vmsplice` puts
/// references to the buffer's pages in the pipe instead of copying their
/// bytes. The reader's `read` then copies straight from those pages.
///
/// # What a vmsplice writer may not do, and how this API keeps to it
/// After `vmsplice`, the pipe holds the writer's pages themselves: a byte
/// the writer changes before the reader has read it is read changed. So a
/// buffer handed to `vmsplice` must not be written again until the reader
/// has consumed those bytes, and must not be unmapped and reused as other
/// memory meanwhile by anything that would write it.
///
/// The buffer here is the writer's alone: safe Rust reaches it only through
/// [`SpliceWriter::write_all`], which copies the caller's bytes into the
/// part of it that is free, and [`SpliceWriter::reserve`], which lends that
/// free part out until [`SpliceWriter::commit`]. A part is free again only
/// once the pipe's fill level (`FIONREAD`) shows that its bytes were read:
/// what other writers put into the same pipe only makes that count more
/// cautious. Children forked while a writer lives see its buffer as zeros
/// (`MADV_WIPEONFORK`), so they cannot change pages in flight either.
/// Dropping the writer unmaps its buffer; pages still in the pipe stay alive
/// and unchanged until they are read.
///
/// One thing the writer cannot see: a reader that moves the pages on with
/// `splice(2)` or `tee(2)` (into another pipe) instead of reading them. The
/// pages then leave this pipe while still referenced, and may be rewritten
/// while another pipe holds them. Readers of a `SpliceWriter`'s pipe read
/// it (`read(2)`, `readv(2)`); they do not splice or tee it onward.
pub struct SpliceWriter {
    pipe: WriteEnd,
    /// The buffer: a ring of `len` bytes, private to this process.
    buf: NonNull<u8>,
    len: usize,
    /// Bytes handed to the pipe so far (private; the ring's write position).
    written: u64,
    /// Bytes the reader is known to have consumed (never above `written`).
    consumed: u64,
    /// A reservation's length, until it is committed.
    reserved: usize,
}

// SAFETY: the buffer is private memory that only this value reaches.
unsafe impl Send for SpliceWriter {}

impl SpliceWriter {
    /// Takes `pipe`, sets its capacity to at least `capacity` bytes (see
    /// [`set_capacity`]) and maps a buffer twice the capacity set.
    ///
    /// Errors: as [`set_capacity`] (`EPERM` above [`max_capacity`] for an
    /// unprivileged process: ask for less, or see the limit); `ENOMEM`. The
    /// pipe is then closed; [`SpliceWriter::try_new`] gives it back.
    pub fn new(pipe: WriteEnd, capacity: usize) -> Result<Self> {
        Self::try_new(pipe, capacity).map_err(|(e, _)| e)
    }

    /// As [`SpliceWriter::new`], but gives the write end back with the error.
    pub fn try_new(
        pipe: WriteEnd,
        capacity: usize,
    ) -> core::result::Result<Self, (Errno, WriteEnd)> {
        match Self::map(&pipe, capacity) {
            Ok((buf, len)) => Ok(Self {
                pipe,
                buf,
                len,
                written: 0,
                consumed: 0,
                reserved: 0,
            }),
            Err(e) => Err((e, pipe)),
        }
    }

    /// Sets the capacity and maps the buffer.
    fn map(pipe: &WriteEnd, capacity: usize) -> Result<(NonNull<u8>, usize)> {
        let cap = set_capacity(pipe, capacity)?;
        let len = cap.checked_mul(2).ok_or(Errno::NOMEM)?;
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // chooses aliases no Rust object.
        let ptr = unsafe {
            mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )?
        };
        // SAFETY: the whole mapping just made; wiping it in children keeps
        // them from sharing (and then writing) pages handed to the pipe.
        if let Err(e) = unsafe { madvise(ptr, len, Advice::LinuxWipeOnFork) } {
            // SAFETY: the mapping just made, not used.
            let _ = unsafe { munmap(ptr, len) };
            return Err(e);
        }
        Ok((NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)?, len))
    }

    /// The write end, for `poll` or to look at the pipe.
    pub fn pipe(&self) -> &WriteEnd {
        &self.pipe
    }

    /// The size of the writer's buffer (twice the pipe's capacity when made).
    pub fn buffer_len(&self) -> usize {
        self.len
    }

    /// Writes all of `data`: copies it into the free part of the buffer and
    /// hands those pages to the pipe, waiting while the pipe is full.
    ///
    /// Errors (with the bytes handed over before it): `EPIPE` when the
    /// pipe has no reader (never `SIGPIPE`); `EBUSY` while a reservation is
    /// not committed; what `vmsplice` gives.
    pub fn write_all(&mut self, data: &[u8]) -> core::result::Result<(), WriteError> {
        let mut done = 0;
        let fail = |written, errno| WriteError { written, errno };
        if self.reserved > 0 {
            return Err(fail(0, Errno::BUSY));
        }
        while done < data.len() {
            // In pieces of a quarter of the pipe, so that the reader copies
            // one out while this side copies the next in.
            let piece = (data.len() - done).min(self.len / 8);
            let room = self.free(piece).map_err(|e| fail(done, e))?;
            let n = room.len();
            room.copy_from_slice(&data[done..done + n]);
            self.splice(n).map_err(|e| fail(done, e))?;
            done += n;
        }
        Ok(())
    }

    /// Lends out up to `len` bytes of the free part of the buffer (fewer
    /// where the ring wraps: at least one byte, and all `len` whenever they
    /// fit before its end), to be filled in place and handed to the pipe
    /// with [`SpliceWriter::commit`]. Waits until the reader makes room if
    /// need be. Reserving again before committing starts over.
    ///
    /// Errors: `EINVAL` for 0 bytes; `EPIPE` if the pipe has no reader.
    pub fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        self.reserved = 0;
        let room = self.free(len)?;
        let n = room.len();
        self.reserved = n;
        // SAFETY: the same free bytes `free` found (re-borrowed to return
        // them after `reserved` is set).
        Ok(unsafe { core::slice::from_raw_parts_mut(self.at(self.written), n) })
    }

    /// Hands the first `len` bytes of the reservation to the pipe, waiting
    /// while the pipe is full.
    ///
    /// Errors: `EINVAL` if `len` is 0 or above what was reserved; `EPIPE`
    /// if the pipe has no reader.
    pub fn commit(&mut self, len: usize) -> Result<()> {
        if len == 0 || len > self.reserved {
            return Err(Errno::INVAL);
        }
        self.reserved = 0;
        self.splice(len)
    }

    /// The address of ring position `pos`.
    fn at(&self, pos: u64) -> *mut u8 {
        // SAFETY: the offset is below `len`, inside the mapping.
        unsafe { self.buf.as_ptr().add((pos % self.len as u64) as usize) }
    }

    /// Free bytes at the write position, at most `want`, up to the ring's
    /// end: waits until the reader has consumed enough for at least one.
    fn free(&mut self, want: usize) -> Result<&mut [u8]> {
        let off = (self.written % self.len as u64) as usize;
        let to_end = self.len - off;
        loop {
            let free = self.len as u64 - (self.written - self.consumed);
            let n = (want.min(to_end) as u64).min(free) as usize;
            // Whole pages where possible: a page of the ring is then handed
            // over in one piece (one pipe slot), not in fragments.
            if n > 0 && (n == want.min(to_end) || n >= PAGE) {
                // SAFETY: bytes off..off + n are inside the ring and free:
                // the pipe no longer holds them, nothing else reaches them.
                return Ok(unsafe { core::slice::from_raw_parts_mut(self.at(self.written), n) });
            }
            self.refresh_consumed()?;
            if self.len as u64 - (self.written - self.consumed) <= free {
                self.wait_for_reader()?;
            }
        }
    }

    /// Reads the pipe's fill level: of the bytes handed over, all but that
    /// many have been read (other writers' bytes make the count cautious).
    fn refresh_consumed(&mut self) -> Result<()> {
        let queued = io::ioctl_fionread(&self.pipe)?;
        self.consumed = self.consumed.max(self.written.saturating_sub(queued));
        Ok(())
    }

    /// Waits a little for the reader: only when the pipe was made larger
    /// than it was when this writer was made (the buffer is otherwise twice
    /// what the pipe can hold). `EPIPE` if the reader is gone.
    #[cold]
    fn wait_for_reader(&self) -> Result<()> {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut fds = [PollFd::new(&self.pipe, PollFlags::empty())];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        retry(|| poll(&mut fds, Some(&zero)))?;
        if fds[0].revents().contains(PollFlags::ERR) {
            return Err(Errno::PIPE);
        }
        let pause = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000,
        };
        let _ = rustix::thread::nanosleep(&pause);
        Ok(())
    }

    /// Hands `n` bytes at the write position to the pipe, all of them.
    fn splice(&mut self, n: usize) -> Result<()> {
        let mut done = 0;
        let result = sys::without_sigpipe(|| {
            while done < n {
                // SAFETY: bytes inside the ring, free until now; from here
                // the pipe holds their pages and this writer does not write
                // them again until `refresh_consumed` says they were read.
                let slice = unsafe {
                    core::slice::from_raw_parts(self.at(self.written + done as u64), n - done)
                };
                let iov = [IoSliceRaw::from_slice(slice)];
                // SAFETY: as above: the memory stays mapped and unwritten
                // while the pipe holds it (and once unmapped, its pages stay
                // alive in the pipe): vmsplice's contract without GIFT.
                match unsafe { vmsplice(&self.pipe, &iov, SpliceFlags::empty()) } {
                    Ok(k) => done += k,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        // What was handed over is the pipe's, error or not.
        self.written += done as u64;
        result
    }

    /// Gives back the write end; the buffer is unmapped (pages still in the
    /// pipe stay there, unchanged, until read).
    pub fn into_inner(self) -> WriteEnd {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped: the pipe is moved out once and
        // the buffer unmapped once, below.
        let pipe = unsafe { core::ptr::read(&this.pipe) };
        this.unmap();
        pipe
    }

    fn unmap(&self) {
        // SAFETY: our own mapping; nothing borrows it (any borrow of the
        // buffer borrows self).
        let _ = unsafe { munmap(self.buf.as_ptr().cast(), self.len) };
    }
}

impl Drop for SpliceWriter {
    fn drop(&mut self) {
        self.unmap();
    }
}

impl core::fmt::Debug for SpliceWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpliceWriter")
            .field("pipe", &self.pipe)
            .field("buffer_len", &self.len)
            .field("written", &self.written)
            .finish()
    }
}
