//! The EL2 runtime: one file per mechanism.

#[macro_use]
pub mod console;
pub mod boot;
pub mod cell;
pub mod cpu;
pub mod gicglue;
pub mod heap;
pub mod hypercall;
pub mod iommu;
pub mod ivshmem;
pub mod lifecycle;
pub mod mgmt;
pub mod mmu;
pub mod panic;
pub mod psci;
pub mod setup;
pub mod sysregs;
pub mod traps;
