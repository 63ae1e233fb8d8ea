//! The man pages in man/ are generated from include/rawipc.h's doc comments
//! and committed; this test fails when they differ from what the header
//! gives now, or when one does not render cleanly.
//! `RAWIPC_BLESS=1 cargo test --test man` rewrites them.
//!
//! - `rawipc(7)`: the overview, the notes' mechanisms mapped to the calls
//!   ([`OVERVIEW`]), and the list of the section-3 pages;
//! - one section-3 page per family of calls ([`FAMILIES`]): its synopsis (the
//!   declarations, parameters in italics) and each call's documentation;
//! - for every other function and type name, a one-line page that sources
//!   its family's (`.so man3/rawipc_chan.3`), so that `man rawipc_chan_send`
//!   works.
//!
//! A function or type joins the family with the longest matching prefix; a
//! name that matches none fails the test, which names it: add a family to
//! [`FAMILIES`] and bless.
//!
//! Pages must render without a warning under `groff -man -ww` and, where it
//! is installed, `mandoc -T lint` (CI installs groff).
//!
//! Outside a checkout (the packaged crate has no include/ and no man/) the
//! tests say so and pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A family of calls, and its section-3 page.
struct Family {
    /// The page's name, `rawipc_NAME(3)`.
    page: &'static str,
    /// The names (functions and types) that belong here start with one of these.
    prefixes: &'static [&'static str],
    /// The NAME line's description.
    summary: &'static str,
    /// Pages of other manuals to see.
    see_also: &'static [&'static str],
}

/// The families, in the order `rawipc(7)` lists them.
const FAMILIES: &[Family] = &[
    Family {
        page: "rawipc_shared",
        prefixes: &["rawipc_shared"],
        summary: "shared memory that a process and its children see alike",
        see_also: &["mmap(2)", "munmap(2)"],
    },
    Family {
        page: "rawipc_process",
        prefixes: &["rawipc_fork", "rawipc_wait"],
        summary: "make child processes and wait for them, as fork(2) and waitpid(2)",
        see_also: &["fork(2)", "wait(2)", "waitpid(2)"],
    },
    Family {
        page: "rawipc_pipe",
        prefixes: &[
            "rawipc_pipe",
            "rawipc_read",
            "rawipc_write",
            "rawipc_close",
            "rawipc_splice_writer",
        ],
        summary: "pipes, and reading, writing and closing file descriptors",
        see_also: &[
            "pipe(2)",
            "read(2)",
            "write(2)",
            "close(2)",
            "vmsplice(2)",
            "pipe(7)",
        ],
    },
    Family {
        page: "rawipc_msg",
        prefixes: &["rawipc_msg"],
        summary: "messages over a pair of connected sockets that keep message boundaries",
        see_also: &["socketpair(2)", "send(2)", "recv(2)", "unix(7)"],
    },
    Family {
        page: "rawipc_endpoint",
        prefixes: &[
            "rawipc_listen",
            "rawipc_accept",
            "rawipc_connect",
            "rawipc_peer",
        ],
        summary: "named endpoints that programs which did not fork from each other connect to",
        see_also: &["unix(7)", "accept(2)", "connect(2)"],
    },
    Family {
        page: "rawipc_mutex",
        prefixes: &["rawipc_mutex"],
        summary: "a mutex in shared memory that survives the death of its holder",
        see_also: &["pthread_mutex_lock(3)", "futex(2)"],
    },
    Family {
        page: "rawipc_chan",
        prefixes: &["rawipc_chan"],
        summary: "a one-way message channel in shared memory",
        see_also: &["futex(2)", "poll(2)", "epoll(7)"],
    },
    Family {
        page: "rawipc_call",
        prefixes: &["rawipc_call"],
        summary: "a request and its reply in one shared cache line",
        see_also: &["futex(2)", "membarrier(2)", "poll(2)", "epoll(7)"],
    },
    Family {
        page: "rawipc_version",
        prefixes: &["rawipc_version"],
        summary: "the version of the rawipc library",
        see_also: &[],
    },
];

