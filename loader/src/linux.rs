//! `cellblock cell linux`: boots a Linux kernel in a new cell.
//!
//! The command creates the cell, writes its DTB (generated from the
//! running board's DTB with dt-cellgen's library unless one is given) and
//! loads, at the top of the cell's RAM, a *boot area* that the cell's
//! `/memory` leaves out:
//!
//! | offset | what |
//! | --- | --- |
//! | 0 | [`STUB`]: copies the images to where they run, enters the kernel |
//! | [`BLOCK_OFFSET`] | the copy list: count, then `{src, dst, len}` each, then the kernel entry and the DTB address |
//! | 1 page on | the kernel, the initrd and the DTB as loaded |
//!
//! The cell starts at the stub with x0 = the copy list. The stub copies the
//! kernel (to the 2 MiB-aligned start of the RAM region plus the Image
//! header's `text_offset`), the initrd and the DTB to their run addresses
//! and enters the kernel as the arm64 boot protocol asks: MMU off, x0 = the
//! DTB, x1..x3 = 0. Because the images it copies from stay untouched, a
//! PSCI SYSTEM_RESET inside the cell (Linux `reboot`), which restarts the
//! cell at its entry, boots the same kernel afresh.

use std::path::Path;

use hv_core::config::{CellConfig, MemFlag};

use crate::cells::{cell_to_phys, load_regions, LoadItem, Runtime};
use crate::cli::LinuxArgs;
use crate::Error;

/// The copy-and-enter stub (AArch64, runs at EL1 with the MMU off; x0 =
/// the copy list; every address and length 8-byte aligned):
///
/// ```text
///     mov  x9, x0
///     ldr  x10, [x9], #8          // number of copies
/// 1:  cbz  x10, 3f
///     ldp  x11, x12, [x9], #16    // src, dst
///     ldr  x13, [x9], #8          // len
/// 2:  cbz  x13, 4f
///     ldr  x14, [x11], #8
///     str  x14, [x12], #8
///     sub  x13, x13, #8
///     b    2b
/// 4:  sub  x10, x10, #1
///     b    1b
/// 3:  ldp  x15, x0, [x9]          // kernel entry, DTB
///     dsb  sy
///     ic   iallu
///     dsb  sy
///     isb
///     mov  x1, xzr
///     mov  x2, xzr
///     mov  x3, xzr
///     br   x15
/// ```
pub const STUB: [u32; 21] = [
    0xaa00_03e9,
    0xf840_852a,
    0xb400_014a,
    0xa8c1_312b,
    0xf840_852d,
    0xb400_00ad,
    0xf840_856e,
    0xf800_858e,
    0xd100_21ad,
    0x17ff_fffc,
    0xd100_054a,
    0x17ff_fff7,
    0xa940_012f,
    0xd503_3f9f,
    0xd508_751f,
    0xd503_3f9f,
    0xd503_3fdf,
    0xaa1f_03e1,
    0xaa1f_03e2,
    0xaa1f_03e3,
    0xd61f_01e0,
];

/// Where the copy list starts in the boot area.
pub const BLOCK_OFFSET: u64 = 0x100;
const PAGE: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
/// Room kept for a generated DTB (they are a few KiB).
const DTB_ROOM: u64 = 0x1_0000;
/// `ARM\x64` at byte 0x38 of an arm64 Image.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

fn align_up(v: u64, a: u64) -> Option<u64> {
    Some(v.checked_add(a - 1)? & !(a - 1))
}

fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

/// The fields of the arm64 Image header the layout needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (its bss included).
    pub image_size: u64,
}

impl ImageHeader {
    pub fn read(image: &[u8]) -> Result<Self, String> {
        if image.get(0x38..0x3c) != Some(IMAGE_MAGIC.as_slice()) {
            return Err("not an arm64 Image: no `ARM\\x64` magic at byte 0x38".into());
        }
        let u64_at = |at: usize| {
            image
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| String::from("arm64 Image header truncated"))
        };
        Ok(ImageHeader {
            text_offset: u64_at(8)?,
            image_size: u64_at(16)?,
        })
    }
}

