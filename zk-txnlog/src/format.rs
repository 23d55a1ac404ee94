//! Byte layout of segments and records (DESIGN.md §2). Pure functions, no I/O.

/// Size of the segment header.
pub(crate) const HEADER_LEN: usize = 64;
/// Size of a frame header (len, crc, key, durable); also the whole size of a seal or a mark.
pub(crate) const FRAME_HEADER: usize = 24;
/// Every frame starts at a multiple of this (records are zero-padded to it).
pub(crate) const ALIGN: u64 = 8;
/// `len` value of a seal frame.
pub(crate) const SEAL_LEN: u32 = u32::MAX;
/// `len` value of a durability mark.
pub(crate) const MARK_LEN: u32 = u32::MAX - 1;
/// Smallest `len` of a record: key and durable watermark, empty payload.
pub(crate) const MIN_RECORD_LEN: u32 = 16;
const MAGIC: &[u8; 8] = b"ZKTXNLG1";
const VERSION: u32 = 2;
const FLAG_PREV: u32 = 1;

/// Bytes a record of `payload` bytes takes in a segment (header, payload, padding).
pub(crate) fn frame_len(payload: usize) -> u64 {
    align_up(FRAME_HEADER as u64 + payload as u64)
}

pub(crate) fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// A fresh per-segment salt: mixed into every frame crc of the segment, so a frame copied
/// from elsewhere (another segment, a payload that happens to hold a log) never verifies.
pub(crate) fn new_salt(first_key: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(first_key);
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

/// `log.<hex>` name of a segment.
pub(crate) fn segment_name(first_key: u64) -> String {
    format!("log.{first_key:x}")
}

/// Parse a file name of the form `<prefix><hex>` exactly (no suffix).
pub(crate) fn parse_name(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_key: u64,
    pub prev_key: Option<u64>,
    /// Max bytes written but not durable (W): the back-pressure bound; frames are at most W/2.
    pub window: u64,
    pub size: u64,
    /// Mixed into every frame crc of this segment.
    pub salt: u64,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = if self.prev_key.is_some() {
            FLAG_PREV
        } else {
            0
        };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_key.to_le_bytes());
        b[24..32].copy_from_slice(&self.prev_key.unwrap_or(0).to_le_bytes());
        b[32..40].copy_from_slice(&self.window.to_le_bytes());
        b[40..48].copy_from_slice(&self.size.to_le_bytes());
        b[48..56].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode; `Err` carries the reason.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, &'static str> {
        if b.len() < HEADER_LEN {
            return Err("file shorter than the segment header");
        }
        if &b[0..8] != MAGIC {
            return Err("bad segment magic");
        }
        if crc32c::crc32c(&b[0..60]) != u32_at(b, 60) {
            return Err("segment header crc mismatch");
        }
        if u32_at(b, 8) != VERSION {
            return Err("unsupported segment version");
        }
        let flags = u32_at(b, 12);
        let window = u64_at(b, 32);
        if window == 0 {
            return Err("segment header window is zero");
        }
        Ok(SegmentHeader {
            first_key: u64_at(b, 16),
            prev_key: (flags & FLAG_PREV != 0).then(|| u64_at(b, 24)),
            window,
            size: u64_at(b, 40),
            salt: u64_at(b, 48),
        })
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn frame_crc(salt: u64, len: u32, key: u64, durable: u64, payload: &[u8]) -> u32 {
    // The same bytes in two calls instead of five: each call has a fixed
    // cost that a ~200-byte record (recovery scans a million of them) feels.
    let mut head = [0u8; 28];
    head[..8].copy_from_slice(&salt.to_le_bytes());
    head[8..12].copy_from_slice(&len.to_le_bytes());
    head[12..20].copy_from_slice(&key.to_le_bytes());
    head[20..].copy_from_slice(&durable.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), payload)
}

/// Append the frame of one record to `out` (padded to [`ALIGN`]). `durable` is the offset up to
/// which this segment was durable when the frame was encoded (the durability watermark).
pub(crate) fn encode_record(out: &mut Vec<u8>, salt: u64, key: u64, durable: u64, payload: &[u8]) {
    // The caller bounds payload lengths by `max_record_bytes` (< u32::MAX - 32).
    let len = u32::try_from(payload.len() + 16).expect("payload length checked by caller");
    debug_assert!(len < MARK_LEN);
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_crc(salt, len, key, durable, payload).to_le_bytes());
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&durable.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(start + frame_len(payload.len()) as usize, 0);
}

fn encode_fixed(salt: u64, len: u32, key: u64, at: u64) -> [u8; FRAME_HEADER] {
    let mut b = [0u8; FRAME_HEADER];
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b[4..8].copy_from_slice(&frame_crc(salt, len, key, at, &[]).to_le_bytes());
    b[8..16].copy_from_slice(&key.to_le_bytes());
    b[16..24].copy_from_slice(&at.to_le_bytes());
    b
}

