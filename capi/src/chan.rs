//! The C ABI of the shared-memory channel (`rawipc::chan`).
//!
//! A `rawipc_chan` is a handle in the caller's own memory (a local variable,
//! a global): the channel it names lives in shared memory that the handle
//! maps. Made before `fork`, it is turned in each process into its sending or
//! its receiving end, as a pipe's unused end is closed.

use core::ffi::{c_int, c_uint, c_void};
use core::ptr;

use rawipc_core::chan::{Channel, Receiver, Sender, handover};
use rawipc_core::{AsFd, AsRawFd, Errno};

use crate::{
    Wait, borrow_fd, buffer, buffer_mut, fail, handle, ret_int, ret_len, ssize_t, timeout,
};

/// A channel handle, in memory of the caller's (not shared memory). Its
/// contents are private; do not copy it (a copy would close the same file
/// descriptors twice): pass pointers to it.
#[repr(C)]
pub struct rawipc_chan {
    _private: [u64; 16],
}

/// What a channel handle holds.
pub(crate) enum State {
    /// Both ends: made, not yet given a side.
    Both(Channel),
    /// The sending end; `reserved` is the length of an uncommitted reservation.
    Sender { tx: Sender, reserved: usize },
    /// The receiving end (which knows whether a message is lent out).
    Receiver(Receiver),
}

// SAFETY: a repr(C) struct of private bytes, and a magic of its own.
unsafe impl handle::Kind for rawipc_chan {
    type State = State;
    const MAGIC: u64 = 0x7261_7769_7063_6368; // "rawipcch"
}

impl handle::Sided for rawipc_chan {
    type Both = Channel;
    fn both(state: State) -> Result<Channel, State> {
        match state {
            State::Both(c) => Ok(c),
            other => Err(other),
        }
    }
}

/// The sending end behind `chan`: EINVAL if it is not one.
///
/// # Safety
/// As [`handle::state_mut`].
unsafe fn sender<'a>(chan: *mut rawipc_chan) -> Result<(&'a mut Sender, &'a mut usize), Errno> {
    // SAFETY: the caller's promise is passed on.
    match unsafe { handle::state_mut(chan) }? {
        State::Sender { tx, reserved } => Ok((tx, reserved)),
        _ => Err(Errno::INVAL),
    }
}

/// The receiving end behind `chan`: EINVAL if it is not one.
///
/// # Safety
/// As [`handle::state_mut`].
unsafe fn receiver<'a>(chan: *mut rawipc_chan) -> Result<&'a mut Receiver, Errno> {
    // SAFETY: the caller's promise is passed on.
    match unsafe { handle::state_mut(chan) }? {
        State::Receiver(rx) => Ok(rx),
        _ => Err(Errno::INVAL),
    }
}

/// Makes a channel whose ring holds `capacity` bytes (rounded up to a power
/// of two, at least 1024), in shared memory inherited by children forked
/// afterwards, and stores its handle in `*chan`. Messages may be up to half
/// the ring less 80 bytes (rawipc_chan_max_message). After fork, each process
/// calls rawipc_chan_sender or rawipc_chan_receiver on its copy.
///
/// Returns 0, or -1 with errno set: EINVAL (`chan` NULL, `capacity` 0 or
/// above 2^30), ENOMEM, EMFILE/ENFILE (the channel holds two file
/// descriptors, through which each side learns that the other died).
///
/// # Safety
/// A non-NULL `chan` must point to writable memory for a `rawipc_chan`,
/// which must not hold a channel still open (it would be leaked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_create(chan: *mut rawipc_chan, capacity: usize) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::put(chan, || Channel::new(capacity).map(State::Both)) }
}

/// Makes this process the channel's sender: keeps the sending end and closes
/// the receiving one (the receiver then learns of this process's death).
///
/// Returns 0, or -1 with errno EINVAL (`chan` NULL, not made, or already
/// given a side).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_sender(chan: *mut rawipc_chan) -> c_int {
    // SAFETY: the caller's promise is passed on.
    ret_int(unsafe {
        handle::take_side(chan, |c| State::Sender {
            tx: c.into_sender(),
            reserved: 0,
        })
    })
}

/// Makes this process the channel's receiver: keeps the receiving end and
/// closes the sending one.
///
/// Returns 0, or -1 with errno EINVAL (`chan` NULL, not made, or already
/// given a side).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_receiver(chan: *mut rawipc_chan) -> c_int {
    // SAFETY: the caller's promise is passed on.
    ret_int(unsafe { handle::take_side(chan, |c| State::Receiver(c.into_receiver())) })
}

