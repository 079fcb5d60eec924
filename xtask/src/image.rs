//! Boot-image surgery for the tests: corrupt the packed system config.
//!
//! Layout (see the team brief): the hypervisor's flat image, whose ARM64
//! Image header holds `image_size` (u64 LE at byte 16), zero-padded to that
//! size; then the pack (header magic `CBPK`); the system config blob inside
//! it starts with the 16-byte `.cell` header (magic `CBLK`, u16 version,
//! u16 kind = 1 for a system config, u32 payload length, u32 CRC-32) and is
//! followed by its payload.

use crate::util::{Error, Result};

const IMAGE_SIZE_OFFSET: usize = 16;
const PACK_MAGIC: &[u8; 4] = b"CBPK";
const PACK_HEADER_LEN: usize = 16;
const BLOB_MAGIC: &[u8; 4] = b"CBLK";
const BLOB_HEADER_LEN: usize = 16;
const KIND_SYSTEM: u16 = 1;
/// Offset of the flipped byte from the blob's start: inside the payload.
const FLIP_AT: usize = 20;

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Flips one byte of the system config blob's payload (so its CRC no longer
/// matches) and returns the offset of that byte in the image.
pub fn corrupt_system_config(image: &mut [u8]) -> Result<usize> {
    let pack = read_u64(image, IMAGE_SIZE_OFFSET)
        .ok_or("boot image shorter than an ARM64 Image header")?;
    let pack = usize::try_from(pack).map_err(|_| "image_size does not fit in usize")?;
    if image.get(pack..pack + 4) != Some(PACK_MAGIC.as_slice()) {
        return Err(Error(format!(
            "no pack header (magic CBPK) at image_size {pack:#x}"
        )));
    }
    let mut from = pack + PACK_HEADER_LEN;
    while let Some(found) = image
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == BLOB_MAGIC))
    {
        let blob = from + found;
        let kind = read_u16(image, blob + 6);
        let payload_len = read_u32(image, blob + 8).map(|n| n as usize);
        let fits = payload_len.is_some_and(|n| {
            n > FLIP_AT - BLOB_HEADER_LEN && blob + BLOB_HEADER_LEN + n <= image.len()
        });
        if kind == Some(KIND_SYSTEM) && fits {
            image[blob + FLIP_AT] ^= 0xff;
            return Ok(blob + FLIP_AT);
        }
        from = blob + 1;
    }
    Err(Error(format!(
        "no system config blob (magic CBLK, kind 1) after the pack at {pack:#x}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake boot image: 64 KiB "hypervisor", a pack header, some index
    /// bytes that contain a decoy `CBLK` (wrong kind), then the system blob.
    fn fake_image() -> (Vec<u8>, usize) {
        let hv_size = 0x10000usize;
        let mut img = vec![0u8; hv_size];
        img[16..24].copy_from_slice(&(hv_size as u64).to_le_bytes());
        img.extend_from_slice(b"CBPK\x01\x00\x02\x00\x08\x00\x00\x00\x00\x00\x00\x00");
        img.extend_from_slice(b"CBLK\x01\x00\x02\x00"); // decoy: kind 2, truncated
        let blob = img.len();
        img.extend_from_slice(b"CBLK\x01\x00\x01\x00");
        img.extend_from_slice(&32u32.to_le_bytes());
        img.extend_from_slice(&0u32.to_le_bytes());
        img.extend_from_slice(&[0x5a; 32]);
        (img, blob)
    }

    #[test]
    fn flips_a_payload_byte_of_the_system_blob() {
        let (mut img, blob) = fake_image();
        let orig = img.clone();
        let at = corrupt_system_config(&mut img).expect("corrupts");
        assert_eq!(at, blob + 20);
        assert_eq!(img[at], 0x5a ^ 0xff);
        let changed = img.iter().zip(&orig).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1);
    }

    #[test]
    fn refuses_an_image_without_pack() {
        let (mut img, _) = fake_image();
        img[0x10000] = b'X';
        let err = corrupt_system_config(&mut img).unwrap_err();
        assert!(err.0.contains("CBPK"), "{err}");
    }

    #[test]
    fn refuses_a_pack_without_system_blob() {
        let (mut img, blob) = fake_image();
        img[blob + 6] = 2;
        let err = corrupt_system_config(&mut img).unwrap_err();
        assert!(err.0.contains("kind 1"), "{err}");
        assert!(corrupt_system_config(&mut [0u8; 8]).is_err());
    }
}
