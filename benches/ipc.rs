//! rawipc against plain C, in one run: `cargo bench --bench ipc`.
//!
//! The C references (`benches/c/ipc_ref.c`) are compiled at start with the
//! C compiler the `cc` crate finds, and run as subprocesses that fork their
//! own child and print their figure. The rawipc side does the same work here,
//! forking with `rawipc::process::fork`: the same message sizes, counts and
//! warm-ups, default-size pipes, and on both sides the parent on one CPU and
//! the child on another (see [`bench_cpus`]).
//!
//! Every pair (a reference, then the rawipc runs compared with it) runs four
//! times per round, in the other order every other time, so that drift and
//! noise fall on both sides. The figures are the medians over all runs
//! (`RAWIPC_BENCH_ROUNDS` rounds, default 20); a ratio is the median of the
//! ratios of the pairs. Then one idle check: a receiver blocked on an idle
//! channel for 2 s, and its CPU time.
//!
//! `RAWIPC_BENCH_ONLY=a,b` measures only the rows whose mechanism contains
//! one of the parts (and the probes they are compared with).
//!
//! Prints a table, and writes `ipc.csv` and `ipc.svg` into `target/bench/`
//! (under `CARGO_TARGET_DIR` if set).

use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rawipc::call::Call;
use rawipc::chan::{Channel, Receiver, handover};
use rawipc::pipe::{self, ReadEnd};
use rawipc::process::{self, Fork, Pid, WaitOptions};
use rawipc::{Errno, endpoint, msg};
use rustix::event::{PollFd, PollFlags, epoll, poll};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

type Res<T> = Result<T, Box<dyn Error>>;

/// Bytes of a round-trip message (the C side's `MSG`).
const MSG: usize = 8;
/// Bytes of a throughput message (the C side's `CHUNK`).
const CHUNK: usize = 64 * 1024;
/// The channel's ring for throughput: as many bytes as the C ring's 16 slots.
const RING: usize = 16 * CHUNK;
/// The channel's ring for round trips.
const RTT_RING: usize = 4096;
/// Round trips per run of the mechanisms that sleep in the kernel.
const RTT_SLEEPING: u64 = 2_500;
/// Round trips per run of the mechanisms that spin.
const RTT_SPINNING: u64 = 50_000;
/// Send-and-receive pairs per run of the calls alone.
const CALLS: u64 = 20_000;
/// Connect-and-hand-over cycles per measurement.
const MEETINGS: u64 = 2_000;
/// MiB moved per run, after a warm-up of an eighth of that.
const PIPE_MIB: u64 = 64;
const RING_MIB: u64 = 512;
/// How long the idle receiver waits.
const IDLE_MS: u64 = 2000;
const DEFAULT_ROUNDS: usize = 20;
/// Runs of each pair per round: many short pairs rather than a few long
/// ones, since on a VM the cost of a cache-line transfer jumps between modes
/// (here ~30, ~65 or ~300 ns) as the host moves the vCPUs, and a pair's two
/// runs, close in time, see the same mode.
const PAIRS_PER_ROUND: usize = 4;

/// One figure the bench measures: a run of a C reference or of rawipc.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Probe {
    CPipeRtt,
    PipeRtt,
    CSocketRtt,
    MsgRtt,
    CSpinRtt,
    CSpin2Rtt,
    ChanRtt,
    CallRtt,
    CFutexRtt,
    ChanBlockingRtt,
    CEventfdRtt,
    ChanFdPollRtt,
    ChanFdEpollRtt,
    ChanFdsUsedRtt,
    CPipeCall,
    PipeCall,
    CSocketCall,
    MsgCall,
    CPipeTput,
    PipeTput,
    CRingTput,
    ChanTput,
    ChanZeroCopyTput,
    CMeet,
    Meet,
    ChanHandedRtt,
    /// A round trip of a message of this many bytes: C over a stream socket
    /// pair, rawipc through `msg` (in a sealed memfd above the socket's
    /// limit).
    CStreamRtt(usize),
    MsgSizeRtt(usize),
}

/// The sizes of the large-message round trips: below the socket's limit
/// (~208 KiB), above it, and well above.
const LARGE: [usize; 4] = [64 << 10, 256 << 10, 1 << 20, 4 << 20];

/// Round trips per run of a `size`-byte message: 128 MiB each way.
fn large_rtts(size: usize) -> u64 {
    ((128usize << 20) / size) as u64
}

/// The probes in the order of a round: each reference, then what is
/// compared with it.
const GROUPS: &[&[Probe]] = &[
    &[Probe::CPipeRtt, Probe::PipeRtt],
    &[Probe::CSocketRtt, Probe::MsgRtt],
    &[
        Probe::CSpinRtt,
        Probe::CSpin2Rtt,
        Probe::ChanRtt,
        Probe::ChanFdsUsedRtt,
        Probe::ChanHandedRtt,
        Probe::CallRtt,
    ],
    &[
        Probe::CFutexRtt,
        Probe::ChanBlockingRtt,
        Probe::CEventfdRtt,
        Probe::ChanFdPollRtt,
        Probe::ChanFdEpollRtt,
    ],
    &[Probe::CPipeCall, Probe::PipeCall],
    &[Probe::CSocketCall, Probe::MsgCall],
    &[Probe::CPipeTput, Probe::PipeTput],
    &[Probe::CRingTput, Probe::ChanTput, Probe::ChanZeroCopyTput],
    &[Probe::CMeet, Probe::Meet],
    &[Probe::CStreamRtt(LARGE[0]), Probe::MsgSizeRtt(LARGE[0])],
    &[Probe::CStreamRtt(LARGE[1]), Probe::MsgSizeRtt(LARGE[1])],
    &[Probe::CStreamRtt(LARGE[2]), Probe::MsgSizeRtt(LARGE[2])],
    &[Probe::CStreamRtt(LARGE[3]), Probe::MsgSizeRtt(LARGE[3])],
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Rtt,
    /// A send and a receive in one process that never waits.
    Call,
    Throughput,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Rtt => "rtt",
            Metric::Call => "call",
            Metric::Throughput => "throughput",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Metric::Rtt | Metric::Call => "ns",
            Metric::Throughput => "GB/s",
        }
    }
}

/// A goal for a ratio (rawipc / reference).
#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    None,
}

