//! rawipc::msg for messages above the socket's limit, in one process: the
//! boundaries of the limit and of `MAX_SIZE`, a buffer too small for a large
//! message, and forged headers (no fd, a pipe, a file, an unsealed memfd, one
//! of the wrong size). Across fork (a peer killed mid-way, no fd or mapping
//! left behind): tests/fork/msg.rs.

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard};

use rawipc::msg::{self, MsgSocket, socketpair};
use rawipc::{AsFd, BorrowedFd, Errno, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::{IoSlice, IoSliceMut, ioctl_fionbio};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// A message of `len` bytes whose every position and seed shows.
fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 251) as u8) ^ (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// The largest message this pair's socket takes directly (a raw `send`),
/// found by bisection.
fn socket_limit(a: &MsgSocket, b: &MsgSocket) -> usize {
    let buf = vec![0u8; 1 << 20];
    let mut sink = vec![0u8; 1 << 20];
    let (mut lo, mut hi) = (1usize, 1 << 20);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match rustix::net::send(a, &buf[..mid], SendFlags::DONTWAIT) {
            Ok(_) => {
                rustix::net::recv(b, &mut sink, RecvFlags::empty()).unwrap();
                lo = mid;
            }
            Err(Errno::MSGSIZE) => hi = mid - 1,
            Err(e) => panic!("send of {mid} bytes: {e}"),
        }
    }
    lo
}

/// The raw next message on `fd`: its bytes (up to 64) and its fds.
fn raw_recv(fd: impl AsFd) -> (Vec<u8>, Vec<OwnedFd>) {
    let mut data = [0u8; 64];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        fd,
        &mut [IoSliceMut::new(&mut data)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    (data[..got.bytes].to_vec(), fds)
}

/// Sends `bytes` with `fds` as another program would (no rawipc checks).
fn raw_send(fd: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(fd, &[IoSlice::new(bytes)], &mut control, SendFlags::empty()).unwrap();
}

/// The header rawipc sends for a large message of `len` bytes, as a peer
/// sees it: taken off a socket raw.
fn header_for(len: usize) -> Vec<u8> {
    let (a, b) = socketpair().unwrap();
    a.send(&vec![3u8; len]).unwrap();
    let (bytes, fds) = raw_recv(&b);
    assert_eq!(fds.len(), 1, "a large message carries one fd");
    bytes
}

/// A memfd of `len` bytes (a hole: no memory) with `seals`.
fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create("test", MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    fd
}

const ALL_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// The tests of this file one at a time: some count this process's fds, and
/// one holds 2 GiB for a moment.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fds open in this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn sizes_around_the_socket_limit_arrive_whole() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    let limit = socket_limit(&a, &b);
    assert!(limit > 64 * 1024, "the limit is {limit}");
    let sizes = [
        limit - 1,
        limit,
        limit + 1,
        limit + 4096,
        4 << 20,
        64 * 1024,
    ];
    // What travels: the message itself up to the limit, a 24-byte header
    // above it. (One at a time: the socket holds only one near its limit.)
    for (i, &len) in sizes.iter().enumerate() {
        assert_eq!(a.send(&message(len, i as u8)), Ok(len), "send {len}");
        let peeked =
            rustix::net::recv(&b, &mut [0u8; 0], RecvFlags::PEEK | RecvFlags::TRUNC).unwrap();
        assert_eq!(peeked.1, if len > limit { 24 } else { len }, "{len}");
        assert_eq!(b.next_size(), Ok(len), "next_size {len}");
        let mut buf = vec![0u8; len];
        assert_eq!(b.recv(&mut buf), Ok(len), "recv {len}");
        assert!(buf == message(len, i as u8), "message {len} is whole");
    }
    ioctl_fionbio(&b, true).unwrap();
    assert_eq!(b.next_size(), Err(Errno::AGAIN), "nothing else queued");
}

#[test]
fn a_buffer_too_small_for_a_large_message_keeps_it_queued() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    let len = 1 << 20;
    let m = message(len, 9);
    a.send(&m).unwrap();
    a.send(b"after").unwrap();
    let fds = open_fds();
    let mut small = vec![0xAAu8; len - 1];
    assert_eq!(b.recv(&mut small), Err(Errno::MSGSIZE));
    assert!(small.iter().all(|&x| x == 0xAA), "nothing written");
    assert_eq!(b.recv(&mut []), Err(Errno::MSGSIZE));
    assert_eq!(
        msg::recv_fds(&b, &mut small, &mut [None, None]),
        Err(Errno::MSGSIZE)
    );
    assert_eq!(b.next_size(), Ok(len));
    assert_eq!(
        msg::next_sizes(&b),
        Ok((len, 0)),
        "a large message has no fds"
    );
    assert_eq!(
        open_fds(),
        fds,
        "the looks closed their copies of the memfd"
    );
    let mut buf = vec![0u8; len + 10];
    assert_eq!(b.recv(&mut buf), Ok(len));
    assert!(buf[..len] == m[..]);
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"after");
}

