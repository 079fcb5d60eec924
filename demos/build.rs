//! Passes the inmate linker script to the binaries when building for aarch64.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64")
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none")
    {
        let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
}
