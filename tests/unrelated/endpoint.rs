//! Named endpoints: programs meeting by name, bad and taken names, who is
//! admitted (real other uids), and a killed server's name.

use std::fs;

use rawipc::chan::handover;
use rawipc::endpoint::{self, NAME_MAX, PREFIX};
use rawipc::mutex::ProcessMutex;
use rawipc::shm::SealedRegion;
use rawipc::{AsFd, Errno, OwnedFd};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::roles::{INCREMENTS, MESSAGES};
use super::*;

/// The entries of the places a program might leave a name in.
fn on_disk() -> Vec<String> {
    let mut names = Vec::new();
    for dir in ["/tmp", "/dev/shm", "/run", "."] {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                names.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    names
}

pub fn separately_started_programs_exchange_everything_by_name() {
    let name = name("exchange");
    let before = on_disk();
    let mut server = Program::start("server", &[&name]);
    server.expect_line("ready");
    let conn = endpoint::connect(&name).expect("connect to the server by name");
    assert_eq!(
        endpoint::peer_cred(&conn).expect("peer_cred").pid as u32,
        server.pid()
    );
    let mut buf = [0u8; 256];

    conn.send(b"hello").expect("send");
    let n = conn.recv(&mut buf).expect("recv");
    assert_eq!(&buf[..n], b"hello back");

    let (r, w) = rawipc::pipe::pipe().expect("pipe");
    conn.send_fds(b"pipe", &[w.as_fd()]).expect("send the pipe");
    drop(w);
    let mut got = Vec::new();
    loop {
        let n = r.read(&mut buf).expect("read the pipe");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"written by the server");

    let mut fds = [None];
    let (n, k) = conn.recv_fds(&mut buf, &mut fds).expect("recv the region");
    assert_eq!((&buf[..n], k), (&b"region"[..], 1));
    let region = SealedRegion::open(fds[0].take().unwrap()).expect("open the region");
    assert_eq!(region.len(), 4096);
    let counter: &ProcessMutex<u64> = region.get(0).expect("the mutex");
    for _ in 0..INCREMENTS {
        *counter.lock().expect("lock") += 1;
    }

    let mut rx = handover::take_receiver(&conn).expect("take the receiver");
    for i in 0..MESSAGES {
        let n = rx.recv(&mut buf).expect("recv on the channel");
        assert_eq!(&buf[..n], &i.to_le_bytes());
    }
    conn.send(b"done").expect("send done");
    drop((conn, rx));
    super::roles::no_file_open(region.as_fd());
    server.succeeds();
    let after = on_disk();
    let new: Vec<_> = after
        .iter()
        .filter(|n| !before.contains(n) && n.contains("rawipc"))
        .collect();
    assert!(new.is_empty(), "files left behind: {new:?}");
}

pub fn bad_names_and_taken_names() {
    assert_eq!(endpoint::listen("").err(), Some(Errno::INVAL));
    assert_eq!(endpoint::listen("a\0b").err(), Some(Errno::INVAL));
    let long = "x".repeat(NAME_MAX + 1);
    assert_eq!(endpoint::listen(&long).err(), Some(Errno::INVAL));
    assert_eq!(endpoint::connect(&long).err(), Some(Errno::INVAL));
    assert_eq!(endpoint::connect("").err(), Some(Errno::INVAL));
    let longest = format!("{}{}", name("l"), "y".repeat(NAME_MAX - name("l").len()));
    let l = endpoint::listen(&longest).expect("a name of NAME_MAX bytes");
    let c = endpoint::connect(&longest).expect("connect to it");
    let s = l.accept().expect("accept");
    c.send(b"x").unwrap();
    assert_eq!(s.recv(&mut [0; 4]), Ok(1));

    let n = name("taken");
    assert_eq!(endpoint::connect(&n).err(), Some(Errno::CONNREFUSED));
    let first = endpoint::listen(&n).expect("listen");
    assert_eq!(endpoint::listen(&n).err(), Some(Errno::ADDRINUSE));
    drop(first);
    let _again = endpoint::listen(&n).expect("the name is free once closed");
}

/// A forked child that becomes user `NOBODY` and runs `f`.
fn as_nobody(f: impl FnOnce()) -> rawipc::process::Pid {
    spawn(|| {
        become_nobody();
        f()
    })
}

pub fn listener_refuses_a_client_of_another_user_and_stays_usable() {
    if !is_root() {
        println!("skipped: needs root to switch users");
        return;
    }
    let n = name("refuse");
    let listener = endpoint::listen(&n).expect("listen");
    let n2 = n.clone();
    let child = as_nobody(move || {
        // It reaches root's name (trusting root as the server) but root's
        // listener will not have it: its connection ends unanswered.
        let conn = endpoint::connect_to(&n2, 0).expect("connect to root's name");
        assert_eq!(conn.recv(&mut [0; 8]), Ok(0), "the server hung up");
    });
    assert_eq!(listener.accept().err(), Some(Errno::ACCESS));
    expect_success(child);
    // Still usable: a client of this user is accepted.
    let c = endpoint::connect(&n).expect("connect");
    let s = listener.accept().expect("the listener still accepts");
    c.send(b"ok").unwrap();
    assert_eq!(s.recv(&mut [0; 8]), Ok(2));
}

pub fn listener_admits_a_uid_a_gid_or_anyone_when_told() {
    if !is_root() {
        println!("skipped: needs root to switch users");
        return;
    }
    for how in ["uid", "gid", "anyone"] {
        let n = name(how);
        let mut listener = endpoint::listen(&n).expect("listen");
        match how {
            "uid" => listener.admit_uid(NOBODY),
            "gid" => listener.admit_gid(NOBODY),
            _ => listener.admit_anyone(),
        };
        let n2 = n.clone();
        let child = as_nobody(move || {
            let conn = endpoint::connect_to(&n2, 0).expect("connect");
            conn.send(b"from nobody").expect("send");
            assert_eq!(conn.recv(&mut [0; 8]), Ok(0));
        });
        let s = listener.accept().expect("admitted");
        let cred = endpoint::peer_cred(&s).unwrap();
        assert_eq!((cred.uid, cred.gid), (NOBODY, NOBODY));
        let mut buf = [0; 32];
        let k = s.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"from nobody");
        drop(s);
        expect_success(child);
    }
    // accept_from, the C ABI's way, admits the same.
    let n = name("from");
    let listener = endpoint::listen(&n).expect("listen");
    let n2 = n.clone();
    let child = as_nobody(move || {
        let conn = endpoint::connect_to(&n2, 0).expect("connect");
        assert_eq!(conn.recv(&mut [0; 8]), Ok(0));
    });
    let s = endpoint::accept_from(&listener, Some(NOBODY), None, false).expect("admitted");
    drop(s);
    expect_success(child);
}

