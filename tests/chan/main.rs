//! The shared-memory channel: messages across fork, both waiting modes, a
//! dead peer on either side, zero-copy, bad input, and a ring that a hostile
//! peer scribbles on.

#[path = "../support/mod.rs"]
mod support;

mod readiness;
mod server;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use rawipc::Errno;
use rawipc::chan::{Channel, Receiver, Sender};
use rawipc::process::Status;
use rawipc::shm::Shared;
use support::child::{fork, in_child, kill, reap};

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(server::CLIENT_ENV) {
        server::client(&spec);
    }
    support::main(tests![
        messages_cross_fork_whole_and_in_order,
        blocking_only_mode_delivers_too,
        receiver_gets_every_message_then_peer_gone,
        sender_killed_at_random_moments_loses_nothing_and_tears_nothing,
        blocked_receiver_wakes_when_sender_dies,
        blocked_sender_gets_epipe_when_receiver_dies,
        try_send_and_try_recv_do_not_wait,
        bad_sizes_are_refused_and_lose_nothing,
        zero_copy_reserve_commit_and_borrow,
        dropped_reservation_sends_nothing,
        capacity_is_rounded_and_bounded,
        corrupt_ring_never_crashes_or_hangs_the_reader,
        corrupt_markers_never_crash_or_hang_the_reader,
        corrupt_head_never_crashes_or_hangs_the_sender,
        corrupt_ring_under_blocking_recv_ends,
        sender_sees_room_as_soon_as_it_is_freed,
        sender_blocked_on_a_full_ring_wakes_when_room_is_freed,
        dropped_reservations_over_many_wraps_lose_nothing,
        kept_message_is_lent_again_and_released_whatever_the_ring_says,
        readiness::fd_reports_a_message_and_then_the_sender_gone,
        readiness::fd_reports_room_and_then_the_receiver_gone,
        readiness::fd_reports_a_killed_peer,
        readiness::many_wakes_through_the_fds_lose_none,
        readiness::the_last_release_wakes_a_sender_waiting_on_its_fd,
        readiness::level_triggered_epoll_delivers_every_message,
        readiness::edge_triggered_epoll_delivers_every_message,
        readiness::only_an_armed_end_is_woken_and_once,
        readiness::hostile_bytes_fds_and_flags_are_survived,
        readiness::scribbled_flags_cost_wakes_not_messages,
        readiness::handed_over_ends_have_working_fds,
        readiness::fd_counts_stay_the_same_over_many_cycles,
        server::epoll_server_serves_64_clients_and_notices_the_killed,
    ])
}

/// Message `i`: its length varies from 1 byte to about 3 KiB, and every
/// byte depends on `i` and its index, so a torn or misplaced message shows.
fn message(i: u64, buf: &mut [u8]) -> usize {
    let len = 1 + ((i * 7919) % 3000) as usize;
    for (k, b) in buf[..len].iter_mut().enumerate() {
        *b = (i as usize * 31 + k * 7) as u8;
    }
    len
}

fn check_message(i: u64, got: &[u8]) {
    let mut want = [0u8; 4096];
    let len = message(i, &mut want);
    assert_eq!(got.len(), len, "message {i}: length");
    assert!(got == &want[..len], "message {i}: torn or misplaced bytes");
}

fn send_numbered(tx: &mut Sender, n: u64) {
    let mut buf = [0u8; 4096];
    for i in 0..n {
        let len = message(i, &mut buf);
        tx.send(&buf[..len]).expect("send");
    }
}

fn recv_numbered(rx: &mut Receiver, n: u64) {
    let mut buf = [0u8; 4096];
    for i in 0..n {
        let len = rx.recv(&mut buf).expect("recv");
        check_message(i, &buf[..len]);
    }
}

