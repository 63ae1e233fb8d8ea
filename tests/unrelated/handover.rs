//! Handing a channel end to another program: both ways, hostile hand-overs,
//! peers dying before, during and after, and no leak over many cycles.

use rawipc::chan::handover;
use rawipc::endpoint;
use rawipc::msg::{self, MsgSocket};
use rawipc::{AsFd, BorrowedFd, Errno, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, ftruncate, memfd_create};
use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};

use super::roles::MESSAGES;
use super::*;

pub fn channel_handed_to_another_program_both_ways() {
    // The other program takes the sending end, sends, and exits: this end
    // receives everything, then "peer gone".
    let n = name("both");
    let listener = endpoint::listen(&n).unwrap();
    let other = Program::start("take-sender-send-exit", &[&n]);
    let conn = listener.accept().unwrap();
    let mut rx = handover::give_sender(&conn, 4096).unwrap();
    let mut buf = [0u8; 8];
    for i in 0..MESSAGES {
        let k = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..k], &i.to_le_bytes());
    }
    assert_eq!(rx.recv(&mut buf), Ok(0), "the sender's program is gone");
    other.succeeds();
}

/// A hand-over message as rawipc makes it, with any values.
fn header(magic: &[u8; 8], version: u32, end: u32, cap: u64) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&version.to_ne_bytes());
    h[12..16].copy_from_slice(&end.to_ne_bytes());
    h[16..].copy_from_slice(&cap.to_ne_bytes());
    h
}

fn memfd(size: u64, seals: SealFlags) -> OwnedFd {
    let fd = memfd_create("hostile", MemfdFlags::ALLOW_SEALING).unwrap();
    ftruncate(&fd, size).unwrap();
    if !seals.is_empty() {
        fcntl_add_seals(&fd, seals).unwrap();
    }
    fd
}

fn life() -> OwnedFd {
    let (a, _b) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    a
}

const RECEIVER: u32 = 2;
const MAGIC: &[u8; 8] = b"rawipcch";
const CAP: u64 = 4096;
const SIZE: u64 = 4096 + CAP;

