//! Messages: whole messages over connected AF_UNIX SOCK_SEQPACKET sockets.

use core::ffi::{c_int, c_void};

use rawipc_core::{Errno, msg};

use crate::{borrow_fd, buffer, buffer_mut, fail, give_pair, ssize_t};

/// Makes two connected message sockets (AF_UNIX, SOCK_SEQPACKET): a message
/// sent on `fds[0]` is received whole on `fds[1]`, and the other way round. Both
/// are inherited by fork, closed on exec, and owned by the caller.
///
/// Returns 0, or -1 with errno set (and `fds` untouched): EFAULT if `fds` is
/// NULL, EMFILE or ENFILE when out of file descriptors.
///
/// # Safety
/// A non-NULL `fds` must point to two writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_msg_socketpair(fds: *mut c_int) -> c_int {
    let pair = if fds.is_null() {
        Err(Errno::FAULT)
    } else {
        msg::socketpair().map(|(a, b)| (a.into(), b.into()))
    };
    // SAFETY: the caller's promise is passed on.
    unsafe { give_pair(fds, pair) }
}

/// Sends the `len` bytes at `buf` as one message, retrying if a signal
/// interrupts.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` is 0: empty messages are
/// refused, so that a receive of 0 always means the peer is gone, or `len` >
/// SSIZE_MAX), EFAULT (`buf` NULL with `len` > 0), EMSGSIZE (larger than the
/// socket's send buffer), EPIPE (peer gone; never SIGPIPE), EBADF, ENOTSOCK,
/// EPROTOTYPE (a socket, but not a SOCK_SEQPACKET one).
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
/// EINVAL (`cap` > SSIZE_MAX), EBADF, ENOTSOCK, EPROTOTYPE (a socket, but
/// not a SOCK_SEQPACKET one: a stream keeps no message boundaries, and a
/// datagram socket never tells that its peer is gone), EAGAIN
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

/// Returns the size of the next message on `fd` without receiving it,
/// waiting for one; 0 when the peer is gone. On error returns -1 with errno
/// set: EBADF, ENOTSOCK, EPROTOTYPE (not a SOCK_SEQPACKET socket), EAGAIN
/// (non-blocking, none).
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_msg_size(fd: c_int) -> ssize_t {
    match borrow_fd(fd).and_then(msg::next_size) {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}
