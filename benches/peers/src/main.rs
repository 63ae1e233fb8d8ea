//! rawipc against the libraries users would pick instead, and plain C, in one
//! run: `cargo run --release --manifest-path benches/peers/Cargo.toml`.
//!
//! Every mechanism moves messages of each size of a sweep (8 B to 4 MiB)
//! between this process, pinned to one CPU, and a forked child pinned to
//! another: round trips (the parent sends, the child sends the same number
//! of bytes back; ns per round trip) and throughput (the child sends, the
//! parent receives; GB/s). The C references are `benches/c/ipc_ref.c`,
//! compiled once per size (`-DMSG=n -DCHUNK=n`) and run as subprocesses.
//!
//! Rounds are interleaved: each round runs every mechanism once at every
//! size, in the other order every other round, so that drift and noise fall
//! on all alike. A figure is the median over rounds; a ratio is the median
//! over rounds of the ratio of two runs of the same round.
//!
//! Environment: `RAWIPC_PEERS_ROUNDS` (default 10), `RAWIPC_PEERS_SCALE`
//! (multiplies every run's length; default 1.0, 0.05 for a quick check),
//! `RAWIPC_PEERS_SIZES` (comma-separated bytes, default the sweep),
//! `RAWIPC_PEERS_ONLY` (comma-separated parts of mechanism names, default all),
//! `RAWIPC_BENCH_CPUS=a,b` (the two CPUs; `none`: no pinning).
//!
//! Writes `peers.csv`, `peers-rtt.svg` and `peers-throughput.svg` into
//! `target/bench/` of the rawipc checkout (under `CARGO_TARGET_DIR` if set).

use std::error::Error;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use rawipc::call::Call;
use rawipc::chan::Channel;
use rawipc::msg;
use rawipc::pipe::{self, SpliceWriter};
use rawipc::process::{self, Fork, Pid, WaitOptions};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

type Res<T> = Result<T, Box<dyn Error>>;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// The sweep: 8 B to 4 MiB, a factor of 8 apart (and 64 KiB and 1 MiB, the
/// sizes the README quotes).
const SIZES: &[usize] = &[
    8,
    64,
    512,
    4 * KIB,
    32 * KIB,
    64 * KIB,
    256 * KIB,
    MIB,
    4 * MIB,
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Metric {
    Rtt,
    Throughput,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Rtt => "rtt",
            Metric::Throughput => "throughput",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Metric::Rtt => "ns",
            Metric::Throughput => "GB/s",
        }
    }
    /// Whether `a` is better than `b`.
    fn better(self, a: f64, b: f64) -> bool {
        match self {
            Metric::Rtt => a < b,
            Metric::Throughput => a > b,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lib {
    C,
    Rawipc,
    IpcChannel,
    Interprocess,
    Iceoryx2,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::C => "C",
            Lib::Rawipc => "rawipc",
            Lib::IpcChannel => "ipc-channel",
            Lib::Interprocess => "interprocess",
            Lib::Iceoryx2 => "iceoryx2",
        }
    }
    fn is_peer(self) -> bool {
        matches!(self, Lib::IpcChannel | Lib::Interprocess | Lib::Iceoryx2)
    }
}