/// Closes the handle: unmaps the channel from this process and closes its
/// file descriptors. The peer then learns that this side is gone, after
/// receiving everything sent. A message still borrowed or space still
/// reserved is given up.
///
/// Returns 0, or -1 with errno EINVAL (`chan` NULL, not made, or closed).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`; no pointer from
/// rawipc_chan_reserve or rawipc_chan_recv_borrow may be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_close(chan: *mut rawipc_chan) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::close(chan) }
}

/// Sets how long a send or receive on this end spins, in nanoseconds, before
/// it sleeps in the kernel (default 50000). 0 makes it sleep at once
/// (blocking-only mode: no CPU spent waiting, each wake-up costs a system call).
///
/// Returns 0, or -1 with errno EINVAL (`chan` NULL or not given a side).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_set_spin(chan: *mut rawipc_chan, ns: c_uint) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let r = unsafe { handle::state_mut(chan) }.and_then(|state| match state {
        State::Sender { tx, .. } => {
            tx.set_spin(ns);
            Ok(())
        }
        State::Receiver(rx) => {
            rx.set_spin(ns);
            Ok(())
        }
        State::Both(_) => Err(Errno::INVAL),
    });
    ret_int(r)
}

/// Returns the channel end's readiness file descriptor, for poll(2),
/// epoll(7) or select(2): readable (POLLIN) when the end can make progress.
/// On a receiving end: a message is there, or the sender is gone. On a
/// sending end: room was freed, or the receiver is gone. The descriptor
/// belongs to the handle and is closed by rawipc_chan_close: do not close,
/// read or write it. Ask for POLLIN only (it is a socket, always writable).
///
/// The descriptor is armed by rawipc_chan_try_recv or rawipc_chan_try_send
/// failing with EAGAIN: that call asks the peer to wake this end through the
/// descriptor, then looks once more, so that nothing sent or freed in
/// between is missed. The peer writes to it only then (one byte per
/// arming): a busy channel makes no system call. The one rule, for poll and
/// for level- and edge-triggered epoll alike: call the try function until
/// it fails with EAGAIN, then wait again. (Spinning on a try function
/// instead costs the peer a system call per message after each EAGAIN:
/// spin with rawipc_chan_recv, which never arms the descriptor.)
///
/// A new channel's ends start armed (the receiving end's descriptor turns
/// readable with the first message; the sending end's is readable at once),
/// so a server may add a new end to its epoll set and wait at once.
///
/// So a server's loop is: wait in poll or epoll_wait; for each readable
/// end, call rawipc_chan_try_recv until it fails with EAGAIN (handling each
/// message; 0 says the sender is gone); wait again.
///
/// A wake-up may be spurious (the next try fails with EAGAIN again, and
/// arms it again). Once the peer is gone the descriptor stays readable:
/// the try call reports it (0, or EPIPE on a send that finds no room);
/// remove it from the epoll set and close the handle.
///
/// Returns the descriptor, or -1 with errno EINVAL (`chan` NULL, not made,
/// closed, or not yet given a side).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_fd(chan: *const rawipc_chan) -> c_int {
    // SAFETY: the caller's promise is passed on; the handle is only read.
    let r = unsafe { handle::state(chan) }.and_then(|state| match state {
        State::Sender { tx, .. } => Ok(tx.as_fd().as_raw_fd()),
        State::Receiver(rx) => Ok(rx.as_fd().as_raw_fd()),
        State::Both(_) => Err(Errno::INVAL),
    });
    r.unwrap_or_else(fail)
}

/// Returns the largest message the channel takes, or -1 with errno EINVAL
/// (`chan` NULL or not made).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_max_message(chan: *mut rawipc_chan) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { handle::state(chan) }.map(|state| match state {
        State::Both(c) => c.max_message(),
        State::Sender { tx, .. } => tx.max_message(),
        State::Receiver(rx) => rx.max_message(),
    }))
}

/// Sends the `len` bytes at `buf` as one message, waiting while the ring is
/// full.
///
/// Returns `len`, or -1 with errno set: EINVAL (`len` 0, or `chan` not a
/// sender), EFAULT (`buf` NULL), EMSGSIZE (above rawipc_chan_max_message),
/// EPIPE (the receiver is gone: its process died or closed its end; never
/// SIGPIPE), EPROTO (the shared ring is corrupt), EBUSY (space is reserved
/// and not committed).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`; a non-NULL `buf` to `len`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_send(
    chan: *mut rawipc_chan,
    buf: *const c_void,
    len: usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { send(chan, buf, len, Wait::For(None)) })
}

