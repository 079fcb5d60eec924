//! Cellblock's EL2 image for ARMv8-A (`cellblock.bin` once flattened).
//!
//! Entered by firmware at EL2 with x0 = the board DTB; see `el2::setup` for
//! the boot flow and DESIGN.md for the whole picture.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod el2;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "cellblock-hv is the EL2 image: build it with --target aarch64-unknown-none-softfloat"
    );
}
