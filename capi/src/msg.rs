//! Messages: whole messages over connected AF_UNIX SOCK_SEQPACKET sockets.

use core::ffi::{c_int, c_void};
use core::time::Duration;

use rawipc_core::{BorrowedFd, Errno, IntoRawFd, OwnedFd, msg};

use crate::{borrow_fd, buffer, buffer_mut, fail, libc, ssize_t, timeout};

/// Makes two connected message sockets (AF_UNIX, SOCK_SEQPACKET), as
/// `socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds)` does: a message sent on
/// `fds[0]` is received whole on `fds[1]`, and the other way round. Both are
/// inherited by fork and by exec, and owned by the caller.
///
/// Returns 0, or -1 with errno set (and no fd made): EFAULT if `fds` is not
/// writable, EMFILE or ENFILE when out of file descriptors.
///
/// # Safety
/// As socketpair(): the kernel writes `fds`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_socketpair(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { rawipc_msg_socketpair2(fds, 0) }
}

/// rawipc_msg_socketpair with `flags`, an OR of SOCK_CLOEXEC (closed on exec)
/// and SOCK_NONBLOCK (both non-blocking); EINVAL for any other bit.
///
/// # Safety
/// As socketpair(): the kernel writes `fds`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_socketpair2(fds: *mut c_int, flags: c_int) -> c_int {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let Some(flags) = u32::try_from(flags).ok().and_then(|f| {
        SocketFlags::from_bits(f)
            .filter(|f| (SocketFlags::CLOEXEC | SocketFlags::NONBLOCK).contains(*f))
    }) else {
        return fail(Errno::INVAL);
    };
    let kind = SocketType::SEQPACKET.as_raw() | flags.bits();
    // SAFETY: the caller's pointer goes to the kernel, which checks it (and
    // closes the two sockets again if it cannot store them).
    unsafe { libc::socketpair(AddressFamily::UNIX.as_raw().into(), kind as c_int, 0, fds) }
}

/// The largest message rawipc_msg_send sends and rawipc_msg_recv receives
/// (1 GiB): one read and one write of the kernel's carry it, it fits in an
/// int, and it caps the buffer a peer can make a receiver allocate.
pub const RAWIPC_MSG_MAX_SIZE: usize = 1 << 30;
const _: () = assert!(RAWIPC_MSG_MAX_SIZE == msg::MAX_SIZE);