fn messages_cross_fork_whole_and_in_order() {
    // A small ring, so that 20 000 messages of up to 3 KiB wrap it many times.
    let chan = Channel::new(8192).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            send_numbered(&mut tx, 20_000);
        })
    };
    let mut rx = chan.into_receiver();
    recv_numbered(&mut rx, 20_000);
    assert_eq!(rx.recv(&mut [0; 16]).unwrap(), 0, "then end of file");
    assert!(reap(pid).success());
}

fn blocking_only_mode_delivers_too() {
    let chan = Channel::new(8192).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            tx.set_spin(0);
            send_numbered(&mut tx, 3000);
        })
    };
    let mut rx = chan.into_receiver();
    rx.set_spin(0);
    recv_numbered(&mut rx, 3000);
    assert_eq!(rx.recv(&mut [0; 16]).unwrap(), 0);
    assert!(reap(pid).success());
}

fn receiver_gets_every_message_then_peer_gone() {
    let chan = Channel::new(1 << 20).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            send_numbered(&mut tx, 100);
        })
    };
    // The child is gone before we read anything.
    assert!(reap(pid).success());
    let mut rx = chan.into_receiver();
    recv_numbered(&mut rx, 100);
    assert_eq!(rx.recv(&mut [0; 16]).unwrap(), 0);
    assert_eq!(rx.try_recv(&mut [0; 16]).unwrap(), 0, "and stays so");
    assert!(rx.recv_borrowed().unwrap().is_none());
}

/// A tiny xorshift: random delays without a dependency.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn sender_killed_at_random_moments_loses_nothing_and_tears_nothing() {
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    for round in 0..300 {
        let committed = Shared::new(AtomicU64::new(0)).unwrap();
        let chan = Channel::new(16384).unwrap();
        let Some(pid) = fork() else {
            in_child(|| {
                let mut tx = chan.into_sender();
                let mut buf = [0u8; 4096];
                for i in 0.. {
                    let len = message(i, &mut buf);
                    tx.send(&buf[..len]).expect("send");
                    committed.store(i + 1, Ordering::SeqCst);
                }
            })
        };
        let mut rx = chan.into_receiver();
        let mut buf = [0u8; 4096];
        // Read a random number of messages, then kill the sender mid-stream.
        let before = xorshift(&mut seed) % 50;
        for i in 0..before {
            let len = rx.recv(&mut buf).unwrap();
            check_message(i, &buf[..len]);
        }
        std::thread::sleep(std::time::Duration::from_micros(xorshift(&mut seed) % 300));
        kill(pid);
        assert_eq!(
            reap(pid),
            Status::Killed {
                signal: 9,
                core_dumped: false
            }
        );
        let mut got = before;
        loop {
            let len = rx.recv(&mut buf).unwrap();
            if len == 0 {
                break;
            }
            check_message(got, &buf[..len]);
            got += 1;
        }
        // The counter is bumped after each send: at most one committed
        // message is not counted yet, none counted is missing.
        let counted = committed.load(Ordering::SeqCst);
        assert!(
            got >= counted,
            "round {round}: received {got}, but {counted} were committed"
        );
        assert!(
            got <= counted + 1,
            "round {round}: received {got}, only {counted}(+1) committed"
        );
    }
}

fn blocked_receiver_wakes_when_sender_dies() {
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            tx.send(b"last words").unwrap();
            // Wait to be killed, holding the sender end open.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
    };
    let mut rx = chan.into_receiver();
    let mut buf = [0u8; 64];
    assert_eq!(rx.recv(&mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"last words");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        kill(pid);
    });
    // Blocks (spins, then sleeps on the futex) until the kill.
    assert_eq!(rx.recv(&mut buf).unwrap(), 0);
    killer.join().unwrap();
    assert!(matches!(reap(pid), Status::Killed { signal: 9, .. }));
}

