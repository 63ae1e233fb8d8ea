//! Timeouts and non-blocking calls: every waiting call's `_timeout` variant
//! (channel, messages, pipe read, mutex, request and reply) gives `ETIMEDOUT` once its time is
//! up and never before, also while a storm of signals (with and without
//! `SA_RESTART`) keeps cutting its sleeps short; a peer that dies during a
//! long timeout is reported as gone (0, `None`, `EPIPE`, `OwnerDied`) long
//! before it; what arrives in time is received; nothing is lost or sent by
//! a call that timed out; a zero timeout does not wait, and one too large
//! for the clock waits for ever without overflowing.
//!
//! "Not early" is asserted (elapsed >= timeout); lateness is printed, never
//! asserted tighter than [`LATE`], a hang check: this machine is shared.

#[path = "../support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rawipc::Errno;
use rawipc::chan::Channel;
use rawipc::msg::{self, MsgSocket};
use rawipc::mutex::{Acquired, LockError, ProcessMutex, RawMutex};
use rawipc::pipe;
use rawipc::process::{self, Pid};
use rawipc::shm::Shared;
use rawipc::{AsFd, BorrowedFd};
use support::child::{catch_sigusr1, fork, in_child, kill, reap};

fn main() -> ExitCode {
    support::main(tests![
        chan_timeouts_expire_not_early_and_lose_nothing,
        chan_timeouts_expire_under_signal_storms,
        chan_timeouts_report_a_peer_that_dies_long_before_they_expire,
        chan_timeouts_receive_what_arrives_in_time,
        chan_zero_and_huge_timeouts,
        msg_timeouts_expire_not_early_and_lose_nothing,
        msg_timeouts_expire_under_signal_storms,
        msg_timeouts_report_a_peer_that_dies_long_before_they_expire,
        msg_timeouts_receive_what_arrives_in_time,
        msg_try_and_non_blocking_tell_nothing_yet_from_peer_gone,
        pipe_read_timeout_expires_not_early_and_sees_end_of_file,
        pipe_non_blocking_at_creation_and_by_set_nonblocking,
        mutex_lock_timeout_expires_not_early_even_under_storms,
        mutex_lock_timeout_reports_a_holder_that_dies,
        call_timeouts_expire_under_storms_and_report_a_dead_peer,
    ])
}

/// The hang check: a call that should have returned by now has not.
const LATE: Duration = Duration::from_secs(5);
/// A timeout long enough that reaching it is a failure.
const LONG: Duration = Duration::from_secs(60);
/// The short timeout the expiry tests wait for.
const SHORT: Duration = Duration::from_millis(40);

/// Runs `call`, which must fail with `ETIMEDOUT` no sooner than `timeout`
/// after it started (and, as a hang check, within [`LATE`] of it).
fn expires<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    call: impl FnOnce() -> rawipc::Result<T>,
) {
    let start = Instant::now();
    let got = call();
    let took = start.elapsed();
    assert!(
        matches!(got, Err(Errno::TIMEDOUT)),
        "{what}: expected ETIMEDOUT, got {got:?}"
    );
    assert!(
        took >= timeout,
        "{what}: timed out early, after {took:?} of {timeout:?}"
    );
    assert!(
        took < timeout + LATE,
        "{what}: returned {took:?} after a {timeout:?} timeout"
    );
    println!(
        "{what}: ETIMEDOUT {:.2} ms after its {timeout:?}",
        (took - timeout).as_secs_f64() * 1e3
    );
}

/// Runs `call`, which must return well before [`LONG`]: how long it took.
fn returns_soon<T>(what: &str, call: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let got = call();
    let took = start.elapsed();
    assert!(took < LATE, "{what}: took {took:?}");
    println!("{what}: returned after {:.1} ms", took.as_secs_f64() * 1e3);
    got
}

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, SeqCst);
}

