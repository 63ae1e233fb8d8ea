//! Messages: whole messages over connected AF_UNIX SOCK_SEQPACKET sockets.

use core::ffi::{c_int, c_void};

use rawipc_core::{Errno, msg};

use crate::{borrow_fd, buffer, buffer_mut, fail, libc, ssize_t};

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

/// Sends the `len` bytes at `buf` as one message, retrying if a signal
/// interrupts.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` is 0: empty messages are
/// refused, so that a receive of 0 always means the peer is gone, or `len` >
/// SSIZE_MAX), EFAULT (`buf` NULL with `len` > 0), EMSGSIZE (larger than the
/// socket's send buffer), EPIPE (peer gone; never SIGPIPE), EBADF, ENOTSOCK.
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

/// Receives one whole message into `buf`, waiting for one, retrying if a
/// signal interrupts.
///
/// Returns the message's length; 0 when the peer is gone (every message it
/// sent has been received). On error returns -1 with errno set: EMSGSIZE if
/// the message is larger than `cap` (it stays queued: ask rawipc_msg_size and
/// receive it into a larger buffer), EFAULT (`buf` NULL with `cap` > 0),
/// EINVAL (`cap` > SSIZE_MAX), EBADF, ENOTSOCK, EAGAIN (non-blocking, none).
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

/// Returns the size of the next message on `fd` without receiving it,
/// waiting for one; 0 when the peer is gone. On error returns -1 with errno
/// set: EBADF, ENOTSOCK, EAGAIN (non-blocking, none).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_msg_size(fd: c_int) -> ssize_t {
    match borrow_fd(fd).and_then(msg::next_size) {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}
