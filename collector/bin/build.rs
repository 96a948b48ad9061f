//! Link settings of the daemon's binary that keep its resident memory small; see README.md, "Overhead".
//!
//! `-z pack-relative-relocs` (RELR): the position-independent binary's ~190,000 relative relocations are stored
//! as bitmaps (40 KB) instead of 24-byte `.rela.dyn` entries (3 MB) that the loader reads, and so keeps
//! resident, at every start (idle RSS 29.1 -> 25.7 MB, measured 2026-11-23). The loader must know the format:
//! glibc 2.36 or later, and a binary linked with it does not start on an older one. So it is used only when
//! building on and for Linux with glibc >= 2.36 (read with `getconf`); elsewhere the binary is linked as before.
//! A binary built here to run on an older glibc (Ubuntu 22.04: 2.35, RHEL 9: 2.34): set `OTLAKE_NO_RELR=1`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OTLAKE_NO_RELR");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let native = env("HOST") == env("TARGET");
    let linux_gnu = env("CARGO_CFG_TARGET_OS") == "linux" && env("CARGO_CFG_TARGET_ENV") == "gnu";
    let opted_out = !env("OTLAKE_NO_RELR").is_empty();
    if native && linux_gnu && !opted_out && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36") is at least `major.minor`.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