/// Binds the abstract address that `name` has under user `uid`, as any
/// program can (abstract names have no permissions), and listens.
fn squat(name: &str, uid: u32) -> OwnedFd {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let raw = format!("{PREFIX}{uid}/{name}");
    let addr = SocketAddrUnix::new_abstract_name(raw.as_bytes()).unwrap();
    rustix::net::bind(&fd, &addr).expect("bind the name");
    rustix::net::listen(&fd, 8).unwrap();
    fd
}

pub fn client_refuses_an_impostor_of_another_user() {
    if !is_root() {
        println!("skipped: needs root to switch users");
        return;
    }
    let n = name("impostor");
    let (ready_r, ready_w) = rawipc::pipe::pipe().unwrap();
    let (done_r, done_w) = rawipc::pipe::pipe().unwrap();
    let n2 = n.clone();
    let child = as_nobody(|| {
        // Takes root's name first, to impersonate root's server.
        let _fd = squat(&n2, 0);
        ready_w.write_all(b"r").unwrap();
        assert_eq!(done_r.read(&mut [0; 1]), Ok(1));
    });
    assert_eq!(ready_r.read(&mut [0; 1]), Ok(1));
    assert_eq!(endpoint::connect(&n).err(), Some(Errno::ACCESS));
    // The real server cannot have the name while the impostor holds it.
    assert_eq!(endpoint::listen(&n).err(), Some(Errno::ADDRINUSE));
    done_w.write_all(b"d").unwrap();
    expect_success(child);
}

pub fn client_trusts_another_server_uid_when_told() {
    if !is_root() {
        println!("skipped: needs root to switch users");
        return;
    }
    let n = name("trust");
    let (ready_r, ready_w) = rawipc::pipe::pipe().unwrap();
    let n2 = n.clone();
    let child = as_nobody(|| {
        let mut l = endpoint::listen(&n2).expect("nobody listens");
        l.admit_uid(0);
        ready_w.write_all(b"r").unwrap();
        let s = l.accept().expect("accept root");
        s.send(b"hi root").unwrap();
        assert_eq!(s.recv(&mut [0; 8]), Ok(0));
    });
    assert_eq!(ready_r.read(&mut [0; 1]), Ok(1));
    // Not under root's names: a default connect does not find it.
    assert_eq!(endpoint::connect(&n).err(), Some(Errno::CONNREFUSED));
    // Trusting another uid than the listener's is refused too.
    let squatted = squat(&n, 4242);
    assert_eq!(endpoint::connect_to(&n, 4242).err(), Some(Errno::ACCESS));
    drop(squatted);
    let conn = endpoint::connect_to(&n, NOBODY).expect("connect to nobody's server");
    let mut buf = [0; 16];
    let k = conn.recv(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"hi root");
    drop(conn);
    expect_success(child);
}