/// Sends `msg` with `fds` and expects take_receiver to refuse it with `err`,
/// leaving no fd and no mapping behind.
fn refused(msg: &[u8], fds: &[BorrowedFd<'_>], err: Errno) {
    let (a, b): (MsgSocket, MsgSocket) = msg::socketpair().unwrap();
    let before = (fd_count(), map_count());
    msg::send_fds(&a, msg, fds).unwrap();
    assert_eq!(handover::take_receiver(&b).err(), Some(err));
    assert_eq!((fd_count(), map_count()), before, "nothing leaked");
}

pub fn hostile_hand_overs_are_refused_without_leaks() {
    let good = memfd(SIZE, SealFlags::SHRINK | SealFlags::GROW);
    let l = life();
    let h = header(MAGIC, 1, RECEIVER, CAP);
    // The memory could still be shrunk.
    let shrinkable = memfd(SIZE, SealFlags::GROW);
    refused(&h, &[shrinkable.as_fd(), l.as_fd()], Errno::PERM);
    let unsealed = memfd(SIZE, SealFlags::empty());
    refused(&h, &[unsealed.as_fd(), l.as_fd()], Errno::PERM);
    // Not memory at all.
    let (r, _w) = rawipc::pipe::pipe().unwrap();
    refused(&h, &[r.as_fd(), l.as_fd()], Errno::PROTO);
    // The size does not match the stated capacity, either way.
    let small = memfd(SIZE - 4096, SealFlags::SHRINK);
    refused(&h, &[small.as_fd(), l.as_fd()], Errno::PROTO);
    refused(
        &header(MAGIC, 1, RECEIVER, CAP * 2),
        &[good.as_fd(), l.as_fd()],
        Errno::PROTO,
    );
    // Capacities no ring has.
    for cap in [0, 1000, 512, 3 * 1024, 1 << 31, u64::MAX] {
        refused(
            &header(MAGIC, 1, RECEIVER, cap),
            &[good.as_fd(), l.as_fd()],
            Errno::PROTO,
        );
    }
    // Wrong magic, version, end; a wrong length; wrong fds.
    refused(
        &header(b"rawipcxx", 1, RECEIVER, CAP),
        &[good.as_fd(), l.as_fd()],
        Errno::PROTO,
    );
    refused(
        &header(MAGIC, 2, RECEIVER, CAP),
        &[good.as_fd(), l.as_fd()],
        Errno::PROTO,
    );
    refused(
        &header(MAGIC, 1, 1, CAP),
        &[good.as_fd(), l.as_fd()],
        Errno::PROTO,
    );
    refused(&h[..20], &[good.as_fd(), l.as_fd()], Errno::PROTO);
    refused(&h, &[good.as_fd()], Errno::PROTO);
    refused(&h, &[], Errno::PROTO);
    refused(&h, &[good.as_fd(), r.as_fd()], Errno::PROTO);
    refused(&h, &[l.as_fd(), good.as_fd()], Errno::PROTO);
    let (dgram, _d) = socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    refused(&h, &[good.as_fd(), dgram.as_fd()], Errno::PROTO);
    // More fds than a hand-over has: too large, left queued.
    let (a, b) = msg::socketpair().unwrap();
    msg::send_fds(&a, &h, &[good.as_fd(), l.as_fd(), l.as_fd()]).unwrap();
    assert_eq!(handover::take_receiver(&b).err(), Some(Errno::MSGSIZE));
    assert_eq!(msg::next_sizes(&b), Ok((24, 3)));
    // A message that is no hand-over stays queued, whole, with its fds.
    let (a, b) = msg::socketpair().unwrap();
    msg::send(&a, b"not a hand-over").unwrap();
    msg::send_fds(&a, b"nor this", &[l.as_fd()]).unwrap();
    assert_eq!(handover::take_receiver(&b).err(), Some(Errno::PROTO));
    let mut buf = [0u8; 32];
    assert_eq!(msg::recv(&b, &mut buf), Ok(15));
    assert_eq!(handover::take_sender(&b).err(), Some(Errno::PROTO));
    let mut fds = [None];
    assert_eq!(msg::recv_fds(&b, &mut buf, &mut fds), Ok((8, 1)));
    // ... and a hand-over of the other end too.
    let _tx = handover::give_sender(&a, 4096).unwrap();
    assert_eq!(handover::take_receiver(&b).err(), Some(Errno::PROTO));
    let _tx = handover::take_sender(&b).expect("the hand-over, still there");
    // A well-formed hand-over of hostile memory is taken, and its garbage
    // ring refused by the channel's own checks, never trusted.
    let (a, b) = msg::socketpair().unwrap();
    let garbage = memfd(SIZE, SealFlags::SHRINK);
    rustix::io::write(&garbage, &[0xff; 8192]).unwrap();
    msg::send_fds(&a, &h, &[garbage.as_fd(), l.as_fd()]).unwrap();
    let mut rx = handover::take_receiver(&b).expect("a well-formed hand-over");
    assert_eq!(rx.try_recv(&mut [0; 64]), Err(Errno::PROTO));
}

pub fn giver_gone_before_giving_is_epipe() {
    let n = name("gone");
    let listener = endpoint::listen(&n).unwrap();
    let mut other = Program::start("connect-and-exit", &[&n]);
    other.expect_line("ready");
    let conn = listener.accept().unwrap();
    assert_eq!(handover::take_sender(&conn).err(), Some(Errno::PIPE));
    assert_eq!(handover::take_receiver(&conn).err(), Some(Errno::PIPE));
    other.succeeds();
    // And giving to a peer that is gone is EPIPE too.
    let before = (fd_count(), map_count());
    assert_eq!(
        handover::give_receiver(&conn, 4096).err(),
        Some(Errno::PIPE)
    );
    assert_eq!((fd_count(), map_count()), before);
}

/// Sends until the channel says the receiver is gone.
fn send_until_epipe(tx: &mut rawipc::chan::Sender) {
    for _ in 0..1_000_000 {
        match tx.send(b"anyone there?") {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e, Errno::PIPE);
                return;
            }
        }
    }
    panic!("a million sends to a dead receiver succeeded");
}