static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Runs `f` while another process sends this one SIGUSR1 every 200 µs,
/// caught by a handler installed with or without `SA_RESTART`. The storm
/// is forked first, so that it holds none of the fds `f` makes.
fn under_storm(restart: bool, f: impl FnOnce()) {
    catch_sigusr1(on_signal, restart);
    let me = std::process::id() as libc::pid_t;
    let Some(stormer) = fork() else {
        loop {
            // SAFETY: tgkill with a pid, its main thread's id and a signal.
            if unsafe { libc::syscall(libc::SYS_tgkill, me, me, libc::SIGUSR1) } != 0 {
                process::exit(0);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let before = SIGNALS.load(SeqCst);
    f();
    kill(stormer);
    reap(stormer);
    let caught = SIGNALS.load(SeqCst) - before;
    println!(
        "  ({caught} signals, {}SA_RESTART)",
        if restart { "" } else { "no " }
    );
    assert!(caught > 0, "the storm sent no signal");
}

fn chan_timeouts_expire_not_early_and_lose_nothing() {
    for spin in [0, rawipc::chan::DEFAULT_SPIN_NS] {
        let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
        tx.set_spin(spin);
        rx.set_spin(spin);
        let mut buf = [0u8; 256];
        expires("chan recv_timeout", SHORT, || {
            rx.recv_timeout(&mut buf, SHORT)
        });
        expires("chan next_size_timeout", SHORT, || {
            rx.next_size_timeout(SHORT)
        });
        expires("chan recv_borrowed_timeout", SHORT, || {
            rx.recv_borrowed_timeout(SHORT).map(|m| m.map(|m| m.len()))
        });
        // Nothing was taken: a message sent now is received whole.
        tx.send(b"after the timeouts").unwrap();
        assert_eq!(rx.recv_timeout(&mut buf, SHORT), Ok(18));
        assert_eq!(&buf[..18], b"after the timeouts");

        // A full ring: the timed-out send and reservation send nothing.
        let mut sent = 0u32;
        while tx.try_send(&sent.to_le_bytes()).is_ok() {
            sent += 1;
        }
        expires("chan send_timeout", SHORT, || {
            tx.send_timeout(b"no room", SHORT)
        });
        expires("chan reserve_timeout", SHORT, || {
            tx.reserve_timeout(100, SHORT).map(|r| r.len())
        });
        for i in 0..sent {
            assert_eq!(rx.try_recv(&mut buf), Ok(4));
            assert_eq!(buf[..4], i.to_le_bytes(), "message {i}");
        }
        assert_eq!(
            rx.try_recv(&mut buf),
            Err(Errno::AGAIN),
            "nothing more was sent"
        );
        // And the sender goes on: room again.
        tx.send_timeout(b"room", SHORT).unwrap();
        assert_eq!(rx.recv(&mut buf), Ok(4));
    }
}

fn chan_timeouts_expire_under_signal_storms() {
    for restart in [false, true] {
        under_storm(restart, || {
            let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
            let mut buf = [0u8; 64];
            expires("chan recv_timeout, storm", SHORT, || {
                rx.recv_timeout(&mut buf, SHORT)
            });
            expires("chan recv_borrowed_timeout, storm", SHORT, || {
                rx.recv_borrowed_timeout(SHORT).map(|m| m.is_some())
            });
            while tx.try_send(&[1; 100]).is_ok() {}
            expires("chan send_timeout, storm", SHORT, || {
                tx.send_timeout(&[2; 100], SHORT)
            });
            expires("chan reserve_timeout, storm", SHORT, || {
                tx.reserve_timeout(100, SHORT).map(|r| r.len())
            });
        });
    }
}

fn chan_timeouts_report_a_peer_that_dies_long_before_they_expire() {
    // The sender dies while the receiver waits with a long timeout.
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            tx.send(b"last").unwrap();
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    let mut rx = chan.into_receiver();
    let mut buf = [0u8; 64];
    assert_eq!(rx.recv_timeout(&mut buf, LONG), Ok(4), "what it sent first");
    let got = returns_soon("chan recv_timeout, sender killed", || {
        rx.recv_timeout(&mut buf, LONG)
    });
    assert_eq!(got, Ok(0), "0: the sender is gone");
    assert!(rx.recv_borrowed_timeout(LONG).unwrap().is_none());
    assert_eq!(
        rx.next_size_timeout(Duration::ZERO),
        Ok(0),
        "gone, not ETIMEDOUT"
    );
    assert!(reap(pid).success());

    // The same with a borrowed receive and a sender killed.
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _tx = chan.into_sender();
            std::thread::sleep(LONG);
        })
    };
    let mut rx = chan.into_receiver();
    std::thread::sleep(Duration::from_millis(30));
    kill(pid);
    let got = returns_soon("chan recv_borrowed_timeout, sender killed", || {
        rx.recv_borrowed_timeout(LONG).map(|m| m.is_none())
    });
    assert_eq!(got, Ok(true), "None: the sender is gone");
    reap(pid);

    // The receiver dies while the sender waits for room.
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _rx = chan.into_receiver();
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    let mut tx = chan.into_sender();
    while tx.try_send(&[1; 100]).is_ok() {}
    let got = returns_soon("chan send_timeout, receiver gone", || {
        tx.send_timeout(&[2; 100], LONG)
    });
    assert_eq!(got, Err(Errno::PIPE));
    assert!(matches!(
        tx.reserve_timeout(10, Duration::ZERO),
        Err(Errno::PIPE)
    ));
    assert!(reap(pid).success());
}

