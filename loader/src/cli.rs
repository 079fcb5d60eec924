//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cellblock's management tool: compiles and checks configs, builds boot
/// images, and manages cells at run time from the root cell's Linux.
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
    /// Cells at run time (in the root cell's Linux, as root).
    Cell {
        #[command(subcommand)]
        action: CellAction,
    },
    /// Print the hypervisor's console log.
    Console,
    /// Print the hypervisor's memory pool use and number of cells.
    Info,
    /// Print the CPU's virtual counter (CNTVCT_EL0) and its frequency: time
    /// since the machine started, for boot-time measurements.
    Counter,
    /// The root cell's ivshmem links (in the root cell's Linux, as root).
    Ivshmem {
        #[command(subcommand)]
        action: IvshmemAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum IvshmemAction {
    /// Exchange numbered messages with the peer of link ID through the
    /// shared memory and doorbells; fails on a lost, reordered or
    /// duplicated message and prints the round-trip time.
    Ping(PingArgs),
    /// Answer the peer's `ivshmem ping` on link ID: each numbered message
    /// is checked against the one before and sent back with a doorbell
    /// (what ivshmem-demo does, from a Linux cell).
    Echo(EchoArgs),
}

impl IvshmemAction {
    /// The link the command works on.
    pub fn id(&self) -> u32 {
        match self {
            Self::Ping(a) => a.id,
            Self::Echo(a) => a.id,
        }
    }
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Link id (`ivshmem[].id` of this cell's config).
    pub id: u32,
    /// Messages to answer before exiting.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// How long to wait for each message, in ms.
    #[arg(long, default_value_t = 60_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Link id (`ivshmem[].id` of this cell's config).
    pub id: u32,
    /// Messages to exchange.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// How long to wait for each answer, in ms.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Poll the shared memory for the answer instead of waiting for the
    /// peer's doorbell (the baseline of `cargo xtask bench ivshmem`).
    #[arg(long)]
    pub poll: bool,
}

/// Cells are named by name or by numeric id.
#[derive(Debug, Subcommand)]
pub enum CellAction {
    /// Create a cell from its config (TOML or `.cell`): its CPUs are taken
    /// from Linux and handed to the new cell.
    Create {
        /// The cell config.
        file: PathBuf,
    },
    /// Load images and strings into a cell's memory (stops it if running).
    Load(LoadArgs),
    /// Start a created (and loaded) cell at its entry.
    Start {
        /// Cell name or id.
        cell: String,
    },
    /// Ask a cell to shut down and wait for its answer.
    Shutdown {
        /// Cell name or id.
        cell: String,
    },
    /// Destroy a cell; its CPUs go back to Linux.
    Destroy {
        /// Cell name or id.
        cell: String,
    },
    /// List the cells: id, name, state, assigned and failed CPUs.
    List,
    /// Per-CPU statistics of a cell's EL2 entries.
    Stats {
        /// Cell name or id.
        cell: String,
    },
    /// Create a cell from its config and boot a Linux kernel in it (arm64
    /// boot protocol); its DTB is generated from the running board's.
    #[cfg(feature = "config-create")]
    Linux(LinuxArgs),
}

#[derive(Debug, Args)]
pub struct LinuxArgs {
    /// The cell config (TOML or `.cell`); its entry is set by the command.
    pub config: PathBuf,
    /// The kernel: an arm64 Image, raw or gzipped.
    pub kernel: PathBuf,
    /// An initramfs to pass to the kernel.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// The kernel command line (default: the cell's console, e.g.
    /// `console=ttyAMA0`).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// The cell's DTB, instead of the generated one (`/chosen` and a
    /// reserved-memory node for the boot area are filled in).
    #[arg(long)]
    pub dtb: Option<PathBuf>,
    /// The board DTB the cell's DTB is generated from.
    #[arg(long, default_value = "/sys/firmware/fdt")]
    pub board_dtb: PathBuf,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Cell name or id.
    pub cell: String,
    /// Image files, each at ADDR (as the cell sees it; default: the cell's
    /// entry).
    #[arg(value_name = "IMAGE[@ADDR]", required_unless_present = "strings")]
    pub images: Vec<String>,
    /// A NUL-terminated string to write at ADDR; repeatable.
    #[arg(short = 's', long = "string", value_name = "STRING@ADDR")]
    pub strings: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a TOML config and write its binary form (`.cell`).
    Compile(CompileArgs),
    /// Validate configs (TOML or `.cell`), optionally against a board DTB.
    Check(CheckArgs),
    /// Generate a system config from a board DTB (as `dt-cellgen system`):
    /// the root cell owns every CPU, all RAM but the hypervisor's and the
    /// cells' reservation, and every device.
    #[cfg(feature = "config-create")]
    Create(dt_cellgen::args::SystemArgs),
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
