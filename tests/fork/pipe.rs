//! rawipc::pipe across fork: end of file when the writer dies, large
//! transfers, EINTR, and EPIPE without SIGPIPE.
//!
//! Rust's runtime starts every program with SIGPIPE ignored, which would make
//! "no SIGPIPE" untestable; the SIGPIPE tests set the disposition themselves
//! (each runs in a process of its own).

use rawipc::Errno;
use rawipc::pipe::{self, WriteError, pipe};
use rawipc::process::{self, Fork, Status};
use rustix::process::{Signal, kill_process};

use crate::{
    blocked_signals, expect_success, fork, handler_of, has, in_child, interrupt_parent,
    pending_signals, reap, set_blocked, set_handler, signals_handled, take_pending,
};

/// 1 MiB, much larger than a pipe's buffer (64 KiB by default), in a pattern
/// whose period (251) is not a divisor of any buffer size.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
const MIB: usize = 1 << 20;

/// The notes: "When you try to read from a file and no one has it open to
/// write, UNIX returns a special code ... You can use that value to know when
/// the processes die."
pub fn eof_once_the_writing_child_exits() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(r);
            w.write_all(b"hello from the child").is_ok()
        }),
        Fork::Parent(pid) => pid,
    };
    drop(w);
    let mut buf = [0u8; 64];
    let n = r.read_full(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello from the child");
    assert_eq!(r.read(&mut buf), Ok(0));
    assert_eq!(reap(pid), Status::Exited(0));
}

pub fn eof_when_the_writing_child_is_killed() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => {
            drop(r);
            let _ = w.write_all(b"last words");
            let _ = kill_process(process::getpid(), Signal::KILL);
            process::exit(3) // not reached
        }
        Fork::Parent(pid) => pid,
    };
    drop(w);
    let mut buf = [0u8; 64];
    let n = r.read_full(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"last words");
    assert_eq!(r.read(&mut buf), Ok(0));
    assert_eq!(
        reap(pid),
        Status::Killed {
            signal: 9,
            core_dumped: false
        }
    );
}

pub fn one_mebibyte_through_a_pipe_to_a_child() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(w);
            let mut got = vec![0u8; MIB + 1];
            let n = r.read_full(&mut got).unwrap();
            n == MIB && got[..n] == pattern(MIB)[..]
        }),
        Fork::Parent(pid) => pid,
    };
    drop(r);
    w.write_all(&pattern(MIB)).unwrap();
    drop(w);
    expect_success(pid);
}

