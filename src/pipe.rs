//! Pipes: a one-way byte stream from a write end to a read end.
//!
//! The notes' pattern: make the pipe, fork, and in each process close the end
//! it does not use (drop it). The reader then reads until `read` returns 0,
//! end of file, which comes once every write end is closed: that is how the
//! parent learns that the child died.
//!
//! Writing to a pipe whose read ends are all closed fails with `EPIPE`; rawipc
//! never lets it raise `SIGPIPE` (which kills a process by default), and never
//! changes the process's SIGPIPE disposition to get there.
//!
//! These are Rust's conventions, as `std` has them: both ends are
//! close-on-exec, `EINTR` is retried, `EPIPE` never comes with `SIGPIPE`.
//! The C library's mirrors (`rawipc_pipe`, `rawipc_read`, `rawipc_write`)
//! instead behave exactly as `pipe(2)`, `read(2)` and `write(2)`: inherited by
//! `exec`, `EINTR` when a handler without `SA_RESTART` interrupts them,
//! `SIGPIPE` raised. The C calls with this module's conventions are
//! `rawipc_write_all` and `rawipc_read_full`.

use core::time::Duration;

use rustix::event::PollFlags;
use rustix::io;
use rustix::pipe::{PipeFlags, pipe_with};

use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, deadline, retry, sys};

mod fast;
pub use fast::{SpliceWriter, capacity, max_capacity, set_capacity};

/// The read end of a pipe; closed on drop.
#[derive(Debug)]
pub struct ReadEnd(OwnedFd);

/// The write end of a pipe; closed on drop.
#[derive(Debug)]
pub struct WriteEnd(OwnedFd);

/// `pipe2(fds, O_CLOEXEC)`: makes a pipe and returns its read end and write end.
///
/// Both ends are inherited by `fork` and closed by `exec` (`dup2` one onto
/// standard input or output to hand it to an exec'd program).
///
/// Errors: `EMFILE`/`ENFILE` when out of file descriptors.
///
/// # References
/// - [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html)
#[doc(alias = "pipe2")]
pub fn pipe() -> Result<(ReadEnd, WriteEnd)> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
    Ok((ReadEnd(read), WriteEnd(write)))
}

/// `pipe2(fds, O_CLOEXEC | O_NONBLOCK)`: as [`pipe`], both ends
/// non-blocking: a read with nothing to read and a write with no room fail
/// with `EAGAIN` instead of waiting (end of file is still 0). See
/// [`ReadEnd::set_nonblocking`].
///
/// Errors: as [`pipe`].
#[doc(alias = "O_NONBLOCK")]
pub fn pipe_nonblocking() -> Result<(ReadEnd, WriteEnd)> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    Ok((ReadEnd(read), WriteEnd(write)))
}

/// `read(fd, buf, len)`, retried on `EINTR`: reads at most `buf.len()` bytes.
///
/// Returns 0 at end of file: for a pipe, once every write end is closed and
/// everything written has been read.
///
/// # References
/// - [read(2)](https://man7.org/linux/man-pages/man2/read.2.html)
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    let fd = fd.as_fd();
    crate::explain::before_read(fd, buf.len());
    retry(|| io::read(fd, &mut *buf))
}

/// As [`read`], but waits at most `timeout` for something to read (`poll`),
/// then fails with `ETIMEDOUT`, having read nothing (a zero `timeout` does
/// not wait). End of file (every writer gone) gives 0 at once, never
/// `ETIMEDOUT`. Works the same on a non-blocking fd. Meant for one reader
/// per pipe: another reading the same pipe may take the bytes between the
/// `poll` and the `read` (on a blocking fd the read then waits for more).
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
/// - [read(2)](https://man7.org/linux/man-pages/man2/read.2.html)
pub fn read_timeout(fd: impl AsFd, buf: &mut [u8], timeout: Duration) -> Result<usize> {
    let fd = fd.as_fd();
    if !buf.is_empty() {
        deadline::wait_ready(fd, PollFlags::IN, deadline::after(timeout))?;
    }
    read(fd, buf)
}

