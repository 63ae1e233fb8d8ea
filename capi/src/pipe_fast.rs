//! The C ABI of fast pipes (`rawipc::pipe::set_capacity` and
//! `SpliceWriter`): rawipc's own calls, with rawipc's conventions; the pipe
//! mirrors (`rawipc_pipe`, `rawipc_write`) stay in mirrors.rs.

use core::ffi::{c_int, c_void};

use rawipc_core::pipe::{self, SpliceWriter, WriteEnd};
use rawipc_core::{Errno, FromRawFd, IntoRawFd, OwnedFd};

use crate::{borrow_fd, buffer, fail, handle, ret_int, ret_len, ssize_t};

/// Returns the capacity in bytes of the pipe `fd` is an end of
/// (fcntl F_GETPIPE_SZ), or -1 with errno EBADF (`fd` not open, or not a
/// pipe).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_pipe_capacity(fd: c_int) -> ssize_t {
    ret_len(borrow_fd(fd).and_then(pipe::capacity))
}

/// Sets the capacity of the pipe `fd` is an end of to at least `size` bytes
/// (fcntl F_SETPIPE_SZ; the kernel rounds up to a power of two pages). A
/// pipe holds 64 KiB by default; a larger one lets large writes run several
/// times faster.
///
/// Returns the capacity set, or -1 with errno set: EPERM (above
/// rawipc_pipe_max_capacity for a process without CAP_SYS_RESOURCE, or the
/// user's pipes hold too many pages already: nothing is changed, never less
/// set quietly), EBUSY (the pipe holds more than `size` bytes now), EINVAL
/// (`size` 0 or above 2^31), EBADF (`fd` not open, or not a pipe), ENOMEM.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_pipe_set_capacity(fd: c_int, size: usize) -> ssize_t {
    ret_len(borrow_fd(fd).and_then(|fd| pipe::set_capacity(fd, size)))
}

/// Returns the largest capacity a process without CAP_SYS_RESOURCE may give
/// a pipe (/proc/sys/fs/pipe-max-size), or -1 with errno set (ENOENT or
/// EACCES: /proc is not there or not readable).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_pipe_max_capacity() -> ssize_t {
    ret_len(pipe::max_capacity())
}

/// A vmsplice writer's handle, in memory of the caller's. Its contents are
/// private; do not copy it: pass pointers to it.
#[repr(C)]
pub struct rawipc_splice_writer {
    _private: [u64; 8],
}

// SAFETY: a repr(C) struct of private bytes, and a magic of its own.
unsafe impl handle::Kind for rawipc_splice_writer {
    type State = SpliceWriter;
    const MAGIC: u64 = 0x7261_7769_7063_7370; // "rawipcsp"
}

/// Makes a vmsplice writer of the pipe write end `fd` and stores its handle
/// in `*w`: sets the pipe's capacity to at least `capacity` bytes (as
/// rawipc_pipe_set_capacity) and maps a buffer of the writer's own, twice
/// that. The writer then owns `fd`: rawipc_splice_writer_close closes it.
///
/// Writes copy the caller's bytes into that buffer and hand its pages to the
/// pipe (vmsplice(2)) instead of copying them into the kernel; a page is
/// written again only once the pipe shows it was read, so what the reader
/// gets is always what was written. The reader must read the pipe (read(2),
/// readv(2)), not splice(2) or tee(2) it onward: pages moved on that way
/// leave the pipe while still the writer's.
///
/// Returns 0, or -1 with errno set (and `fd` still the caller's): EINVAL
/// (`w` NULL), EBADF, EPERM, EBUSY, ENOMEM as rawipc_pipe_set_capacity.
///
/// # Safety
/// A non-NULL `w` must point to writable memory for a
/// `rawipc_splice_writer`, which must not hold a writer still open; `fd`
/// must not be closed by anything else while the writer owns it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_splice_writer_create(
    w: *mut rawipc_splice_writer,
    fd: c_int,
    capacity: usize,
) -> c_int {
    let make = || {
        borrow_fd(fd).and_then(pipe::capacity)?;
        // SAFETY: an open pipe fd (checked above) that the caller hands over.
        let end = WriteEnd::from(unsafe { OwnedFd::from_raw_fd(fd) });
        SpliceWriter::try_new(end, capacity).map_err(|(e, end)| {
            // Given back to the caller, not closed.
            let _ = OwnedFd::from(end).into_raw_fd();
            e
        })
    };
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::put(w, make) }
}

/// Writes all `len` bytes at `buf` to the pipe, waiting while it is full.
///
/// Returns `len`, or -1 with errno set: EPIPE (no reader left; never
/// SIGPIPE), EFAULT (`buf` NULL with `len` above 0), EBUSY (a reservation
/// is not committed), EINVAL (`w` NULL or not made). A write that fails
/// part way may have handed over some of the bytes.
///
/// # Safety
/// A non-NULL `w` must point to a `rawipc_splice_writer`; a non-NULL `buf`
/// to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_splice_writer_write(
    w: *mut rawipc_splice_writer,
    buf: *const c_void,
    len: usize,
) -> ssize_t {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let writer = unsafe { handle::state_mut(w) }?;
        // SAFETY: the caller's promise is passed on.
        let data = unsafe { buffer(buf, len) }?;
        writer.write_all(data).map_err(|e| e.errno)?;
        Ok(len)
    })();
    ret_len(r)
}

/// Lends out up to `len` bytes of the writer's free buffer, waiting for the
/// reader to make room if need be, to be filled in place and handed over
/// with rawipc_splice_writer_commit (zero-copy). Stores how many bytes were
/// lent in `*got` (fewer than `len` where the buffer wraps, at least one).
/// Reserving again before committing starts over.
///
/// Returns the address, or NULL with errno set: EINVAL (`len` 0, `w` NULL or
/// not made), EFAULT (`got` NULL), EPIPE (no reader left).
///
/// # Safety
/// A non-NULL `w` must point to a `rawipc_splice_writer`; a non-NULL `got`
/// to a writable `size_t`. The bytes returned may be written only until the
/// next call on `w`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_splice_writer_reserve(
    w: *mut rawipc_splice_writer,
    len: usize,
    got: *mut usize,
) -> *mut c_void {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let writer = unsafe { handle::state_mut(w) }?;
        if got.is_null() {
            return Err(Errno::FAULT);
        }
        let room = writer.reserve(len)?;
        let (p, n) = (room.as_mut_ptr(), room.len());
        // SAFETY: the caller's promise above.
        unsafe { got.write(n) };
        Ok(p.cast::<c_void>())
    })();
    r.unwrap_or_else(fail)
}

/// Hands the first `len` bytes of the reservation to the pipe, waiting
/// while it is full.
///
/// Returns 0, or -1 with errno set: EINVAL (`len` 0 or above what was
/// reserved, nothing reserved, `w` NULL or not made), EPIPE (no reader left).
///
/// # Safety
/// A non-NULL `w` must point to a `rawipc_splice_writer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_splice_writer_commit(
    w: *mut rawipc_splice_writer,
    len: usize,
) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        unsafe { handle::state_mut(w) }?.commit(len)
    })();
    ret_int(r)
}

/// Closes the writer and its pipe end (the reader gets end of file after
/// the bytes written) and unmaps its buffer; pages still in the pipe stay
/// there, unchanged, until read.
///
/// Returns 0, or -1 with errno EINVAL (`w` NULL, not made, or closed).
///
/// # Safety
/// A non-NULL `w` must point to a `rawipc_splice_writer`; no pointer from
/// rawipc_splice_writer_reserve may be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_splice_writer_close(w: *mut rawipc_splice_writer) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::close(w) }
}
