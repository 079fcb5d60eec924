//! ivshmem (docs/ivshmem.md): each link's shared memory mapped into both
//! peers, its interrupt owned by the cell it is raised in, and the
//! emulated register page whose DOORBELL sets the peer's interrupt
//! pending in the physical distributor. The register layout is
//! `hv_core::ivshmem`'s.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use arch_aarch64::stage2::{Access, MemKind, Stage2Error};
use hv_core::abi::CpuStat;
use hv_core::config::{CellConfig, IvshmemLink};
use hv_core::ivshmem::{reg, REGS_SIZE};

use super::cell::{Cell, CELLS};
use super::{cpu, gicglue};

/// Maps the shared memory of every link of `cell` into its stage 2:
/// read-write, normal memory, not executable.
pub fn map_links(cell: &Cell) -> Result<(), Stage2Error> {
    let rw = Access {
        read: true,
        write: true,
        exec: false,
    };
    let mut t = cell.stage2.lock();
    for l in &cell.config.ivshmem {
        t.map(l.virt_start, l.phys_start, l.size, rw, MemKind::Normal)?;
    }
    Ok(())
}

/// Adds the interrupt of every link of `config` to `spis`; `Err` names the
/// one out of range.
pub fn add_spis(config: &CellConfig, spis: &mut gic::IrqSet) -> Result<(), u32> {
    for l in &config.ivshmem {
        spis.insert(l.irq).map_err(|_| l.irq)?;
    }
    Ok(())
}

/// The link of `cell` whose register page holds `ipa`, and the offset in
/// that page.
pub fn regs_offset(cell: &Cell, ipa: u64) -> Option<(IvshmemLink, u64)> {
    cell.config
        .ivshmem
        .iter()
        .find(|l| ipa >= l.regs && ipa - l.regs < REGS_SIZE)
        .map(|l| (*l, ipa - l.regs))
}

/// The other cell naming link `id`, and its end of the link.
fn peer(cell: &Cell, id: u32) -> Option<(Arc<Cell>, IvshmemLink)> {
    CELLS.read().iter().flatten().find_map(|c| {
        if c.id == cell.id {
            return None;
        }
        let l = c.config.ivshmem.iter().find(|l| l.id == id)?;
        Some((c.clone(), *l))
    })
}

/// The running peer on link `id`, and the interrupt to raise in it.
fn running_peer(cell: &Cell, id: u32) -> Option<u32> {
    let (c, l) = peer(cell, id)?;
    c.state().is_running().then_some(l.irq)
}

/// Emulates one access of `cell` to the register page of its link `link`:
/// aligned 32-bit accesses only.
pub fn access(
    cell: &Cell,
    link: &IvshmemLink,
    offset: u64,
    size: u8,
    write: Option<u64>,
) -> Result<u64, String> {
    if size != 4 || !offset.is_multiple_of(4) {
        return Err(format!(
            "ivshmem link {} register page: only aligned 32-bit accesses (offset {offset:#x}, {size} bytes)",
            link.id
        ));
    }
    cpu::current().count(CpuStat::Mmio);
    Ok(match (offset, write) {
        (reg::ID, None) => u64::from(link.id),
        (reg::PEER, None) => u64::from(running_peer(cell, link.id).is_some()),
        (reg::DOORBELL, Some(_)) => {
            // A ring to a missing or stopped peer is dropped.
            if let Some(irq) = running_peer(cell, link.id) {
                gicglue::set_spi_pending(irq);
            }
            0
        }
        // Everything else reads as zero and ignores writes.
        (_, None) => 0,
        (_, Some(_)) => 0,
    })
}
