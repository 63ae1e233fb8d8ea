//! The C ABI of request and reply in one shared slot (`rawipc::call`).
//!
//! A `rawipc_call` is a handle in the caller's own memory: the slot it names
//! lives in shared memory that the handle maps. Made before `fork`, it is
//! turned in one process into the client (rawipc_call_client) and in the
//! other into the server (rawipc_call_server).

use core::ffi::{c_int, c_uint, c_void};
use core::mem::{align_of, size_of};
use core::ptr;

use rawipc_core::Errno;
use rawipc_core::call::{Call, Client, Server};

use crate::{buffer, buffer_mut, fail, ssize_t, timeout};

/// A request-reply handle, in memory of the caller's (not shared memory).
/// Its contents are private; do not copy it (a copy would close the same
/// file descriptors twice): pass pointers to it.
#[repr(C)]
pub struct rawipc_call {
    _private: [u64; 16],
}

/// What a handle holds, behind a magic number that tells a made handle from
/// uninitialized memory.
struct Handle {
    magic: u64,
    state: State,
}

enum State {
    /// Both sides: made, not yet given one.
    Both(Call),
    Client(Client),
    Server(Server),
}

const MAGIC: u64 = 0x7261_7769_7063_636c; // "rawipccl"

const _: () = assert!(size_of::<Handle>() <= size_of::<rawipc_call>());
const _: () = assert!(align_of::<Handle>() <= align_of::<rawipc_call>());

/// The handle behind `call`: EINVAL for NULL or a handle never made (or closed).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call` the caller lets us use.
unsafe fn handle<'a>(call: *mut rawipc_call) -> Result<&'a mut Handle, Errno> {
    if call.is_null() {
        return Err(Errno::INVAL);
    }
    let h = call.cast::<Handle>();
    // SAFETY: size and alignment checked above; the magic is read as a plain
    // integer before the rest is trusted.
    if unsafe { ptr::addr_of!((*h).magic).read() } != MAGIC {
        return Err(Errno::INVAL);
    }
    // SAFETY: the magic says `rawipc_call_create` wrote a Handle here.
    Ok(unsafe { &mut *h })
}

fn ret_len(r: Result<usize, Errno>) -> ssize_t {
    match r {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e),
    }
}

fn ret_int(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
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
    if call.is_null() {
        return fail(Errno::INVAL);
    }
    match Call::new(max_message) {
        Ok(c) => {
            let h = Handle {
                magic: MAGIC,
                state: State::Both(c),
            };
            // SAFETY: the caller's promise above; size and alignment checked.
            unsafe { call.cast::<Handle>().write(h) };
            0
        }
        Err(e) => fail(e),
    }
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
    ret_int(unsafe { take_side(call, |c| State::Client(c.into_client())) })
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
    ret_int(unsafe { take_side(call, |c| State::Server(c.into_server())) })
}

/// # Safety
/// As [`handle`].
unsafe fn take_side(call: *mut rawipc_call, side: impl FnOnce(Call) -> State) -> Result<(), Errno> {
    // SAFETY: the caller's promise is passed on.
    let h = unsafe { handle(call) }?;
    if !matches!(h.state, State::Both(_)) {
        return Err(Errno::INVAL);
    }
    // Move the slot out, leaving no handle behind until the side is in.
    h.magic = 0;
    // SAFETY: the state is a Both, read once and replaced right below.
    let State::Both(c) = (unsafe { ptr::read(&h.state) }) else {
        unreachable!()
    };
    // SAFETY: overwrites the moved-out state without dropping it.
    unsafe { ptr::write(&mut h.state, side(c)) };
    h.magic = MAGIC;
    Ok(())
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
    match unsafe { handle(call) } {
        Ok(h) => {
            h.magic = 0;
            // SAFETY: the state is valid (the magic said so) and is dropped once.
            unsafe { ptr::drop_in_place(&mut h.state) };
            0
        }
        Err(e) => fail(e),
    }
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
    let r = unsafe { handle(call) }.and_then(|h| match &mut h.state {
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

/// Returns the largest request or reply, or -1 with errno EINVAL (`call`
/// NULL or not made).
///
/// # Safety
/// A non-NULL `call` must point to a `rawipc_call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_call_max_message(call: *mut rawipc_call) -> ssize_t {
    // SAFETY: the caller's promise is passed on.
    ret_len(unsafe { handle(call) }.map(|h| match &h.state {
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
    let State::Client(client) = &mut unsafe { handle(call) }?.state else {
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
        let State::Client(client) = &mut unsafe { handle(call) }?.state else {
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
        let State::Server(server) = &mut unsafe { handle(call) }?.state else {
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
        let State::Server(server) = &mut unsafe { handle(call) }?.state else {
            return Err(Errno::INVAL);
        };
        // SAFETY: the caller's promise is passed on.
        let msg = unsafe { buffer(reply, len) }?;
        server.reply(msg)
    })();
    ret_int(r)
}
