//! One process serving many clients at once, each over its own pair of
//! channels (requests in, replies out), all waited on in one `epoll_wait`
//! through each request channel's readiness fd, together with a pipe: the
//! "self-pipe" on which a `SIGCHLD` handler writes, so that reaping the
//! children is an event like the others.
//!
//! The rule that makes a channel's fd work with epoll, level- or
//! edge-triggered: when epoll says it is readable, call `try_recv` until it
//! fails with `EAGAIN`, which arms the fd again. A client that dies is
//! noticed the same way: its fd turns readable, and `try_recv` returns 0
//! once every request it sent has been read.
//!
//! Clients are forked, or started separately: they connect to the server's
//! name and are handed their two channels over the connection.
//!
//! ```text
//! cargo run --example chan_server -- 64 200 8        # 64 forked clients, 200 requests each, 8 killed
//! cargo run --example chan_server -- 0 0 0 NAME 3    # serve 3 clients started separately, then stop
//! cargo run --example chan_server -- client NAME 200 # one of them
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use rawipc::chan::{Channel, Receiver, Sender, handover};
use rawipc::endpoint::{self, Listener};
use rawipc::pipe::{self, ReadEnd, WriteEnd};
use rawipc::process::{self, Fork, Pid, Status, WaitOptions};
use rawipc::{AsFd, AsRawFd, Errno, msg};
use rustix::event::epoll;

/// Each channel's ring: room for a request or a reply in flight, and more.
pub const RING: usize = 4096;
/// The most bytes a request carries after its two numbers.
pub const PAYLOAD_MAX: usize = 200;
/// epoll's data for the self-pipe and the listener; clients are 0, 1, ...
const EV_PIPE: u64 = u64::MAX;
const EV_LISTENER: u64 = u64::MAX - 1;

/// Request `seq` of client `client`: the two numbers, then bytes that depend
/// on both. Returns its length.
pub fn request(client: u32, seq: u32, out: &mut [u8; 8 + PAYLOAD_MAX]) -> usize {
    let len = ((client * 31 + seq * 7) as usize) % PAYLOAD_MAX + 1;
    out[..4].copy_from_slice(&client.to_ne_bytes());
    out[4..8].copy_from_slice(&seq.to_ne_bytes());
    for (i, b) in out[8..8 + len].iter_mut().enumerate() {
        *b = client.wrapping_add(seq.wrapping_mul(i as u32)) as u8;
    }
    8 + len
}

/// The reply to a request: its two numbers and a sum of its bytes.
pub fn reply(request: &[u8]) -> Option<[u8; 12]> {
    let (head, bytes) = request.split_at_checked(8)?;
    let mut r = [0u8; 12];
    r[..8].copy_from_slice(head);
    let sum = bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_mul(33).wrapping_add(u32::from(b)));
    r[8..].copy_from_slice(&sum.to_ne_bytes());
    Some(r)
}

/// A client's whole life: `count` requests, each answered before the next,
/// with a pause now and then so that the server often finds nothing and
/// waits. The exit code: 0 if every reply was right, 1 for a wrong one, 2 if
/// a call failed, 3 if the server is gone.
pub fn run_client(tx: &mut Sender, rx: &mut Receiver, id: u32, count: u32) -> i32 {
    let mut req = [0u8; 8 + PAYLOAD_MAX];
    let mut got = [0u8; 64];
    let mut seed = u64::from(id) * 0x9e37_79b9 + 1;
    for seq in 0..count {
        let len = request(id, seq, &mut req);
        if tx.send(&req[..len]).is_err() {
            return 2;
        }
        match rx.recv(&mut got) {
            Ok(0) => return 3,
            Ok(12) if reply(&req[..len]).is_some_and(|r| r == got[..12]) => {}
            Ok(_) => return 1,
            Err(_) => return 2,
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed % 4 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(seed % 500));
        }
    }
    0
}

/// What to serve.
pub struct Options {
    /// Clients to fork, and the requests each sends.
    pub forked: u32,
    pub count: u32,
    /// Forked clients to kill with SIGKILL, each at a random moment.
    pub kills: u32,
    /// A name to serve clients started separately under, and how many of
    /// them to serve before stopping.
    pub name: Option<String>,
    pub separate: u32,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    /// Forked clients that got all their replies and exited 0.
    pub finished: u32,
    /// Forked clients killed, each noticed as gone and reaped as killed.
    pub killed_noticed: u32,
    /// Clients started separately that came and went.
    pub separate_gone: u32,
    pub replies: u64,
    /// Forked clients neither finished nor killed and noticed.
    pub failed: u32,
}

struct Client {
    /// The receiving end of its requests, the sending end of its replies.
    req: Receiver,
    rep: Sender,
    /// A forked client's pid, its status once reaped.
    pid: Option<Pid>,
    status: Option<Status>,
    answered: u32,
    kill_at: Option<u32>,
    killed: bool,
    open: bool,
}

