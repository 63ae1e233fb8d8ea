//! The readiness fd of each channel end: what `poll` and `epoll` report, the
//! arming rule ("try until EAGAIN, then wait"), level- and edge-triggered
//! epoll, many wake-ups without a loss, a dead peer, a hostile peer's bytes,
//! fds and flags, and no fd left behind.

use std::time::Duration;

use rawipc::chan::{Channel, Receiver, Sender, handover};
use rawipc::process::Status;
use rawipc::{AsFd, Errno};
use rustix::event::Timespec;
use rustix::event::epoll;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType, send, socketpair};

use super::support::child::{open_fds, pending, readable, wait_readable};
use super::{fork, in_child, kill, reap, xorshift};

/// Receives one message the poll way: try until it comes, waiting on the fd
/// after each EAGAIN; 0 when the sender is gone.
fn recv_polling(rx: &mut Receiver, buf: &mut [u8]) -> usize {
    loop {
        match rx.try_recv(buf) {
            Ok(n) => return n,
            Err(Errno::AGAIN) => wait_readable(&*rx),
            Err(e) => panic!("try_recv: {e:?}"),
        }
    }
}

/// Sends one message the poll way.
fn send_polling(tx: &mut Sender, msg: &[u8]) -> Result<(), Errno> {
    loop {
        match tx.try_send(msg) {
            Err(Errno::AGAIN) => wait_readable(&*tx),
            other => return other,
        }
    }
}

pub fn fd_reports_a_message_and_then_the_sender_gone() {
    let chan = Channel::new(4096).unwrap();
    let (go_rx, go_tx) = rawipc::pipe::pipe().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(go_tx);
            let mut tx = chan.into_sender();
            let mut b = [0u8; 1];
            go_rx.read(&mut b).unwrap();
            tx.send(b"one").unwrap();
            go_rx.read(&mut b).unwrap();
        })
    };
    drop(go_rx);
    let mut rx = chan.into_receiver();
    let mut buf = [0u8; 64];
    assert!(!readable(&rx, 0), "nothing yet");
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN), "arms the fd");
    assert!(!readable(&rx, 20), "still nothing");
    go_tx.write_all(b"1").unwrap();
    wait_readable(&rx);
    assert_eq!(rx.try_recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN), "armed again");
    assert!(!readable(&rx, 0), "the wake-up byte was drained");
    drop(go_tx); // the child ends
    wait_readable(&rx);
    assert_eq!(rx.try_recv(&mut buf), Ok(0), "the sender is gone");
    assert!(readable(&rx, 0), "and the fd stays readable");
    assert_eq!(rx.try_recv(&mut buf), Ok(0));
    assert!(reap(pid).success());
}

pub fn fd_reports_room_and_then_the_receiver_gone() {
    let chan = Channel::new(1024).unwrap();
    let (go_rx, go_tx) = rawipc::pipe::pipe().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(go_tx);
            let mut rx = chan.into_receiver();
            let mut b = [0u8; 1];
            go_rx.read(&mut b).unwrap();
            let mut buf = [0u8; 256];
            assert_eq!(rx.recv(&mut buf).unwrap(), 100);
            assert_eq!(rx.recv(&mut buf).unwrap(), 100);
            go_rx.read(&mut b).unwrap();
        })
    };
    drop(go_rx);
    let mut tx = chan.into_sender();
    let mut sent = 0;
    while tx.try_send(&[7; 100]).is_ok() {
        sent += 1;
    }
    assert!(sent > 3, "a 1 KiB ring takes a few messages of 100 B");
    assert_eq!(tx.try_send(&[7; 100]), Err(Errno::AGAIN), "full: armed");
    assert!(!readable(&tx, 20), "no room yet");
    go_tx.write_all(b"1").unwrap();
    wait_readable(&tx);
    // Readable from the first release on; the second makes room for sure.
    let mut tries = 0;
    while tx.try_send(&[8; 100]) == Err(Errno::AGAIN) {
        tries += 1;
        assert!(tries < 3, "woken for each release");
        wait_readable(&tx);
    }
    drop(go_tx);
    assert!(reap(pid).success());
    wait_readable(&tx);
    assert_eq!(
        tx.try_send(&[9; 100]),
        Err(Errno::PIPE),
        "the receiver is gone"
    );
    assert!(readable(&tx, 0));
}