impl Target {
    fn met(self, ratio: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(ratio <= t),
            Target::AtLeast(t) => Some(ratio >= t),
            Target::None => None,
        }
    }
    fn label(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}"),
            Target::AtLeast(t) => format!(">= {t}"),
            Target::None => String::new(),
        }
    }
    fn value(self) -> Option<f64> {
        match self {
            Target::AtMost(t) | Target::AtLeast(t) => Some(t),
            Target::None => None,
        }
    }
}

/// A row of the table: a rawipc probe, the reference it is compared with.
struct Row {
    mechanism: &'static str,
    metric: Metric,
    rawipc: Probe,
    reference: Probe,
    target: Target,
    /// What the row compares, for the table.
    what: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        mechanism: "pipe",
        metric: Metric::Rtt,
        rawipc: Probe::PipeRtt,
        reference: Probe::CPipeRtt,
        target: Target::AtMost(1.05),
        what: "8 B over two pipes; C: read/write",
    },
    Row {
        mechanism: "message socket",
        metric: Metric::Rtt,
        rawipc: Probe::MsgRtt,
        reference: Probe::CSocketRtt,
        target: Target::AtMost(1.05),
        what: "8 B, SEQPACKET pair; C: send/recv",
    },
    Row {
        mechanism: "channel",
        metric: Metric::Rtt,
        rawipc: Probe::ChanRtt,
        reference: Probe::CSpinRtt,
        target: Target::AtMost(1.5),
        what: "8 B, spin then sleep; C: spin on a line",
    },
    Row {
        mechanism: "call",
        metric: Metric::Rtt,
        rawipc: Probe::CallRtt,
        reference: Probe::CSpinRtt,
        target: Target::AtMost(1.15),
        what: "8 B request and reply in one slot; C: spin on a line",
    },
    Row {
        mechanism: "channel vs C two-line spin",
        metric: Metric::Rtt,
        rawipc: Probe::ChanRtt,
        reference: Probe::CSpin2Rtt,
        target: Target::None,
        what: "8 B, spin then sleep; C: spin, a line each way",
    },
    Row {
        mechanism: "channel handed over by name",
        metric: Metric::Rtt,
        rawipc: Probe::ChanHandedRtt,
        reference: Probe::ChanRtt,
        target: Target::AtMost(1.1),
        what: "8 B, ends taken over a named endpoint; vs made before fork",
    },
    Row {
        mechanism: "channel blocking-only",
        metric: Metric::Rtt,
        rawipc: Probe::ChanBlockingRtt,
        reference: Probe::CSpinRtt,
        target: Target::None,
        what: "8 B, set_spin(0); C: spin on a line",
    },
    Row {
        mechanism: "channel blocking-only vs futex",
        metric: Metric::Rtt,
        rawipc: Probe::ChanBlockingRtt,
        reference: Probe::CFutexRtt,
        target: Target::None,
        what: "8 B, set_spin(0); C: futex wait/wake",
    },
    Row {
        mechanism: "channel fd wake, poll",
        metric: Metric::Rtt,
        rawipc: Probe::ChanFdPollRtt,
        reference: Probe::CEventfdRtt,
        target: Target::None,
        what: "8 B, try_recv until EAGAIN, then poll(2); C: eventfd write/read",
    },
    Row {
        mechanism: "channel fd wake, epoll",
        metric: Metric::Rtt,
        rawipc: Probe::ChanFdEpollRtt,
        reference: Probe::CEventfdRtt,
        target: Target::None,
        what: "8 B, try_recv until EAGAIN, then epoll_wait; C: eventfd write/read",
    },
    Row {
        mechanism: "channel fd poll vs futex",
        metric: Metric::Rtt,
        rawipc: Probe::ChanFdPollRtt,
        reference: Probe::ChanBlockingRtt,
        target: Target::None,
        what: "8 B, woken through the fd; vs set_spin(0), the futex",
    },
    Row {
        mechanism: "channel fd epoll vs futex",
        metric: Metric::Rtt,
        rawipc: Probe::ChanFdEpollRtt,
        reference: Probe::ChanBlockingRtt,
        target: Target::None,
        what: "8 B, woken through the fd; vs set_spin(0), the futex",
    },
    Row {
        mechanism: "channel busy, fds in use",
        metric: Metric::Rtt,
        rawipc: Probe::ChanFdsUsedRtt,
        reference: Probe::ChanRtt,
        target: Target::AtMost(1.05),
        what: "8 B spinning, after round trips woken through the fds in epoll; vs never",
    },
    Row {
        mechanism: "pipe",
        metric: Metric::Call,
        rawipc: Probe::PipeCall,
        reference: Probe::CPipeCall,
        target: Target::None,
        what: "8 B write+read, one process; C: same",
    },
    Row {
        mechanism: "message socket",
        metric: Metric::Call,
        rawipc: Probe::MsgCall,
        reference: Probe::CSocketCall,
        target: Target::None,
        what: "8 B send+recv, one process; C: same",
    },
    Row {
        mechanism: "pipe",
        metric: Metric::Throughput,
        rawipc: Probe::PipeTput,
        reference: Probe::CPipeTput,
        target: Target::AtLeast(0.95),
        what: "64 KiB writes, default pipe; C: same",
    },
    Row {
        mechanism: "channel",
        metric: Metric::Throughput,
        rawipc: Probe::ChanTput,
        reference: Probe::CRingTput,
        target: Target::AtLeast(0.8),
        what: "64 KiB send/recv, 1 MiB ring; C: ring",
    },
    Row {
        mechanism: "channel zero-copy",
        metric: Metric::Throughput,
        rawipc: Probe::ChanZeroCopyTput,
        reference: Probe::CRingTput,
        target: Target::AtLeast(1.0),
        what: "64 KiB reserve+fill / borrow+read; C: ring",
    },
    Row {
        mechanism: "connect + channel hand-over",
        metric: Metric::Call,
        rawipc: Probe::Meet,
        reference: Probe::CMeet,
        target: Target::None,
        what: "connect, accept, give/take an end, close; C: memfd by hand",
    },
    Row {
        mechanism: "message socket 64 KiB",
        metric: Metric::Rtt,
        rawipc: Probe::MsgSizeRtt(LARGE[0]),
        reference: Probe::CStreamRtt(LARGE[0]),
        target: Target::None,
        what: "64 KiB, SEQPACKET pair; C: SOCK_STREAM pair, read/write",
    },
    Row {
        mechanism: "message socket 256 KiB",
        metric: Metric::Rtt,
        rawipc: Probe::MsgSizeRtt(LARGE[1]),
        reference: Probe::CStreamRtt(LARGE[1]),
        target: Target::None,
        what: "256 KiB, in a sealed memfd; C: SOCK_STREAM pair",
    },
    Row {
        mechanism: "message socket 1 MiB",
        metric: Metric::Rtt,
        rawipc: Probe::MsgSizeRtt(LARGE[2]),
        reference: Probe::CStreamRtt(LARGE[2]),
        target: Target::AtMost(1.0),
        what: "1 MiB, in a sealed memfd; C: SOCK_STREAM pair",
    },
    Row {
        mechanism: "message socket 4 MiB",
        metric: Metric::Rtt,
        rawipc: Probe::MsgSizeRtt(LARGE[3]),
        reference: Probe::CStreamRtt(LARGE[3]),
        target: Target::None,
        what: "4 MiB, in a sealed memfd; C: SOCK_STREAM pair",
    },
];

