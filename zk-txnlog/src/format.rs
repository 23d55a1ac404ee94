//! Byte layout of segments and records (DESIGN.md §2). Pure functions, no I/O.

/// Size of the segment header.
pub(crate) const HEADER_LEN: usize = 64;
/// Size of a frame header (len, crc, key).
pub(crate) const FRAME_HEADER: usize = 16;
/// `len` value of a seal frame.
pub(crate) const SEAL_LEN: u32 = u32::MAX;
const MAGIC: &[u8; 8] = b"ZKTXNLG1";
const VERSION: u32 = 1;
const FLAG_PREV: u32 = 1;

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
    /// Max bytes written but not durable (W).
    pub window: u64,
    pub size: u64,
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

fn frame_crc(key: u64, len: u32, payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&key.to_le_bytes());
    let c = crc32c::crc32c_append(c, &len.to_le_bytes());
    crc32c::crc32c_append(c, payload)
}

/// Append the frame of one record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, key: u64, payload: &[u8]) {
    // The caller bounds payload lengths by `max_record_bytes` (< u32::MAX - 8).
    let len = u32::try_from(payload.len() + 8).expect("payload length checked by caller");
    debug_assert!(len != SEAL_LEN);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_crc(key, len, payload).to_le_bytes());
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The seal frame: "continued in `log.<next_key>`".
pub(crate) fn encode_seal(next_key: u64) -> [u8; FRAME_HEADER] {
    let mut b = [0u8; FRAME_HEADER];
    b[0..4].copy_from_slice(&SEAL_LEN.to_le_bytes());
    b[4..8].copy_from_slice(&frame_crc(next_key, SEAL_LEN, &[]).to_le_bytes());
    b[8..16].copy_from_slice(&next_key.to_le_bytes());
    b
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameHead {
    /// len == 0: the end of what was written.
    End,
    /// A seal naming the next segment's first key (crc verified).
    Seal { next_key: u64 },
    /// A record header; `len` is the stored body length (key + payload), the payload is still to
    /// be checked with [`check_record`].
    Record { len: u32, crc: u32, key: u64 },
    /// A length that no writer produces (1..8).
    BadLen,
    /// A seal whose crc does not match.
    BadSeal,
}

pub(crate) fn decode_head(b: &[u8; FRAME_HEADER]) -> FrameHead {
    let len = u32_at(b, 0);
    let crc = u32_at(b, 4);
    let key = u64_at(b, 8);
    match len {
        0 => FrameHead::End,
        SEAL_LEN => {
            if frame_crc(key, SEAL_LEN, &[]) == crc {
                FrameHead::Seal { next_key: key }
            } else {
                FrameHead::BadSeal
            }
        }
        1..8 => FrameHead::BadLen,
        _ => FrameHead::Record { len, crc, key },
    }
}

/// Does the payload match the frame's crc?
pub(crate) fn check_record(key: u64, len: u32, crc: u32, payload: &[u8]) -> bool {
    frame_crc(key, len, payload) == crc
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
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        b[20] ^= 1;
        assert!(SegmentHeader::decode(&b).is_err());
        assert!(SegmentHeader::decode(&b[..10]).is_err());
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
    fn record_and_seal_frames() {
        let mut v = Vec::new();
        encode_record(&mut v, 7, b"hello");
        let head: [u8; 16] = v[..16].try_into().unwrap();
        match decode_head(&head) {
            FrameHead::Record { len, crc, key } => {
                assert_eq!((len, key), (13, 7));
                assert!(check_record(key, len, crc, &v[16..]));
                assert!(!check_record(key, len, crc, b"hellO"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode_head(&encode_seal(9)),
            FrameHead::Seal { next_key: 9 }
        );
        let mut s = encode_seal(9);
        s[9] ^= 1;
        assert_eq!(decode_head(&s), FrameHead::BadSeal);
        assert_eq!(decode_head(&[0; 16]), FrameHead::End);
        let mut e = Vec::new();
        encode_record(&mut e, 1, b"");
        assert_eq!(e.len(), 16);
        assert!(matches!(
            decode_head(&e[..16].try_into().unwrap()),
            FrameHead::Record { len: 8, .. }
        ));
    }
}