fn chan_timeouts_receive_what_arrives_in_time() {
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut tx = chan.into_sender();
            for msg in [&b"one"[..], b"two", b"three"] {
                std::thread::sleep(Duration::from_millis(30));
                tx.send(msg).unwrap();
            }
            // The parent frees room after a while: this waits for it.
            while tx.try_send(&[7; 200]).is_ok() {}
            tx.send_timeout(b"fits later", LONG).unwrap();
        })
    };
    let mut rx = chan.into_receiver();
    rx.set_spin(0);
    let mut buf = [0u8; 256];
    assert_eq!(rx.recv_timeout(&mut buf, LONG), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(rx.next_size_timeout(LONG), Ok(3));
    assert_eq!(rx.recv_timeout(&mut buf, LONG), Ok(3));
    assert_eq!(&buf[..3], b"two");
    let m = rx.recv_borrowed_timeout(LONG).unwrap().expect("a message");
    assert_eq!(&*m, b"three");
    drop(m);
    std::thread::sleep(Duration::from_millis(50));
    loop {
        match rx.recv_timeout(&mut buf, LONG).unwrap() {
            200 => assert_eq!(buf[..200], [7; 200]),
            10 => break assert_eq!(&buf[..10], b"fits later"),
            n => panic!("unexpected message of {n} bytes"),
        }
    }
    assert_eq!(rx.recv_timeout(&mut buf, LONG), Ok(0));
    assert!(reap(pid).success());
}

fn chan_zero_and_huge_timeouts() {
    let (mut tx, mut rx) = Channel::new(4096).unwrap().split().unwrap();
    let mut buf = [0u8; 64];
    expires("chan recv_timeout(0)", Duration::ZERO, || {
        rx.recv_timeout(&mut buf, Duration::ZERO)
    });
    tx.send(b"there").unwrap();
    assert_eq!(
        rx.recv_timeout(&mut buf, Duration::ZERO),
        Ok(5),
        "a zero timeout takes what is there"
    );
    // Too large to add to the clock: for ever, no overflow.
    tx.send(b"max").unwrap();
    assert_eq!(rx.recv_timeout(&mut buf, Duration::MAX), Ok(3));
    tx.send_timeout(b"max", Duration::MAX).unwrap();
    assert_eq!(rx.next_size_timeout(Duration::MAX), Ok(3));
    assert!(rx.recv_borrowed_timeout(Duration::MAX).unwrap().is_some());
    // A gone sender with a zero timeout: 0, never ETIMEDOUT.
    drop(tx);
    assert_eq!(rx.recv_timeout(&mut buf, Duration::ZERO), Ok(0));
    assert_eq!(rx.recv_timeout(&mut buf, Duration::MAX), Ok(0));

    // A message arriving from another process under Duration::MAX.
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            std::thread::sleep(Duration::from_millis(30));
            chan.into_sender().send(b"later").unwrap();
        })
    };
    let mut rx = chan.into_receiver();
    assert_eq!(rx.recv_timeout(&mut buf, Duration::MAX), Ok(5));
    assert!(reap(pid).success());
}

/// Fills `a`'s send side until a message of `len` bytes no longer fits;
/// returns how many went.
fn fill(a: &MsgSocket, len: usize) -> usize {
    let mut n = 0;
    while a.try_send(&vec![n as u8; len]).is_ok() {
        n += 1;
    }
    n
}