fn blocked_sender_gets_epipe_when_receiver_dies() {
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _rx = chan.into_receiver();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
    };
    let mut tx = chan.into_sender();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        kill(pid);
    });
    // Nobody reads: the ring fills, the sender waits, then learns.
    let err = loop {
        if let Err(e) = tx.send(&[7u8; 100]) {
            break e;
        }
    };
    assert_eq!(err, Errno::PIPE);
    killer.join().unwrap();
    reap(pid);
    assert_eq!(
        tx.try_send(&[1]),
        Err(Errno::PIPE),
        "a full ring with no receiver"
    );
}

fn try_send_and_try_recv_do_not_wait() {
    let (mut tx, mut rx) = Channel::new(1024).unwrap().split().unwrap();
    assert_eq!(rx.try_recv(&mut [0; 8]), Err(Errno::AGAIN), "empty");
    assert!(matches!(rx.try_recv_borrowed(), Err(Errno::AGAIN)));
    let mut sent = 0u32;
    let err = loop {
        match tx.try_send(&sent.to_le_bytes()) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Errno::AGAIN, "full");
    assert!(
        sent > 10,
        "a 1 KiB ring holds more than 10 small messages, got {sent}"
    );
    for i in 0..sent {
        let mut buf = [0u8; 4];
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
        assert_eq!(u32::from_le_bytes(buf), i);
    }
    assert_eq!(rx.try_recv(&mut [0; 8]), Err(Errno::AGAIN));
    tx.try_send(b"again").unwrap();
    drop(tx);
    assert_eq!(
        rx.try_recv(&mut [0; 8]).unwrap(),
        5,
        "what was sent before the drop"
    );
    assert_eq!(rx.try_recv(&mut [0; 8]).unwrap(), 0, "then peer gone");
}

fn bad_sizes_are_refused_and_lose_nothing() {
    let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
    let max = tx.max_message();
    assert_eq!(max, 4096 / 2 - 80);
    assert_eq!(tx.send(&[]), Err(Errno::INVAL));
    assert_eq!(tx.send(&vec![0; max + 1]), Err(Errno::MSGSIZE));
    assert!(matches!(tx.reserve(0), Err(Errno::INVAL)));
    assert!(matches!(tx.reserve(usize::MAX), Err(Errno::MSGSIZE)));
    let big: Vec<u8> = (0..max).map(|i| i as u8).collect();
    tx.send(&big).unwrap();
    // Too small a buffer: EMSGSIZE, and the message stays.
    let mut small = [0u8; 10];
    assert_eq!(rx.recv(&mut small), Err(Errno::MSGSIZE));
    assert_eq!(rx.try_recv(&mut small), Err(Errno::MSGSIZE));
    assert_eq!(rx.next_size().unwrap(), max);
    let mut buf = vec![0u8; max];
    assert_eq!(rx.recv(&mut buf).unwrap(), max);
    assert_eq!(buf, big);
}

fn zero_copy_reserve_commit_and_borrow() {
    let chan = Channel::new(1 << 16).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            for i in 0..5000u32 {
                let mut r = tx.reserve(64).unwrap();
                r[..4].copy_from_slice(&i.to_le_bytes());
                r[4..8].copy_from_slice(&(!i).to_le_bytes());
                // Commit only what was written: a shorter message.
                r.commit(8).unwrap();
            }
        })
    };
    let mut rx = chan.into_receiver();
    for i in 0..5000u32 {
        let msg = rx.recv_borrowed().unwrap().expect("a message");
        assert_eq!(msg.len(), 8);
        assert_eq!(u32::from_le_bytes(msg[..4].try_into().unwrap()), i);
        assert_eq!(u32::from_le_bytes(msg[4..].try_into().unwrap()), !i);
    }
    assert!(rx.recv_borrowed().unwrap().is_none());
    assert!(reap(pid).success());
}

