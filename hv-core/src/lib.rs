//! Cellblock's portable core.
//!
//! Everything here is free of architecture assumptions and runs on the host
//! under `cargo test`: the config types shared by the hypervisor, the CLI and
//! dt-cellgen ([`config`]), their validation, the binary `.cell` and boot-pack
//! formats, each cell's memory map, and the hypercall ABI numbers.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
