//! The session handshake: the first frame each way on a client connection.
//!
//! These records end with a `readOnly` boolean that `zookeeper.jute` does not
//! declare: ZooKeeper writes and reads it outside the generated code, and old
//! clients omit it. So they are hand-written rather than made with `jute_record!`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;
use crate::codec::{Jute, Reader, write_buffer};

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ConnectRequest {
    /// Protocol version (0).
    pub protocol_version: i32,
    /// The last zxid the client has seen (0 for a new client).
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub time_out: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session password (16 bytes when resuming; often 16 zero bytes otherwise).
    pub passwd: Bytes,
    /// Whether the client accepts a read-only server; `None` when an old client
    /// omitted the byte (44-byte handshake instead of 45).
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    const MIN_LEN: usize = 4 + 8 + 4 + 8 + 4;

    fn write(&self, out: &mut BytesMut) {
        out.put_i32(self.protocol_version);
        out.put_i64(self.last_zxid_seen);
        out.put_i32(self.time_out);
        out.put_i64(self.session_id);
        write_buffer(out, Some(&self.passwd));
        if let Some(ro) = self.read_only {
            out.put_u8(u8::from(ro));
        }
    }

    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Jute::read(r)?,
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        })
    }
}

/// The server's reply to a [`ConnectRequest`].
///
/// An expired or unknown session gets `time_out == 0`, `session_id == 0` and a
/// zeroed 16-byte password.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ConnectResponse {
    /// Protocol version (0).
    pub protocol_version: i32,
    /// The negotiated session timeout in ms.
    pub time_out: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password (16 bytes).
    pub passwd: Bytes,
    /// Whether this server is read-only. Always written; decodes as `false` when a
    /// (very old) server omitted it.
    pub read_only: bool,
}

impl Jute for ConnectResponse {
    const MIN_LEN: usize = 4 + 4 + 8 + 4;

    fn write(&self, out: &mut BytesMut) {
        out.put_i32(self.protocol_version);
        out.put_i32(self.time_out);
        out.put_i64(self.session_id);
        write_buffer(out, Some(&self.passwd));
        out.put_u8(u8::from(self.read_only));
    }

    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.read_i32()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Jute::read(r)?,
            read_only: if r.remaining() > 0 {
                r.read_bool()?
            } else {
                false
            },
        })
    }
}

#[cfg(test)]
impl crate::testing::Arb for ConnectRequest {
    fn arb() -> proptest::strategy::BoxedStrategy<Self> {
        use proptest::prelude::*;
        (
            i32::arb(),
            i64::arb(),
            i32::arb(),
            i64::arb(),
            Bytes::arb(),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(
                |(protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only)| {
                    Self {
                        protocol_version,
                        last_zxid_seen,
                        time_out,
                        session_id,
                        passwd,
                        read_only,
                    }
                },
            )
            .boxed()
    }
}

#[cfg(test)]
impl crate::testing::Arb for ConnectResponse {
    fn arb() -> proptest::strategy::BoxedStrategy<Self> {
        use proptest::prelude::*;
        (
            i32::arb(),
            i32::arb(),
            i64::arb(),
            Bytes::arb(),
            any::<bool>(),
        )
            .prop_map(
                |(protocol_version, time_out, session_id, passwd, read_only)| Self {
                    protocol_version,
                    time_out,
                    session_id,
                    passwd,
                    read_only,
                },
            )
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_sizes_match_zookeeper() {
        let mut req = ConnectRequest {
            passwd: Bytes::from_static(&[0; 16]),
            time_out: 30000,
            ..Default::default()
        };
        assert_eq!(req.to_bytes().len(), 44);
        req.read_only = Some(false);
        assert_eq!(req.to_bytes().len(), 45);
        let resp = ConnectResponse {
            passwd: Bytes::from_static(&[0; 16]),
            ..Default::default()
        };
        assert_eq!(resp.to_bytes().len(), 37);
        let short = resp.to_bytes().slice(..36);
        assert_eq!(ConnectResponse::from_bytes(short).unwrap(), resp);
    }
}
