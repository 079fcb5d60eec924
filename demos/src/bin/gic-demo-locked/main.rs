//! gic-demo-locked: gic-demo (see `../gic-demo/demo.rs`) that locks its
//! cell (running/locked: the hypervisor refuses every reconfiguration) and
//! refuses every shutdown request. For testing how the hypervisor and the
//! CLI handle a cell that will not stop.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "../gic-demo/demo.rs"]
mod demo;

use demos::comm::ShutdownPolicy;

demos::entry!(main);

fn main() -> ! {
    demo::run(ShutdownPolicy::Deny, true)
}
