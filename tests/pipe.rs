//! rawipc::pipe in one process: close-on-exec, order, end of file, empty and
//! failed reads and writes. Across fork (a writer that dies, large
//! transfers, EINTR, SIGPIPE) see tests/fork/.

use rawipc::pipe::{self, ReadEnd, WriteEnd, WriteError, pipe};
use rawipc::{AsFd, AsRawFd, BorrowedFd, Errno, OwnedFd};
use rustix::io::{FdFlags, fcntl_getfd, ioctl_fionbio};

/// A fd number that is not open in this process: fds are handed out lowest
/// first, and this test binary never holds thousands.
fn never_opened_fd() -> BorrowedFd<'static> {
    const FD: i32 = 9_998;
    // SAFETY: the fd is not open, which is the point: rawipc passes the number
    // to the kernel, which answers EBADF; nothing dereferences it.
    let fd = unsafe { BorrowedFd::borrow_raw(FD) };
    assert_eq!(fcntl_getfd(fd), Err(Errno::BADF), "fd {FD} is open");
    fd
}

#[test]
fn both_ends_are_close_on_exec() {
    let (r, w) = pipe().unwrap();
    assert!(fcntl_getfd(&r).unwrap().contains(FdFlags::CLOEXEC));
    assert!(fcntl_getfd(&w).unwrap().contains(FdFlags::CLOEXEC));
    assert_ne!(r.as_fd().as_raw_fd(), w.as_fd().as_raw_fd());
}

#[test]
fn data_goes_through_in_order() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"first ").unwrap();
    w.write_all(b"second ").unwrap();
    pipe::write_all(&w, b"third").unwrap();
    let mut buf = [0u8; 18];
    assert_eq!(r.read_full(&mut buf), Ok(18));
    assert_eq!(&buf, b"first second third");
}

#[test]
fn read_returns_what_is_there_without_waiting_for_more() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"abc").unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(r.read(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    w.write_all(b"de").unwrap();
    assert_eq!(pipe::read(&r, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"de");
}

#[test]
fn eof_once_the_only_write_end_is_dropped() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"bye").unwrap();
    drop(w);
    let mut buf = [0u8; 8];
    // What was written comes first, then end of file, for good.
    assert_eq!(r.read(&mut buf), Ok(3));
    assert_eq!(r.read(&mut buf), Ok(0));
    assert_eq!(r.read(&mut buf), Ok(0));
}

#[test]
fn read_full_stops_short_at_eof() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"12345").unwrap();
    drop(w);
    let mut buf = [0u8; 8];
    assert_eq!(r.read_full(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"12345");
    assert_eq!(r.read_full(&mut buf), Ok(0));
}

#[test]
fn read_full_into_an_empty_buffer_reads_nothing() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"kept").unwrap();
    // Would block forever if it called read(2) on a pipe whose writer lives.
    assert_eq!(r.read_full(&mut []), Ok(0));
    let mut buf = [0u8; 4];
    assert_eq!(r.read_full(&mut buf), Ok(4));
    assert_eq!(&buf, b"kept");
}

#[test]
fn empty_write_all_is_ok_and_writes_nothing() {
    let (r, w) = pipe().unwrap();
    assert_eq!(w.write_all(&[]), Ok(()));
    assert_eq!(pipe::write_all(&w, &[]), Ok(()));
    ioctl_fionbio(&r, true).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(r.read(&mut buf), Err(Errno::AGAIN));
}

#[test]
fn nonblocking_read_end_with_nothing_is_eagain() {
    let (r, w) = pipe().unwrap();
    ioctl_fionbio(&r, true).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(r.read(&mut buf), Err(Errno::AGAIN));
    assert_eq!(r.read_full(&mut buf), Err(Errno::AGAIN));
    w.write_all(b"x").unwrap();
    assert_eq!(r.read(&mut buf), Ok(1));
}

#[test]
fn nonblocking_write_end_on_a_full_pipe_reports_what_it_wrote() {
    let (r, w) = pipe().unwrap();
    ioctl_fionbio(&w, true).unwrap();
    let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    let data = vec![1u8; capacity + 1];
    assert_eq!(
        w.write_all(&data),
        Err(WriteError {
            written: capacity,
            errno: Errno::AGAIN
        })
    );
    assert_eq!(
        w.write_all(b"more"),
        Err(WriteError {
            written: 0,
            errno: Errno::AGAIN
        })
    );
    drop(r);
}