fn msg_timeouts_expire_not_early_and_lose_nothing() {
    let (a, b) = msg::socketpair().unwrap();
    let mut buf = [0u8; 4096];
    expires("msg recv_timeout", SHORT, || {
        b.recv_timeout(&mut buf, SHORT)
    });
    expires("msg next_size_timeout", SHORT, || {
        b.next_size_timeout(SHORT)
    });
    expires("msg next_sizes_timeout", SHORT, || {
        msg::next_sizes_timeout(&b, SHORT)
    });
    let mut fds = [const { None }; 2];
    expires("msg recv_fds_timeout", SHORT, || {
        b.recv_fds_timeout(&mut buf, &mut fds, SHORT)
    });
    a.send(b"after the timeouts").unwrap();
    assert_eq!(b.recv_timeout(&mut buf, SHORT), Ok(18));
    assert_eq!(&buf[..18], b"after the timeouts");

    // A full socket: the timed-out sends send nothing.
    let sent = fill(&a, 1000);
    assert!(sent > 0);
    expires("msg send_timeout", SHORT, || {
        a.send_timeout(&[9; 1000], SHORT)
    });
    let (r, _w) = rustix::pipe::pipe().unwrap();
    expires("msg send_fds_timeout", SHORT, || {
        a.send_fds_timeout(&[9; 1000], &[r.as_fd()], SHORT)
    });
    // A message too large for the socket goes in a memfd, whose header
    // waits for room by the same deadline.
    let large = vec![7u8; 1 << 20];
    expires("msg send_timeout (1 MiB)", SHORT, || {
        a.send_timeout(&large, SHORT)
    });
    assert_eq!(a.try_send(&large), Err(Errno::AGAIN));
    for i in 0..sent {
        assert_eq!(b.try_recv(&mut buf), Ok(1000));
        assert_eq!(buf[..1000], [i as u8; 1000][..], "message {i}");
    }
    assert_eq!(
        b.try_recv(&mut buf),
        Err(Errno::AGAIN),
        "nothing more was sent"
    );
    a.send_timeout(b"room", SHORT).unwrap();
    assert_eq!(b.recv_timeout(&mut buf, SHORT), Ok(4));
    assert_eq!(a.send_timeout(&large, SHORT), Ok(large.len()));
    let mut big = vec![0u8; large.len()];
    assert_eq!(b.recv_timeout(&mut big, SHORT), Ok(large.len()));
    assert!(big == large, "the large message, whole");

    // A zero timeout does not wait, and takes what is there.
    expires("msg recv_timeout(0)", Duration::ZERO, || {
        b.recv_timeout(&mut buf, Duration::ZERO)
    });
    a.send_fds(b"fd", &[r.as_fd()]).unwrap();
    assert_eq!(
        b.recv_fds_timeout(&mut buf, &mut fds, Duration::ZERO),
        Ok((2, 1))
    );
    a.send(b"max").unwrap();
    assert_eq!(b.recv_timeout(&mut buf, Duration::MAX), Ok(3));
}

fn msg_timeouts_expire_under_signal_storms() {
    for restart in [false, true] {
        under_storm(restart, || {
            let (a, b) = msg::socketpair().unwrap();
            let mut buf = [0u8; 4096];
            expires("msg recv_timeout, storm", SHORT, || {
                b.recv_timeout(&mut buf, SHORT)
            });
            expires("msg next_size_timeout, storm", SHORT, || {
                b.next_size_timeout(SHORT)
            });
            fill(&a, 1000);
            expires("msg send_timeout, storm", SHORT, || {
                a.send_timeout(&[1; 1000], SHORT)
            });
        });
    }
}

fn msg_timeouts_report_a_peer_that_dies_long_before_they_expire() {
    let (a, b) = msg::socketpair().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(b);
            a.send(b"last").unwrap();
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    drop(a);
    let mut buf = [0u8; 64];
    assert_eq!(b.recv_timeout(&mut buf, LONG), Ok(4));
    let got = returns_soon("msg recv_timeout, peer gone", || {
        b.recv_timeout(&mut buf, LONG)
    });
    assert_eq!(got, Ok(0), "0: the peer is gone");
    assert_eq!(
        b.next_size_timeout(Duration::ZERO),
        Ok(0),
        "gone, not ETIMEDOUT"
    );
    let mut fds = [const { None }; 1];
    assert_eq!(
        b.recv_fds_timeout(&mut buf, &mut fds, Duration::ZERO),
        Ok((0, 0))
    );
    assert!(reap(pid).success());

    // The sender waits for room; its peer is killed.
    let (a, b) = msg::socketpair().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(a);
            let _b = b;
            std::thread::sleep(LONG);
        })
    };
    drop(b);
    fill(&a, 1000);
    std::thread::sleep(Duration::from_millis(30));
    kill(pid);
    let got = returns_soon("msg send_timeout, peer killed", || {
        a.send_timeout(&[1; 1000], LONG)
    });
    assert_eq!(got, Err(Errno::PIPE));
    reap(pid);
}

