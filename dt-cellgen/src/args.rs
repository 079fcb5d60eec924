//! Command-line value readers shared by the binary and `cellblock config`,
//! and the options of `dt-cellgen system` / `cellblock config create`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::system::{Placement, SystemOptions, DEFAULT_IPA_BITS};

/// The arguments of `dt-cellgen system` and `cellblock config create`.
#[derive(Debug, Clone, clap::Args)]
pub struct SystemArgs {
    /// The board's DTB.
    pub dtb: PathBuf,
    /// Hypervisor memory (rounded up to 2 MiB), e.g. 16M.
    #[arg(long, default_value = "16M")]
    pub hv_mem: String,
    /// Carve the hypervisor memory at the `bottom` or `top` of RAM.
    #[arg(long, default_value = "bottom")]
    pub hv_at: String,
    /// RAM kept from the root cell for other cells, e.g. 64M.
    #[arg(long, default_value = "0")]
    pub cell_mem: String,
    /// RAM bank START:SIZE replacing the DTB's /memory (repeatable), for
    /// boards whose boot loader fills /memory in.
    #[arg(long = "ram")]
    pub ram: Vec<String>,
    /// Management page address (not RAM, no device) for a Linux root
    /// cell; adds hypervisor.management with a RAM buffer.
    #[arg(long)]
    pub mgmt_page: Option<String>,
    /// Size of the management buffer.
    #[arg(long, default_value = "2M")]
    pub mgmt_buffer: String,
    /// Bits of the cells' IPA space; root regions beyond it are left out.
    #[arg(long, default_value_t = DEFAULT_IPA_BITS)]
    pub ipa_bits: u8,
    /// Board name in the config (default: the DT's `model`).
    #[arg(long)]
    pub name: Option<String>,
    /// Also write the device report (MMIO, IRQs, IOMMUs, PCI) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The system config to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl SystemArgs {
    /// The generator's options, every value read.
    pub fn options(&self) -> Result<SystemOptions> {
        let hv_at = match self.hv_at.as_str() {
            "bottom" => Placement::Bottom,
            "top" => Placement::Top,
            other => {
                return Err(Error::BadArgument {
                    what: "--hv-at",
                    reason: format!("\"{other}\" is neither bottom nor top"),
                })
            }
        };
        Ok(SystemOptions {
            hv_mem: parse_size(&self.hv_mem)?,
            hv_at,
            cell_mem: parse_size(&self.cell_mem)?,
            ipa_bits: self.ipa_bits,
            name: self.name.clone(),
            management: match &self.mgmt_page {
                Some(p) => Some((parse_u64(p)?, parse_size(&self.mgmt_buffer)?)),
                None => None,
            },
            ram: self
                .ram
                .iter()
                .map(|r| {
                    let (a, s) = r.split_once(':').ok_or_else(|| Error::BadArgument {
                        what: "--ram",
                        reason: format!("\"{r}\" is not START:SIZE"),
                    })?;
                    Ok((parse_u64(a)?, parse_size(s)?))
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// A size: decimal or 0x-hex bytes, optionally with K, M or G (binary units).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = |reason: &str| Error::BadArgument {
        what: "size",
        reason: format!("\"{s}\": {reason}"),
    };
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let v = parse_u64(num).map_err(|_| bad("not a number"))?;
    v.checked_mul(1u64 << shift).ok_or_else(|| bad("too large"))
}

/// A decimal or 0x-hex number.
pub fn parse_u64(s: &str) -> Result<u64> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse(),
    };
    r.map_err(|_| Error::BadArgument {
        what: "number",
        reason: format!("\"{s}\" is not a decimal or 0x-hex number"),
    })
}

/// A CPU list such as `1,3-5`, in the order given.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>> {
    let bad = || Error::BadArgument {
        what: "--cpus",
        reason: format!("\"{s}\" is not a list like 1,3-5"),
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().map_err(|_| bad())?;
                let b: u32 = b.trim().parse().map_err(|_| bad())?;
                if b < a || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    let mut seen = out.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != out.len() {
        return Err(Error::BadArgument {
            what: "--cpus",
            reason: format!("\"{s}\" names a CPU twice"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("0x200000").unwrap(), 0x20_0000);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("3").unwrap(), vec![3]);
        assert_eq!(parse_cpu_list("1,3-5").unwrap(), vec![1, 3, 4, 5]);
        assert!(parse_cpu_list("2,2").is_err());
        assert!(parse_cpu_list("5-3").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