#[test]
fn recv_fds_receives_a_large_message_with_no_fds() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    let m = message(300_000, 4);
    a.send(&m).unwrap();
    let mut buf = vec![0u8; m.len()];
    let mut slots = [None, None];
    assert_eq!(msg::recv_fds(&b, &mut buf, &mut slots), Ok((m.len(), 0)));
    assert!(buf == m);
    assert!(slots.iter().all(Option::is_none));
    // And with no slot at all.
    a.send(&m).unwrap();
    buf.fill(0);
    assert_eq!(b.recv_fds(&mut buf, &mut []), Ok((m.len(), 0)));
    assert!(buf == m);
}

#[test]
fn max_size_goes_through_and_one_more_is_emsgsize() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    // Zero pages until written: only the marks cost memory on this side.
    let mut m = vec![0u8; msg::MAX_SIZE];
    for (at, mark) in [(0, 1u8), (msg::MAX_SIZE / 2, 2), (msg::MAX_SIZE - 1, 3)] {
        m[at] = mark;
    }
    assert_eq!(a.send(&m), Ok(msg::MAX_SIZE));
    drop(m);
    let over = vec![0u8; msg::MAX_SIZE + 1];
    assert_eq!(a.send(&over), Err(Errno::MSGSIZE));
    drop(over);
    assert_eq!(b.next_size(), Ok(msg::MAX_SIZE));
    let mut buf = vec![0u8; msg::MAX_SIZE];
    assert_eq!(b.recv(&mut buf), Ok(msg::MAX_SIZE));
    let zeros = vec![0u8; 1 << 20];
    for (at, mark) in [(0, 1u8), (msg::MAX_SIZE / 2, 2), (msg::MAX_SIZE - 1, 3)] {
        assert_eq!(buf[at], mark, "byte {at}");
        buf[at] = 0;
    }
    assert!(
        buf.chunks(1 << 20).all(|c| c == &zeros[..]),
        "the rest is zero"
    );
    drop(buf);
    ioctl_fionbio(&b, true).unwrap();
    assert_eq!(
        b.next_size(),
        Err(Errno::AGAIN),
        "the refused one was never sent"
    );
}

/// Headers forged by a peer that is not rawipc, each followed by a real
/// message: the header whose fd fails a check is `EBADMSG`, taken off the
/// queue with its fd, and the next message is received whole.
#[test]
fn forged_headers_are_ebadmsg_and_the_stream_goes_on() {
    let _serial = serial();
    let len = 300_000;
    let header = header_for(len);
    let (pipe_r, _pipe_w) = rustix::pipe::pipe().unwrap();
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let file = OwnedFd::from(file);
    let unsealed = memfd(len as u64, SealFlags::empty());
    let writable = memfd(len as u64, SealFlags::SHRINK | SealFlags::GROW);
    let growable = memfd(len as u64, SealFlags::WRITE | SealFlags::SHRINK);
    let shorter = memfd(len as u64 - 1, ALL_SEALS);
    let longer = memfd(len as u64 + 1, ALL_SEALS);
    let cases: [(&str, BorrowedFd<'_>); 7] = [
        ("a pipe", pipe_r.as_fd()),
        ("a file", file.as_fd()),
        ("an unsealed memfd", unsealed.as_fd()),
        ("a memfd open to writing", writable.as_fd()),
        ("a memfd that can grow", growable.as_fd()),
        ("a memfd one byte short", shorter.as_fd()),
        ("a memfd one byte long", longer.as_fd()),
    ];
    let (a, b) = socketpair().unwrap();
    let fds = open_fds();
    for (what, fd) in cases {
        for call in ["recv", "next_size", "recv_fds", "next_sizes"] {
            raw_send(&a, &header, &[fd]);
            a.send(b"next").unwrap();
            let mut buf = vec![0u8; len];
            let got = match call {
                "recv" => b.recv(&mut buf).map(drop),
                "next_size" => b.next_size().map(drop),
                "recv_fds" => b.recv_fds(&mut buf, &mut [None]).map(drop),
                _ => msg::next_sizes(&b).map(drop),
            };
            assert_eq!(got, Err(Errno::BADMSG), "{call}, {what}");
            assert_eq!(
                b.recv(&mut buf),
                Ok(4),
                "{call}, {what}: the stream goes on"
            );
            assert_eq!(&buf[..4], b"next");
        }
    }
    assert_eq!(open_fds(), fds, "no copy of a forged fd is left open");
}

/// The sender's other seal against writing: when the kernel refuses
/// `F_SEAL_WRITE` with `EBUSY` (pages it still holds), the sender seals
/// with `F_SEAL_FUTURE_WRITE`, and the receiver takes that memfd too.
#[test]
fn a_memfd_sealed_against_future_writes_is_a_large_message() {
    let _serial = serial();
    let len = 300_000;
    let header = header_for(len);
    let fd = rustix::fs::memfd_create("test", MemfdFlags::ALLOW_SEALING).unwrap();
    let bytes = message(len, 9);
    assert_eq!(rustix::io::pwrite(&fd, &bytes, 0), Ok(len));
    let seals = SealFlags::FUTURE_WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    let (a, b) = socketpair().unwrap();
    raw_send(&a, &header, &[fd.as_fd()]);
    assert_eq!(b.next_size(), Ok(len));
    let mut buf = vec![0u8; len];
    assert_eq!(b.recv(&mut buf), Ok(len));
    assert!(buf == bytes, "the memfd's bytes");
    // Sealed against future writes, but free to shrink: no message.
    let shrinkable = memfd(len as u64, SealFlags::FUTURE_WRITE | SealFlags::GROW);
    raw_send(&a, &header, &[shrinkable.as_fd()]);
    assert_eq!(b.recv(&mut buf), Err(Errno::BADMSG));
}

#[test]
fn a_header_above_max_size_is_ebadmsg() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    let big = msg::MAX_SIZE as u64 + 1;
    // A real header with its length (the 8 bytes after the magic) and the
    // complement that follows made MAX_SIZE + 1.
    let mut header = header_for(1 << 20);
    header[8..16].copy_from_slice(&big.to_le_bytes());
    header[16..24].copy_from_slice(&(!big).to_le_bytes());
    let hole = memfd(big, ALL_SEALS);
    raw_send(&a, &header, &[hole.as_fd()]);
    a.send(b"next").unwrap();
    assert_eq!(b.next_size(), Err(Errno::BADMSG));
    assert_eq!(b.next_size(), Ok(4));
    // At MAX_SIZE exactly, a forged header with a proper memfd is a message.
    let max = msg::MAX_SIZE as u64;
    header[8..16].copy_from_slice(&max.to_le_bytes());
    header[16..24].copy_from_slice(&(!max).to_le_bytes());
    let hole = memfd(max, ALL_SEALS);
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(&mut buf), Ok(4));
    raw_send(&a, &header, &[hole.as_fd()]);
    assert_eq!(b.next_size(), Ok(msg::MAX_SIZE));
}

