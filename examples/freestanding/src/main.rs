//! The notes' three demonstrations, as a static program with no libc and no
//! allocator: shared memory that a child writes and its parent reads, a pipe
//! from child to parent that ends in end of file when the child exits, and
//! messages over a socket pair.
//!
//! Everything goes through rawipc's Rust API, with its `freestanding` feature:
//! this process has no libc, so fork and exit are raw system calls. Output is
//! `write(2)` on fd 1 (rawipc's `write_all`), numbers formatted by hand (no
//! `core::fmt`). The exit status is 0 only if all three demonstrations worked.
//!
//! Build: `cargo build --release --manifest-path examples/freestanding/Cargo.toml`
//! (see README.md).

#![no_std]
#![no_main]

mod rt;

use core::sync::atomic::{AtomicI32, Ordering};

use rawipc::msg::{self, MsgSocket};
use rawipc::pipe::{self, WriteEnd};
use rawipc::process::{self, Fork, Pid, Status, WaitOptions};
use rawipc::shm::Shared;
use rawipc::{BorrowedFd, Errno};

/// Runs the three demonstrations; the process's exit status.
fn main() -> i32 {
    let results = [
        run("shared memory", shared_memory),
        run("pipe", pipe_until_end_of_file),
        run("messages", messages),
    ];
    if results.iter().all(|&ok| ok) {
        Line::new().str("all three worked").print();
        0
    } else {
        1
    }
}

/// Runs one demonstration, which fills in its line of output.
fn run(name: &str, demo: fn(&mut Line) -> Result<(), Failure>) -> bool {
    let mut line = Line::new();
    line.str(name).str(":");
    let result = demo(&mut line);
    if let Err(failure) = &result {
        line.str(" FAILED: ").str(failure.what);
        if let Some(errno) = failure.errno {
            line.str(": errno ").num(errno.raw_os_error() as i64);
        }
    }
    line.print();
    result.is_ok()
}

/// The notes' `glob_var`: 1 in shared memory, set to 5 by the child; the
/// parent waits for the child and prints what it finds.
fn shared_memory(line: &mut Line) -> Result<(), Failure> {
    let glob_var = Shared::new(AtomicI32::new(1)).or_fail("mmap")?;
    // SAFETY: this process has one thread and no libc.
    match unsafe { process::fork() }.or_fail("fork")? {
        Fork::Child => {
            glob_var.store(5, Ordering::SeqCst);
            process::exit(0);
        }
        Fork::Parent(child) => {
            wait_success(child)?;
            let value = glob_var.load(Ordering::SeqCst);
            line.str(" the child set glob_var to ").num(value.into());
            if value != 5 {
                return Err(Failure::new("glob_var is not 5"));
            }
            Ok(())
        }
    }
}

/// The child writes into a pipe and exits; the parent reads until `read`
/// returns 0, end of file, which is how it learns that the child is gone.
fn pipe_until_end_of_file(line: &mut Line) -> Result<(), Failure> {
    let (read_end, write_end) = pipe::pipe().or_fail("pipe")?;
    // SAFETY: this process has one thread and no libc.
    match unsafe { process::fork() }.or_fail("fork")? {
        Fork::Child => {
            drop(read_end);
            process::exit(child_writes(&write_end));
        }
        Fork::Parent(child) => {
            drop(write_end);
            let mut buf = [0u8; 64];
            let mut got = 0;
            loop {
                let rest = buf.get_mut(got..).unwrap_or(&mut []);
                match read_end.read(rest).or_fail("read")? {
                    0 => break,
                    n => got += n,
                }
                if got == buf.len() {
                    return Err(Failure::new("more than 64 bytes"));
                }
            }
            let got_bytes = buf.get(..got).unwrap_or(&[]);
            line.str(" ")
                .quoted(got_bytes)
                .str(" (")
                .num(got as i64)
                .str(" bytes), then end of file");
            wait_success(child)?;
            if got_bytes != b"hello from the child" {
                return Err(Failure::new("not what the child wrote"));
            }
            Ok(())
        }
    }
}