/// How a mechanism runs: a C reference mode, or a Rust function.
#[derive(Clone, Copy)]
enum Run {
    /// `ipc_ref MODE COUNT` (COUNT: round trips, or MiB moved).
    C(&'static str),
    Rust(fn(usize, u64) -> Res<f64>),
}

struct Mech {
    name: &'static str,
    lib: Lib,
    metric: Metric,
    /// The largest message it takes (0: no limit in the sweep).
    max: usize,
    /// Round trips: whether it waits in the kernel (fewer round trips per run).
    sleeps: bool,
    /// The C reference it is compared with (a `name` of this table).
    c_ref: &'static str,
    run: Run,
}

const fn mech(
    name: &'static str,
    lib: Lib,
    metric: Metric,
    max: usize,
    sleeps: bool,
    c_ref: &'static str,
    run: Run,
) -> Mech {
    Mech {
        name,
        lib,
        metric,
        max,
        sleeps,
        c_ref,
        run,
    }
}

/// SOCK_SEQPACKET messages stop at the socket's send buffer (~208 KiB): the
/// C socket's limit (rawipc's `msg` carries larger ones in a sealed memfd).
const SEQPACKET_MAX: usize = 128 * KIB;

use Lib::*;
use Metric::*;

const MECHS: &[Mech] = &[
    // Round trips.
    mech("C spin, one line", C, Rtt, 0, false, "", Run::C("spin-rtt")),
    mech("C pipe", C, Rtt, 0, true, "", Run::C("pipe-rtt")),
    mech(
        "C socket (seqpacket)",
        C,
        Rtt,
        SEQPACKET_MAX,
        true,
        "",
        Run::C("socket-rtt"),
    ),
    mech(
        "rawipc call",
        Rawipc,
        Rtt,
        rawipc::call::MAX_MESSAGE,
        false,
        "C spin, one line",
        Run::Rust(rtt_call),
    ),
    mech(
        "rawipc chan",
        Rawipc,
        Rtt,
        0,
        false,
        "C spin, one line",
        Run::Rust(rtt_chan),
    ),
    mech(
        "rawipc msg",
        Rawipc,
        Rtt,
        0,
        true,
        "C socket (seqpacket)",
        Run::Rust(rtt_msg),
    ),
    mech(
        "rawipc pipe",
        Rawipc,
        Rtt,
        0,
        true,
        "C pipe",
        Run::Rust(rtt_pipe),
    ),
    mech(
        "ipc-channel bytes",
        IpcChannel,
        Rtt,
        0,
        true,
        "C socket (seqpacket)",
        Run::Rust(rtt_ipc_channel),
    ),
    mech(
        "interprocess local socket",
        Interprocess,
        Rtt,
        0,
        true,
        "C socket (seqpacket)",
        Run::Rust(rtt_interprocess),
    ),
    mech(
        "iceoryx2 pub-sub, busy-wait",
        Iceoryx2,
        Rtt,
        0,
        false,
        "C spin, one line",
        Run::Rust(rtt_iceoryx2),
    ),
    // Throughput.
    mech("C pipe", C, Throughput, 0, false, "", Run::C("pipe-tput")),
    mech(
        "C ring, 16 slots",
        C,
        Throughput,
        0,
        false,
        "",
        Run::C("ring-tput"),
    ),
    mech(
        "rawipc pipe",
        Rawipc,
        Throughput,
        0,
        false,
        "C pipe",
        Run::Rust(tput_pipe),
    ),
    mech(
        "rawipc pipe, vmsplice",
        Rawipc,
        Throughput,
        0,
        false,
        "C pipe",
        Run::Rust(tput_splice),
    ),
    mech(
        "rawipc chan",
        Rawipc,
        Throughput,
        0,
        false,
        "C ring, 16 slots",
        Run::Rust(tput_chan),
    ),
    mech(
        "rawipc chan zero-copy",
        Rawipc,
        Throughput,
        0,
        false,
        "C ring, 16 slots",
        Run::Rust(tput_chan_zero_copy),
    ),
    mech(
        "rawipc msg",
        Rawipc,
        Throughput,
        0,
        false,
        "C pipe",
        Run::Rust(tput_msg),
    ),
    mech(
        "ipc-channel bytes",
        IpcChannel,
        Throughput,
        0,
        false,
        "C pipe",
        Run::Rust(tput_ipc_channel),
    ),
    mech(
        "interprocess local socket",
        Interprocess,
        Throughput,
        0,
        false,
        "C pipe",
        Run::Rust(tput_interprocess),
    ),
    mech(
        "iceoryx2 pub-sub, copy",
        Iceoryx2,
        Throughput,
        0,
        false,
        "C ring, 16 slots",
        Run::Rust(tput_iceoryx2),
    ),
];

// ---- settings ----

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn scale() -> f64 {
    static S: OnceLock<f64> = OnceLock::new();
    *S.get_or_init(|| env_or("RAWIPC_PEERS_SCALE", 1.0f64).max(1e-4))
}

fn sizes() -> Vec<usize> {
    match std::env::var("RAWIPC_PEERS_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("RAWIPC_PEERS_SIZES: bytes, comma-separated")
            })
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

/// Round trips per run at `size`: fewer for large messages (a budget of
/// bytes) and for mechanisms that sleep in the kernel. Spinning ones run
/// 50 000 (~6 ms at 8 B): in runs of 20 000 the vCPUs' moves between host
/// cores made an 8-byte ratio swing by 15% from one run of the bench to
/// the next.
fn rtt_count(size: usize, sleeps: bool) -> u64 {
    let base: f64 = if sleeps { 2_000.0 } else { 50_000.0 };
    let by_bytes = (256 * MIB) as f64 / size as f64;
    ((base.min(by_bytes) * scale()) as u64).max(10)
}

/// MiB moved per run at `size`: about 100 000 messages, between 1 MiB and
/// 256 MiB, rounded so that the C side's warm-up (an eighth) is whole
/// messages.
fn tput_mib(size: usize) -> u64 {
    let want = ((size as f64 * 100_000.0).clamp(MIB as f64, (256 * MIB) as f64) * scale()) as u64;
    let step = ((8 * size) as u64 / MIB as u64).max(1);
    let mib = want.div_ceil(MIB as u64).max(1);
    mib.div_ceil(step) * step
}

// ---- processes ----

fn bench_cpus() -> Option<(usize, usize)> {
    static CPUS: OnceLock<Option<(usize, usize)>> = OnceLock::new();
    *CPUS.get_or_init(|| match std::env::var("RAWIPC_BENCH_CPUS") {
        Ok(v) if v == "none" => None,
        Ok(v) => {
            let (a, b) = v.split_once(',').expect("RAWIPC_BENCH_CPUS=a,b or none");
            Some((
                a.trim().parse().expect("a CPU"),
                b.trim().parse().expect("a CPU"),
            ))
        }
        Err(_) => {
            let allowed = sched_getaffinity(None).ok()?;
            let mut cpus = (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c));
            Some((cpus.next()?, cpus.next()?))
        }
    })
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// Forks: the child's pid in the parent; `None` in the child, which runs
/// pinned to the second CPU and ends with [`child_done`].
fn forked() -> Option<Pid> {
    // SAFETY: the bench is single-threaded.
    match unsafe { process::fork() }.expect("fork") {
        Fork::Child => {
            if let Some((_, cpu)) = bench_cpus() {
                pin(cpu);
            }
            None
        }
        Fork::Parent(pid) => Some(pid),
    }
}

/// The child's end: `_exit`, 1 if its work failed.
fn child_done(r: Res<()>) -> ! {
    if let Err(e) = &r {
        eprintln!("child: {e}");
    }
    process::exit(if r.is_ok() { 0 } else { 1 })
}

fn reap(pid: Pid) -> Res<()> {
    let (_, status) = process::waitpid(pid, WaitOptions::empty())?.ok_or("no status")?;
    match status {
        process::Status::Exited(0) => Ok(()),
        s => Err(format!("child ended with {s:?}").into()),
    }
}

/// Times `iters` round trips after a warm-up of a tenth; ns per round trip.
fn time_rtt(iters: u64, mut once: impl FnMut() -> Res<()>) -> Res<f64> {
    for _ in 0..iters / 10 {
        once()?;
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        once()?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / iters as f64)
}

/// The child side's count: warm-up and timed round trips.
fn with_warmup(iters: u64) -> u64 {
    iters + iters / 10
}

fn message(size: usize) -> Vec<u8> {
    (0..size).map(|k| k as u8).collect()
}

/// A unique name for this run's named things.
fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("rawipc-peers-{}-{what}-{n}", std::process::id())
}

