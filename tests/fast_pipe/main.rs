//! Fast pipes: a pipe's capacity and its limits (EPERM above
//! pipe-max-size for an unprivileged process, EBUSY, EINVAL), and the
//! vmsplice writer: every byte arrives as written whatever the chunk sizes
//! and however slow the reader, its buffer is never rewritten while the pipe
//! holds it, a reader that is gone gives EPIPE, and misuse is refused.

#[path = "../support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use rawipc::Errno;
use rawipc::pipe::{self, ReadEnd, SpliceWriter, WriteEnd};
use rawipc::process::Status;
use support::child::{fork, in_child, reap};

fn main() -> ExitCode {
    support::main(tests![
        capacity_is_read_and_set,
        capacity_limits_are_reported,
        above_pipe_max_size_is_eperm_for_an_unprivileged_process,
        splice_writer_delivers_every_byte_at_every_chunk_size,
        splice_writer_never_rewrites_pages_a_slow_reader_has_not_read,
        splice_writer_keeps_up_when_the_pipe_is_grown_behind_its_back,
        splice_writer_reserve_and_commit,
        splice_writer_gets_epipe_without_sigpipe,
    ])
}

/// The byte at stream position `pos`: a pattern no two nearby laps of a
/// ring share, so that a page rewritten too early shows.
fn byte_at(pos: u64) -> u8 {
    let lap = pos / 4093;
    (pos as u8).wrapping_mul(31) ^ (lap as u8).wrapping_mul(7) ^ (lap >> 8) as u8
}

fn fill(pos: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = byte_at(pos + k as u64);
    }
}

/// Reads to end of file in `chunk`-byte reads, pausing now and then when
/// `slow`; checks every byte; returns how many came.
fn read_and_check(rx: &ReadEnd, chunk: usize, slow: bool) -> u64 {
    let mut buf = vec![0u8; chunk];
    let mut pos = 0u64;
    let mut reads = 0u64;
    loop {
        let n = rx.read(&mut buf).expect("read");
        if n == 0 {
            return pos;
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(
                b,
                byte_at(pos + k as u64),
                "byte {} of the stream",
                pos + k as u64
            );
        }
        pos += n as u64;
        reads += 1;
        if slow && reads % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A child writes `total` bytes in writes of the sizes in `sizes` (in turn)
/// through a `SpliceWriter` on a pipe of `capacity`; the parent checks them.
fn through_splice_writer(
    capacity: usize,
    sizes: &[usize],
    total: u64,
    read_chunk: usize,
    slow: bool,
) {
    let (rx, tx) = pipe::pipe().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(rx);
            let mut w = SpliceWriter::new(tx, capacity).expect("SpliceWriter::new");
            let mut buf = vec![0u8; *sizes.iter().max().unwrap()];
            let mut pos = 0u64;
            for &size in sizes.iter().cycle() {
                if pos >= total {
                    break;
                }
                let n = size.min((total - pos) as usize);
                fill(pos, &mut buf[..n]);
                w.write_all(&buf[..n]).expect("write_all");
                // Scribble on the caller's buffer: it was copied, not lent.
                buf[..n].fill(0xee);
                pos += n as u64;
            }
        })
    };
    drop(tx);
    assert_eq!(read_and_check(&rx, read_chunk, slow), total);
    assert!(matches!(reap(pid), Status::Exited(0)));
}

fn capacity_is_read_and_set() {
    let (rx, tx) = pipe::pipe().unwrap();
    assert_eq!(tx.capacity(), Ok(65536), "Linux's default");
    assert_eq!(rx.capacity(), Ok(65536));
    assert_eq!(
        tx.set_capacity(100_000),
        Ok(131072),
        "rounded up to 2^n pages"
    );
    assert_eq!(rx.capacity(), Ok(131072), "one pipe, both ends");
    assert_eq!(rx.set_capacity(1), Ok(4096), "at least a page");
    assert_eq!(pipe::capacity(&tx), Ok(4096));
}

fn capacity_limits_are_reported() {
    let (rx, tx) = pipe::pipe().unwrap();
    assert_eq!(tx.set_capacity(0), Err(Errno::INVAL));
    assert_eq!(tx.set_capacity(usize::MAX), Err(Errno::INVAL));
    // Data that would not fit the new size: EBUSY, and the data stays.
    tx.write_all(&[7u8; 20_000]).unwrap();
    assert_eq!(tx.set_capacity(4096), Err(Errno::BUSY));
    let mut buf = [0u8; 20_000];
    assert_eq!(rx.read_full(&mut buf), Ok(20_000));
    assert!(buf.iter().all(|&b| b == 7));
    // Not a pipe.
    let (a, _b) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    assert_eq!(pipe::set_capacity(&a, 65536), Err(Errno::BADF));
    assert_eq!(pipe::capacity(&a), Err(Errno::BADF));
    // The limit, as /proc says it.
    let text = std::fs::read_to_string("/proc/sys/fs/pipe-max-size").unwrap();
    assert_eq!(pipe::max_capacity(), Ok(text.trim().parse().unwrap()));
}