/// The idle check's limit, in percent of one CPU.
const IDLE_TARGET_PCT: f64 = 1.0;

fn main() -> Res<()> {
    let rounds = match std::env::var("RAWIPC_BENCH_ROUNDS") {
        Ok(s) => s
            .parse::<usize>()
            .map_err(|e| format!("RAWIPC_BENCH_ROUNDS: {e}"))?
            .max(1),
        Err(_) => DEFAULT_ROUNDS,
    };
    let rows = selected_rows();
    // Each group keeps the probes the selected rows need.
    let groups: Vec<Vec<Probe>> = GROUPS
        .iter()
        .map(|g| {
            g.iter()
                .copied()
                .filter(|&p| rows.iter().any(|r| r.rawipc == p || r.reference == p))
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect();
    let out_dir = bench_dir();
    std::fs::create_dir_all(&out_dir)?;
    let c_bin = build_reference(&out_dir)?;
    let machine = match bench_cpus() {
        Some((a, b)) => format!("{}; parent on CPU {a}, child on CPU {b}", machine()),
        None => format!("{}; not pinned", machine()),
    };
    let started = Instant::now();
    let cpu_before = cpu_clock()?;
    println!("rawipc IPC benchmark: {rounds} rounds; {machine}");

    let mut samples: Vec<(Probe, Vec<f64>)> = groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|&p| (p, Vec::new()))
        .collect();
    for round in 0..rounds {
        eprint!("round {}/{rounds}:", round + 1);
        for group in &groups {
            for pair in 0..PAIRS_PER_ROUND {
                let mut order: Vec<Probe> = group.clone();
                if (round * PAIRS_PER_ROUND + pair) % 2 == 1 {
                    order.reverse();
                }
                for probe in order {
                    let figure = run(probe, &c_bin).map_err(|e| format!("{probe:?}: {e}"))?;
                    if pair == 0 {
                        eprint!(" {probe:?}={figure:.3}");
                    }
                    samples
                        .iter_mut()
                        .find(|(p, _)| *p == probe)
                        .expect("every probe has a series")
                        .1
                        .push(figure);
                }
            }
        }
        eprintln!();
    }
    let others = cpu_clock()?.others_since(&cpu_before);
    let series = |probe: Probe| {
        &samples
            .iter()
            .find(|(p, _)| *p == probe)
            .expect("every probe has a series")
            .1
    };

    eprintln!("idle check: {IDLE_MS} ms each");
    let idle_c = c_figure(&c_bin, "idle", IDLE_MS)?;
    let idle_rawipc = chan_idle_cpu(IDLE_MS)?;

    let mut results = Vec::new();
    for row in rows {
        let (rawipc, reference) = (median(series(row.rawipc)), median(series(row.reference)));
        // Each rawipc figure over the reference figure measured next to it:
        // the VM's vCPUs move between host cores during a run, which changes
        // both figures of a pair alike (a cache-line transfer takes ~30 or
        // ~300 ns), so the ratio is the median of the pairs' ratios.
        let pairs: Vec<f64> = series(row.rawipc)
            .iter()
            .zip(series(row.reference))
            .map(|(a, b)| a / b)
            .collect();
        results.push(Outcome {
            row,
            rawipc,
            reference,
            ratio: median(&pairs),
            quartiles: (quantile(&pairs, 0.25), quantile(&pairs, 0.75)),
        });
    }
    let idle = Idle {
        rawipc: idle_rawipc,
        reference: idle_c,
    };

    print_table(&results, &idle);
    println!("{others}");
    let csv = csv(&results, &idle);
    std::fs::write(out_dir.join("ipc.csv"), csv)?;
    let caption = format!("{machine}; {others}");
    std::fs::write(
        out_dir.join("ipc.svg"),
        svg(&results, &idle, &caption, rounds * PAIRS_PER_ROUND),
    )?;
    println!(
        "wrote {} and ipc.svg ({:.0} s)",
        out_dir.join("ipc.csv").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The rows to measure: those whose mechanism contains one of the
/// comma-separated parts of `RAWIPC_BENCH_ONLY` (all without it).
fn selected_rows() -> Vec<&'static Row> {
    let only = std::env::var("RAWIPC_BENCH_ONLY").unwrap_or_default();
    let parts: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    ROWS.iter()
        .filter(|r| parts.is_empty() || parts.iter().any(|p| r.mechanism.contains(p)))
        .collect()
}

// ---- running ----

fn run(probe: Probe, c_bin: &Path) -> Res<f64> {
    Ok(match probe {
        Probe::CPipeRtt => c_figure(c_bin, "pipe-rtt", RTT_SLEEPING)?,
        Probe::PipeRtt => on_parent_cpu(|| pipe_rtt(RTT_SLEEPING))?,
        Probe::CSocketRtt => c_figure(c_bin, "socket-rtt", RTT_SLEEPING)?,
        Probe::MsgRtt => on_parent_cpu(|| msg_rtt(RTT_SLEEPING))?,
        Probe::CSpinRtt => c_figure(c_bin, "spin-rtt", RTT_SPINNING)?,
        Probe::CSpin2Rtt => c_figure(c_bin, "spin2-rtt", RTT_SPINNING)?,
        Probe::ChanRtt => on_parent_cpu(|| chan_rtt(RTT_SPINNING, None))?,
        Probe::ChanFdsUsedRtt => on_parent_cpu(|| chan_fds_used_rtt(RTT_SPINNING))?,
        Probe::CEventfdRtt => c_figure(c_bin, "eventfd-rtt", RTT_SLEEPING)?,
        Probe::ChanFdPollRtt => on_parent_cpu(|| chan_fd_rtt(RTT_SLEEPING, FdWait::Poll))?,
        Probe::ChanFdEpollRtt => on_parent_cpu(|| chan_fd_rtt(RTT_SLEEPING, FdWait::Epoll))?,
        Probe::CallRtt => on_parent_cpu(|| call_rtt(RTT_SPINNING))?,
        Probe::CFutexRtt => c_figure(c_bin, "futex-rtt", RTT_SLEEPING)?,
        Probe::ChanBlockingRtt => on_parent_cpu(|| chan_rtt(RTT_SLEEPING, Some(0)))?,
        Probe::CPipeCall => c_figure(c_bin, "pipe-call", CALLS)?,
        Probe::PipeCall => on_parent_cpu(|| pipe_call(CALLS))?,
        Probe::CSocketCall => c_figure(c_bin, "socket-call", CALLS)?,
        Probe::MsgCall => on_parent_cpu(|| msg_call(CALLS))?,
        Probe::CPipeTput => c_figure(c_bin, "pipe-tput", PIPE_MIB)?,
        Probe::PipeTput => on_parent_cpu(|| pipe_tput(PIPE_MIB))?,
        Probe::CRingTput => c_figure(c_bin, "ring-tput", RING_MIB)?,
        Probe::ChanTput => on_parent_cpu(|| chan_tput(RING_MIB, false))?,
        Probe::ChanZeroCopyTput => on_parent_cpu(|| chan_tput(RING_MIB, true))?,
        Probe::CMeet => c_figure(c_bin, "meet", MEETINGS)?,
        Probe::Meet => on_parent_cpu(|| meet(MEETINGS))?,
        Probe::ChanHandedRtt => on_parent_cpu(|| chan_handed_rtt(RTT_SPINNING))?,
        Probe::CStreamRtt(size) => {
            c_figure(c_bin, &format!("stream-rtt-{size}"), large_rtts(size))?
        }
        Probe::MsgSizeRtt(size) => on_parent_cpu(|| msg_size_rtt(size, large_rtts(size)))?,
    })
}

/// Where the bench writes: `target/bench` of this tree, or of `CARGO_TARGET_DIR`.
fn bench_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is taken from the package's root.
        Some(dir) => manifest.join(dir).join("bench"),
        None => manifest.join("target/bench"),
    }
}

