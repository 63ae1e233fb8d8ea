//! rawipc::process: fork, wait, waitpid, exit and the status they report.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use rawipc::Errno;
use rawipc::pipe::pipe;
use rawipc::process::{self, Fork, Pid, Status, WaitOptions};
use rawipc::shm::Shared;
use rustix::process::{Signal, WaitId, WaitIdOptions, kill_process, waitid};

use crate::{expect_success, fork, in_child, interrupt_parent, reap, signals_handled};

pub fn fork_returns_child_and_parent() {
    let parent = process::getpid();
    let child_pid = Shared::new(AtomicU32::new(0)).unwrap();
    match fork() {
        Fork::Child => in_child(|| {
            assert_eq!(process::getppid(), Some(parent));
            assert_ne!(process::getpid(), parent);
            child_pid.store(process::getpid().as_raw_pid() as u32, Ordering::SeqCst);
            true
        }),
        Fork::Parent(pid) => {
            assert_eq!(process::getpid(), parent);
            assert_ne!(pid, parent);
            let (reaped, status) = process::wait().unwrap();
            assert_eq!(reaped, pid);
            assert_eq!(status, Status::Exited(0));
            assert_eq!(child_pid.load(Ordering::SeqCst), pid.as_raw_pid() as u32);
        }
    }
}

/// Forks a child that leaves with `exit(code)` at once.
fn child_exiting_with(code: i32) -> Pid {
    match fork() {
        Fork::Child => process::exit(code),
        Fork::Parent(pid) => pid,
    }
}

pub fn wait_returns_the_pid_and_exit_code() {
    for code in [0u8, 1, 42, 255] {
        let pid = child_exiting_with(code.into());
        let (reaped, status) = process::wait().unwrap();
        assert_eq!(reaped, pid);
        assert_eq!(status, Status::Exited(code));
        assert_eq!(status.success(), code == 0);
        assert_eq!(status.to_raw(), i32::from(code) << 8);
    }
}

/// `_exit` hands only the low 8 bits of its status to the parent.
pub fn exit_codes_are_truncated_to_a_byte() {
    for (code, seen) in [(256, 0u8), (257, 1), (-1, 255)] {
        let pid = child_exiting_with(code);
        assert_eq!(reap(pid), Status::Exited(seen), "exit({code})");
    }
}

pub fn wait_collects_every_child() {
    let mut expected = BTreeSet::new();
    for code in 10..15 {
        expected.insert((child_exiting_with(code).as_raw_pid(), code as u8));
    }
    let mut seen = BTreeSet::new();
    for _ in 0..expected.len() {
        let (pid, status) = process::wait().unwrap();
        let Status::Exited(code) = status else {
            panic!("{status:?}")
        };
        seen.insert((pid.as_raw_pid(), code));
    }
    assert_eq!(seen, expected);
    assert_eq!(process::wait(), Err(Errno::CHILD));
}

pub fn sigkill_is_killed_9_without_core() {
    let pid = match fork() {
        Fork::Child => {
            let _ = kill_process(process::getpid(), Signal::KILL);
            process::exit(3) // not reached
        }
        Fork::Parent(pid) => pid,
    };
    let status = reap(pid);
    assert_eq!(
        status,
        Status::Killed {
            signal: 9,
            core_dumped: false
        }
    );
    assert!(!status.success());
    assert_eq!(status.to_raw(), 9);
}

pub fn waitpid_nohang_is_none_while_the_child_runs() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        // The child blocks until the parent closes the pipe.
        Fork::Child => in_child(|| {
            drop(w);
            let mut buf = [0u8; 1];
            r.read(&mut buf) == Ok(0)
        }),
        Fork::Parent(pid) => pid,
    };
    drop(r);
    assert_eq!(process::waitpid(pid, WaitOptions::NOHANG), Ok(None));
    assert_eq!(process::waitpid(pid, WaitOptions::NOHANG), Ok(None));
    drop(w);
    // Wait until it has ended without reaping it, so that NOHANG must see it.
    let ended = waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    )
    .unwrap();
    assert!(ended.is_some());
    assert_eq!(
        process::waitpid(pid, WaitOptions::NOHANG),
        Ok(Some((pid, Status::Exited(0))))
    );
    // Reaped: it is no longer this process's child.
    assert_eq!(
        process::waitpid(pid, WaitOptions::NOHANG),
        Err(Errno::CHILD)
    );
}