#[test]
fn what_is_not_a_header_is_delivered_as_it_is() {
    let _serial = serial();
    let header = header_for(1 << 20);
    let (a, b) = socketpair().unwrap();
    // A user's message that holds the header's bytes, with no fd: bytes.
    assert_eq!(a.send(&header), Ok(24));
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(24));
    assert_eq!(&buf[..24], &header[..]);
    // rawipc refuses to send the one shape it would take for a header.
    let sealed = memfd(1 << 20, ALL_SEALS);
    assert_eq!(a.send_fds(&header, &[sealed.as_fd()]), Err(Errno::INVAL));
    // Two fds, a header cut short or one byte longer, a broken complement:
    // messages with fds, for recv_fds, delivered raw.
    let mut broken = header.clone();
    broken[23] ^= 0x40;
    let mut longer = header.clone();
    longer.push(0);
    let shapes: [(&[u8], usize); 4] =
        [(&header, 2), (&header[..23], 1), (&longer, 1), (&broken, 1)];
    for (bytes, nfds) in shapes {
        let fds = vec![sealed.as_fd(); nfds];
        raw_send(&a, bytes, &fds);
        assert_eq!(b.recv(&mut buf), Err(Errno::MSGSIZE), "{nfds} fds");
        assert_eq!(msg::next_sizes(&b), Ok((bytes.len(), nfds)));
        let mut slots = [None, None];
        assert_eq!(b.recv_fds(&mut buf, &mut slots), Ok((bytes.len(), nfds)));
        assert_eq!(&buf[..bytes.len()], bytes);
    }
    // A header without its fd, as another program might send it: bytes.
    raw_send(&a, &header, &[]);
    assert_eq!(b.recv(&mut buf), Ok(24));
}

/// With `SO_PASSCRED` on, credentials come with every message, ahead of the
/// memfd: a large message is still found, checked and delivered.
#[test]
fn a_large_message_with_credentials_on() {
    let _serial = serial();
    let (a, b) = socketpair().unwrap();
    rustix::net::sockopt::set_socket_passcred(&b, true).unwrap();
    let m = message(400_000, 8);
    a.send(&m).unwrap();
    a.send(b"small").unwrap();
    assert_eq!(b.next_size(), Ok(m.len()));
    assert_eq!(msg::next_sizes(&b), Ok((m.len(), 0)));
    let mut buf = vec![0u8; m.len()];
    assert_eq!(b.recv(&mut buf), Ok(m.len()));
    assert!(buf == m);
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"small");
}
