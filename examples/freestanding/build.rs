//! Links the program as a static executable with no libc: no C start files
//! (`_start` is in src/rt.rs), no default libraries, nothing dynamic.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        // rustc asks for a position-independent executable (`-pie`); a plain
        // static one needs nobody to relocate it at start. The code stays
        // position-independent, which a fixed-address executable can run, so
        // no `-C relocation-model` (and no .cargo/config.toml) is needed.
        "-no-pie",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