// ---- rawipc, round trips ----

/// A channel ring for messages of up to `size` by the README's rule: four
/// of them, rounded up to a power of two, at least `min`.
fn ring_for(size: usize, min: usize) -> usize {
    (4 * size).next_power_of_two().max(min)
}

fn rtt_call(size: usize, iters: u64) -> Res<f64> {
    let call = Call::new(size.max(rawipc::call::LINE_MESSAGE))?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let mut server = call.into_server();
            let mut buf = vec![0u8; size];
            loop {
                let n = server.recv(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf[0] = buf[0].wrapping_add(1);
                server.reply(&buf[..n])?;
            }
        })())
    };
    let mut client = call.into_client();
    // One buffer for the request and its reply, as the C reference's.
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        client.call_in_place(&mut buf, size)?;
        Ok(())
    })?;
    drop(client);
    reap(child)?;
    Ok(ns)
}

fn rtt_chan(size: usize, iters: u64) -> Res<f64> {
    let (there, back) = (
        Channel::new(ring_for(size, 4 * KIB))?,
        Channel::new(ring_for(size, 4 * KIB))?,
    );
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let (mut rx, mut tx) = (there.into_receiver(), back.into_sender());
            let mut buf = vec![0u8; size];
            for _ in 0..with_warmup(iters) {
                let n = rx.recv(&mut buf)?;
                buf[0] = buf[0].wrapping_add(1);
                tx.send(&buf[..n])?;
            }
            Ok(())
        })())
    };
    let (mut tx, mut rx) = (there.into_sender(), back.into_receiver());
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        tx.send(&buf)?;
        rx.recv(&mut buf)?;
        Ok(())
    })?;
    reap(child)?;
    Ok(ns)
}

fn rtt_msg(size: usize, iters: u64) -> Res<f64> {
    let (a, b) = msg::socketpair()?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop(a);
            let mut buf = vec![0u8; size];
            for _ in 0..with_warmup(iters) {
                let n = b.recv(&mut buf)?;
                buf[0] = buf[0].wrapping_add(1);
                b.send(&buf[..n])?;
            }
            Ok(())
        })())
    };
    drop(b);
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        a.send(&buf)?;
        a.recv(&mut buf)?;
        Ok(())
    })?;
    reap(child)?;
    Ok(ns)
}

fn rtt_pipe(size: usize, iters: u64) -> Res<f64> {
    let (to_child_r, to_child_w) = pipe::pipe()?;
    let (to_parent_r, to_parent_w) = pipe::pipe()?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop((to_child_w, to_parent_r));
            let mut buf = vec![0u8; size];
            for _ in 0..with_warmup(iters) {
                to_child_r.read_full(&mut buf)?;
                buf[0] = buf[0].wrapping_add(1);
                to_parent_w.write_all(&buf).map_err(|e| e.errno)?;
            }
            Ok(())
        })())
    };
    drop((to_child_r, to_parent_w));
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        to_child_w.write_all(&buf).map_err(|e| e.errno)?;
        to_parent_r.read_full(&mut buf)?;
        Ok(())
    })?;
    reap(child)?;
    Ok(ns)
}