/// A raw arm64 Image from `bytes`, as it is or gunzipped (Debian's
/// `vmlinuz` is one or the other, depending on the release), with its
/// header.
pub fn kernel_image(bytes: Vec<u8>) -> Result<(Vec<u8>, ImageHeader), String> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot gunzip: {e}"))?;
        raw
    } else {
        bytes
    };
    let header = ImageHeader::read(&raw)?;
    Ok((raw, header))
}

/// Where everything goes, as the cell sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The kernel's run address (its entry).
    pub kernel: u64,
    /// The initrd's run address and size.
    pub initrd: Option<(u64, u64)>,
    /// The DTB's run address.
    pub dtb: u64,
    /// Room for the DTB at its run address and in the boot area.
    pub dtb_room: u64,
    /// The boot area (start, size): hidden from the kernel.
    pub boot: (u64, u64),
    /// Where the boot area keeps the kernel, initrd and DTB.
    pub kernel_src: u64,
    pub initrd_src: u64,
    pub dtb_src: u64,
}

impl Layout {
    /// The cell's entry (the stub) and x0 (the copy list).
    pub fn entry(&self) -> (u64, u64) {
        (self.boot.0, self.boot.0 + BLOCK_OFFSET)
    }

    /// The first page of the boot area: the stub and the copy list for a
    /// kernel of `kernel_len` bytes and a DTB of `dtb_len` bytes.
    pub fn boot_page(&self, kernel_len: u64, dtb_len: u64) -> Vec<u8> {
        let mut page: Vec<u8> = STUB.iter().flat_map(|w| w.to_le_bytes()).collect();
        page.resize(BLOCK_OFFSET as usize, 0);
        let mut copies = vec![(self.kernel_src, self.kernel, kernel_len)];
        if let Some((at, len)) = self.initrd {
            copies.push((self.initrd_src, at, len));
        }
        copies.push((self.dtb_src, self.dtb, dtb_len));
        let mut words = vec![copies.len() as u64];
        for (src, dst, len) in copies {
            words.extend([src, dst, len.div_ceil(8) * 8]);
        }
        words.extend([self.kernel, self.dtb]);
        page.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        page
    }
}

/// The cell's RAM region the kernel runs in: the largest loadable one.
fn ram_region(config: &CellConfig) -> Option<(u64, u64)> {
    let (regions, _) = load_regions(config);
    regions
        .iter()
        .filter(|r| !r.has(MemFlag::Io))
        .max_by_key(|r| r.size)
        .map(|r| (r.virt_start, r.size))
}

