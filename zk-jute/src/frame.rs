//! Length-prefixed framing: every packet is a 4-byte big-endian length followed
//! by that many bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_PACKET: usize = 0xfffff;

/// Splits a byte stream into frames.
///
/// `decode` returns `Ok(None)` when more bytes are needed, `Ok(Some(frame))` for
/// each whole frame (without its length prefix), and an error when the length is
/// negative or above the maximum; the length is checked before anything is
/// allocated, so a hostile prefix cannot make the caller reserve memory.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET)
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max` bytes (jute.maxbuffer).
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// The maximum frame length.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Reads the length prefix at the start of `buf` without consuming it:
    /// `Ok(None)` if fewer than 4 bytes are buffered.
    pub fn peek_len(&self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        match usize::try_from(len) {
            Ok(n) if n <= self.max => Ok(Some(n)),
            _ => Err(DecodeError::FrameTooLarge {
                len: i64::from(len),
                max: self.max,
            }),
        }
    }

    /// Takes one whole frame off the front of `buf`, if there is one.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let Some(len) = self.peek_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Appends a frame: the length of `body(out)`'s output, then the output.
pub fn encode_frame(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_i32(0);
    body(out);
    let len = crate::codec::len_i32(out.len() - start - 4);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_waits() {
        let d = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0, 0, 0, 3, 1, 2]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[3, 0, 0, 0, 0]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), &[] as &[u8]);
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_negative_and_oversized_before_allocating() {
        let d = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { len: -1, .. })
        ));
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&[0, 0, 0, 17][..]);
        assert!(d.decode(&mut buf).is_err());
    }

    #[test]
    fn encode_frame_writes_length() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, |o| o.put_slice(b"abc"));
        assert_eq!(out.as_ref(), &[0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
