//! dt-cellgen: Cellblock configs and cell device trees from a board's DTB.
//!
//! ```no_run
//! use dt_cellgen::{board::Board, system};
//! let dtb = std::fs::read("board.dtb").unwrap();
//! let board = Board::from_dtb(&dtb)?;
//! let (config, notes) = system::generate_system(&board, &system::SystemOptions::default())?;
//! let text = dt_cellgen::output::system_toml(&config, &board, &notes);
//! std::fs::write("system.toml", text).unwrap();
//! # Ok::<(), dt_cellgen::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod args;
pub mod board;
pub mod cell;
pub mod check;
pub mod debian;
pub mod dtb;
pub mod edit;
pub mod error;
pub mod irq;
pub mod output;
pub mod system;
pub mod tree;

pub use error::{Error, Result};

use hv_core::config::{CellConfig, SystemConfig};

/// What `dt-cellgen system` and `cellblock config create` write.
#[derive(Debug, Clone)]
pub struct GeneratedSystem {
    pub config: SystemConfig,
    /// The commented TOML.
    pub toml: String,
    /// The device report (MMIO, IRQs, IOMMUs, PCI), if asked for.
    pub report: Option<String>,
}

/// Reads a board DTB and generates its system config, checked with
/// `hv_core::validate`, as TOML (and the device report if `report`).
pub fn system_from_dtb(
    dtb: &[u8],
    opts: &system::SystemOptions,
    report: bool,
) -> Result<GeneratedSystem> {
    let board = board::Board::from_dtb(dtb)?;
    let (config, notes) = system::generate_system(&board, opts)?;
    check_system(&config)?;
    Ok(GeneratedSystem {
        toml: output::system_toml(&config, &board, &notes),
        report: report.then(|| output::device_report(&board)),
        config,
    })
}

/// Checks a system config with `hv_core::validate`, as the hypervisor will.
pub fn check_system(sys: &SystemConfig) -> Result<()> {
    hv_core::validate::validate_system(sys).map_err(|e| Error::Invalid(e.to_string()))
}

/// Checks a non-root cell config beside `others` with `hv_core::validate`.
pub fn check_cell(sys: &SystemConfig, cell: &CellConfig, others: &[&CellConfig]) -> Result<()> {
    hv_core::validate::validate_cell(sys, cell, others).map_err(|e| Error::Invalid(e.to_string()))
}