/// The self-pipe's write end, for the signal handler.
static SIG_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    // SAFETY: write(2) is async-signal-safe; errno is saved and restored.
    unsafe {
        let saved = *libc::__errno_location();
        let _ = libc::write(SIG_PIPE.load(Ordering::Relaxed), [1u8].as_ptr().cast(), 1);
        *libc::__errno_location() = saved;
    }
}

/// Routes SIGCHLD to the write end of a non-blocking pipe.
fn self_pipe() -> rawipc::Result<(ReadEnd, WriteEnd)> {
    let (r, w) = pipe::pipe()?;
    for fd in [r.as_fd(), w.as_fd()] {
        rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK)?;
    }
    SIG_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    // SAFETY: a handler that only writes to a pipe; the sigaction is complete.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) == -1 {
            return Err(Errno::INVAL);
        }
    }
    Ok((r, w))
}

/// A tiny xorshift: random victims and moments without a dependency.
fn random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

pub fn serve(opts: &Options) -> rawipc::Result<Report> {
    let (sig_r, sig_w) = self_pipe()?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    watch(&ep, &sig_r, EV_PIPE)?;
    let listener = match &opts.name {
        Some(name) => Some(endpoint::listen(name)?),
        None => None,
    };
    if let Some(l) = &listener {
        watch(&ep, l, EV_LISTENER)?;
    }

    // The victims, each with the number of replies after which it dies.
    let mut seed = 0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id());
    let mut kill_at = vec![None; opts.forked as usize];
    let mut chosen = 0;
    while chosen < opts.kills.min(opts.forked) {
        let v = (random(&mut seed) % u64::from(opts.forked)) as usize;
        if kill_at[v].is_none() {
            kill_at[v] = Some((random(&mut seed) % u64::from(opts.count.max(1))) as u32);
            chosen += 1;
        }
    }

    let mut clients: Vec<Client> = Vec::new();
    for id in 0..opts.forked {
        let requests = Channel::new(RING)?;
        let replies = Channel::new(RING)?;
        // SAFETY: this program has a single thread.
        match unsafe { process::fork()? } {
            Fork::Child => {
                // Keep only this client's ends: another client's death, or
                // the server's, must be seen as it happens.
                drop((clients, ep, listener, sig_r, sig_w));
                let (mut tx, mut rx) = (requests.into_sender(), replies.into_receiver());
                process::exit(run_client(&mut tx, &mut rx, id, opts.count));
            }
            Fork::Parent(pid) => {
                let c = Client {
                    req: requests.into_receiver(),
                    rep: replies.into_sender(),
                    pid: Some(pid),
                    status: None,
                    answered: 0,
                    kill_at: kill_at[id as usize],
                    killed: false,
                    open: true,
                };
                watch(&ep, &c.req, u64::from(id))?;
                clients.push(c);
            }
        }
    }
    for c in clients.iter_mut().filter(|c| c.kill_at == Some(0)) {
        c.killed = kill(c.pid);
    }

    let mut report = Report::default();
    let mut events = Vec::with_capacity(64);
    loop {
        let forked_done = clients
            .iter()
            .filter(|c| c.pid.is_some())
            .all(|c| !c.open && c.status.is_some());
        if forked_done && report.separate_gone >= opts.separate {
            break;
        }
        events.clear();
        rustix::io::retry_on_intr(|| {
            epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None)
        })?;
        for ev in &events {
            match ev.data.u64() {
                EV_PIPE => {
                    while rawipc::pipe::read(&sig_r, &mut [0u8; 64]).is_ok_and(|n| n > 0) {}
                    reap(&mut clients)?;
                }
                EV_LISTENER => {
                    if let Some(l) = &listener {
                        if let Some(c) = accept(l, clients.len() as u32) {
                            watch(&ep, &c.req, clients.len() as u64)?;
                            clients.push(c);
                        }
                    }
                }
                id => {
                    let c = &mut clients[id as usize];
                    if c.open && serve_client(c, &mut report.replies) {
                        epoll::delete(&ep, &c.req)?;
                        c.open = false;
                        if c.pid.is_none() {
                            report.separate_gone += 1;
                        }
                        println!(
                            "client {id}{}: {} after {} replies",
                            if c.pid.is_none() {
                                " (started separately)"
                            } else {
                                ""
                            },
                            if c.killed { "killed, noticed" } else { "gone" },
                            c.answered
                        );
                    }
                }
            }
        }
    }
    for c in clients.iter().filter(|c| c.pid.is_some()) {
        match c.status {
            Some(Status::Killed { signal: 9, .. }) if c.killed => report.killed_noticed += 1,
            Some(Status::Exited(0)) if !c.killed && c.answered == opts.count => {
                report.finished += 1
            }
            _ => report.failed += 1,
        }
    }
    Ok(report)
}