pub fn taker_killed_before_taking_is_a_dead_peer() {
    let n = name("killed");
    let listener = endpoint::listen(&n).unwrap();
    let mut other = Program::start("connect-and-hang", &[&n]);
    other.expect_line("ready");
    let conn = listener.accept().unwrap();
    let mut tx = handover::give_receiver(&conn, 4096).unwrap();
    // Its end is in flight, in the dying program's socket queue.
    other.kill();
    send_until_epipe(&mut tx);
    // The same for a giver of the sending end.
    let mut other = Program::start("connect-and-hang", &[&n]);
    other.expect_line("ready");
    let conn = listener.accept().unwrap();
    let mut rx = handover::give_sender(&conn, 4096).unwrap();
    other.kill();
    assert_eq!(rx.recv(&mut [0; 16]), Ok(0));
}

pub fn taker_killed_after_taking_is_a_dead_peer() {
    let n = name("taken");
    let listener = endpoint::listen(&n).unwrap();
    let mut other = Program::start("take-receiver-and-die", &[&n]);
    let conn = listener.accept().unwrap();
    let mut tx = handover::give_receiver(&conn, 4096).unwrap();
    other.expect_line("ready");
    let _ = other.child.wait();
    send_until_epipe(&mut tx);
}

pub fn thousands_of_cycles_leak_no_fd_and_no_mapping() {
    let n = name("cycles");
    let listener = endpoint::listen(&n).unwrap();
    let cycle = |i: u32| {
        let client = endpoint::connect(&n).unwrap();
        let server = listener.accept().unwrap();
        let mut buf = [0u8; 8];
        if i % 2 == 0 {
            let mut tx = handover::give_receiver(&server, 4096).unwrap();
            let mut rx = handover::take_receiver(&client).unwrap();
            tx.send(&i.to_le_bytes()).unwrap();
            assert_eq!(rx.recv(&mut buf), Ok(4));
        } else {
            let mut rx = handover::give_sender(&server, 4096).unwrap();
            let mut tx = handover::take_sender(&client).unwrap();
            tx.send(&i.to_le_bytes()).unwrap();
            assert_eq!(rx.recv(&mut buf), Ok(4));
            drop(tx);
            assert_eq!(rx.recv(&mut buf), Ok(0));
        }
        assert_eq!(buf[..4], i.to_le_bytes());
    };
    cycle(0);
    cycle(1);
    let before = (fd_count(), map_count());
    for i in 0..3000 {
        cycle(i);
    }
    assert_eq!(
        (fd_count(), map_count()),
        before,
        "fds and mappings after 3000 cycles"
    );
}

pub fn giver_killed_after_giving_is_a_dead_peer() {
    let n = name("giver");
    let listener = endpoint::listen(&n).unwrap();
    let mut other = Program::start("give-receiver-send-and-die", &[&n]);
    let conn = listener.accept().unwrap();
    let _ = other.child.wait();
    // The giver died after giving: its end is taken still, and what it sent
    // arrives, then "peer gone".
    let mut rx = handover::take_receiver(&conn).expect("take what a dead giver gave");
    let mut buf = [0u8; 16];
    let k = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"last words");
    assert_eq!(rx.recv(&mut buf), Ok(0));
    let _ = other.line();
}