// ---- peers, round trips ----

fn rtt_ipc_channel(size: usize, iters: u64) -> Res<f64> {
    let (there_tx, there_rx) = ipc_channel::ipc::bytes_channel()?;
    let (back_tx, back_rx) = ipc_channel::ipc::bytes_channel()?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            for _ in 0..with_warmup(iters) {
                let mut m = there_rx.recv().map_err(|e| format!("{e:?}"))?;
                m[0] = m[0].wrapping_add(1);
                back_tx.send(&m)?;
            }
            Ok(())
        })())
    };
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        there_tx.send(&buf)?;
        buf = back_rx.recv().map_err(|e| format!("{e:?}"))?;
        Ok(())
    })?;
    reap(child)?;
    Ok(ns)
}

/// A listening local socket on an abstract name, made before fork, and the
/// name for the child to connect to.
fn local_socket() -> Res<(interprocess::local_socket::Listener, String)> {
    use interprocess::local_socket::{GenericNamespaced, ListenerOptions, prelude::*};
    let name = unique("sock");
    let listener = ListenerOptions::new()
        .name(name.as_str().to_ns_name::<GenericNamespaced>()?)
        .create_sync()?;
    Ok((listener, name))
}

fn connect(name: &str) -> Res<interprocess::local_socket::Stream> {
    use interprocess::local_socket::{GenericNamespaced, Stream, prelude::*};
    Ok(Stream::connect(name.to_ns_name::<GenericNamespaced>()?)?)
}

fn rtt_interprocess(size: usize, iters: u64) -> Res<f64> {
    use interprocess::local_socket::prelude::*;
    let (listener, name) = local_socket()?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop(listener);
            let mut s = connect(&name)?;
            let mut buf = vec![0u8; size];
            for _ in 0..with_warmup(iters) {
                s.read_exact(&mut buf)?;
                buf[0] = buf[0].wrapping_add(1);
                s.write_all(&buf)?;
            }
            Ok(())
        })())
    };
    let mut s = listener.accept()?;
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        Ok(())
    })?;
    reap(child)?;
    Ok(ns)
}

mod ice {
    //! iceoryx2 in the setup of its own benchmarks: one publisher, one
    //! subscriber, history 0, a subscriber buffer of 1 (round trips) or 16
    //! (throughput), loaned slices, busy-waiting on `receive`; nodes, services
    //! and ports made after fork in each process.
    use super::Res;
    use iceoryx2::port::update_connections::UpdateConnections;
    use iceoryx2::prelude::*;

    pub type Pub = iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>;
    pub type Sub = iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>;

    fn e(x: impl core::fmt::Debug) -> Box<dyn std::error::Error> {
        format!("iceoryx2: {x:?}").into()
    }

    pub fn node() -> Res<Node<ipc::Service>> {
        set_log_level(LogLevel::Error);
        NodeBuilder::new().create::<ipc::Service>().map_err(e)
    }

    fn service(
        node: &Node<ipc::Service>,
        name: &str,
        buffer: usize,
    ) -> Res<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>>
    {
        let name: ServiceName = name.try_into().map_err(e)?;
        node.service_builder(&name)
            .publish_subscribe::<[u8]>()
            .history_size(0)
            .subscriber_max_buffer_size(buffer)
            .enable_safe_overflow(false)
            .max_publishers(1)
            .max_subscribers(1)
            .open_or_create()
            .map_err(e)
    }

    pub fn publisher(
        node: &Node<ipc::Service>,
        name: &str,
        size: usize,
        buffer: usize,
    ) -> Res<Pub> {
        service(node, name, buffer)?
            .publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(e)
    }

    pub fn subscriber(node: &Node<ipc::Service>, name: &str, buffer: usize) -> Res<Sub> {
        service(node, name, buffer)?
            .subscriber_builder()
            .buffer_size(buffer)
            .create()
            .map_err(e)
    }

    pub fn connect(p: &Pub, s: &Sub) -> Res<()> {
        s.update_connections().map_err(e)?;
        p.update_connections().map_err(e)?;
        Ok(())
    }

    pub fn send(p: &Pub, data: &[u8]) -> Res<()> {
        let sample = p.loan_slice_uninit(data.len()).map_err(e)?;
        sample.write_from_slice(data).send().map_err(e)?;
        Ok(())
    }