#[test]
fn never_opened_fd_is_ebadf() {
    let fd = never_opened_fd();
    let mut buf = [0u8; 4];
    assert_eq!(pipe::read(fd, &mut buf), Err(Errno::BADF));
    assert_eq!(
        pipe::write_all(fd, b"x"),
        Err(WriteError {
            written: 0,
            errno: Errno::BADF
        })
    );
    // An empty write still asks the kernel, which still checks the fd.
    assert_eq!(
        pipe::write_all(fd, &[]).map_err(Errno::from),
        Err(Errno::BADF)
    );
}

#[test]
fn wrong_end_is_ebadf() {
    let (r, w) = pipe().unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(pipe::read(&w, &mut buf), Err(Errno::BADF));
    assert_eq!(
        pipe::write_all(&r, b"x").map_err(|e| e.errno),
        Err(Errno::BADF)
    );
    // Swapped on purpose through the conversions from OwnedFd.
    let as_reader = ReadEnd::from(OwnedFd::from(w));
    let as_writer = WriteEnd::from(OwnedFd::from(r));
    assert_eq!(as_reader.read(&mut buf), Err(Errno::BADF));
    assert_eq!(as_reader.read_full(&mut buf), Err(Errno::BADF));
    assert_eq!(
        as_writer.write_all(b"x").map_err(|e| e.errno),
        Err(Errno::BADF)
    );
}

/// Without a reader the write fails with EPIPE, and nothing was written.
/// (This binary runs with SIGPIPE ignored, as every Rust program does, so
/// only the errno shows here; tests/fork/ shows that no SIGPIPE is raised.)
#[test]
fn write_without_a_reader_is_epipe() {
    let (r, w) = pipe().unwrap();
    drop(r);
    assert_eq!(
        w.write_all(b"lost"),
        Err(WriteError {
            written: 0,
            errno: Errno::PIPE
        })
    );
    assert_eq!(Errno::from(w.write_all(b"x").unwrap_err()), Errno::PIPE);
}

#[test]
fn owned_fd_conversions_keep_the_pipe() {
    let (r, w) = pipe().unwrap();
    let (r_raw, w_raw) = (r.as_fd().as_raw_fd(), w.as_fd().as_raw_fd());
    let r = ReadEnd::from(OwnedFd::from(r));
    let w = WriteEnd::from(OwnedFd::from(w));
    assert_eq!(
        (r.as_fd().as_raw_fd(), w.as_fd().as_raw_fd()),
        (r_raw, w_raw)
    );
    w.write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(r.read_full(&mut buf), Ok(2));
    assert_eq!(&buf, b"ok");
}

#[cfg(feature = "std")]
mod with_std {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn read_and_write_traits() {
        let (mut r, mut w) = pipe().unwrap();
        w.write_all(b"through std::io").unwrap();
        assert_eq!(Write::write(&mut w, b"!").unwrap(), 1);
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"through std::io!");
    }

    /// A write that fills a non-blocking pipe part way reports the short
    /// count; the next one, with no room left, the error.
    #[test]
    fn short_write_is_a_count_then_an_error() {
        let (r, mut w) = pipe().unwrap();
        ioctl_fionbio(&w, true).unwrap();
        let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
        let data = vec![1u8; capacity + 10];
        assert_eq!(Write::write(&mut w, &data).unwrap(), capacity);
        let err = Write::write(&mut w, &data).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        drop(r);
    }

    #[test]
    fn errors_become_io_errors() {
        let (r, mut w) = pipe().unwrap();
        drop(r);
        let err = Write::write(&mut w, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}

/// `write_all_raw` hands the address to the kernel: an unmapped buffer is
/// EFAULT with nothing written (never a fault in the caller), and the pipe
/// works afterwards.
#[test]
fn write_all_raw_of_an_unmapped_buffer_is_efault() {
    use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};
    // SAFETY: a fresh private mapping, unmapped at once: only its address
    // is kept, and never dereferenced.
    let gone = unsafe {
        let p = mmap_anonymous(
            core::ptr::null_mut(),
            4096,
            ProtFlags::READ,
            MapFlags::PRIVATE,
        )
        .unwrap();
        munmap(p, 4096).unwrap();
        p.cast::<u8>()
    };
    let (r, w) = pipe().unwrap();
    // SAFETY: nothing is mapped there; the kernel answers EFAULT.
    let err = unsafe { pipe::write_all_raw(w.as_fd(), gone, 100) }.unwrap_err();
    assert_eq!(
        err,
        WriteError {
            written: 0,
            errno: Errno::FAULT
        }
    );
    // SAFETY: a valid buffer.
    assert_eq!(
        unsafe { pipe::write_all_raw(w.as_fd(), b"ok".as_ptr(), 2) },
        Ok(())
    );
    let mut buf = [0u8; 4];
    assert_eq!(r.read(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ok");
}