pub fn hostile_life_lines_and_unwritable_memory_are_refused() {
    let good = memfd(SIZE, SealFlags::SHRINK | SealFlags::GROW);
    let h = header(MAGIC, 1, RECEIVER, CAP);
    // A listening socket never reports its "peer" gone: with it as the
    // life-line, a receiver would wait for ever once the giver died.
    let listening = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr =
        rustix::net::SocketAddrUnix::new_abstract_name(name("life-listener").as_bytes()).unwrap();
    rustix::net::bind(&listening, &addr).unwrap();
    rustix::net::listen(&listening, 1).unwrap();
    refused(&h, &[good.as_fd(), listening.as_fd()], Errno::PROTO);
    // Nor one never connected, nor a TCP socket.
    let unconnected = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    refused(&h, &[good.as_fd(), unconnected.as_fd()], Errno::PROTO);
    let tcp = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    refused(&h, &[good.as_fd(), tcp.as_fd()], Errno::PROTO);
    // Memory this side cannot write: sealed against writing (now or for
    // mappings to come), or opened read-only.
    let (l, _peer) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    for seal in [SealFlags::WRITE, SealFlags::FUTURE_WRITE] {
        let sealed = memfd(SIZE, SealFlags::SHRINK | seal);
        refused(&h, &[sealed.as_fd(), l.as_fd()], Errno::PROTO);
    }
    let path = format!("/proc/self/fd/{}", rawipc::AsRawFd::as_raw_fd(&good));
    let read_only: OwnedFd = std::fs::File::open(path).unwrap().into();
    refused(&h, &[read_only.as_fd(), l.as_fd()], Errno::PROTO);
    // The same memory, writable, with a live life-line: taken.
    let (a, b) = msg::socketpair().unwrap();
    msg::send_fds(&a, &h, &[good.as_fd(), l.as_fd()]).unwrap();
    assert!(handover::take_receiver(&b).is_ok());
}

/// Lets this (forked) process open no more fd (`more` 0) or one more (1);
/// returns the limit to restore.
fn limit_fds_to(more: u64) -> rustix::process::Rlimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // The limit is on fd numbers, and a new fd takes the lowest free one.
    let lowest = memfd_create("probe", MemfdFlags::CLOEXEC).unwrap();
    let lowest = rawipc::AsRawFd::as_raw_fd(&lowest) as u64;
    let low = Rlimit {
        current: Some(lowest + more),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, low).unwrap();
    limit
}

pub fn out_of_fds_in_accept_take_and_recv_fds_loses_nothing() {
    let n = name("emfile");
    let listener = endpoint::listen(&n).unwrap();
    let child = spawn(move || {
        let client = endpoint::connect(&n).unwrap();
        let (r, w) = rawipc::pipe::pipe().unwrap();
        let before = (fd_count(), map_count());
        let limit = limit_fds_to(0);
        // accept: no fd for the connection; it stays in the backlog.
        assert_eq!(listener.accept().err(), Some(Errno::MFILE));
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
        assert_eq!((fd_count(), map_count()), before);
        let server = listener.accept().expect("the client still waits");
        // take: room for one of the two fds; the hand-over stays queued.
        let _tx = handover::give_receiver(&server, 4096).unwrap();
        msg::send_fds(&server, b"fd", &[w.as_fd()]).unwrap();
        let before = (fd_count(), map_count());
        let limit = limit_fds_to(1);
        assert_eq!(handover::take_receiver(&client).err(), Some(Errno::MFILE));
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
        assert_eq!((fd_count(), map_count()), before);
        let mut rx = handover::take_receiver(&client).expect("the hand-over, still there");
        assert_eq!(rx.try_recv(&mut [0; 8]), Err(Errno::AGAIN));
        // recv_fds: no fd free for the one it carries.
        let mut fds = [None];
        let mut buf = [0u8; 4];
        let before = (fd_count(), map_count());
        let limit = limit_fds_to(0);
        assert_eq!(
            client.recv_fds(&mut buf, &mut fds).err(),
            Some(Errno::MFILE)
        );
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
        assert_eq!((fd_count(), map_count()), before);
        assert_eq!(client.recv_fds(&mut buf, &mut fds), Ok((2, 1)));
        rustix::io::write(fds[0].as_ref().unwrap(), b"!").unwrap();
        assert_eq!(r.read(&mut buf), Ok(1));
        // The listener is as good as new.
        let _again = endpoint::connect(&n).unwrap();
        assert!(listener.accept().is_ok());
    });
    expect_success(child);
}

