//! The C ABI of request and reply in one shared slot (`rawipc::call`).
//!
//! A `rawipc_call` is a handle in the caller's own memory: the slot it names
//! lives in shared memory that the handle maps. Made before `fork`, it is
//! turned in one process into the client (rawipc_call_client) and in the
//! other into the server (rawipc_call_server).

use core::ffi::{c_int, c_uint, c_void};

use rawipc_core::call::{Call, Client, Server};
use rawipc_core::{AsFd, AsRawFd, Errno};

use crate::{buffer, buffer_mut, fail, handle, ret_int, ret_len, ssize_t, timeout};

/// A request-reply handle, in memory of the caller's (not shared memory).
/// Its contents are private; do not copy it (a copy would close the same
/// file descriptors twice): pass pointers to it.
#[repr(C)]
pub struct rawipc_call {
    _private: [u64; 16],
}

/// What a request-reply handle holds.
pub(crate) enum State {
    /// Both sides: made, not yet given one.
    Both(Call),
    Client(Client),
    Server(Server),
}

// SAFETY: a repr(C) struct of private bytes, and a magic of its own.
unsafe impl handle::Kind for rawipc_call {
    type State = State;
    const MAGIC: u64 = 0x7261_7769_7063_636c; // "rawipccl"
}

impl handle::Sided for rawipc_call {
    type Both = Call;
    fn both(state: State) -> Result<Call, State> {
        match state {
            State::Both(c) => Ok(c),
            other => Err(other),
        }
    }
}

/// The client behind `call`: EINVAL if it is not one.
///
/// # Safety
/// As [`handle::state_mut`].
unsafe fn client<'a>(call: *mut rawipc_call) -> Result<&'a mut Client, Errno> {
    // SAFETY: the caller's promise is passed on.
    match unsafe { handle::state_mut(call) }? {
        State::Client(c) => Ok(c),
        _ => Err(Errno::INVAL),
    }
}

/// The server behind `call`: EINVAL if it is not one.
///
/// # Safety
/// As [`handle::state_mut`].
unsafe fn server<'a>(call: *mut rawipc_call) -> Result<&'a mut Server, Errno> {
    // SAFETY: the caller's promise is passed on.
    match unsafe { handle::state_mut(call) }? {
        State::Server(s) => Ok(s),
        _ => Err(Errno::INVAL),
    }
}

/// Makes a request-reply slot for requests and replies of up to
/// `max_message` bytes, in shared memory inherited by children forked
/// afterwards, and stores its handle in `*call`. Up to 48 bytes
/// (RAWIPC_CALL_LINE_MESSAGE), a request, its reply and the slot's header
/// share one cache line; larger ones, up to 1 MiB, run on into the next lines.
/// After fork, one process calls rawipc_call_client on its copy, the other
/// rawipc_call_server.
///
/// Returns 0, or -1 with errno set: EINVAL (`call` NULL, `max_message` 0 or
/// above 1 MiB), ENOMEM, EMFILE/ENFILE (the slot holds two file descriptors,
/// through which each side learns that the other died).
///
/// # Safety
/// A non-NULL `call` must point to writable memory for a `rawipc_call`,
/// which must not hold a slot still open (it would be leaked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_create(call: *mut rawipc_call, max_message: usize) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::put(call, || Call::new(max_message).map(State::Both)) }
}

/// The largest request or reply that shares the slot's first cache line
/// with its header.
pub const RAWIPC_CALL_LINE_MESSAGE: usize = 48;
/// The largest `max_message` rawipc_call_create takes (1 MiB).
pub const RAWIPC_CALL_MAX_MESSAGE: usize = 1 << 20;

const _: () = assert!(RAWIPC_CALL_LINE_MESSAGE == rawipc_core::call::LINE_MESSAGE);
const _: () = assert!(RAWIPC_CALL_MAX_MESSAGE == rawipc_core::call::MAX_MESSAGE);

/// Makes this process the client: keeps the calling side and closes the
/// server's (the server then learns of this process's death).
///
/// Returns 0, or -1 with errno EINVAL (`call` NULL, not made, or already
/// given a side).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_client(call: *mut rawipc_call) -> c_int {
    // SAFETY: the caller's promise is passed on.
    ret_int(unsafe { handle::take_side(call, |c| State::Client(c.into_client())) })
}