fn dropped_reservation_sends_nothing() {
    let (mut tx, mut rx) = Channel::new(1024).unwrap().split().unwrap();
    let mut r = tx.reserve(16).unwrap();
    r.fill(0xee);
    assert_eq!(r.commit(17), Err(Errno::INVAL), "more than reserved");
    // Reserved, written, and let go without a commit.
    tx.reserve(16).unwrap().fill(0xdd);
    assert_eq!(tx.reserve(16).unwrap().commit(0), Err(Errno::INVAL));
    assert_eq!(
        rx.try_recv(&mut [0; 32]),
        Err(Errno::AGAIN),
        "nothing was sent"
    );
    tx.send(b"real").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"real");
}

fn capacity_is_rounded_and_bounded() {
    assert!(matches!(Channel::new(0), Err(Errno::INVAL)));
    assert!(matches!(Channel::new(usize::MAX), Err(Errno::INVAL)));
    assert!(matches!(Channel::new((1 << 30) + 1), Err(Errno::INVAL)));
    assert_eq!(Channel::new(1).unwrap().capacity(), 1024);
    assert_eq!(Channel::new(5000).unwrap().capacity(), 8192);
    assert_eq!(Channel::new(1 << 20).unwrap().max_message(), (1 << 19) - 80);
}

/// Writes a random 32-bit value at a random 4-aligned place of the region:
/// usually a header of the ring, sometimes a control word.
fn scribble(region: (*mut u8, usize), seed: &mut u64, near: usize) {
    let (base, len) = region;
    let r = xorshift(seed);
    let off = match r % 5 {
        // The control block's words.
        0 => [0usize, 128, 256][(r >> 8) as usize % 3],
        // A header word of one of the messages sent (40 bytes + 8 each).
        3 => 4096 + ((r >> 8) as usize % (near / 48 + 1)) * 48 + 4 * ((r >> 16) as usize % 2),
        // Around the recent headers of the ring.
        1 | 2 => (4096 + (near + (r >> 8) as usize % 256) % (len - 4096)) & !3,
        _ => ((r >> 8) as usize % len) & !3,
    };
    let value = match (r >> 40) % 4 {
        0 => 0,
        1 => u32::MAX,
        2 => (r >> 12) as u32 % 8192,
        _ => xorshift(seed) as u32,
    };
    // SAFETY: a 4-aligned place inside the region; the test plays the
    // hostile peer, which may write anything anywhere in it.
    unsafe { base.add(off).cast::<u32>().write_volatile(value) };
}

