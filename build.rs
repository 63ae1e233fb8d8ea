//! rawipc's build script: refuse, in plain words, a target rawipc cannot serve,
//! before a dependency's errors bury the reason. It has no dependencies, so it
//! costs Rust users one small compile.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" {
        panic!("rawipc calls the Linux kernel directly; target OS `{os}` is not supported");
    }
    if env::var_os("CARGO_FEATURE_FREESTANDING").is_some()
        && !matches!(arch.as_str(), "x86_64" | "aarch64")
    {
        panic!(
            "rawipc's `freestanding` feature has raw fork/exit for x86_64 and aarch64 only, not `{arch}`; \
             build without it in a program that has a libc"
        );
    }
}
