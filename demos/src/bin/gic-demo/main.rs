//! gic-demo: the EL1 virtual timer at 10 Hz; each firing prints how late it
//! came against its deadline (Jailhouse's gic-demo line, so existing scripts
//! keep working). Runs in a cell and bare on QEMU `virt` for a baseline.
//! In a non-root cell it approves the hypervisor's shutdown request: it
//! prints `gic-demo: shutdown approved`, stops its timer and waits in WFI.
//! `gic-demo-locked` is the same program refusing every request.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

mod demo;

use demos::comm::ShutdownPolicy;

demos::entry!(main);

fn main() -> ! {
    demo::run(ShutdownPolicy::Approve, false)
}
