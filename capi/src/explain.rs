//! Explain mode: with `RAWIPC_EXPLAIN=1` in the environment, the mirrors tell
//! a student, on stderr and as it happens, which of the notes' classic pipe
//! mistakes the program is making.
//!
//! Off, it costs each mirror one relaxed load of a flag read once from the
//! environment (libc's `getenv`) and a predictable branch. On, it never
//! changes what a call does: the call itself is the same libc call with the
//! same arguments; the return value, errno (saved and restored around every
//! check), signals and what the kernel sees are the call's. The checks only
//! look: `fstat`, `fcntl(F_GETFL)`, `FIONREAD`, `F_GETPIPE_SZ`, `poll` with
//! a zero timeout, `waitid(WNOHANG | WNOWAIT)`; none reads, reaps or blocks.
//!
//! The findings, each printed once, one paragraph each, only when true:
//! - a write on a pipe that no process holds the read end of: before the
//!   write when SIGPIPE will end the process (a `poll` shows POLLERR on the
//!   write end), after it when the write fails with EPIPE;
//! - a wait for a child that has not ended while this process holds the read
//!   end of a pipe that is (all but) full;
//! - a read on an empty pipe, or a wait, that has been blocked for
//!   [`BLOCKED_SECONDS`]: what it waits on, and whether this process itself
//!   holds the write end that keeps end of file from coming;
//! - a process that exits with children it never waited for (an `atexit`
//!   handler, registered at the first fork in explain mode).
//!
//! How a blocked call is noticed without changing it. A plain `poll` with a
//! timeout before the real call would change it: after a signal handler
//! installed with SA_RESTART, poll returns EINTR where the read would have
//! gone on waiting, and which signal ran is not known afterwards. So, in
//! explain mode and only for a call that would block, rawipc blocks every
//! signal, makes a signalfd for those the thread had not blocked, and polls
//! it together with the pipe (a wait re-checks its children with
//! `waitid(WNOHANG | WNOWAIT)` every 100 ms). A signal leaves it pending
//! (a signalfd that is not read consumes nothing): rawipc looks at what the
//! kernel would do with the first pending one (`sigpending`, `sigaction`),
//! restores the mask, which runs the handler, and then does what the call
//! would have done: returns -1 with errno EINTR if the handler was installed
//! without SA_RESTART, goes on waiting otherwise. When the pipe has data or a
//! child has something to report, the real call runs and returns at once;
//! after BLOCKED_SECONDS the finding is printed and the real call runs,
//! blocking as it would. The trade-offs, explain mode only: the signalfd
//! holds an fd number while it waits (closed before the real call, so later
//! fds are numbered as before; with no fd left, the call is not watched); in
//! a program with several threads, a signal sent to the process while this
//! thread waits goes to another thread that has it unblocked; a handler runs
//! a few microseconds after its signal, from a different system call; a wait
//! whose SIGCHLD does not come (the program blocks SIGCHLD, or a stop with
//! SA_NOCLDSTOP) returns up to 100 ms late.
//!
//! What is looked at and what is said are shared with the Rust API, in
//! `rawipc::explain::sees` and `rawipc::explain::says`; this file decides
//! when to look, for the C calls.

use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::BorrowedFd;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
use rustix::time::Timespec;

use rawipc_core::explain::says::{self, Finding, explain};
use rawipc_core::explain::sees::{
    borrow, empty_blocking_pipe, full_pipe_held, is_pipe, no_reader, wait_would_block,
};

use crate::{errno, libc, pid_t, ssize_t};

use rawipc_core::explain::BLOCKED_SECONDS;

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// Whether explain mode is on: UNKNOWN until the first mirror call reads
/// the environment.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// True if `RAWIPC_EXPLAIN` is set to something other than "" or "0".
#[inline(always)]
pub(crate) fn on() -> bool {
    match STATE.load(Ordering::Relaxed) {
        OFF => false,
        ON => true,
        _ => read_environment(),
    }
}

#[cold]
fn read_environment() -> bool {
    let saved = errno();
    // SAFETY: a NUL-terminated name; getenv returns NULL or a C string.
    let value = unsafe { libc::getenv(c"RAWIPC_EXPLAIN".as_ptr()) };
    // SAFETY: a non-NULL value from getenv is a readable C string: its
    // first byte, and the second if the first is not its end.
    let on = !value.is_null()
        && unsafe { *value != 0 && !(*value == b'0' as c_char && *value.add(1) == 0) };
    STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
    set_errno(saved);
    on
}