/// The target triple for the C compiler: this machine's, as the bench is
/// built for it.
fn c_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Compiles `benches/c/ipc_ref.c` into `out_dir` with the `cc` crate's compiler.
fn build_reference(out_dir: &Path) -> Res<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c/ipc_ref.c");
    let bin = out_dir.join("ipc_ref");
    let target = c_target();
    let mut cmd = cc::Build::new()
        .opt_level(2)
        .debug(false)
        .target(&target)
        .host(&target)
        .cargo_metadata(false)
        .get_compiler()
        .to_command();
    cmd.args([
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        "-o",
    ])
    .arg(&bin)
    .arg(&src);
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(bin)
}

/// Runs the C reference in `mode` and reads the one figure it prints.
fn c_figure(bin: &Path, mode: &str, count: u64) -> Res<f64> {
    let mut cmd = Command::new(bin);
    cmd.arg(mode).arg(count.to_string());
    if let Some((parent, child)) = bench_cpus().filter(|_| mode != "idle") {
        cmd.arg(parent.to_string()).arg(child.to_string());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {mode} {count}: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

fn fork() -> Res<Fork> {
    // SAFETY: the bench has one thread (harness = false, nothing spawned).
    Ok(unsafe { process::fork() }?)
}

/// `fork`, the child then kept on the second bench CPU (the parent is on
/// the first: see [`run`]).
fn fork_pinned() -> Res<Fork> {
    let side = fork()?;
    if let (Fork::Child, Some((_, cpu))) = (side, bench_cpus()) {
        if let Err(e) = pin(cpu) {
            eprintln!("bench child: pinning to CPU {cpu}: {e}");
            process::exit(1);
        }
    }
    Ok(side)
}

/// The CPUs for the parent and the child of every measurement, on both
/// sides: the first two this process may use (`RAWIPC_BENCH_CPUS=a,b`
/// chooses, `none` lets the scheduler place them). Unpinned, the scheduler
/// often runs both on one CPU, where a wake-up is a context switch (~5 µs
/// for a pipe round trip here) instead of a cross-CPU interrupt (~40 µs),
/// and moves them apart at its own pace: the figures then measure placement.
fn bench_cpus() -> Option<(usize, usize)> {
    static CPUS: OnceLock<Option<(usize, usize)>> = OnceLock::new();
    *CPUS.get_or_init(|| match std::env::var("RAWIPC_BENCH_CPUS") {
        Ok(v) if v == "none" => None,
        Ok(v) => {
            let (a, b) = v.split_once(',').expect("RAWIPC_BENCH_CPUS=a,b or none");
            Some((
                a.trim().parse().expect("a CPU number"),
                b.trim().parse().expect("a CPU number"),
            ))
        }
        Err(_) => {
            let allowed = sched_getaffinity(None).ok()?;
            let mut cpus = (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c));
            Some((cpus.next()?, cpus.next()?))
        }
    })
}

/// Keeps this process on `cpu`.
fn pin(cpu: usize) -> Res<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    Ok(sched_setaffinity(None, &set)?)
}

/// Runs `f` with this process on the first bench CPU, then lets it run
/// anywhere it could before.
fn on_parent_cpu<T>(f: impl FnOnce() -> Res<T>) -> Res<T> {
    let Some((cpu, _)) = bench_cpus() else {
        return f();
    };
    let before = sched_getaffinity(None)?;
    pin(cpu)?;
    let result = f();
    sched_setaffinity(None, &before)?;
    result
}

/// Runs a forked child's work and leaves the process with its outcome.
fn child(work: impl FnOnce() -> rawipc::Result<()>) -> ! {
    match work() {
        Ok(()) => process::exit(0),
        Err(e) => {
            eprintln!("bench child: {e}");
            process::exit(1)
        }
    }
}

fn reap(pid: Pid) -> Res<()> {
    match process::waitpid(pid, WaitOptions::empty())? {
        Some((_, status)) if status.success() => Ok(()),
        other => Err(format!("child {pid:?} ended badly: {other:?}").into()),
    }
}

/// `read_full` that calls an early end of file an error.
fn read_exact(end: &ReadEnd, buf: &mut [u8]) -> rawipc::Result<()> {
    match end.read_full(buf)? {
        n if n == buf.len() => Ok(()),
        _ => Err(Errno::PIPE),
    }
}

