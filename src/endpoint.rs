//! Named endpoints: message sockets that processes which did not fork from
//! each other find by a name, with nothing on the file system.
//!
//! A server calls [`listen`] with a name and [`Listener::accept`]s
//! connections; a client calls [`connect`] with the same name. Each
//! connection is a [`MsgSocket`] (`SOCK_SEQPACKET`), so every call of
//! [`crate::msg`] works on it, fds and sealed memory can be passed over it
//! ([`crate::msg::send_fds`]) and a channel handed over
//! ([`crate::chan::handover`]).
//!
//! # Names
//! A name is 1 to [`NAME_MAX`] bytes, any but NUL. It lives in Linux's
//! *abstract* socket namespace, as `"\0rawipc/<euid>/<name>"`: the name of
//! the user who listens is part of it, so two users on one machine can each
//! run a server called `"chat"` without meeting. No file is made; the name
//! is gone the moment the listening socket closes, also when its process is
//! killed, so a restarted server can listen again at once (no stale
//! `/tmp/x.sock` or `/dev/shm/x` to clean up). Abstract names are per
//! network namespace: processes in different network namespaces (containers)
//! do not see each other's.
//!
//! # Who is admitted
//! Abstract names have no permissions: anyone on the machine can connect to
//! any name, and anyone can take a name first. So both sides check, through
//! `SO_PEERCRED`, who is at the other end (the kernel records the effective
//! uid and gid of the process at `connect` and at `listen`):
//! - [`Listener::accept`] admits only peers whose effective uid is the
//!   listener's own, unless widened with [`Listener::admit_uid`],
//!   [`Listener::admit_gid`] (the peer's effective gid) or
//!   [`Listener::admit_anyone`]. A peer not admitted is disconnected and
//!   `accept` fails with `EACCES`; the listener stays usable.
//! - [`connect`] connects to a name under the caller's own uid and refuses
//!   (`EACCES`) a listener of any other user, which might have taken the
//!   name first to impersonate the server. [`connect_to`] connects to
//!   another user's server, trusting that uid and no other.
//!
//! Anyone can still take a name before its server does (the server's
//! [`listen`] then fails with `EADDRINUSE`): a denial of service, never an
//! impersonation.

use rustix::net::{
    AddressFamily, SocketAddrUnix, SocketFlags, SocketType, accept_with, bind,
    connect as raw_connect, listen as raw_listen, socket_with, sockopt,
};
use rustix::process::geteuid;

use crate::msg::MsgSocket;
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result, retry};

/// The longest name, in bytes: what the 108-byte `sun_path` leaves after the
/// leading NUL, the prefix `"rawipc/"` and the largest uid with its `/`.
pub const NAME_MAX: usize = 107 - PREFIX.len() - 11;

/// What every rawipc name starts with in the abstract namespace.
pub const PREFIX: &str = "rawipc/";

/// How many connections may wait to be accepted (the kernel caps it at
/// `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Who is at the other end of a connected socket, as the kernel recorded it
/// when the connection (or, for a client's view of a server, the listening
/// socket) was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    /// The peer's process id (0 if the peer is in another pid namespace).
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`: who is at the other end of a
/// connected unix socket (any, not only rawipc's).
///
/// Errors: `ENOTSOCK`, `EBADF`; `ENOTCONN` on a socket not connected.
///
/// # References
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)
#[doc(alias = "SO_PEERCRED")]
pub fn peer_cred(fd: impl AsFd) -> Result<Cred> {
    let fd = fd.as_fd();
    // On a socket that is not connected the kernel reports no error, but
    // pid 0 and uid and gid -1: ask for the peer first (ENOTCONN).
    rustix::net::getpeername(fd)?;
    let [pid, uid, gid] = crate::sys::peer_cred(fd)?;
    Ok(Cred {
        pid: pid as i32,
        uid,
        gid,
    })
}

/// The abstract address of `name` under user `uid`: `"\0rawipc/<uid>/<name>"`.
///
/// Errors: `EINVAL` for an empty name, one longer than [`NAME_MAX`], or one
/// holding a NUL byte.
fn address(name: &[u8], uid: u32) -> Result<SocketAddrUnix> {
    if name.is_empty() || name.len() > NAME_MAX || name.contains(&0) {
        return Err(Errno::INVAL);
    }
    let mut buf = [0u8; 107];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(PREFIX.as_bytes());
    let mut digits = [0u8; 10];
    let mut n = digits.len();
    let mut rest = uid;
    loop {
        n -= 1;
        digits[n] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    put(&digits[n..]);
    put(b"/");
    put(name);
    SocketAddrUnix::new_abstract_name(&buf[..len])
}

fn seqpacket() -> Result<OwnedFd> {
    socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// Who a [`Listener`] admits beside its own user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Admit {
    uid: Option<u32>,
    gid: Option<u32>,
    anyone: bool,
}

impl Admit {
    fn admits(&self, own_uid: u32, peer: &Cred) -> bool {
        self.anyone
            || peer.uid == own_uid
            || self.uid == Some(peer.uid)
            || self.gid == Some(peer.gid)
    }
}

/// A listening socket under a name; the name is freed when it is dropped
/// (or its process dies).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    uid: u32,
    admit: Admit,
}

/// `socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`, `bind` to the abstract
/// name `"\0rawipc/<euid>/<name>"`, `listen`: serves `name` for this user.
///
/// Errors: `EADDRINUSE` if the name is taken (by a live server: a dead one's
/// name is free at once); `EINVAL` if `name` is empty, longer than
/// [`NAME_MAX`] or holds a NUL; `EMFILE`/`ENFILE`.
///
/// # References
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (abstract
///   sockets)
/// - [listen(2)](https://man7.org/linux/man-pages/man2/listen.2.html)
pub fn listen(name: impl AsRef<[u8]>) -> Result<Listener> {
    let uid = geteuid().as_raw();
    let addr = address(name.as_ref(), uid)?;
    let fd = seqpacket()?;
    bind(&fd, &addr)?;
    raw_listen(&fd, BACKLOG)?;
    Ok(Listener {
        fd,
        uid,
        admit: Admit::default(),
    })
}

impl Listener {
    /// Also admits peers whose effective uid is `uid` (one uid: a second call
    /// replaces the first).
    pub fn admit_uid(&mut self, uid: u32) -> &mut Self {
        self.admit.uid = Some(uid);
        self
    }

    /// Also admits peers whose effective gid is `gid` (the group a process
    /// runs as, not its supplementary groups; one gid).
    pub fn admit_gid(&mut self, gid: u32) -> &mut Self {
        self.admit.gid = Some(gid);
        self
    }

    /// Admits any peer at all: every user of the machine (in this network
    /// namespace) can then connect.
    pub fn admit_anyone(&mut self) -> &mut Self {
        self.admit.anyone = true;
        self
    }

    /// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)`, retried on `EINTR`: waits
    /// for a client and returns the connection to it, if it is admitted.
    ///
    /// Errors: `EACCES` if the client is of a user not admitted (see the
    /// [module documentation](self)): its connection is closed and the
    /// listener stays usable, so call `accept` again; `ECONNABORTED` if the
    /// client was gone before it could be looked at (call again); `EAGAIN` on a
    /// non-blocking listener with nobody waiting; `EMFILE`/`ENFILE`.
    ///
    /// # References
    /// - [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html)
    #[doc(alias = "accept4")]
    pub fn accept(&self) -> Result<MsgSocket> {
        accept_admitted(self.fd.as_fd(), self.uid, &self.admit)
    }
}