/// As rawipc_chan_send, but fails with EAGAIN instead of waiting for room;
/// that EAGAIN arms the end's descriptor (rawipc_chan_fd), which turns
/// readable when room is freed.
///
/// # Safety
/// As rawipc_chan_send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_try_send(
    chan: *mut rawipc_chan,
    buf: *const c_void,
    len: usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { send(chan, buf, len, Wait::Not) })
}

/// As rawipc_chan_send, but waits for room at most `timeout_ms`
/// milliseconds (-1: no bound; 0: no wait), then fails with ETIMEDOUT
/// having sent nothing. EINVAL also for `timeout_ms` below -1. A receiver
/// that is gone gives EPIPE at once.
///
/// # Safety
/// As rawipc_chan_send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_send_timeout(
    chan: *mut rawipc_chan,
    buf: *const c_void,
    len: usize,
    timeout_ms: c_int,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(timeout(timeout_ms).and_then(|t| unsafe { send(chan, buf, len, Wait::For(t)) }))
}

/// # Safety
/// As rawipc_chan_send.
unsafe fn send(
    chan: *mut rawipc_chan,
    buf: *const c_void,
    len: usize,
    wait: Wait,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promise is passed on.
    let (tx, reserved) = unsafe { sender(chan) }?;
    if len == 0 {
        return Err(Errno::INVAL);
    }
    if *reserved > 0 {
        return Err(Errno::BUSY);
    }
    // SAFETY: the caller's promise is passed on.
    let msg = unsafe { buffer(buf, len) }?;
    match wait {
        Wait::Not => tx.try_send(msg),
        Wait::For(None) => tx.send(msg),
        Wait::For(Some(t)) => tx.send_timeout(msg, t),
    }?;
    Ok(len)
}

/// Reserves room for a message of up to `len` bytes in the ring, waiting for
/// it, and returns where to write it in place (zero-copy send); then call
/// rawipc_chan_commit. Reserving again before committing, for at most as
/// many bytes, returns the same place.
///
/// Returns the address, or NULL with errno set as rawipc_chan_send (EINVAL
/// also for `len` above SSIZE_MAX), and EBUSY if space is reserved already
/// for fewer than `len` bytes.
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`. Write at most `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_reserve(chan: *mut rawipc_chan, len: usize) -> *mut c_void {
    // SAFETY: the caller's promise is passed on.
    unsafe { reserve(chan, len, None) }.unwrap_or_else(fail)
}

/// As rawipc_chan_reserve, but waits for room at most `timeout_ms`
/// milliseconds (-1: no bound; 0: no wait), then fails with ETIMEDOUT,
/// reserving nothing. EINVAL also for `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_chan_reserve.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_reserve_timeout(
    chan: *mut rawipc_chan,
    len: usize,
    timeout_ms: c_int,
) -> *mut c_void {
    // SAFETY: the caller's promise is passed on.
    let r = timeout(timeout_ms).and_then(|t| unsafe { reserve(chan, len, t) });
    r.unwrap_or_else(fail)
}

/// # Safety
/// As rawipc_chan_reserve.
unsafe fn reserve(
    chan: *mut rawipc_chan,
    len: usize,
    wait: Option<core::time::Duration>,
) -> Result<*mut c_void, Errno> {
    // SAFETY: the caller's promise is passed on.
    unsafe { sender(chan) }.and_then(|(tx, reserved)| {
        if len > isize::MAX as usize {
            return Err(Errno::INVAL);
        }
        // A larger reservation might not fit where the first one is.
        if *reserved > 0 && len > *reserved {
            return Err(Errno::BUSY);
        }
        let len = len.max(*reserved);
        let mut r = match wait {
            None => tx.reserve(len),
            Some(t) => tx.reserve_timeout(len, t),
        }?;
        *reserved = len;
        Ok(r.as_mut_ptr().cast())
    })
}

/// Sends the first `len` bytes written at the place rawipc_chan_reserve
/// returned, as one message.
///
/// Returns 0, or -1 with errno EINVAL (nothing reserved, `len` 0 or more than
/// reserved; the reservation stays) or EPROTO.
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_commit(chan: *mut rawipc_chan, len: usize) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let r = unsafe { sender(chan) }.and_then(|(tx, reserved)| {
        if *reserved == 0 || len == 0 || len > *reserved {
            return Err(Errno::INVAL);
        }
        // The same place as before: nothing has been published since, and
        // the room found for it is still there.
        tx.try_reserve(*reserved)?.commit(len)?;
        *reserved = 0;
        Ok(())
    });
    ret_int(r)
}

