//! The freestanding example (examples/freestanding): the notes' three
//! demonstrations as a program with no libc and no allocator, through
//! rawipc's Rust API with the `freestanding` feature.
//!
//! It is built in release mode (its own workspace, in a scratch target dir),
//! run, and its output and exit status checked (also when calls fail); then
//! the executable itself: a static ELF executable (no interpreter, no dynamic
//! section), with no undefined symbol and nothing of libc in it, no panic
//! path (nothing of `core::panicking` or `core::fmt`), at most 16 KiB once
//! stripped.
//!
//! Outside a checkout (the packaged crate does not contain the example) every
//! test says so and passes.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, setrlimit};

/// The size the README promises, stripped.
const MAX_STRIPPED_SIZE: u64 = 16 * 1024;

/// What the program prints when all three demonstrations work.
const EXPECTED_OUTPUT: &str = "\
shared memory: the child set glob_var to 5
pipe: \"hello from the child\" (20 bytes), then end of file
messages: sent \"ping\", received \"pong\" \"bye\", then 0: the child is gone
all three worked
";

/// Builds the example once per test process; returns the executable's path.
fn executable() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("freestanding");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--manifest-path"])
            .arg(root.join("examples/freestanding/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .expect("run cargo");
        assert!(status.success(), "building examples/freestanding failed");
        target_dir.join("release/rawipc-freestanding")
    })
}

/// Runs the program (a time limit in case a demonstration hangs); returns its
/// exit code, standard output and standard error.
fn run(mut program: Command) -> (Option<i32>, String, String) {
    let mut child = program
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the freestanding program");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the program") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the freestanding program did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    print!("{stdout}");
    (status.code(), stdout, stderr)
}

/// Whether the files this test needs are here: they are in a checkout, not
/// in the packaged crate. Says so when they are not.
fn in_checkout() -> bool {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/freestanding/Cargo.toml")
        .is_file();
    if !here {
        println!(
            "skipped: examples/freestanding/ is not in the packaged crate; run this test in a checkout"
        );
    }
    here
}

#[test]
fn prints_the_three_results_and_exits_with_0() {
    if !in_checkout() {
        return;
    }
    let (code, stdout, stderr) = run(Command::new(executable()));
    assert_eq!(stdout, EXPECTED_OUTPUT);
    assert_eq!(stderr, "", "it never writes to standard error");
    assert_eq!(code, Some(0));
}