fn set_errno(value: c_int) {
    // SAFETY: libc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() = value };
}

// ---------------------------------------------------------------------------
// The call-ins: one per mirror, each the call itself when explain mode is off.

/// rawipc_read: sat out while it blocks on an empty pipe.
#[inline(always)]
pub(crate) fn read(fd: c_int, count: usize, call: impl FnOnce() -> ssize_t) -> ssize_t {
    if !on() {
        return call();
    }
    read_explained(fd, count, call)
}

/// rawipc_write: SIGPIPE explained before the write, EPIPE after it.
#[inline(always)]
pub(crate) fn write(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    if !on() {
        return call();
    }
    write_explained(fd, call)
}

/// rawipc_wait (pid -1, options 0) and rawipc_waitpid: a full pipe held
/// while waiting, and a wait that has blocked.
#[inline(always)]
pub(crate) fn wait(pid: pid_t, options: c_int, call: impl FnOnce() -> pid_t) -> pid_t {
    if !on() {
        return call();
    }
    wait_explained(pid, options, call)
}

/// rawipc_fork: the parent records its child; the child starts afresh.
#[inline(always)]
pub(crate) fn fork(call: impl FnOnce() -> pid_t) -> pid_t {
    let pid = call();
    if on() {
        forked(pid);
    }
    pid
}

const EINTR: c_int = 4;
const EPIPE: c_int = 32;

#[cold]
#[inline(never)]
fn read_explained(fd: c_int, count: usize, call: impl FnOnce() -> ssize_t) -> ssize_t {
    let saved = errno();
    if count > 0 && empty_blocking_pipe(fd) {
        match sit_out(Some(fd), || false) {
            SatOut::Interrupted => {
                set_errno(EINTR);
                return -1;
            }
            SatOut::Blocked => says::blocked_read(fd),
            SatOut::Ready => {}
        }
    }
    set_errno(saved);
    call()
}

#[cold]
#[inline(never)]
fn write_explained(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    let saved = errno();
    // A program that ignores or handles SIGPIPE has asked for EPIPE, and
    // says nothing; one with SIGPIPE at its default has not.
    let no_reader = is_pipe(fd).is_some() && no_reader(fd);
    let sigpipe = if no_reader {
        sigpipe_state()
    } else {
        Sigpipe::Chosen
    };
    if sigpipe == Sigpipe::Kills {
        explain(Finding::Sigpipe, fd, 0);
    }
    set_errno(saved);
    let n = call();
    if sigpipe == Sigpipe::Blocked && n == -1 {
        let after = errno();
        if after == EPIPE {
            explain(Finding::Epipe, fd, 0);
        }
        set_errno(after);
    }
    n
}

#[cold]
#[inline(never)]
fn wait_explained(pid: pid_t, options: c_int, call: impl FnOnce() -> pid_t) -> pid_t {
    let saved = errno();
    if wait_would_block(pid, options) {
        if let Some(full) = full_pipe_held() {
            explain(Finding::FullPipeWait, full.fd, pid);
        }
        match sit_out(None, || !wait_would_block(pid, options)) {
            SatOut::Interrupted => {
                set_errno(EINTR);
                return -1;
            }
            SatOut::Blocked => says::blocked_wait(pid, options),
            SatOut::Ready => {}
        }
    }
    set_errno(saved);
    call()
}

#[cold]
#[inline(never)]
fn forked(pid: pid_t) {
    let saved = errno();
    if pid == 0 {
        // A new process: its own children, its own findings.
        children::forget_all();
        says::forget_all();
    } else if pid > 0 {
        children::record(pid);
    }
    set_errno(saved);
}

// ---------------------------------------------------------------------------
// Looking at fds, without reading, writing or blocking.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sigpipe {
    /// Default action, unblocked: the write ends the process.
    Kills,
    /// Default action, blocked: the write fails with EPIPE.
    Blocked,
    /// Ignored or handled: the program expects EPIPE.
    Chosen,
}

/// What a SIGPIPE would do to this thread now.
fn sigpipe_state() -> Sigpipe {
    const SIGPIPE: c_int = 13;
    let mut mask = SigSet([0; 16]);
    if disposition(SIGPIPE).is_none_or(|a| a.handler != SIG_DFL)
        || !sigmask(SIG_SETMASK, None, Some(&mut mask))
    {
        return Sigpipe::Chosen;
    }
    if mask.0[0] & (1 << (SIGPIPE - 1)) == 0 {
        Sigpipe::Kills
    } else {
        Sigpipe::Blocked
    }
}

