//! Named endpoints (`rawipc::endpoint`): message sockets found by a name in
//! the abstract socket namespace, with nothing on the file system.

use core::ffi::{CStr, c_char, c_int};

use rawipc_core::{AsFd, Errno, IntoRawFd, OwnedFd, endpoint};

use crate::{borrow_fd, fail, gid_t, pid_t, uid_t};

/// The longest name rawipc_listen and rawipc_connect take, in bytes (not
/// counting the terminating NUL).
pub const RAWIPC_NAME_MAX: usize = 89;
const _: () = assert!(RAWIPC_NAME_MAX == endpoint::NAME_MAX);

/// rawipc_accept_admit: also admit peers whose effective uid is `uid`.
pub const RAWIPC_ADMIT_UID: c_int = 1;
/// rawipc_accept_admit: also admit peers whose effective gid is `gid`.
pub const RAWIPC_ADMIT_GID: c_int = 2;
/// rawipc_accept_admit: admit every user (in this network namespace).
pub const RAWIPC_ADMIT_ANYONE: c_int = 4;

/// The bytes of a C string: EFAULT for NULL.
///
/// # Safety
/// A non-NULL `name` must point to a NUL-terminated string.
unsafe fn name<'a>(name: *const c_char) -> Result<&'a [u8], Errno> {
    if name.is_null() {
        return Err(Errno::FAULT);
    }
    // SAFETY: the caller's promise above.
    Ok(unsafe { CStr::from_ptr(name) }.to_bytes())
}

fn give_fd(fd: Result<impl Into<OwnedFd>, Errno>) -> c_int {
    match fd {
        Ok(fd) => fd.into().into_raw_fd(),
        Err(e) => fail(e),
    }
}

/// Listens for connections under `name`, for this user: a listening
/// AF_UNIX SOCK_SEQPACKET socket bound to the abstract name
/// "\0rawipc/<euid>/<name>". Nothing is made on the file system; the name is
/// freed when the socket is closed or its process dies (even by SIGKILL),
/// so a restarted server can listen under it again at once. The fd is
/// close-on-exec and belongs to the caller.
///
/// Abstract names have no permissions: see rawipc_accept for who is admitted.
///
/// Returns the listening fd, or -1 with errno set: EADDRINUSE if a live
/// process listens under the name; EINVAL if `name` is empty, longer than
/// RAWIPC_NAME_MAX bytes; EFAULT if `name` is NULL; EMFILE/ENFILE.
///
/// # Safety
/// A non-NULL `name` must point to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_listen(name: *const c_char) -> c_int {
    // SAFETY: the caller's promise is passed on.
    give_fd(unsafe { self::name(name) }.and_then(endpoint::listen))
}

/// Waits for a client on `listener` (from rawipc_listen) and returns a
/// connected message socket to it (close-on-exec, the caller's), on which
/// every rawipc_msg_* call works; retried if a signal interrupts.
///
/// Admits only clients whose effective uid is this process's. A client of
/// another user is disconnected and -1 is returned with errno EACCES; the
/// listener stays usable: call rawipc_accept again. To admit others, use
/// rawipc_accept_admit.
///
/// Returns the connected fd, or -1 with errno set: EACCES (client refused),
/// ECONNABORTED (the client was gone before it could be looked at: call
/// again), EBADF, ENOTSOCK, EPROTOTYPE (not an AF_UNIX SOCK_SEQPACKET
/// socket), EINVAL (not listening), EAGAIN (non-blocking listener, nobody
/// waiting), EMFILE/ENFILE.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_accept(listener: c_int) -> c_int {
    rawipc_accept_admit(listener, 0, 0, 0)
}

/// As rawipc_accept, admitting more clients than this user's: with
/// RAWIPC_ADMIT_UID those whose effective uid is `uid`, with
/// RAWIPC_ADMIT_GID those whose effective gid is `gid` (the group the
/// client runs as, not its supplementary groups), with RAWIPC_ADMIT_ANYONE
/// everyone (flags may be or-ed; `uid` and `gid` are ignored without their
/// flag). This user's own clients are always admitted.
///
/// Returns the connected fd, or -1 with errno set: EINVAL for unknown bits
/// in `admit`, and those of rawipc_accept.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_accept_admit(
    listener: c_int,
    admit: c_int,
    uid: uid_t,
    gid: gid_t,
) -> c_int {
    if admit & !(RAWIPC_ADMIT_UID | RAWIPC_ADMIT_GID | RAWIPC_ADMIT_ANYONE) != 0 {
        return fail(Errno::INVAL);
    }
    let uid = (admit & RAWIPC_ADMIT_UID != 0).then_some(uid);
    let gid = (admit & RAWIPC_ADMIT_GID != 0).then_some(gid);
    let anyone = admit & RAWIPC_ADMIT_ANYONE != 0;
    give_fd(borrow_fd(listener).and_then(|l| endpoint::accept_from(l, uid, gid, anyone)))
}

/// Connects to this user's server listening under `name` (see
/// rawipc_listen) and returns a connected message socket (close-on-exec,
/// the caller's); retried if a signal interrupts.
///
/// Refuses a listener of another user, which may have taken the name to
/// impersonate the server: -1 with errno EACCES, the connection closed.
/// rawipc_connect_uid reaches another user's server.
///
/// Returns the connected fd, or -1 with errno set: ECONNREFUSED if nobody
/// listens under the name; EACCES; EINVAL (empty or too long `name`);
/// EFAULT (`name` NULL); EMFILE/ENFILE.
///
/// # Safety
/// A non-NULL `name` must point to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_connect(name: *const c_char) -> c_int {
    // SAFETY: the caller's promise is passed on.
    give_fd(unsafe { self::name(name) }.and_then(endpoint::connect))
}

/// Connects to the server of user `server_uid` listening under `name`: the
/// name is looked up under that user, and the listener must run as that
/// effective uid (any other is refused with EACCES). `rawipc_connect(name)`
/// is `rawipc_connect_uid(name, geteuid())`; a root server is reached with
/// `rawipc_connect_uid(name, 0)`.
///
/// Returns the connected fd, or -1 with errno set as rawipc_connect.
///
/// # Safety
/// A non-NULL `name` must point to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_connect_uid(name: *const c_char, server_uid: uid_t) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let name = unsafe { self::name(name) };
    give_fd(name.and_then(|n| endpoint::connect_to(n, server_uid)))
}

/// Tells who is at the other end of a connected unix socket (SO_PEERCRED):
/// the process id, effective uid and effective gid the kernel recorded when
/// the connection was made (for a client, those of the server at
/// rawipc_listen). Each out-parameter may be NULL; they are written only on
/// success. The pid is 0 if the peer is in another pid namespace.
///
/// Returns 0, or -1 with errno set: ENOTCONN (not connected), EBADF, ENOTSOCK.
///
/// # Safety
/// Each non-NULL out-parameter must point to writable memory for its type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_peer_cred(
    fd: c_int,
    pid: *mut pid_t,
    uid: *mut uid_t,
    gid: *mut gid_t,
) -> c_int {
    match borrow_fd(fd).and_then(|fd| endpoint::peer_cred(fd.as_fd())) {
        Ok(c) => {
            // SAFETY: the caller's promise above, for each non-NULL pointer.
            unsafe {
                if !pid.is_null() {
                    pid.write(c.pid);
                }
                if !uid.is_null() {
                    uid.write(c.uid);
                }
                if !gid.is_null() {
                    gid.write(c.gid);
                }
            }
            0
        }
        Err(e) => fail(e),
    }
}
