//! What Rust programmers write with std, on rawipc's pipe, message and
//! process types: each idiom must compile (this file is the compile-test) and
//! do what it says; and `{:?}` on every public type. Needs the `std`
//! feature (on by default). The idioms that must not compile (a reservation
//! dropped unused, `?` on a mutex lock) are `compile_fail` doc tests in
//! `src/chan.rs` and `src/mutex.rs`.

#![cfg(feature = "std")]

use std::error::Error;
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};

use rawipc::chan::Channel;
use rawipc::msg::{MsgSocket, socketpair};
use rawipc::mutex::{ProcessMutex, RawMutex};
use rawipc::pipe::{ReadEnd, WriteEnd, WriteError, pipe};
use rawipc::process::{Fork, Status, WaitOptions};
use rawipc::{Errno, shm};

/// `Read` for `&ReadEnd`: a shared reference reads, as `&File` does.
#[test]
fn read_to_string_through_a_shared_reference() {
    let (r, w) = pipe().unwrap();
    w.write_all(b"hello").unwrap();
    drop(w);
    let mut text = String::new();
    (&r).read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello");
}

/// `Write` for `&WriteEnd`, and `write!` on it.
#[test]
fn write_macro_through_a_shared_reference() {
    let (r, w) = pipe().unwrap();
    write!(&w, "{} + {} = {}", 1, 2, 1 + 2).unwrap();
    (&w).flush().unwrap();
    drop(w);
    let mut got = Vec::new();
    (&r).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"1 + 2 = 3");
}

/// Generic code over `Read`/`Write` takes the ends by reference and by value.
#[test]
fn ends_serve_generic_io_code() {
    fn copy_all(from: impl Read, to: impl Write) -> io::Result<u64> {
        let (mut from, mut to) = (from, to);
        io::copy(&mut from, &mut to)
    }
    let (r1, w1) = pipe().unwrap();
    let (r2, w2) = pipe().unwrap();
    w1.write_all(b"copied").unwrap();
    drop(w1);
    assert_eq!(copy_all(&r1, &w2).unwrap(), 6);
    drop(w2);
    let mut got = Vec::new();
    io::BufReader::new(r2).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"copied");
}

/// The pipe ends as a child's standard input and output.
#[test]
fn ends_become_a_commands_stdin_and_stdout() {
    let (to_child, from_parent) = pipe().unwrap();
    let (from_child, to_parent) = pipe().unwrap();
    let mut child = Command::new("wc")
        .arg("-c")
        .stdin(to_child)
        .stdout(to_parent)
        .spawn()
        .expect("run wc");
    // The parent's copies went into the Command, which closes them once the
    // child has started: only the child holds the other ends now.
    from_parent.write_all(b"twelve bytes").unwrap();
    drop(from_parent);
    let mut out = String::new();
    (&from_child).read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.trim(), "12");
}

/// A message socket as a child's standard input (a socket is a stream to it).
#[test]
fn message_socket_becomes_a_commands_stdin() {
    let (ours, theirs) = socketpair().unwrap();
    let child = Command::new("cat")
        .stdin(theirs)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cat");
    ours.send(b"one message").unwrap();
    drop(ours);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"one message");
}

/// Into std's `OwnedFd` and back; raw fds out and in.
#[test]
fn ends_convert_to_and_from_std_fds() {
    let (r, w) = pipe().unwrap();
    let raw = r.as_raw_fd();
    let owned: OwnedFd = r.into();
    assert_eq!(owned.as_raw_fd(), raw);
    let r = ReadEnd::from(owned);
    let w_raw = w.into_raw_fd();
    // SAFETY: the fd just given up by `w`, owned by nothing else.
    let w = unsafe { WriteEnd::from_raw_fd(w_raw) };
    w.write_all(b"x").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(r.read(&mut buf), Ok(1));

    let (a, b) = socketpair().unwrap();
    let raw = a.into_raw_fd();
    // SAFETY: as above.
    let a = unsafe { MsgSocket::from_raw_fd(raw) };
    assert_eq!(a.as_raw_fd(), raw);
    let b = MsgSocket::from(OwnedFd::from(b));
    a.send(b"y").unwrap();
    assert_eq!(b.recv(&mut buf), Ok(1));
}

/// `try_clone`: another fd for the same pipe or socket, close-on-exec; the
/// peer sees end of file only once both are closed.
#[test]
fn try_clone_gives_another_fd_for_the_same_end() {
    let (r, w) = pipe().unwrap();
    let w2 = w.try_clone().unwrap();
    assert_ne!(w2.as_raw_fd(), w.as_raw_fd());
    let flags = rustix::io::fcntl_getfd(&w2).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    w.write_all(b"a").unwrap();
    drop(w);
    w2.write_all(b"b").unwrap();
    let r2 = r.try_clone().unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(r2.read_full(&mut buf), Ok(2));
    assert_eq!(&buf, b"ab");
    drop(w2);
    assert_eq!(r.read(&mut buf), Ok(0));

    let (a, b) = socketpair().unwrap();
    let a2 = a.try_clone().unwrap();
    drop(a);
    a2.send(b"still here").unwrap();
    assert_eq!(b.recv(&mut [0u8; 16]), Ok(10));
}

