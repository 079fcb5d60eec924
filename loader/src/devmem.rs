//! The management page and buffer mapped through `/dev/mem`.
//!
//! The page (its address comes from the root DTB, see [`crate::dt`]) holds
//! 64-bit registers ([`hv_core::mgmt::reg`]); the buffer's address and size
//! are read from its `BUFFER_BASE` and `BUFFER_SIZE` registers. Neither is
//! RAM of the root kernel, so Linux maps both as Device memory: every access
//! goes through [`crate::mmio`].

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hv_core::abi::Hypercall;
use hv_core::mgmt::{reg, MGMT_MAGIC, MGMT_PAGE_SIZE, MGMT_VERSION};
use memmap2::{MmapOptions, MmapRaw};

use crate::mgmt::{BufferError, Mgmt};
use crate::mmio;
use crate::Error;

/// Where Linux exposes physical memory.
pub const DEV_MEM: &str = "/dev/mem";

/// The live management interface.
pub struct DevMem {
    path: PathBuf,
    file: File,
    page: MmapRaw,
    buffer: MmapRaw,
    buffer_base: u64,
    buffer_size: u64,
}

/// Maps `[pa, pa + len)` of `file` (`/dev/mem`).
/// Opens `dev_mem` for mapping device memory: read-write, `O_SYNC`.
pub(crate) fn open_dev_mem(dev_mem: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_SYNC)
        .open(dev_mem)
        .map_err(|e| Error::file(dev_mem, e))
}

/// Maps `[pa, pa + len)` of the open `path` (`/dev/mem`).
pub(crate) fn map(file: &File, path: &Path, pa: u64, len: u64) -> Result<MmapRaw, Error> {
    let what = || format!("{} at {pa:#x}+{len:#x}", path.display());
    let len = usize::try_from(len).map_err(|_| Error::new(what(), "too large to map"))?;
    MmapOptions::new()
        .offset(pa)
        .len(len)
        .map_raw(file)
        .map_err(|e| Error::new(what(), format!("cannot map: {e}")))
}

impl DevMem {
    /// Opens `dev_mem` (normally [`DEV_MEM`]), maps the management page at
    /// physical address `page`, checks its magic and version, and maps the
    /// buffer it names.
    pub fn open(dev_mem: &Path, page: u64) -> Result<Self, Error> {
        let file = open_dev_mem(dev_mem)?;
        let page_map = map(&file, dev_mem, page, MGMT_PAGE_SIZE)?;
        let base = page_map.as_mut_ptr().cast::<u64>();
        // SAFETY: the mapping is one page, page aligned; MAGIC and VERSION
        // are aligned registers inside it.
        let (magic, version) = unsafe {
            (
                mmio::load64(base.add(reg_index(reg::MAGIC))),
                mmio::load64(base.add(reg_index(reg::VERSION))),
            )
        };
        let what = format!("management page at {page:#x}");
        if magic != MGMT_MAGIC {
            return Err(Error::new(
                what,
                format!(
                    "magic {magic:#x} is not \"CBMG\" (is this Linux running as Cellblock's root cell?)"
                ),
            ));
        }
        if version != MGMT_VERSION {
            return Err(Error::new(
                what,
                format!("layout version {version}, this tool speaks version {MGMT_VERSION}"),
            ));
        }
        // SAFETY: as above, for BUFFER_BASE and BUFFER_SIZE.
        let (buffer_base, buffer_size) = unsafe {
            (
                mmio::load64(base.add(reg_index(reg::BUFFER_BASE))),
                mmio::load64(base.add(reg_index(reg::BUFFER_SIZE))),
            )
        };
        if buffer_size == 0 || !buffer_size.is_multiple_of(8) || !buffer_base.is_multiple_of(8) {
            return Err(Error::new(
                what,
                format!(
                    "management buffer {buffer_base:#x}+{buffer_size:#x} is empty or not 8-byte aligned"
                ),
            ));
        }
        let buffer = map(&file, dev_mem, buffer_base, buffer_size)?;
        Ok(Self {
            path: dev_mem.to_path_buf(),
            file,
            page: page_map,
            buffer,
            buffer_base,
            buffer_size,
        })
    }

    /// Physical address of the buffer.
    pub fn buffer_base(&self) -> u64 {
        self.buffer_base
    }

    fn reg(&self, offset: u64) -> *mut u64 {
        // SAFETY: `offset` is one of `reg`'s constants, inside the page.
        unsafe { self.page.as_mut_ptr().cast::<u64>().add(reg_index(offset)) }
    }
}

fn reg_index(offset: u64) -> usize {
    (offset / 8) as usize
}

impl Mgmt for DevMem {
    fn call(&mut self, code: Hypercall, a0: u64, a1: u64, a2: u64) -> i64 {
        // SAFETY: the registers are aligned words of the mapped page.
        unsafe {
            mmio::store64(self.reg(reg::ARG0), a0);
            mmio::store64(self.reg(reg::ARG1), a1);
            mmio::store64(self.reg(reg::ARG2), a2);
            mmio::barrier();
            mmio::store64(self.reg(reg::COMMAND), code as u64);
            mmio::barrier();
            mmio::load64(self.reg(reg::RESULT)) as i64
        }
    }

