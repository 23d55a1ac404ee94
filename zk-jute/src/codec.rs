//! The jute primitives and the [`Jute`] trait every record implements.
//!
//! Encoding (as Apache ZooKeeper's `BinaryOutputArchive`): `int` and `long` are
//! big-endian two's complement, `boolean` is one byte (0 or 1; any non-zero byte
//! decodes as true), `buffer` and `ustring` are an `int` length followed by the
//! bytes with -1 meaning null, `vector` is an `int` count (-1 = null) followed by
//! the elements, and a nested record is its fields in order with no framing.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// A cursor over one decoded buffer. Slices of `buffer` fields share the
/// underlying allocation (no copy).
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    start_len: usize,
}

impl Reader {
    /// Reads from `buf`; offsets in errors are relative to its start.
    pub fn new(buf: Bytes) -> Self {
        let start_len = buf.len();
        Self { buf, start_len }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the next byte to read.
    pub fn offset(&self) -> usize {
        self.start_len - self.buf.len()
    }

    /// Takes every byte not yet read.
    pub fn take_rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { what, extra }),
        }
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated {
                offset: self.offset(),
                needed: n - self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a jute `boolean`.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// Reads a length prefix: `None` for -1 (null), an error for other negatives
    /// or a length longer than the bytes left times `min_elem` (so nothing
    /// oversized is ever allocated).
    fn read_len(&mut self, min_elem: usize) -> Result<Option<usize>, DecodeError> {
        let offset = self.offset();
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let bad = DecodeError::BadLength {
            offset,
            len: i64::from(len),
        };
        let len = usize::try_from(len).map_err(|_| bad.clone())?;
        if len.saturating_mul(min_elem) > self.remaining() {
            return Err(bad);
        }
        Ok(Some(len))
    }

    /// Reads a jute `buffer`; `None` is null (-1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        Ok(self.read_len(1)?.map(|n| self.buf.split_to(n)))
    }

    /// Reads a jute `ustring`; `None` is null (-1). Invalid UTF-8 is replaced by
    /// U+FFFD, as Java's decoder does (such a path then fails path validation).
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(self.read_len(1)?.map(|n| {
            let raw = self.buf.split_to(n);
            match std::str::from_utf8(&raw) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(&raw).into_owned(),
            }
        }))
    }

    /// Reads a vector count; `None` is null (-1). `min_elem` is the smallest
    /// encoded size of one element, used to reject impossible counts.
    pub fn read_count(&mut self, min_elem: usize) -> Result<Option<usize>, DecodeError> {
        self.read_len(min_elem.max(1))
    }
}

/// Writes a jute `buffer` (`None` as -1).
pub fn write_buffer(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(len_i32(b.len()));
            out.put_slice(b);
        }
    }
}

/// Converts a length to jute's `int`. Lengths above `i32::MAX` cannot be
/// encoded; callers keep records far below that (jute.maxbuffer), so this
/// saturates rather than wrapping.
pub(crate) fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A value with a jute encoding: a primitive, a vector or a record.
pub trait Jute: Sized {
    /// The smallest number of bytes an encoded value occupies (used to reject
    /// impossible vector counts before allocating).
    const MIN_LEN: usize;

    /// Appends the encoding of `self` to `out`.
    fn write(&self, out: &mut BytesMut);

    /// Decodes one value from `r`.
    fn read(r: &mut Reader) -> Result<Self, DecodeError>;

    /// Encodes `self` into a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write(&mut out);
        out.freeze()
    }

    /// Decodes a value that must occupy all of `buf`.
    fn from_bytes(buf: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::read(&mut r)?;
        r.finish(std::any::type_name::<Self>())?;
        Ok(v)
    }
}

impl Jute for i32 {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        out.put_i32(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    const MIN_LEN: usize = 8;
    fn write(&self, out: &mut BytesMut) {
        out.put_i64(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    const MIN_LEN: usize = 1;
    fn write(&self, out: &mut BytesMut) {
        out.put_u8(u8::from(*self));
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A non-null `ustring`: null (-1) decodes as the empty string.
impl Jute for String {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        write_buffer(out, Some(self.as_bytes()));
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(r.read_ustring()?.unwrap_or_default())
    }
}

/// A `buffer` that is never null on the wire: null (-1) decodes as empty.
impl Jute for Bytes {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        write_buffer(out, Some(self));
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(r.read_buffer()?.unwrap_or_default())
    }
}

/// A nullable `buffer` (znode data: ZooKeeper keeps null and empty apart).
impl Jute for Option<Bytes> {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        write_buffer(out, self.as_deref());
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A nullable `ustring` (reconfig's members: ZooKeeper tells null, "not
/// given", apart from empty).
impl Jute for Option<String> {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        write_buffer(out, self.as_deref().map(str::as_bytes));
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_ustring()
    }
}

/// A `vector`: null (-1) decodes as empty.
impl<T: Jute> Jute for Vec<T> {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut BytesMut) {
        out.put_i32(len_i32(self.len()));
        for v in self {
            v.write(out);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let Some(n) = r.read_count(T::MIN_LEN)? else {
            return Ok(Vec::new());
        };
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
}

/// Defines a jute record: a struct with public fields, each a [`Jute`] type,
/// encoded in declaration order. This is the one definition of each record;
/// encoding, decoding and (in tests) the random generator all come from it.
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )+
        }

        impl $crate::Jute for $name {
            const MIN_LEN: usize = 0 $( + <$ty as $crate::Jute>::MIN_LEN )+;
            fn write(&self, out: &mut ::bytes::BytesMut) {
                $( $crate::Jute::write(&self.$field, out); )+
            }
            fn read(r: &mut $crate::Reader) -> ::core::result::Result<Self, $crate::DecodeError> {
                Ok(Self { $( $field: $crate::Jute::read(r)?, )+ })
            }
        }

        #[cfg(test)]
        impl $crate::testing::Arb for $name {
            fn arb() -> ::proptest::strategy::BoxedStrategy<Self> {
                use ::proptest::strategy::Strategy;
                ( $( <$ty as $crate::testing::Arb>::arb(), )+ )
                    .prop_map(|( $( $field, )+ )| Self { $( $field, )+ })
                    .boxed()
            }
        }
    };
}
pub(crate) use jute_record;