// ---------------------------------------------------------------------------
// Sitting out a call that would block, as the call itself would.

/// libc's `sigset_t` (1024 bits on glibc and musl; the kernel's 64 first).
#[repr(C)]
#[derive(Clone, Copy)]
struct SigSet([u64; 16]);

/// libc's `struct sigaction` on Linux (glibc and musl), with room to spare.
#[repr(C)]
struct SigAction {
    handler: usize,
    mask: SigSet,
    flags: c_int,
    restorer: usize,
    spare: [u64; 4],
}

const SIG_SETMASK: c_int = 2;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SA_RESTART: c_int = 0x1000_0000;
const SFD_NONBLOCK: c_int = 0o4000;
const SFD_CLOEXEC: c_int = 0o2_000_000;

fn sigmask(how: c_int, set: Option<&SigSet>, old: Option<&mut SigSet>) -> bool {
    let set = set.map_or(core::ptr::null(), |s| core::ptr::from_ref(s).cast());
    let old = old.map_or(core::ptr::null_mut(), |s| core::ptr::from_mut(s).cast());
    // SAFETY: NULL or sigset_t-sized buffers.
    unsafe { libc::pthread_sigmask(how, set, old) == 0 }
}

fn disposition(sig: c_int) -> Option<SigAction> {
    let mut action = SigAction {
        handler: 0,
        mask: SigSet([0; 16]),
        flags: 0,
        restorer: 0,
        spare: [0; 4],
    };
    // SAFETY: a buffer at least as large as libc's struct sigaction.
    let ok = unsafe {
        libc::sigaction(
            sig,
            core::ptr::null(),
            core::ptr::from_mut(&mut action).cast(),
        ) == 0
    };
    ok.then_some(action)
}

/// How a call that would block was sat out.
#[derive(PartialEq, Eq)]
enum SatOut {
    /// What it waits for has come (or it was not watched): make the call.
    Ready,
    /// A handler without SA_RESTART ran: the call returns -1, EINTR.
    Interrupted,
    /// BLOCKED_SECONDS passed: explain, then make the call.
    Blocked,
}

/// Waits, as a blocked read of `fd` (or, with None, a wait whose `ready`
/// turns true) would, for up to BLOCKED_SECONDS: see the module's doc.
fn sit_out(fd: Option<c_int>, ready: impl Fn() -> bool) -> SatOut {
    let deadline = now_ms() + BLOCKED_SECONDS * 1000;
    loop {
        let mut old = SigSet([0; 16]);
        if !sigmask(SIG_SETMASK, Some(&SigSet([!0; 16])), Some(&mut old)) {
            return SatOut::Ready;
        }
        let mut wake = old;
        for word in &mut wake.0 {
            *word = !*word;
        }
        // SAFETY: a valid sigset_t; a new fd or -1.
        let sfd = unsafe {
            libc::signalfd(
                -1,
                core::ptr::from_ref(&wake).cast(),
                SFD_NONBLOCK | SFD_CLOEXEC,
            )
        };
        let woke = borrow(sfd).map(|signals| wait_for(signals, fd, &ready, deadline));
        // Which handler runs first is read while its signal is still
        // pending; the signalfd is closed before it runs (it may longjmp).
        let restarts = match woke {
            Some(Woke::Signal) => first_handled_pending(&old).map(|f| f & SA_RESTART != 0),
            _ => None,
        };
        if sfd >= 0 {
            // SAFETY: the signalfd made above, closed once.
            unsafe { libc::close(sfd) };
        }
        sigmask(SIG_SETMASK, Some(&old), None);
        match woke {
            None | Some(Woke::Ready) => return SatOut::Ready,
            Some(Woke::Deadline) => return SatOut::Blocked,
            Some(Woke::Signal) if restarts == Some(false) => return SatOut::Interrupted,
            Some(Woke::Signal) => {}
        }
    }
}

/// What ended a [`wait_for`].
enum Woke {
    Ready,
    Signal,
    Deadline,
}

