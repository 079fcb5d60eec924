//! gic-demo-deny: gic-demo (see `../gic-demo/demo.rs`) that answers every
//! shutdown request "denied" through its comm region, prints `gic-demo:
//! shutdown denied` and keeps ticking (without locking the cell).

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "../gic-demo/demo.rs"]
mod demo;

use demos::comm::ShutdownPolicy;

demos::entry!(main);

fn main() -> ! {
    demo::run(ShutdownPolicy::Deny, false)
}