#[test]
fn reports_a_failed_call_with_its_errno_and_exits_with_1() {
    if !in_checkout() {
        return;
    }
    let mut program = Command::new(executable());
    // SAFETY: setrlimit is a single system call, safe between fork and exec.
    unsafe {
        program.pre_exec(|| {
            // Room for fds 0, 1 and 2 only: mmap and fork still work, pipe
            // and socketpair fail with EMFILE.
            let three = Rlimit {
                current: Some(3),
                maximum: Some(3),
            };
            setrlimit(Resource::Nofile, three).map_err(Into::into)
        })
    };
    let (code, stdout, _) = run(program);
    assert_eq!(
        stdout,
        "\
shared memory: the child set glob_var to 5
pipe: FAILED: pipe: errno 24
messages: FAILED: socketpair: errno 24
"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn is_a_static_executable_without_a_dynamic_section() {
    if !in_checkout() {
        return;
    }
    let elf = std::fs::read(executable()).expect("read the executable");
    let header = ElfHeader::parse(&elf);
    assert_eq!(header.e_type, ET_EXEC, "ELF type (2 is EXEC, 3 is DYN/PIE)");
    let segments = header.program_header_types(&elf);
    assert!(
        segments.contains(&PT_LOAD),
        "no loadable segment: {segments:?}"
    );
    assert!(
        !segments.contains(&PT_INTERP),
        "it asks for a dynamic loader"
    );
    assert!(!segments.contains(&PT_DYNAMIC), "it has a DYNAMIC segment");
    let sections = header.section_types(&elf);
    assert!(!sections.is_empty(), "no section headers to check");
    for forbidden in [SHT_DYNAMIC, SHT_DYNSYM] {
        assert!(
            !sections.contains(&forbidden),
            "it has a section of type {forbidden} (.dynamic or .dynsym)"
        );
    }

    // glibc's ldd says so in these words for a static executable.
    let ldd = Command::new("ldd")
        .arg(executable())
        .output()
        .expect("run ldd");
    let said = String::from_utf8_lossy(&ldd.stdout) + String::from_utf8_lossy(&ldd.stderr);
    assert!(said.contains("not a dynamic executable"), "ldd: {said}");
}

#[test]
fn has_no_undefined_symbols_and_no_libc() {
    if !in_checkout() {
        return;
    }
    let undefined = nm(&["-u"]);
    assert_eq!(undefined, "", "undefined symbols");

    let defined = nm(&["--defined-only", "--format=just-symbols"]);
    assert!(
        defined.lines().any(|s| s == "_start"),
        "no _start of its own"
    );
    for libc_symbol in [
        "__libc_start_main",
        "malloc",
        "__rust_alloc",
        "fork",
        "_exit",
    ] {
        assert!(
            !defined.lines().any(|s| s == libc_symbol),
            "it contains `{libc_symbol}`"
        );
    }
}

/// rawipc's paths here have no indexing, `unwrap` or assertion that could
/// fail: nothing calls a panic, so neither the panic machinery nor the
/// formatting it brings is linked.
#[test]
fn links_no_panic_path() {
    if !in_checkout() {
        return;
    }
    let defined = nm(&["--defined-only", "--demangle", "--format=just-symbols"]);
    let panicky: Vec<&str> = defined
        .lines()
        .filter(|s| s.starts_with("core::panicking::") || s.starts_with("core::fmt::"))
        .collect();
    assert!(panicky.is_empty(), "panic paths linked: {panicky:?}");
}

#[test]
fn is_at_most_16_kib_stripped() {
    if !in_checkout() {
        return;
    }
    let stripped = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rawipc-freestanding.stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(executable())
        .status()
        .expect("run strip (binutils)");
    assert!(status.success(), "strip failed");
    let size = std::fs::metadata(&stripped).unwrap().len();
    println!("rawipc-freestanding: {size} bytes stripped");
    assert!(
        size <= MAX_STRIPPED_SIZE,
        "{size} bytes stripped, more than {MAX_STRIPPED_SIZE}"
    );
}

/// `nm <args> <executable>`'s output (binutils).
fn nm(args: &[&str]) -> String {
    let out = Command::new("nm")
        .args(args)
        .arg(executable())
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm {args:?} failed");
    String::from_utf8(out.stdout).expect("nm prints text")
}

const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;

/// The fields of a 64-bit little-endian ELF header that the checks need.
struct ElfHeader {
    e_type: u16,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
    shoff: usize,
    shentsize: usize,
    shnum: usize,
}

impl ElfHeader {
    fn parse(elf: &[u8]) -> Self {
        assert_eq!(elf.get(..4), Some(&b"\x7fELF"[..]), "not an ELF file");
        assert_eq!(elf[4], 2, "not a 64-bit ELF file");
        assert_eq!(elf[5], 1, "not a little-endian ELF file");
        ElfHeader {
            e_type: u16_at(elf, 16),
            phoff: u64_at(elf, 32) as usize,
            phentsize: u16_at(elf, 54).into(),
            phnum: u16_at(elf, 56).into(),
            shoff: u64_at(elf, 40) as usize,
            shentsize: u16_at(elf, 58).into(),
            shnum: u16_at(elf, 60).into(),
        }
    }

    /// `p_type` of each program header (segment).
    fn program_header_types(&self, elf: &[u8]) -> Vec<u32> {
        (0..self.phnum)
            .map(|i| u32_at(elf, self.phoff + i * self.phentsize))
            .collect()
    }

    /// `sh_type` of each section header.
    fn section_types(&self, elf: &[u8]) -> Vec<u32> {
        (0..self.shnum)
            .map(|i| u32_at(elf, self.shoff + i * self.shentsize + 4))
            .collect()
    }
}

fn u16_at(elf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(elf[at..at + 2].try_into().unwrap())
}

fn u32_at(elf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(elf[at..at + 4].try_into().unwrap())
}

fn u64_at(elf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(elf[at..at + 8].try_into().unwrap())
}
