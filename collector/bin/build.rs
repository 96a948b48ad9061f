//! Link settings of the daemon's binary that keep its resident memory small; see README.md, "Overhead".
//!
//! - `-z pack-relative-relocs` (RELR): the position-independent binary's ~190,000 relative relocations
//!   are stored as bitmaps (a few KB) instead of 24-byte `.rela.dyn` entries (3 MB) that the loader reads,
//!   and so keeps resident, at every start. glibc >= 2.36 applies them; lld and GNU ld >= 2.38 write them.
//! - `--icf=all` (lld): identical functions (frequent among monomorphised generics) are kept once.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
}
