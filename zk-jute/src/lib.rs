//! The jute serialisation format and every record of the ZooKeeper wire, log and
//! quorum protocols, byte-compatible with Apache ZooKeeper 3.9.
//!
//! * [`Jute`]: the encode/decode trait, implemented for the primitives, vectors
//!   and every record (each record is defined once, by a declarative macro).
//! * [`FrameDecoder`]: the 4-byte length-prefixed framing with a maximum packet size.
//! * [`Request`], [`Response`], [`TxnBody`]: bodies dispatched by opcode.
//! * [`OpCode`], [`ErrorCode`], [`CreateMode`], [`EventType`], [`KeeperState`],
//!   [`WatcherType`], [`AddWatchMode`], [`perms`]: ZooKeeper's numbers.
//! * [`Zxid`]: the transaction id (epoch, counter, the next one).
//! * [`quorum`]: election notifications, the election handshake and quorum config text.
//!
//! Decoding never panics: every length is checked against the bytes present.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_jute::{CreateRequest, Jute, Request, RequestHeader};
//!
//! let req = Request::Create(CreateRequest { path: "/a".into(), flags: 0, ..Default::default() });
//! let mut frame = BytesMut::new();
//! req.encode_frame(1, &mut frame);
//! let (header, decoded) = Request::decode_frame(frame.freeze()).unwrap();
//! assert_eq!((header.xid, decoded), (1, req));
//! ```

#![forbid(unsafe_code)]

mod codec;
mod consts;
mod error;
mod frame;
mod handshake;
#[cfg(feature = "hostile")]
pub mod hostile;
mod messages;
pub mod quorum;
mod records;
#[cfg(test)]
mod testing;
mod zxid;

pub use codec::{Jute, Reader, write_buffer};
pub use consts::{
    AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType, perms,
    quorum_packet, xid,
};
pub use error::DecodeError;
pub use frame::{DEFAULT_MAX_PACKET, FrameDecoder, encode_frame};
pub use handshake::{ConnectRequest, ConnectResponse};
pub use messages::{MultiOp, MultiResult, Request, Response, TXN_DIGEST_LEN, TxnBody};
pub use records::*;
pub use zxid::Zxid;
