//! What the tests that fork share: forking, a child's life, reaping and
//! killing it, counting fds, waiting for one to turn readable, and catching
//! the signals of a storm.
//!
//! The harness runs each test alone, on the only thread of its process, so
//! forking here is safe. A child leaves through `_exit` (never returning or
//! unwinding into the harness), and a failed assertion in it becomes exit
//! code 1, which the parent sees in the status [`reap`] returns.

use rawipc::process::{self, Fork, Pid, Status, WaitOptions};
use rustix::process::Signal;

/// Forks: the child's pid in the parent, `None` in the child.
#[allow(dead_code)]
pub fn fork() -> Option<Pid> {
    // SAFETY: each test runs in a process of its own, on one thread.
    match unsafe { process::fork() }.expect("fork") {
        Fork::Child => None,
        Fork::Parent(pid) => Some(pid),
    }
}

/// The child's whole life: leaves with `_exit`, 0 if `f` returned, 1 if it
/// panicked (a failed assertion), never unwinding into the harness.
#[allow(dead_code)]
pub fn in_child(f: impl FnOnce()) -> ! {
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
    process::exit(if ok { 0 } else { 1 })
}

/// Runs `f` in a forked child that gets SIGKILL if the test's process dies
/// first (so that a failed test leaves nothing running); returns its pid.
/// The child leaves as in [`in_child`].
#[allow(dead_code)]
pub fn spawn(f: impl FnOnce()) -> Pid {
    match fork() {
        None => in_child(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .expect("prctl(PR_SET_PDEATHSIG)");
            f()
        }),
        Some(pid) => pid,
    }
}

/// Waits for child `pid` and returns how it ended.
#[allow(dead_code)]
pub fn reap(pid: Pid) -> Status {
    let (reaped, status) = process::waitpid(pid, WaitOptions::empty())
        .expect("waitpid")
        .expect("a status without NOHANG");
    assert_eq!(reaped, pid);
    status
}

/// Waits for child `pid`, which must have exited with code 0 (its
/// assertions held).
#[allow(dead_code)]
pub fn expect_success(pid: Pid) {
    assert_eq!(
        reap(pid),
        Status::Exited(0),
        "a child failed (see its stderr)"
    );
}

/// Sends SIGKILL to child `pid` (which is left to reap).
#[allow(dead_code)]
pub fn kill(pid: Pid) {
    rustix::process::kill_process(pid, Signal::KILL).expect("kill(child, SIGKILL)");
}

/// How many fds this process has open.
#[allow(dead_code)]
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Whether `fd` is readable within `ms` milliseconds (0: now).
#[allow(dead_code)]
pub fn readable(fd: &impl rawipc::AsFd, ms: i64) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    let n = rustix::io::retry_on_intr(|| poll(&mut fds, Some(&timeout))).expect("poll");
    n == 1 && fds[0].revents().contains(PollFlags::IN)
}

/// Waits until `fd` is readable, for at most a minute (a lost wake-up fails
/// the test instead of hanging it).
#[allow(dead_code)]
pub fn wait_readable(fd: &impl rawipc::AsFd) {
    assert!(readable(fd, 60_000), "the fd never became readable");
}

/// The bytes waiting in the socket behind `fd`.
#[allow(dead_code)]
pub fn pending(fd: &impl rawipc::AsFd) -> usize {
    rustix::io::ioctl_fionread(fd).expect("FIONREAD") as usize
}

/// Installs `handler` for SIGUSR1, with `SA_RESTART` if `restart` (without
/// it, a blocking call the signal lands in is interrupted with EINTR), and
/// no signal blocked while it runs.
#[allow(dead_code)]
pub fn catch_sigusr1(handler: extern "C" fn(libc::c_int), restart: bool) {
    // SAFETY: a zeroed sigaction is valid; the handler is a valid
    // `extern "C" fn(c_int)`, installed on the process's only thread.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as libc::sighandler_t;
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}