pub fn killed_server_name_is_free_at_once() {
    let n = name("restart");
    for _ in 0..3 {
        let mut server = Program::start("sleeper", &[&n]);
        server.expect_line("ready");
        assert_eq!(endpoint::listen(&n).err(), Some(Errno::ADDRINUSE));
        let conn = endpoint::connect(&n).expect("the server is there");
        server.kill();
        // Its connection says so, and its name is free at once.
        assert_eq!(conn.recv(&mut [0; 8]), Ok(0));
        let listener = endpoint::listen(&n).expect("listen again at once");
        let c = endpoint::connect(&n).expect("connect to the new server");
        let _s = listener.accept().expect("accept");
        drop((c, listener));
    }
}

pub fn peer_cred_tells_who_is_there() {
    let (a, b) = rawipc::msg::socketpair().unwrap();
    let me = endpoint::peer_cred(&a).unwrap();
    assert_eq!(me.pid as u32, std::process::id());
    assert_eq!(me.uid, rustix::process::geteuid().as_raw());
    assert_eq!(me.gid, rustix::process::getegid().as_raw());
    drop(b);
    let n = name("cred");
    let l = endpoint::listen(&n).unwrap();
    assert_eq!(endpoint::peer_cred(&l).err(), Some(Errno::NOTCONN));
    let (r, _w) = rawipc::pipe::pipe().unwrap();
    assert_eq!(endpoint::peer_cred(&r).err(), Some(Errno::NOTSOCK));
}

static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

pub fn a_signal_storm_never_surfaces_as_eintr() {
    // No SA_RESTART: every blocking call the signal lands in is interrupted
    // with EINTR.
    support::child::catch_sigusr1(on_signal, false);
    let me = rustix::process::getpid();
    let storm = spawn(move || {
        loop {
            let _ = rustix::process::kill_process(me, Signal::USR1);
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    });
    let n = name("storm");
    let listener = endpoint::listen(&n).unwrap();
    let client = spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let conn = endpoint::connect(&n).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (r, w) = rawipc::pipe::pipe().unwrap();
        conn.send_fds(b"fd", &[w.as_fd()]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut tx = handover::take_sender(&conn).unwrap();
        tx.send(b"through the storm").unwrap();
        drop(r);
    });
    let conn = listener
        .accept()
        .expect("accept, interrupted again and again");
    let mut fds = [None];
    let (k, nfds) = conn.recv_fds(&mut [0; 8], &mut fds).expect("recv_fds");
    assert_eq!((k, nfds), (2, 1));
    let mut rx = handover::give_sender(&conn, 4096).expect("give");
    let mut buf = [0u8; 32];
    let k = rx.recv(&mut buf).expect("recv on the channel");
    assert_eq!(&buf[..k], b"through the storm");
    expect_success(client);
    let _ = rustix::process::kill_process(storm, Signal::KILL);
    assert!(
        SIGNALS.load(std::sync::atomic::Ordering::SeqCst) > 10,
        "the storm came"
    );
    let _ = rawipc::process::waitpid(storm, rawipc::process::WaitOptions::empty());
}

/// Runs `f` in a grandchild that is pid 1 of a new pid namespace, in which
/// this process has no pid; returns whether it could (root only).
fn in_new_pid_namespace(f: impl FnOnce()) -> bool {
    if !is_root() {
        eprintln!("skipped: a new pid namespace needs root");
        return false;
    }
    let child = spawn(move || {
        // SAFETY: a plain system call in a single-threaded child.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0, "unshare");
        let inner = spawn(move || {
            assert_eq!(rustix::process::getpid().as_raw_nonzero().get(), 1);
            f()
        });
        expect_success(inner);
    });
    expect_success(child);
    true
}

