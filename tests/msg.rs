//! rawipc::msg in one process: message boundaries, sizes, a peer that is gone,
//! foreign empty messages and bad fds. Tests that fork (a message exchange
//! between parent and child, EINTR, SIGPIPE) are in tests/fork/.

use rawipc::msg::{self, MsgSocket, socketpair};
use rawipc::{AsFd, AsRawFd, BorrowedFd, Errno, OwnedFd};
use rustix::io::{FdFlags, fcntl_getfd, ioctl_fionbio};
use rustix::net::{SendFlags, Shutdown, SocketType, sockopt};

/// A message of `len` bytes that differs from its neighbours and from other
/// lengths, so a cut, a glued or a swapped message shows.
fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A fd number that is not open in this process: fds are handed out lowest
/// first, and this test binary never holds thousands.
fn never_opened_fd() -> BorrowedFd<'static> {
    const FD: i32 = 9_999;
    // SAFETY: the fd is not open, which is the point: rawipc passes the number
    // to the kernel, which answers EBADF; nothing dereferences it.
    let fd = unsafe { BorrowedFd::borrow_raw(FD) };
    assert_eq!(fcntl_getfd(fd), Err(Errno::BADF), "fd {FD} is open");
    fd
}

fn set_nonblocking(socket: &MsgSocket) {
    ioctl_fionbio(socket, true).expect("FIONBIO");
}

#[test]
fn socketpair_ends_are_seqpacket_and_close_on_exec() {
    let (a, b) = socketpair().unwrap();
    for end in [&a, &b] {
        assert_eq!(sockopt::socket_type(end).unwrap(), SocketType::SEQPACKET);
        assert!(fcntl_getfd(end).unwrap().contains(FdFlags::CLOEXEC));
    }
    assert_ne!(a.as_fd().as_raw_fd(), b.as_fd().as_raw_fd());
}

#[test]
fn boundaries_are_kept_both_ways() {
    let (a, b) = socketpair().unwrap();
    let sent: Vec<Vec<u8>> = [1, 100, 5000]
        .iter()
        .enumerate()
        .map(|(i, &len)| message(len, i as u8))
        .collect();
    for m in &sent {
        assert_eq!(a.send(m), Ok(m.len()));
    }
    let mut buf = vec![0u8; 8192];
    for m in &sent {
        assert_eq!(b.next_size(), Ok(m.len()));
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(n, m.len());
        assert_eq!(&buf[..n], &m[..]);
    }
    // And the other way, through the free functions.
    let reply = message(7, 99);
    assert_eq!(msg::send(&b, &reply), Ok(7));
    assert_eq!(msg::next_size(&a), Ok(7));
    assert_eq!(msg::recv(&a, &mut buf), Ok(7));
    assert_eq!(&buf[..7], &reply[..]);
    // Nothing else was queued on either side.
    set_nonblocking(&a);
    set_nonblocking(&b);
    assert_eq!(a.recv(&mut buf), Err(Errno::AGAIN));
    assert_eq!(b.recv(&mut buf), Err(Errno::AGAIN));
}

#[test]
fn a_message_into_an_exact_buffer() {
    let (a, b) = socketpair().unwrap();
    let m = message(64, 3);
    a.send(&m).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(64));
    assert_eq!(&buf[..], &m[..]);
}

#[test]
fn empty_send_is_einval_and_sends_nothing() {
    let (a, b) = socketpair().unwrap();
    assert_eq!(a.send(&[]), Err(Errno::INVAL));
    assert_eq!(msg::send(&a, &[]), Err(Errno::INVAL));
    set_nonblocking(&b);
    assert_eq!(b.next_size(), Err(Errno::AGAIN));
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Err(Errno::AGAIN));
}

#[test]
fn too_small_buffer_is_emsgsize_and_keeps_the_message() {
    let (a, b) = socketpair().unwrap();
    let big = message(100, 7);
    let next = message(3, 8);
    a.send(&big).unwrap();
    a.send(&next).unwrap();
    let mut small = [0xAAu8; 99];
    assert_eq!(b.recv(&mut small), Err(Errno::MSGSIZE));
    // The failed receive wrote nothing into the buffer.
    assert!(small.iter().all(|&x| x == 0xAA));
    assert_eq!(b.recv(&mut []), Err(Errno::MSGSIZE));
    assert_eq!(b.next_size(), Ok(100));
    assert_eq!(b.next_size(), Ok(100), "next_size takes nothing");
    let mut buf = [0u8; 100];
    assert_eq!(b.recv(&mut buf), Ok(100));
    assert_eq!(&buf[..], &big[..]);
    // The message after it is next, whole.
    assert_eq!(b.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], &next[..]);
}

