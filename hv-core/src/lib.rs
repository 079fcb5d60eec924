//! Cellblock's portable core.
//!
//! Everything here is free of architecture assumptions and runs on the host
//! under `cargo test`: the config types shared by the hypervisor, the CLI and
//! dt-cellgen ([`config`]), their validation ([`validate`], [`board`]), the
//! binary `.cell` and boot-pack formats ([`blob`], [`pack`]), each cell's
//! memory map ([`memmap`]), the cell model ([`cell`]) and the hypercall ABI
//! numbers ([`abi`]).
//!
//! ```
//! use hv_core::{blob, pack, validate};
//! # fn demo(sys: &hv_core::config::SystemConfig) -> Result<(), hv_core::validate::ConfigErrors> {
//! validate::validate_system(sys)?;
//! let config = blob::encode_system(sys);
//! let image = [0u8; 64];
//! let packed = pack::build_pack(&config, &[(0, 0x4000_0000, &image[..])]);
//! let view = pack::Pack::parse(&packed).expect("just built");
//! let decoded = blob::decode_system(view.config_blob().expect("has config")).expect("valid");
//! assert_eq!(&decoded, sys);
//! # Ok(()) }
//! ```

#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

pub mod abi;
#[cfg(feature = "alloc")]
pub mod blob;
#[cfg(feature = "alloc")]
pub mod board;
pub mod cell;
pub mod comm;
#[cfg(feature = "alloc")]
pub mod config;
pub mod ivshmem;
#[cfg(feature = "alloc")]
pub mod memmap;
#[cfg(feature = "alloc")]
pub mod mgmt;
#[cfg(feature = "alloc")]
pub mod pack;
#[cfg(feature = "alloc")]
pub mod validate;

/// CRC-32 (ISO-HDLC, the zlib/PNG one) used by the `.cell` and pack headers.
#[cfg(feature = "alloc")]
pub fn crc32(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}