fn expect_len(got: usize, want: usize) -> rawipc::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Errno::PROTO)
    }
}

/// Times `iters` round trips after `iters / 10` of warm-up; ns per round trip.
fn time_round_trips(
    iters: u64,
    mut round_trip: impl FnMut() -> rawipc::Result<()>,
) -> rawipc::Result<f64> {
    let warm = (iters / 10).max(1);
    for _ in 0..warm {
        round_trip()?;
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        round_trip()?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / iters as f64)
}

fn pipe_rtt(iters: u64) -> Res<f64> {
    let (to_child_r, to_child_w) = pipe::pipe()?;
    let (to_parent_r, to_parent_w) = pipe::pipe()?;
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            drop((to_child_w, to_parent_r));
            child(|| {
                let mut m = [0; MSG];
                for _ in 0..total {
                    read_exact(&to_child_r, &mut m)?;
                    m[0] = m[0].wrapping_add(1);
                    to_parent_w.write_all(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            drop((to_child_r, to_parent_w));
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                to_child_w.write_all(&m)?;
                read_exact(&to_parent_r, &mut m)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

fn msg_rtt(iters: u64) -> Res<f64> {
    let (parent_end, child_end) = msg::socketpair()?;
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            drop(parent_end);
            child(|| {
                let mut m = [0; MSG];
                for _ in 0..total {
                    expect_len(child_end.recv(&mut m)?, MSG)?;
                    m[0] = m[0].wrapping_add(1);
                    child_end.send(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            drop(child_end);
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                parent_end.send(&m)?;
                expect_len(parent_end.recv(&mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// Round trips of `size`-byte messages over a message socket pair (above the
/// socket's limit, each in a sealed memfd); the child changes a byte.
fn msg_size_rtt(size: usize, iters: u64) -> Res<f64> {
    let (parent_end, child_end) = msg::socketpair()?;
    let total = iters + (iters / 10).max(1);
    let mut m = vec![b'p'; size];
    match fork_pinned()? {
        Fork::Child => {
            drop(parent_end);
            child(|| {
                for _ in 0..total {
                    expect_len(child_end.recv(&mut m)?, size)?;
                    m[0] = m[0].wrapping_add(1);
                    child_end.send(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            drop(child_end);
            let ns = time_round_trips(iters, || {
                parent_end.send(&m)?;
                expect_len(parent_end.recv(&mut m)?, size)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// Round trips over two channels (one each way); `spin` replaces the
/// default spin time of all four ends.
fn chan_rtt(iters: u64, spin: Option<u32>) -> Res<f64> {
    let (request, reply) = (Channel::new(RTT_RING)?, Channel::new(RTT_RING)?);
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            let (mut rx, mut tx) = (request.into_receiver(), reply.into_sender());
            if let Some(ns) = spin {
                rx.set_spin(ns);
                tx.set_spin(ns);
            }
            child(|| {
                let mut m = [0; MSG];
                for _ in 0..total {
                    expect_len(rx.recv(&mut m)?, MSG)?;
                    m[0] = m[0].wrapping_add(1);
                    tx.send(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            let (mut tx, mut rx) = (request.into_sender(), reply.into_receiver());
            if let Some(ns) = spin {
                rx.set_spin(ns);
                tx.set_spin(ns);
            }
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                tx.send(&m)?;
                expect_len(rx.recv(&mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// How a side waits on its receiving end's readiness fd.
#[derive(Clone, Copy)]
enum FdWait {
    Poll,
    Epoll,
}

/// A side's way to wait on its receiving end's fd: `poll`, or an epoll set
/// that holds it.
struct FdWaiter(Option<rawipc::OwnedFd>);

impl FdWaiter {
    fn new(rx: &Receiver, how: FdWait) -> rawipc::Result<Self> {
        Ok(Self(match how {
            FdWait::Poll => None,
            FdWait::Epoll => {
                let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
                epoll::add(&ep, rx, epoll::EventData::new_u64(0), epoll::EventFlags::IN)?;
                Some(ep)
            }
        }))
    }

    /// Receives one message: `try_recv` until it finds one, waiting on the
    /// fd after each `EAGAIN` (which armed it).
    fn recv(&self, rx: &mut Receiver, buf: &mut [u8]) -> rawipc::Result<usize> {
        loop {
            match rx.try_recv(buf) {
                Err(Errno::AGAIN) => {}
                other => return other,
            }
            match &self.0 {
                None => {
                    let mut fds = [PollFd::new(&*rx, PollFlags::IN)];
                    rustix::io::retry_on_intr(|| poll(&mut fds, None))?;
                }
                Some(ep) => {
                    let mut events = [MaybeUninit::<epoll::Event>::uninit(); 1];
                    rustix::io::retry_on_intr(|| epoll::wait(ep, &mut events, None).map(drop))?;
                }
            }
        }
    }
}

/// Round trips over two channels whose sides never spin: each waits on its
/// receiving end's fd, with `poll` or `epoll_wait`.
fn chan_fd_rtt(iters: u64, how: FdWait) -> Res<f64> {
    let (request, reply) = (Channel::new(RTT_RING)?, Channel::new(RTT_RING)?);
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            let (mut rx, mut tx) = (request.into_receiver(), reply.into_sender());
            child(|| {
                let waiter = FdWaiter::new(&rx, how)?;
                let mut m = [0; MSG];
                for _ in 0..total {
                    expect_len(waiter.recv(&mut rx, &mut m)?, MSG)?;
                    m[0] = m[0].wrapping_add(1);
                    tx.send(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            let (mut tx, mut rx) = (request.into_sender(), reply.into_receiver());
            let waiter = FdWaiter::new(&rx, how)?;
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                tx.send(&m)?;
                expect_len(waiter.recv(&mut rx, &mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// Round trips woken through the fds before the busy ones of
/// [`chan_fds_used_rtt`].
const FD_ROUNDS: u64 = 200;

/// As [`chan_rtt`] with the default spin, after [`FD_ROUNDS`] round trips
/// in which both sides waited on their fds in an epoll set (kept while the
/// busy round trips run): what the readiness machinery leaves on the busy
/// path once it has been used.
fn chan_fds_used_rtt(iters: u64) -> Res<f64> {
    let (request, reply) = (Channel::new(RTT_RING)?, Channel::new(RTT_RING)?);
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            let (mut rx, mut tx) = (request.into_receiver(), reply.into_sender());
            child(|| {
                let waiter = FdWaiter::new(&rx, FdWait::Epoll)?;
                let mut m = [0; MSG];
                for i in 0..FD_ROUNDS + total {
                    let n = match i < FD_ROUNDS {
                        true => waiter.recv(&mut rx, &mut m)?,
                        false => rx.recv(&mut m)?,
                    };
                    expect_len(n, MSG)?;
                    m[0] = m[0].wrapping_add(1);
                    tx.send(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            let (mut tx, mut rx) = (request.into_sender(), reply.into_receiver());
            let waiter = FdWaiter::new(&rx, FdWait::Epoll)?;
            let mut m = [b'p'; MSG];
            for _ in 0..FD_ROUNDS {
                tx.send(&m)?;
                expect_len(waiter.recv(&mut rx, &mut m)?, MSG)?;
            }
            let ns = time_round_trips(iters, || {
                tx.send(&m)?;
                expect_len(rx.recv(&mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// A name for this bench run's endpoints.
fn bench_name(tag: &str) -> String {
    format!("bench-{}-{tag}", std::process::id())
}

/// As [`chan_rtt`], but the two channels are made after `fork` and their
/// ends handed over a connection to a named endpoint, as between programs
/// that did not fork from each other.
fn chan_handed_rtt(iters: u64) -> Res<f64> {
    let name = bench_name("rtt");
    let listener = endpoint::listen(&name)?;
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => child(|| {
            drop(listener);
            let conn = endpoint::connect(&name)?;
            let mut rx = handover::take_receiver(&conn)?;
            let mut tx = handover::take_sender(&conn)?;
            let mut m = [0; MSG];
            for _ in 0..total {
                expect_len(rx.recv(&mut m)?, MSG)?;
                m[0] = m[0].wrapping_add(1);
                tx.send(&m)?;
            }
            Ok(())
        }),
        Fork::Parent(pid) => {
            let conn = listener.accept()?;
            let mut tx = handover::give_receiver(&conn, RTT_RING)?;
            let mut rx = handover::give_sender(&conn, RTT_RING)?;
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                tx.send(&m)?;
                expect_len(rx.recv(&mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// Meetings: the child accepts on a named endpoint and gives each client
/// the receiving end of a new channel; the parent connects, takes it, and
/// closes all. ns per meeting, on the parent's side.
fn meet(iters: u64) -> Res<f64> {
    let name = bench_name("meet");
    let listener = endpoint::listen(&name)?;
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => child(|| {
            for _ in 0..total {
                let conn = listener.accept()?;
                let _tx = handover::give_receiver(&conn, RTT_RING)?;
            }
            Ok(())
        }),
        Fork::Parent(pid) => {
            drop(listener);
            let ns = time_round_trips(iters, || {
                let conn = endpoint::connect(&name)?;
                let _rx = handover::take_receiver(&conn)?;
                Ok(())
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// Round trips through one request-reply slot: the child's server answers
/// each request with the message changed, as the C one-line spin's child.
fn call_rtt(iters: u64) -> Res<f64> {
    let call = Call::new(MSG)?;
    let total = iters + iters / 10;
    match fork_pinned()? {
        Fork::Child => {
            let mut server = call.into_server();
            child(|| {
                let mut m = [0; MSG];
                for _ in 0..total {
                    expect_len(server.recv(&mut m)?, MSG)?;
                    m[0] = m[0].wrapping_add(1);
                    server.reply(&m)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            let mut client = call.into_client();
            let mut m = [b'p'; MSG];
            let ns = time_round_trips(iters, || {
                let request = m;
                expect_len(client.call(&request, &mut m)?, MSG)
            })?;
            reap(pid)?;
            Ok(ns)
        }
    }
}

/// A write and a read of 8 bytes through a pipe in this process, which never
/// waits: what rawipc adds to the system calls.
fn pipe_call(iters: u64) -> Res<f64> {
    let (r, w) = pipe::pipe()?;
    let mut m = [b'p'; MSG];
    Ok(time_round_trips(iters, || {
        w.write_all(&m)?;
        read_exact(&r, &mut m)
    })?)
}

/// A send and a receive of 8 bytes on a message socket pair in this process.
fn msg_call(iters: u64) -> Res<f64> {
    let (a, b) = msg::socketpair()?;
    let mut m = [b'p'; MSG];
    Ok(time_round_trips(iters, || {
        a.send(&m)?;
        expect_len(b.recv(&mut m)?, MSG)
    })?)
}

/// GB/s of `total` bytes that took `t`.
fn gb_per_s(total: u64, t: Duration) -> f64 {
    total as f64 / t.as_secs_f64() / 1e9
}

fn pipe_tput(mib: u64) -> Res<f64> {
    let (total, warm) = (mib << 20, (mib << 20) / 8);
    let (r, w) = pipe::pipe()?;
    let mut buf = vec![1u8; CHUNK];
    match fork_pinned()? {
        Fork::Child => {
            drop(r);
            child(|| {
                for _ in 0..(warm + total) / CHUNK as u64 {
                    w.write_all(&buf)?;
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            drop(w);
            for _ in 0..warm / CHUNK as u64 {
                read_exact(&r, &mut buf)?;
            }
            let t0 = Instant::now();
            let mut got = 0;
            loop {
                match r.read(&mut buf)? {
                    0 => break,
                    n => got += n as u64,
                }
            }
            let t = t0.elapsed();
            reap(pid)?;
            if got != total {
                return Err(format!("pipe throughput: got {got} bytes of {total}").into());
            }
            Ok(gb_per_s(total, t))
        }
    }
}

/// Folds a message's bytes into a word: the zero-copy receiver reads each
/// byte in place, once.
fn fold(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0u64, |acc, w| {
        acc.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])))
    })
}

/// Copying: `send` from a buffer, `recv` into one, as the C ring copies in
/// and out. Zero-copy: the sender fills its reservation in place, the
/// receiver reads the borrowed message in place.
fn chan_tput(mib: u64, zero_copy: bool) -> Res<f64> {
    let n = (mib << 20) / CHUNK as u64;
    let warm = n / 8;
    let chan = Channel::new(RING)?;
    let mut buf = vec![1u8; CHUNK];
    match fork_pinned()? {
        Fork::Child => {
            let mut tx = chan.into_sender();
            child(|| {
                for i in 0..warm + n {
                    if zero_copy {
                        let mut r = tx.reserve(CHUNK)?;
                        r.fill(i as u8);
                        r.commit(CHUNK)?;
                    } else {
                        tx.send(&buf)?;
                    }
                }
                Ok(())
            })
        }
        Fork::Parent(pid) => {
            let mut rx = chan.into_receiver();
            let mut sum = 0u64;
            let mut t0 = Instant::now();
            for i in 0..warm + n {
                if i == warm {
                    t0 = Instant::now();
                }
                if zero_copy {
                    let m = rx.recv_borrowed()?.ok_or(Errno::PIPE)?;
                    expect_len(m.len(), CHUNK)?;
                    sum = sum.wrapping_add(fold(&m));
                } else {
                    expect_len(rx.recv(&mut buf)?, CHUNK)?;
                }
            }
            let t = t0.elapsed();
            black_box((sum, &buf));
            reap(pid)?;
            Ok(gb_per_s(n * CHUNK as u64, t))
        }
    }
}

// ---- idle ----

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// `struct rusage` of 64-bit Linux: two times, then fourteen `long`s.
#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;

/// `getrusage(RUSAGE_CHILDREN)`: seconds of CPU used by reaped children.
fn cpu_of_children() -> Res<f64> {
    cpu_of(RUSAGE_CHILDREN)
}

/// `getrusage(who)`: seconds of CPU, user and system.
fn cpu_of(who: i32) -> Res<f64> {
    let mut ru = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        rest: [0; 14],
    };
    // SAFETY: `ru` is a valid, writable `struct rusage`.
    if unsafe { getrusage(who, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let secs = |t: &Timeval| t.sec as f64 + t.usec as f64 * 1e-6;
    Ok(secs(&ru.utime) + secs(&ru.stime))
}

/// A child blocked in `recv` on an idle channel for `ms`, then given one
/// message: its CPU time over the wall time, in percent of one CPU.
fn chan_idle_cpu(ms: u64) -> Res<f64> {
    let chan = Channel::new(RTT_RING)?;
    let (cpu0, t0) = (cpu_of_children()?, Instant::now());
    match fork()? {
        Fork::Child => {
            let mut rx = chan.into_receiver();
            child(|| {
                let mut m = [0; MSG];
                expect_len(rx.recv(&mut m)?, MSG)
            })
        }
        Fork::Parent(pid) => {
            let mut tx = chan.into_sender();
            std::thread::sleep(Duration::from_millis(ms));
            tx.send(&[b'x'; MSG])?;
            reap(pid)?;
            let wall = t0.elapsed().as_secs_f64();
            Ok((cpu_of_children()? - cpu0) / wall * 100.0)
        }
    }
}

/// The machine's CPU time (from /proc/stat) and the bench's own (itself and
/// its reaped children, the C references included), in seconds.
struct CpuClock {
    busy: f64,
    steal: f64,
    total: f64,
    own: f64,
}

/// What else ran on the machine between two [`CpuClock`]s.
struct Others {
    /// Other processes' share of all CPU time, in percent.
    busy_pct: f64,
    /// Time the hypervisor gave to other guests, in percent.
    steal_pct: f64,
}

impl std::fmt::Display for Others {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "other work during the run: {:.0}% of the CPUs, steal {:.0}%",
            self.busy_pct, self.steal_pct
        )?;
        if self.busy_pct > 5.0 || self.steal_pct > 5.0 {
            write!(f, " (a busy machine: figures are noisy)")?;
        }
        Ok(())
    }
}

fn cpu_clock() -> Res<CpuClock> {
    const TICK: f64 = 0.01; // USER_HZ is 100 on Linux
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("/proc/stat is empty")?;
    let t: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let field = |i: usize| t.get(i).copied().unwrap_or(0.0) * TICK;
    // user nice system idle iowait irq softirq steal
    let busy = field(0) + field(1) + field(2) + field(5) + field(6);
    Ok(CpuClock {
        busy,
        steal: field(7),
        total: (0..8).map(field).sum(),
        own: cpu_of(RUSAGE_SELF)? + cpu_of_children()?,
    })
}

impl CpuClock {
    fn others_since(&self, before: &CpuClock) -> Others {
        let total = (self.total - before.total).max(1e-9);
        let others = (self.busy - before.busy) - (self.own - before.own);
        Others {
            busy_pct: (others / total * 100.0).max(0.0),
            steal_pct: (self.steal - before.steal) / total * 100.0,
        }
    }
}

// ---- reporting ----

struct Outcome {
    row: &'static Row,
    rawipc: f64,
    reference: f64,
    ratio: f64,
    /// The first and third quartiles of the pairs' ratios.
    quartiles: (f64, f64),
}

struct Idle {
    rawipc: f64,
    reference: f64,
}

fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The `q` quantile of `xs`, interpolating between neighbours.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match v.get(i + 1) {
        Some(next) => v[i] + (next - v[i]) * frac,
        None => v[i],
    }
}

fn figure(metric: Metric, x: f64) -> String {
    match metric {
        Metric::Rtt | Metric::Call => format!("{x:.1}"),
        Metric::Throughput => format!("{x:.3}"),
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

fn print_table(results: &[Outcome], idle: &Idle) {
    println!(
        "{:<32} {:<10} {:>5} {:>10} {:>10} {:>7} {:>13} {:>8}",
        "mechanism", "metric", "unit", "rawipc", "reference", "ratio", "pairs IQR", "target"
    );
    for r in results {
        let m = r.row.metric;
        println!(
            "{:<32} {:<10} {:>5} {:>10} {:>10} {:>7.3} {:>13} {:>8}  {}",
            r.row.mechanism,
            m.name(),
            m.unit(),
            figure(m, r.rawipc),
            figure(m, r.reference),
            r.ratio,
            format!("{:.2}-{:.2}", r.quartiles.0, r.quartiles.1),
            r.row.target.label(),
            verdict(r.row.target.met(r.ratio)),
        );
    }
    println!(
        "{:<32} {:<10} {:>5} {:>10.3} {:>10.3} {:>7} {:>13} {:>8}  {}",
        "channel idle receiver",
        "cpu",
        "%",
        idle.rawipc,
        idle.reference,
        "",
        "",
        format!("< {IDLE_TARGET_PCT}"),
        verdict(Some(idle.rawipc < IDLE_TARGET_PCT)),
    );
    println!("(reference of each row:");
    for r in results {
        println!(
            "  {} {}: {})",
            r.row.mechanism,
            r.row.metric.name(),
            r.row.what
        );
    }
    println!(
        "  channel idle receiver: a receiver blocked {IDLE_MS} ms; C: a child blocked in read() on a pipe)"
    );
}

fn csv(results: &[Outcome], idle: &Idle) -> String {
    let mut s = String::from("mechanism,metric,unit,rawipc,reference,ratio\n");
    for r in results {
        let m = r.row.metric;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.4}",
            r.row.mechanism,
            m.name(),
            m.unit(),
            figure(m, r.rawipc),
            figure(m, r.reference),
            r.ratio
        );
    }
    let _ = writeln!(
        s,
        "channel idle receiver,cpu,%,{:.4},{:.4},",
        idle.rawipc, idle.reference
    );
    s
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar chart of the ratios on a log scale from 1/4 to 4 (a bar beyond
/// it ends in an arrow): a line at 1.0, each row's target dashed, bars
/// green when the target is met, red when missed, grey without one.
fn svg(results: &[Outcome], idle: &Idle, caption: &str, pairs: usize) -> String {
    const W: f64 = 1000.0;
    const PLOT_L: f64 = 300.0;
    const PLOT_R: f64 = 770.0;
    // The columns of the ratio and of the target, right of the plot.
    const RATIO_X: f64 = PLOT_R + 30.0;
    const TARGET_X: f64 = PLOT_R + 100.0;
    const TOP: f64 = 96.0;
    const ROW_H: f64 = 32.0;
    const LO: f64 = 0.25;
    const HI: f64 = 4.0;
    let x = |v: f64| {
        let v = v.clamp(LO, HI);
        PLOT_L + (v / LO).log2() / (HI / LO).log2() * (PLOT_R - PLOT_L)
    };
    let bottom = TOP + ROW_H * results.len() as f64;
    let h = bottom + 96.0;

    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    line(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="13">"##
    ));
    line(format!(
        r##"<rect width="{W}" height="{h}" fill="white"/>"##
    ));
    line(format!(
        r##"<text x="16" y="24" font-size="17" font-weight="bold">rawipc / plain C doing the same work (median of {pairs} paired runs)</text>"##
    ));
    line(
        r##"<text x="16" y="44" fill="#444">Round trip (rtt) and call: lower is better. Throughput: higher is better. Dashed: the target. Log scale.</text>"##
            .to_owned(),
    );
    line(format!(
        r##"<text x="16" y="62" fill="#444">{}</text>"##,
        esc(caption)
    ));
    for v in [0.25, 0.5, 1.0, 2.0, 4.0] {
        let gx = x(v);
        line(format!(
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{bottom}" stroke="#ddd"/>"##
        ));
        line(format!(
            r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{v}</text>"##,
            bottom + 16.0
        ));
    }
    line(format!(
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">rawipc / C</text>"##,
        (PLOT_L + PLOT_R) / 2.0,
        bottom + 34.0
    ));
    line(format!(
        r##"<text x="{RATIO_X}" y="{:.1}" fill="#555">ratio</text>"##,
        TOP - 8.0
    ));
    line(format!(
        r##"<text x="{TARGET_X}" y="{:.1}" fill="#555">target</text>"##,
        TOP - 8.0
    ));
    for (i, r) in results.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let mid = y + ROW_H / 2.0 + 4.5;
        if i % 2 == 0 {
            line(format!(
                r##"<rect x="8" y="{y:.1}" width="{:.1}" height="{ROW_H}" fill="#f6f6f6"/>"##,
                W - 16.0
            ));
        }
        let label = format!("{} ({})", r.row.mechanism, r.row.metric.name());
        line(format!(
            r##"<text x="{:.1}" y="{mid:.1}" text-anchor="end">{}</text>"##,
            PLOT_L - 10.0,
            esc(&label)
        ));
        let met = r.row.target.met(r.ratio);
        let colour = match met {
            Some(true) => "#3a9a4a",
            Some(false) => "#d0453a",
            None => "#8a8a8a",
        };
        let (x1, x2) = (x(1.0).min(x(r.ratio)), x(1.0).max(x(r.ratio)));
        line(format!(
            r##"<rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"##,
            y + 7.0,
            (x2 - x1).max(1.5),
            ROW_H - 14.0
        ));
        let off_scale = !(LO..=HI).contains(&r.ratio);
        if off_scale {
            // An arrow head at the end of a bar cut by the scale.
            let (tip, back) = if r.ratio > HI {
                (x2 + 8.0, x2)
            } else {
                (x1 - 8.0, x1)
            };
            line(format!(
                r##"<polygon points="{back:.1},{:.1} {tip:.1},{:.1} {back:.1},{:.1}" fill="{colour}"/>"##,
                y + 4.0,
                y + ROW_H / 2.0,
                y + ROW_H - 4.0
            ));
        }
        line(format!(
            r##"<text x="{RATIO_X}" y="{mid:.1}" font-weight="bold">{}</text>"##,
            ratio_label(r.ratio)
        ));
        if let Some(t) = r.row.target.value() {
            let tx = x(t);
            line(format!(
                r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#222" stroke-width="2" stroke-dasharray="4,3"/>"##,
                y + 2.0,
                y + ROW_H - 2.0
            ));
        }
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        };
        line(format!(
            r##"<text x="{:.1}" y="{mid:.1}" fill="{colour}">{} {verdict}</text>"##,
            TARGET_X,
            r.row.target.label().replace("<=", "≤").replace(">=", "≥")
        ));
    }
    let one = x(1.0);
    line(format!(
        r##"<line x1="{one:.1}" y1="{:.1}" x2="{one:.1}" y2="{bottom}" stroke="black" stroke-width="1.5"/>"##,
        TOP - 6.0
    ));
    line(format!(
        r##"<text x="{one:.1}" y="{:.1}" text-anchor="middle" font-size="11">1.0: as fast as C</text>"##,
        TOP - 9.0
    ));
    let idle_ok = idle.rawipc < IDLE_TARGET_PCT;
    line(format!(
        r##"<text x="16" y="{:.1}" fill="{}">channel idle receiver: {:.3} % of one CPU over {} s (target &lt; {IDLE_TARGET_PCT} %: {}); C reader blocked in read(): {:.3} %</text>"##,
        bottom + 62.0,
        if idle_ok { "#2a7a3a" } else { "#d0453a" },
        idle.rawipc,
        IDLE_MS / 1000,
        if idle_ok { "met" } else { "missed" },
        idle.reference
    ));
    line(format!(
        r##"<text x="16" y="{:.1}" fill="#444">Figures: target/bench/ipc.csv. Command: cargo bench --bench ipc</text>"##,
        bottom + 84.0
    ));
    s.push_str("</svg>\n");
    s
}

fn ratio_label(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// The CPU model, CPU count and kernel, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs, Linux {}", kernel.trim())
}