#[test]
fn recv_returns_zero_after_every_queued_message_of_a_dropped_peer() {
    let (a, b) = socketpair().unwrap();
    let sent = [message(10, 1), message(2000, 2), message(1, 3)];
    for m in &sent {
        a.send(m).unwrap();
    }
    drop(a);
    let mut buf = [0u8; 4096];
    for m in &sent {
        assert_eq!(b.next_size(), Ok(m.len()));
        assert_eq!(b.recv(&mut buf), Ok(m.len()));
        assert_eq!(&buf[..m.len()], &m[..]);
    }
    assert_eq!(b.next_size(), Ok(0));
    assert_eq!(b.recv(&mut buf), Ok(0));
    // End of file stays end of file, also into an empty buffer.
    assert_eq!(b.recv(&mut buf), Ok(0));
    assert_eq!(b.recv(&mut []), Ok(0));
}

#[test]
fn peer_gone_with_messages_it_never_read() {
    // `a` dies with a message from `b` unread: the kernel then flags an error
    // (ECONNRESET) on `b`. rawipc must still report "peer gone" as 0 on
    // receive (after a's own messages) and EPIPE on send.
    let (a, b) = socketpair().unwrap();
    b.send(b"never read").unwrap();
    a.send(b"last words").unwrap();
    drop(a);
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(b.recv(&mut buf), Ok(0));
    assert_eq!(b.send(b"anyone?"), Err(Errno::PIPE));
}

#[test]
fn send_to_a_peer_that_died_with_unread_messages_is_epipe() {
    let (a, b) = socketpair().unwrap();
    b.send(b"never read").unwrap();
    drop(a);
    assert_eq!(b.send(b"anyone?"), Err(Errno::PIPE));
    assert_eq!(b.send(b"anyone?"), Err(Errno::PIPE));
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(0));
}

#[test]
fn send_after_peer_dropped_is_epipe() {
    // Rust's runtime ignores SIGPIPE in this binary, so this only shows the
    // errno; tests/fork/ shows that no SIGPIPE is raised.
    let (a, b) = socketpair().unwrap();
    drop(b);
    assert_eq!(a.send(b"x"), Err(Errno::PIPE));
    assert_eq!(msg::send(&a, b"y"), Err(Errno::PIPE));
}

#[test]
fn message_larger_than_max_size_is_emsgsize_and_sends_nothing() {
    let (a, b) = socketpair().unwrap();
    // Never touched: the size alone refuses it.
    let too_big = vec![1u8; msg::MAX_SIZE + 1];
    assert_eq!(a.send(&too_big), Err(Errno::MSGSIZE));
    set_nonblocking(&b);
    assert_eq!(b.next_size(), Err(Errno::AGAIN), "nothing was queued");
    // A message the socket takes still goes through whole.
    let sndbuf = sockopt::socket_send_buffer_size(&a).unwrap();
    let large = message(sndbuf / 2, 5);
    assert_eq!(a.send(&large), Ok(large.len()));
    let mut buf = vec![0u8; sndbuf];
    assert_eq!(b.recv(&mut buf), Ok(large.len()));
    assert_eq!(&buf[..large.len()], &large[..]);
}

/// Sends an empty message the way another program might (rawipc refuses to).
fn send_empty(fd: impl AsFd) {
    assert_eq!(rustix::net::send(fd, &[], SendFlags::NOSIGNAL), Ok(0));
}

#[test]
fn foreign_empty_message_is_skipped() {
    let (a, b) = socketpair().unwrap();
    send_empty(&a);
    send_empty(&a);
    a.send(b"real").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.next_size(), Ok(4));
    assert_eq!(b.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"real");
    // A live peer's empty message never reads as end of file.
    send_empty(&a);
    set_nonblocking(&b);
    assert_eq!(b.recv(&mut buf), Err(Errno::AGAIN));
    a.send(b"again").unwrap();
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"again");
    drop(a);
    assert_eq!(b.recv(&mut buf), Ok(0));
}

#[test]
fn foreign_empty_message_before_real_ones_from_a_peer_now_gone() {
    // The peer sends an empty message and then real ones, and closes before
    // the reader looks: the real ones must still come before end of file.
    let (a, b) = socketpair().unwrap();
    send_empty(&a);
    a.send(b"one").unwrap();
    send_empty(&a);
    send_empty(&a);
    a.send(b"two").unwrap();
    send_empty(&a);
    drop(a);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(b.next_size(), Ok(3));
    assert_eq!(b.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"two");
    assert_eq!(b.next_size(), Ok(0));
    assert_eq!(b.recv(&mut buf), Ok(0));
}

#[test]
fn foreign_peer_shutdown_for_writing_reads_as_peer_gone() {
    let (a, b) = socketpair().unwrap();
    a.send(b"bye").unwrap();
    send_empty(&a);
    rustix::net::shutdown(&a, Shutdown::Write).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Ok(3));
    assert_eq!(b.recv(&mut buf), Ok(0));
    // `a` is still open, and can still receive.
    b.send(b"still here").unwrap();
    assert_eq!(a.recv(&mut buf), Ok(10));
}