/// Makes this process the server: keeps the answering side and closes the
/// client's.
///
/// Returns 0, or -1 with errno EINVAL (`call` NULL, not made, or already
/// given a side).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_server(call: *mut rawipc_call) -> c_int {
    // SAFETY: the caller's promise is passed on.
    ret_int(unsafe { handle::take_side(call, |c| State::Server(c.into_server())) })
}

/// Closes the handle: unmaps the slot from this process and closes its file
/// descriptors. The peer then learns that this side is gone.
///
/// Returns 0, or -1 with errno EINVAL (`call` NULL, not made, or closed).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_close(call: *mut rawipc_call) -> c_int {
    // SAFETY: the caller's promise is passed on.
    unsafe { handle::close(call) }
}

/// Sets how long this side spins, in nanoseconds, waiting for a reply or a
/// request before it sleeps in the kernel (default 50000), to which a wait
/// adds the time the peer needs to copy the exchange's bytes (at 4 GB/s:
/// 256 ns per KiB of the request and of the last reply). 0 makes it sleep
/// at once (no CPU spent waiting; each wake-up then costs a system call).
///
/// Returns 0, or -1 with errno EINVAL (`call` NULL or not given a side).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_set_spin(call: *mut rawipc_call, ns: c_uint) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let r = unsafe { handle::state_mut(call) }.and_then(|state| match state {
        State::Client(c) => {
            c.set_spin(ns);
            Ok(())
        }
        State::Server(s) => {
            s.set_spin(ns);
            Ok(())
        }
        State::Both(_) => Err(Errno::INVAL),
    });
    ret_int(r)
}

/// The side's readiness descriptor, for poll(2), epoll(7) or select(2):
/// readable (POLLIN) when the side can make progress. On a server: a
/// request is waiting, or the client is gone. On a client: the reply to its
/// request is in, or the server is gone. The descriptor belongs to the
/// handle and is closed by rawipc_call_close: do not close, read or write
/// it. Ask for POLLIN only (it is a socket, always writable).
///
/// The descriptor is armed by rawipc_call_try_recv or
/// rawipc_call_try_take_reply failing with EAGAIN: that call asks the peer
/// to wake this side through the descriptor, then looks once more, so that
/// nothing sent in between is missed. The peer writes to it only then (one
/// byte per arming): a busy exchange makes no system call. A new server
/// starts armed (its descriptor turns readable with the first request).
/// The one rule, for poll and for level- and edge-triggered epoll alike:
/// call the try function until it fails with EAGAIN, then wait again.
///
/// So a client waiting on many servers: rawipc_call_send the request;
/// call rawipc_call_try_take_reply until it returns the reply, waiting in
/// poll or epoll_wait after each EAGAIN. A server waiting on many clients:
/// for each readable one, rawipc_call_try_recv until EAGAIN, answering
/// each request with rawipc_call_reply; wait again.
///
/// A wake-up may be stale (the next try fails with EAGAIN again, and arms
/// it again). Once the peer is gone the descriptor stays readable: the try
/// call reports it (0 from rawipc_call_try_recv, EPIPE from
/// rawipc_call_try_take_reply); remove it from the epoll set and close the
/// handle.
///
/// Returns the descriptor, or -1 with errno EINVAL (`call` NULL, not made,
/// closed, or not yet given a side).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_fd(call: *const rawipc_call) -> c_int {
    // SAFETY: the caller's promise is passed on; the handle is only read.
    let r = unsafe { handle::state(call) }.and_then(|state| match state {
        State::Client(c) => Ok(c.as_fd().as_raw_fd()),
        State::Server(s) => Ok(s.as_fd().as_raw_fd()),
        State::Both(_) => Err(Errno::INVAL),
    });
    r.unwrap_or_else(fail)
}

/// Returns the largest request or reply, or -1 with errno EINVAL (`call`
/// NULL or not made).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_max_message(call: *mut rawipc_call) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { handle::state(call) }.map(|state| match state {
        State::Both(c) => c.max_message(),
        State::Client(c) => c.max_message(),
        State::Server(s) => s.max_message(),
    }))
}