/// Receives one whole message into `buf`, waiting for one.
///
/// Returns the message's length; 0 when the sender is gone and every message
/// it sent has been received. On error returns -1 with errno set: EMSGSIZE
/// (larger than `cap`; it stays queued: rawipc_chan_recv_borrow takes it in
/// place), EFAULT (`buf` NULL with `cap` > 0), EINVAL (`chan` not a
/// receiver), EPROTO (the shared ring is corrupt), EBUSY (a message is
/// borrowed and not released).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`; a non-NULL `buf` to `cap`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_recv(
    chan: *mut rawipc_chan,
    buf: *mut c_void,
    cap: usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { recv(chan, buf, cap, Wait::For(None)) })
}

/// As rawipc_chan_recv, but fails with EAGAIN instead of waiting; that
/// EAGAIN arms the end's descriptor (rawipc_chan_fd), which turns readable
/// when a message comes or the sender is gone.
///
/// # Safety
/// As rawipc_chan_recv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_try_recv(
    chan: *mut rawipc_chan,
    buf: *mut c_void,
    cap: usize,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { recv(chan, buf, cap, Wait::Not) })
}

/// As rawipc_chan_recv, but waits at most `timeout_ms` milliseconds (-1: no
/// bound; 0: no wait), then fails with ETIMEDOUT, taking nothing. EINVAL
/// also for `timeout_ms` below -1. A sender that is gone gives 0 at once
/// (once its messages are all received), never ETIMEDOUT.
///
/// # Safety
/// As rawipc_chan_recv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_recv_timeout(
    chan: *mut rawipc_chan,
    buf: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(timeout(timeout_ms).and_then(|t| unsafe { recv(chan, buf, cap, Wait::For(t)) }))
}

/// # Safety
/// As rawipc_chan_recv.
unsafe fn recv(
    chan: *mut rawipc_chan,
    buf: *mut c_void,
    cap: usize,
    wait: Wait,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promise is passed on.
    let rx = unsafe { receiver(chan) }?;
    // SAFETY: the caller's promise is passed on.
    let buf = unsafe { buffer_mut(buf, cap) }?;
    match wait {
        Wait::Not => rx.try_recv(buf),
        Wait::For(None) => rx.recv(buf),
        Wait::For(Some(t)) => rx.recv_timeout(buf, t),
    }
}

/// Borrows the next message in place (zero-copy receive), waiting for one:
/// stores its address in `*msg` and returns its length; returns 0 (and
/// stores NULL) when the sender is gone. Release it with rawipc_chan_release
/// before receiving again. Borrowing again before releasing returns the same
/// message.
///
/// On error returns -1 with errno set: EFAULT (`msg` NULL), EINVAL (`chan`
/// not a receiver), EPROTO.
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`, a non-NULL `msg` to a
/// writable pointer. The message may be read until it is released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_recv_borrow(
    chan: *mut rawipc_chan,
    msg: *mut *const c_void,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { borrow(chan, msg, None) })
}

/// As rawipc_chan_recv_borrow, but waits at most `timeout_ms` milliseconds
/// (-1: no bound; 0: no wait), then fails with ETIMEDOUT, taking nothing
/// (`*msg` is left as it was). EINVAL also for `timeout_ms` below -1.
///
/// # Safety
/// As rawipc_chan_recv_borrow.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_recv_borrow_timeout(
    chan: *mut rawipc_chan,
    msg: *mut *const c_void,
    timeout_ms: c_int,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(timeout(timeout_ms).and_then(|t| unsafe { borrow(chan, msg, t) }))
}

/// # Safety
/// As rawipc_chan_recv_borrow.
unsafe fn borrow(
    chan: *mut rawipc_chan,
    msg: *mut *const c_void,
    wait: Option<core::time::Duration>,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promise is passed on.
    unsafe { receiver(chan) }.and_then(|rx| {
        if msg.is_null() {
            return Err(Errno::FAULT);
        }
        let borrowed = match wait {
            None => rx.recv_borrowed(),
            Some(t) => rx.recv_borrowed_timeout(t),
        };
        let (at, len) = match borrowed? {
            Some(m) => {
                let found = (m.as_ptr().cast::<c_void>(), m.len());
                // Lent to the caller until rawipc_chan_release.
                m.keep();
                found
            }
            None => (ptr::null(), 0),
        };
        // SAFETY: the caller's promise above.
        unsafe { msg.write(at) };
        Ok(len)
    })
}

/// Gives the message borrowed with rawipc_chan_recv_borrow back to the
/// sender; its address must not be used afterwards. It gives back exactly
/// what was lent, whatever the sender wrote into the ring meanwhile.
///
/// Returns 0, or -1 with errno EINVAL (`chan` not a receiver, or no message
/// borrowed).
///
/// # Safety
/// A non-NULL `chan` must point to a `rawipc_chan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_release(chan: *mut rawipc_chan) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let r = unsafe { receiver(chan) }.and_then(|rx| rx.release_kept());
    ret_int(r)
}