/// Sends the `len` bytes at `buf` as one message, retrying if a signal
/// interrupts. Any size up to RAWIPC_MSG_MAX_SIZE: a message larger than
/// the socket takes (its send buffer, ~208 KiB by default) is written into a
/// memfd sealed against any change and passed with a 24-byte header
/// (SCM_RIGHTS); rawipc_msg_recv delivers the message itself.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` is 0: empty messages are
/// refused, so that a receive of 0 always means the peer is gone, or `len` >
/// SSIZE_MAX), EFAULT (`buf` NULL with `len` > 0), EMSGSIZE (larger than
/// RAWIPC_MSG_MAX_SIZE; nothing is sent), ENOMEM (no memory for a large
/// message), EMFILE or ENFILE (no fd for a large message's memfd),
/// ETOOMANYREFS (this user has too many fds in flight), EPIPE (peer gone;
/// never SIGPIPE), EBADF, ENOTSOCK.
///
/// # Safety
/// A non-NULL `buf` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_send(fd: c_int, buf: *const c_void, len: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let sent = borrow_fd(fd).and_then(|fd| msg::send(fd, unsafe { buffer(buf, len) }?));
    match sent {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// As rawipc_msg_send, but waits for room at most `timeout_ms` milliseconds
/// (-1: no bound; 0: no wait), then fails with ETIMEDOUT having sent
/// nothing, on a blocking socket or a non-blocking one. EINVAL also for
/// `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_msg_send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_send_timeout(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    timeout_ms: c_int,
) -> ssize_t {
    let sent = timeout(timeout_ms).and_then(|t| {
        let fd = borrow_fd(fd)?;
        // SAFETY: the caller's promise is passed on.
        let buf = unsafe { buffer(buf, len) }?;
        match t {
            None => msg::send(fd, buf),
            Some(t) => msg::send_timeout(fd, buf, t),
        }
    });
    match sent {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Receives one whole message into `buf`, waiting for one, retrying if a
/// signal interrupts.
///
/// Returns the message's length; 0 when the peer is gone (every message it
/// sent has been received). A large message (see rawipc_msg_send) is checked
/// (its fd must be a memfd sealed against writing, shrinking and growing,
/// of the announced size) and read into `buf`. On error returns -1 with
/// errno set: EMSGSIZE if the message is larger than `cap` (it stays queued:
/// ask rawipc_msg_size and receive it into a larger buffer) or carries file
/// descriptors (it stays queued, fds and all: receive it with
/// rawipc_msg_recv_fds), EBADMSG (a large message's header whose fd fails
/// the checks: it is taken off the queue, its fd closed, and the next
/// receive gets the next message), EMFILE (no fd free to look at a large
/// message's memfd; it stays queued), EFAULT (`buf` NULL with `cap` > 0),
/// EINVAL (`cap` > SSIZE_MAX), EBADF, ENOTSOCK, EPROTOTYPE (a stream socket,
/// which keeps no message boundaries, or a datagram socket with nothing
/// queued, which would never tell that its peer is gone), EAGAIN
/// (non-blocking, none).
///
/// # Safety
/// A non-NULL `buf` must point to `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_recv(fd: c_int, buf: *mut c_void, cap: usize) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    let got = borrow_fd(fd).and_then(|fd| msg::recv(fd, unsafe { buffer_mut(buf, cap) }?));
    match got {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// As rawipc_msg_recv, but waits at most `timeout_ms` milliseconds (-1: no
/// bound; 0: no wait), then fails with ETIMEDOUT, taking nothing, on a
/// blocking socket or a non-blocking one. A peer that is gone gives 0 at
/// once (once its messages are all received), never ETIMEDOUT. EINVAL also
/// for `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_msg_recv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_recv_timeout(
    fd: c_int,
    buf: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> ssize_t {
    let got = timeout(timeout_ms).and_then(|t| {
        let fd = borrow_fd(fd)?;
        // SAFETY: the caller's promise is passed on.
        let buf = unsafe { buffer_mut(buf, cap) }?;
        match t {
            None => msg::recv(fd, buf),
            Some(t) => msg::recv_timeout(fd, buf, t),
        }
    });
    match got {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Returns the size of the next message on `fd` without receiving it,
/// waiting for one; 0 when the peer is gone. For a large message it is the
/// message's own size (up to RAWIPC_MSG_MAX_SIZE), the buffer
/// rawipc_msg_recv needs. On error returns -1 with errno set: EMSGSIZE if the
/// message carries file descriptors (it stays queued: rawipc_msg_recv_fds
/// receives it, and on EMSGSIZE tells how many), EBADMSG and EMFILE as
/// rawipc_msg_recv, EBADF, ENOTSOCK, EPROTOTYPE (as rawipc_msg_recv), EAGAIN
/// (non-blocking, none).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_msg_size(fd: c_int) -> ssize_t {
    match borrow_fd(fd).and_then(msg::next_size) {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// As rawipc_msg_size, but waits at most `timeout_ms` milliseconds (-1: no
/// bound; 0: no wait) for a message, then fails with ETIMEDOUT. EINVAL for
/// `timeout_ms` below -1.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_msg_size_timeout(fd: c_int, timeout_ms: c_int) -> ssize_t {
    let size = timeout(timeout_ms).and_then(|t| match t {
        None => borrow_fd(fd).and_then(msg::next_size),
        Some(t) => borrow_fd(fd).and_then(|fd| msg::next_size_timeout(fd, t)),
    });
    match size {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// The most file descriptors one message carries (the kernel's SCM_MAX_FD).
pub const RAWIPC_MSG_MAX_FDS: usize = 253;
const _: () = assert!(RAWIPC_MSG_MAX_FDS == msg::MAX_FDS);

/// Sends the `len` bytes at `buf` as one message, with copies of the `nfds`
/// file descriptors at `fds` (SCM_RIGHTS): the receiver gets new fds for the
/// same open files; the caller's stay open and remain the caller's.
/// Retried if a signal interrupts.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` 0, `nfds` above
/// RAWIPC_MSG_MAX_FDS, `len` > SSIZE_MAX, or the 24 bytes and one fd of a
/// large message's header, which rawipc_msg_recv would take for one),
/// EFAULT (`buf` NULL with `len` > 0, `fds` NULL with `nfds` > 0), EBADF (an
/// fd in `fds` is not open), EMSGSIZE (larger than the socket's send buffer:
/// fds travel only with messages the socket takes whole), EPIPE (peer gone; never SIGPIPE),
/// ETOOMANYREFS (this user has too many fds in flight), ENOTSOCK.
///
/// # Safety
/// A non-NULL `buf` must point to `len` readable bytes, a non-NULL `fds` to
/// `nfds` ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_send_fds(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    fds: *const c_int,
    nfds: usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    unsafe { send_fds(fd, buf, len, fds, nfds, None) }
}

/// As rawipc_msg_send_fds, but waits for room at most `timeout_ms`
/// milliseconds (-1: no bound; 0: no wait), then fails with ETIMEDOUT
/// having sent nothing. EINVAL also for `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_msg_send_fds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_send_fds_timeout(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    fds: *const c_int,
    nfds: usize,
    timeout_ms: c_int,
) -> ssize_t {
    match timeout(timeout_ms) {
        // SAFETY: the caller's promise is passed on.
        Ok(t) => unsafe { send_fds(fd, buf, len, fds, nfds, t) },
        Err(e) => fail(e),
    }
}

/// # Safety
/// As rawipc_msg_send_fds.
unsafe fn send_fds(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    fds: *const c_int,
    nfds: usize,
    wait: Option<Duration>,
) -> ssize_t {
    let sent = (|| {
        let fd = borrow_fd(fd)?;
        // SAFETY: the caller's promise is passed on.
        let buf = unsafe { buffer(buf, len) }?;
        if nfds > msg::MAX_FDS || len == 0 {
            return Err(Errno::INVAL);
        }
        if nfds > 0 && fds.is_null() {
            return Err(Errno::FAULT);
        }
        // A copy of the caller's list, each fd checked to be one.
        let mut list: [c_int; msg::MAX_FDS] = [0; msg::MAX_FDS];
        for (i, slot) in list.iter_mut().take(nfds).enumerate() {
            // SAFETY: the caller's promise: `nfds` readable ints.
            *slot = unsafe { fds.add(i).read() };
            borrow_fd(*slot)?;
        }
        // SAFETY: BorrowedFd is a repr(transparent) int that is never -1;
        // the first `nfds` are the caller's fds, all non-negative (checked),
        // borrowed for this call only.
        let borrowed: &[BorrowedFd<'_>] =
            unsafe { core::slice::from_raw_parts(list.as_ptr().cast(), nfds) };
        match wait {
            None => msg::send_fds(fd, buf, borrowed),
            Some(t) => msg::send_fds_timeout(fd, buf, borrowed, t),
        }
    })();
    match sent {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

/// Receives one whole message into `buf` and the file descriptors sent with
/// it into `fds`, waiting for one; retried if a signal interrupts.
/// `*nfds` is the room in `fds` on entry and the number of fds received on
/// return. Received fds are new, close-on-exec, and the caller's.
///
/// Returns the message's length; 0 with `*nfds` 0 when the peer is gone
/// (every message it sent has been received). A large message (see
/// rawipc_msg_send) is received as rawipc_msg_recv does, with no fds. On
/// error returns -1 with errno
/// set, and nothing is lost: the message and all its fds stay queued.
/// - EMSGSIZE: the message is longer than `cap` or carries more fds than
///   `*nfds`; `*nfds` is then set to the number it carries (rawipc_msg_size
///   tells its length). Receive it with more room.
/// - EMFILE: this process has too few free fds for the message's fds.
/// - EBADMSG: a large message's header whose fd fails the checks (it is
///   taken off the queue, as rawipc_msg_recv does).
/// - EFAULT (`buf` NULL with `cap` > 0, `nfds` NULL, `fds` NULL with `*nfds`
///   > 0), EINVAL (`cap` > SSIZE_MAX), EBADF, ENOTSOCK, EAGAIN (non-blocking).
///
/// One receiver per socket end: the message is looked at, then taken.
///
/// # Safety
/// A non-NULL `buf` must point to `cap` writable bytes, a non-NULL `nfds` to
/// a writable size_t, and a non-NULL `fds` to `*nfds` writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_recv_fds(
    fd: c_int,
    buf: *mut c_void,
    cap: usize,
    fds: *mut c_int,
    nfds: *mut usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    unsafe { recv_fds(fd, buf, cap, fds, nfds, None) }
}

/// As rawipc_msg_recv_fds, but waits at most `timeout_ms` milliseconds (-1:
/// no bound; 0: no wait), then fails with ETIMEDOUT, taking nothing. EINVAL
/// also for `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_msg_recv_fds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_recv_fds_timeout(
    fd: c_int,
    buf: *mut c_void,
    cap: usize,
    fds: *mut c_int,
    nfds: *mut usize,
    timeout_ms: c_int,
) -> ssize_t {
    match timeout(timeout_ms) {
        // SAFETY: the caller's promise is passed on.
        Ok(t) => unsafe { recv_fds(fd, buf, cap, fds, nfds, t) },
        Err(e) => fail(e),
    }
}

/// # Safety
/// As rawipc_msg_recv_fds.
unsafe fn recv_fds(
    fd: c_int,
    buf: *mut c_void,
    cap: usize,
    fds: *mut c_int,
    nfds: *mut usize,
    wait: Option<Duration>,
) -> ssize_t {
    if nfds.is_null() {
        return fail(Errno::FAULT);
    }
    // SAFETY: the caller's promise: a readable size_t.
    let room = unsafe { nfds.read() };
    if room > 0 && fds.is_null() {
        return fail(Errno::FAULT);
    }
    let mut got: [Option<OwnedFd>; msg::MAX_FDS] = [const { None }; msg::MAX_FDS];
    let room = room.min(msg::MAX_FDS);
    let result = borrow_fd(fd).and_then(|fd| {
        // SAFETY: the caller's promise is passed on.
        let buf = unsafe { buffer_mut(buf, cap) }?;
        let received = match wait {
            None => msg::recv_fds(fd, buf, &mut got[..room]),
            Some(t) => msg::recv_fds_timeout(fd, buf, &mut got[..room], t),
        };
        match received {
            Err(Errno::MSGSIZE) => {
                // Tell how many fds it carries (the message stays queued).
                if let Ok((_, needed)) = msg::next_sizes(fd) {
                    // SAFETY: as above, writable.
                    unsafe { nfds.write(needed) };
                }
                Err(Errno::MSGSIZE)
            }
            other => other,
        }
    });
    match result {
        Ok((len, n)) => {
            for (i, fd) in got.iter_mut().take(n).enumerate() {
                if let Some(fd) = fd.take() {
                    // SAFETY: the caller's promise: `*nfds` >= n writable ints.
                    unsafe { fds.add(i).write(fd.into_raw_fd()) };
                }
            }
            // SAFETY: as above.
            unsafe { nfds.write(n) };
            len as ssize_t
        }
        Err(e) => fail(e),
    }
}