/// rawipc(7), but for its list of pages, which comes from [`FAMILIES`].
const OVERVIEW: &str = r#".SH NAME
rawipc \- communication between processes on Linux: shared memory, pipes, messages
.SH SYNOPSIS
.nf
.B #include <rawipc.h>
.PP
.B cc prog.c $(pkg\-config \-\-cflags \-\-libs rawipc)
.B cc \-static prog.c $(pkg\-config \-\-static \-\-cflags \-\-libs rawipc)
.fi
.SH DESCRIPTION
rawipc is a small C and Rust library for the classic ways related processes
communicate on Linux: memory shared between a parent and the children it
forks, pipes, and messages over a socket pair; and, beyond those, a mutex and
a message channel that live in shared memory.
It uses neither the file system nor the network.
.PP
The calls named after a C library call
.RB ( rawipc_pipe ,
.BR rawipc_read ,
.BR rawipc_write ,
.BR rawipc_close ,
.BR rawipc_fork ,
.BR rawipc_wait ,
.BR rawipc_waitpid )
behave as that call does, with the same arguments, return values and
.I errno
values, so that course code can call them in its place; their pages tell
how they treat signals and
.BR exec (3).
rawipc's own calls (messages, the mutex, the channel) return \-1 (NULL for
pointers) with
.I errno
set on failure, so that
.BR perror (3)
works; a signal never makes them fail with
.BR EINTR ,
and a peer that is gone gives
.B EPIPE
or end of file, never
.BR SIGPIPE .
Every file descriptor rawipc makes belongs to the caller.
.SS Shared memory before fork
Memory mapped with
.B MAP_SHARED | MAP_ANONYMOUS
before
.BR fork (2)
is the same memory in the parent and in the child: what one writes, the other
reads.
.BR rawipc_shared_alloc (3)
maps such memory, zero-filled, and
.BR rawipc_shared_free (3)
unmaps it.
The operating system does not order the processes' accesses: use atomic
operations or a
.BR rawipc_mutex (3).
.SS Processes
.BR rawipc_fork (3)
makes a child,
.BR rawipc_wait (3)
and
.BR rawipc_waitpid (3)
wait for one to end and tell how it ended
.RB ( WIFEXITED ,
.BR WEXITSTATUS ,
.BR WIFSIGNALED ,
.BR WTERMSIG ).
.SS Pipes
A pipe is a one-way byte stream.
The pattern: make the pipe with
.BR rawipc_pipe (3),
fork, and in each process close the end it does not use.
The reader reads with
.BR rawipc_read (3)
until it returns 0, end of file, which comes once every write end is closed:
so the parent learns that its child died, however it died.
The writer writes with
.BR rawipc_write (3).
.SS Messages
.BR rawipc_msg_socketpair (3)
makes two connected sockets that keep message boundaries: each
.BR rawipc_msg_send (3)
is received whole by one
.BR rawipc_msg_recv (3),
and a receive of 0 means that the peer is gone.
A message larger than the buffer stays queued with
.BR EMSGSIZE ;
.BR rawipc_msg_size (3)
tells the size it needs.
.SS A mutex in shared memory
.BR rawipc_mutex_lock (3)
locks a
.B rawipc_mutex
placed in shared memory.
If its holder dies, the next locker gets the lock with
.BR EOWNERDEAD ,
repairs the data and calls
.BR rawipc_mutex_consistent (3).
.SS A channel in shared memory
.BR rawipc_chan_create (3)
makes a one-way channel before fork; each process then takes its side with
.BR rawipc_chan_sender (3)
or
.BR rawipc_chan_receiver (3).
Messages go through shared memory without a system call while both sides are
busy; a side that waits sleeps, and learns when its peer dies.
.SH ERRORS
Each call's page lists its
.I errno
values.
"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this is a checkout (the packaged crate has no include/ or man/).
fn in_checkout() -> bool {
    let here = root().join("include/rawipc.h").is_file();
    if !here {
        println!("skipped: include/ and man/ are not in the packaged crate");
    }
    here
}

/// One documented declaration of the header.
struct Item {
    /// The function's or type's name.
    name: String,
    /// The declaration as the header has it, doc comments of fields removed.
    decl: String,
    /// Its doc comment, one string per line, without the comment markers.
    doc: Vec<String>,
    /// For a struct: each field's declaration and doc comment.
    fields: Vec<(String, Vec<String>)>,
}

/// The lines of a `/** ... */` comment starting at `lines[*i]`, which moves
/// past it.
fn doc_comment(lines: &[&str], i: &mut usize) -> Vec<String> {
    let mut doc = Vec::new();
    *i += 1;
    while *i < lines.len() && lines[*i].trim() != "*/" {
        let line = lines[*i].trim();
        doc.push(
            line.strip_prefix('*')
                .unwrap_or(line)
                .trim_start_matches(' ')
                .to_owned(),
        );
        *i += 1;
    }
    *i += 1;
    doc
}

