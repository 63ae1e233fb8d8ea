//! rawipc::msg across fork: a conversation between parent and child, end of
//! file when the child dies, EINTR, and EPIPE without SIGPIPE.

use std::sync::atomic::{AtomicU32, Ordering};

use rawipc::Errno;
use rawipc::msg::{MsgSocket, socketpair};
use rawipc::process::{self, Fork, Status};
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};
use rustix::process::{Signal, kill_process};

use crate::{
    blocked_signals, expect_success, fork, handler_of, has, in_child, interrupt_parent,
    pending_signals, reap, set_handler, signals_handled,
};

/// The parent asks, the child answers, message by message, with sizes from 1
/// byte to 100 KB; each side checks every message whole.
pub fn parent_and_child_exchange_messages() {
    let sizes = [1usize, 2, 100, 4096, 5000, 100_000];
    let msg = |len: usize, seed: u8| -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_add(seed)).collect()
    };
    let (parent_end, child_end) = socketpair().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(parent_end);
            let mut buf = vec![0u8; 100_000];
            for (i, &len) in sizes.iter().enumerate() {
                let n = child_end.recv(&mut buf).unwrap();
                assert_eq!(n, len);
                assert!(buf[..n] == msg(len, i as u8)[..]);
                // Answer with the same size, another pattern.
                assert_eq!(child_end.send(&msg(len, 100 + i as u8)), Ok(len));
            }
            // The parent closes its end: end of file.
            child_end.recv(&mut buf) == Ok(0)
        }),
        Fork::Parent(pid) => pid,
    };
    drop(child_end);
    let mut buf = vec![0u8; 100_000];
    for (i, &len) in sizes.iter().enumerate() {
        assert_eq!(parent_end.send(&msg(len, i as u8)), Ok(len));
        assert_eq!(parent_end.next_size(), Ok(len));
        let n = parent_end.recv(&mut buf).unwrap();
        assert_eq!(n, len);
        assert!(buf[..n] == msg(len, 100 + i as u8)[..]);
    }
    drop(parent_end);
    expect_success(pid);
}

/// A child sends two messages and is killed with a request of the parent's
/// still unread: the parent gets both messages, then 0, and EPIPE on send.
pub fn recv_returns_zero_when_the_child_dies() {
    let (parent_end, child_end) = socketpair().unwrap();
    parent_end.send(b"a request the child never reads").unwrap();
    let pid = match fork() {
        Fork::Child => {
            drop(parent_end);
            let _ = child_end.send(b"one");
            let _ = child_end.send(b"two");
            let _ = kill_process(process::getpid(), Signal::KILL);
            process::exit(3) // not reached
        }
        Fork::Parent(pid) => pid,
    };
    drop(child_end);
    let mut buf = [0u8; 16];
    assert_eq!(parent_end.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(parent_end.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"two");
    assert_eq!(parent_end.recv(&mut buf), Ok(0));
    assert_eq!(parent_end.send(b"hello?"), Err(Errno::PIPE));
    assert_eq!(
        reap(pid),
        Status::Killed {
            signal: 9,
            core_dumped: false
        }
    );
}

/// SIGALRM (handler without SA_RESTART) arrives while `recv` waits for a
/// message: it goes on waiting and returns the message sent after it.
pub fn recv_interrupted_by_a_signal_still_gets_the_message() {
    let (a, b) = socketpair().unwrap();
    let pid = interrupt_parent(|| b.send(b"after the signal") == Ok(16));
    let mut buf = [0u8; 32];
    assert_eq!(a.recv(&mut buf), Ok(16));
    assert_eq!(&buf[..16], b"after the signal");
    assert_eq!(signals_handled(), 1);
    expect_success(pid);
}

/// The same setup without rawipc: recv(2) fails with EINTR.
pub fn control_raw_recv_is_interrupted() {
    let (a, b) = socketpair().unwrap();
    let pid = interrupt_parent(|| b.send(b"x") == Ok(1));
    let mut buf = [0u8; 32];
    assert_eq!(
        rustix::net::recv(&a, &mut buf, rustix::net::RecvFlags::empty()).map(|(n, _)| n),
        Err(Errno::INTR)
    );
    assert_eq!(signals_handled(), 1);
    assert_eq!(a.recv(&mut buf), Ok(1));
    expect_success(pid);
}

static SIGPIPES: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_sigpipe(_: libc::c_int) {
    SIGPIPES.fetch_add(1, Ordering::SeqCst);
}

/// Send to a peer that is gone: EPIPE, SIGPIPE's handler never runs, nothing
/// is left pending, and the disposition is unchanged.
///
/// Linux raises SIGPIPE for a unix SOCK_SEQPACKET send to a gone peer in no
/// case (only the stream path does), so the control here is a SOCK_STREAM
/// socket adopted as a MsgSocket: there MSG_NOSIGNAL is what keeps SIGPIPE
/// away, and a send without it raises one.
pub fn epipe_and_no_sigpipe_when_the_peer_is_gone() {
    let handler = crate::handler(count_sigpipe);
    set_handler(libc::SIGPIPE, handler, libc::SA_RESTART);
    let (a, b) = socketpair().unwrap();
    drop(b);
    assert_eq!(a.send(b"x"), Err(Errno::PIPE));
    assert_eq!(rawipc::msg::send(&a, b"y"), Err(Errno::PIPE));
    // The kernel's own behaviour for SOCK_SEQPACKET, without MSG_NOSIGNAL.
    assert_eq!(
        rustix::net::send(&a, b"z", SendFlags::empty()),
        Err(Errno::PIPE)
    );
    assert_eq!(SIGPIPES.load(Ordering::SeqCst), 0);

    let (stream, peer) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    drop(peer);
    let stream = MsgSocket::from(stream);
    assert_eq!(stream.send(b"x"), Err(Errno::PIPE));
    assert_eq!(SIGPIPES.load(Ordering::SeqCst), 0);
    assert_eq!(handler_of(libc::SIGPIPE), handler);
    assert!(!has(&blocked_signals(), libc::SIGPIPE));
    assert!(!has(&pending_signals(), libc::SIGPIPE));
    // Control: without MSG_NOSIGNAL the stream send raises SIGPIPE.
    assert_eq!(
        rustix::net::send(&stream, b"z", SendFlags::empty()),
        Err(Errno::PIPE)
    );
    assert_eq!(SIGPIPES.load(Ordering::SeqCst), 1);

    // And with the default action, which would kill this process.
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
    assert_eq!(stream.send(b"x"), Err(Errno::PIPE));
    assert_eq!(a.send(b"x"), Err(Errno::PIPE));
    assert_eq!(handler_of(libc::SIGPIPE), libc::SIG_DFL);
}

/// A large message of `len` bytes numbered `k`: every byte tells its place.
fn large_message(len: usize, k: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32 ^ k.wrapping_mul(2_654_435_761) ^ (i as u32 >> 8)) as u8)
        .collect()
}