fn msg_timeouts_receive_what_arrives_in_time() {
    let (a, b) = msg::socketpair().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(b);
            std::thread::sleep(Duration::from_millis(30));
            a.send(b"one").unwrap();
            std::thread::sleep(Duration::from_millis(30));
            let (r, _w) = rustix::pipe::pipe().unwrap();
            a.send_fds(b"with an fd", &[r.as_fd()]).unwrap();
            // Waits for the parent to make room.
            fill(&a, 1000);
            a.send_timeout(b"fits later", LONG).unwrap();
        })
    };
    drop(a);
    let mut buf = [0u8; 2048];
    assert_eq!(b.next_size_timeout(LONG), Ok(3));
    assert_eq!(b.recv_timeout(&mut buf, LONG), Ok(3));
    let mut fds = [const { None }; 1];
    assert_eq!(b.recv_fds_timeout(&mut buf, &mut fds, LONG), Ok((10, 1)));
    assert!(fds[0].is_some());
    std::thread::sleep(Duration::from_millis(50));
    loop {
        match b.recv_timeout(&mut buf, LONG).unwrap() {
            1000 => {}
            10 => break assert_eq!(&buf[..10], b"fits later"),
            n => panic!("unexpected message of {n} bytes"),
        }
    }
    assert_eq!(b.recv_timeout(&mut buf, LONG), Ok(0));
    assert!(reap(pid).success());
}

fn msg_try_and_non_blocking_tell_nothing_yet_from_peer_gone() {
    let mut buf = [0u8; 64];
    // try_recv on a blocking socket: EAGAIN while nothing is there.
    let (a, b) = msg::socketpair().unwrap();
    assert_eq!(b.try_recv(&mut buf), Err(Errno::AGAIN));
    a.try_send(b"hi").unwrap();
    assert_eq!(b.try_recv(&mut buf), Ok(2));
    fill(&a, 1000);
    assert_eq!(a.try_send(&[0; 1000]), Err(Errno::AGAIN));

    // Non-blocking at creation: the plain calls give EAGAIN, the timed ones
    // still wait for their time.
    let (a, b) = msg::socketpair_nonblocking().unwrap();
    assert_eq!(b.recv(&mut buf), Err(Errno::AGAIN));
    assert_eq!(b.next_size(), Err(Errno::AGAIN));
    expires("msg recv_timeout, non-blocking", SHORT, || {
        b.recv_timeout(&mut buf, SHORT)
    });
    fill(&a, 1000);
    assert_eq!(a.send(&[0; 1000]), Err(Errno::AGAIN));
    expires("msg send_timeout, non-blocking", SHORT, || {
        a.send_timeout(&[0; 1000], SHORT)
    });
    // set_nonblocking(false): blocking again, set_nonblocking(true) back.
    b.set_nonblocking(false).unwrap();
    assert_eq!(b.recv(&mut [0; 1000]), Ok(1000));
    b.set_nonblocking(true).unwrap();

    // Peer gone: 0 from every receive, EPIPE from every send.
    let (a, b) = msg::socketpair_nonblocking().unwrap();
    a.send(b"last").unwrap();
    drop(a);
    assert_eq!(b.try_recv(&mut buf), Ok(4), "queued messages first");
    assert_eq!(b.try_recv(&mut buf), Ok(0));
    assert_eq!(b.recv(&mut buf), Ok(0));
    assert_eq!(b.recv_timeout(&mut buf, Duration::ZERO), Ok(0));
    assert_eq!(b.recv_timeout(&mut buf, LONG), Ok(0));
    assert_eq!(b.try_send(b"x"), Err(Errno::PIPE));
    assert_eq!(b.send_timeout(b"x", LONG), Err(Errno::PIPE));
}