/// The seal frame at offset `at`: "continued in `log.<next_key>`; everything before is durable".
pub(crate) fn encode_seal(salt: u64, next_key: u64, at: u64) -> [u8; FRAME_HEADER] {
    encode_fixed(salt, SEAL_LEN, next_key, at)
}

/// The durability mark at offset `at`: "everything before `at` is durable". Written after a
/// sync at the end of the records, never synced itself, overwritten by the next batch.
pub(crate) fn encode_mark(salt: u64, at: u64) -> [u8; FRAME_HEADER] {
    encode_fixed(salt, MARK_LEN, 0, at)
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameHead {
    /// len == 0: the end of what was written.
    End,
    /// A seal naming the next segment's first key (crc verified); `durable` = its offset.
    Seal { next_key: u64, durable: u64 },
    /// A durability mark (crc verified): everything before `durable` was durable.
    Mark { durable: u64 },
    /// A record header; `len` is the stored body length (key + durable + payload), the payload
    /// is still to be checked with [`check_record`].
    Record {
        len: u32,
        crc: u32,
        key: u64,
        durable: u64,
    },
    /// A length that no writer produces (1..16).
    BadLen,
    /// A seal or mark whose crc does not match.
    BadSeal,
}

pub(crate) fn decode_head(salt: u64, b: &[u8; FRAME_HEADER]) -> FrameHead {
    let len = u32_at(b, 0);
    let crc = u32_at(b, 4);
    let key = u64_at(b, 8);
    let durable = u64_at(b, 16);
    match len {
        0 => FrameHead::End,
        SEAL_LEN | MARK_LEN => {
            if frame_crc(salt, len, key, durable, &[]) != crc {
                FrameHead::BadSeal
            } else if len == SEAL_LEN {
                FrameHead::Seal {
                    next_key: key,
                    durable,
                }
            } else {
                FrameHead::Mark { durable }
            }
        }
        1..MIN_RECORD_LEN => FrameHead::BadLen,
        _ => FrameHead::Record {
            len,
            crc,
            key,
            durable,
        },
    }
}

/// Does the payload match the frame's crc?
pub(crate) fn check_record(
    salt: u64,
    key: u64,
    durable: u64,
    len: u32,
    crc: u32,
    payload: &[u8],
) -> bool {
    frame_crc(salt, len, key, durable, payload) == crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            first_key: 0x1_0000_0005,
            prev_key: Some(3),
            window: 1 << 20,
            size: 1 << 26,
            salt: 0xdead_beef_1234,
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        b[20] ^= 1;
        assert!(SegmentHeader::decode(&b).is_err());
        assert!(SegmentHeader::decode(&b[..10]).is_err());
        assert_ne!(new_salt(1), new_salt(1), "salts differ between segments");
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(0x1_0000_00ab), "log.1000000ab");
        assert_eq!(parse_name("log.1000000ab", "log."), Some(0x1_0000_00ab));
        assert_eq!(parse_name("log.", "log."), None);
        assert_eq!(parse_name("log.12.tmp", "log."), None);
        assert_eq!(parse_name("log.+12", "log."), None);
        assert_eq!(parse_name("log.11112222333344445", "log."), None);
    }

    #[test]
    fn record_seal_and_mark_frames() {
        let salt = 77;
        let mut v = Vec::new();
        encode_record(&mut v, salt, 7, 64, b"hello");
        assert_eq!(v.len() as u64, frame_len(5));
        assert_eq!(v.len(), 32, "24 + 5 padded to 8");
        let head: [u8; FRAME_HEADER] = v[..FRAME_HEADER].try_into().unwrap();
        match decode_head(salt, &head) {
            FrameHead::Record {
                len,
                crc,
                key,
                durable,
            } => {
                assert_eq!((len, key, durable), (21, 7, 64));
                let p = &v[FRAME_HEADER..FRAME_HEADER + 5];
                assert!(check_record(salt, key, durable, len, crc, p));
                assert!(!check_record(salt, key, durable, len, crc, b"hellO"));
                assert!(!check_record(salt, key, durable + 8, len, crc, p));
                assert!(!check_record(salt + 1, key, durable, len, crc, p), "salted");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode_head(salt, &encode_seal(salt, 9, 128)),
            FrameHead::Seal {
                next_key: 9,
                durable: 128
            }
        );
        assert_eq!(
            decode_head(salt, &encode_mark(salt, 136)),
            FrameHead::Mark { durable: 136 }
        );
        assert_eq!(
            decode_head(salt + 1, &encode_mark(salt, 136)),
            FrameHead::BadSeal
        );
        let mut s = encode_seal(salt, 9, 128);
        s[9] ^= 1;
        assert_eq!(decode_head(salt, &s), FrameHead::BadSeal);
        assert_eq!(decode_head(salt, &[0; FRAME_HEADER]), FrameHead::End);
        let mut e = Vec::new();
        encode_record(&mut e, salt, 1, 64, b"");
        assert_eq!(e.len(), 24);
        assert!(matches!(
            decode_head(salt, &e[..FRAME_HEADER].try_into().unwrap()),
            FrameHead::Record { len: 16, .. }
        ));
    }
}
