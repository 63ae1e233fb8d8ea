//! Every blocking call whose peer dies returns, and soon, while signals keep
//! interrupting it: storms of 1000 and 100 signals a second, from a handler
//! installed with and without SA_RESTART, during a channel receive (copy
//! and zero-copy), a send and a reservation on a full ring, a mutex lock and
//! a message receive.
//!
//! A storm comes from a process of its own, to the test's thread
//! (`tgkill`). Each run prints how long after the peer's death the call
//! returned; it fails only if the call had not returned 2 s after the death
//! (a hang check, not a measure: this machine is shared), or returned the
//! wrong thing.

#[path = "../support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use rawipc::Errno;
use rawipc::chan::Channel;
use rawipc::mutex::{LockError, ProcessMutex};
use rawipc::process::{self, Pid};
use rawipc::shm::Shared;
use support::child::{catch_sigusr1, fork, in_child, reap};

fn main() -> ExitCode {
    support::main(tests![
        chan_recv_returns_0_when_the_sender_dies,
        chan_recv_borrowed_returns_none_when_the_sender_dies,
        chan_send_on_a_full_ring_is_epipe_when_the_receiver_dies,
        chan_reserve_on_a_full_ring_is_epipe_when_the_receiver_dies,
        mutex_lock_is_owner_died_when_the_holder_dies,
        msg_recv_returns_0_when_the_peer_dies,
    ])
}

/// What the test's process, its peer and the storm's process share.
#[derive(Default)]
struct Board {
    /// When the peer died (CLOCK_MONOTONIC, ns); 0 while it lives.
    death_ns: AtomicU64,
    /// Set by the storm's process when the call has not returned 2 s after
    /// the death: the next signal's handler ends the test as failed.
    hung: AtomicU32,
    /// Set once the call returned: the storm stops.
    done: AtomicU32,
}

// SAFETY: atomics only, valid for any bytes, no pointer, no destructor.
unsafe impl rawipc::shm::ShmSafe for Board {}

static BOARD: AtomicU64 = AtomicU64::new(0);

const LIMIT: Duration = Duration::from_secs(2);

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

extern "C" fn on_signal(_: libc::c_int) {
    let board = BOARD.load(SeqCst) as *const Board;
    // SAFETY: set before the storm starts, to a board alive until it ends.
    if let Some(board) = unsafe { board.as_ref() } {
        if board.hung.load(SeqCst) != 0 {
            let msg = b"the call did not return within 2 s of its peer's death\n";
            // SAFETY: write and _exit are async-signal-safe.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(3);
            }
        }
    }
}

/// The peer's death: noted on the board, then `_exit` holding whatever it
/// holds (its channel end, its lock).
fn die(board: &Board) -> ! {
    board.death_ns.store(now_ns(), SeqCst);
    process::exit(0)
}

/// Sends SIGUSR1 to `target`'s main thread every `period` until the board
/// says done; marks the run hung 2 s after the peer's death.
fn storm(board: &Board, target: libc::pid_t, period: Duration) -> ! {
    while board.done.load(SeqCst) == 0 {
        // SAFETY: tgkill with a pid, a tid (the main thread's is the pid)
        // and a signal number.
        unsafe { libc::syscall(libc::SYS_tgkill, target, target, libc::SIGUSR1) };
        let death = board.death_ns.load(SeqCst);
        if death != 0 && now_ns() > death + LIMIT.as_nanos() as u64 {
            board.hung.store(1, SeqCst);
        }
        std::thread::sleep(period);
    }
    process::exit(0)
}

/// Runs `call` under each storm: 1 kHz and 100 Hz, with and without
/// SA_RESTART. `setup` runs in the test's process and returns the peer's
/// pid (it forks the peer, which dies on its own a little later) and the
/// state the call needs.
fn under_storms<S>(what: &str, mut setup: impl FnMut(&Board) -> (Pid, S), call: impl Fn(S)) {
    for hz in [1000u64, 100] {
        for restart in [false, true] {
            let board = Shared::new(Board::default()).expect("shared memory");
            BOARD.store(board.as_ptr() as u64, SeqCst);
            catch_sigusr1(on_signal, restart);
            let me = rustix::process::getpid().as_raw_nonzero().get();
            // The storm first, so that it holds none of the fds made below.
            let Some(stormer) = fork() else {
                storm(&board, me, Duration::from_micros(1_000_000 / hz))
            };
            let (peer, state) = setup(&board);
            call(state);
            let back = now_ns();
            board.done.store(1, SeqCst);
            let death = board.death_ns.load(SeqCst);
            assert_ne!(death, 0, "{what}: returned before the peer died");
            println!(
                "{what}: {hz} Hz, {}SA_RESTART: returned {:.1} ms after the peer's death",
                if restart { "" } else { "no " },
                (back - death) as f64 / 1e6
            );
            for pid in [peer, stormer] {
                let status = reap(pid);
                assert!(status.success(), "{what}: a child failed: {status:?}");
            }
            BOARD.store(0, SeqCst);
        }
    }
}

