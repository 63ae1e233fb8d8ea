//! The C library as an installed package: `make install` into a temporary
//! DESTDIR, then what a C user does with it.
//!
//! - the files land where they belong: every header of include/, the static
//!   library, `librawipc.so.X.Y.Z` with its soname link and the link for
//!   `-lrawipc`, `rawipc.pc`, the man pages;
//! - `readelf` shows the shared library's soname, a `NEEDED` on libc, and a
//!   dynamic symbol table that exports exactly the functions of rawipc.h;
//! - `tests/c/installed.c` builds with `pkg-config --cflags --libs rawipc`
//!   against the shared library and, with `--static`, statically, and runs;
//! - `man rawipc` finds the overview;
//! - `make uninstall` removes every file again.
//!
//! It needs make, a C compiler, readelf and pkg-config; without pkg-config it
//! says so and passes (but under CI, which installs it). Outside a checkout
//! (the packaged crate has no Makefile) it says so and passes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PREFIX: &str = "/usr/local";

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn scratch() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("install")
}

/// Runs `cmd`; fails, showing its output, unless it succeeds.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `major.minor` while the major version is 0, else the major version.
fn abi() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        major => major.to_owned(),
    }
}

/// The functions rawipc.h declares: `rawipc_NAME(` at the start of a
/// declaration, after its return type.
fn header_functions() -> BTreeSet<String> {
    let header = fs::read_to_string(root().join("include/rawipc.h")).expect("include/rawipc.h");
    header
        .lines()
        // A declaration's first line (a wrapped one continues indented).
        .filter(|l| !l.starts_with([' ', '#', '/', '*', '}']) && l.contains('('))
        .filter_map(|l| {
            let start = l.find("rawipc_")?;
            let end = start + l[start..].find('(')?;
            Some(l[start..end].to_owned())
        })
        .collect()
}

/// Every file (not directory) under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found
}