/// Polls `fd` for reading (or `ready` every 100 ms) and the signalfd, until
/// one is ready or the deadline.
fn wait_for(
    signals: BorrowedFd<'_>,
    fd: Option<c_int>,
    ready: &dyn Fn() -> bool,
    deadline: u64,
) -> Woke {
    loop {
        let now = now_ms();
        if now >= deadline {
            return Woke::Deadline;
        }
        let step = if fd.is_some() {
            deadline - now
        } else {
            (deadline - now).min(100)
        };
        let timeout = Timespec {
            tv_sec: (step / 1000) as _,
            tv_nsec: ((step % 1000) * 1_000_000) as _,
        };
        let target = fd.and_then(borrow);
        let mut fds = [
            PollFd::new(&signals, PollFlags::IN),
            PollFd::new(&signals, PollFlags::empty()),
        ];
        let n = if let Some(t) = &target {
            fds[1] = PollFd::new(t, PollFlags::IN);
            2
        } else {
            1
        };
        // EINTR: a signal rawipc cannot block (libc's own) ran its handler.
        if poll(&mut fds[..n], Some(&timeout)).is_err() {
            return Woke::Ready;
        }
        if n == 2 && !fds[1].revents().is_empty() || n == 1 && ready() {
            return Woke::Ready;
        }
        if !fds[0].revents().is_empty() {
            return Woke::Signal;
        }
    }
}

/// The flags of the handler of the first pending signal the thread had not
/// blocked that has a handler (the one whose SA_RESTART decides whether the
/// interrupted call restarts), or None if no pending signal has a handler.
fn first_handled_pending(old: &SigSet) -> Option<c_int> {
    let mut pending = SigSet([0; 16]);
    // SAFETY: a sigset_t-sized buffer.
    if unsafe { libc::sigpending(core::ptr::from_mut(&mut pending).cast()) } != 0 {
        return None;
    }
    (1..=64).find_map(|sig: c_int| {
        let bit = 1u64 << (sig - 1);
        if pending.0[0] & bit == 0 || old.0[0] & bit != 0 {
            return None;
        }
        let action = disposition(sig)?;
        (action.handler != SIG_DFL && action.handler != SIG_IGN).then_some(action.flags)
    })
}

/// Milliseconds on the monotonic clock (libc's clock_gettime: in a static
/// program rustix's would bring a second vDSO lookup along).
fn now_ms() -> u64 {
    const CLOCK_MONOTONIC: c_int = 1;
    let mut t = [0i64; 2];
    // SAFETY: a struct timespec-sized buffer; this clock always exists.
    unsafe { libc::clock_gettime(CLOCK_MONOTONIC, t.as_mut_ptr().cast()) };
    t[0] as u64 * 1000 + t[1] as u64 / 1_000_000
}

// ---------------------------------------------------------------------------
// The children this process forked, for the check at exit.

mod children {
    use super::*;

    const SLOTS: usize = 64;
    static PIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
    static REGISTERED: AtomicI32 = AtomicI32::new(0);
    /// 1 once a child found no free slot: the count at exit is then a floor.
    static OVERFLOWED: AtomicI32 = AtomicI32::new(0);

    pub(super) fn forget_all() {
        for slot in &PIDS {
            slot.store(0, Ordering::Relaxed);
        }
        OVERFLOWED.store(0, Ordering::Relaxed);
    }

    /// Records a new child; slots of children already reaped are reused.
    pub(super) fn record(pid: pid_t) {
        if REGISTERED.swap(1, Ordering::Relaxed) == 0 {
            // SAFETY: a function of no arguments that only makes checks.
            unsafe { libc::atexit(at_exit) };
        }
        for slot in &PIDS {
            let old = slot.load(Ordering::Relaxed);
            if (old == 0 || reaped(old))
                && slot
                    .compare_exchange(old, pid, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        OVERFLOWED.store(1, Ordering::Relaxed);
    }

    fn reaped(pid: pid_t) -> bool {
        Pid::from_raw(pid).is_none_or(|p| {
            waitid(
                WaitId::Pid(p),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
            )
            .is_err()
        })
    }

    extern "C" fn at_exit() {
        let saved = errno();
        let mut unwaited = [0; SLOTS];
        let mut count = 0;
        for slot in &PIDS {
            let pid = slot.load(Ordering::Relaxed);
            if pid != 0 && !reaped(pid) {
                unwaited[count] = pid;
                count += 1;
            }
        }
        if count > 0 {
            let more = OVERFLOWED.load(Ordering::Relaxed) != 0;
            says::explain_zombies(&unwaited[..count], more);
        }
        set_errno(saved);
    }
}