pub fn one_mebibyte_through_a_pipe_from_a_child() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(r);
            // Through the free function this time.
            pipe::write_all(&w, &pattern(MIB)) == Ok(())
        }),
        Fork::Parent(pid) => pid,
    };
    drop(w);
    let mut got = vec![0u8; MIB + 1];
    let mut n = 0;
    loop {
        match pipe::read(&r, &mut got[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    assert_eq!(n, MIB);
    assert!(got[..n] == pattern(MIB)[..]);
    expect_success(pid);
}

/// SIGALRM (handler without SA_RESTART) arrives while `read` blocks on an
/// empty pipe: `read` retries and returns the data written after it.
pub fn read_interrupted_by_a_signal_still_gets_the_data() {
    let (r, w) = pipe().unwrap();
    let pid = interrupt_parent(|| w.write_all(b"after the signal").is_ok());
    let mut buf = [0u8; 16];
    assert_eq!(r.read_full(&mut buf), Ok(16));
    assert_eq!(&buf, b"after the signal");
    assert_eq!(signals_handled(), 1);
    expect_success(pid);
}

/// The same setup without rawipc: read(2) fails with EINTR.
pub fn control_raw_read_is_interrupted() {
    let (r, w) = pipe().unwrap();
    let pid = interrupt_parent(|| w.write_all(b"x").is_ok());
    let mut buf = [0u8; 1];
    assert_eq!(rustix::io::read(&r, &mut buf), Err(Errno::INTR));
    assert_eq!(signals_handled(), 1);
    assert_eq!(r.read(&mut buf), Ok(1));
    expect_success(pid);
}

/// SIGALRM arrives while `write_all` blocks on a pipe that was full before
/// it started (a write interrupted after it copied some bytes returns that
/// count, not EINTR; one that copied nothing fails with EINTR): it goes on,
/// and the reader gets every byte once, in order.
pub fn write_all_interrupted_by_a_signal_writes_everything() {
    let (r, w) = pipe().unwrap();
    let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    let data = pattern(capacity + MIB);
    let pid = interrupt_parent(|| {
        // This child holds a copy of the write end too (it was made before
        // the fork), so it reads exactly what it expects, not up to EOF.
        let mut got = vec![0u8; capacity + MIB];
        r.read_full(&mut got) == Ok(capacity + MIB) && got == pattern(capacity + MIB)
    });
    drop(r);
    // Fills the pipe without blocking: the child reads nothing before the signal.
    w.write_all(&data[..capacity]).unwrap();
    assert_eq!(w.write_all(&data[capacity..]), Ok(()));
    drop(w);
    expect_success(pid);
    assert_eq!(signals_handled(), 1);
}

/// The same setup without rawipc: write(2) on the full pipe fails with EINTR.
pub fn control_raw_write_is_interrupted() {
    let (r, w) = pipe().unwrap();
    let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    let pid = interrupt_parent(|| {
        let mut got = vec![0u8; capacity + 1];
        r.read_full(&mut got) == Ok(capacity + 1)
    });
    drop(r);
    w.write_all(&pattern(capacity)).unwrap();
    assert_eq!(rustix::io::write(&w, b"x"), Err(Errno::INTR));
    assert_eq!(signals_handled(), 1);
    w.write_all(b"x").unwrap();
    expect_success(pid);
}

/// A pipe whose read end is gone.
fn broken_pipe() -> pipe::WriteEnd {
    let (r, w) = pipe().unwrap();
    drop(r);
    w
}

/// With SIGPIPE's default action (which would kill this process) and SIGPIPE
/// not blocked: EPIPE, the process lives, and the disposition, the mask and
/// the pending set are as before.
pub fn epipe_with_default_sigpipe_and_the_process_survives() {
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
    set_blocked(libc::SIGPIPE, false);
    let w = broken_pipe();
    for buf in [&b"x"[..], &[7u8; 100_000][..]] {
        assert_eq!(
            w.write_all(buf),
            Err(WriteError {
                written: 0,
                errno: Errno::PIPE
            })
        );
    }
    assert_eq!(
        pipe::write_all(&w, b"y").map_err(Errno::from),
        Err(Errno::PIPE)
    );
    assert_eq!(handler_of(libc::SIGPIPE), libc::SIG_DFL);
    assert!(!has(&blocked_signals(), libc::SIGPIPE));
    assert!(!has(&pending_signals(), libc::SIGPIPE));
}

/// The same setup without rawipc: a plain write(2) to a broken pipe kills the
/// process with SIGPIPE, so the test above would fail if rawipc let it through.
pub fn control_raw_write_to_a_closed_pipe_kills() {
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
    set_blocked(libc::SIGPIPE, false);
    let w = broken_pipe();
    let pid = match fork() {
        Fork::Child => {
            let _ = rustix::io::write(&w, b"x");
            process::exit(0) // not reached
        }
        Fork::Parent(pid) => pid,
    };
    assert_eq!(
        reap(pid),
        Status::Killed {
            signal: libc::SIGPIPE,
            core_dumped: false
        }
    );
}

static SIGPIPES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn count_sigpipe(_: libc::c_int) {
    SIGPIPES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// With a SIGPIPE handler installed, EPIPE never runs it; a plain write does.
pub fn epipe_never_runs_a_sigpipe_handler() {
    use std::sync::atomic::Ordering::SeqCst;
    let handler = crate::handler(count_sigpipe);
    set_handler(libc::SIGPIPE, handler, libc::SA_RESTART);
    let w = broken_pipe();
    assert_eq!(w.write_all(b"x").map_err(|e| e.errno), Err(Errno::PIPE));
    assert_eq!(w.write_all(&[]), Ok(()), "an empty write is no write");
    assert_eq!(SIGPIPES.load(SeqCst), 0);
    assert_eq!(handler_of(libc::SIGPIPE), handler);
    assert!(!has(&pending_signals(), libc::SIGPIPE));
    // Control: the handler is live.
    assert_eq!(rustix::io::write(&w, b"x"), Err(Errno::PIPE));
    assert_eq!(SIGPIPES.load(SeqCst), 1);
}

/// If the caller had SIGPIPE blocked, rawipc leaves its mask alone, and
/// takes back the SIGPIPE its own write raised (write(2) would leave it
/// pending, to kill the caller when it unblocks SIGPIPE); a SIGPIPE that was
/// pending before the call stays pending.
pub fn epipe_with_sigpipe_blocked_leaves_no_new_pending_sigpipe() {
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
    set_blocked(libc::SIGPIPE, true);
    let w = broken_pipe();
    assert!(!has(&pending_signals(), libc::SIGPIPE));

    assert_eq!(w.write_all(b"x").map_err(|e| e.errno), Err(Errno::PIPE));
    assert!(has(&blocked_signals(), libc::SIGPIPE), "still blocked");
    assert!(!has(&pending_signals(), libc::SIGPIPE), "taken back");

    // write(2) itself, for comparison, leaves one pending.
    assert_eq!(rustix::io::write(&w, b"x"), Err(Errno::PIPE));
    assert!(has(&pending_signals(), libc::SIGPIPE));

    // That SIGPIPE, pending before the call, stays pending (just the one).
    assert_eq!(w.write_all(b"x").map_err(|e| e.errno), Err(Errno::PIPE));
    assert!(has(&blocked_signals(), libc::SIGPIPE));
    assert!(take_pending(libc::SIGPIPE));
    assert!(!take_pending(libc::SIGPIPE));
    assert_eq!(handler_of(libc::SIGPIPE), libc::SIG_DFL);
    // Nothing is left to kill this process when it unblocks SIGPIPE.
    set_blocked(libc::SIGPIPE, false);
}

/// A SIGPIPE pending for the *process* (from kill) while the caller blocks
/// SIGPIPE does not stop the write's own, thread-directed SIGPIPE from being
/// raised: rawipc must still leave exactly the one that was pending, so that
/// a handler runs once, not twice, when the caller unblocks SIGPIPE.
pub fn epipe_with_a_process_directed_sigpipe_pending_leaves_just_that_one() {
    use std::sync::atomic::Ordering::SeqCst;
    let handler = crate::handler(count_sigpipe);
    set_handler(libc::SIGPIPE, handler, 0);
    set_blocked(libc::SIGPIPE, true);
    let w = broken_pipe();
    let me = rustix::process::getpid();
    rustix::process::kill_process(me, rustix::process::Signal::PIPE).unwrap();
    assert!(has(&pending_signals(), libc::SIGPIPE));
    for _ in 0..3 {
        assert_eq!(w.write_all(b"x").map_err(|e| e.errno), Err(Errno::PIPE));
    }
    assert!(has(&blocked_signals(), libc::SIGPIPE), "still blocked");
    assert_eq!(handler_of(libc::SIGPIPE), handler);
    SIGPIPES.store(0, SeqCst);
    set_blocked(libc::SIGPIPE, false);
    assert_eq!(SIGPIPES.load(SeqCst), 1, "the handler runs once");
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
}

/// With SIGPIPE ignored: EPIPE, and the disposition stays SIG_IGN.
pub fn epipe_with_sigpipe_ignored_leaves_it_ignored() {
    set_handler(libc::SIGPIPE, libc::SIG_IGN, 0);
    set_blocked(libc::SIGPIPE, false);
    let w = broken_pipe();
    assert_eq!(w.write_all(b"x").map_err(|e| e.errno), Err(Errno::PIPE));
    assert_eq!(handler_of(libc::SIGPIPE), libc::SIG_IGN);
    assert!(!has(&blocked_signals(), libc::SIGPIPE));
    assert!(!has(&pending_signals(), libc::SIGPIPE));
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
}

/// The reader takes part of a large write and dies: write_all reports EPIPE
/// and how many bytes went into the pipe, at least what the reader took and
/// at most that plus one pipe buffer (what was left unread).
pub fn epipe_after_a_partial_write_counts_what_went_in() {
    const TAKEN: usize = 1000;
    set_handler(libc::SIGPIPE, libc::SIG_DFL, 0);
    set_blocked(libc::SIGPIPE, false);
    let (r, w) = pipe().unwrap();
    let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            drop(w);
            let mut got = vec![0u8; TAKEN];
            r.read_full(&mut got) == Ok(TAKEN) && got[..] == pattern(TAKEN)[..]
        }),
        Fork::Parent(pid) => pid,
    };
    drop(r);
    let err = w.write_all(&pattern(MIB)).unwrap_err();
    assert_eq!(err.errno, Errno::PIPE);
    assert!(err.written >= TAKEN, "{err:?}");
    assert!(
        err.written <= TAKEN + capacity,
        "{err:?} (pipe of {capacity} bytes)"
    );
    assert!(!has(&pending_signals(), libc::SIGPIPE));
    assert!(
        rustix::io::fcntl_getfd(&w).is_ok(),
        "the write end is still open"
    );
    expect_success(pid);
}