/// `write_all(..)?` in a function returning `io::Result`, `Box<dyn Error>`
/// or `rawipc::Result`: the error converts in each.
#[test]
fn write_all_composes_with_every_result_type() {
    fn io_result(w: &WriteEnd) -> io::Result<()> {
        w.write_all(b"hi")?;
        Ok(())
    }
    fn boxed(w: &WriteEnd) -> Result<(), Box<dyn Error>> {
        w.write_all(b"hi")?;
        let (_r, _w) = pipe()?; // a bare Errno, too
        Ok(())
    }
    fn rawipc_result(w: &WriteEnd) -> rawipc::Result<()> {
        w.write_all(b"hi")?;
        Ok(())
    }
    let (r, w) = pipe().unwrap();
    io_result(&w).unwrap();
    boxed(&w).unwrap();
    rawipc_result(&w).unwrap();
    drop(r);
    // With no reader left: EPIPE, through each.
    let err = io_result(&w).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(err.raw_os_error(), Some(Errno::PIPE.raw_os_error()));
    let err = boxed(&w).unwrap_err();
    let write_error = err.downcast_ref::<WriteError>().expect("a WriteError");
    assert_eq!(write_error.errno, Errno::PIPE);
    assert_eq!(write_error.written, 0);
    assert!(err.to_string().contains("after writing 0 bytes"), "{err}");
    assert_eq!(rawipc_result(&w), Err(Errno::PIPE));
}

/// `Errno` is a `std::error::Error`, into `Box<dyn Error>` and `io::Error`.
#[test]
fn errno_is_a_std_error() {
    fn boxed() -> Result<(), Box<dyn Error + Send + Sync>> {
        Err(Errno::MSGSIZE)?
    }
    let err = boxed().unwrap_err();
    assert_eq!(err.downcast_ref::<Errno>(), Some(&Errno::MSGSIZE));
    let io: io::Error = Errno::PIPE.into();
    assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
}

/// Every public type of these modules shows itself with `{:?}`.
#[test]
fn public_types_are_debug() {
    fn shows(value: &impl Debug, expect: &str) {
        let text = format!("{value:?}");
        assert!(text.contains(expect), "{text:?} lacks {expect:?}");
    }
    let (r, w) = pipe().unwrap();
    shows(&r, "ReadEnd");
    shows(&w, "WriteEnd");
    let (a, _b) = socketpair().unwrap();
    shows(&a, "MsgSocket");
    shows(
        &WriteError {
            written: 3,
            errno: Errno::PIPE,
        },
        "written: 3",
    );
    shows(&Status::Exited(1), "Exited(1)");
    shows(&Fork::Child, "Child");
    shows(&WaitOptions::NOHANG, "NOHANG");
    shows(&shm::SharedRegion::new(4096).unwrap(), "SharedRegion");

    let channel = Channel::new(4096).unwrap();
    shows(&channel, "capacity: 4096");
    let (mut tx, mut rx) = channel.split().unwrap();
    shows(&tx, "Sender");
    shows(&rx, "sender_gone: false");
    let reservation = tx.reserve(5).unwrap();
    shows(&reservation, "Reservation { len: 5");
    reservation.commit(5).unwrap();
    let message = rx.recv_borrowed().unwrap().expect("a message");
    shows(&message, "Message { len: 5");
    drop(message);

    let mutex = ProcessMutex::new(7u32);
    shows(&mutex, "ProcessMutex");
    let guard = mutex.lock().unwrap();
    shows(&guard, "MutexGuard(7)");
    shows(&mutex.try_lock().unwrap_err(), "WouldBlock");
    drop(guard);
    shows(&RawMutex::new(), "RawMutex");
}

/// `Status` as std's `ExitStatus` sees it: code, signal, and the conversion.
#[test]
fn status_speaks_like_std_exit_status() {
    use std::os::unix::process::ExitStatusExt;
    let cases = [
        (Status::Exited(0), Some(0), None, "exit status: 0"),
        (Status::Exited(3), Some(3), None, "exit status: 3"),
        (
            Status::Killed {
                signal: 9,
                core_dumped: false,
            },
            None,
            Some(9),
            "signal: 9",
        ),
        (
            Status::Killed {
                signal: 6,
                core_dumped: true,
            },
            None,
            Some(6),
            "signal: 6 (core dumped)",
        ),
        (Status::Stopped(19), None, None, "stopped (signal: 19)"),
        (Status::Continued, None, None, "continued"),
    ];
    for (status, code, signal, shown) in cases {
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(status.signal(), signal, "{status:?}");
        assert_eq!(status.to_string(), shown);
        let std_status = ExitStatus::from(status);
        assert_eq!(std_status.code(), code, "{status:?}");
        assert_eq!(std_status.signal(), signal, "{status:?}");
        assert_eq!(std_status.success(), status.success(), "{status:?}");
        assert_eq!(std_status.into_raw(), status.to_raw());
    }
    assert_eq!(Status::Stopped(19).stopped_signal(), Some(19));
    assert_eq!(Status::Exited(19).stopped_signal(), None);
}

/// What std's own child reports, decoded by rawipc the same way.
#[test]
fn status_of_a_real_child_matches_std() {
    use std::os::unix::process::ExitStatusExt;
    for script in ["exit 7", "kill -TERM $$"] {
        let std_status = Command::new("sh").args(["-c", script]).status().unwrap();
        let status = Status::from_raw(std_status.into_raw());
        assert_eq!(status.code(), std_status.code(), "{script}");
        assert_eq!(status.signal(), std_status.signal(), "{script}");
        assert_eq!(ExitStatus::from(status), std_status, "{script}");
    }
}