/// `wait_any(NOHANG)`: any child, without waiting; `None` while children
/// run, each ended one once, then `ECHILD`.
pub fn wait_any_nohang_reaps_any_ended_child_without_waiting() {
    assert_eq!(process::wait_any(WaitOptions::NOHANG), Err(Errno::CHILD));
    let (r, w) = pipe().unwrap();
    let mut pids = BTreeSet::new();
    for code in [3, 4] {
        pids.insert(match fork() {
            // Each child blocks until the parent closes the pipe.
            Fork::Child => {
                drop(w);
                let mut buf = [0u8; 1];
                let _ = r.read(&mut buf);
                process::exit(code)
            }
            Fork::Parent(pid) => pid.as_raw_pid(),
        });
    }
    drop(r);
    assert_eq!(process::wait_any(WaitOptions::NOHANG), Ok(None));
    drop(w);
    let mut codes = BTreeSet::new();
    while codes.len() < 2 {
        // Until a child has ended (without reaping it), NOHANG finds none.
        waitid(WaitId::All, WaitIdOptions::EXITED | WaitIdOptions::NOWAIT).unwrap();
        let (pid, status) = process::wait_any(WaitOptions::NOHANG)
            .unwrap()
            .expect("an ended child");
        assert!(
            pids.remove(&pid.as_raw_pid()),
            "{pid:?} reaped twice or not ours"
        );
        codes.insert(status.code().expect("it exited"));
    }
    assert_eq!(codes, BTreeSet::from([3, 4]));
    assert_eq!(process::wait_any(WaitOptions::NOHANG), Err(Errno::CHILD));
    // Without NOHANG it waits, as wait() does.
    let pid = child_exiting_with(9);
    assert_eq!(
        process::wait_any(WaitOptions::empty()),
        Ok(Some((pid, Status::Exited(9))))
    );
}

pub fn waitpid_of_a_non_child_is_echild() {
    let init = Pid::from_raw(1).unwrap();
    assert_eq!(
        process::waitpid(init, WaitOptions::empty()),
        Err(Errno::CHILD)
    );
    assert_eq!(
        process::waitpid(process::getpid(), WaitOptions::empty()),
        Err(Errno::CHILD)
    );
    if let Some(parent) = process::getppid() {
        assert_eq!(
            process::waitpid(parent, WaitOptions::NOHANG),
            Err(Errno::CHILD)
        );
    }
    // A grandchild is not a child either.
    let (r, w) = pipe().unwrap();
    let grandchild = Shared::new(AtomicU32::new(0)).unwrap();
    let child = match fork() {
        Fork::Child => in_child(|| {
            let pid = match fork() {
                Fork::Child => in_child(|| {
                    drop(w);
                    let mut buf = [0u8; 1];
                    r.read(&mut buf) == Ok(0)
                }),
                Fork::Parent(pid) => pid,
            };
            grandchild.store(pid.as_raw_pid() as u32, Ordering::SeqCst);
            true
        }),
        Fork::Parent(pid) => pid,
    };
    drop(r);
    expect_success(child);
    let pid = Pid::from_raw(grandchild.load(Ordering::SeqCst) as i32).unwrap();
    assert_eq!(
        process::waitpid(pid, WaitOptions::NOHANG),
        Err(Errno::CHILD)
    );
}

pub fn wait_without_children_is_echild() {
    assert_eq!(process::wait(), Err(Errno::CHILD));
    let pid = child_exiting_with(0);
    assert_eq!(reap(pid), Status::Exited(0));
    assert_eq!(process::wait(), Err(Errno::CHILD));
    assert_eq!(
        process::waitpid(pid, WaitOptions::empty()),
        Err(Errno::CHILD)
    );
}

pub fn waitpid_unknown_option_is_einval() {
    let pid = child_exiting_with(0);
    // 0x100 is no wait4 option; 0x0100_0000 is WNOWAIT, which waitid takes
    // but wait4 refuses.
    for bits in [0x100, 0x0100_0000] {
        assert_eq!(
            process::waitpid(pid, WaitOptions::from_bits_retain(bits)),
            Err(Errno::INVAL)
        );
    }
    assert_eq!(reap(pid), Status::Exited(0), "the child was not reaped");
}

/// SIGALRM (handler without SA_RESTART) arrives while `wait` blocks: `wait`
/// retries and still returns the child's status.
pub fn wait_interrupted_by_a_signal_still_returns_the_status() {
    let pid = interrupt_parent(|| process::exit(42));
    assert_eq!(process::wait(), Ok((pid, Status::Exited(42))));
    assert_eq!(signals_handled(), 1);
}