/// A small pseudo-random number (xorshift), to vary where a kill lands.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

pub fn a_peer_killed_anywhere_in_a_hand_over_leaves_nothing_behind() {
    let n = name("anywhere");
    let listener = endpoint::listen(&n).unwrap();
    let mut seed = u64::from(std::process::id()) | 1;
    let reap = |pid| {
        let _ = rawipc::process::waitpid(pid, rawipc::process::WaitOptions::empty());
    };
    // Warm up, so that lazily made things (std's buffers) are counted.
    let first = spawn(|| {
        let _ = endpoint::connect(&n);
    });
    drop(listener.accept());
    reap(first);
    let before = (fd_count(), map_count());
    for i in 0..60 {
        let delay = std::time::Duration::from_micros(next_random(&mut seed) % 3000);
        let giver_dies = i % 2 == 1;
        let other = spawn(|| {
            let conn = endpoint::connect(&n).unwrap();
            if giver_dies {
                let mut tx = handover::give_receiver(&conn, 4096).unwrap();
                while tx.send(b"x").is_ok() {}
            } else {
                let mut rx = handover::take_receiver(&conn).unwrap();
                while rx.recv(&mut [0; 8]).is_ok_and(|k| k > 0) {}
            }
        });
        let conn = listener.accept().expect("accept");
        std::thread::sleep(delay / 2);
        let killer = spawn(move || {
            std::thread::sleep(delay / 2);
            let _ = rustix::process::kill_process(other, Signal::KILL);
        });
        if giver_dies {
            // Either nothing came (EPIPE) or a channel that ends with 0.
            match handover::take_receiver(&conn) {
                Ok(mut rx) => while rx.recv(&mut [0; 8]).expect("recv") > 0 {},
                Err(e) => assert_eq!(e, Errno::PIPE),
            }
        } else {
            let mut tx = handover::give_receiver(&conn, 4096).expect("give");
            let mut sent = 0u64;
            let end = loop {
                match tx.send(b"y") {
                    Ok(()) => sent += 1,
                    Err(e) => break e,
                }
            };
            assert_eq!(end, Errno::PIPE, "after {sent} messages");
        }
        drop(conn);
        reap(killer);
        reap(other);
        assert_eq!(
            (fd_count(), map_count()),
            before,
            "fds and mappings after kill {i} at {delay:?}"
        );
    }
}

pub fn a_life_line_kept_alive_in_its_own_queue_is_a_dead_peer() {
    // A hostile giver sends its end of the life-line into the life-line
    // itself, then dies: that end lives on in the taker's receive queue and
    // never closes. Data on a life-line (rawipc never writes one) is taken
    // as the peer gone, so the receiver does not wait for ever.
    let child = spawn(|| {
        // SAFETY: a plain alarm: if the receive below hangs, SIGALRM ends
        // this child and the test fails.
        unsafe { libc::alarm(10) };
        let (a, b) = msg::socketpair().unwrap();
        let (life, giver_end) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let ring = memfd(SIZE, SealFlags::SHRINK | SealFlags::GROW);
        let h = header(MAGIC, 1, RECEIVER, CAP);
        msg::send_fds(&a, &h, &[ring.as_fd(), life.as_fd()]).unwrap();
        drop((life, ring));
        let mut rx = handover::take_receiver(&b).expect("a well-formed hand-over");
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
        let itself = [giver_end.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); 64];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&itself)));
        let iov = [rustix::io::IoSlice::new(b"x")];
        sendmsg(&giver_end, &iov, &mut control, SendFlags::empty()).unwrap();
        drop(giver_end);
        assert_eq!(rx.recv(&mut [0; 8]), Ok(0), "the giver is gone");
    });
    expect_success(child);
}
