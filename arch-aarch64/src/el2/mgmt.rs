//! The management page and buffer (hv_core::mgmt): how the root cell's
//! Linux userspace reaches the hypercall dispatch without a kernel module.

use alloc::vec::Vec;
use hv_core::abi::{CpuStat, Errno};
use hv_core::mgmt::{reg, MGMT_MAGIC, MGMT_PAGE_SIZE, MGMT_VERSION};
use spin::Mutex;

use super::sysregs::clean_invalidate_dcache;
use super::{cpu, hypercall, setup};

struct Regs {
    args: [u64; 3],
    result: u64,
}

static REGS: Mutex<Regs> = Mutex::new(Regs {
    args: [0; 3],
    result: 0,
});

/// The offset in the management page that `ipa` addresses, if it does.
pub fn page_offset(ipa: u64) -> Option<u64> {
    let m = setup::system().hypervisor.management?;
    (ipa >= m.page && ipa < m.page + MGMT_PAGE_SIZE).then(|| ipa - m.page)
}

/// Emulates one access of the root cell to the management page.
pub fn access(offset: u64, size: u8, write: Option<u64>) -> Result<u64, &'static str> {
    if size != 8 || !offset.is_multiple_of(8) {
        return Err("management page: only aligned 64-bit accesses");
    }
    cpu::current().count(CpuStat::Management);
    let buffer = setup::system()
        .hypervisor
        .management
        .map(|m| m.buffer)
        .unwrap_or(hv_core::config::Range { start: 0, size: 0 });
    let mut regs = REGS.lock();
    let arg = |o: u64| ((o - reg::ARG0) / 8) as usize;
    Ok(match (offset, write) {
        (reg::MAGIC, None) => MGMT_MAGIC,
        (reg::VERSION, None) => MGMT_VERSION,
        (reg::ARG0 | reg::ARG1 | reg::ARG2, None) => regs.args[arg(offset)],
        (reg::ARG0 | reg::ARG1 | reg::ARG2, Some(v)) => {
            regs.args[arg(offset)] = v;
            0
        }
        (reg::COMMAND, Some(code)) => {
            let [a0, a1, a2] = regs.args;
            drop(regs);
            let result = hypercall::call(code, a0, a1, a2);
            REGS.lock().result = result;
            0
        }
        (reg::RESULT, None) => regs.result,
        (reg::BUFFER_BASE, None) => buffer.start,
        (reg::BUFFER_SIZE, None) => buffer.size,
        // Everything else reads as zero and ignores writes.
        (_, None) => 0,
        (_, Some(_)) => 0,
    })
}

fn buffer_range(offset: u64, len: u64) -> Result<u64, Errno> {
    let m = setup::system().hypervisor.management.ok_or(Errno::NoSys)?;
    let end = offset.checked_add(len).ok_or(Errno::Inval)?;
    if end > m.buffer.size {
        return Err(Errno::Inval);
    }
    Ok(m.buffer.start + offset)
}

/// Copies `len` bytes at `offset` of the management buffer.
pub fn read_buffer(offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let pa = buffer_range(offset, len)?;
    // The root cell writes through a non-cacheable /dev/mem mapping: drop
    // any stale lines before reading.
    clean_invalidate_dcache(pa, len);
    // SAFETY: the buffer is RAM of the platform (validated), identity mapped
    // in EL2 and shared with the root cell only; the range is inside it.
    let bytes = unsafe { core::slice::from_raw_parts(pa as *const u8, len as usize) };
    Ok(bytes.to_vec())
}

/// Writes `data` at `offset` of the management buffer.
pub fn write_buffer(offset: u64, data: &[u8]) -> Result<(), Errno> {
    let pa = buffer_range(offset, data.len() as u64)?;
    // SAFETY: as in `read_buffer`.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) };
    // The root cell reads through a non-cacheable mapping.
    clean_invalidate_dcache(pa, data.len() as u64);
    Ok(())
}

/// Leaves a NUL-terminated explanation at `offset` for the CLI to print.
pub fn write_message(offset: u64, msg: &str) {
    let mut bytes = Vec::from(msg.as_bytes());
    bytes.push(0);
    let _ = write_buffer(offset, &bytes);
}
