//! `cargo xtask`: the project's task runner.
//!
//! Glue only: it installs the host tools, builds the EL2 image and the
//! inmates, packs boot images with the `cellblock` CLI, runs QEMU for the
//! demo, and runs every test (host tests and QEMU scenarios). Product logic
//! lives in the crates it drives.

mod bench;
mod bench_dtbs;
mod bench_ivshmem;
mod bench_linux;
mod build;
mod cpio;
mod debian;
mod dtbs;
mod fuzz;
mod image;
mod ivshmem_test;
mod linux;
mod linux_cell_test;
mod linux_smmu;
mod linux_smmu_test;
mod linux_test;
mod qemu;
mod setup;
mod smmu_test;
mod test;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Cellblock's task runner.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing: QEMU >= 10 and dtc (apt-get, as root).
    Setup,
    /// Build the EL2 image, the inmates, the Linux root cell (kernel, initramfs,
    /// root DTB) and the boot images (target/cellblock/).
    Build,
    /// Boot the demo in QEMU on this terminal: Linux as root cell, which
    /// starts the gic-demo cell and leaves a root shell.
    Demo {
        /// GIC version of the emulated machine.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
        gic: u8,
        /// The bare-metal demo instead: root uart-demo + gic-demo cell started at boot.
        #[arg(long)]
        bare: bool,
    },
    /// Run every test: fmt, clippy, host tests, QEMU scenarios.
    Test {
        /// Run only the QEMU scenarios (skip fmt, clippy and host tests).
        #[arg(long)]
        qemu_only: bool,
        /// Run only the QEMU scenarios whose name contains this text.
        #[arg(long, value_name = "TEXT")]
        scenario: Option<String>,
    },
    /// Fetch Debian's arm64 kernel DTBs (cached) and print `CELLBLOCK_DEBIAN_DTBS=DIR`.
    Dtbs,
    /// Fuzz a dt-cellgen target for a bounded time (nightly + cargo-fuzz; not in CI).
    Fuzz {
        /// The target in dt-cellgen/fuzz/fuzz_targets/.
        #[arg(long, default_value = "read_dtb")]
        target: String,
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// Benchmarks (not part of `test`).
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Timer jitter of gic-demo bare and in a cell, under deterministic `-icount`.
    Latency {
        /// Number of `Timer fired` lines to collect from each run.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(2..))]
        ticks: u16,
    },
    /// Linux boot to userspace bare vs. as root cell, and gic-demo's
    /// create + load + start time, under deterministic `-icount`.
    Linux,
    /// The ivshmem doorbell round trip root cell <-> ivshmem-demo against
    /// the polled one, under deterministic `-icount`.
    Ivshmem {
        /// Messages of each of the two runs.
        #[arg(long, default_value_t = 2000)]
        count: u32,
    },
    /// `dt-cellgen system` vs. `dtc -I dtb -O dts` over Debian's arm64 DTBs.
    Dtbs {
        /// Timed passes of each tool; the best is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::ensure_tools().map(|tools| {
            println!(
                "xtask: tools present: {}, dtc, {}",
                tools.qemu.display(),
                tools.objcopy.display()
            );
        }),
        Command::Dtbs => dtbs::fetch_debian_dtbs().map(|_| ()),
        Command::Build => setup::ensure_tools().and_then(|tools| {
            let _lock = util::lock_outputs()?;
            build::build(&tools)
        }),
        Command::Demo { gic, bare } => {
            setup::ensure_tools().and_then(|tools| qemu::run_demo(&tools, gic.into(), bare))
        }
        Command::Test {
            qemu_only,
            scenario,
        } => setup::ensure_tools().and_then(|tools| {
            test::run_all(
                &tools,
                &test::Options {
                    qemu_only,
                    scenario,
                },
            )
        }),
        Command::Fuzz { target, seconds } => fuzz::fuzz(&target, seconds),
        Command::Bench {
            which: BenchCommand::Latency { ticks },
        } => setup::ensure_tools().and_then(|tools| bench::latency(&tools, ticks.into())),
        Command::Bench {
            which: BenchCommand::Linux,
        } => setup::ensure_tools().and_then(|tools| bench_linux::linux(&tools)),
        Command::Bench {
            which: BenchCommand::Ivshmem { count },
        } => setup::ensure_tools().and_then(|tools| bench_ivshmem::ivshmem(&tools, count)),
        Command::Bench {
            which: BenchCommand::Dtbs { runs },
        } => bench_dtbs::dtbs(runs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