/// Lays out a kernel (`header`, `kernel_len` bytes), an initrd and a DTB
/// of up to `dtb_len` bytes in the cell's RAM: the kernel at the bottom,
/// the boot area at the top, the DTB and the initrd just below it.
pub fn plan(
    config: &CellConfig,
    header: ImageHeader,
    kernel_len: u64,
    initrd_len: Option<u64>,
    dtb_len: u64,
) -> Result<Layout, String> {
    let (base, size) =
        ram_region(config).ok_or_else(|| String::from("the cell has no loadable RAM"))?;
    let end = base
        .checked_add(size)
        .ok_or_else(|| String::from("RAM region wraps"))?;
    let too_big = || {
        format!(
            "the kernel ({kernel_len} bytes, {} in memory), the initrd ({} bytes) and the DTB do \
             not fit twice (to run and to restart from) in the cell's RAM at {base:#x} ({} MiB)",
            header.image_size,
            initrd_len.unwrap_or(0),
            size >> 20
        )
    };
    let up4k = |v: u64| align_up(v, PAGE).ok_or_else(too_big);
    let kernel = align_up(base, MIB2)
        .and_then(|k| k.checked_add(header.text_offset))
        .ok_or_else(too_big)?;
    let kernel_end = kernel
        .checked_add(header.image_size.max(kernel_len))
        .ok_or_else(too_big)?;
    let dtb_room = up4k(dtb_len.max(DTB_ROOM))?;
    let initrd_room = up4k(initrd_len.unwrap_or(0))?;
    let boot_size = PAGE + up4k(kernel_len)? + initrd_room + dtb_room;
    let boot_start = align_down(end.checked_sub(boot_size).ok_or_else(too_big)?, MIB2);
    // The DTB in a 2 MiB block of its own (the boot protocol maps it so).
    let dtb = boot_start.checked_sub(MIB2).ok_or_else(too_big)?;
    let initrd_at = dtb.checked_sub(initrd_room).ok_or_else(too_big)?;
    if initrd_at < kernel_end || dtb_room > MIB2 {
        return Err(too_big());
    }
    let kernel_src = boot_start + PAGE;
    let initrd_src = kernel_src + up4k(kernel_len)?;
    Ok(Layout {
        kernel,
        initrd: initrd_len.map(|l| (initrd_at, l)),
        dtb,
        dtb_room,
        boot: (boot_start, end - boot_start),
        kernel_src,
        initrd_src,
        dtb_src: initrd_src + initrd_room,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

/// Zero-pads `data` to a multiple of 8 bytes (the stub copies words).
fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().div_ceil(8) * 8, 0);
    data
}

/// The cell's DTB for `layout`: `--dtb` fitted to it, or generated.
fn cell_dtb(
    args: &LinuxArgs,
    config: &CellConfig,
    layout: &Layout,
    given: Option<Vec<u8>>,
) -> Result<Vec<u8>, Error> {
    let dt_err = |what: &Path| {
        let what = what.display().to_string();
        move |e: dt_cellgen::Error| Error::new(what, e)
    };
    match given {
        Some(dtb) => dt_cellgen::dtb::fit_guest_dtb(
            &dtb,
            args.cmdline.as_deref(),
            layout.initrd,
            layout.boot,
        )
        .map_err(dt_err(args.dtb.as_deref().unwrap_or(Path::new("--dtb")))),
        None => {
            let board_dtb = read(&args.board_dtb)?;
            let board =
                dt_cellgen::board::Board::from_dtb(&board_dtb).map_err(dt_err(&args.board_dtb))?;
            let platform = dt_cellgen::dtb::GuestPlatform::from(&board);
            let opts = dt_cellgen::dtb::GuestOptions {
                bootargs: args
                    .cmdline
                    .clone()
                    .unwrap_or_else(|| default_cmdline(&board, config)),
                initrd: layout.initrd,
                psci_method: None,
                hidden_ram: vec![layout.boot],
            };
            dt_cellgen::dtb::guest_dtb_on(&board, &platform, config, &opts)
                .map_err(dt_err(&args.board_dtb))
        }
    }
}

/// `console=ttyAMA0` for a PL011, `console=ttyS0` otherwise, when the cell
/// owns a UART; nothing else.
fn default_cmdline(board: &dt_cellgen::board::Board, config: &CellConfig) -> String {
    let io: Vec<(u64, u64)> = config
        .memory
        .iter()
        .filter(|r| r.has(MemFlag::Io))
        .map(|r| (r.phys_start, r.size))
        .collect();
    let uart = board.devices.iter().find_map(|d| {
        let owned = d
            .mmio
            .iter()
            .any(|&(s, _)| io.iter().any(|&(b, z)| s >= b && s < b.saturating_add(z)));
        let compat = board.tree.compatible(d.node);
        let pl011 = compat.iter().any(|c| c.contains("pl011"));
        let serial = pl011
            || compat
                .iter()
                .any(|c| c.contains("uart") || c.contains("16550"));
        (owned && serial).then_some(pl011)
    });
    match uart {
        Some(true) => "console=ttyAMA0".into(),
        Some(false) => "console=ttyS0".into(),
        None => String::new(),
    }
}

impl Runtime<'_> {
    /// `cell linux CONFIG KERNEL [--initrd FILE] [--cmdline STR] [--dtb FILE]`.
    pub fn linux(&mut self, args: &LinuxArgs) -> Result<Vec<String>, Error> {
        let mut config = crate::files::load_cell(&args.config)?;
        let (kernel, header) = kernel_image(read(&args.kernel)?)
            .map_err(|e| Error::new(args.kernel.display().to_string(), e))?;
        let initrd = args.initrd.as_deref().map(read).transpose()?;
        let given = args.dtb.as_deref().map(read).transpose()?;
        let dtb_len = given.as_ref().map_or(0, |d| d.len() as u64 + 0x1000);
        let layout = plan(
            &config,
            header,
            kernel.len() as u64,
            initrd.as_ref().map(|i| i.len() as u64),
            dtb_len,
        )
        .map_err(|e| Error::new(args.config.display().to_string(), e))?;
        let dtb = cell_dtb(args, &config, &layout, given)?;
        if dtb.len() as u64 > layout.dtb_room {
            return Err(Error::new(
                "cell DTB",
                format!(
                    "{} bytes: more than the {} planned",
                    dtb.len(),
                    layout.dtb_room
                ),
            ));
        }
        let (entry, x0) = layout.entry();
        config.entry = entry;
        config.entry_x0 = Some(x0);
        config.images.clear();
        // An unmodified kernel does not answer shutdown requests.
        config.passive_comm = true;
        let (regions, _) = load_regions(&config);
        if cell_to_phys(&regions, layout.boot.0, layout.boot.1).is_none() {
            return Err(Error::new(
                args.config.display().to_string(),
                "the boot area is not in one loadable region",
            ));
        }

        let mut report = self.create_config(&config, &args.config.display().to_string())?;
        let info = self.resolve(&config.name)?;
        let mut items = vec![
            LoadItem {
                label: "boot stub".into(),
                addr: layout.boot.0,
                data: layout.boot_page(kernel.len() as u64, dtb.len() as u64),
            },
            LoadItem {
                label: args.kernel.display().to_string(),
                addr: layout.kernel_src,
                data: padded(kernel),
            },
        ];
        if let (Some(data), Some(path)) = (initrd, &args.initrd) {
            items.push(LoadItem {
                label: path.display().to_string(),
                addr: layout.initrd_src,
                data: padded(data),
            });
        }
        items.push(LoadItem {
            label: "cell DTB".into(),
            addr: layout.dtb_src,
            data: padded(dtb),
        });
        let loaded = self.load_into(&info, items).and_then(|mut r| {
            self.start(&config.name).map(|s| {
                r.extend(s);
                r
            })
        });
        match loaded {
            Ok(lines) => {
                report.extend(lines);
                report.push(format!(
                    "Cell \"{}\": Linux at {:#x}, DTB at {:#x}{}, boot area {:#x}+{:#x}",
                    config.name,
                    layout.kernel,
                    layout.dtb,
                    layout
                        .initrd
                        .map(|(a, l)| format!(", initrd at {a:#x} ({l} bytes)"))
                        .unwrap_or_default(),
                    layout.boot.0,
                    layout.boot.1
                ));
                Ok(report)
            }
            Err(mut e) => {
                // Leave nothing half done: the cell goes, its CPUs go back.
                if let Err(undo) = self.destroy(&config.name) {
                    e.extend(undo);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hv_core::config::MemoryRegion;

    fn config(base: u64, size: u64) -> CellConfig {
        CellConfig {
            name: "linux".into(),
            cpus: vec![2, 3],
            memory: vec![MemoryRegion {
                phys_start: 0x6e00_0000,
                virt_start: base,
                size,
                flags: vec![
                    MemFlag::Read,
                    MemFlag::Write,
                    MemFlag::Execute,
                    MemFlag::Loadable,
                ],
                comment: None,
            }],
            irqs: vec![],
            entry: base,
            entry_x0: None,
            images: vec![],
            streams: vec![],
            ivshmem: vec![],
            passive_comm: false,
        }
    }

    const HEADER: ImageHeader = ImageHeader {
        text_offset: 0,
        image_size: 0x26b_0000,
    };

    #[test]
    fn layout_of_debians_kernel_in_256_mib() {
        let c = config(0x6e00_0000, 0x1000_0000);
        let l = plan(&c, HEADER, 32_956_352, Some(1_500_000), 0).unwrap();
        assert_eq!(l.kernel, 0x6e00_0000);
        assert_eq!(l.boot.0 % MIB2, 0);
        assert_eq!(l.boot.0 + l.boot.1, 0x7e00_0000);
        assert_eq!(l.dtb, l.boot.0 - MIB2);
        let (initrd, len) = l.initrd.unwrap();
        assert!(initrd >= l.kernel + HEADER.image_size);
        assert!(initrd + len <= l.dtb);
        // The sources follow one another inside the boot area.
        assert_eq!(l.kernel_src, l.boot.0 + PAGE);
        assert!(l.initrd_src >= l.kernel_src + 32_956_352);
        assert!(l.dtb_src + l.dtb_room <= l.boot.0 + l.boot.1);
        assert_eq!(l.entry(), (l.boot.0, l.boot.0 + BLOCK_OFFSET));
    }

    #[test]
    fn text_offset_and_unaligned_ram() {
        let c = config(0x4010_0000, 0x1000_0000);
        let h = ImageHeader {
            text_offset: 0x8_0000,
            ..HEADER
        };
        let l = plan(&c, h, 0x100_0000, None, 0).unwrap();
        assert_eq!(l.kernel, 0x4028_0000);
        assert_eq!(l.initrd, None);
    }

    #[test]
    fn too_small_names_the_sizes() {
        let c = config(0x6e00_0000, 0x400_0000);
        let e = plan(&c, HEADER, 32_956_352, None, 0).unwrap_err();
        assert!(e.contains("do not fit twice"), "{e}");
        assert!(e.contains("64 MiB"), "{e}");
        let mut io = config(0, 0x1000);
        io.memory[0].flags = vec![MemFlag::Read, MemFlag::Io];
        assert!(plan(&io, HEADER, 16, None, 0).is_err());
    }

    #[test]
    fn boot_page_holds_the_stub_and_the_copy_list() {
        let c = config(0x6e00_0000, 0x1000_0000);
        let l = plan(&c, HEADER, 1001, Some(77), 0).unwrap();
        let page = l.boot_page(1001, 300);
        assert_eq!(&page[..4], &0xaa00_03e9u32.to_le_bytes());
        let word = |i: usize| {
            let at = BLOCK_OFFSET as usize + 8 * i;
            u64::from_le_bytes(page[at..at + 8].try_into().unwrap())
        };
        assert_eq!(word(0), 3);
        assert_eq!((word(1), word(2), word(3)), (l.kernel_src, l.kernel, 1008));
        assert_eq!(
            (word(4), word(5), word(6)),
            (l.initrd_src, l.initrd.unwrap().0, 80)
        );
        assert_eq!((word(7), word(8), word(9)), (l.dtb_src, l.dtb, 304));
        assert_eq!((word(10), word(11)), (l.kernel, l.dtb));
        assert!(page.len() as u64 <= PAGE);
    }

    #[test]
    fn gzipped_and_raw_kernels() {
        use std::io::Write;
        let mut raw = vec![0u8; 0x100];
        raw[0x38..0x3c].copy_from_slice(IMAGE_MAGIC);
        raw[16..24].copy_from_slice(&0x1234u64.to_le_bytes());
        assert_eq!(kernel_image(raw.clone()).unwrap().0, raw);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let (unzipped, header) = kernel_image(gz.finish().unwrap()).unwrap();
        assert_eq!(unzipped, raw);
        assert_eq!(header.image_size, 0x1234);
        let e = kernel_image(vec![0u8; 0x100]).unwrap_err();
        assert!(e.contains("ARM\\x64"), "{e}");
        assert!(kernel_image(vec![0x1f, 0x8b, 1, 2]).is_err());
    }
}
