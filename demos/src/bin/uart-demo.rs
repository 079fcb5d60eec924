//! uart-demo: prints `Hello N from cell!` twice a second on the PL011; every
//! tenth line it also prints the hypervisor's exit statistics of CPUs 0-3
//! (hypercall 7, cpu_get_info). A cell-only demo: bare, the hypercall has
//! no hypervisor to answer it.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use demos::console::{self, Console};
use demos::hypercall::{cpu_stat, CpuStat};
use demos::{println, timer};

demos::entry!(main);

/// CPUs whose statistics are shown (QEMU `virt -smp 4`).
const STAT_CPUS: u64 = 4;

fn main() -> ! {
    console::set(Console::Uart);
    let half_second = timer::frequency() / 2;
    let mut next = timer::counter();
    let mut n: u64 = 1;
    loop {
        println!("Hello {n} from cell!");
        if n.is_multiple_of(10) {
            print_stats();
        }
        n += 1;
        // Deadlines from the first line on, so printing time does not drift.
        next = next.wrapping_add(half_second);
        timer::wait_until(next);
    }
}

/// One line per CPU the hypervisor answers for; CPUs it refuses (not in
/// the system, or not visible to this cell) are skipped.
fn print_stats() {
    for cpu in 0..STAT_CPUS {
        let stat = |s| cpu_stat(cpu, s);
        let total = stat(CpuStat::Total);
        if total < 0 {
            continue;
        }
        let (mmio, hvc, virq, psci) = (
            stat(CpuStat::Mmio),
            stat(CpuStat::Hypercall),
            stat(CpuStat::Virq),
            stat(CpuStat::Psci),
        );
        if [mmio, hvc, virq, psci].iter().any(|v| *v < 0) {
            continue;
        }
        println!("stats: cpu {cpu} entries {total} mmio {mmio} hvc {hvc} virq {virq} psci {psci}");
    }
}