/// Lines of /proc/self/`what` (fds or mappings) in this process.
fn count(what: &str) -> usize {
    match what {
        "fd" => std::fs::read_dir("/proc/self/fd").unwrap().count(),
        _ => std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count(),
    }
}

/// Large messages both ways between parent and child, 120 of them at sizes
/// from just above the socket's limit to 1.2 MiB, with a too-small buffer
/// tried before each: every message whole, and neither side holds one fd or
/// mapping more at the end than after the first.
pub fn large_messages_leave_no_fd_or_mapping_behind() {
    const ROUNDS: u32 = 120;
    let len = |k: u32| 212_961 + (k as usize * 6151) % (1 << 20);
    let (parent_end, child_end) = socketpair().unwrap();
    let exchange = |end: &MsgSocket, first: bool| {
        let mut buf = vec![0u8; 2 << 20];
        let mut counts = None;
        for k in 0..ROUNDS {
            if first {
                assert_eq!(end.send(&large_message(len(k), k)), Ok(len(k)));
            }
            assert_eq!(end.recv(&mut buf[..len(k) - 1]), Err(Errno::MSGSIZE));
            assert_eq!(end.next_size(), Ok(len(k)));
            assert_eq!(end.recv(&mut buf), Ok(len(k)));
            assert!(buf[..len(k)] == large_message(len(k), k)[..], "message {k}");
            if !first {
                assert_eq!(end.send(&buf[..len(k)]), Ok(len(k)));
            }
            if k == 0 {
                counts = Some((count("fd"), count("maps")));
            }
        }
        assert_eq!(counts, Some((count("fd"), count("maps"))));
    };
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(parent_end);
            exchange(&child_end, false);
            true
        }),
        Fork::Parent(pid) => pid,
    };
    drop(child_end);
    exchange(&parent_end, true);
    expect_success(pid);
}

/// A child sends large messages until the parent kills it, at a different
/// moment each time (in the middle of writing a memfd, sealing, sending):
/// the parent receives only whole messages, in order, then 0.
pub fn a_peer_killed_while_sending_large_messages_leaves_only_whole_ones() {
    for attempt in 0..20u32 {
        let (parent_end, child_end) = socketpair().unwrap();
        let pid = match fork() {
            Fork::Child => in_child(|| {
                drop(parent_end);
                for k in 0.. {
                    let m = large_message(300_000 + (k as usize % 7) * 100_000, k);
                    if child_end.send(&m).is_err() {
                        return false;
                    }
                }
                true
            }),
            Fork::Parent(pid) => pid,
        };
        drop(child_end);
        let mut buf = vec![0u8; 1 << 20];
        let mut k = 0u32;
        // Kill it after a few messages, with some of the next one's work done.
        while k < 2 + attempt % 3 {
            let n = parent_end.recv(&mut buf).unwrap();
            assert!(buf[..n] == large_message(n, k)[..], "message {k}");
            k += 1;
        }
        for _ in 0..attempt * 1000 {
            std::hint::spin_loop();
        }
        kill_process(pid, Signal::KILL).unwrap();
        assert!(matches!(reap(pid), Status::Killed { signal: 9, .. }));
        loop {
            match parent_end.recv(&mut buf).unwrap() {
                0 => break,
                n => {
                    assert!(buf[..n] == large_message(n, k)[..], "message {k}");
                    k += 1;
                }
            }
        }
        assert_eq!(parent_end.recv(&mut buf), Ok(0), "end of file stays");
    }
}

/// A receiver out of fds cannot look at a large message's memfd: `EMFILE`,
/// and the message stays queued until an fd is free.
pub fn a_large_message_waits_for_a_free_fd() {
    let (a, b) = socketpair().unwrap();
    let m = large_message(500_000, 7);
    a.send(&m).unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            // A limit of fds just above the highest open, every one filled.
            let highest = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap();
            let limit = rustix::process::Rlimit {
                current: Some(highest + 10),
                maximum: Some(highest + 10),
            };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
            let mut fill = Vec::new();
            while let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(&b, 0) {
                fill.push(fd);
            }
            let mut buf = vec![0u8; m.len()];
            let full = b.recv(&mut buf) == Err(Errno::MFILE) && b.next_size() == Err(Errno::MFILE);
            fill.pop();
            full && b.recv(&mut buf) == Ok(m.len()) && buf == m
        }),
        Fork::Parent(pid) => pid,
    };
    expect_success(pid);
}