pub fn fd_reports_a_killed_peer() {
    for sending_child in [true, false] {
        let chan = Channel::new(4096).unwrap();
        let Some(pid) = fork() else {
            in_child(|| {
                // Hold the end, never use it, until killed.
                let _end = match sending_child {
                    true => Ok(chan.into_sender()),
                    false => Err(chan.into_receiver()),
                };
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        };
        let mut buf = [0u8; 64];
        let (mut tx, mut rx) = match sending_child {
            true => (None, Some(chan.into_receiver())),
            false => (Some(chan.into_sender()), None),
        };
        if let Some(rx) = &mut rx {
            assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
            assert!(!readable(&*rx, 20));
        }
        if let Some(tx) = &mut tx {
            while tx.try_send(&[1; 64]).is_ok() {}
            assert!(!readable(&*tx, 20));
        }
        kill(pid);
        assert_eq!(
            reap(pid),
            Status::Killed {
                signal: 9,
                core_dumped: false
            }
        );
        if let Some(rx) = &mut rx {
            wait_readable(&*rx);
            assert_eq!(rx.try_recv(&mut buf), Ok(0), "receive: peer gone");
        }
        if let Some(tx) = &mut tx {
            wait_readable(&*tx);
            assert_eq!(tx.try_send(&[1; 64]), Err(Errno::PIPE), "send: peer gone");
        }
    }
}

/// A request and reply over two channels, both sides waiting only through
/// the fds: thousands of wake-ups each way, none lost.
pub fn many_wakes_through_the_fds_lose_none() {
    const ROUNDS: u32 = 3000;
    let requests = Channel::new(4096).unwrap();
    let replies = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut rx = requests.into_receiver();
            let mut tx = replies.into_sender();
            let mut buf = [0u8; 64];
            loop {
                let n = recv_polling(&mut rx, &mut buf);
                if n == 0 {
                    break;
                }
                let v = u32::from_ne_bytes(buf[..4].try_into().unwrap());
                send_polling(&mut tx, &(v + 1).to_ne_bytes()).unwrap();
            }
        })
    };
    let mut tx = requests.into_sender();
    let mut rx = replies.into_receiver();
    let mut buf = [0u8; 64];
    for i in 0..ROUNDS {
        send_polling(&mut tx, &i.to_ne_bytes()).unwrap();
        assert_eq!(recv_polling(&mut rx, &mut buf), 4);
        assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), i + 1);
    }
    drop(tx);
    assert_eq!(recv_polling(&mut rx, &mut buf), 0, "the child is gone");
    assert!(reap(pid).success());
}

/// A sender waiting on its fd for room that only the receiver's very last
/// release frees (the receiver then stops receiving, alive, waiting for the
/// sender on a pipe): the release must wake it, every time.
pub fn the_last_release_wakes_a_sender_waiting_on_its_fd() {
    let mut seed = 0x5eed_u64 ^ u64::from(std::process::id());
    for _ in 0..300 {
        // Two messages of 400 B fit in the ring; the third wraps, and fits
        // only once both are read.
        let chan = Channel::new(1024).unwrap();
        let (done_r, done_w) = rawipc::pipe::pipe().unwrap();
        let pause = xorshift(&mut seed) % 200;
        let Some(pid) = fork() else {
            in_child(|| {
                drop(done_w);
                let mut rx = chan.into_receiver();
                let mut buf = [0u8; 512];
                for i in 0..2u8 {
                    std::thread::sleep(Duration::from_micros(pause));
                    assert_eq!(rx.recv(&mut buf).unwrap(), 400);
                    assert_eq!(buf[0], i);
                }
                // Alive, end open, receiving no more: only the sender's
                // word ends this.
                done_r.read(&mut [0u8; 1]).unwrap();
            })
        };
        drop(done_r);
        let mut tx = chan.into_sender();
        for i in 0..3u8 {
            loop {
                match tx.try_send(&[i; 400]) {
                    Ok(()) => break,
                    Err(Errno::AGAIN) => {
                        assert!(readable(&tx, 20_000), "message {i}: a lost wake-up")
                    }
                    Err(e) => panic!("try_send: {e:?}"),
                }
            }
        }
        done_w.write_all(b"x").unwrap();
        assert!(reap(pid).success());
    }
}