/// A write that failed after part of the buffer was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteError {
    /// How many bytes were written before the error.
    pub written: usize,
    /// The error.
    pub errno: Errno,
}

impl From<WriteError> for Errno {
    fn from(e: WriteError) -> Errno {
        e.errno
    }
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} after writing {} bytes", self.errno, self.written)
    }
}

/// So that `?` takes it into a `Box<dyn Error>`.
impl core::error::Error for WriteError {}

/// So that `end.write_all(buf)?` works in a function returning
/// `std::io::Result`: the error number, as `std::io::Write::write_all`
/// reports it (the count written is dropped).
#[cfg(feature = "std")]
impl From<WriteError> for std::io::Error {
    fn from(e: WriteError) -> std::io::Error {
        e.errno.into()
    }
}

/// `write(fd, buf, len)` until all of `buf` is written, retried on `EINTR`
/// and on short writes, with `EPIPE` instead of `SIGPIPE`.
///
/// An empty `buf` makes one empty write (which still reports a bad fd).
/// SIGPIPE is kept away without touching the process's disposition, and the
/// thread's signal mask and pending signals are left as they were: on Linux
/// 6.18 and later each write is `pwritev2(..., RWF_NOSIGNAL)`, before that a
/// `write` with SIGPIPE blocked for the thread meanwhile.
///
/// # References
/// - [write(2)](https://man7.org/linux/man-pages/man2/write.2.html)
/// - [pwritev2(2)](https://man7.org/linux/man-pages/man2/pwritev2.2.html)
#[doc(alias = "write")]
pub fn write_all(fd: impl AsFd, buf: &[u8]) -> core::result::Result<(), WriteError> {
    // SAFETY: `buf` is `buf.len()` readable bytes.
    unsafe { write_all_raw(fd.as_fd(), buf.as_ptr(), buf.len()) }
}

/// [`write_all`] of the `len` bytes at a raw address, for callers (such as
/// rawipc's C library) whose buffer may not be valid: the kernel checks it,
/// and a bad address gives `EFAULT` (after the bytes before it, if any, were
/// written), never a fault in the caller.
///
/// # Safety
/// The bytes at `buf..buf + len` that are mapped go into the file: they must
/// be bytes the caller may let out. Nothing is written to that memory.
pub unsafe fn write_all_raw(
    fd: BorrowedFd<'_>,
    buf: *const u8,
    len: usize,
) -> core::result::Result<(), WriteError> {
    let mut written = 0;
    loop {
        // SAFETY: the caller's promise; `written <= len`, so the pointer
        // stays within (or one past) the caller's range. `wrapping_add`
        // forms no reference and cannot overflow into UB.
        match unsafe { sys::write_no_sigpipe(fd, buf.wrapping_add(written), len - written) } {
            Ok(n) => written += n,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(WriteError { written, errno }),
        }
        if written >= len {
            return Ok(());
        }
    }
}

impl ReadEnd {
    /// Reads at most `buf.len()` bytes; 0 means end of file. See [`read`].
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        read(self, buf)
    }

    /// Reads at most `buf.len()` bytes, waiting at most `timeout`. See
    /// [`read_timeout`].
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        read_timeout(self, buf, timeout)
    }

    /// Reads until `buf` is full or end of file; returns how many bytes it got.
    pub fn read_full(&self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match read(self, buf.get_mut(got..).unwrap_or(&mut []))? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    }
}

impl WriteEnd {
    /// Writes all of `buf`. See [`write_all`].
    ///
    /// Its error, [`WriteError`], converts into [`Errno`] and, with the `std`
    /// feature, into `std::io::Error`, so `?` works in functions returning
    /// [`crate::Result`], `std::io::Result` or `Box<dyn Error>`.
    pub fn write_all(&self, buf: &[u8]) -> core::result::Result<(), WriteError> {
        write_all(self, buf)
    }
}