    fn buffer_size(&self) -> u64 {
        self.buffer_size
    }

    fn write_buffer(&mut self, offset: u64, data: &[u8]) -> Result<(), BufferError> {
        let len = data.len() as u64;
        BufferError::check(offset, len, self.buffer_size)?;
        // SAFETY: the range lies inside the buffer, whose size is a
        // multiple of 8, so the words it touches are mapped.
        unsafe {
            mmio::copy_in(
                self.buffer.as_mut_ptr().cast::<u64>(),
                offset as usize,
                data,
            )
        };
        Ok(())
    }

    fn read_buffer(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, BufferError> {
        BufferError::check(offset, len, self.buffer_size)?;
        // SAFETY: as in `write_buffer`.
        Ok(unsafe {
            mmio::copy_out(
                self.buffer.as_ptr().cast::<u64>(),
                offset as usize,
                len as usize,
            )
        })
    }

    fn write_phys(&mut self, pa: u64, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        let start = pa & !7;
        let end = pa
            .checked_add(data.len() as u64)
            .and_then(|e| e.checked_next_multiple_of(8))
            .ok_or_else(|| format!("{pa:#x}+{:#x} overflows", data.len()))?;
        let window = map(&self.file, &self.path, start, end - start)
            .map_err(|e| e.lines().collect::<Vec<_>>().join("; "))?;
        // SAFETY: the window covers the aligned words around
        // `[pa, pa + len)`, and starts 8-byte aligned.
        unsafe {
            mmio::copy_in(
                window.as_mut_ptr().cast::<u64>(),
                (pa - start) as usize,
                data,
            )
        };
        mmio::barrier();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device() {
        let e = DevMem::open(Path::new("/nonexistent/mem"), 0x0c00_0000)
            .err()
            .unwrap();
        let line = e.lines().next().unwrap();
        assert!(line.starts_with("/nonexistent/mem: "), "{line}");
    }

    #[test]
    fn not_a_management_page() {
        // A plain file stands in for /dev/mem: the page reads as zeros.
        let dir = crate::testutil::scratch("devmem-magic");
        let path = dir.join("mem");
        std::fs::write(&path, vec![0u8; 0x3000]).unwrap();
        let e = DevMem::open(&path, 0x1000).err().unwrap();
        assert_eq!(
            e.to_string(),
            "management page at 0x1000: magic 0x0 is not \"CBMG\" (is this Linux running as Cellblock's root cell?)"
        );
    }

    #[test]
    fn file_backed_page() {
        // A file laid out like physical memory: the page at 0x1000, the
        // buffer at 0x2000.
        let dir = crate::testutil::scratch("devmem-file");
        let path = dir.join("mem");
        let mut mem = vec![0u8; 0x3000];
        let put = |mem: &mut Vec<u8>, at: usize, v: u64| {
            mem[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        };
        put(&mut mem, 0x1000 + reg::MAGIC as usize, MGMT_MAGIC);
        put(&mut mem, 0x1000 + reg::VERSION as usize, MGMT_VERSION);
        put(&mut mem, 0x1000 + reg::BUFFER_BASE as usize, 0x2000);
        put(&mut mem, 0x1000 + reg::BUFFER_SIZE as usize, 0x1000);
        put(&mut mem, 0x1000 + reg::RESULT as usize, (-22i64) as u64);
        std::fs::write(&path, &mem).unwrap();

        let mut m = DevMem::open(&path, 0x1000).unwrap();
        assert_eq!(m.buffer_base(), 0x2000);
        assert_eq!(m.buffer_size(), 0x1000);
        // A file does not run commands: RESULT reads back what it holds,
        // the arguments and the code land in their registers.
        assert_eq!(m.call(Hypercall::CellStart, 7, 8, 9), -22);
        m.write_buffer(3, b"hello").unwrap();
        assert_eq!(m.read_buffer(3, 5).unwrap(), b"hello");
        assert!(m.write_buffer(0xffe, b"abc").is_err());
        m.write_phys(0x2ffd, b"xyz").unwrap();
        drop(m);
        let mem = std::fs::read(&path).unwrap();
        let get = |at: usize| u64::from_ne_bytes(mem[at..at + 8].try_into().unwrap());
        assert_eq!(get(0x1000 + reg::ARG0 as usize), 7);
        assert_eq!(get(0x1000 + reg::ARG1 as usize), 8);
        assert_eq!(get(0x1000 + reg::ARG2 as usize), 9);
        assert_eq!(get(0x1000 + reg::COMMAND as usize), 2);
        assert_eq!(&mem[0x2003..0x2008], b"hello");
        assert_eq!(&mem[0x2ffd..0x3000], b"xyz");
        assert_eq!(mem[0x2ffc], 0);
    }
}
