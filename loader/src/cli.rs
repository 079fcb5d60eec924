//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cellblock's management tool: compiles and checks configs, builds boot
/// images.
#[derive(Debug, Parser)]
#[command(name = "cellblock", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Text and binary configs.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Build a boot image: the hypervisor, the system config with its boot
    /// cells, and every cell's images, in one file.
    Pack(PackArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a TOML config and write its binary form (`.cell`).
    Compile(CompileArgs),
    /// Validate configs (TOML or `.cell`), optionally against a board DTB.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A system config (has a `[platform]` table) or a cell config.
    pub file: PathBuf,
    /// Output file; default: FILE with the extension `.cell`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// For a cell config: check it against this system config too.
    #[arg(long)]
    pub system: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// System and cell configs, TOML or `.cell`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Check each system config against this board device tree.
    #[arg(long)]
    pub dtb: Option<PathBuf>,
    /// System config the cell configs are checked against; default: the
    /// first system config among FILES.
    #[arg(long)]
    pub system: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The hypervisor's flat binary (`cellblock.bin`, ARM64 Image header).
    #[arg(long)]
    pub hv: PathBuf,
    /// The system config (TOML or `.cell`).
    #[arg(long)]
    pub system: PathBuf,
    /// A cell to start at boot, after the system's own boot cells; repeatable.
    #[arg(long = "cell")]
    pub cells: Vec<PathBuf>,
    /// Directory the configs' image files are read from.
    #[arg(long)]
    pub image_dir: PathBuf,
    /// The boot image to write.
    #[arg(short, long)]
    pub output: PathBuf,
}
