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
//! How a blocked call is noticed without changing it: a poll with a timeout
//! before the real call cannot stand in for it, because after a signal
//! handler installed with SA_RESTART a poll returns EINTR where the read
//! would have been restarted, and which signal ran is not known afterwards.
//! So the real call runs as it is, and a watcher thread (started at the
//! first call that would block, in explain mode only, on a static stack,
//! with every signal blocked so that it never takes one meant for the
//! program, making raw system calls only) looks every quarter second at
//! which call is in progress. The trade-off: in explain mode the process has
//! one more thread once a call has blocked; only one call (the latest) is
//! watched at a time.
//!
//! Finding the other end of a pipe: this process's fds are found with
//! `poll` (zero timeout) over fds 0 to RLIMIT_NOFILE, at most 65536, 256 at a
//! time (a closed fd answers POLLNVAL), and each open one is `fstat`ed:
//! the same device and inode is the same pipe, `F_GETFL` tells its end. No
//! file system (`/proc`) is used.

use core::ffi::{c_char, c_int, c_void};
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::BorrowedFd;
use rustix::fs::{FileType, OFlags, fcntl_getfl, fstat};
use rustix::io::ioctl_fionread;
use rustix::pipe::fcntl_getpipe_size;
use rustix::process::{Pid, Resource, WaitId, WaitIdOptions, getpid, getrlimit, waitid};
use rustix::time::{ClockId, Timespec, clock_gettime};

use crate::{errno, libc, pid_t, ssize_t};

/// How long a read or a wait must have blocked before it is explained.
pub const BLOCKED_SECONDS: u64 = 3;

/// The highest fd number the checks look at, whatever RLIMIT_NOFILE says.
const MAX_FDS: u64 = 1 << 16;

/// PIPE_BUF: a pipe with less room than this is "full" to a record writer.
const PIPE_BUF: u64 = 4096;

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