/// Adds `fd` to the epoll set, level-triggered, with `data`.
fn watch(ep: &impl AsFd, fd: &impl AsFd, data: u64) -> rawipc::Result<()> {
    epoll::add(
        ep,
        fd,
        epoll::EventData::new_u64(data),
        epoll::EventFlags::IN,
    )
}

fn kill(pid: Option<Pid>) -> bool {
    pid.is_some_and(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok())
}

/// Answers every request waiting on `c`'s channel until `EAGAIN` (which
/// arms its fd for the next `epoll_wait`). Returns true when the client is
/// gone (or misbehaves, and is dropped).
fn serve_client(c: &mut Client, replies: &mut u64) -> bool {
    let mut buf = [0u8; 8 + PAYLOAD_MAX];
    loop {
        let n = match c.req.try_recv(&mut buf) {
            Err(Errno::AGAIN) => return false, // nothing more: wait again
            Ok(0) => return true,              // every request read, the client gone
            Ok(n) => n,
            Err(_) => return true, // too large (EMSGSIZE), a corrupt ring (EPROTO)
        };
        let Some(answer) = reply(&buf[..n]) else {
            return true;
        };
        // Never wait on one client: it has room for a reply unless it sends
        // requests without reading their replies.
        match c.rep.try_send(&answer) {
            Ok(()) => {}
            Err(Errno::PIPE) => continue, // gone: noticed on the request channel
            Err(_) => return true,
        }
        c.answered += 1;
        *replies += 1;
        if c.kill_at == Some(c.answered) {
            c.killed = kill(c.pid);
        }
    }
}

/// A client started separately has connected: hands it its two channels
/// and its number.
fn accept(listener: &Listener, id: u32) -> Option<Client> {
    let conn = listener
        .accept()
        .map_err(|e| eprintln!("accept: {e}"))
        .ok()?;
    let req = handover::give_sender(&conn, RING).ok()?;
    let rep = handover::give_receiver(&conn, RING).ok()?;
    msg::send(&conn, &id.to_ne_bytes()).ok()?;
    if let Ok(cred) = endpoint::peer_cred(&conn) {
        println!(
            "client {id} (started separately, pid {}) connected",
            cred.pid
        );
    }
    Some(Client {
        req,
        rep,
        pid: None,
        status: None,
        answered: 0,
        kill_at: None,
        killed: false,
        open: true,
    })
}

/// Reaps the children that have ended.
fn reap(clients: &mut [Client]) -> rawipc::Result<()> {
    for c in clients.iter_mut().filter(|c| c.status.is_none()) {
        if let Some(pid) = c.pid {
            if let Some((_, status)) = process::waitpid(pid, WaitOptions::NOHANG)? {
                c.status = Some(status);
            }
        }
    }
    Ok(())
}

/// A client started separately: connects to `name` (waiting up to 5 s for
/// a server to listen there) and takes its two channels and its number.
pub fn connect(name: &str) -> rawipc::Result<(Sender, Receiver, u32)> {
    let mut tries = 0;
    let conn = loop {
        match endpoint::connect(name) {
            Err(Errno::CONNREFUSED) if tries < 500 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let tx = handover::take_sender(&conn)?;
    let rx = handover::take_receiver(&conn)?;
    let mut id = [0u8; 4];
    if msg::recv(&conn, &mut id)? != 4 {
        return Err(Errno::PROTO);
    }
    // The channels are all it needs now: `conn` is closed here.
    Ok((tx, rx, u32::from_ne_bytes(id)))
}

/// The whole life of a client started separately: its exit code.
pub fn client(name: &str, count: u32) -> i32 {
    match connect(name) {
        Ok((mut tx, mut rx, id)) => run_client(&mut tx, &mut rx, id, count),
        Err(e) => {
            eprintln!("client: {e}");
            2
        }
    }
}

#[allow(dead_code)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|s| s.parse().ok());
    if args.first().map(String::as_str) == Some("client") {
        let (Some(name), Some(count)) = (args.get(1), num(2)) else {
            eprintln!("usage: chan_server client NAME COUNT");
            return ExitCode::FAILURE;
        };
        return ExitCode::from(client(name, count) as u8);
    }
    let opts = Options {
        forked: num(0).unwrap_or(8),
        count: num(1).unwrap_or(100),
        kills: num(2).unwrap_or(2),
        name: args.get(3).cloned(),
        separate: num(4).unwrap_or(0),
    };
    match serve(&opts) {
        Ok(r) => {
            println!("{r:?}");
            std::io::stdout().flush().ok();
            if r.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chan_server: {e}");
            ExitCode::FAILURE
        }
    }
}
