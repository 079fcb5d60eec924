//! `dt-cellgen`: system and cell configs, root and guest device trees, from
//! a board's DTB.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dt_cellgen::args::{parse_cpu_list, parse_size, parse_u64, SystemArgs};
use dt_cellgen::board::Board;
use dt_cellgen::cell::{self, CellRequest};
use dt_cellgen::dtb::{self, GuestOptions, RootOptions};
use dt_cellgen::{output, Error, Result};
use hv_core::config::{CellConfig, SystemConfig};

#[derive(Parser)]
#[command(
    name = "dt-cellgen",
    version,
    about = "Cellblock configs and device trees from a board DTB"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes the system config (root cell owns everything) for a board.
    System(SystemArgs),
    /// Writes a non-root cell config.
    Cell {
        #[arg(long)]
        system: PathBuf,
        #[arg(long)]
        name: String,
        /// Logical CPU ids, e.g. 2-3; the first is the boot CPU.
        #[arg(long)]
        cpus: String,
        /// RAM size, e.g. 64M.
        #[arg(long)]
        mem: String,
        /// A device (DT path or alias) the cell takes; repeatable.
        #[arg(long = "device")]
        devices: Vec<PathBuf>,
        /// The board DTB, to look devices up (else the system config's
        /// region comments are used).
        #[arg(long)]
        dtb: Option<PathBuf>,
        /// Other cells already configured (their CPUs and RAM are taken).
        #[arg(long = "other")]
        others: Vec<PathBuf>,
        /// IPA of the cell's RAM (default: the board's first RAM address).
        #[arg(long)]
        ipa: Option<String>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Writes the root cell's DTB: the board's, less what the cells take,
    /// plus the management node.
    RootDtb {
        dtb: PathBuf,
        #[arg(long)]
        system: PathBuf,
        /// Non-root cell configs; repeatable.
        #[arg(long = "cell")]
        cells: Vec<PathBuf>,
        /// Physical address of the management page (default: the last page
        /// of the hypervisor's memory).
        #[arg(long)]
        mgmt: Option<String>,
        #[command(flatten)]
        edits: dt_cellgen::edit::EditArgs,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Downloads Debian's newest 6.1 arm64 kernel package (once) and prints
    /// the directory of its DTBs, for CELLBLOCK_DEBIAN_DTBS.
    FetchDebianDtbs {
        /// Cache directory (default: $CELLBLOCK_CACHE or ~/.cache/cellblock).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Writes the DTB a Linux non-root cell boots with.
    GuestDtb {
        dtb: PathBuf,
        #[arg(long)]
        system: PathBuf,
        #[arg(long)]
        cell: PathBuf,
        #[arg(long, default_value = "")]
        bootargs: String,
        /// Initrd address (as the cell sees it) and size, e.g. 0x44000000 8M.
        #[arg(long, num_args = 2, value_names = ["ADDR", "SIZE"])]
        initrd: Option<Vec<String>>,
        /// PSCI conduit the cell uses (default: the board's).
        #[arg(long)]
        psci_method: Option<String>,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn write(path: &PathBuf, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let text = String::from_utf8(read(path)?).map_err(|_| Error::Toml {
        file: path.display().to_string(),
        reason: "not UTF-8".into(),
    })?;
    toml::from_str(&text).map_err(|e| Error::Toml {
        file: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// An error about a board DTB, naming the file.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Io { .. } => e,
        other => Error::Io {
            path: path.display().to_string(),
            reason: other.to_string(),
        },
    }
}

fn board(path: &PathBuf) -> Result<Board> {
    Board::from_dtb(&read(path)?).map_err(|e| in_file(path, e))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::System(args) => {
            let opts = args.options()?;
            let dtb = read(&args.dtb)?;
            let generated = dt_cellgen::system_from_dtb(&dtb, &opts, args.report.is_some())
                .map_err(|e| in_file(&args.dtb, e))?;
            write(&args.output, generated.toml.as_bytes())?;
            if let (Some(path), Some(report)) = (&args.report, &generated.report) {
                write(path, report.as_bytes())?;
            }
            Ok(())
        }
        Cmd::Cell {
            system,
            name,
            cpus,
            mem,
            devices,
            dtb,
            others,
            ipa,
            output: out,
        } => {
            let sys: SystemConfig = read_toml(&system)?;
            dt_cellgen::check_system(&sys)?;
            let others: Vec<CellConfig> = others.iter().map(read_toml).collect::<Result<_>>()?;
            let other_refs: Vec<&CellConfig> = others.iter().collect();
            let board = dtb.as_ref().map(board).transpose()?;
            let mut res = Vec::new();
            for d in &devices {
                let p = d.display().to_string();
                res.push(match &board {
                    Some(b) => cell::device_from_board(b, &p)?,
                    None => cell::device_from_system(&sys, &p)?,
                });
            }
            let req = CellRequest {
                name,
                cpus: parse_cpu_list(&cpus)?,
                mem: parse_size(&mem)?,
                devices: devices.iter().map(|d| d.display().to_string()).collect(),
                ipa: ipa.as_deref().map(parse_u64).transpose()?,
            };
            let cell = cell::generate_cell(&sys, &other_refs, &req, &res)?;
            dt_cellgen::check_cell(&sys, &cell, &other_refs)?;
            let sources = |i: u32| -> String {
                res.iter()
                    .filter(|d| d.irqs.contains(&i))
                    .map(|d| d.path.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let header = vec![
                format!(
                    "Cell \"{}\" for {}, generated by dt-cellgen.",
                    cell.name, sys.name
                ),
                "Add [[images]] for what it runs; its entry is the start of its RAM.".to_string(),
            ];
            write(&out, output::cell_toml(&cell, &header, &sources).as_bytes())
        }
        Cmd::RootDtb {
            dtb,
            system,
            cells,
            mgmt,
            edits,
            output: out,
        } => {
            let board = board(&dtb)?;
            let sys: SystemConfig = read_toml(&system)?;
            dt_cellgen::check_system(&sys)?;
            let cells: Vec<CellConfig> = cells.iter().map(read_toml).collect::<Result<_>>()?;
            for (i, c) in cells.iter().enumerate() {
                let before: Vec<&CellConfig> = cells[..i].iter().collect();
                dt_cellgen::check_cell(&sys, c, &before)?;
            }
            let opts = RootOptions {
                mgmt: mgmt.as_deref().map(parse_u64).transpose()?,
            };
            let bytes = dtb::root_dtb(&board, &sys, &cells, &opts)?;
            let bytes = dt_cellgen::edit::apply(&bytes, &edits.edits()?)?;
            write(&out, &bytes)
        }
        Cmd::FetchDebianDtbs { cache } => {
            let cache = cache.unwrap_or_else(dt_cellgen::debian::cache_dir);
            let dir = dt_cellgen::debian::fetch_dtbs(&cache)?;
            println!("{}", dir.display());
            Ok(())
        }
        Cmd::GuestDtb {
            dtb,
            system,
            cell,
            bootargs,
            initrd,
            psci_method,
            output: out,
        } => {
            let board = board(&dtb)?;
            let sys: SystemConfig = read_toml(&system)?;
            dt_cellgen::check_system(&sys)?;
            let cell: CellConfig = read_toml(&cell)?;
            dt_cellgen::check_cell(&sys, &cell, &[])?;
            let initrd = match initrd.as_deref() {
                Some([a, s]) => Some((parse_u64(a)?, parse_size(s)?)),
                _ => None,
            };
            let opts = GuestOptions {
                bootargs,
                initrd,
                psci_method,
                hidden_ram: Vec::new(),
            };
            let bytes = dtb::guest_dtb(&board, &sys, &cell, &opts)?;
            write(&out, &bytes)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dt-cellgen: {e}");
            ExitCode::FAILURE
        }
    }
}