/// The client's call: sends the `len` bytes at `request`, waits for the
/// reply and copies it to `reply` (room for `cap` bytes).
///
/// `timeout_ms` bounds the wait (-1: no bound, as poll(2)'s). A call that
/// times out stays made: take its reply with rawipc_call_take_reply.
///
/// `request` and `reply` may be the same buffer (with `len` at most `cap`):
/// the reply then overwrites the request, and a large message cycles
/// through less cache. They must not overlap otherwise.
///
/// Returns the reply's length (a reply may be empty), or -1 with errno set:
/// EINVAL (`len` 0, `timeout_ms` below -1, `call` not a client, `request`
/// and `reply` overlapping other than as one buffer), EFAULT
/// (`request` NULL, or `reply` NULL with `cap` above 0), EMSGSIZE (`len`
/// above rawipc_call_max_message: nothing is sent; or a reply longer than
/// `cap`: it is kept for rawipc_call_take_reply until the next request),
/// ETIMEDOUT, EBUSY (a timed-out call's reply is still due), EPIPE (the
/// server is gone: its process died or closed its side), EPROTO (the shared
/// slot is corrupt).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `request` to
/// `len` readable bytes, a non-NULL `reply` to `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_request(
    call: *mut rawipc_call,
    request: *const c_void,
    len: usize,
    reply: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { request_call(call, request, len, reply, cap, timeout_ms) })
}

/// # Safety
/// As rawipc_call_request.
unsafe fn request_call(
    call: *mut rawipc_call,
    request: *const c_void,
    len: usize,
    reply: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promise is passed on.
    let State::Client(client) = unsafe { handle::state_mut(call) }? else {
        return Err(Errno::INVAL);
    };
    if len == 0 {
        return Err(Errno::INVAL);
    }
    let t = timeout(timeout_ms)?;
    if request.is_null() {
        return Err(Errno::FAULT);
    }
    let (req_at, out_at) = (request as usize, reply as usize);
    if req_at == out_at && len <= cap {
        // One buffer for both, as C code reuses one: never seen as a
        // request and a reply at once.
        // SAFETY: the caller's promise is passed on (`reply` is non-NULL).
        let buf = unsafe { buffer_mut(reply, cap) }?;
        return match t {
            None => client.call_in_place(buf, len),
            Some(t) => client.call_in_place_timeout(buf, len, t),
        };
    }
    if cap > 0 && req_at < out_at.saturating_add(cap) && out_at < req_at.saturating_add(len) {
        return Err(Errno::INVAL);
    }
    // SAFETY: the caller's promise is passed on.
    let req = unsafe { buffer(request, len) }?;
    // SAFETY: the caller's promise is passed on; the two do not overlap.
    let out = unsafe { buffer_mut(reply, cap) }?;
    match t {
        None => client.call(req, out),
        Some(t) => client.call_timeout(req, out, t),
    }
}

/// The client's request without the wait: sends the `len` bytes at
/// `request` and returns at once. Take the reply with
/// rawipc_call_try_take_reply (waiting on rawipc_call_fd between its
/// EAGAINs) or rawipc_call_take_reply. A server that is gone is reported by
/// those (EPIPE).
///
/// Returns 0, or -1 with errno set: EINVAL (`len` 0, `call` not a client),
/// EFAULT (`request` NULL), EMSGSIZE (`len` above rawipc_call_max_message),
/// EBUSY (the last call's reply is still due), EPIPE or EPROTO (the client
/// already found the server gone or the slot corrupt). Nothing is sent then.
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `request` to
/// `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_send(
    call: *mut rawipc_call,
    request: *const c_void,
    len: usize,
) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let client = unsafe { client(call) }?;
        if len == 0 {
            return Err(Errno::INVAL);
        }
        if request.is_null() {
            return Err(Errno::FAULT);
        }
        // SAFETY: the caller's promise is passed on.
        let req = unsafe { buffer(request, len) }?;
        client.send(req)
    })();
    ret_int(r)
}

/// As rawipc_call_take_reply, but fails with EAGAIN instead of waiting for
/// a reply that is not in yet; that EAGAIN arms the client's descriptor
/// (rawipc_call_fd), which turns readable when the reply comes or the
/// server goes.
///
/// Returns the reply's length, or -1 with errno set: EAGAIN, EPIPE (the
/// server is gone without answering), otherwise as rawipc_call_take_reply.
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `reply` to
/// `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_try_take_reply(
    call: *mut rawipc_call,
    reply: *mut c_void,
    cap: usize,
) -> ssize_t {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let client = unsafe { client(call) }?;
        // SAFETY: the caller's promise is passed on.
        let out = unsafe { buffer_mut(reply, cap) }?;
        client.try_reply(out)
    })();
    ret_len(r)
}

