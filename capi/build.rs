//! Link settings of `librawipc.so` (the cdylib only; the static library is an
//! archive, which has none of these):
//!
//! - its soname, `librawipc.so.MAJOR` (`librawipc.so.0.MINOR` while the major
//!   version is 0, where a new minor version may break the ABI), so that
//!   programs record the ABI they were linked against;
//! - a `NEEDED` entry for the C library, whose `fork`, `abort` and others it
//!   calls: a no_std library is linked without it otherwise;
//! - the version script `rawipc.map`: only the `rawipc_*` functions are
//!   exported.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=rawipc.map");
    let major: u32 = env::var("CARGO_PKG_VERSION_MAJOR")
        .unwrap()
        .parse()
        .unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let abi = if major == 0 {
        format!("0.{minor}")
    } else {
        major.to_string()
    };
    let map = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("rawipc.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librawipc.so.{abi}");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-as-needed,-lc");
}
