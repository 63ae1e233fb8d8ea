//! The C ABI as a C user meets it: build `librawipc.a` with cargo, compile C
//! programs against `include/rawipc.h` with the system C compiler (found by
//! the `cc` crate), link them with nothing but the archive, and run them.
//!
//! - every pair in `c-examples/` (NAME_course.c, NAME_rawipc.c) builds without
//!   a warning and both programs print the same; the shared-memory counter
//!   prints exactly "5";
//! - the C contract test `tests/c/contract.c` passes;
//! - the header compiles as C99, C11 and C++ with every warning an error;
//! - the notes' shared-memory example linked statically against
//!   `librawipc.a` is at most 32 KiB larger than the course version;
//! - the differential test: C programs written for libc
//!   (`tests/c/libc_programs/`, and the course versions in `c-examples/`),
//!   each built once with libc and once with every mirrored call swapped for
//!   rawipc's through `include/rawipc_swap.h`, print the same, exit with the
//!   same status and die of the same signal.
//!
//! Nothing here forks in the test process (the C programs do), so the normal
//! harness is fine. The library is built once, in a target directory of its
//! own under `CARGO_TARGET_TMPDIR` (the outer cargo holds the main one's lock).
//!
//! Outside a checkout (the packaged crate has neither the C library nor the C
//! sources) every test says so and passes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every warning is an error, in every C compile here.
const STRICT: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// How much larger the rawipc counter may be than the course one.
const SIZE_BUDGET: u64 = 32 * 1024;

/// The pairs the notes call for; more may be added beside them.
const REQUIRED_PAIRS: &[&str] = &["shm_counter", "pipe", "eof_child_death", "msg_socket"];

/// How long one C program may run before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The same under valgrind, which runs a program some 20-50 times slower:
/// the contract test takes ~100 s there on a loaded two-CPU machine. A hang
/// check, not a measure.
const VALGRIND_LIMIT: Duration = Duration::from_secs(400);

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// A scratch directory for this test binary's builds.
fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
    fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// This machine's target triple, for the `cc` crate.
fn target() -> String {
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    format!("{}-unknown-linux-{env}", std::env::consts::ARCH)
}

/// The system C (or C++) compiler, as the `cc` crate finds it, at -O2.
fn compiler(cpp: bool) -> Command {
    let triple = target();
    cc::Build::new()
        .cpp(cpp)
        .opt_level(2)
        .debug(false)
        .target(&triple)
        .host(&triple)
        .cargo_metadata(false)
        .get_compiler()
        .to_command()
}

/// `librawipc.a`, built once with `cargo build --release` as the README says.
fn library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let target_dir = scratch().join("capi-target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root().join("capi/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // The outer cargo's settings must not move or change the output.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET");
        let started = Instant::now();
        let out = build.output().expect("run cargo");
        assert!(
            out.status.success(),
            "building the C library failed ({}): {build:?}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let lib = target_dir.join("release/librawipc.a");
        assert!(
            lib.is_file(),
            "cargo succeeded but left no {}",
            lib.display()
        );
        println!("built {} in {:.1?}", lib.display(), started.elapsed());
        lib
    })
}

/// Compiles `sources` into `output` with the strict flags plus `flags`, and
/// fails unless the compiler succeeds and prints nothing (no warning).
fn compile(cpp: bool, flags: &[&str], sources: &[PathBuf], output: &Path, link: &[&Path]) {
    let mut cmd = compiler(cpp);
    cmd.args(STRICT)
        .arg("-I")
        .arg(root().join("include"))
        .args(flags)
        .arg("-o")
        .arg(output)
        .args(sources)
        .args(link);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
        "compiling {} failed or warned ({}):\n{cmd:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.display(),
        out.status,
    );
}