fn corrupt_ring_never_crashes_or_hangs_the_reader() {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let (mut protos, mut delivered) = (0u32, 0u32);
    for _ in 0..20_000 {
        let chan = Channel::new(2048).unwrap();
        let region = chan.region();
        let (mut tx, mut rx) = chan.split().unwrap();
        let n = xorshift(&mut seed) % 6;
        for i in 0..n {
            tx.send(&[i as u8; 40]).unwrap();
        }
        for _ in 0..1 + xorshift(&mut seed) % 4 {
            scribble(region, &mut seed, (n as usize) * 48);
        }
        let mut buf = [0u8; 1024];
        // With the sender gone, a blocking receive (its inline fast path
        // included) must end too: with messages, then 0, or with EPROTO.
        let blocking = xorshift(&mut seed) % 2 == 0;
        if blocking {
            drop(tx);
        }
        // Never more reads than there could be messages before it must end.
        for _ in 0..64 {
            let got = if blocking {
                rx.recv(&mut buf)
            } else {
                rx.try_recv(&mut buf)
            };
            match got {
                Ok(0) if blocking => break,
                Ok(len) => {
                    assert!(len <= buf.len());
                    delivered += 1;
                }
                Err(Errno::PROTO) => {
                    protos += 1;
                    assert_eq!(
                        rx.try_recv(&mut buf),
                        Err(Errno::PROTO),
                        "a broken ring stays broken"
                    );
                    break;
                }
                Err(Errno::AGAIN) | Err(Errno::MSGSIZE) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        // The other side of the API on the same scribbled ring.
        let _ = rx.try_recv_borrowed().map(|m| m.map(|m| m.len()));
    }
    println!("{protos} corrupt rings reported EPROTO, {delivered} messages delivered");
    assert!(
        protos > 1000,
        "scribbling on headers is detected ({protos})"
    );
}

fn corrupt_markers_never_crash_or_hang_the_reader() {
    // Messages of 1100 bytes in a 4 KiB ring: each behind a pad marker that
    // aligns its payload, and a wrap marker every few messages. Scribbling
    // anywhere in so small a ring often hits a marker or a header.
    let mut seed = 0x0dd_b1a5_e5ca_1ab1;
    let (mut protos, mut delivered) = (0u32, 0u32);
    for round in 0..20_000 {
        let chan = Channel::new(4096).unwrap();
        let region = chan.region();
        let (mut tx, mut rx) = chan.split().unwrap();
        let mut buf = [0u8; 2048];
        // Go round the ring a random number of times first.
        for i in 0..xorshift(&mut seed) % 7 {
            tx.send(&[i as u8; 1100]).unwrap();
            assert_eq!(rx.try_recv(&mut buf), Ok(1100), "round {round}");
        }
        let sent = 1 + xorshift(&mut seed) % 2;
        for i in 0..sent {
            tx.send(&[i as u8; 1100]).unwrap();
        }
        let (base, _) = region;
        let r = xorshift(&mut seed) as usize;
        let off = match r % 2 {
            // Where the headers of aligned messages stand (and where a pad
            // marker sends the reader).
            0 => 4096 + (r >> 8) % 64 * 64 + 56 + 4 * ((r >> 4) % 2),
            _ => 4096 + (((r >> 8) % 4096) & !3),
        };
        // SAFETY: a 4-aligned word of the ring, in the shared region.
        unsafe {
            base.add(off)
                .cast::<u32>()
                .write_volatile(xorshift(&mut seed) as u32)
        };
        for _ in 0..8 {
            match rx.try_recv(&mut buf) {
                Ok(len) => {
                    assert!(len <= buf.len());
                    delivered += 1;
                }
                Err(Errno::PROTO) => {
                    protos += 1;
                    break;
                }
                Err(Errno::AGAIN) | Err(Errno::MSGSIZE) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    println!("{protos} corrupt rings reported EPROTO, {delivered} messages delivered");
    assert!(
        protos > 100,
        "scribbling on markers and headers is detected ({protos})"
    );
}

fn corrupt_head_never_crashes_or_hangs_the_sender() {
    let mut seed = 0x1234_5678_9abc_def1;
    let mut protos = 0;
    for _ in 0..20_000 {
        let chan = Channel::new(1024).unwrap();
        let region = chan.region();
        let (mut tx, mut rx) = chan.split().unwrap();
        for _ in 0..xorshift(&mut seed) % 8 {
            let _ = tx.try_send(&[1; 100]);
            let _ = rx.try_recv(&mut [0; 128]);
        }
        // SAFETY: the control block's first word is the shared read position.
        unsafe {
            region
                .0
                .cast::<u32>()
                .write_volatile(xorshift(&mut seed) as u32)
        };
        for _ in 0..32 {
            match tx.try_send(&[2; 100]) {
                Ok(()) => {}
                Err(Errno::PROTO) => {
                    protos += 1;
                    break;
                }
                Err(Errno::AGAIN) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    assert!(
        protos > 10_000,
        "a read position too far from ours is caught ({protos})"
    );
}

fn corrupt_ring_under_blocking_recv_ends() {
    // A hostile sender process writes garbage where the next stamp goes,
    // then dies: the receiver, blocked, must end with EPROTO or 0, not hang.
    let mut seed = 42u64;
    for _ in 0..50 {
        let chan = Channel::new(4096).unwrap();
        let region = chan.region();
        let value = match xorshift(&mut seed) % 4 {
            0 => 0,
            1 => 1,
            _ => xorshift(&mut seed) as u32,
        };
        let Some(pid) = fork() else {
            in_child(|| {
                let _tx = chan.into_sender();
                std::thread::sleep(std::time::Duration::from_millis(1));
                // SAFETY: the first header of the ring, in the shared region.
                unsafe { region.0.add(4096).cast::<u32>().write_volatile(value) };
            })
        };
        let mut rx = chan.into_receiver();
        let got = rx.recv(&mut [0; 4096]);
        // 0 (nothing there) or the expected first stamp with a length of 0:
        // the ring looks empty, then the sender is gone; anything else is
        // corruption.
        match value {
            0 => assert_eq!(got, Ok(0)),
            _ => assert_eq!(got, Err(Errno::PROTO), "value {value:#x}"),
        }
        reap(pid);
    }
}

/// Seven 500-byte messages fill a 4 KiB ring but for 512 bytes; once one is
/// received, 1 KiB is free, and the next 500-byte message must go in at once
/// (the receiver then stops receiving, as a protocol that waits for an
/// answer from the sender would).
fn sender_sees_room_as_soon_as_it_is_freed() {
    let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
    let msg = [0x5a; 500];
    for _ in 0..7 {
        tx.try_send(&msg).unwrap();
    }
    assert_eq!(tx.try_send(&msg), Err(Errno::AGAIN), "the ring is full");
    let mut buf = [0u8; 500];
    assert_eq!(rx.try_recv(&mut buf), Ok(500));
    assert_eq!(tx.try_send(&msg), Ok(()), "1 KiB is free");
    // And over many laps, in every phase of the ring.
    for i in 0..10_000u32 {
        let mut m = [0u8; 500];
        m[..4].copy_from_slice(&i.to_le_bytes());
        assert_eq!(rx.try_recv(&mut buf), Ok(500));
        assert_eq!(tx.try_send(&m), Ok(()), "message {i}: room freed");
    }
}

/// The same between processes, with a blocking send: the receiver takes
/// one message of a full ring, then waits for the sender's word on a pipe
/// (a hang check of 2 s, not a measure).
fn sender_blocked_on_a_full_ring_wakes_when_room_is_freed() {
    for spin in [0, rawipc::chan::DEFAULT_SPIN_NS] {
        let chan = Channel::new(4096).unwrap();
        let (to_parent_r, to_parent_w) = rawipc::pipe::pipe().unwrap();
        let (to_child_r, to_child_w) = rawipc::pipe::pipe().unwrap();
        let Some(pid) = fork() else {
            in_child(|| {
                let mut tx = chan.into_sender();
                tx.set_spin(spin);
                for _ in 0..7 {
                    tx.send(&[7; 500]).unwrap();
                }
                to_parent_w.write_all(b"7").unwrap();
                assert_eq!(to_child_r.read(&mut [0; 1]), Ok(1));
                tx.send(&[8; 500]).unwrap();
                to_parent_w.write_all(b"8").unwrap();
            })
        };
        drop((to_parent_w, to_child_r));
        let mut rx = chan.into_receiver();
        let mut buf = [0u8; 500];
        assert_eq!(to_parent_r.read(&mut buf), Ok(1), "seven sent");
        assert_eq!(rx.recv(&mut buf), Ok(500));
        let start = std::time::Instant::now();
        to_child_w.write_all(b"go").unwrap();
        let mut fds = [rustix::event::PollFd::new(
            &to_parent_r,
            rustix::event::PollFlags::IN,
        )];
        let limit = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&limit)).unwrap();
        assert!(
            !fds[0].revents().is_empty(),
            "spin {spin}: the sender still waits for room 2 s after it was freed"
        );
        assert_eq!(
            to_parent_r.read(&mut buf[..1]),
            Ok(1),
            "spin {spin}: the sender did not see the room freed"
        );
        println!(
            "spin {spin}: the sender sent into the room freed after {:?}",
            start.elapsed()
        );
        for _ in 0..7 {
            assert_eq!(rx.recv(&mut buf), Ok(500));
        }
        assert_eq!(rx.recv(&mut buf), Ok(0));
        assert!(reap(pid).success());
    }
}

/// Sends random messages of every size (small ones, and large ones that are
/// aligned with a pad marker) over many laps of a small ring, dropping one
/// reservation in ten uncommitted, or after a failed commit, which the
/// sender then reserves again: every committed message arrives, whole and
/// in order.
fn dropped_reservations_over_many_wraps_lose_nothing() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    println!("xorshift seed {seed:#x}");
    for _ in 0..20 {
        let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
        let max = tx.max_message() as u64;
        let (mut sent, mut got) = (0u64, 0u64);
        let mut buf = vec![0u8; max as usize];
        for _ in 0..3000 {
            let r = xorshift(&mut seed);
            let len = 1 + (r % max) as usize;
            match tx.try_reserve(len) {
                Ok(mut res) => {
                    for (k, b) in res.iter_mut().enumerate() {
                        *b = (sent as usize * 13 + k) as u8;
                    }
                    match r >> 40 & 15 {
                        0 => {
                            let _dropped_uncommitted = res;
                        }
                        1 => assert_eq!(res.commit(0), Err(Errno::INVAL)),
                        _ => {
                            res.commit(len).unwrap();
                            sent += 1;
                        }
                    }
                }
                Err(Errno::AGAIN) => {}
                Err(e) => panic!("reserve {len}: {e}"),
            }
            // Drain now and then, or when the ring is full.
            while got < sent && (r >> 50 & 3 == 0 || sent - got > 3) {
                let n = rx
                    .try_recv(&mut buf)
                    .unwrap_or_else(|e| panic!("message {got}: {e}"));
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, (got as usize * 13 + k) as u8, "message {got} torn");
                }
                got += 1;
            }
        }
        while got < sent {
            rx.try_recv(&mut buf)
                .unwrap_or_else(|e| panic!("message {got}: {e}"));
            got += 1;
        }
        assert_eq!(rx.try_recv(&mut buf), Err(Errno::AGAIN));
    }
}

/// A message kept past its borrow: the other receives are EBUSY, a borrow
/// lends it again, and release_kept gives back exactly its bytes, even
/// after a hostile peer rewrote its header.
fn kept_message_is_lent_again_and_released_whatever_the_ring_says() {
    let chan = Channel::new(4096).unwrap();
    let (base, _) = chan.region();
    let (mut tx, mut rx) = chan.split().unwrap();
    tx.send(b"first").unwrap();
    tx.send(b"second").unwrap();
    assert_eq!(rx.release_kept(), Err(Errno::INVAL), "nothing kept");
    let msg = rx.recv_borrowed().unwrap().expect("a message");
    let at = msg.as_ptr();
    msg.keep();
    let mut buf = [0u8; 16];
    assert_eq!(rx.try_recv(&mut buf), Err(Errno::BUSY));
    assert_eq!(rx.recv(&mut buf), Err(Errno::BUSY));
    assert_eq!(rx.next_size(), Err(Errno::BUSY));
    let again = rx.try_recv_borrowed().unwrap().expect("the same message");
    assert_eq!((again.as_ptr(), &*again), (at, &b"first"[..]));
    again.keep();
    // The first message of a fresh ring: its header (stamp, then length)
    // starts the ring, one page into the region. Scribble on the stamp
    // through the sender's mapping, as a hostile peer would.
    // SAFETY: inside the shared region, 4-aligned: a peer's write.
    unsafe { base.add(4096).cast::<u32>().write_volatile(0xdead_beef) };
    // SAFETY: the receiver's own mapping of the same header.
    assert_eq!(
        unsafe { at.sub(8).cast::<u32>().read_volatile() },
        0xdead_beef
    );
    assert_eq!(rx.release_kept(), Ok(()));
    assert_eq!(rx.release_kept(), Err(Errno::INVAL), "released once");
    assert_eq!(rx.try_recv(&mut buf), Ok(6));
    assert_eq!(&buf[..6], b"second");
}