    /// Busy-waits for a sample and copies it into `buf`; its length.
    pub fn recv(s: &Sub, buf: &mut [u8]) -> Res<usize> {
        loop {
            if let Some(sample) = s.receive().map_err(e)? {
                let p = sample.payload();
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }

    /// Busy-waits for a sample and reads every byte of it in place.
    pub fn recv_in_place(s: &Sub) -> Res<u64> {
        loop {
            if let Some(sample) = s.receive().map_err(e)? {
                return Ok(super::sum(sample.payload()));
            }
            core::hint::spin_loop();
        }
    }
}

/// A one-byte handshake over a pair of pipes, both ways.
struct Handshake {
    to_child: (pipe::ReadEnd, pipe::WriteEnd),
    to_parent: (pipe::ReadEnd, pipe::WriteEnd),
}

impl Handshake {
    fn new() -> Res<Self> {
        Ok(Self {
            to_child: pipe::pipe()?,
            to_parent: pipe::pipe()?,
        })
    }
    fn child(&self) -> Res<()> {
        self.to_parent.1.write_all(b"x").map_err(|e| e.errno)?;
        self.to_child.0.read_full(&mut [0])?;
        Ok(())
    }
    fn parent(&self) -> Res<()> {
        self.to_parent.0.read_full(&mut [0])?;
        self.to_child.1.write_all(b"x").map_err(|e| e.errno)?;
        Ok(())
    }
}

fn rtt_iceoryx2(size: usize, iters: u64) -> Res<f64> {
    let (ping, pong) = (unique("ping"), unique("pong"));
    let hs = Handshake::new()?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let node = ice::node()?;
            let sub = ice::subscriber(&node, &ping, 1)?;
            let publ = ice::publisher(&node, &pong, size, 1)?;
            // Ports made on both sides, then connected on both sides.
            hs.child()?;
            ice::connect(&publ, &sub)?;
            hs.child()?;
            let mut buf = vec![0u8; size];
            for _ in 0..with_warmup(iters) {
                let n = ice::recv(&sub, &mut buf)?;
                buf[0] = buf[0].wrapping_add(1);
                ice::send(&publ, &buf[..n])?;
            }
            hs.child()?;
            Ok(())
        })())
    };
    let node = ice::node()?;
    let publ = ice::publisher(&node, &ping, size, 1)?;
    let sub = ice::subscriber(&node, &pong, 1)?;
    hs.parent()?;
    ice::connect(&publ, &sub)?;
    hs.parent()?;
    let mut buf = message(size);
    let ns = time_rtt(iters, || {
        ice::send(&publ, &buf)?;
        ice::recv(&sub, &mut buf)?;
        Ok(())
    })?;
    hs.parent()?;
    reap(child)?;
    Ok(ns)
}

// ---- throughput ----

/// GB/s of `total` bytes received by `recv_all` after a warm-up of an
/// eighth, which it receives first.
fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

/// Reads every byte of `buf`, so that a zero-copy receive costs what using
/// the data costs.
fn sum(buf: &[u8]) -> u64 {
    let words = buf.chunks_exact(8);
    let tail = words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>();
    words
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])))
        .fold(tail, u64::wrapping_add)
}

/// Messages per run, and of the warm-up, for `mib` MiB at `size`.
fn counts(size: usize, mib: u64) -> (u64, u64) {
    let n = (mib * MIB as u64 / size as u64).max(1);
    (n, n / 8)
}

fn tput_pipe(size: usize, mib: u64) -> Res<f64> {
    pipe_tput(size, mib, false)
}

fn tput_splice(size: usize, mib: u64) -> Res<f64> {
    pipe_tput(size, mib, true)
}

/// A pipe, child to parent: with `write_all` on a default pipe, or through
/// a `SpliceWriter` on a 1 MiB pipe. The reader reads `size`-byte blocks
/// (at least 64 KiB: what a reader of a byte stream does).
fn pipe_tput(size: usize, mib: u64, splice: bool) -> Res<f64> {
    let (rx, tx) = pipe::pipe()?;
    let (n, warm) = counts(size, mib);
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop(rx);
            let buf = message(size);
            if splice {
                let mut w = SpliceWriter::new(tx, MIB)?;
                for _ in 0..n + warm {
                    w.write_all(&buf).map_err(|e| e.errno)?;
                }
            } else {
                for _ in 0..n + warm {
                    tx.write_all(&buf).map_err(|e| e.errno)?;
                }
            }
            Ok(())
        })())
    };
    drop(tx);
    let mut buf = vec![0u8; size.max(64 * KIB)];
    let (warm_bytes, total) = (warm * size as u64, n * size as u64);
    let mut got = 0u64;
    while got < warm_bytes {
        let want = (warm_bytes - got).min(buf.len() as u64) as usize;
        got += rx.read(&mut buf[..want])? as u64;
    }
    let t0 = Instant::now();
    let mut got = 0u64;
    loop {
        match rx.read(&mut buf)? {
            0 => break,
            k => got += k as u64,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if got != total {
        return Err(format!("pipe: got {got} of {total} bytes").into());
    }
    reap(child)?;
    Ok(gbps(total, secs))
}

fn tput_chan(size: usize, mib: u64) -> Res<f64> {
    chan_tput(size, mib, false)
}

fn tput_chan_zero_copy(size: usize, mib: u64) -> Res<f64> {
    chan_tput(size, mib, true)
}

/// A channel sized by the README's rule (at least 1 MiB), child to parent.
fn chan_tput(size: usize, mib: u64, zero_copy: bool) -> Res<f64> {
    let chan = Channel::new(ring_for(size, MIB))?;
    let (n, warm) = counts(size, mib);
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let mut tx = chan.into_sender();
            let buf = message(size);
            for _ in 0..n + warm {
                if zero_copy {
                    let mut r = tx.reserve(size)?;
                    r[..size].fill(1);
                    r.commit(size)?;
                } else {
                    tx.send(&buf)?;
                }
            }
            Ok(())
        })())
    };
    let mut rx = chan.into_receiver();
    let mut buf = vec![0u8; size];
    let mut check = 0u64;
    let mut once = |rx: &mut rawipc::chan::Receiver| -> Res<()> {
        if zero_copy {
            let m = rx.recv_borrowed()?.ok_or("sender gone")?;
            check = check.wrapping_add(sum(&m));
        } else {
            rx.recv(&mut buf)?;
        }
        Ok(())
    };
    for _ in 0..warm {
        once(&mut rx)?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        once(&mut rx)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(check);
    reap(child)?;
    Ok(gbps(n * size as u64, secs))
}

