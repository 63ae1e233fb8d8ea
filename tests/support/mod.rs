//! A test harness for tests that fork.
//!
//! `cargo test` runs the tests of one binary on threads of one process, so a
//! child forked by one test inherits every fd the other tests hold open and
//! keeps their pipes from reaching end of file. A binary that uses this
//! harness (`harness = false` in Cargo.toml) re-executes itself once per test,
//! so that each test has a process of its own; a test that hangs is killed
//! after [`TIME_LIMIT`] and fails.
//!
//! Its output mimics libtest's (`test NAME ... ok`, `test result: ...`), and
//! it takes a name filter and `--exact`, `--list`, `--nocapture` and
//! `--test-threads N`; other flags are ignored.

pub mod child;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one test may run before it is killed and failed.
#[allow(dead_code)]
pub const TIME_LIMIT: Duration = Duration::from_secs(180);

const CHILD_ENV: &str = "RAWIPC_TEST_IN_OWN_PROCESS";

/// One test: a name and a function that panics on failure.
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
}

/// Lists tests as `[Test]` values: `tests![a, b, c]`.
#[macro_export]
macro_rules! tests {
    ($($f:path),* $(,)?) => {
        &[$($crate::support::Test { name: stringify!($f), run: $f }),*]
    };
}

/// The `main` of a harness-less test binary.
pub fn main(tests: &[Test]) -> ExitCode {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        let test = tests
            .iter()
            .find(|t| t.name == name)
            .expect("the test named by the runner");
        (test.run)();
        return ExitCode::SUCCESS;
    }

    let mut filter = None;
    let (mut exact, mut list, mut nocapture) = (false, false, false);
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--nocapture" => nocapture = true,
            "--test-threads" => threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            a if a.starts_with("--test-threads=") => threads = a[15..].parse().unwrap_or(1),
            a if a.starts_with('-') => {}
            a => filter = Some(a.to_owned()),
        }
    }
    let chosen: Vec<&Test> = tests
        .iter()
        .filter(|t| match &filter {
            None => true,
            Some(f) if exact => t.name == f,
            Some(f) => t.name.contains(f.as_str()),
        })
        .collect();
    if list {
        for t in &chosen {
            println!("{}: test", t.name);
        }
        return ExitCode::SUCCESS;
    }

    println!(
        "\nrunning {} tests (each in a process of its own)",
        chosen.len()
    );
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                while let Some(test) = chosen.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let (ok, output) = run_in_own_process(test.name, nocapture);
                    println!(
                        "test {} ... {}",
                        test.name,
                        if ok { "ok" } else { "FAILED" }
                    );
                    if !ok {
                        failures.lock().unwrap().push((test.name, output));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    for (name, output) in &failures {
        println!("\n---- {name} (own process) ----\n{output}");
    }
    let failed = failures.len();
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        chosen.len() - failed,
        failed,
        tests.len() - chosen.len(),
        start.elapsed().as_secs_f64()
    );
    std::io::stdout().flush().ok();
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one test in a fresh process; returns whether it passed and its output.
fn run_in_own_process(name: &str, nocapture: bool) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = if nocapture {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    let err = if nocapture {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    // A process group of its own, so that children the test leaves behind
    // (which would hold its output open) die with it.
    let mut child = Command::new(exe)
        .process_group(0)
        .env(CHILD_ENV, name)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn the test's process");
    // Read the output on other threads so that a chatty test cannot block.
    let stdout = child.stdout.take().map(|mut o| {
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut o, &mut s).ok();
            s
        })
    });
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).ok();
            s
        })
    });
    let deadline = Instant::now() + TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the test's process") {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    kill_group(child.id());
    let mut output = String::new();
    for h in [stdout, stderr].into_iter().flatten() {
        output.push_str(&h.join().unwrap_or_default());
    }
    match status {
        Some(s) if s.success() => (true, output),
        Some(s) => (
            false,
            format!("{output}\n(the test's process ended with {s})"),
        ),
        None => (
            false,
            format!("{output}\n(killed after {TIME_LIMIT:?}: the test hung)"),
        ),
    }
}

/// Kills what is left of the process group `pgid` (the test's forgotten
/// children); nothing if it is empty.
fn kill_group(pgid: u32) {
    if let Some(pgid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Returns once `pid` sleeps in a system call ('S' in /proc/PID/stat), which
/// for a test's parent means it is blocked in the call under test (a test
/// that must signal it there, or kill a lock holder while it waits).
#[allow(dead_code)]
pub fn wait_until_sleeping(pid: rawipc::process::Pid) {
    let path = format!("/proc/{}/stat", pid.as_raw_nonzero());
    loop {
        let stat = std::fs::read_to_string(&path).expect("the process's /proc stat");
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state == Some('S') {
            return;
        }
        std::thread::yield_now();
    }
}