/// Every documented function and type of the header, in its order.
fn items(header: &str) -> Vec<Item> {
    let lines: Vec<&str> = header.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] != "/**" {
            i += 1;
            continue;
        }
        let doc = doc_comment(&lines, &mut i);
        let first = lines[i];
        if first.starts_with("typedef struct") {
            let mut decl = vec![first.to_owned()];
            let mut fields = Vec::new();
            i += 1;
            while !lines[i].starts_with('}') {
                if lines[i].trim() == "/**" {
                    let field_doc = doc_comment(&lines, &mut i);
                    fields.push((lines[i].trim().to_owned(), field_doc));
                } else {
                    if !lines[i].trim().starts_with("/*") {
                        fields.push((lines[i].trim().to_owned(), Vec::new()));
                    }
                }
                decl.push(lines[i].to_owned());
                i += 1;
            }
            decl.push(lines[i].to_owned());
            let name = lines[i]
                .trim_start_matches('}')
                .trim()
                .trim_end_matches(';');
            items.push(Item {
                name: name.to_owned(),
                decl: decl.join("\n"),
                doc,
                fields: fields.into_iter().filter(|(_, d)| !d.is_empty()).collect(),
            });
        } else if first.contains("rawipc_") && first.contains('(') {
            // A prototype, on one line or wrapped over several.
            let mut decl = first.trim().to_owned();
            while !decl.ends_with(';') && i + 1 < lines.len() {
                i += 1;
                decl.push(' ');
                decl.push_str(lines[i].trim());
            }
            let decl = decl.replace("( ", "(");
            let start = decl.find("rawipc_").expect("a rawipc function");
            let end = start + decl[start..].find('(').unwrap();
            items.push(Item {
                name: decl[start..end].to_owned(),
                decl,
                doc,
                fields: Vec::new(),
            });
        }
        i += 1;
    }
    items
}

/// The family `name` belongs to: the longest matching prefix.
fn family_of(name: &str) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .flat_map(|f| f.prefixes.iter().map(move |p| (f, p)))
        .filter(|(_, p)| name.starts_with(**p))
        .max_by_key(|(_, p)| p.len())
        .map(|(f, _)| f)
}

/// Text for roff: backslashes escaped, and `code` in italics (parameters)
/// or bold (names of rawipc's calls and types).
fn roff_text(text: &str) -> String {
    let text = text.replace('\\', "\\e");
    let mut out = String::new();
    for (n, part) in text.split('`').enumerate() {
        if n % 2 == 1 {
            let font = if part.starts_with("rawipc_") {
                'B'
            } else {
                'I'
            };
            write!(out, "\\f{font}{part}\\fP").unwrap();
        } else {
            out.push_str(&bold_names(part));
        }
    }
    out
}

