//! Decoding errors.

/// Why a byte sequence could not be decoded.
///
/// Decoders never panic on any input: every length is checked against the bytes
/// actually present before anything is allocated or sliced. Inside a frame that is
/// already whole, [`DecodeError::Truncated`] means the frame is invalid; the
/// "need more bytes" case of a stream is reported by [`crate::FrameDecoder`] as
/// `Ok(None)`, never as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated input: {needed} more bytes needed at offset {offset}")]
    Truncated {
        /// Offset (from the start of the decoded buffer) of the value that did not fit.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A length or count prefix that is negative (other than -1 for null) or larger than
    /// what can follow it.
    #[error("invalid length {len} at offset {offset}")]
    BadLength {
        /// Offset of the length prefix.
        offset: usize,
        /// The length read.
        len: i64,
    },
    /// A frame length outside `0..=max`.
    #[error("packet length {len} is out of range (maximum {max})")]
    FrameTooLarge {
        /// The length read from the prefix.
        len: i64,
        /// The configured maximum (jute.maxbuffer).
        max: usize,
    },
    /// A numeric code that ZooKeeper does not define (opcode, error code, mode, ...).
    #[error("unknown {what} {value}")]
    UnknownValue {
        /// Which kind of code.
        what: &'static str,
        /// The value read.
        value: i64,
    },
    /// Bytes left over after a complete record where none may follow.
    #[error("{extra} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// The record that was decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A structurally invalid value (for example a multi op that may not appear there).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being decoded.
        what: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
}