#[test]
fn nonblocking_socket_with_nothing_queued_is_eagain() {
    let (a, b) = socketpair().unwrap();
    set_nonblocking(&b);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Err(Errno::AGAIN));
    assert_eq!(b.next_size(), Err(Errno::AGAIN));
    a.send(b"now").unwrap();
    assert_eq!(b.recv(&mut buf), Ok(3));
}

#[test]
fn never_opened_fd_is_ebadf() {
    let fd = never_opened_fd();
    let mut buf = [0u8; 16];
    assert_eq!(msg::send(fd, b"x"), Err(Errno::BADF));
    assert_eq!(msg::recv(fd, &mut buf), Err(Errno::BADF));
    assert_eq!(msg::next_size(fd), Err(Errno::BADF));
}

#[test]
fn pipe_fd_is_enotsock() {
    let (r, w) = rawipc::pipe::pipe().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(msg::send(&w, b"x"), Err(Errno::NOTSOCK));
    assert_eq!(msg::recv(&r, &mut buf), Err(Errno::NOTSOCK));
    assert_eq!(msg::next_size(&r), Err(Errno::NOTSOCK));
    // Adopted as a MsgSocket, it fails the same way.
    let as_socket = MsgSocket::from(OwnedFd::from(w));
    assert_eq!(as_socket.send(b"x"), Err(Errno::NOTSOCK));
    assert_eq!(as_socket.recv(&mut buf), Err(Errno::NOTSOCK));
    assert_eq!(as_socket.next_size(), Err(Errno::NOTSOCK));
}

#[test]
fn owned_fd_conversions_keep_the_socket() {
    let (a, b) = socketpair().unwrap();
    let raw = a.as_fd().as_raw_fd();
    let fd = OwnedFd::from(a);
    assert_eq!(fd.as_raw_fd(), raw);
    let a = MsgSocket::from(fd);
    assert_eq!(a.as_fd().as_raw_fd(), raw);
    a.send(b"through").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Ok(7));
    assert_eq!(&buf[..7], b"through");
}

/// Socket pairs of the other kinds. A stream: `EPROTOTYPE` at once, with
/// data queued or not (it keeps no boundaries), and the data stays queued.
/// A datagram pair keeps boundaries but never reports its peer gone: a
/// message already queued is received, and a receive that would wait is
/// `EPROTOTYPE` at once.
#[test]
fn stream_and_datagram_sockets_are_eprototype_and_keep_their_data() {
    let pair = |kind| {
        rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            kind,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    };
    let mut buf = [0u8; 16];
    let (a, b) = pair(SocketType::STREAM);
    assert_eq!(msg::recv(&b, &mut buf), Err(Errno::PROTOTYPE), "no data");
    assert_eq!(msg::next_size(&b), Err(Errno::PROTOTYPE), "no data");
    rustix::net::send(&a, b"queued", SendFlags::empty()).unwrap();
    assert_eq!(msg::recv(&b, &mut buf), Err(Errno::PROTOTYPE));
    assert_eq!(msg::next_size(&b), Err(Errno::PROTOTYPE));
    assert_eq!(msg::next_sizes(&b), Err(Errno::PROTOTYPE));
    assert_eq!(msg::recv_fds(&b, &mut buf, &mut []), Err(Errno::PROTOTYPE));
    let adopted = MsgSocket::from(b);
    assert_eq!(adopted.recv(&mut buf), Err(Errno::PROTOTYPE));
    let b = OwnedFd::from(adopted);
    assert_eq!(rustix::io::read(&b, &mut buf), Ok(6), "still queued");
    assert_eq!(&buf[..6], b"queued");

    let (a, b) = pair(SocketType::DGRAM);
    assert_eq!(msg::recv(&b, &mut buf), Err(Errno::PROTOTYPE), "no wait");
    assert_eq!(msg::next_size(&b), Err(Errno::PROTOTYPE), "no wait");
    assert_eq!(msg::next_sizes(&b), Err(Errno::PROTOTYPE), "no wait");
    rustix::net::send(&a, b"one", SendFlags::empty()).unwrap();
    rustix::net::send(&a, b"two!", SendFlags::empty()).unwrap();
    assert_eq!(msg::next_size(&b), Ok(3));
    assert_eq!(msg::recv(&b, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(msg::recv_fds(&b, &mut buf, &mut []), Ok((4, 0)));
    assert_eq!(&buf[..4], b"two!");
    assert_eq!(
        msg::recv(&b, &mut buf),
        Err(Errno::PROTOTYPE),
        "nothing left"
    );
}