#[test]
fn make_install_gives_a_library_that_c_programs_build_and_run_with() {
    if !root().join("Makefile").is_file() {
        println!("skipped: the Makefile and the C library are not in the packaged crate");
        return;
    }
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "pkg-config is not installed (CI must install it)"
        );
        println!("skipped: pkg-config is not installed");
        return;
    }
    let destdir = scratch().join("destdir");
    let _ = fs::remove_dir_all(&destdir);
    fs::create_dir_all(&destdir).expect("create the DESTDIR");
    // The C library's target directory is the one tests/c_abi.rs builds in,
    // so that whichever runs second finds it built.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_abi/capi-target");
    let make = |goal: &str| {
        let mut cmd = Command::new("make");
        cmd.current_dir(root())
            .arg("--no-print-directory")
            .arg(goal)
            .arg(format!("PREFIX={PREFIX}"))
            .arg(format!("DESTDIR={}", destdir.display()))
            .arg(format!("TARGET_DIR={}", target_dir.display()))
            .env("CARGO", env!("CARGO"))
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("MAKEFLAGS");
        ok(&mut cmd);
    };
    make("all");
    make("install");

    // The files, where they belong.
    let prefix = destdir.join(PREFIX.trim_start_matches('/'));
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let real = format!("librawipc.so.{version}");
    let soname = format!("librawipc.so.{}", abi());
    let mut expected: BTreeSet<PathBuf> = [
        "lib/librawipc.a".to_owned(),
        format!("lib/{real}"),
        format!("lib/{soname}"),
        "lib/librawipc.so".to_owned(),
        "lib/pkgconfig/rawipc.pc".to_owned(),
        "share/man/man7/rawipc.7".to_owned(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    for header in fs::read_dir(root().join("include")).expect("read include/") {
        let name = header.unwrap().file_name();
        expected.insert(Path::new("include").join(name));
    }
    for section in ["man3", "man7"] {
        for page in fs::read_dir(root().join("man").join(section)).expect("read man/") {
            let name = page.unwrap().file_name();
            expected.insert(Path::new("share/man").join(section).join(name));
        }
    }
    let installed = files_under(&prefix);
    assert_eq!(
        installed, expected,
        "make install installed other files than expected"
    );
    assert_eq!(fs::read_link(lib.join(&soname)).unwrap(), Path::new(&real));
    assert_eq!(
        fs::read_link(lib.join("librawipc.so")).unwrap(),
        Path::new(&soname)
    );
    assert!(
        files_under(&destdir)
            .iter()
            .all(|p| p.starts_with(PREFIX.trim_start_matches('/')))
    );

    // The shared library: soname, NEEDED libc, only rawipc.h's functions.
    let so = lib.join(&real);
    let dynamic = stdout(&ok(Command::new("readelf").arg("-d").arg(&so)));
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "{} has not the soname {soname}:\n{dynamic}",
        so.display()
    );
    assert!(
        dynamic.contains("Shared library: [libc.so.6]"),
        "{} does not name libc as NEEDED:\n{dynamic}",
        so.display()
    );
    let symbols = stdout(&ok(Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(&so)));
    let mut exported = BTreeSet::new();
    for line in symbols.lines() {
        // Num: Value Size Type Bind Vis Ndx Name
        let fields: Vec<&str> = line.split_whitespace().collect();
        let numbered = fields
            .first()
            .and_then(|f| f.strip_suffix(':'))
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if fields.len() < 8 || !numbered || fields[6] == "UND" {
            continue;
        }
        if fields[4] == "LOCAL" {
            continue;
        }
        assert_eq!(
            fields[3],
            "FUNC",
            "{} exports a non-function: {line}",
            so.display()
        );
        exported.insert(fields[7].split('@').next().unwrap().to_owned());
    }
    assert_eq!(
        exported,
        header_functions(),
        "librawipc.so must export exactly the functions of include/rawipc.h"
    );
    println!(
        "{}: soname {soname}, NEEDED libc.so.6, {} functions exported",
        so.display(),
        exported.len()
    );

    // A C program built with pkg-config, shared and static.
    let pkg_config = |args: &[&str]| -> Vec<String> {
        let out = ok(Command::new("pkg-config")
            .args(args)
            .arg("rawipc")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
            .env("PKG_CONFIG_LIBDIR", lib.join("pkgconfig"))
            .env("PKG_CONFIG_SYSROOT_DIR", &destdir));
        stdout(&out).split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(pkg_config(&["--modversion"]), [version]);
    let source = root().join("tests/c/installed.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    for (how, static_) in [("shared", false), ("static", true)] {
        let program = scratch().join(format!("installed-{how}"));
        let flags = if static_ {
            pkg_config(&["--static", "--cflags", "--libs"])
        } else {
            pkg_config(&["--cflags", "--libs"])
        };
        let mut build = Command::new(&cc);
        build.args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-o",
        ]);
        build.arg(&program).arg(&source).args(&flags);
        if static_ {
            build.arg("-static");
        }
        ok(&mut build);
        let needed = stdout(&ok(Command::new("readelf").arg("-d").arg(&program)));
        assert_eq!(
            needed.contains(&format!("Shared library: [{soname}]")),
            !static_,
            "the {how} program's NEEDED entries:\n{needed}"
        );
        let ran = ok(Command::new(&program).env("LD_LIBRARY_PATH", &lib));
        assert_eq!(stdout(&ran), format!("ok {version}\n"), "the {how} program");
        println!("{how}: cc installed.c {} runs", flags.join(" "));
    }

    // man rawipc, and a function's name leading to its family's page, if
    // man is here to show them.
    for (section, page, expect) in [
        ("7", "rawipc", "SEE ALSO"),
        ("3", "rawipc_chan_send", "rawipc_chan_create"),
    ] {
        match Command::new("man")
            .arg("-M")
            .arg(prefix.join("share/man"))
            .args([section, page])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
        {
            Ok(out) if out.status.success() => {
                let text = stdout(&out);
                assert!(text.contains(expect), "man {section} {page} shows:\n{text}");
                println!("man {section} {page}: {} lines", text.lines().count());
            }
            Ok(out) => panic!(
                "man {section} {page} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => println!("man is not installed ({e}): man {page} not checked"),
        }
    }

    make("uninstall");
    let left = files_under(&destdir);
    assert!(left.is_empty(), "make uninstall left {left:?}");
}