/// What a finished program printed, and how it ended.
struct Ran {
    success: bool,
    status: String,
    /// Exit code, or the number of the signal that ended it (as `-signal`).
    ended: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program` with a time limit, capturing its output.
fn run(program: &Path, args: &[&str]) -> Ran {
    run_with_env(program, args, &[])
}

/// [`run`] with extra environment variables.
fn run_with_env(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    run_limited(program, args, env, RUN_LIMIT)
}

/// [`run_with_env`], killed after `limit` (then `ended` is None).
fn run_limited(program: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Ran {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    // Drain both pipes while it runs, so a chatty program never blocks.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the program") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    Ran {
        success: status.is_some_and(|s| s.success()),
        ended: status.and_then(|s| s.code().or_else(|| s.signal().map(|sig| -sig))),
        status: match status {
            Some(s) => s.to_string(),
            None => format!("killed after {limit:?}"),
        },
        stdout,
        stderr,
    }
}

/// The example pairs: every NAME_course.c in c-examples/ and its twin.
fn example_pairs() -> Vec<String> {
    let dir = root().join("c-examples");
    let mut pairs: Vec<String> = fs::read_dir(&dir)
        .expect("read c-examples/")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix("_course.c")?.to_owned())
        })
        .collect();
    pairs.sort();
    for pair in &pairs {
        assert!(
            dir.join(format!("{pair}_rawipc.c")).is_file(),
            "c-examples/{pair}_course.c has no twin {pair}_rawipc.c"
        );
    }
    for required in REQUIRED_PAIRS {
        assert!(
            pairs.iter().any(|p| p == required),
            "c-examples/ lacks the pair {required}_course.c / {required}_rawipc.c"
        );
    }
    pairs
}

/// Whether the files this test needs are here: they are in a checkout, not
/// in the packaged crate. Says so when they are not.
fn in_checkout() -> bool {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("capi/Cargo.toml")
        .is_file();
    if !here {
        println!(
            "skipped: the C library (capi/), include/, c-examples/ and tests/c/ are not in the packaged crate; run this test in a checkout"
        );
    }
    here
}

#[test]
fn every_example_pair_builds_cleanly_and_prints_the_same() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let dir = scratch().join("examples");
    fs::create_dir_all(&dir).expect("create the examples directory");
    for pair in example_pairs() {
        let mut outputs = Vec::new();
        for version in ["course", "rawipc"] {
            let name = format!("{pair}_{version}");
            let source = root().join("c-examples").join(format!("{name}.c"));
            let program = dir.join(&name);
            let link: &[&Path] = if version == "rawipc" { &[lib] } else { &[] };
            compile(false, &["-std=c11"], &[source], &program, link);
            let ran = run(&program, &[]);
            println!("--- {name} ({})\n{}", ran.status, ran.stdout);
            assert!(
                ran.success && ran.stderr.is_empty(),
                "{name} failed ({}):\n--- stdout\n{}--- stderr\n{}",
                ran.status,
                ran.stdout,
                ran.stderr
            );
            if version == "rawipc" {
                let explained = run_with_env(&program, &[], EXPLAIN);
                assert!(
                    explained.success
                        && explained.stderr.is_empty()
                        && explained.stdout == ran.stdout,
                    "{name} with RAWIPC_EXPLAIN=1 must print the same and nothing on stderr ({}):\n\
                     --- stdout\n{}--- stderr\n{}",
                    explained.status,
                    explained.stdout,
                    explained.stderr
                );
            }
            outputs.push(ran.stdout);
        }
        assert!(
            outputs[0] == outputs[1],
            "{pair}: the two versions print differently\n--- {pair}_course\n{}--- {pair}_rawipc\n{}",
            outputs[0],
            outputs[1]
        );
        if pair == "shm_counter" {
            assert_eq!(outputs[1], "5\n", "the notes' counter must print 5");
        }
    }
}

#[test]
fn c_contract_test_passes() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let dir = root().join("tests/c");
    let mut sources: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("read tests/c/")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            (name.starts_with("contract") && name.ends_with(".c")).then_some(path)
        })
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no tests/c/contract*.c");
    let program = scratch().join("contract");
    compile(false, &["-std=c11"], &sources, &program, &[lib]);
    let ran = run_c_test(&program, "the C contract test");
    assert!(
        ran.stdout.contains(" checks, 0 failed"),
        "the contract test ended without its summary:\n{}",
        ran.stdout
    );
}

/// The C tests of the fast path, one program each: `tests/c/chan.c` (the
/// channel's contract: NULL, unmade handles, sizes, the wrong side, zero-copy
/// misuse, dead peers, no fd left behind) and `tests/c/mutex.c` (NULL and
/// misaligned pointers, EBUSY, EPERM, EOWNERDEAD after a SIGKILLed holder,
/// rawipc_mutex_consistent, ENOTRECOVERABLE) and `tests/c/unrelated.c`
/// (named endpoints and who they admit, fd passing, sealed memory, channel
/// hand-over, between programs that exec'd separately), `tests/c/timeout.c`
/// (every `_timeout` call and rawipc_mutex_timedlock: ETIMEDOUT never early,
/// under signal storms too, 0 and -1, EINVAL for other negative timeouts, a
/// gone peer reported at once, nothing lost) and `tests/c/msg_large.c`
/// (messages above the socket's limit: sizes, a buffer too small, forged
/// headers, a killed sender). Each exits non-zero if any of its checks
/// failed.
#[test]
fn chan_and_mutex_c_tests_pass() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    for name in ["chan", "mutex", "unrelated", "timeout", "msg_large"] {
        let program = scratch().join(format!("{name}-test"));
        let source = root().join(format!("tests/c/{name}.c"));
        compile(false, &["-std=c11"], &[source], &program, &[lib]);
        run_c_test(&program, &format!("tests/c/{name}.c"));
    }
}

/// The C server of many clients, `c-examples/chan_server.c`: 64 clients it
/// forks and 6 started separately (`chan_client.c`, through a name and the
/// hand-over), 10 of them killed with SIGKILL, all waited on in one
/// `epoll_wait` with a pipe. `c-examples/run-server.sh` checks that every
/// request of a living client is answered and every killed client noticed.
#[test]
fn c_server_serves_many_clients_and_notices_the_killed() {
    if !in_checkout() {
        return;
    }
    let dir = scratch().join("server");
    fs::create_dir_all(&dir).expect("create the server directory");
    for name in ["chan_server", "chan_client"] {
        let source = root().join("c-examples").join(format!("{name}.c"));
        let flags = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
        compile(false, &flags, &[source], &dir.join(name), &[library()]);
    }
    let script = root().join("c-examples/run-server.sh");
    let ran = run(
        Path::new("sh"),
        &[
            script.to_str().expect("a UTF-8 path"),
            "show",
            dir.to_str().expect("a UTF-8 path"),
        ],
    );
    println!("{}", ran.stdout);
    assert!(
        ran.success
            && ran
                .stdout
                .contains("every living client answered, every killed one noticed"),
        "run-server.sh ({}):\n--- stdout\n{}--- stderr\n{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
}

/// The C test of request and reply in one slot, `tests/c/call.c`: NULL,
/// unmade handles, sizes, the wrong side, answering out of turn, calls
/// across fork at the boundaries, a reply too long for its buffer, timeouts,
/// a killed server or client, no fd left behind.
#[test]
fn call_c_test_passes() {
    if !in_checkout() {
        return;
    }
    let program = scratch().join("call-test");
    let source = root().join("tests/c/call.c");
    compile(false, &["-std=c11"], &[source], &program, &[library()]);
    run_c_test(&program, "tests/c/call.c");
}

/// The C test of fast pipes, `tests/c/pipe_fast.c`: capacity and its
/// limits (EPERM above pipe-max-size when unprivileged, EBUSY, EINVAL,
/// EBADF), a vmsplice writer's bytes across fork with a fast and a slow
/// reader, reserve and commit, EPIPE without SIGPIPE, who owns the fd.
#[test]
fn pipe_fast_c_test_passes() {
    if !in_checkout() {
        return;
    }
    let program = scratch().join("pipe-fast-test");
    let source = root().join("tests/c/pipe_fast.c");
    compile(false, &["-std=c11"], &[source], &program, &[library()]);
    run_c_test(&program, "tests/c/pipe_fast.c");
}

/// The C contract, channel, call, mutex, timeout and large-message tests again, under valgrind's memcheck
/// with the default spin: no invalid access, no use of undefined memory, in
/// the test programs or in any child they fork. valgrind runs programs on a
/// synthetic CPU that does not map the vDSO where the kernel says it is, so
/// this also checks that the library takes the time (and all it gets from
/// the auxiliary vector) through libc. Skipped if valgrind is not installed,
/// except in CI (`CI` set), which installs it.
#[test]
fn c_tests_are_valgrind_clean() {
    if !in_checkout() {
        return;
    }
    let has_valgrind = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_valgrind {
        assert!(std::env::var_os("CI").is_none(), "CI must install valgrind");
        println!("skipped: valgrind is not installed");
        return;
    }
    let lib = library();
    let dir = root().join("tests/c");
    for name in ["contract", "chan", "call", "mutex", "timeout", "msg_large"] {
        let program = scratch().join(format!("{name}-valgrind"));
        let source = dir.join(format!("{name}.c"));
        compile(false, &["-std=c11", "-g"], &[source], &program, &[lib]);
        let log = scratch().join(format!("{name}-valgrind.log"));
        let ran = run_limited(
            Path::new("valgrind"),
            &[
                "--quiet",
                "--error-exitcode=99",
                "--child-silent-after-fork=no",
                // The contract test's deliberate bad pointers (see the file).
                &format!("--suppressions={}", dir.join("valgrind.supp").display()),
                &format!("--log-file={}.%p", log.display()),
                program.to_str().expect("a UTF-8 path"),
            ],
            &[],
            VALGRIND_LIMIT,
        );
        // One log per process. With --quiet, memcheck writes only its error
        // reports ("==PID== ..."); valgrind's own notes ("--PID-- ...", such
        // as a system call it does not know, which fails with ENOSYS) are no
        // error of the program's.
        let mut errors = String::new();
        let mut notes = 0;
        for entry in fs::read_dir(scratch()).expect("read the scratch directory") {
            let path = entry.expect("an entry").path();
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if file.starts_with(&format!("{name}-valgrind.log.")) {
                for line in fs::read_to_string(&path).unwrap_or_default().lines() {
                    if line.starts_with("==") {
                        errors.push_str(line);
                        errors.push('\n');
                    } else if line.contains("WARNING") {
                        notes += 1;
                    }
                }
                let _ = fs::remove_file(&path);
            }
        }
        if notes > 0 {
            println!("tests/c/{name}.c: {notes} warnings of valgrind's own");
        }
        assert!(
            ran.success && errors.is_empty(),
            "tests/c/{name}.c under valgrind ({}):\n{errors}\n--- stdout\n{}\n--- stderr\n{}",
            ran.status,
            ran.stdout,
            ran.stderr
        );
        println!("tests/c/{name}.c: valgrind reports no error");
    }
}

/// Runs a C test program (one line per check, `ok ...` for those that
/// passed) and fails unless it succeeded, showing the checks that did not.
fn run_c_test(program: &Path, what: &str) -> Ran {
    let ran = run(program, &[]);
    println!("{}", ran.stdout);
    let not_ok: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| !l.starts_with("ok "))
        .collect();
    assert!(
        ran.success,
        "{what} failed ({}):\n{}\n--- stderr\n{}",
        ran.status,
        not_ok.join("\n"),
        ran.stderr
    );
    ran
}

#[test]
fn header_compiles_as_c99_c11_and_cpp() {
    if !in_checkout() {
        return;
    }
    let source = root().join("tests/c/header_check.c");
    let dir = scratch().join("header");
    fs::create_dir_all(&dir).expect("create the header directory");
    for (cpp, std) in [
        (false, "-std=c99"),
        (false, "-std=c11"),
        (true, "-std=c++11"),
        (true, "-std=c++17"),
    ] {
        let lang: &[&str] = if cpp { &["-x", "c++"] } else { &[] };
        let flags = [lang, &[std, "-c"]].concat();
        let object = dir.join(format!("header{}.o", std.trim_start_matches("-std=")));
        compile(cpp, &flags, std::slice::from_ref(&source), &object, &[]);
        println!("include/rawipc.h compiles cleanly with {std}");
    }
}

#[test]
fn static_notes_example_stays_within_its_size_budget() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let dir = scratch().join("size");
    fs::create_dir_all(&dir).expect("create the size directory");
    let static_gc = [
        "-std=c11",
        "-static",
        "-ffunction-sections",
        "-fdata-sections",
        "-Wl,--gc-sections",
    ];
    let mut sizes = Vec::new();
    for (strip, label) in [
        (true, "stripped (-s)"),
        (false, "with symbols and debug info"),
    ] {
        let mut measured = Vec::new();
        for version in ["course", "rawipc"] {
            let name = format!("shm_counter_{version}");
            let program = dir.join(format!("{name}{}", if strip { "-s" } else { "" }));
            let source = root().join("c-examples").join(format!("{name}.c"));
            let link: &[&Path] = if version == "rawipc" { &[lib] } else { &[] };
            let flags = [&static_gc[..], if strip { &["-s"] } else { &[] }].concat();
            compile(false, &flags, &[source], &program, link);
            let ran = run(&program, &[]);
            assert!(
                ran.success && ran.stdout == "5\n",
                "{} (static) should print 5: {} {:?} {:?}",
                program.display(),
                ran.status,
                ran.stdout,
                ran.stderr
            );
            let size = fs::metadata(&program).expect("stat the program").len();
            measured.push(size);
        }
        println!(
            "static, --gc-sections, {label}: course {} bytes, rawipc {} bytes, rawipc adds {} bytes",
            measured[0],
            measured[1],
            measured[1] as i64 - measured[0] as i64
        );
        sizes.push(measured);
    }
    // The budget is on what a program carries when it runs: a Rust static
    // library brings the DWARF of the precompiled `core` along, which only
    // a stripped link drops (the other figure is printed above).
    let (course, rawipc) = (sizes[0][0], sizes[0][1]);
    assert!(
        rawipc <= course + SIZE_BUDGET,
        "the notes' example with rawipc is {rawipc} bytes, more than {SIZE_BUDGET} bytes above \
         the course version's {course}"
    );
}

/// The programs of the differential test: every `tests/c/libc_programs/*.c`
/// and every course version in `c-examples/`.
fn libc_programs() -> Vec<PathBuf> {
    let mut programs: Vec<PathBuf> = Vec::new();
    for (dir, suffix) in [("tests/c/libc_programs", ".c"), ("c-examples", "_course.c")] {
        for entry in fs::read_dir(root().join(dir)).expect("read the programs' directory") {
            let path = entry.expect("a directory entry").path();
            if path.to_str().is_some_and(|p| p.ends_with(suffix)) {
                programs.push(path);
            }
        }
    }
    programs.sort();
    assert!(programs.len() >= 10, "too few programs: {programs:?}");
    programs
}

/// Builds each program twice, with libc and through `rawipc_swap.h`, runs
/// both with `env`, and fails unless stdout, the exit status and the
/// terminating signal are the same. Returns each program's name and its two
/// runs (libc, swap).
fn differential(env: &[(&str, &str)]) -> Vec<(String, Ran, Ran)> {
    let lib = library();
    let dir = scratch().join("differential");
    fs::create_dir_all(&dir).expect("create the differential directory");
    let swap = root().join("include/rawipc_swap.h");
    let swap = swap.to_str().expect("a UTF-8 path");
    let mut differ = Vec::new();
    let mut runs = Vec::new();
    let programs = libc_programs();
    for source in &programs {
        let name = source.file_stem().and_then(|s| s.to_str()).expect("a name");
        let include = source.parent().expect("a directory").to_path_buf();
        let include = include.to_str().expect("a UTF-8 path");
        let mut ran = Vec::new();
        for (build, flags, link) in [
            ("libc", vec!["-std=c11", "-I", include], &[][..]),
            (
                "swap",
                vec!["-std=c11", "-I", include, "-include", swap],
                &[lib][..],
            ),
        ] {
            let program = dir.join(format!("{name}-{build}"));
            compile(false, &flags, std::slice::from_ref(source), &program, link);
            let program = program.to_str().expect("a UTF-8 path").to_owned();
            ran.push(run_with_env(Path::new(&program), &[], env));
        }
        let (libc, swap) = (&ran[0], &ran[1]);
        println!(
            "--- {name}: libc {} / swap {}\n{}",
            libc.status, swap.status, libc.stdout
        );
        assert!(
            libc.ended.is_some(),
            "{name} (libc) did not finish: {}",
            libc.status
        );
        if libc.stdout != swap.stdout || libc.ended != swap.ended {
            differ.push(format!(
                "{name}: libc {} / swap {}\n--- libc\n{}--- swap\n{}--- swap stderr\n{}",
                libc.status, swap.status, libc.stdout, swap.stdout, swap.stderr
            ));
        }
        let swap = ran.pop().expect("the swap run");
        let libc = ran.pop().expect("the libc run");
        runs.push((name.to_owned(), libc, swap));
    }
    assert!(
        differ.is_empty(),
        "{} of {} programs behave differently through rawipc_swap.h:\n{}",
        differ.len(),
        programs.len(),
        differ.join("\n")
    );
    runs
}

#[test]
fn libc_programs_behave_the_same_through_the_swap_header() {
    if !in_checkout() {
        return;
    }
    let compared = differential(&[]).len();
    println!("{compared} programs: same output, exit status and signal both ways");
}

/// The environment that turns explain mode on.
const EXPLAIN: &[(&str, &str)] = &[("RAWIPC_EXPLAIN", "1")];

/// What explain mode's paragraphs begin with.
const EXPLAINED: &str = "rawipc explain (pid ";

/// With explain mode on, the differential programs still behave as with
/// libc, and rawipc adds nothing to what they print on stderr, but for
/// sigpipe.c, whose very point is to write to pipes with no reader: there it
/// explains exactly that, and nothing else.
#[test]
fn explain_mode_changes_nothing_and_says_nothing_for_correct_programs() {
    if !in_checkout() {
        return;
    }
    let runs = differential(EXPLAIN);
    for (name, libc, swap) in &runs {
        let (explained, rest): (Vec<&str>, Vec<&str>) =
            swap.stderr.lines().partition(|l| l.starts_with(EXPLAINED));
        let rest: String = rest.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(
            rest, libc.stderr,
            "{name}: stderr differs beyond explain mode's paragraphs"
        );
        if name == "sigpipe" {
            assert!(
                explained
                    .iter()
                    .all(|l| l.contains("SIGPIPE") || l.contains("EPIPE"))
                    && explained
                        .iter()
                        .any(|l| l.contains("SIGPIPE, which ends this process"))
                    && explained.iter().any(|l| l.contains("failed with EPIPE")),
                "sigpipe: expected the SIGPIPE and EPIPE explanations only:\n{}",
                swap.stderr
            );
        } else {
            assert!(
                explained.is_empty(),
                "{name} is a correct program, yet explain mode said:\n{}",
                swap.stderr
            );
        }
    }
    println!(
        "{} programs: nothing changed, nothing said without cause",
        runs.len()
    );
}

/// `text` with every number as "N": the pids a program prints differ from
/// run to run.
fn pids_as_n(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('N') {
            out.push('N');
        }
    }
    out
}

/// With explain mode on, the mirrors leave errno as the calls do (a C
/// program checks, `tests/c/explain_errno.c`), and say nothing: nothing it
/// does is a mistake.
#[test]
fn explain_mode_keeps_errno_as_the_calls_leave_it() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let program = scratch().join("explain_errno");
    let source = root().join("tests/c/explain_errno.c");
    compile(false, &["-std=c11"], &[source], &program, &[lib]);
    let ran = run_with_env(&program, &[], EXPLAIN);
    assert!(
        ran.success && ran.stderr.is_empty(),
        "explain_errno ({}):\n{}--- stderr\n{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
}

/// How long a classic mistake runs without explain mode before it counts as
/// hanging, and with it (long enough for a call blocked 3 seconds).
const HANG: Duration = Duration::from_secs(2);
const EXPLAIN_HANG: Duration = Duration::from_secs(8);

/// Each program in c-examples/mistakes/, built with libc and through the
/// swap header: without the variable both behave alike (same output, same
/// end: a hang, SIGPIPE, an exit); with RAWIPC_EXPLAIN=1 the swap build
/// prints its explanation, naming the fds or pids, and otherwise behaves
/// as without it.
#[test]
fn each_classic_mistake_is_explained_and_otherwise_unchanged() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let dir = scratch().join("mistakes");
    fs::create_dir_all(&dir).expect("create the mistakes directory");
    let swap = root().join("include/rawipc_swap.h");
    let swap = swap.to_str().expect("a UTF-8 path").to_owned();
    let mut names: Vec<String> = fs::read_dir(root().join("c-examples/mistakes"))
        .expect("read c-examples/mistakes/")
        .filter_map(|e| {
            Some(
                e.ok()?
                    .file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".c")?
                    .to_owned(),
            )
        })
        .collect();
    names.sort();
    for required in [
        "forgot_close",
        "wait_before_read",
        "sigpipe_silent",
        "zombies",
        "both_read_first",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "c-examples/mistakes/ lacks {required}.c"
        );
    }
    let mut programs = Vec::new();
    for name in &names {
        let source = root().join(format!("c-examples/mistakes/{name}.c"));
        let libc = dir.join(format!("{name}-libc"));
        let swapped = dir.join(format!("{name}-swap"));
        compile(
            false,
            &["-std=c11"],
            std::slice::from_ref(&source),
            &libc,
            &[],
        );
        compile(
            false,
            &["-std=c11", "-include", &swap],
            &[source],
            &swapped,
            &[lib],
        );
        programs.push((name.clone(), libc, swapped));
    }
    // Each program's three runs in a thread of its own: most of them hang.
    let results: Vec<(String, Ran, Ran, Ran)> = thread::scope(|scope| {
        let handles: Vec<_> = programs
            .iter()
            .map(|(name, libc, swapped)| {
                scope.spawn(move || {
                    let plain = run_limited(libc, &[], &[], HANG);
                    let swap = run_limited(swapped, &[], &[], HANG);
                    let explained = run_limited(swapped, &[], EXPLAIN, EXPLAIN_HANG);
                    (name.clone(), plain, swap, explained)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a runner"))
            .collect()
    });
    for (name, plain, swap, explained) in &results {
        println!(
            "--- {name}: libc {} / swap {} / explained {}\n{}",
            plain.status, swap.status, explained.status, explained.stderr
        );
        for (what, other) in [
            ("without the variable", swap),
            ("with RAWIPC_EXPLAIN=1", explained),
        ] {
            assert!(
                pids_as_n(&other.stdout) == pids_as_n(&plain.stdout) && other.ended == plain.ended,
                "{name} {what} behaves differently from libc: libc {} {:?} / {} {:?}",
                plain.status,
                plain.stdout,
                other.status,
                other.stdout
            );
        }
        assert!(
            !swap.stderr.contains(EXPLAINED),
            "{name}: explain mode spoke while off:\n{}",
            swap.stderr
        );
        let said = &explained.stderr;
        let expect: Vec<String> = match name.as_str() {
            "forgot_close" => vec![
                "read(fd 3) has waited".into(),
                "holds fd 4, a write end of the same pipe".into(),
            ],
            "wait_before_read" => vec!["holds fd 3, the read end of a pipe that is full".into()],
            "sigpipe_silent" => vec![
                "write(fd 4) is about to write to a pipe whose read end no process holds".into(),
            ],
            "both_read_first" => vec![
                "read(fd 5) has waited".into(),
                "read(fd 3) has waited".into(),
            ],
            "zombies" => {
                let pids: Vec<&str> = explained
                    .stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("started worker "))
                    .collect();
                assert_eq!(pids.len(), 3, "zombies: {:?}", explained.stdout);
                vec![format!(
                    "exiting with 3 children it never waited for (pids {})",
                    pids.join(", ")
                )]
            }
            other => panic!("c-examples/mistakes/{other}.c has no expected explanation here"),
        };
        for e in &expect {
            assert!(
                said.contains(e.as_str()),
                "{name} with RAWIPC_EXPLAIN=1 should say {e:?}; it said:\n{said}"
            );
        }
        // Once each. (When the test stops a hanging program, what its child
        // does next may be explained too: both_read_first's child then
        // writes to a pipe whose reader is gone.)
        let paragraphs: Vec<&str> = said.lines().filter(|l| l.starts_with(EXPLAINED)).collect();
        for e in &expect {
            let times = paragraphs.iter().filter(|l| l.contains(e.as_str())).count();
            assert_eq!(times, 1, "{name}: {e:?} should be said once:\n{said}");
        }
        let mut unique = paragraphs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            paragraphs.len(),
            "{name}: a paragraph said twice:\n{said}"
        );
    }
}

/// The swap header compiles as C99 and C11 before any system header, with
/// every warning an error, and declares what the system headers then
/// declare again (same types), also with `_FORTIFY_SOURCE` asked for.
#[test]
fn swap_header_renames_calls_pointers_and_members_alike() {
    if !in_checkout() {
        return;
    }
    let lib = library();
    let dir = scratch().join("swap");
    fs::create_dir_all(&dir).expect("create the swap directory");
    let source = dir.join("swap_check.c");
    fs::write(
        &source,
        r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
struct ops { ssize_t (*read)(int, void *, size_t); };
int main(void)
{
    int p[2], st;
    char b[4];
    struct ops o = { read };
    ssize_t (*w)(int, const void *, size_t) = write;
    if (pipe2(p, O_CLOEXEC) != 0 || w(p[1], "hi", 2) != 2 || o.read(p[0], b, 4) != 2)
        return 1;
    if (o.read != rawipc_read || w != rawipc_write)
        return 2;
    if (fork() == 0)
        _exit(3);
    if (wait(&st) == -1 || WEXITSTATUS(st) != 3)
        return 4;
    puts("renamed");
    return 0;
}
"#,
    )
    .expect("write the check");
    let swap = root().join("include/rawipc_swap.h");
    let swap = swap.to_str().expect("a UTF-8 path");
    for std in ["-std=c99", "-std=c11"] {
        for fortify in [&[][..], &["-D_FORTIFY_SOURCE=2"][..]] {
            let program = dir.join(format!("swap{std}{}", fortify.len()));
            let flags = [&[std, "-include", swap][..], fortify].concat();
            compile(
                false,
                &flags,
                std::slice::from_ref(&source),
                &program,
                &[lib],
            );
            let ran = run(&program, &[]);
            assert!(
                ran.success && ran.stdout == "renamed\n",
                "{std} {fortify:?}: {} {:?}",
                ran.status,
                ran.stdout
            );
        }
    }
}