/// Accepts a connection on `listener` and keeps it if `admit` admits its peer.
fn accept_admitted(listener: BorrowedFd<'_>, own_uid: u32, admit: &Admit) -> Result<MsgSocket> {
    let conn = retry(|| accept_with(listener, SocketFlags::CLOEXEC))?;
    // A client gone before it could be looked at is refused as the kernel
    // refuses a connection aborted before accept.
    let peer = peer_cred(&conn).map_err(|e| match e {
        Errno::NOTCONN => Errno::CONNABORTED,
        e => e,
    })?;
    if !admit.admits(own_uid, &peer) {
        return Err(Errno::ACCESS);
    }
    Ok(MsgSocket::from(conn))
}

/// Accepts on a raw listening socket (one from [`listen`], or any
/// `SOCK_SEQPACKET` unix listener): the C ABI's way, which keeps no
/// [`Listener`] of its own. `uid`/`gid` admit one more user or group,
/// `anyone` every user.
///
/// Errors: as [`Listener::accept`]; `EPROTOTYPE` for a socket that is not an
/// `AF_UNIX` `SOCK_SEQPACKET` one (a stream keeps no message boundaries, and
/// a network peer has no credentials to check), before anything is accepted;
/// `EINVAL` for one that does not listen.
pub fn accept_from(
    listener: impl AsFd,
    uid: Option<u32>,
    gid: Option<u32>,
    anyone: bool,
) -> Result<MsgSocket> {
    let listener = listener.as_fd();
    if sockopt::socket_type(listener)? != SocketType::SEQPACKET
        || sockopt::socket_domain(listener)? != AddressFamily::UNIX
    {
        return Err(Errno::PROTOTYPE);
    }
    let admit = Admit { uid, gid, anyone };
    accept_admitted(listener, geteuid().as_raw(), &admit)
}

/// `connect` to this user's server `name`, retried on `EINTR`; refuses a
/// listener of another user.
///
/// Errors: `ECONNREFUSED` if nobody listens under the name; `EACCES` if the
/// listener is not of this user (the connection is closed); `EINVAL` for a
/// bad name (see [`listen`]); `EAGAIN` if the server's backlog is full
/// (the kernel's answer for unix sockets only when non-blocking; a blocking
/// connect waits for room); `EMFILE`/`ENFILE`.
///
/// # References
/// - [connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html)
pub fn connect(name: impl AsRef<[u8]>) -> Result<MsgSocket> {
    connect_to(name, geteuid().as_raw())
}

/// `connect` to the server `name` of user `server_uid`: the name is looked
/// up under that user, and the listener must have that effective uid (so a
/// root server is reached with `connect_to(name, 0)`). Errors as [`connect`].
pub fn connect_to(name: impl AsRef<[u8]>, server_uid: u32) -> Result<MsgSocket> {
    let addr = address(name.as_ref(), server_uid)?;
    let fd = seqpacket()?;
    retry(|| raw_connect(&fd, &addr))?;
    if peer_cred(&fd)?.uid != server_uid {
        return Err(Errno::ACCESS);
    }
    Ok(MsgSocket::from(fd))
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Listener> for OwnedFd {
    fn from(listener: Listener) -> OwnedFd {
        listener.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_spelled_with_the_uid() {
        assert_eq!(address(b"", 0).err(), Some(Errno::INVAL));
        assert_eq!(address(b"a\0b", 0).err(), Some(Errno::INVAL));
        assert!(address(&[b'x'; NAME_MAX], u32::MAX).is_ok());
        assert_eq!(address(&[b'x'; NAME_MAX + 1], 0).err(), Some(Errno::INVAL));
        let a = address(b"chat", 1000).unwrap();
        assert_eq!(a.abstract_name(), Some(&b"rawipc/1000/chat"[..]));
        let a = address(b"x", 0).unwrap();
        assert_eq!(a.abstract_name(), Some(&b"rawipc/0/x"[..]));
    }
}
