//! A peer that sends its last message and closes just as the receiver looks
//! for it. The kernel may then answer the look with end of file although
//! the message is queued: a receive on a `SOCK_SEQPACKET` socket looks at
//! its queue and, finding it empty, then at whether the peer is gone, with
//! no lock held across the two looks. The message must still be received
//! (a hand-over taken), and only then end of file reported.
//!
//! Each test makes that moment frequent: the sender, on another CPU,
//! prepares its last message, signals the receiver (whose handler does
//! nothing) and at once sends and closes; the interrupt holds the receiver
//! up wherever it is, often in the middle of its look. The receiver starts
//! its receive after a pause that moves along the tries, so that its look
//! meets the send at every offset.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use rawipc::chan::handover;
use rawipc::msg::{self, MsgSocket};
use rawipc::{AsFd, Errno, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, ftruncate, memfd_create};
use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};

/// Tries per test (about a second): enough that a receive which believed
/// every end of file would miss several messages.
const TRIES: u32 = 10_000;

/// The longest pause before a receive, in ns.
const MAX_PAUSE_NS: u32 = 8_000;

extern "C" fn nothing(_: libc::c_int) {}

/// Installs a handler for `SIGUSR1` that does nothing, with `SA_RESTART`.
fn install_handler() {
    super::support::child::catch_sigusr1(nothing, true);
}

/// Puts the calling thread on the `nth` CPU this process may use, if there
/// is one (on a single CPU the two sides only take turns).
fn pin(nth: usize) {
    let allowed = rustix::thread::sched_getaffinity(None).expect("sched_getaffinity");
    let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    if cpus.len() < 2 {
        return;
    }
    let mut one = rustix::thread::CpuSet::new();
    one.set(cpus[nth]);
    rustix::thread::sched_setaffinity(None, &one).expect("sched_setaffinity");
}

fn spin_ns(ns: u32) {
    let start = Instant::now();
    while start.elapsed().as_nanos() < u128::from(ns) {
        core::hint::spin_loop();
    }
}

/// Runs [`TRIES`] tries of: a new socket pair; on another thread,
/// `prepare`, a signal to this thread, `send` on one end, and that end
/// closed; here, after a pause, `receive` on the other end (which says
/// whether the message came), then a receive that must be end of file.
/// Fails if any message was missed.
fn last_messages<T>(
    what: &str,
    prepare: impl Fn() -> T + Sync,
    send: impl Fn(&MsgSocket, T) + Sync,
    receive: impl Fn(&MsgSocket) -> bool,
) {
    install_handler();
    let go = AtomicU32::new(0);
    let slot: Mutex<Option<MsgSocket>> = Mutex::new(None);
    // SAFETY: gettid has no preconditions.
    let receiver = unsafe { libc::gettid() };
    let mut missed = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(1);
            for i in 1..=TRIES {
                let ready = prepare();
                while go.load(Ordering::Acquire) != i {
                    core::hint::spin_loop();
                }
                let sock = slot.lock().unwrap().take().expect("this try's socket");
                // SAFETY: a signal to a thread of this process, which has a
                // handler for it.
                unsafe { libc::tgkill(libc::getpid(), receiver, libc::SIGUSR1) };
                send(&sock, ready);
                drop(sock);
            }
        });
        pin(0);
        for i in 1..=TRIES {
            let (a, b) = msg::socketpair().unwrap();
            *slot.lock().unwrap() = Some(b);
            go.store(i, Ordering::Release);
            spin_ns(i.wrapping_mul(37) % MAX_PAUSE_NS);
            if !receive(&a) {
                missed += 1;
            }
            assert_eq!(msg::recv(&a, &mut [0; 32]), Ok(0), "then end of file");
        }
    });
    assert_eq!(
        missed, 0,
        "{what}: {missed} of {TRIES} last messages were read as end of file"
    );
}

pub fn a_last_message_sent_as_the_peer_closes_is_received() {
    last_messages(
        "msg::recv",
        || (),
        |sock, ()| {
            msg::send(sock, b"last").unwrap();
        },
        |sock| {
            let mut buf = [0u8; 16];
            match msg::recv(sock, &mut buf) {
                Ok(0) => false,
                Ok(4) if &buf[..4] == b"last" => true,
                other => panic!("msg::recv: {other:?}"),
            }
        },
    );
}

pub fn a_last_message_with_fds_sent_as_the_peer_closes_is_received() {
    last_messages(
        "msg::recv_fds",
        || rustix::pipe::pipe().unwrap(),
        |sock, (r, _w)| {
            msg::send_fds(sock, b"last", &[r.as_fd()]).unwrap();
        },
        |sock| {
            let mut buf = [0u8; 16];
            let mut fds: [Option<OwnedFd>; 1] = Default::default();
            match msg::recv_fds(sock, &mut buf, &mut fds) {
                Ok((0, 0)) => false,
                Ok((4, 1)) if &buf[..4] == b"last" => true,
                other => panic!("msg::recv_fds: {other:?}"),
            }
        },
    );
}

/// A hand-over of a channel's receiving end as a giver that closes the
/// connection at once sends it (its memory and life-line made beforehand,
/// as `give_receiver` makes them, so that the send follows the signal).
pub fn a_hand_over_sent_as_the_giver_closes_is_taken() {
    const CAP: u64 = 4096;
    let mut header = [0u8; 24];
    header[..8].copy_from_slice(b"rawipcch");
    header[8..12].copy_from_slice(&1u32.to_ne_bytes());
    header[12..16].copy_from_slice(&2u32.to_ne_bytes());
    header[16..].copy_from_slice(&CAP.to_ne_bytes());
    last_messages(
        "handover::take_receiver",
        || {
            let memory = memfd_create("ring", MemfdFlags::ALLOW_SEALING).unwrap();
            ftruncate(&memory, 4096 + CAP).unwrap();
            fcntl_add_seals(&memory, SealFlags::SHRINK | SealFlags::GROW).unwrap();
            let life = socketpair(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            (memory, life)
        },
        |sock, (memory, (life, _kept))| {
            msg::send_fds(sock, &header, &[memory.as_fd(), life.as_fd()]).unwrap();
        },
        |sock| match handover::take_receiver(sock) {
            Ok(_) => true,
            Err(Errno::PIPE) => false,
            Err(e) => panic!("handover::take_receiver: {e}"),
        },
    );
}