fn pipe_read_timeout_expires_not_early_and_sees_end_of_file() {
    let (r, w) = pipe::pipe().unwrap();
    let mut buf = [0u8; 64];
    expires("pipe read_timeout", SHORT, || {
        r.read_timeout(&mut buf, SHORT)
    });
    expires("pipe read_timeout(0)", Duration::ZERO, || {
        r.read_timeout(&mut buf, Duration::ZERO)
    });
    for restart in [false, true] {
        under_storm(restart, || {
            expires("pipe read_timeout, storm", SHORT, || {
                r.read_timeout(&mut buf, SHORT)
            });
        });
    }
    w.write_all(b"abc").unwrap();
    assert_eq!(r.read_timeout(&mut buf, Duration::ZERO), Ok(3));
    assert_eq!(
        pipe::read_timeout(&r, &mut [], SHORT),
        Ok(0),
        "an empty read does not wait"
    );

    // Data in time, then end of file well before a long timeout.
    let Some(pid) = fork() else {
        in_child(|| {
            drop(r);
            std::thread::sleep(Duration::from_millis(30));
            w.write_all(b"late").unwrap();
            std::thread::sleep(Duration::from_millis(30));
        })
    };
    drop(w);
    assert_eq!(r.read_timeout(&mut buf, LONG), Ok(4));
    assert_eq!(&buf[..4], b"late");
    let got = returns_soon("pipe read_timeout, writer gone", || {
        r.read_timeout(&mut buf, LONG)
    });
    assert_eq!(got, Ok(0), "end of file");
    assert_eq!(r.read_timeout(&mut buf, Duration::MAX), Ok(0));
    assert!(reap(pid).success());
}