/// Names of rawipc's calls and types in prose, in bold.
fn bold_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("rawipc_") {
        let end = start
            + rest[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - start);
        let name = &rest[start..end];
        write!(out, "{}\\fB{name}\\fP", &rest[..start]).unwrap();
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A doc comment as roff paragraphs: blank lines part paragraphs, `# Title`
/// starts a titled one, `- ` starts a list item.
fn roff_doc(doc: &[String]) -> String {
    let mut out = String::new();
    let mut starting = true;
    for line in doc {
        if line.is_empty() {
            starting = true;
            continue;
        }
        if let Some(title) = line.strip_prefix("# ") {
            writeln!(out, ".PP\n.I {title}").unwrap();
            out.push_str(".br\n");
            starting = false;
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            writeln!(out, ".IP \\(bu 2").unwrap();
            push_line(&mut out, item);
            starting = false;
            continue;
        }
        if starting {
            out.push_str(if out.ends_with(".br\n") { "" } else { ".PP\n" });
            starting = false;
        }
        push_line(&mut out, line);
    }
    out
}

/// One line of text, kept from being read as a request.
fn push_line(out: &mut String, line: &str) {
    let text = roff_text(line.trim());
    if text.starts_with('.') || text.starts_with('\'') {
        out.push_str("\\&");
    }
    out.push_str(&text);
    out.push('\n');
}

/// A function prototype for SYNOPSIS: its types bold, parameter names italic.
fn roff_prototype(decl: &str) -> String {
    let open = decl.find('(').unwrap();
    let (head, params) = (&decl[..=open], &decl[open + 1..decl.len() - 2]);
    let mut out = format!(".BI \"{head}");
    let params: Vec<&str> = params.split(", ").collect();
    for (n, param) in params.iter().enumerate() {
        let split = param
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let (ty, name) = param.split_at(split);
        if *param == "void" || name.is_empty() {
            out.push_str(param);
        } else {
            write!(out, "{ty}\" {name} \"").unwrap();
        }
        if n + 1 < params.len() {
            out.push_str(", ");
        }
    }
    out.push_str(");\"");
    out.replace("\"\" ", "")
}

/// The pages' date: that of the version they document (the version itself
/// comes from Cargo.toml). Change it with the version.
const DATE: &str = "2026-12-01";

fn title(page: &str, section: u8) -> String {
    format!(
        ".TH {} {section} {DATE} \"rawipc {}\" \"rawipc manual\"\n.nh\n.ad l\n",
        page.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    )
}

/// A family's section-3 page.
fn family_page(family: &Family, items: &[&Item], see_also: &[String]) -> String {
    let mut page = title(family.page, 3);
    let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    writeln!(
        page,
        ".SH NAME\n{} \\- {}",
        names.join(", "),
        family.summary
    )
    .unwrap();
    page.push_str(
        ".SH LIBRARY\nrawipc\n.RI ( librawipc ,\n.BR \"pkg\\-config \\-\\-libs rawipc\" )\n",
    );
    page.push_str(".SH SYNOPSIS\n.nf\n.B #include <rawipc.h>\n");
    for item in items {
        page.push_str(".PP\n");
        if item.decl.starts_with("typedef") {
            for line in item.decl.lines() {
                let line = line.split("/*").next().unwrap();
                writeln!(page, ".B \"{line}\"").unwrap();
            }
        } else {
            page.push_str(&roff_prototype(&item.decl));
            page.push('\n');
        }
    }
    page.push_str(".fi\n.SH DESCRIPTION\n");
    for item in items {
        let heading = if item.decl.starts_with("typedef") {
            item.name.clone()
        } else {
            format!("{}()", item.name)
        };
        writeln!(page, ".SS {heading}").unwrap();
        page.push_str(roff_doc(&item.doc).trim_start_matches(".PP\n"));
        for (field, doc) in &item.fields {
            writeln!(page, ".TP\n.B \"{field}\"").unwrap();
            page.push_str(roff_doc(doc).trim_start_matches(".PP\n"));
        }
    }
    page.push_str(".SH SEE ALSO\n");
    let mut refs: Vec<String> = vec!["rawipc(7)".to_owned()];
    refs.extend(
        see_also
            .iter()
            .filter(|p| !p.starts_with(family.page))
            .cloned(),
    );
    refs.extend(family.see_also.iter().map(|s| s.to_string()));
    for (n, r) in refs.iter().enumerate() {
        let (name, section) = r.trim_end_matches(')').split_once('(').unwrap();
        let comma = if n + 1 < refs.len() { "," } else { "" };
        writeln!(page, ".BR {name} ({section}){comma}").unwrap();
    }
    page
}

/// Every page, by its path under man/.
fn pages(header: &str) -> BTreeMap<PathBuf, String> {
    let items = items(header);
    let mut by_family: Vec<Vec<&Item>> = FAMILIES.iter().map(|_| Vec::new()).collect();
    let mut homeless = Vec::new();
    for item in &items {
        match family_of(&item.name) {
            Some(f) => {
                by_family[FAMILIES.iter().position(|g| g.page == f.page).unwrap()].push(item)
            }
            None => homeless.push(item.name.clone()),
        }
    }
    assert!(
        homeless.is_empty(),
        "{homeless:?} belong to no man page: add a family whose prefixes match them to FAMILIES \
         in tests/man.rs, then run `RAWIPC_BLESS=1 cargo test --test man`"
    );
    let used: Vec<(&Family, &Vec<&Item>)> = FAMILIES
        .iter()
        .zip(&by_family)
        .filter(|(_, items)| !items.is_empty())
        .collect();
    let see_also: Vec<String> = used.iter().map(|(f, _)| format!("{}(3)", f.page)).collect();

    let mut pages = BTreeMap::new();
    for (family, items) in &used {
        let path = PathBuf::from(format!("man3/{}.3", family.page));
        pages.insert(path, family_page(family, items, &see_also));
        for item in items.iter().filter(|i| i.name != family.page) {
            pages.insert(
                PathBuf::from(format!("man3/{}.3", item.name)),
                format!(".so man3/{}.3\n", family.page),
            );
        }
    }
    let mut overview = title("rawipc", 7);
    overview.push_str(OVERVIEW);
    overview.push_str(".SH SEE ALSO\n");
    for (n, (family, _)) in used.iter().enumerate() {
        let comma = if n + 1 < used.len() { "," } else { "" };
        writeln!(overview, ".BR {} (3){comma}", family.page).unwrap();
    }
    pages.insert(PathBuf::from("man7/rawipc.7"), overview);
    pages
}

/// The pages committed under man/.
fn committed(man: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    for section in ["man3", "man7"] {
        let Ok(entries) = fs::read_dir(man.join(section)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(man).unwrap().to_path_buf();
            found.insert(rel, fs::read_to_string(&path).unwrap());
        }
    }
    found
}

#[test]
fn committed_man_pages_are_what_the_header_gives() {
    if !in_checkout() {
        return;
    }
    let header = fs::read_to_string(root().join("include/rawipc.h")).unwrap();
    let generated = pages(&header);
    let man = root().join("man");
    if std::env::var_os("RAWIPC_BLESS").is_some() {
        for path in committed(&man).keys() {
            if !generated.contains_key(path) {
                fs::remove_file(man.join(path)).unwrap();
            }
        }
        for (path, text) in &generated {
            fs::create_dir_all(man.join(path).parent().unwrap()).unwrap();
            fs::write(man.join(path), text).unwrap();
        }
    }
    let committed = committed(&man);
    let stale: Vec<&PathBuf> = generated
        .keys()
        .chain(committed.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| generated.get(*p) != committed.get(*p))
        .collect();
    assert!(
        stale.is_empty(),
        "man/{stale:?} differ from what include/rawipc.h gives; \
         run `RAWIPC_BLESS=1 cargo test --test man` and commit the result"
    );
}

#[test]
fn every_function_of_the_header_has_a_page() {
    let header = "/**\n * Doc.\n */\nint rawipc_nothing_like_it(void);\n";
    let result = std::panic::catch_unwind(|| pages(header));
    assert!(
        result.is_err(),
        "a function of no family must fail the test"
    );
    if !in_checkout() {
        return;
    }
    let header = fs::read_to_string(root().join("include/rawipc.h")).unwrap();
    let pages = pages(&header);
    let items = items(&header);
    assert!(
        items.len() > 20,
        "only {} items found in the header",
        items.len()
    );
    for item in items {
        assert!(
            pages.contains_key(Path::new(&format!("man3/{}.3", item.name))),
            "{} has no page",
            item.name
        );
        assert!(!item.doc.is_empty(), "{} has no documentation", item.name);
    }
}

#[test]
fn prototypes_put_parameter_names_in_italics() {
    let wrapped =
        "/**\n * Doc.\n */\nint rawipc_pipe_long(int first,\n                     int second);\n";
    let found = items(wrapped);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].decl,
        "int rawipc_pipe_long(int first, int second);"
    );
    assert_eq!(
        roff_prototype("ssize_t rawipc_read(int fd, void *buf, size_t count);"),
        ".BI \"ssize_t rawipc_read(int \" fd \", void *\" buf \", size_t \" count \");\""
    );
    assert_eq!(
        roff_prototype("const char *rawipc_version(void);"),
        ".BI \"const char *rawipc_version(void);\""
    );
    assert_eq!(
        roff_text("`fd` or `rawipc_close`"),
        "\\fIfd\\fP or \\fBrawipc_close\\fP"
    );
    assert_eq!(
        roff_text("calls rawipc_pipe, the rawipc_mutex_* functions"),
        "calls \\fBrawipc_pipe\\fP, the \\fBrawipc_mutex_\\fP* functions"
    );
}