/// The child's side of the pipe: two writes, which the reader sees as one
/// stream of bytes.
fn child_writes(write_end: &WriteEnd) -> i32 {
    let sent = write_end
        .write_all(b"hello ")
        .and_then(|()| write_end.write_all(b"from the child"));
    if sent.is_ok() { 0 } else { 1 }
}

/// The parent sends "ping"; the child answers "pong" and "bye" and exits. The
/// parent receives each message whole, then 0: the child is gone.
fn messages(line: &mut Line) -> Result<(), Failure> {
    let (parent_end, child_end) = msg::socketpair().or_fail("socketpair")?;
    // SAFETY: this process has one thread and no libc.
    match unsafe { process::fork() }.or_fail("fork")? {
        Fork::Child => {
            drop(parent_end);
            process::exit(child_answers(&child_end));
        }
        Fork::Parent(child) => {
            drop(child_end);
            parent_end.send(b"ping").or_fail("send")?;
            line.str(" sent \"ping\", received");
            let mut received = 0;
            let mut buf = [0u8; 16];
            loop {
                let n = parent_end.recv(&mut buf).or_fail("recv")?;
                if n == 0 {
                    break;
                }
                line.str(" ").quoted(buf.get(..n).unwrap_or(&[]));
                received += 1;
            }
            line.str(", then 0: the child is gone");
            wait_success(child)?;
            if received != 2 {
                return Err(Failure::new("not two messages"));
            }
            Ok(())
        }
    }
}

/// The child's side of the socket pair.
fn child_answers(child_end: &MsgSocket) -> i32 {
    let mut buf = [0u8; 16];
    let answered = child_end
        .recv(&mut buf)
        .and_then(|n| match buf.get(..n) {
            Some(b"ping") => child_end.send(b"pong"),
            _ => Err(Errno::PROTO),
        })
        .and_then(|_| child_end.send(b"bye"));
    if answered.is_ok() { 0 } else { 1 }
}

/// Waits for `child` and fails unless it exited with status 0.
fn wait_success(child: Pid) -> Result<(), Failure> {
    match process::waitpid(child, WaitOptions::empty()).or_fail("waitpid")? {
        Some((_, Status::Exited(0))) => Ok(()),
        _ => Err(Failure::new("the child did not exit with 0")),
    }
}

/// Why a demonstration failed: what went wrong, and the errno if a call failed.
struct Failure {
    what: &'static str,
    errno: Option<Errno>,
}

impl Failure {
    fn new(what: &'static str) -> Self {
        Failure { what, errno: None }
    }
}

/// Names the call whose error ends a demonstration.
trait OrFail<T> {
    fn or_fail(self, what: &'static str) -> Result<T, Failure>;
}

impl<T, E: Into<Errno>> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            what,
            errno: Some(e.into()),
        })
    }
}

/// A line of output built on the stack, then written with one raw write.
/// What does not fit is cut.
pub(crate) struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub(crate) fn new() -> Self {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// `bytes` between double quotes.
    fn quoted(&mut self, bytes: &[u8]) -> &mut Self {
        self.str("\"").bytes(bytes).str("\"")
    }

    /// A decimal integer.
    pub(crate) fn num(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.str("-");
        }
        // Filled from the end: 20 digits hold any u64.
        let mut digits = [0u8; 20];
        let mut used = 0;
        let mut rest = n.unsigned_abs();
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
            used += 1;
            if rest == 0 {
                break;
            }
        }
        self.bytes(digits.get(digits.len() - used..).unwrap_or(&[]))
    }

    /// Writes the line and a newline to standard output.
    pub(crate) fn print(&mut self) {
        // A cut line still ends in a newline.
        self.len = self.len.min(self.buf.len() - 1);
        self.str("\n");
        // SAFETY: fd 1 stays open for the whole life of this process (it never
        // closes it); if it was never open the write fails with EBADF.
        let stdout = unsafe { BorrowedFd::borrow_raw(1) };
        // Nowhere to report a failed write to standard output.
        let _ = pipe::write_all(stdout, self.buf.get(..self.len).unwrap_or(&[]));
    }
}