/// A stream through a small ring with both sides waiting through their fds,
/// in an epoll set, level-triggered or edge-triggered: every message, in
/// order, with the sender often waiting for room and the receiver often
/// waiting for messages.
fn stream_through_epoll(edge: bool) {
    const COUNT: u64 = 20_000;
    let chan = Channel::new(1024).unwrap();
    let flags = match edge {
        true => epoll::EventFlags::IN | epoll::EventFlags::ET,
        false => epoll::EventFlags::IN,
    };
    let wait = |ep: &rawipc::OwnedFd| {
        let mut events = Vec::with_capacity(4);
        let minute = Timespec {
            tv_sec: 60,
            tv_nsec: 0,
        };
        rustix::io::retry_on_intr(|| {
            epoll::wait(
                ep,
                rustix::buffer::spare_capacity(&mut events),
                Some(&minute),
            )
        })
        .expect("epoll_wait");
        assert!(
            !events.is_empty(),
            "epoll_wait timed out: a wake-up was lost"
        );
    };
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
            epoll::add(&ep, &tx, epoll::EventData::new_u64(1), flags).unwrap();
            let mut seed = 7u64;
            let mut i = 0u64;
            while i < COUNT {
                // Bursts of random sizes, so that the ring fills often.
                match tx.try_send(
                    &i.to_ne_bytes()
                        .repeat(1 + (xorshift(&mut seed) % 8) as usize),
                ) {
                    Ok(()) => i += 1,
                    Err(Errno::AGAIN) => wait(&ep),
                    Err(e) => panic!("try_send: {e:?}"),
                }
            }
        })
    };
    let mut rx = chan.into_receiver();
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(&ep, &rx, epoll::EventData::new_u64(2), flags).unwrap();
    let mut buf = [0u8; 256];
    let mut next = 0u64;
    let mut waits = 0;
    loop {
        match rx.try_recv(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert_eq!(n % 8, 0);
                for chunk in buf[..n].chunks(8) {
                    assert_eq!(u64::from_ne_bytes(chunk.try_into().unwrap()), next);
                }
                next += 1;
            }
            Err(Errno::AGAIN) => {
                waits += 1;
                wait(&ep);
            }
            Err(e) => panic!("try_recv: {e:?}"),
        }
    }
    assert_eq!(next, COUNT, "every message, in order");
    assert!(waits > 10, "the receiver waited on its fd ({waits} times)");
    assert!(reap(pid).success(), "the sender's side passed");
}

pub fn level_triggered_epoll_delivers_every_message() {
    stream_through_epoll(false);
}

pub fn edge_triggered_epoll_delivers_every_message() {
    stream_through_epoll(true);
}

/// The peer writes to the fd only when this side armed it, and one byte at
/// most per arming: a busy channel makes no system call.
pub fn only_an_armed_end_is_woken_and_once() {
    let chan = Channel::new(64 * 1024).unwrap();
    let (mut tx, mut rx) = chan.split().unwrap();
    let mut buf = [0u8; 64];
    // A new end starts armed: the first message rings it, once.
    assert!(!readable(&rx, 0), "a new receiving end: nothing yet");
    assert!(readable(&tx, 0), "a new sending end: room");
    tx.send(&[1; 16]).unwrap();
    assert_eq!(pending(&rx), 1, "the first message rings");
    assert_eq!(rx.try_recv(&mut buf), Ok(16));
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN), "drains, arms");
    assert_eq!(pending(&rx), 0);
    tx.send(&[1; 16]).unwrap();
    assert_eq!(
        rx.try_recv(&mut buf),
        Ok(16),
        "found at once: not armed any more"
    );
    // Not armed: a thousand messages ring nothing.
    for _ in 0..1000 {
        tx.send(&[1; 16]).unwrap();
    }
    assert_eq!(
        pending(&rx),
        1,
        "no byte without arming (the one of the last arming)"
    );
    for _ in 0..1000 {
        assert_eq!(rx.try_recv(&mut buf), Ok(16));
    }
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN), "armed");
    for _ in 0..1000 {
        tx.send(&[2; 16]).unwrap();
    }
    assert_eq!(pending(&rx), 1, "one byte for a thousand messages");
    assert!(readable(&rx, 0));
    // Not drained by receiving; by the next EAGAIN.
    for _ in 0..1000 {
        assert_eq!(rx.try_recv(&mut buf), Ok(16));
    }
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    assert_eq!(pending(&rx), 0, "drained before arming again");
    // A try_recv that finds a message does not arm.
    tx.send(&[3; 16]).unwrap();
    assert_eq!(pending(&rx), 1);
    assert_eq!(rx.try_recv(&mut buf), Ok(16));
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    assert_eq!(pending(&rx), 0);

    // The same for room: a sender arms only when it finds none.
    while tx.try_send(&[4; 1000]).is_ok() {}
    assert_eq!(pending(&tx), 0);
    for _ in 0..10 {
        assert_eq!(rx.try_recv(&mut [0; 1024]), Ok(1000));
    }
    assert_eq!(pending(&tx), 1, "one byte for ten messages freed");
    assert!(readable(&tx, 0));
    assert_eq!(tx.try_send(&[5; 1000]), Ok(()));
}