/// The same setup without rawipc: wait4 fails with EINTR, so the test above
/// does put a signal in the middle of the call.
pub fn control_raw_wait4_is_interrupted() {
    let pid = interrupt_parent(|| process::exit(42));
    assert_eq!(
        rustix::process::wait(rustix::process::WaitOptions::empty()).map(|_| ()),
        Err(Errno::INTR)
    );
    assert_eq!(signals_handled(), 1);
    assert_eq!(reap(pid), Status::Exited(42));
}

pub fn waitpid_interrupted_by_a_signal_still_returns_the_status() {
    let pid = interrupt_parent(|| process::exit(43));
    assert_eq!(
        process::waitpid(pid, WaitOptions::empty()),
        Ok(Some((pid, Status::Exited(43))))
    );
    assert_eq!(signals_handled(), 1);
}

/// SIGSTOP shows with UNTRACED as Stopped(SIGSTOP), SIGCONT with CONTINUED as
/// Continued, and the child then goes on to exit normally.
pub fn stopped_and_continued() {
    let (r, w) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => {
            drop(w);
            let mut buf = [0u8; 1];
            // Blocks (through the stop) until the parent closes the pipe.
            let _ = r.read(&mut buf);
            process::exit(7)
        }
        Fork::Parent(pid) => pid,
    };
    drop(r);
    kill_process(pid, Signal::STOP).unwrap();
    let stopped = process::waitpid(pid, WaitOptions::UNTRACED).unwrap();
    assert_eq!(stopped, Some((pid, Status::Stopped(libc::SIGSTOP))));
    assert_eq!(Status::Stopped(libc::SIGSTOP).to_raw() & 0xff, 0x7f);
    // Nothing more to report until it is continued.
    assert_eq!(
        process::waitpid(pid, WaitOptions::UNTRACED | WaitOptions::NOHANG),
        Ok(None)
    );
    kill_process(pid, Signal::CONT).unwrap();
    let continued = process::waitpid(pid, WaitOptions::CONTINUED).unwrap();
    assert_eq!(continued, Some((pid, Status::Continued)));
    drop(w);
    assert_eq!(reap(pid), Status::Exited(7));
}

static PREPARE: AtomicU32 = AtomicU32::new(0);
static IN_PARENT: AtomicU32 = AtomicU32::new(0);
static IN_CHILD: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_prepare() {
    PREPARE.fetch_add(1, Ordering::SeqCst);
}
extern "C" fn on_parent() {
    IN_PARENT.fetch_add(1, Ordering::SeqCst);
}
extern "C" fn on_child() {
    IN_CHILD.fetch_add(1, Ordering::SeqCst);
}

/// rawipc's fork is libc's: the pthread_atfork handlers run, each on its side.
pub fn pthread_atfork_handlers_run() {
    // SAFETY: three valid `extern "C" fn()` handlers that only touch atomics.
    let rc = unsafe { libc::pthread_atfork(Some(on_prepare), Some(on_parent), Some(on_child)) };
    assert_eq!(rc, 0);
    match fork() {
        Fork::Child => in_child(|| {
            // prepare ran before the fork (so the child has its count too).
            PREPARE.load(Ordering::SeqCst) == 1
                && IN_CHILD.load(Ordering::SeqCst) == 1
                && IN_PARENT.load(Ordering::SeqCst) == 0
        }),
        Fork::Parent(pid) => {
            assert_eq!(PREPARE.load(Ordering::SeqCst), 1);
            assert_eq!(IN_PARENT.load(Ordering::SeqCst), 1);
            assert_eq!(IN_CHILD.load(Ordering::SeqCst), 0);
            expect_success(pid);
        }
    }
}

/// The helper itself: a failed assertion in a child is exit code 1 (the
/// panic is caught, and does not run the harness in the child), a false
/// result too, and a true one is 0.
pub fn child_panic_becomes_exit_code_1() {
    let pid = match fork() {
        Fork::Child => in_child(|| {
            assert_eq!(1 + 1, 3, "a failing assertion (expected in this test)");
            true
        }),
        Fork::Parent(pid) => pid,
    };
    assert_eq!(reap(pid), Status::Exited(1));
    let pid = match fork() {
        Fork::Child => in_child(|| false),
        Fork::Parent(pid) => pid,
    };
    assert_eq!(reap(pid), Status::Exited(1));
    let pid = match fork() {
        Fork::Child => in_child(|| true),
        Fork::Parent(pid) => pid,
    };
    assert_eq!(reap(pid), Status::Exited(0));
}