fn tput_msg(size: usize, mib: u64) -> Res<f64> {
    let (a, b) = msg::socketpair()?;
    let (n, warm) = counts(size, mib);
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop(a);
            let buf = message(size);
            for _ in 0..n + warm {
                b.send(&buf)?;
            }
            Ok(())
        })())
    };
    drop(b);
    let mut buf = vec![0u8; size];
    for _ in 0..warm {
        a.recv(&mut buf)?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        a.recv(&mut buf)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    reap(child)?;
    Ok(gbps(n * size as u64, secs))
}

fn tput_ipc_channel(size: usize, mib: u64) -> Res<f64> {
    let (tx, rx) = ipc_channel::ipc::bytes_channel()?;
    let (n, warm) = counts(size, mib);
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let buf = message(size);
            for _ in 0..n + warm {
                tx.send(&buf)?;
            }
            Ok(())
        })())
    };
    let recv = || rx.recv().map_err(|e| format!("{e:?}"));
    for _ in 0..warm {
        recv()?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(recv()?);
    }
    let secs = t0.elapsed().as_secs_f64();
    reap(child)?;
    Ok(gbps(n * size as u64, secs))
}

fn tput_interprocess(size: usize, mib: u64) -> Res<f64> {
    use interprocess::local_socket::prelude::*;
    let (listener, name) = local_socket()?;
    let (n, warm) = counts(size, mib);
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            drop(listener);
            let mut s = connect(&name)?;
            let buf = message(size);
            for _ in 0..n + warm {
                s.write_all(&buf)?;
            }
            Ok(())
        })())
    };
    let mut s = listener.accept()?;
    let mut buf = vec![0u8; size];
    for _ in 0..warm {
        s.read_exact(&mut buf)?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        s.read_exact(&mut buf)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    reap(child)?;
    Ok(gbps(n * size as u64, secs))
}

fn tput_iceoryx2(size: usize, mib: u64) -> Res<f64> {
    let name = unique("tput");
    let (n, warm) = counts(size, mib);
    let hs = Handshake::new()?;
    let node = ice::node()?;
    let sub = ice::subscriber(&node, &name, 16)?;
    let Some(child) = forked() else {
        child_done((|| -> Res<()> {
            let node = ice::node()?;
            let publ = ice::publisher(&node, &name, size, 16)?;
            hs.child()?;
            publ.update_connections().map_err(|e| format!("{e:?}"))?;
            hs.child()?;
            let buf = message(size);
            for _ in 0..n + warm {
                ice::send(&publ, &buf)?;
            }
            hs.child()?;
            Ok(())
        })())
    };
    hs.parent()?;
    use iceoryx2::port::update_connections::UpdateConnections;
    sub.update_connections().map_err(|e| format!("{e:?}"))?;
    hs.parent()?;
    let mut buf = vec![0u8; size];
    for _ in 0..warm {
        ice::recv(&sub, &mut buf)?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        ice::recv(&sub, &mut buf)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    hs.parent()?;
    reap(child)?;
    let _ = ice::recv_in_place;
    Ok(gbps(n * size as u64, secs))
}

// ---- the C references ----

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("bench")
}

/// `ipc_ref` built for messages of `size` (`-DMSG=size -DCHUNK=size`).
fn c_program(size: usize) -> Res<PathBuf> {
    let out = out_dir().join(format!("ipc_ref-{size}"));
    if out.exists() {
        return Ok(out);
    }
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .opt_level(2)
        .debug(false)
        .host(&target)
        .target(&target)
        .cargo_metadata(false)
        .try_get_compiler()?;
    let status = compiler
        .to_command()
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg(format!("-DMSG={size}"))
        .arg(format!("-DCHUNK={size}"))
        .arg(root().join("benches/c/ipc_ref.c"))
        .arg("-o")
        .arg(&out)
        .status()?;
    if !status.success() {
        return Err(format!("compiling ipc_ref.c for {size} bytes failed").into());
    }
    Ok(out)
}