/// rawipc_read: watched while it blocks on an empty pipe.
#[inline(always)]
pub(crate) fn read(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    if !on() {
        return call();
    }
    read_explained(fd, call)
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

#[cold]
#[inline(never)]
fn read_explained(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    let saved = errno();
    let watching = empty_blocking_pipe(fd) && watch(Blocked::Read, fd);
    set_errno(saved);
    let n = call();
    if watching {
        unwatch();
    }
    n
}

#[cold]
#[inline(never)]
fn write_explained(fd: c_int, call: impl FnOnce() -> ssize_t) -> ssize_t {
    let saved = errno();
    let no_reader = is_pipe(fd).is_some() && no_reader(fd);
    if no_reader && sigpipe_kills() {
        explain(Finding::Sigpipe, fd, 0);
    }
    set_errno(saved);
    let n = call();
    if no_reader && n == -1 {
        let after = errno();
        if after == rustix::io::Errno::PIPE.raw_os_error() {
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
    let watching = wait_would_block(pid, options) && {
        if let Some(full) = full_pipe_held() {
            explain(Finding::FullPipeWait, full.fd, pid);
        }
        watch(Blocked::Wait, pid)
    };
    set_errno(saved);
    let r = call();
    if watching {
        unwatch();
    }
    r
}

#[cold]
#[inline(never)]
fn forked(pid: pid_t) {
    let saved = errno();
    if pid == 0 {
        children::forget_all();
        watcher::forget();
    } else if pid > 0 {
        children::record(pid);
    }
    set_errno(saved);
}

// ---------------------------------------------------------------------------
// Looking at fds, without reading, writing or blocking.

fn borrow(fd: c_int) -> Option<BorrowedFd<'static>> {
    // SAFETY: only used for checks that take a number; a closed or reused
    // fd makes them fail (EBADF) or look at what is there now, harmlessly.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The pipe's identity (device, inode) if `fd` is a pipe or FIFO.
fn is_pipe(fd: c_int) -> Option<(u64, u64)> {
    let st = fstat(borrow(fd)?).ok()?;
    (FileType::from_raw_mode(st.st_mode as _) == FileType::Fifo)
        .then_some((st.st_dev as u64, st.st_ino as u64))
}

/// How `fd` was opened: for reading, for writing, or both.
fn access(fd: c_int) -> Option<(bool, bool)> {
    let mode = fcntl_getfl(borrow(fd)?).ok()? & OFlags::RWMODE;
    Some((mode != OFlags::WRONLY, mode != OFlags::RDONLY))
}

/// A blocking pipe read end with nothing in it: the read will wait.
fn empty_blocking_pipe(fd: c_int) -> bool {
    let Some(b) = borrow(fd) else { return false };
    is_pipe(fd).is_some()
        && fcntl_getfl(b).is_ok_and(|f| !f.contains(OFlags::NONBLOCK))
        && ioctl_fionread(b).is_ok_and(|n| n == 0)
}

/// A pipe write end whose read ends are all closed (POLLERR).
fn no_reader(fd: c_int) -> bool {
    let Some(b) = borrow(fd) else { return false };
    let mut fds = [PollFd::new(&b, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok() && fds[0].revents().contains(PollFlags::ERR)
}

/// Calls `each` with every open fd of this process, lowest first, until it
/// returns Some.
fn open_fds<T>(mut each: impl FnMut(c_int) -> Option<T>) -> Option<T> {
    let limit = getrlimit(Resource::Nofile)
        .current
        .unwrap_or(MAX_FDS)
        .min(MAX_FDS) as c_int;
    const CHUNK: c_int = 256;
    let mut first = 0;
    while first < limit {
        let count = CHUNK.min(limit - first);
        // SAFETY: numbers only; poll reports a closed one as POLLNVAL.
        let fds: [BorrowedFd<'static>; CHUNK as usize] =
            core::array::from_fn(|i| unsafe { BorrowedFd::borrow_raw(first + i as c_int) });
        let mut polled: [PollFd<'_>; CHUNK as usize] =
            core::array::from_fn(|i| PollFd::new(&fds[i], PollFlags::empty()));
        let polled = &mut polled[..count as usize];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(polled, Some(&zero)).is_err() {
            return None;
        }
        for (i, p) in polled.iter().enumerate() {
            if !p.revents().contains(PollFlags::NVAL) {
                if let Some(found) = each(first + i as c_int) {
                    return Some(found);
                }
            }
        }
        first += count;
    }
    None
}

/// Another fd of this process that is a write end of the pipe `fd` reads.
fn write_end_held(fd: c_int) -> Option<c_int> {
    let pipe = is_pipe(fd)?;
    open_fds(|other| {
        (other != fd && is_pipe(other) == Some(pipe) && access(other)?.1).then_some(other)
    })
}

struct FullPipe {
    fd: c_int,
    unread: u64,
    size: u64,
}

/// A pipe read end of this process with less than PIPE_BUF bytes of room.
fn full_pipe_held() -> Option<FullPipe> {
    open_fds(|fd| {
        is_pipe(fd)?;
        if !access(fd)?.0 {
            return None;
        }
        let unread = ioctl_fionread(borrow(fd)?).ok()?;
        let size = fcntl_getpipe_size(borrow(fd)?).ok()? as u64;
        (unread + PIPE_BUF > size).then_some(FullPipe { fd, unread, size })
    })
}

/// The waitid target and options that match waitpid(pid, options).
fn wait_target(pid: pid_t, options: c_int) -> Option<(WaitId<'static>, WaitIdOptions)> {
    const WNOHANG: c_int = 1;
    const WUNTRACED: c_int = 2;
    const WCONTINUED: c_int = 8;
    if options & WNOHANG != 0 {
        return None;
    }
    let id = match pid {
        -1 => WaitId::All,
        0 => WaitId::Pgid(None),
        p if p > 0 => WaitId::Pid(Pid::from_raw(p)?),
        p if p > c_int::MIN => WaitId::Pgid(Pid::from_raw(-p)),
        _ => return None,
    };
    let mut how = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    if options & WUNTRACED != 0 {
        how |= WaitIdOptions::STOPPED;
    }
    if options & WCONTINUED != 0 {
        how |= WaitIdOptions::CONTINUED;
    }
    Some((id, how))
}

/// True if a child it waits for exists and none has anything to report yet.
fn wait_would_block(pid: pid_t, options: c_int) -> bool {
    wait_target(pid, options).is_some_and(|(id, how)| matches!(waitid(id, how), Ok(None)))
}

/// True if SIGPIPE would end this process: its default action, unblocked.
fn sigpipe_kills() -> bool {
    const SIGPIPE: c_int = 13;
    // Room for libc's struct sigaction and sigset_t; both begin as used here
    // (the handler first; bit n-1 of the first word for signal n).
    let mut action = [0u64; 40];
    let mut mask = [0u64; 16];
    // SAFETY: buffers larger than libc's types; NULL: change nothing.
    let ok = unsafe {
        libc::sigaction(SIGPIPE, core::ptr::null(), action.as_mut_ptr().cast()) == 0
            && libc::pthread_sigmask(0, core::ptr::null(), mask.as_mut_ptr().cast()) == 0
    };
    ok && action[0] == 0 && mask[0] & (1 << (SIGPIPE - 1)) == 0
}

// ---------------------------------------------------------------------------
// The call in progress, and the thread that watches it.

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Blocked {
    Read = 1,
    Wait = 2,
}

/// The watched call: 0 when none, else (what << 40) | (target & 0xffffffff)
/// with a generation in bits 32..40 so that a new call is never taken for the
/// last; SINCE is when it began.
static WATCHED: AtomicU64 = AtomicU64::new(0);
static SINCE: AtomicU64 = AtomicU64::new(0);
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// Marks the call about to block; false if another call is being watched.
fn watch(what: Blocked, target: c_int) -> bool {
    if !watcher::running() {
        return false;
    }
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed) & 0xff;
    let word = ((what as u64) << 40) | (generation << 32) | u64::from(target as u32);
    SINCE.store(now_ms(), Ordering::Relaxed);
    WATCHED
        .compare_exchange(0, word, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

fn unwatch() {
    WATCHED.store(0, Ordering::Release);
}

mod watcher {
    use super::*;

    /// The pid of the process whose watcher thread runs (0: none).
    static OWNER: AtomicI32 = AtomicI32::new(0);

    #[repr(C, align(64))]
    struct Stack([u8; 128 * 1024]);
    static mut STACK: Stack = Stack([0; 128 * 1024]);

    /// In a forked child: the parent's thread is not there.
    pub(super) fn forget() {
        OWNER.store(0, Ordering::Relaxed);
    }

    /// Starts the watcher thread once per process; false if it cannot run.
    pub(super) fn running() -> bool {
        let me = getpid().as_raw_nonzero().get();
        match OWNER.load(Ordering::Acquire) {
            owner if owner == me => return true,
            -1 => return false,
            _ => {}
        }
        if OWNER
            .compare_exchange(0, -1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return OWNER.load(Ordering::Acquire) == me;
        }
        let started = start();
        OWNER.store(if started { me } else { 0 }, Ordering::Release);
        started
    }

    fn start() -> bool {
        // pthread_attr_t and sigset_t, with room to spare.
        let mut attr = [0u64; 16];
        let mut thread = 0u64;
        let all = [!0u64; 16];
        let mut old = [0u64; 16];
        // SAFETY: the attribute, thread id and signal sets are buffers larger
        // than libc's types; the stack is this module's static, used by the
        // one watcher thread of this process only. The new thread inherits
        // the blocked mask; this thread's is restored at once.
        unsafe {
            if libc::pthread_attr_init(attr.as_mut_ptr().cast()) != 0 {
                return false;
            }
            let stack = &raw mut STACK;
            let ok = libc::pthread_attr_setstack(
                attr.as_mut_ptr().cast(),
                stack.cast(),
                size_of::<Stack>(),
            ) == 0
                && libc::pthread_sigmask(2, all.as_ptr().cast(), old.as_mut_ptr().cast()) == 0;
            let started = ok
                && libc::pthread_create(
                    (&raw mut thread).cast(),
                    attr.as_ptr().cast(),
                    watch_loop,
                    core::ptr::null_mut(),
                ) == 0;
            if ok {
                libc::pthread_sigmask(2, old.as_ptr().cast(), core::ptr::null_mut());
            }
            libc::pthread_attr_destroy(attr.as_mut_ptr().cast());
            if started {
                libc::pthread_detach(thread);
            }
            started
        }
    }

    /// The watcher: every quarter second, the call in progress; once it has
    /// blocked for BLOCKED_SECONDS, what it waits on.
    extern "C" fn watch_loop(_: *mut c_void) -> *mut c_void {
        let quarter = Timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        };
        let mut explained = 0;
        loop {
            let _ = rustix::thread::nanosleep(&quarter);
            let word = WATCHED.load(Ordering::Acquire);
            if word == 0 || word == explained {
                continue;
            }
            let waited = now_ms().saturating_sub(SINCE.load(Ordering::Relaxed));
            if waited < BLOCKED_SECONDS * 1000 {
                continue;
            }
            explained = word;
            let target = word as u32 as c_int;
            if (word >> 40) as u8 == Blocked::Read as u8 {
                blocked_read(target);
            } else {
                blocked_wait(target);
            }
        }
    }
}

fn blocked_read(fd: c_int) {
    if !empty_blocking_pipe(fd) {
        return;
    }
    match write_end_held(fd) {
        Some(w) => explain(Finding::HoldsWriteEnd, fd, w),
        None => explain(Finding::ReadBlocked, fd, 0),
    }
}

fn blocked_wait(pid: pid_t) {
    if !wait_would_block(pid, 0) {
        return;
    }
    match full_pipe_held() {
        Some(full) => explain(Finding::FullPipeWait, full.fd, pid),
        None => explain(Finding::WaitBlocked, pid, 0),
    }
}

// ---------------------------------------------------------------------------
// The children this process forked, for the check at exit.

mod children {
    use super::*;

    const SLOTS: usize = 64;
    static PIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
    static REGISTERED: AtomicI32 = AtomicI32::new(0);

    pub(super) fn forget_all() {
        for slot in &PIDS {
            slot.store(0, Ordering::Relaxed);
        }
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
            super::explain_zombies(&unwaited[..count]);
        }
        set_errno(saved);
    }
}

// ---------------------------------------------------------------------------
// The paragraphs.

#[derive(Clone, Copy)]
#[repr(u8)]
enum Finding {
    HoldsWriteEnd = 1,
    FullPipeWait = 2,
    Sigpipe = 3,
    Epipe = 4,
    ReadBlocked = 5,
    WaitBlocked = 6,
    Zombies = 7,
}

/// What has been explained already (kind and first number), so that each
/// finding is printed once.
static EXPLAINED: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

fn first_time(finding: Finding, a: c_int) -> bool {
    let key = ((finding as u64) << 32) | u64::from(a as u32);
    for slot in &EXPLAINED {
        match slot.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(k) if k == key => return false,
            Err(_) => {}
        }
    }
    true
}

/// A paragraph formatted on the stack, written to stderr with one write.
struct Paragraph {
    buf: [u8; 1024],
    len: usize,
}

impl fmt::Write for Paragraph {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn print(body: impl FnOnce(&mut Paragraph) -> fmt::Result) {
    let mut p = Paragraph {
        buf: [0; 1024],
        len: 0,
    };
    let pid = getpid().as_raw_nonzero().get();
    let _ = write!(p, "rawipc explain (pid {pid}): ");
    let _ = body(&mut p);
    let _ = p.write_str("\n");
    if let Some(stderr) = borrow(2) {
        let _ = rustix::io::write(stderr, &p.buf[..p.len]);
    }
}

fn explain(finding: Finding, a: c_int, b: c_int) {
    if !first_time(finding, a) {
        return;
    }
    let s = BLOCKED_SECONDS;
    match finding {
        Finding::HoldsWriteEnd => print(|p| {
            write!(
                p,
                "read(fd {a}) has waited {s} seconds on an empty pipe, and this process itself holds fd {b}, \
                 a write end of the same pipe. read returns 0 (end of file) only once every write end is \
                 closed, so it will wait forever once the other side has stopped writing. The notes: the parent \
                 closes the write side of the fd (close({b}) right after fork) and uses the read command on the \
                 read side of the fd; the child closes the read side."
            )
        }),
        Finding::ReadBlocked => print(|p| {
            write!(
                p,
                "read(fd {a}) has waited {s} seconds on an empty pipe. This process does not hold a write end \
                 of it; another process does (with none left, read would return 0, end of file) and has not \
                 written. If that process is itself waiting for this one (both read first), neither can go \
                 on: let one side write first, or have the writer close its write end when it is done."
            )
        }),
        Finding::FullPipeWait => {
            let full = full_pipe_held();
            let (unread, size) = full.map_or((0, 0), |f| (f.unread, f.size));
            let whom = if b > 0 { "child" } else { "a child" };
            print(|p| {
                write!(p, "waiting for {whom}")?;
                if b > 0 {
                    write!(p, " {b}")?;
                }
                write!(
                    p,
                    " while this process holds fd {a}, the read end of a pipe that is full ({unread} bytes \
                     unread; the pipe holds {size}). A child writing more to it waits for room that only a \
                     read can make, and this process does not read while it waits: both wait forever. Read \
                     the pipe until read returns 0 (end of file), then wait for the child."
                )
            })
        }
        Finding::WaitBlocked => print(|p| {
            let which = if a > 0 { "child" } else { "any child" };
            write!(p, "the wait for {which}")?;
            if a > 0 {
                write!(p, " {a}")?;
            }
            write!(
                p,
                " has waited {s} seconds: it is still running. If it is waiting for this process (reading \
                 a pipe this process should write to or close, or writing to one this process should read), \
                 neither can go on: close the pipe ends this process does not use before waiting."
            )
        }),
        Finding::Sigpipe => print(|p| {
            write!(
                p,
                "write(fd {a}) is about to write to a pipe whose read end no process holds any more. The \
                 kernel answers with SIGPIPE, which ends this process without a word (the shell shows status \
                 141). The reader closed the read side of the fd, or ended, before this write. Keep the \
                 reader reading until the writer is done, or ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) and \
                 check that write returns -1 with errno EPIPE."
            )
        }),
        Finding::Epipe => print(|p| {
            write!(
                p,
                "write(fd {a}) failed with EPIPE: no process holds the read end of this pipe any more (the \
                 reader closed the read side of the fd, or ended). What is written now is lost: check what \
                 write returns and stop writing."
            )
        }),
        Finding::Zombies => {}
    }
}

fn explain_zombies(pids: &[pid_t]) {
    if !first_time(Finding::Zombies, 0) {
        return;
    }
    print(|p| {
        let n = pids.len();
        write!(
            p,
            "this process is exiting with {n} child{} it never waited for (pid",
            if n == 1 { "" } else { "ren" }
        )?;
        if n > 1 {
            p.write_str("s")?;
        }
        for (i, pid) in pids.iter().enumerate() {
            write!(p, "{}{pid}", if i == 0 { " " } else { ", " })?;
        }
        write!(
            p,
            "). A child that has ended stays a zombie until its parent waits for it, and its exit status is \
             lost. As in the notes, the parent calls wait(NULL) (or waitpid) once for each child it forked \
             before it ends."
        )
    });
}