pub fn peer_cred_of_a_peer_in_another_pid_namespace_is_pid_0() {
    // The kernel reports pid 0 for a peer whose pid is not visible here.
    let (_a, b) = rawipc::msg::socketpair().unwrap();
    let n = name("pidns");
    let l = endpoint::listen(&n).unwrap();
    let me = rustix::process::geteuid().as_raw();
    let inner_name = n.clone();
    let ran = in_new_pid_namespace(move || {
        let c = endpoint::peer_cred(&b).expect("peer_cred");
        assert_eq!((c.pid, c.uid), (0, me));
        // connect looks at the listener's credentials: pid 0 too.
        let conn = endpoint::connect(&inner_name).expect("connect");
        assert_eq!(endpoint::peer_cred(&conn).map(|c| c.pid), Ok(0));
        conn.send(b"hi").unwrap();
    });
    if ran {
        let s = l.accept().expect("the client from the pid namespace");
        assert!(
            endpoint::peer_cred(&s).unwrap().pid > 1,
            "its pid as seen here"
        );
        assert_eq!(s.recv(&mut [0; 4]), Ok(2));
    }
}

pub fn a_signal_storm_on_both_sides_never_surfaces_as_eintr() {
    for flags in [0, libc::SA_RESTART] {
        // For this process and the client it forks.
        support::child::catch_sigusr1(on_signal, flags == libc::SA_RESTART);
        SIGNALS.store(0, std::sync::atomic::Ordering::SeqCst);
        let n = name(&format!("storm2-{flags}"));
        let listener = endpoint::listen(&n).unwrap();
        let pause = || std::thread::sleep(std::time::Duration::from_millis(30));
        let client = spawn(|| {
            pause();
            let conn = endpoint::connect(&n).expect("connect");
            let mut fds = [None];
            let got = conn.recv_fds(&mut [0; 8], &mut fds).expect("recv_fds");
            assert_eq!(got, (2, 1));
            let mut tx = handover::take_sender(&conn).expect("take");
            pause();
            tx.send(b"through the storm").expect("send");
            assert!(SIGNALS.load(std::sync::atomic::Ordering::SeqCst) > 10);
        });
        // 1 kHz at both sides, through every blocking call.
        let targets = [rustix::process::getpid(), client];
        let storm = spawn(move || {
            loop {
                for &t in &targets {
                    let _ = rustix::process::kill_process(t, Signal::USR1);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        let conn = listener.accept().expect("accept");
        pause();
        let (_r, w) = rawipc::pipe::pipe().unwrap();
        conn.send_fds(b"fd", &[w.as_fd()]).unwrap();
        pause();
        let mut rx = handover::give_sender(&conn, 4096).expect("give");
        let mut buf = [0u8; 32];
        let k = rx.recv(&mut buf).expect("recv on the channel");
        assert_eq!(&buf[..k], b"through the storm");
        expect_success(client);
        assert_eq!(rx.recv(&mut buf), Ok(0), "the client is gone");
        let _ = rustix::process::kill_process(storm, Signal::KILL);
        let _ = rawipc::process::waitpid(storm, rawipc::process::WaitOptions::empty());
        assert!(SIGNALS.load(std::sync::atomic::Ordering::SeqCst) > 10);
    }
}

pub fn accept_refuses_what_is_no_message_listener() {
    // A connected message socket, a unix stream listener, a TCP listener:
    // none gives a rawipc connection, and none loses a waiting client.
    let (a, _b) = rawipc::msg::socketpair().unwrap();
    assert_eq!(
        endpoint::accept_from(&a, None, None, true).err(),
        Some(Errno::INVAL)
    );
    let stream = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr = SocketAddrUnix::new_abstract_name(name("stream-listener").as_bytes()).unwrap();
    rustix::net::bind(&stream, &addr).unwrap();
    rustix::net::listen(&stream, 1).unwrap();
    let client = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::connect(&client, &addr).unwrap();
    assert_eq!(
        endpoint::accept_from(&stream, None, None, true).err(),
        Some(Errno::PROTOTYPE)
    );
    assert!(
        rustix::net::accept(&stream).is_ok(),
        "the client still waits"
    );
    let tcp = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let local = rustix::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    rustix::net::bind(&tcp, &local).unwrap();
    rustix::net::listen(&tcp, 1).unwrap();
    let port = rustix::net::SocketAddrV4::try_from(rustix::net::getsockname(&tcp).unwrap())
        .expect("an IPv4 address");
    let peer = std::net::TcpStream::connect(("127.0.0.1", port.port())).unwrap();
    assert_eq!(
        endpoint::accept_from(&tcp, None, None, true).err(),
        Some(Errno::PROTOTYPE),
        "a network peer is no local user to admit"
    );
    drop(peer);
}