/// What every rawipc type that owns an fd has: [`AsFd`], conversions to and
/// from [`OwnedFd`] and raw fds, `try_clone`, and with the `std` feature,
/// `From` into `std::process::Stdio`. `$adopt` documents `From<OwnedFd>`.
macro_rules! fd_conversions {
    ($($end:ident: $adopt:literal),* $(,)?) => { $(
        impl $end {
            /// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: another fd, close-on-exec,
            /// for the same open file (closing one leaves the other open).
            ///
            /// Errors: `EMFILE`/`ENFILE` when out of file descriptors.
            ///
            /// # References
            /// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html)
            #[doc(alias = "dup")]
            pub fn try_clone(&self) -> $crate::Result<Self> {
                Ok($end(rustix::io::fcntl_dupfd_cloexec(&self.0, 0)?))
            }

            /// `ioctl(fd, FIONBIO, &nonblocking)`: makes the fd non-blocking (or
            /// blocking again). Non-blocking, a call that would wait fails
            /// with `EAGAIN` instead; the calls with a timeout still wait
            /// up to theirs. The flag belongs to the open file: it is shared
            /// with the fd's duplicates and with its copies in forked
            /// children.
            ///
            /// # References
            /// - [ioctl(2)](https://man7.org/linux/man-pages/man2/ioctl.2.html)
            #[doc(alias = "O_NONBLOCK")]
            pub fn set_nonblocking(&self, nonblocking: bool) -> $crate::Result<()> {
                rustix::io::ioctl_fionbio(&self.0, nonblocking)
            }
        }
        impl $crate::AsFd for $end {
            fn as_fd(&self) -> $crate::BorrowedFd<'_> {
                $crate::sys::borrow(&self.0)
            }
        }
        impl $crate::AsRawFd for $end {
            fn as_raw_fd(&self) -> $crate::RawFd {
                $crate::AsRawFd::as_raw_fd(&self.0)
            }
        }
        impl $crate::IntoRawFd for $end {
            fn into_raw_fd(self) -> $crate::RawFd {
                $crate::IntoRawFd::into_raw_fd(self.0)
            }
        }
        impl $crate::FromRawFd for $end {
            #[doc = $adopt]
            ///
            /// # Safety
            /// `fd` must be an open fd that nothing else owns (it is closed
            /// on drop).
            unsafe fn from_raw_fd(fd: $crate::RawFd) -> $end {
                // SAFETY: the caller's promise.
                $end(unsafe { <$crate::OwnedFd as $crate::FromRawFd>::from_raw_fd(fd) })
            }
        }
        impl From<$end> for $crate::OwnedFd {
            fn from(end: $end) -> $crate::OwnedFd {
                end.0
            }
        }
        impl From<$crate::OwnedFd> for $end {
            #[doc = $adopt]
            fn from(fd: $crate::OwnedFd) -> $end {
                $end(fd)
            }
        }
        /// For a child's standard input or output:
        /// `Command::new("wc").stdin(read_end)`.
        #[cfg(feature = "std")]
        impl From<$end> for std::process::Stdio {
            fn from(end: $end) -> std::process::Stdio {
                std::process::Stdio::from(end.0)
            }
        }
    )* };
}
pub(crate) use fd_conversions;
fd_conversions!(
    ReadEnd: "Adopts an fd as this end of a pipe (it need not be a pipe).",
    WriteEnd: "Adopts an fd as this end of a pipe (it need not be a pipe).",
);

#[cfg(feature = "std")]
impl std::io::Read for &ReadEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        ReadEnd::read(self, buf).map_err(Into::into)
    }
}

#[cfg(feature = "std")]
impl std::io::Read for ReadEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        ReadEnd::read(self, buf).map_err(Into::into)
    }
}

#[cfg(feature = "std")]
impl std::io::Write for &WriteEnd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One write at a time, so that a short count is reported, not hidden.
        match write_all(*self, buf) {
            Ok(()) => Ok(buf.len()),
            Err(WriteError { written, .. }) if written > 0 => Ok(written),
            Err(e) => Err(e.errno.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "std")]
impl std::io::Write for WriteEnd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