/// How long a peer lives once set up: the call is blocked by then. From 50
/// to 70 ms, so that the deaths fall anywhere between two of the waiter's
/// looks at its peer.
fn peer_life() -> Duration {
    let t = now_ns() ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9);
    Duration::from_micros(50_000 + t % 20_000)
}

fn chan_recv_returns_0_when_the_sender_dies() {
    under_storms(
        "chan recv",
        |board| {
            let chan = Channel::new(4096).unwrap();
            let Some(pid) = fork() else {
                in_child(|| {
                    let mut tx = chan.into_sender();
                    tx.send(b"last words").unwrap();
                    std::thread::sleep(peer_life());
                    die(board)
                })
            };
            (pid, chan.into_receiver())
        },
        |mut rx| {
            let mut buf = [0u8; 64];
            assert_eq!(rx.recv(&mut buf), Ok(10));
            assert_eq!(rx.recv(&mut buf), Ok(0), "the sender is gone");
        },
    );
}

fn chan_recv_borrowed_returns_none_when_the_sender_dies() {
    under_storms(
        "chan recv_borrowed",
        |board| {
            let chan = Channel::new(4096).unwrap();
            let Some(pid) = fork() else {
                in_child(|| {
                    let _tx = chan.into_sender();
                    std::thread::sleep(peer_life());
                    die(board)
                })
            };
            (pid, chan.into_receiver())
        },
        |mut rx| assert!(rx.recv_borrowed().unwrap().is_none(), "the sender is gone"),
    );
}

/// A sender whose ring is full, and whose receiver never receives.
fn full_ring(board: &Board) -> (Pid, rawipc::chan::Sender) {
    let chan = Channel::new(4096).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _rx = chan.into_receiver();
            std::thread::sleep(peer_life());
            die(board)
        })
    };
    let mut tx = chan.into_sender();
    while tx.try_send(&[1; 100]).is_ok() {}
    (pid, tx)
}

fn chan_send_on_a_full_ring_is_epipe_when_the_receiver_dies() {
    under_storms("chan send", full_ring, |mut tx| {
        assert_eq!(tx.send(&[2; 100]), Err(Errno::PIPE));
    });
}

fn chan_reserve_on_a_full_ring_is_epipe_when_the_receiver_dies() {
    under_storms("chan reserve", full_ring, |mut tx| {
        assert!(matches!(tx.reserve(1000), Err(Errno::PIPE)));
    });
}

fn mutex_lock_is_owner_died_when_the_holder_dies() {
    under_storms(
        "mutex lock",
        |board| {
            let mutex = Shared::new(ProcessMutex::new(0u64)).unwrap();
            let locked = Shared::new(AtomicU32::new(0)).unwrap();
            let Some(pid) = fork() else {
                in_child(|| {
                    let guard = mutex.lock().unwrap();
                    locked.store(1, SeqCst);
                    std::thread::sleep(peer_life());
                    std::mem::forget(guard);
                    die(board)
                })
            };
            while locked.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            (pid, mutex)
        },
        |mutex| match mutex.lock() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        },
    );
}

fn msg_recv_returns_0_when_the_peer_dies() {
    under_storms(
        "msg recv",
        |board| {
            let (a, b) = rawipc::msg::socketpair().unwrap();
            let Some(pid) = fork() else {
                in_child(|| {
                    drop(b);
                    let _a = a;
                    std::thread::sleep(peer_life());
                    die(board)
                })
            };
            drop(a);
            (pid, b)
        },
        |b| assert_eq!(b.recv(&mut [0u8; 64]), Ok(0), "the peer is gone"),
    );
}
