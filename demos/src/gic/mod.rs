//! The CPU side of the GIC for an inmate: GICv3 through the system register
//! interface plus this CPU's redistributor, or GICv2 through the memory-
//! mapped CPU interface; in both cases the distributor for SPIs.
//!
//! Every GIC register access is one 32-bit volatile load or store (64-bit
//! for GICD_IROUTER) with a plain base+offset address: in a cell the
//! hypervisor traps GICD/GICR accesses and decodes them from the syndrome,
//! which has no room for pairs, writeback or SIMD.
//!
//! Set-up that firmware or the root cell's kernel normally does (waking the
//! redistributor, enabling the distributor and Group 1, putting an interrupt
//! in Group 1) is done only when a read shows it missing. Bare on QEMU those
//! writes happen; in a cell the hypervisor's emulation already reports them
//! done and is never asked to change shared state.
//!
//! The register layout and the decisions that need no hardware (which
//! redistributor frame is this CPU's, special INTIDs) live here and are
//! tested on the host; the accesses are in `hw`.

use core::fmt;

/// Distributor (v2 and v3).
pub const GICD_BASE: usize = 0x0800_0000;
/// GICv2 CPU interface (in a cell: backed by the virtual CPU interface).
pub const GICC_BASE: usize = 0x0801_0000;
/// First GICv3 redistributor frame.
pub const GICR_BASE: usize = 0x080a_0000;

const GICR_TYPER_LO: usize = 0x0008;
const GICR_TYPER_HI: usize = 0x000c;
const GICR_TYPER_VLPIS: u32 = 1 << 1;
const GICR_TYPER_LAST: u32 = 1 << 4;
/// Frames of a GICv3 redistributor (RD_base + SGI_base).
const GICR_STRIDE: usize = 0x2_0000;
/// GICv4 adds the VLPI frames.
const GICR_STRIDE_VLPI: usize = 0x4_0000;
/// Upper bound on redistributors scanned, in case no frame says Last.
const GICR_MAX_FRAMES: usize = 512;

/// INTIDs from 1020 up are special (1023: spurious).
const FIRST_SPECIAL_INTID: u32 = 1020;

/// Which GIC architecture the CPU interface speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Memory-mapped CPU interface at [`GICC_BASE`].
    V2,
    /// System-register CPU interface, redistributors from [`GICR_BASE`].
    V3,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V2 => "v2",
            Version::V3 => "v3",
        })
    }
}

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No redistributor frame's GICR_TYPER affinity matches this CPU.
    NoRedistributor {
        /// This CPU's affinity in `GICR_TYPER[63:32]` layout.
        affinity: u32,
    },
    /// The redistributor kept GICR_WAKER.ChildrenAsleep set.
    RedistributorAsleep {
        /// Address of the redistributor's RD_base frame.
        frame: usize,
    },
    /// ICC_SRE_EL1.SRE stayed 0: EL2 does not let EL1 use the system
    /// register interface.
    SystemRegistersDisabled,
    /// An INTID that is special (1020..) or beyond what the GIC supports.
    BadIntid(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRedistributor { affinity } => write!(
                f,
                "no GICR frame from 0x{GICR_BASE:x} has GICR_TYPER affinity 0x{affinity:08x} (this CPU)"
            ),
            Error::RedistributorAsleep { frame } => {
                write!(f, "GICR_WAKER at 0x{frame:x}: ChildrenAsleep stays set")
            }
            Error::SystemRegistersDisabled => {
                f.write_str("ICC_SRE_EL1.SRE: cannot enable the GICv3 system register interface")
            }
            Error::BadIntid(intid) => write!(f, "INTID {intid}: not an SGI, PPI or SPI"),
        }
    }
}

/// The affinity of `mpidr` as `GICR_TYPER[63:32]` holds it:
/// Aff3:Aff2:Aff1:Aff0.
pub fn gicr_affinity(mpidr: u64) -> u32 {
    // Both masks keep the value within 32 bits.
    ((mpidr & 0x00ff_ffff) | ((mpidr >> 8) & 0xff00_0000)) as u32
}

