//! gic-demo-locked: gic-demo (see `../gic-demo/demo.rs`) that refuses
//! every shutdown request: it replies "denied", prints `gic-demo: shutdown
//! denied` and keeps ticking. For testing how the hypervisor and the CLI
//! handle a cell that will not stop.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "../gic-demo/demo.rs"]
mod demo;

use demos::comm::ShutdownPolicy;

demos::entry!(main);

fn main() -> ! {
    demo::run(ShutdownPolicy::Deny)
}