/// A hostile sender: floods the receiver's fd, sends fds into it (its own
/// end among them, which would keep the life-line open after its death if
/// it stayed queued), and scribbles on both flags. The receiver neither
/// hangs nor crashes, drains without trusting a count, and still learns
/// that the sender is gone.
pub fn hostile_bytes_fds_and_flags_are_survived() {
    let chan = Channel::new(4096).unwrap();
    let region = chan.region();
    let (tx, mut rx) = chan.split().unwrap();
    let mut buf = [0u8; 64];
    // The sender's end of the life-line, as a hostile sender holds it.
    let bell = rustix::io::dup(tx.as_fd()).unwrap();
    // Flood it: far more than one drain takes.
    let mut flooded = 0;
    loop {
        match send(&bell, &[0xAA; 4096], SendFlags::DONTWAIT) {
            Ok(n) => flooded += n,
            Err(Errno::AGAIN) => break,
            Err(e) => panic!("send: {e:?}"),
        }
    }
    assert!(flooded > 64 * 1024);
    // Its own end, and another socket, sent into the life-line.
    let (a, _b) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    // One try drains a bounded part, and leaves the rest.
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    assert!(pending(&rx) > 0, "a flood is not drained in one go");
    assert!(readable(&rx, 0));
    rawipc::msg::send_fds(&bell, b"x", &[bell.as_fd(), a.as_fd()]).unwrap();
    // Garbage in both flags.
    for at in [128usize, 256] {
        // SAFETY: the control block's flag words, at their 128-byte lines.
        unsafe { region.0.add(at).cast::<u32>().write_volatile(0xFFFF_FFFF) };
    }
    // The sender dies: only the in-flight copy of its end stays.
    drop(tx);
    drop(bell);
    let mut got_gone = false;
    for _ in 0..100 {
        match rx.try_recv(&mut buf) {
            Ok(0) => {
                got_gone = true;
                break;
            }
            Err(Errno::AGAIN) => assert!(readable(&rx, 0), "readable while bytes are left"),
            other => panic!("try_recv: {other:?}"),
        }
    }
    assert!(
        got_gone,
        "the end sent into the life-line did not keep it open"
    );
    assert!(readable(&rx, 0));
}

/// A receiver that scribbles on the sender's flag, and one that always
/// asks for a wake-up: the sender's sends cost extra system calls, never a
/// hang or a lost message.
pub fn scribbled_flags_cost_wakes_not_messages() {
    let mut seed = 99u64;
    let chan = Channel::new(4096).unwrap();
    let region = chan.region();
    let (mut tx, mut rx) = chan.split().unwrap();
    let mut buf = [0u8; 64];
    for i in 0..20_000u32 {
        for at in [128usize, 256] {
            // SAFETY: the control block's flag words.
            unsafe {
                region
                    .0
                    .add(at)
                    .cast::<u32>()
                    .write_volatile(xorshift(&mut seed) as u32)
            };
        }
        match tx.try_send(&i.to_ne_bytes()) {
            Ok(()) => {
                assert_eq!(rx.try_recv(&mut buf), Ok(4));
                assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), i);
            }
            Err(e) => panic!("try_send: {e:?}"),
        }
        assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    }
}

/// The fd of an end handed over to another process (here: over a socket
/// pair in this one) works as that of one made before fork.
pub fn handed_over_ends_have_working_fds() {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let mut tx = handover::give_receiver(&a, 4096).unwrap();
    let mut rx = handover::take_receiver(&b).unwrap();
    drop((a, b));
    let mut buf = [0u8; 16];
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    assert!(!readable(&rx, 0));
    tx.send(b"hi").unwrap();
    assert!(readable(&rx, 0));
    assert_eq!(rx.try_recv(&mut buf), Ok(2));
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    drop(tx);
    assert!(readable(&rx, 0));
    assert_eq!(rx.try_recv(&mut buf), Ok(0));
}

pub fn fd_counts_stay_the_same_over_many_cycles() {
    let before = open_fds();
    let mut buf = [0u8; 16];
    for i in 0..2000 {
        let chan = Channel::new(1024).unwrap();
        let (mut tx, mut rx) = chan.split().unwrap();
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        epoll::add(
            &ep,
            &rx,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )
        .unwrap();
        assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
        tx.send(&[1; 8]).unwrap();
        assert!(readable(&rx, 0));
        if i % 2 == 0 {
            drop(tx);
            assert_eq!(rx.try_recv(&mut buf), Ok(8));
        } else {
            drop(rx);
            while tx.try_send(&[1; 8]).is_ok() {}
        }
    }
    for _ in 0..500 {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let rx = handover::give_sender(&a, 1024).unwrap();
        let tx = handover::take_sender(&b).unwrap();
        drop((a, b));
        assert!(
            !readable(&rx, 0) && readable(&tx, 0),
            "a handed-over pair starts armed"
        );
    }
    assert_eq!(open_fds(), before, "no fd left behind");
}