/// Makes a channel of `capacity` bytes (as rawipc_chan_create) for a process
/// that did not fork from this one, and gives its receiving end to the
/// process at the other end of the connected message socket `sock` (from
/// rawipc_accept or rawipc_connect), which takes it with
/// rawipc_chan_take_receiver. `*chan` becomes the sending end, used with
/// rawipc_chan_send and the other calls as after rawipc_chan_sender; if the
/// other process dies, before or after taking its end, sends fail with
/// EPIPE. The channel's memory is a sealed memfd, on no file system.
///
/// Returns 0, or -1 with errno set (`*chan` untouched, nothing left in
/// flight): EINVAL (`chan` NULL, `capacity` 0 or above 2^30), EPIPE (the
/// peer is gone), EBADF/ENOTSOCK (`sock`), ENOMEM, EMFILE/ENFILE.
///
/// # Safety
/// A non-NULL `chan` must point to writable memory for a `rawipc_chan`,
/// which must not hold a channel still open (it would be leaked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_give_receiver(
    chan: *mut rawipc_chan,
    sock: c_int,
    capacity: usize,
) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe {
        handle::put(chan, || {
            let tx = borrow_fd(sock).and_then(|s| handover::give_receiver(s, capacity))?;
            Ok(State::Sender { tx, reserved: 0 })
        })
    }
}

/// As rawipc_chan_give_receiver, but gives the sending end away (taken with
/// rawipc_chan_take_sender) and makes `*chan` the receiving end: if the
/// other process dies, receives return 0 once every message it sent has
/// been received.
///
/// Returns 0, or -1 with errno set as rawipc_chan_give_receiver.
///
/// # Safety
/// As rawipc_chan_give_receiver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_give_sender(
    chan: *mut rawipc_chan,
    sock: c_int,
    capacity: usize,
) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe {
        handle::put(chan, || {
            borrow_fd(sock)
                .and_then(|s| handover::give_sender(s, capacity))
                .map(State::Receiver)
        })
    }
}

/// Takes the receiving end of a channel given over the connected message
/// socket `sock` by rawipc_chan_give_receiver, waiting for it, and makes
/// `*chan` that end (as after rawipc_chan_receiver).
///
/// Nothing received is trusted: the memory must be a writable memfd sealed
/// against shrinking, exactly as large as a ring of the stated size, which
/// must be a power of two between 1024 and 2^30, and the life-line a
/// connected unix stream socket; anything else is refused, its fds closed.
///
/// Returns 0, or -1 with errno set (`*chan` untouched): EPIPE (the peer is
/// gone without giving a channel); EPROTO (the next message is not a
/// hand-over of a receiving end: it stays queued, for rawipc_msg_recv; or
/// it is one whose memory or life-line is wrong: it is taken and its fds
/// closed); EPERM (its memory could still be shrunk); EMSGSIZE (the next
/// message is too large to be a hand-over, or carries more than two fds; it
/// stays queued); EINVAL (`chan` NULL); EBADF/ENOTSOCK; EMFILE; ENOMEM.
///
/// # Safety
/// As rawipc_chan_give_receiver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_take_receiver(chan: *mut rawipc_chan, sock: c_int) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe {
        handle::put(chan, || {
            borrow_fd(sock)
                .and_then(handover::take_receiver)
                .map(State::Receiver)
        })
    }
}

/// Takes the sending end of a channel given over `sock` by
/// rawipc_chan_give_sender, and makes `*chan` that end (as after
/// rawipc_chan_sender).
///
/// Returns 0, or -1 with errno set as rawipc_chan_take_receiver.
///
/// # Safety
/// As rawipc_chan_give_receiver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_chan_take_sender(chan: *mut rawipc_chan, sock: c_int) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe {
        handle::put(chan, || {
            let tx = borrow_fd(sock).and_then(handover::take_sender)?;
            Ok(State::Sender { tx, reserved: 0 })
        })
    }
}
