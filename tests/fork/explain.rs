//! Explain mode in the Rust API: a child of the test turns it on, sends its
//! stderr into a pipe, and makes a mistake (or none); the test reads what it
//! said. A child that hangs, as the mistakes do, is killed once it has spoken.

use std::os::fd::AsRawFd;

use rawipc::pipe::{ReadEnd, pipe};
use rawipc::process::{self, Fork, Pid, Status};

use crate::{expect_success, fork, in_child, reap};

/// In the child: stderr becomes the write end of `to`, explain mode goes on.
fn speak_into(to: &rawipc::pipe::WriteEnd) {
    // SAFETY: dup2 onto fd 2 of a valid fd; the old stderr is closed by it.
    assert_eq!(unsafe { libc::dup2(to.as_fd().as_raw_fd(), 2) }, 2);
    rawipc::explain::enable();
}

/// Reads `said` until end of file or a full line; returns what came.
fn first_paragraph(said: &ReadEnd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !out.contains(&b'\n') {
        match said.read(&mut buf).expect("read what the child said") {
            0 => break,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// Kills child `pid` and reaps it, which must find it killed by SIGKILL.
fn kill(pid: Pid) {
    crate::support::child::kill(pid);
    assert!(matches!(reap(pid), Status::Killed { signal: 9, .. }));
}

use rawipc::AsFd;

/// The parent that forgot to drop its `WriteEnd`: its read of the empty
/// pipe is explained after 3 seconds, naming both fds.
pub fn a_reader_holding_the_write_end_is_told_which_fd() {
    let (said, says) = pipe().unwrap();
    let (r, w) = pipe().unwrap();
    let (rfd, wfd) = (r.as_fd().as_raw_fd(), w.as_fd().as_raw_fd());
    let pid = match fork() {
        Fork::Child => in_child(|| {
            speak_into(&says);
            let mut buf = [0u8; 8];
            r.read(&mut buf).is_ok() // waits forever: this process holds `w`
        }),
        Fork::Parent(pid) => pid,
    };
    drop((r, w, says));
    let paragraph = first_paragraph(&said);
    kill(pid);
    assert!(
        paragraph.starts_with("rawipc explain (pid ")
            && paragraph.contains(&format!("read(fd {rfd}) has waited 3 seconds"))
            && paragraph.contains(&format!("holds fd {wfd}, a write end of the same pipe")),
        "{paragraph:?}"
    );
}

/// A wait for a child that is filling a pipe nobody reads.
pub fn a_wait_while_holding_a_full_pipe_is_told_its_size() {
    let (said, says) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            speak_into(&says);
            let (r, w) = pipe().unwrap();
            if fork() == Fork::Child {
                in_child(|| w.write_all(&vec![0u8; 1 << 20]).is_ok());
            }
            drop(w);
            let _keep = r;
            process::wait().is_ok() // waits forever: the child cannot finish
        }),
        Fork::Parent(pid) => pid,
    };
    drop(says);
    let paragraph = first_paragraph(&said);
    kill(pid);
    assert!(
        paragraph.contains("the read end of a pipe that is full")
            && paragraph.contains("the pipe holds 65536"),
        "{paragraph:?}"
    );
}

/// The notes' pipe, done right, with explain mode on: the same data, the
/// same status, and not a word.
pub fn a_correct_program_hears_nothing_and_gets_the_same() {
    let (said, says) = pipe().unwrap();
    let pid = match fork() {
        Fork::Child => in_child(|| {
            speak_into(&says);
            drop(says);
            let (r, w) = pipe().unwrap();
            let child = match fork() {
                Fork::Child => in_child(|| {
                    drop(r);
                    w.write_all(b"hello").is_ok()
                }),
                Fork::Parent(child) => child,
            };
            drop(w);
            let mut buf = [0u8; 16];
            let n = r.read_full(&mut buf).unwrap();
            &buf[..n] == b"hello" && r.read(&mut buf) == Ok(0) && reap(child) == Status::Exited(0)
        }),
        Fork::Parent(pid) => pid,
    };
    drop(says);
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = said.read(&mut buf) {
        all.extend_from_slice(&buf[..n]);
    }
    expect_success(pid);
    assert_eq!(
        String::from_utf8_lossy(&all),
        "",
        "explain mode spoke to a correct program"
    );
}
