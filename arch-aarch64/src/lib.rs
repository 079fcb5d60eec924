//! Host-testable parts of Cellblock's aarch64 EL2 image: syndrome decoding
//! and stage-2 translation tables. The EL2 image itself is the `cellblock-hv`
//! binary (`src/main.rs`), built for `aarch64-unknown-none`.

#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod cellmap;
pub mod esr;
pub mod stage2;