/// Scans the redistributor frames (GICR_TYPER read with `read32`, one
/// 32-bit load per word) from [`GICR_BASE`] for the one whose
/// GICR_TYPER affinity is `affinity`, up to the frame marked Last;
/// returns its RD_base address.
pub fn find_redistributor(
    affinity: u32,
    mut read32: impl FnMut(usize) -> u32,
) -> Result<usize, Error> {
    let mut frame = GICR_BASE;
    for _ in 0..GICR_MAX_FRAMES {
        let typer_lo = read32(frame + GICR_TYPER_LO);
        if read32(frame + GICR_TYPER_HI) == affinity {
            return Ok(frame);
        }
        if typer_lo & GICR_TYPER_LAST != 0 {
            break;
        }
        frame += if typer_lo & GICR_TYPER_VLPIS != 0 {
            GICR_STRIDE_VLPI
        } else {
            GICR_STRIDE
        };
    }
    Err(Error::NoRedistributor { affinity })
}

/// Whether an INTID is a special one (1020..1023: nothing to handle).
pub fn is_spurious(intid: u32) -> bool {
    (FIRST_SPECIAL_INTID..FIRST_SPECIAL_INTID + 4).contains(&intid)
}

#[cfg(all(target_arch = "aarch64", not(test)))]
mod hw;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub use hw::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake redistributor region: `frames[i]` = (GICR_TYPER low word, high
    /// word) of frame `i`, laid out with the stride each frame's VLPIS asks.
    fn reader(frames: &[(u32, u32)]) -> impl FnMut(usize) -> u32 + '_ {
        move |addr| {
            let mut base = GICR_BASE;
            for &(lo, hi) in frames {
                if addr == base + GICR_TYPER_LO {
                    return lo;
                }
                if addr == base + GICR_TYPER_HI {
                    return hi;
                }
                base += if lo & GICR_TYPER_VLPIS != 0 {
                    GICR_STRIDE_VLPI
                } else {
                    GICR_STRIDE
                };
            }
            panic!("read outside the fake frames at 0x{addr:x}");
        }
    }

    #[test]
    fn affinity_matches_gicr_typer_layout() {
        assert_eq!(gicr_affinity(0x8000_0000), 0);
        assert_eq!(gicr_affinity(0x8000_0003), 3);
        // Aff3 (MPIDR[39:32]) lands in [31:24]; MT/U bits are dropped.
        assert_eq!(gicr_affinity(0x0000_00a5_c1b2_c3d4), 0xa5b2_c3d4);
        assert_eq!(gicr_affinity(0x4100_0102), 0x0000_0102);
    }

    #[test]
    fn finds_this_cpus_frame() {
        let frames = [(0, 0), (0, 1), (0, 2), (GICR_TYPER_LAST, 3)];
        assert_eq!(find_redistributor(0, reader(&frames)), Ok(GICR_BASE));
        assert_eq!(
            find_redistributor(3, reader(&frames)),
            Ok(GICR_BASE + 3 * GICR_STRIDE)
        );
    }

    #[test]
    fn stops_at_last_frame() {
        // A fifth frame exists in memory but is behind the Last marker.
        let frames = [(0, 0), (GICR_TYPER_LAST, 1), (0, 7)];
        assert_eq!(
            find_redistributor(7, reader(&frames)),
            Err(Error::NoRedistributor { affinity: 7 })
        );
    }

    #[test]
    fn uses_gicv4_stride_when_vlpis() {
        let frames = [
            (GICR_TYPER_VLPIS, 0),
            (GICR_TYPER_VLPIS | GICR_TYPER_LAST, 1),
        ];
        assert_eq!(
            find_redistributor(1, reader(&frames)),
            Ok(GICR_BASE + GICR_STRIDE_VLPI)
        );
    }

    #[test]
    fn scan_is_bounded_without_last() {
        let mut reads = 0;
        let result = find_redistributor(9, |_| {
            reads += 1;
            0
        });
        assert_eq!(result, Err(Error::NoRedistributor { affinity: 9 }));
        assert_eq!(reads, 2 * GICR_MAX_FRAMES);
    }

    #[test]
    fn special_intids() {
        assert!(!is_spurious(27));
        assert!(!is_spurious(1019));
        assert!(is_spurious(1020));
        assert!(is_spurious(1023));
        assert!(!is_spurious(1024));
    }

    #[test]
    fn errors_name_the_register() {
        assert_eq!(
            Error::NoRedistributor { affinity: 3 }.to_string(),
            "no GICR frame from 0x80a0000 has GICR_TYPER affinity 0x00000003 (this CPU)"
        );
        assert!(Error::RedistributorAsleep { frame: 0x080e_0000 }
            .to_string()
            .starts_with("GICR_WAKER at 0x80e0000"));
        assert_eq!(
            Error::BadIntid(1023).to_string(),
            "INTID 1023: not an SGI, PPI or SPI"
        );
        assert_eq!(Version::V3.to_string(), "v3");
    }
}