/// Takes the reply of the client's last call: one that was longer than its
/// buffer (EMSGSIZE), or, waiting for it up to `timeout_ms` (-1: no bound),
/// one whose call timed out. Copies it to `reply` (room for `cap` bytes).
///
/// Returns its length, or -1 with errno set: EINVAL (no reply due or kept,
/// `timeout_ms` below -1, `call` not a client), otherwise as
/// rawipc_call_request.
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `reply` to
/// `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_take_reply(
    call: *mut rawipc_call,
    reply: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> ssize_t {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let State::Client(client) = unsafe { handle::state_mut(call) }? else {
            return Err(Errno::INVAL);
        };
        let t = timeout(timeout_ms)?;
        // SAFETY: the caller's promise is passed on.
        let out = unsafe { buffer_mut(reply, cap) }?;
        match t {
            None => client.reply(out),
            Some(t) => client.reply_timeout(out, t),
        }
    })();
    ret_len(r)
}

/// The server's wait: waits up to `timeout_ms` (-1: no bound) for a request
/// and copies it to `buf` (room for `cap` bytes). Answer it with
/// rawipc_call_reply.
///
/// Returns the request's length, 0 once the client is gone (as read(2)
/// returns end of file), or -1 with errno set: EINVAL (the last request is
/// not answered yet, `timeout_ms` below -1, `call` not a server), EFAULT
/// (`buf` NULL with `cap` above 0), EMSGSIZE (the request is longer than
/// `cap`: it stays for a larger buffer), ETIMEDOUT, EPROTO (the shared slot
/// is corrupt).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `buf` to
/// `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_recv(
    call: *mut rawipc_call,
    buf: *mut c_void,
    cap: usize,
    timeout_ms: c_int,
) -> ssize_t {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let State::Server(server) = unsafe { handle::state_mut(call) }? else {
            return Err(Errno::INVAL);
        };
        let t = timeout(timeout_ms)?;
        // SAFETY: the caller's promise is passed on.
        let out = unsafe { buffer_mut(buf, cap) }?;
        match t {
            None => server.recv(out),
            Some(t) => server.recv_timeout(out, t),
        }
    })();
    ret_len(r)
}

/// As rawipc_call_recv, but fails with EAGAIN instead of waiting (0 still
/// once the client is gone); that EAGAIN arms the server's descriptor
/// (rawipc_call_fd), which turns readable when a request comes or the
/// client goes.
///
/// Returns the request's length, 0 once the client is gone, or -1 with
/// errno set: EAGAIN, otherwise as rawipc_call_recv.
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `buf` to
/// `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_try_recv(
    call: *mut rawipc_call,
    buf: *mut c_void,
    cap: usize,
) -> ssize_t {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let server = unsafe { server(call) }?;
        // SAFETY: the caller's promise is passed on.
        let out = unsafe { buffer_mut(buf, cap) }?;
        server.try_recv(out)
    })();
    ret_len(r)
}

/// The server's answer: sends the `len` bytes at `reply` (`len` may be 0)
/// as the reply to the request last received, without waiting. A reply to a
/// client that died meanwhile is lost with it; the next rawipc_call_recv
/// returns 0.
///
/// Returns 0, or -1 with errno set: EINVAL (no request waits for its answer,
/// `call` not a server), EFAULT (`reply` NULL with `len` above 0), EMSGSIZE
/// (`len` above rawipc_call_max_message: the request still waits), EPROTO
/// (the shared slot was found corrupt).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`; a non-NULL `reply` to
/// `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_reply(
    call: *mut rawipc_call,
    reply: *const c_void,
    len: usize,
) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise is passed on.
        let State::Server(server) = unsafe { handle::state_mut(call) }? else {
            return Err(Errno::INVAL);
        };
        // SAFETY: the caller's promise is passed on.
        let msg = unsafe { buffer(reply, len) }?;
        server.reply(msg)
    })();
    ret_int(r)
}