fn above_pipe_max_size_is_eperm_for_an_unprivileged_process() {
    let max = pipe::max_capacity().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            // Only in this child: give up root (and CAP_SYS_RESOURCE).
            if rustix::process::geteuid().is_root() {
                // SAFETY: plain system calls in a single-threaded child.
                unsafe {
                    assert_eq!(libc::setgid(65534), 0);
                    assert_eq!(libc::setuid(65534), 0);
                }
            }
            let (_rx, tx) = pipe::pipe().unwrap();
            assert_eq!(tx.set_capacity(max), Ok(max), "the limit itself is allowed");
            assert_eq!(
                tx.set_capacity(max * 2),
                Err(Errno::PERM),
                "above it is not"
            );
            assert_eq!(tx.capacity(), Ok(max), "and nothing changed");
            let (_rx, tx) = pipe::pipe().unwrap();
            let err = SpliceWriter::new(tx, max * 2).err();
            assert_eq!(err, Some(Errno::PERM), "nor hidden by the writer");
        })
    };
    assert!(matches!(reap(pid), Status::Exited(0)));
}

fn splice_writer_delivers_every_byte_at_every_chunk_size() {
    let sizes = [1, 4095, 4096, 4097, 100_000, 1 << 20, (1 << 20) + 3, 7];
    through_splice_writer(1 << 20, &sizes, 24 << 20, 1 << 20, false);
    through_splice_writer(65536, &sizes, 8 << 20, 65536, false);
    through_splice_writer(4096, &[1, 4096, 10_000], 1 << 20, 3000, false);
}

fn splice_writer_never_rewrites_pages_a_slow_reader_has_not_read() {
    // The reader takes odd small bites and pauses: the writer laps its ring
    // many times, and must wait for the reader each time.
    through_splice_writer(65536, &[65536, 10_001], 8 << 20, 1_000, true);
}

fn splice_writer_keeps_up_when_the_pipe_is_grown_behind_its_back() {
    let (rx, tx) = pipe::pipe().unwrap();
    let total = 4u64 << 20;
    let Some(pid) = fork() else {
        in_child(|| {
            drop(rx);
            let mut w = SpliceWriter::new(tx, 4096).unwrap();
            assert_eq!(w.buffer_len(), 8192);
            let mut buf = vec![0u8; 50_000];
            let mut pos = 0u64;
            while pos < total {
                let n = buf.len().min((total - pos) as usize);
                fill(pos, &mut buf[..n]);
                w.write_all(&buf[..n]).unwrap();
                pos += n as u64;
            }
        })
    };
    drop(tx);
    // The reader grows the pipe to 64 times the writer's buffer: the pipe
    // could now hold pages the writer would reuse, if it trusted its size.
    rx.set_capacity(512 * 1024).unwrap();
    assert_eq!(read_and_check(&rx, 7_000, true), total);
    assert!(matches!(reap(pid), Status::Exited(0)));
}

fn splice_writer_reserve_and_commit() {
    let (rx, tx) = pipe::pipe().unwrap();
    let mut w = SpliceWriter::new(tx, 65536).unwrap();
    assert_eq!(w.commit(1).err(), Some(Errno::INVAL), "nothing reserved");
    assert_eq!(w.reserve(0).err(), Some(Errno::INVAL));
    let r = w.reserve(1000).unwrap();
    assert_eq!(r.len(), 1000);
    fill(0, r);
    assert_eq!(
        w.write_all(b"x").map_err(|e| e.errno),
        Err(Errno::BUSY),
        "a reservation is open"
    );
    assert_eq!(
        w.commit(1001).err(),
        Some(Errno::INVAL),
        "more than reserved"
    );
    assert_eq!(w.commit(0).err(), Some(Errno::INVAL));
    w.commit(600).unwrap();
    assert_eq!(w.commit(1).err(), Some(Errno::INVAL), "committed already");
    let mut first = [0u8; 600];
    assert_eq!(rx.read_full(&mut first), Ok(600));
    assert!(
        (0..600).all(|k| first[k] == byte_at(k as u64)),
        "the 600 bytes committed"
    );
    // The ring wraps: a reservation stops at its end.
    let mut pos = 600u64;
    while pos < 5 * w.buffer_len() as u64 {
        let r = w.reserve(30_000).unwrap();
        assert!(!r.is_empty() && r.len() <= 30_000);
        let n = r.len();
        fill(pos, r);
        w.commit(n).unwrap();
        pos += n as u64;
        // Read it back at once: the pipe holds 64 KiB, and nobody else reads.
        let mut buf = vec![0u8; n];
        assert_eq!(rx.read_full(&mut buf), Ok(n));
        assert!((0..n).all(|k| buf[k] == byte_at(pos - n as u64 + k as u64)));
    }
    let tx: WriteEnd = w.into_inner();
    drop(tx);
    let mut buf = [0u8; 16];
    assert_eq!(
        rx.read(&mut buf),
        Ok(0),
        "end of file once the writer is given back and closed"
    );
}

fn splice_writer_gets_epipe_without_sigpipe() {
    let (rx, tx) = pipe::pipe().unwrap();
    let mut w = SpliceWriter::new(tx, 65536).unwrap();
    w.write_all(&[1u8; 10_000]).unwrap();
    drop(rx);
    // SIGPIPE's default would kill this process: the test would fail.
    let err = w.write_all(&[2u8; 200_000]).unwrap_err();
    assert_eq!(err.errno, Errno::PIPE);
    assert_eq!(err.written, 0);
    assert_eq!(w.write_all(&[3]).map_err(|e| e.errno), Err(Errno::PIPE));
}