/// Runs a man page checker on every page; fails on any warning.
fn lint(program: &str, args: &[&str]) -> bool {
    if !in_checkout() {
        return true;
    }
    let man = root().join("man");
    let mut checked = 0;
    for (path, text) in committed(&man) {
        if let Some(target) = text.strip_prefix(".so ") {
            // A name's page that sources its family's (as the Linux man-pages
            // do; mandoc would rather have a link), checked through that one.
            assert!(
                man.join(target.trim()).is_file(),
                "{}: no {target}",
                path.display()
            );
            continue;
        }
        let out = match Command::new(program)
            .current_dir(&man)
            .args(args)
            .arg(&path)
            .output()
        {
            Ok(out) => out,
            Err(_) => return false,
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
            "{program} {args:?} man/{}: {}\n{stdout}{stderr}",
            path.display(),
            out.status
        );
        checked += 1;
    }
    println!("{program}: {checked} pages without a warning");
    assert!(checked > 0, "no man pages in man/");
    true
}

#[test]
fn pages_render_without_warnings_in_groff() {
    let found = lint("groff", &["-man", "-ww", "-z", "-Tutf8"]);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "groff is not installed (CI must install it)"
        );
        println!("groff is not installed: the pages are not checked");
    }
}

#[test]
fn pages_pass_mandoc_lint() {
    if !lint("mandoc", &["-T", "lint", "-W", "warning"]) {
        println!("mandoc is not installed: the pages are not linted with it");
    }
}