fn pipe_non_blocking_at_creation_and_by_set_nonblocking() {
    let mut buf = [0u8; 64];
    let (r, w) = pipe::pipe_nonblocking().unwrap();
    assert_eq!(r.read(&mut buf), Err(Errno::AGAIN), "nothing yet");
    expires("pipe read_timeout, non-blocking", SHORT, || {
        r.read_timeout(&mut buf, SHORT)
    });
    w.write_all(b"x").unwrap();
    assert_eq!(r.read(&mut buf), Ok(1));
    // A full non-blocking pipe: the write says how much went.
    let big = vec![0u8; 1 << 20];
    let e = w.write_all(&big).unwrap_err();
    assert_eq!(e.errno, Errno::AGAIN);
    assert!(e.written > 0 && e.written < big.len());
    drop(w);
    let mut drained = 0;
    loop {
        match r.read(&mut [0; 65536]) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(drained, e.written, "the bytes written, then end of file");

    // set_nonblocking on a blocking pipe, and back.
    let (r, w) = pipe::pipe().unwrap();
    r.set_nonblocking(true).unwrap();
    assert_eq!(r.read(&mut buf), Err(Errno::AGAIN));
    r.set_nonblocking(false).unwrap();
    w.write_all(b"y").unwrap();
    assert_eq!(r.read(&mut buf), Ok(1));
    expires("pipe read_timeout, blocking again", SHORT, || {
        r.read_timeout(&mut buf, SHORT)
    });
    // A bad fd is reported, not waited on.
    // SAFETY: a number no fd has here; the kernel says EBADF for it.
    let bad = unsafe { BorrowedFd::borrow_raw(1_000_000) };
    assert_eq!(pipe::read_timeout(bad, &mut buf, LONG), Err(Errno::BADF));
}

/// A child that holds `m` (through `lock`) until killed, or for `hold`.
fn holder(locked: &AtomicU32, hold: Duration, lock: impl FnOnce()) -> Pid {
    let Some(pid) = fork() else {
        in_child(|| {
            lock();
            locked.store(1, SeqCst);
            std::thread::sleep(hold);
            process::exit(0);
        })
    };
    while locked.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    pid
}

fn mutex_lock_timeout_expires_not_early_even_under_storms() {
    let m = Shared::new(ProcessMutex::new(0u64)).unwrap();
    let raw = Shared::new(RawMutex::new()).unwrap();
    let locked = Shared::new(AtomicU32::new(0)).unwrap();
    // Free: at once, with any timeout.
    drop(m.lock_timeout(Duration::ZERO).unwrap());
    assert_eq!(raw.lock_timeout(Duration::MAX), Ok(Acquired::Normal));
    raw.unlock().unwrap();

    let pid = holder(&locked, LONG, || {
        std::mem::forget(m.lock().unwrap());
        assert_eq!(raw.lock(), Ok(Acquired::Normal));
    });
    expires("mutex lock_timeout", SHORT, || raw.lock_timeout(SHORT));
    expires("mutex lock_timeout(0)", Duration::ZERO, || {
        raw.lock_timeout(Duration::ZERO)
    });
    let start = Instant::now();
    assert!(matches!(m.lock_timeout(SHORT), Err(LockError::TimedOut)));
    assert!(start.elapsed() >= SHORT);
    assert_eq!(LockError::<u64>::TimedOut.errno(), Errno::TIMEDOUT);
    for restart in [false, true] {
        under_storm(restart, || {
            expires("mutex lock_timeout, storm", SHORT, || {
                raw.lock_timeout(SHORT)
            });
        });
    }
    // The holder still holds both; its death hands them over.
    kill(pid);
    reap(pid);
    assert_eq!(raw.lock_timeout(LONG), Ok(Acquired::OwnerDied));
    match m.lock_timeout(Duration::ZERO) {
        Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
}

fn mutex_lock_timeout_reports_a_holder_that_dies() {
    // The holder dies (of SIGKILL) during a long timeout.
    let raw = Shared::new(RawMutex::new()).unwrap();
    let locked = Shared::new(AtomicU32::new(0)).unwrap();
    let pid = holder(&locked, LONG, || {
        assert_eq!(raw.lock(), Ok(Acquired::Normal))
    });
    let Some(killer) = fork() else {
        std::thread::sleep(Duration::from_millis(50));
        kill(pid);
        process::exit(0)
    };
    let got = returns_soon("mutex lock_timeout, holder killed", || {
        raw.lock_timeout(LONG)
    });
    assert_eq!(got, Ok(Acquired::OwnerDied));
    raw.mark_consistent().unwrap();
    raw.unlock().unwrap();
    reap(killer);
    reap(pid);

    // A holder that exits with the lock while a storm rages.
    for restart in [false, true] {
        under_storm(restart, || {
            let m = Shared::new(ProcessMutex::new(7u64)).unwrap();
            let locked = Shared::new(AtomicU32::new(0)).unwrap();
            let pid = holder(&locked, Duration::from_millis(50), || {
                std::mem::forget(m.lock().unwrap());
            });
            let got = returns_soon("mutex lock_timeout, holder exits, storm", || {
                match m.lock_timeout(LONG) {
                    Err(LockError::OwnerDied(mut guard)) => {
                        assert_eq!(*guard, 7);
                        guard.mark_consistent();
                        true
                    }
                    _ => false,
                }
            });
            assert!(got, "expected OwnerDied");
            assert!(reap(pid).success());
        });
    }
}

fn call_timeouts_expire_under_storms_and_report_a_dead_peer() {
    use rawipc::call::{Call, LINE_MESSAGE};
    for restart in [false, true] {
        under_storm(restart, || {
            let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
            let mut buf = [0u8; LINE_MESSAGE];
            expires("call recv_timeout, storm", SHORT, || {
                server.recv_timeout(&mut buf, SHORT)
            });
            expires("call call_timeout, storm", SHORT, || {
                client.call_timeout(b"q", &mut buf, SHORT)
            });
            // The request stays made: answered now, its reply is taken.
            assert_eq!(server.recv_timeout(&mut buf, SHORT), Ok(1));
            server.reply(b"r").unwrap();
            assert_eq!(client.reply_timeout(&mut buf, SHORT), Ok(1));
        });
    }
    // The server dies during a client's long timeout: EPIPE, soon.
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            let mut buf = [0u8; LINE_MESSAGE];
            assert_eq!(server.recv(&mut buf), Ok(4));
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    let mut client = call.into_client();
    let got = returns_soon("call call_timeout, server gone", || {
        client.call_timeout(b"ping", &mut [0; LINE_MESSAGE], LONG)
    });
    assert_eq!(got, Err(Errno::PIPE));
    assert!(reap(pid).success());
    // The client dies during the server's long timeout: 0, soon.
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _client = call.into_client();
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    let mut server = call.into_server();
    let got = returns_soon("call recv_timeout, client gone", || {
        server.recv_timeout(&mut [0; LINE_MESSAGE], LONG)
    });
    assert_eq!(got, Ok(0));
    assert_eq!(
        server.recv_timeout(&mut [0; LINE_MESSAGE], Duration::ZERO),
        Ok(0)
    );
    assert!(reap(pid).success());
}
