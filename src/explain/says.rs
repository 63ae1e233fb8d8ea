//! What explain mode says: one paragraph per finding, once each, in the
//! notes' words where they fit, put together on the stack and written to
//! stderr with one write.

use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering};

use rustix::process::getpid;

use super::BLOCKED_SECONDS;
use super::sees::{borrow, empty_blocking_pipe, full_pipe_held, wait_would_block, write_end_held};

#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub enum Finding {
    /// A blocked read of a pipe whose write end this process holds.
    HoldsWriteEnd = 1,
    /// A wait while this process holds the read end of a full pipe.
    FullPipeWait = 2,
    /// A write about to raise SIGPIPE, which ends the process.
    Sigpipe = 3,
    /// A write that failed with EPIPE, SIGPIPE blocked.
    Epipe = 4,
    /// A read of an empty pipe, blocked.
    ReadBlocked = 5,
    /// A wait for a running child, blocked.
    WaitBlocked = 6,
    /// Children never waited for, at exit.
    Zombies = 7,
}

/// What has been explained already (kind and first number), so that each
/// finding is printed once per process.
static EXPLAINED: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

/// Forgets what was explained: in a new child process.
pub fn forget_all() {
    for slot in &EXPLAINED {
        slot.store(0, Ordering::Relaxed);
    }
}

/// True the first time `finding` about `a` comes up (and marks it).
pub fn first_time(finding: Finding, a: c_int) -> bool {
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

/// A paragraph put together on the stack (words and numbers, no
/// `core::fmt`, to keep the library small) and written to stderr with one
/// write.
struct Paragraph {
    buf: [u8; 1024],
    len: usize,
}

impl Paragraph {
    /// Begins a paragraph: "rawipc explain (pid N): ".
    fn new() -> Self {
        let mut p = Paragraph {
            buf: [0; 1024],
            len: 0,
        };
        let pid = getpid().as_raw_nonzero().get();
        p.s("rawipc explain (pid ").n(pid.into()).s("): ");
        p
    }

    /// Adds words (what does not fit is left out).
    #[inline(never)]
    fn s(&mut self, words: &str) -> &mut Self {
        let n = words.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&words.as_bytes()[..n]);
        self.len += n;
        self
    }

    /// Adds a number in decimal.
    fn n(&mut self, value: i64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = value.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if value < 0 {
            self.s("-");
        }
        // SAFETY: ASCII digits only.
        self.s(unsafe { core::str::from_utf8_unchecked(&digits[i..]) })
    }

    /// Ends the paragraph and writes it to stderr.
    fn print(&mut self) {
        self.s("\n");
        if let Some(stderr) = borrow(2) {
            let _ = rustix::io::write(stderr, &self.buf[..self.len]);
        }
    }
}

/// Prints the paragraph of `finding` about `a` (an fd or a pid; `b` the
/// other one it names), the first time only.
pub fn explain(finding: Finding, a: c_int, b: c_int) {
    if !first_time(finding, a) {
        return;
    }
    let (a, b) = (i64::from(a), i64::from(b));
    let s = BLOCKED_SECONDS as i64;
    let mut p = Paragraph::new();
    match finding {
        Finding::HoldsWriteEnd => p
            .s("read(fd ").n(a).s(") has waited ").n(s)
            .s(" seconds on an empty pipe, and this process itself holds fd ").n(b)
            .s(", a write end of the same pipe. read returns 0 (end of file) only once every write end \
                is closed, so it will wait forever once the other side has stopped writing. The notes: \
                the parent closes the write side of the fd (close(").n(b)
            .s(") right after fork) and uses the read command on the read side of the fd; the child \
                closes the read side."),
        Finding::ReadBlocked => p
            .s("read(fd ").n(a).s(") has waited ").n(s)
            .s(" seconds on an empty pipe. This process does not hold a write end of it; another \
                process does (with none left, read would return 0, end of file) and has not written. \
                If that process is itself waiting for this one (both read first), neither can go on: \
                let one side write first, or have the writer close its write end when it is done."),
        Finding::FullPipeWait => {
            let (unread, size) = full_pipe_held().map_or((0, 0), |f| (f.unread, f.size));
            p.s("waiting for ");
            if b > 0 {
                p.s("child ").n(b);
            } else {
                p.s("a child");
            }
            p.s(" while this process holds fd ").n(a)
                .s(", the read end of a pipe that is full (").n(unread as i64)
                .s(" bytes unread; the pipe holds ").n(size as i64)
                .s("). A child writing more to it waits for room that only a read can make, and this \
                    process does not read while it waits: both wait forever. Read the pipe until read \
                    returns 0 (end of file), then wait for the child.")
        }
        Finding::WaitBlocked => {
            p.s("the wait for ");
            if a > 0 {
                p.s("child ").n(a);
            } else {
                p.s("any child");
            }
            p.s(" has waited ").n(s)
                .s(" seconds: it is still running. If it is waiting for this process (reading a pipe \
                    this process should write to or close, or writing to one this process should \
                    read), neither can go on: close the pipe ends this process does not use before \
                    waiting.")
        }
        Finding::Sigpipe => p
            .s("write(fd ").n(a)
            .s(") is about to write to a pipe whose read end no process holds any more. The kernel \
                answers with SIGPIPE, which ends this process without a word (the shell shows status \
                141). The reader closed the read side of the fd, or ended, before this write. Keep the \
                reader reading until the writer is done, or ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) \
                and check that write returns -1 with errno EPIPE."),
        Finding::Epipe => p
            .s("write(fd ").n(a)
            .s(") failed with EPIPE: no process holds the read end of this pipe any more (the reader \
                closed the read side of the fd, or ended). SIGPIPE, which would have ended this \
                process, is blocked, so write returns -1 instead. What is written now is lost: check \
                what write returns, and stop writing at EPIPE."),
        Finding::Zombies => return,
    };
    p.print();
}

/// Explains an exit with the children `pids` never waited for; `more`:
/// there may be others rawipc had no room to record.
pub fn explain_zombies(pids: &[i32], more: bool) {
    if !first_time(Finding::Zombies, 0) {
        return;
    }
    let n = pids.len();
    let mut p = Paragraph::new();
    p.s("this process is exiting with ")
        .s(if more { "at least " } else { "" })
        .n(n as i64)
        .s(if n == 1 {
            " child it never waited for (pid"
        } else {
            " children it never waited for (pids"
        });
    for (i, pid) in pids.iter().enumerate() {
        p.s(if i == 0 { " " } else { ", " }).n(i64::from(*pid));
    }
    p.s("). A child that has ended stays a zombie until its parent waits for it, and its exit status \
         is lost. As in the notes, the parent calls wait(NULL) (or waitpid) once for each child it \
         forked before it ends.")
        .print();
}

/// Explains a read of `fd` that has blocked for BLOCKED_SECONDS, if it
/// still waits on an empty pipe.
pub fn blocked_read(fd: c_int) {
    if !empty_blocking_pipe(fd) {
        return;
    }
    match write_end_held(fd) {
        Some(w) => explain(Finding::HoldsWriteEnd, fd, w),
        None => explain(Finding::ReadBlocked, fd, 0),
    }
}

/// Explains a waitpid(`pid`, `options`) that has blocked for
/// BLOCKED_SECONDS, if it still would.
pub fn blocked_wait(pid: c_int, options: c_int) {
    if !wait_would_block(pid, options) {
        return;
    }
    match full_pipe_held() {
        Some(full) => explain(Finding::FullPipeWait, full.fd, pid),
        None => explain(Finding::WaitBlocked, pid, 0),
    }
}
