//! The other programs of the tests: this binary exec'd with `RAWIPC_ROLE`
//! set and the name to meet under as its argument. Each says "ready" on
//! stdout once it listens or is connected; a failed assertion exits it
//! non-zero (the test checks its status).

use std::io::{Read, Write};

use rawipc::chan::handover;
use rawipc::endpoint;
use rawipc::mutex::ProcessMutex;
use rawipc::shm::SealedRegion;
use rawipc::{AsFd, Errno};

pub const ROLE_ENV: &str = "RAWIPC_ROLE";

/// How many messages the channel of the exchange carries, and how many
/// times each side increments the counter under the mutex.
pub const MESSAGES: u32 = 1000;
pub const INCREMENTS: u64 = 1000;

fn ready() {
    println!("ready");
    std::io::stdout().flush().expect("flush");
}

/// Blocks until stdin reaches end of file (the test closes it or kills us).
fn hang() {
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

pub fn run(role: &str) {
    let name = std::env::args().nth(1).expect("the name to meet under");
    match role {
        "server" => server(&name),
        "sleeper" => {
            let _listener = endpoint::listen(&name).expect("listen");
            ready();
            hang();
        }
        "connect-and-exit" => {
            let _conn = endpoint::connect(&name).expect("connect");
            ready();
        }
        "connect-and-hang" => {
            let _conn = endpoint::connect(&name).expect("connect");
            ready();
            hang();
        }
        "take-receiver-and-die" => {
            let conn = endpoint::connect(&name).expect("connect");
            let _rx = handover::take_receiver(&conn).expect("take the receiver");
            ready();
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
        "give-receiver-send-and-die" => {
            let conn = endpoint::connect(&name).expect("connect");
            let mut tx = handover::give_receiver(&conn, 4096).expect("give the receiver");
            tx.send(b"last words").expect("send");
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
        "take-sender-send-exit" => {
            let conn = endpoint::connect(&name).expect("connect");
            let mut tx = handover::take_sender(&conn).expect("take the sender");
            for i in 0..MESSAGES {
                tx.send(&i.to_le_bytes()).expect("send");
            }
        }
        other => panic!("no role {other}"),
    }
}

/// The server of the exchange test: a message each way, an fd, a sealed
/// region with a mutex both increment, a channel handed over.
fn server(name: &str) {
    let listener = endpoint::listen(name).expect("listen");
    ready();
    let conn = listener.accept().expect("accept the client");
    let mut buf = [0u8; 256];

    let n = conn.recv(&mut buf).expect("recv hello");
    assert_eq!(&buf[..n], b"hello");
    conn.send(b"hello back").expect("send");

    // An fd from the client: the write end of its pipe.
    let mut fds = [None];
    let (n, k) = conn.recv_fds(&mut buf, &mut fds).expect("recv the pipe");
    assert_eq!((&buf[..n], k), (&b"pipe"[..], 1));
    let w = fds[0].take().expect("the fd");
    rustix::io::write(&w, b"written by the server").expect("write into the pipe");
    drop(w);

    // Sealed memory with a mutex in it, for both to increment.
    let region = SealedRegion::create(4096).expect("create the region");
    let counter: &ProcessMutex<u64> = region.get(0).expect("the mutex");
    conn.send_fds(b"region", &[region.fd()])
        .expect("send the region");
    for _ in 0..INCREMENTS {
        *counter.lock().expect("lock") += 1;
    }

    // A channel, its receiving end handed over.
    let mut tx = handover::give_receiver(&conn, 64 * 1024).expect("give the receiver");
    for i in 0..MESSAGES {
        tx.send(&i.to_le_bytes()).expect("send on the channel");
    }

    let n = conn.recv(&mut buf).expect("recv done");
    assert_eq!(&buf[..n], b"done");
    assert_eq!(*counter.lock().expect("lock"), 2 * INCREMENTS);
    // The client is gone: the channel says so.
    assert_eq!(conn.recv(&mut buf), Ok(0));
    let mut gone = Ok(());
    for _ in 0..100_000 {
        gone = tx.send(b"x");
        if gone.is_err() {
            break;
        }
    }
    assert_eq!(gone, Err(Errno::PIPE));
    no_file_open(conn.as_fd());
}

/// Every fd this process has is a socket, a pipe, a memfd, an anonymous
/// inode, or a standard stream: nothing on a file system.
pub fn no_file_open(_conn: rawipc::BorrowedFd<'_>) {
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let target = match std::fs::read_link(entry.expect("an fd").path()) {
            Ok(t) => t.to_string_lossy().into_owned(),
            Err(_) => continue, // the directory's own fd, closed by now
        };
        let fine = target.starts_with("socket:")
            || target.starts_with("pipe:")
            || target.starts_with("anon_inode:")
            || target.starts_with("/memfd:")
            || target.starts_with("/dev/")
            || target.starts_with("/proc/");
        assert!(fine, "an fd on a file: {target}");
    }
}