fn run_c(mode: &str, size: usize, count: u64) -> Res<f64> {
    let mut cmd = Command::new(c_program(size)?);
    cmd.arg(mode).arg(count.to_string());
    if let Some((a, b)) = bench_cpus() {
        cmd.arg(a.to_string()).arg(b.to_string());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "ipc_ref {mode} {count} ({size} B): {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

fn measure(m: &Mech, size: usize) -> Res<f64> {
    let count = match m.metric {
        Metric::Rtt => rtt_count(size, m.sleeps),
        Metric::Throughput => tput_mib(size),
    };
    match m.run {
        Run::C(mode) => run_c(mode, size, count),
        Run::Rust(f) => {
            // The parent on the first CPU, as the C side does it.
            if let Some((cpu, _)) = bench_cpus() {
                pin(cpu);
            }
            f(size, count)
        }
    }
}

// ---- statistics and output ----

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The runs of one mechanism at one size, by round (NaN: not run).
struct Row<'a> {
    mech: &'a Mech,
    size: usize,
    runs: Vec<f64>,
}

struct Summary {
    value: f64,
    vs_c: Option<(f64, &'static str)>,
    vs_best_peer: Option<(f64, &'static str)>,
}

fn summarize(rows: &[Row], i: usize) -> Summary {
    let row = &rows[i];
    let m = row.mech;
    let rounds = row.runs.len();
    let mut value: Vec<f64> = row.runs.iter().copied().filter(|v| v.is_finite()).collect();
    let same = |r: &&Row| r.size == row.size && r.mech.metric == m.metric;
    let vs_c = rows
        .iter()
        .filter(same)
        .find(|r| r.mech.lib == Lib::C && r.mech.name == m.c_ref)
        .and_then(|c| {
            let mut ratios: Vec<f64> = (0..rounds)
                .map(|k| row.runs[k] / c.runs[k])
                .filter(|x| x.is_finite())
                .collect();
            (!ratios.is_empty()).then(|| (median(&mut ratios), c.mech.name))
        });
    let peers: Vec<&Row> = rows
        .iter()
        .filter(same)
        .filter(|r| r.mech.lib.is_peer())
        .collect();
    let mut best_names = Vec::new();
    let mut ratios = Vec::new();
    for k in 0..rounds {
        let best =
            peers
                .iter()
                .filter(|p| p.runs[k].is_finite())
                .fold(None::<&Row>, |b, p| match b {
                    Some(b) if !m.metric.better(p.runs[k], b.runs[k]) => Some(b),
                    _ => Some(p),
                });
        if let Some(b) = best {
            let x = row.runs[k] / b.runs[k];
            if x.is_finite() {
                ratios.push(x);
                best_names.push(b.mech.name);
            }
        }
    }
    let vs_best_peer = (!ratios.is_empty()).then(|| {
        let mut names = best_names.clone();
        names.sort();
        let most = names
            .chunk_by(|a, b| a == b)
            .max_by_key(|c| c.len())
            .map(|c| c[0])
            .unwrap_or("");
        (median(&mut ratios), most)
    });
    Summary {
        value: median(&mut value),
        vs_c,
        vs_best_peer,
    }
}

fn size_label(size: usize) -> String {
    match size {
        s if s >= MIB && s % MIB == 0 => format!("{} MiB", s / MIB),
        s if s >= KIB && s % KIB == 0 => format!("{} KiB", s / KIB),
        s => format!("{s} B"),
    }
}

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#000000",
];

/// A log-log plot of one metric against size: a line per mechanism.
fn svg(rows: &[Row], sums: &[Summary], metric: Metric, title: &str) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 560.0, 70.0, 250.0, 40.0, 50.0);
    let pts: Vec<(usize, &Row, f64)> = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            r.mech.metric == metric && sums[*i].value.is_finite() && sums[*i].value > 0.0
        })
        .map(|(i, r)| (i, r, sums[i].value))
        .collect();
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(_, r, v) in &pts {
        let x = (r.size as f64).log10();
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(v.log10());
        ymax = ymax.max(v.log10());
    }
    if pts.is_empty() {
        (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
    }
    let (ymin, ymax) = (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0));
    let xmax = if xmax > xmin { xmax } else { xmin + 1.0 };
    let sx = |x: f64| left + (x - xmin) / (xmax - xmin) * (w - left - right);
    let sy = |y: f64| h - bottom - (y - ymin) / (ymax - ymin) * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15">{title}</text>"#
    );
    // Axes, decades and sizes.
    for d in (ymin as i32)..=(ymax as i32) {
        let y = sy(f64::from(d));
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            fmt_decade(d)
        );
    }
    let mut seen = Vec::new();
    for &(_, r, _) in &pts {
        if !seen.contains(&r.size) {
            seen.push(r.size);
            let x = sx((r.size as f64).log10());
            let _ = writeln!(
                s,
                r##"<line x1="{x}" x2="{x}" y1="{top}" y2="{}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                h - bottom,
                h - bottom + 16.0,
                size_label(r.size)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">message size (log)</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{} (log)</text>"#,
        (left + w - right) / 2.0,
        h - 12.0,
        h / 2.0,
        h / 2.0,
        metric.unit()
    );
    let mut names: Vec<&str> = Vec::new();
    for &(_, r, _) in &pts {
        if !names.contains(&r.mech.name) {
            names.push(r.mech.name);
        }
    }
    for (k, name) in names.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let line: Vec<String> = pts
            .iter()
            .filter(|(_, r, _)| r.mech.name == *name)
            .map(|&(_, r, v)| format!("{:.1},{:.1}", sx((r.size as f64).log10()), sy(v.log10())))
            .collect();
        let lib = pts
            .iter()
            .find(|(_, r, _)| r.mech.name == *name)
            .map(|p| p.1.mech.lib);
        let dash = match lib {
            Some(Lib::C) => r#" stroke-dasharray="5,4""#,
            Some(l) if l.is_peer() => r#" stroke-dasharray="2,2""#,
            _ => "",
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            line.join(" ")
        );
        let ly = top + 10.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{name}</text>"#,
            w - right + 10.0,
            w - right + 34.0,
            w - right + 40.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_decade(d: i32) -> String {
    let v = 10f64.powi(d);
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn main() -> Res<()> {
    let rounds: usize = env_or("RAWIPC_PEERS_ROUNDS", 10usize).max(1);
    let sizes = sizes();
    std::fs::create_dir_all(out_dir())?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "rawipc against its peers: {rounds} rounds, scale {}, sizes {:?}, CPUs {:?}, load {}",
        scale(),
        sizes,
        bench_cpus(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for &size in &sizes {
        c_program(size)?;
    }
    let only: Vec<String> = std::env::var("RAWIPC_PEERS_ONLY")
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let chosen = |m: &Mech| only.is_empty() || only.iter().any(|p| m.name.contains(p.as_str()));
    let mut rows: Vec<Row> = Vec::new();
    for &size in &sizes {
        for m in MECHS.iter().filter(|m| chosen(m)) {
            if m.max == 0 || size <= m.max {
                rows.push(Row {
                    mech: m,
                    size,
                    runs: vec![f64::NAN; rounds],
                });
            }
        }
    }
    let start = Instant::now();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for i in order {
            let (m, size) = (rows[i].mech, rows[i].size);
            match measure(m, size) {
                Ok(v) => rows[i].runs[round] = v,
                Err(e) => eprintln!(
                    "{} {} at {}: {e}",
                    m.name,
                    m.metric.name(),
                    size_label(size)
                ),
            }
        }
        println!(
            "round {} of {rounds} done after {:.0} s",
            round + 1,
            start.elapsed().as_secs_f64()
        );
    }
    let sums: Vec<Summary> = (0..rows.len()).map(|i| summarize(&rows, i)).collect();

    let mut csv = String::from(
        "mechanism,library,metric,unit,size,value,c_reference,ratio_to_c,best_peer,ratio_to_best_peer\n",
    );
    for (r, s) in rows.iter().zip(&sums) {
        let (rc, c) = s
            .vs_c
            .map_or((String::new(), ""), |(x, n)| (format!("{x:.3}"), n));
        let (rp, p) = s
            .vs_best_peer
            .map_or((String::new(), ""), |(x, n)| (format!("{x:.3}"), n));
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.3},{c},{rc},{p},{rp}",
            r.mech.name,
            r.mech.lib.name(),
            r.mech.metric.name(),
            r.mech.metric.unit(),
            r.size,
            s.value
        );
    }
    std::fs::write(out_dir().join("peers.csv"), &csv)?;
    std::fs::write(
        out_dir().join("peers-rtt.svg"),
        svg(
            &rows,
            &sums,
            Metric::Rtt,
            "Round trip, parent and child pinned (ns, lower is better)",
        ),
    )?;
    std::fs::write(
        out_dir().join("peers-throughput.svg"),
        svg(
            &rows,
            &sums,
            Metric::Throughput,
            "Throughput, child to parent (GB/s, higher is better)",
        ),
    )?;

    println!(
        "\n{:<30} {:>6} {:>8} {:>12} {:>10} {:>10}",
        "mechanism", "metric", "size", "median", "vs C", "vs best peer"
    );
    for (r, s) in rows.iter().zip(&sums) {
        let f = |x: Option<(f64, &str)>| x.map_or("".into(), |(x, _)| format!("{x:.2}"));
        println!(
            "{:<30} {:>6} {:>8} {:>9.2} {:<4} {:>8} {:>10}",
            r.mech.name,
            r.mech.metric.name(),
            size_label(r.size),
            s.value,
            r.mech.metric.unit(),
            f(s.vs_c),
            f(s.vs_best_peer)
        );
    }
    println!(
        "\nratios: this run / the other's run of the same round, median over rounds \
         (round trip: below 1 = faster; throughput: above 1 = faster)"
    );
    println!(
        "wrote {} (peers.csv, peers-rtt.svg, peers-throughput.svg) in {:.0} s",
        out_dir().display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
