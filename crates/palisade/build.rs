//! Link options for the `palisade` binary only (no other crate of the workspace is affected).
//!
//! Packed relative relocations (`DT_RELR`): the sandbox helper and the watchdog are re-execs of this
//! binary, so its start-up is on the path of every sandboxed spawn. A position-independent executable of
//! this size carries ≈ 30,000 relative relocations; as `DT_RELR` their table shrinks from ≈ 740 KB to
//! ≈ 9 KB, which the dynamic loader reads at every start (measured: ≈ 0.05–0.1 ms less CPU per start,
//! see BENCHMARKS.md). PIE and ASLR stay as they are.
//!
//! Only for GNU/Linux targets: glibc ≥ 2.36 understands `DT_RELR`, and the linker records the
//! requirement as the symbol version `GLIBC_ABI_DT_RELR`, so an older glibc refuses the binary by name
//! instead of misloading it. `PALISADE_NO_RELR=1` leaves it out (for a linker that does not know the flag).

fn main() {
    println!("cargo:rerun-if-env-changed=PALISADE_NO_RELR");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("PALISADE_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bin=palisade=-Wl,-z,pack-relative-relocs");
    }
}
