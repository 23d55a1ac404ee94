//! Requests, responses and txns dispatched by opcode.
//!
//! A client frame after the handshake is a [`RequestHeader`] followed by the body
//! its opcode calls for; a server frame is a [`ReplyHeader`] followed by the
//! response body (none when `err != 0`, except for multi). A txn in the log is a
//! [`TxnHeader`] followed by the txn record its type calls for.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Jute, Reader};
use crate::records::*;
use crate::{DecodeError, OpCode};

/// A decoded client request body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// create (1)
    Create(CreateRequest),
    /// delete (2)
    Delete(DeleteRequest),
    /// exists (3)
    Exists(ExistsRequest),
    /// getData (4)
    GetData(GetDataRequest),
    /// setData (5)
    SetData(SetDataRequest),
    /// getACL (6)
    GetAcl(GetAclRequest),
    /// setACL (7)
    SetAcl(SetAclRequest),
    /// getChildren (8)
    GetChildren(GetChildrenRequest),
    /// sync (9)
    Sync(SyncRequest),
    /// ping (11), no body
    Ping,
    /// getChildren2 (12)
    GetChildren2(GetChildren2Request),
    /// check (13)
    Check(CheckVersionRequest),
    /// multi (14)
    Multi(Vec<MultiOp>),
    /// create2 (15)
    Create2(CreateRequest),
    /// reconfig (16)
    Reconfig(ReconfigRequest),
    /// checkWatches (17)
    CheckWatches(CheckWatchesRequest),
    /// removeWatches (18)
    RemoveWatches(RemoveWatchesRequest),
    /// createContainer (19)
    CreateContainer(CreateRequest),
    /// deleteContainer (20): the body is the raw UTF-8 path, no length prefix
    DeleteContainer(String),
    /// createTTL (21)
    CreateTtl(CreateTtlRequest),
    /// multiRead (22)
    MultiRead(Vec<MultiOp>),
    /// auth (100)
    Auth(AuthPacket),
    /// setWatches (101)
    SetWatches(SetWatches),
    /// sasl (102)
    Sasl(GetSaslRequest),
    /// getEphemerals (103)
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber (104)
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// setWatches2 (105)
    SetWatches2(SetWatches2),
    /// addWatch (106)
    AddWatch(AddWatchRequest),
    /// whoAmI (107), no body
    WhoAmI,
    /// createSession (-10): the requested timeout (server-internal, forwarded by learners)
    CreateSession(CreateSessionTxn),
    /// closeSession (-11), no body
    CloseSession,
}

/// One op of a multi (write ops) or multiRead (read ops) request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiOp {
    /// create (1)
    Create(CreateRequest),
    /// create2 (15)
    Create2(CreateRequest),
    /// createContainer (19)
    CreateContainer(CreateRequest),
    /// createTTL (21)
    CreateTtl(CreateTtlRequest),
    /// delete (2)
    Delete(DeleteRequest),
    /// setData (5)
    SetData(SetDataRequest),
    /// check (13)
    Check(CheckVersionRequest),
    /// getChildren (8), multiRead only
    GetChildren(GetChildrenRequest),
    /// getData (4), multiRead only
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The op's opcode.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// Whether this is a read op (allowed only in multiRead).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    /// The path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    fn write_body(&self, out: &mut BytesMut) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.write(out),
            MultiOp::CreateTtl(r) => r.write(out),
            MultiOp::Delete(r) => r.write(out),
            MultiOp::SetData(r) => r.write(out),
            MultiOp::Check(r) => r.write(out),
            MultiOp::GetChildren(r) => r.write(out),
            MultiOp::GetData(r) => r.write(out),
        }
    }

    fn read_body(op: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match OpCode::try_from(op)? {
            OpCode::Create => MultiOp::Create(Jute::read(r)?),
            OpCode::Create2 => MultiOp::Create2(Jute::read(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(Jute::read(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(Jute::read(r)?),
            OpCode::Delete => MultiOp::Delete(Jute::read(r)?),
            OpCode::SetData => MultiOp::SetData(Jute::read(r)?),
            OpCode::Check => MultiOp::Check(Jute::read(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(Jute::read(r)?),
            OpCode::GetData => MultiOp::GetData(Jute::read(r)?),
            _ => {
                return Err(DecodeError::Invalid {
                    what: "multi op",
                    reason: "opcode not allowed inside a multi",
                });
            }
        })
    }
}

/// The header that ends a multi request or response.
const MULTI_END: MultiHeader = MultiHeader {
    op_type: -1,
    done: true,
    err: -1,
};

fn write_multi_ops(ops: &[MultiOp], out: &mut BytesMut) {
    for op in ops {
        MultiHeader {
            op_type: op.op_code().code(),
            done: false,
            err: -1,
        }
        .write(out);
        op.write_body(out);
    }
    MULTI_END.write(out);
}

fn read_multi_ops(r: &mut Reader) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(MultiOp::read_body(h.op_type, r)?);
    }
}

impl Request {
    /// The request's opcode.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Create2(_) => OpCode::Create2,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CreateSession(_) => OpCode::CreateSession,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Appends the request body (without its header).
    pub fn write_body(&self, out: &mut BytesMut) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.write(out),
            Request::Delete(r) => r.write(out),
            Request::Exists(r) => r.write(out),
            Request::GetData(r) => r.write(out),
            Request::SetData(r) => r.write(out),
            Request::GetAcl(r) => r.write(out),
            Request::SetAcl(r) => r.write(out),
            Request::GetChildren(r) => r.write(out),
            Request::Sync(r) => r.write(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::GetChildren2(r) => r.write(out),
            Request::Check(r) => r.write(out),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi_ops(ops, out),
            Request::Reconfig(r) => r.write(out),
            Request::CheckWatches(r) => r.write(out),
            Request::RemoveWatches(r) => r.write(out),
            Request::DeleteContainer(path) => out.put_slice(path.as_bytes()),
            Request::CreateTtl(r) => r.write(out),
            Request::Auth(r) => r.write(out),
            Request::SetWatches(r) => r.write(out),
            Request::Sasl(r) => r.write(out),
            Request::GetEphemerals(r) => r.write(out),
            Request::GetAllChildrenNumber(r) => r.write(out),
            Request::SetWatches2(r) => r.write(out),
            Request::AddWatch(r) => r.write(out),
            Request::CreateSession(r) => r.write(out),
        }
    }

    /// Decodes the body of a request with opcode `op`; the body must be consumed
    /// exactly. An opcode ZooKeeper does not define, or one that is not a request
    /// (notification, error), is [`DecodeError::UnknownValue`].
    pub fn read_body(op: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        let req = match OpCode::try_from(op)? {
            OpCode::Create => Request::Create(Jute::read(r)?),
            OpCode::Delete => Request::Delete(Jute::read(r)?),
            OpCode::Exists => Request::Exists(Jute::read(r)?),
            OpCode::GetData => Request::GetData(Jute::read(r)?),
            OpCode::SetData => Request::SetData(Jute::read(r)?),
            OpCode::GetAcl => Request::GetAcl(Jute::read(r)?),
            OpCode::SetAcl => Request::SetAcl(Jute::read(r)?),
            OpCode::GetChildren => Request::GetChildren(Jute::read(r)?),
            OpCode::Sync => Request::Sync(Jute::read(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(Jute::read(r)?),
            OpCode::Check => Request::Check(Jute::read(r)?),
            OpCode::Multi => Request::Multi(read_multi_ops(r)?),
            OpCode::Create2 => Request::Create2(Jute::read(r)?),
            OpCode::Reconfig => Request::Reconfig(Jute::read(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Jute::read(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Jute::read(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Jute::read(r)?),
            OpCode::DeleteContainer => {
                let raw = r.take_rest();
                Request::DeleteContainer(String::from_utf8_lossy(&raw).into_owned())
            }
            OpCode::CreateTtl => Request::CreateTtl(Jute::read(r)?),
            OpCode::MultiRead => Request::MultiRead(read_multi_ops(r)?),
            OpCode::Auth => Request::Auth(Jute::read(r)?),
            OpCode::SetWatches => Request::SetWatches(Jute::read(r)?),
            OpCode::Sasl => Request::Sasl(Jute::read(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Jute::read(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Jute::read(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Jute::read(r)?),
            OpCode::AddWatch => Request::AddWatch(Jute::read(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CreateSession => Request::CreateSession(Jute::read(r)?),
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::Error => {
                return Err(DecodeError::UnknownValue {
                    what: "request opcode",
                    value: i64::from(op),
                });
            }
        };
        r.finish("request")?;
        Ok(req)
    }

    /// Decodes a whole request frame (after the handshake): header then body.
    pub fn decode_frame(frame: Bytes) -> Result<(RequestHeader, Request), DecodeError> {
        let mut r = Reader::new(frame);
        let h = RequestHeader::read(&mut r)?;
        let req = Request::read_body(h.op_type, &mut r)?;
        Ok((h, req))
    }

    /// Encodes a whole request frame body (header then body, without the length prefix).
    pub fn encode_frame(&self, xid: i32, out: &mut BytesMut) {
        RequestHeader {
            xid,
            op_type: self.op_code().code(),
        }
        .write(out);
        self.write_body(out);
    }
}

/// The result of one op of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiResult {
    /// create: the created path.
    Create(CreateResponse),
    /// create2, createContainer, createTTL: path and stat (header type is create2).
    Create2(Create2Response),
    /// delete: no body.
    Delete,
    /// check: no body.
    Check,
    /// setData: the new stat.
    SetData(SetDataResponse),
    /// getChildren (multiRead).
    GetChildren(GetChildrenResponse),
    /// getData (multiRead).
    GetData(GetDataResponse),
    /// A failed op: its error code (header type -1).
    Error(ErrorResponse),
}

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            MultiResult::Create(_) => (OpCode::Create.code(), 0),
            MultiResult::Create2(_) => (OpCode::Create2.code(), 0),
            MultiResult::Delete => (OpCode::Delete.code(), 0),
            MultiResult::Check => (OpCode::Check.code(), 0),
            MultiResult::SetData(_) => (OpCode::SetData.code(), 0),
            MultiResult::GetChildren(_) => (OpCode::GetChildren.code(), 0),
            MultiResult::GetData(_) => (OpCode::GetData.code(), 0),
            MultiResult::Error(e) => (-1, e.err),
        };
        MultiHeader {
            op_type: op,
            done: false,
            err,
        }
    }

    fn write(&self, out: &mut BytesMut) {
        self.header().write(out);
        match self {
            MultiResult::Create(r) => r.write(out),
            MultiResult::Create2(r) => r.write(out),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(r) => r.write(out),
            MultiResult::GetChildren(r) => r.write(out),
            MultiResult::GetData(r) => r.write(out),
            MultiResult::Error(r) => r.write(out),
        }
    }

    fn read(h: MultiHeader, r: &mut Reader) -> Result<Self, DecodeError> {
        if h.op_type == -1 {
            return Ok(MultiResult::Error(Jute::read(r)?));
        }
        Ok(match OpCode::try_from(h.op_type)? {
            OpCode::Create => MultiResult::Create(Jute::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                MultiResult::Create2(Jute::read(r)?)
            }
            OpCode::Delete => MultiResult::Delete,
            OpCode::Check => MultiResult::Check,
            OpCode::SetData => MultiResult::SetData(Jute::read(r)?),
            OpCode::GetChildren => MultiResult::GetChildren(Jute::read(r)?),
            OpCode::GetData => MultiResult::GetData(Jute::read(r)?),
            _ => {
                return Err(DecodeError::Invalid {
                    what: "multi result",
                    reason: "opcode not allowed inside a multi",
                });
            }
        })
    }
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// No body: errors, and delete, ping, auth, setWatches, check/removeWatches,
    /// closeSession.
    Empty,
    /// create
    Create(CreateResponse),
    /// create2, createContainer, createTTL
    Create2(Create2Response),
    /// exists, setData, setACL: a stat
    Stat(Stat),
    /// getData, reconfig
    GetData(GetDataResponse),
    /// getACL
    GetAcl(GetAclResponse),
    /// getChildren
    GetChildren(GetChildrenResponse),
    /// getChildren2
    GetChildren2(GetChildren2Response),
    /// sync
    Sync(SyncResponse),
    /// multi, multiRead
    Multi(Vec<MultiResult>),
    /// sasl
    Sasl(SetSaslResponse),
    /// getEphemerals
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI
    WhoAmI(WhoAmIResponse),
    /// addWatch: ZooKeeper (3.6+) answers a successful addWatch with an
    /// `ErrorResponse` body holding 0, not with an empty body.
    AddWatch(ErrorResponse),
}

impl Response {
    /// Appends the response body.
    pub fn write(&self, out: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.write(out),
            Response::Create2(r) => r.write(out),
            Response::Stat(s) => s.write(out),
            Response::GetData(r) => r.write(out),
            Response::GetAcl(r) => r.write(out),
            Response::GetChildren(r) => r.write(out),
            Response::GetChildren2(r) => r.write(out),
            Response::Sync(r) => r.write(out),
            Response::Multi(results) => {
                for res in results {
                    res.write(out);
                }
                MULTI_END.write(out);
            }
            Response::Sasl(r) => r.write(out),
            Response::GetEphemerals(r) => r.write(out),
            Response::GetAllChildrenNumber(r) => r.write(out),
            Response::WhoAmI(r) => r.write(out),
            Response::AddWatch(r) => r.write(out),
        }
    }

    /// Decodes the body of a reply to a request with opcode `op`. An empty body
    /// (as for any error reply) is [`Response::Empty`].
    pub fn read_body(op: OpCode, r: &mut Reader) -> Result<Self, DecodeError> {
        if r.remaining() == 0 {
            return Ok(Response::Empty);
        }
        let resp = match op {
            OpCode::Create => Response::Create(Jute::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Jute::read(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Jute::read(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Jute::read(r)?),
            OpCode::GetAcl => Response::GetAcl(Jute::read(r)?),
            OpCode::GetChildren => Response::GetChildren(Jute::read(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Jute::read(r)?),
            OpCode::Sync => Response::Sync(Jute::read(r)?),
            OpCode::Multi | OpCode::MultiRead => {
                let mut results = Vec::new();
                loop {
                    let h = MultiHeader::read(r)?;
                    if h.done {
                        break;
                    }
                    results.push(MultiResult::read(h, r)?);
                }
                Response::Multi(results)
            }
            OpCode::Sasl => Response::Sasl(Jute::read(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Jute::read(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Jute::read(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Jute::read(r)?),
            OpCode::AddWatch => Response::AddWatch(Jute::read(r)?),
            _ => {
                return Err(DecodeError::Invalid {
                    what: "response",
                    reason: "this opcode's reply has no body",
                });
            }
        };
        r.finish("response")?;
        Ok(resp)
    }

    /// Encodes a whole reply frame body (header then body, without length prefix).
    pub fn encode_frame(&self, header: &ReplyHeader, out: &mut BytesMut) {
        header.write(out);
        self.write(out);
    }
}

/// A txn body, by txn type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnBody {
    /// create (1)
    Create(CreateTxn),
    /// create2 (15): a create whose reply carries a stat
    Create2(CreateTxn),
    /// createContainer (19)
    CreateContainer(CreateContainerTxn),
    /// createTTL (21)
    CreateTtl(CreateTtlTxn),
    /// delete (2)
    Delete(DeleteTxn),
    /// deleteContainer (20)
    DeleteContainer(DeleteTxn),
    /// setData (5)
    SetData(SetDataTxn),
    /// setACL (7)
    SetAcl(SetAclTxn),
    /// check (13), inside a multi
    Check(CheckVersionTxn),
    /// multi (14): the sub-txns in order
    Multi(Vec<TxnBody>),
    /// reconfig (16): the new config written to /zookeeper/config
    Reconfig(SetDataTxn),
    /// createSession (-10)
    CreateSession(CreateSessionTxn),
    /// closeSession (-11); ZooKeeper before 3.6 wrote no body (decodes as an empty list)
    CloseSession(CloseSessionTxn),
    /// error (-1)
    Error(ErrorTxn),
}

impl TxnBody {
    /// The node a single-node txn acts on; `None` for a multi, a session's
    /// txn or an error.
    pub fn path(&self) -> Option<&str> {
        match self {
            TxnBody::Create(t) | TxnBody::Create2(t) => Some(&t.path),
            TxnBody::CreateContainer(t) => Some(&t.path),
            TxnBody::CreateTtl(t) => Some(&t.path),
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => Some(&t.path),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => Some(&t.path),
            TxnBody::SetAcl(t) => Some(&t.path),
            TxnBody::Check(t) => Some(&t.path),
            TxnBody::Multi(_)
            | TxnBody::CreateSession(_)
            | TxnBody::CloseSession(_)
            | TxnBody::Error(_) => None,
        }
    }

    /// Encodes a txn record as ZooKeeper's log holds it: the `TxnHeader`,
    /// then this body (the header's `txn_type` says which body follows).
    pub fn write_record(&self, header: &TxnHeader, out: &mut BytesMut) {
        header.write(out);
        self.write(out);
    }

    /// Decodes a record written by [`TxnBody::write_record`], with or
    /// without a trailing [`TxnDigest`] (dropped).
    pub fn read_record(bytes: Bytes) -> Result<(TxnHeader, TxnBody), DecodeError> {
        Self::read_record_digest(bytes).map(|(h, b, _)| (h, b))
    }

    /// Decodes a record and the [`TxnDigest`] that may follow it (a leader
    /// sends the tree digest after the txn with each proposal, and ZooKeeper
    /// 3.6+ logs it): as ZooKeeper's `SerializeUtils.deserializeTxn`, the
    /// body is read first and 12 bytes left after it are the digest; any
    /// other count of bytes left is an error.
    pub fn read_record_digest(
        bytes: Bytes,
    ) -> Result<(TxnHeader, TxnBody, Option<TxnDigest>), DecodeError> {
        let mut r = Reader::new(bytes);
        let header = TxnHeader::read(&mut r)?;
        let body = TxnBody::read_inner(header.txn_type, &mut r, true)?;
        let digest = match r.remaining() {
            TXN_DIGEST_LEN => Some(TxnDigest::read(&mut r)?),
            _ => None,
        };
        r.finish("txn")?;
        Ok((header, body, digest))
    }

    /// The txn type.
    pub fn txn_type(&self) -> OpCode {
        match self {
            TxnBody::Create(_) => OpCode::Create,
            TxnBody::Create2(_) => OpCode::Create2,
            TxnBody::CreateContainer(_) => OpCode::CreateContainer,
            TxnBody::CreateTtl(_) => OpCode::CreateTtl,
            TxnBody::Delete(_) => OpCode::Delete,
            TxnBody::DeleteContainer(_) => OpCode::DeleteContainer,
            TxnBody::SetData(_) => OpCode::SetData,
            TxnBody::SetAcl(_) => OpCode::SetAcl,
            TxnBody::Check(_) => OpCode::Check,
            TxnBody::Multi(_) => OpCode::Multi,
            TxnBody::Reconfig(_) => OpCode::Reconfig,
            TxnBody::CreateSession(_) => OpCode::CreateSession,
            TxnBody::CloseSession(_) => OpCode::CloseSession,
            TxnBody::Error(_) => OpCode::Error,
        }
    }

    /// Appends the txn record.
    pub fn write(&self, out: &mut BytesMut) {
        match self {
            TxnBody::Create(t) | TxnBody::Create2(t) => t.write(out),
            TxnBody::CreateContainer(t) => t.write(out),
            TxnBody::CreateTtl(t) => t.write(out),
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.write(out),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => t.write(out),
            TxnBody::SetAcl(t) => t.write(out),
            TxnBody::Check(t) => t.write(out),
            TxnBody::Multi(subs) => {
                let txns = subs
                    .iter()
                    .map(|s| {
                        let mut b = BytesMut::new();
                        s.write(&mut b);
                        Txn {
                            txn_type: s.txn_type().code(),
                            data: b.freeze(),
                        }
                    })
                    .collect();
                MultiTxn { txns }.write(out);
            }
            TxnBody::CreateSession(t) => t.write(out),
            TxnBody::CloseSession(t) => t.write(out),
            TxnBody::Error(t) => t.write(out),
        }
    }

    /// Decodes a txn record of type `txn_type` that must fill `r` exactly.
    pub fn read(txn_type: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        let body = Self::read_inner(txn_type, r, true)?;
        r.finish("txn")?;
        Ok(body)
    }

    /// Reads a body, leaving what follows it unread.
    fn read_inner(txn_type: i32, r: &mut Reader, allow_multi: bool) -> Result<Self, DecodeError> {
        let body = match OpCode::try_from(txn_type)? {
            OpCode::Create => TxnBody::Create(Jute::read(r)?),
            OpCode::Create2 => TxnBody::Create2(Jute::read(r)?),
            OpCode::CreateContainer => TxnBody::CreateContainer(Jute::read(r)?),
            OpCode::CreateTtl => TxnBody::CreateTtl(Jute::read(r)?),
            OpCode::Delete => TxnBody::Delete(Jute::read(r)?),
            OpCode::DeleteContainer => TxnBody::DeleteContainer(Jute::read(r)?),
            OpCode::SetData => TxnBody::SetData(Jute::read(r)?),
            OpCode::SetAcl => TxnBody::SetAcl(Jute::read(r)?),
            OpCode::Check => TxnBody::Check(Jute::read(r)?),
            OpCode::Reconfig => TxnBody::Reconfig(Jute::read(r)?),
            OpCode::CreateSession => TxnBody::CreateSession(Jute::read(r)?),
            OpCode::CloseSession if r.remaining() == 0 => {
                TxnBody::CloseSession(CloseSessionTxn::default())
            }
            OpCode::CloseSession => TxnBody::CloseSession(Jute::read(r)?),
            OpCode::Error => TxnBody::Error(Jute::read(r)?),
            OpCode::Multi if allow_multi => {
                let multi = MultiTxn::read(r)?;
                let mut subs = Vec::with_capacity(multi.txns.len());
                for t in multi.txns {
                    let mut sub = Reader::new(t.data);
                    subs.push(Self::read_inner(t.txn_type, &mut sub, false)?);
                    sub.finish("txn")?;
                }
                TxnBody::Multi(subs)
            }
            _ => {
                return Err(DecodeError::Invalid {
                    what: "txn",
                    reason: "not a txn type here",
                });
            }
        };
        Ok(body)
    }
}

/// Bytes of a [`TxnDigest`] after a txn record (version i32, digest i64).
pub const TXN_DIGEST_LEN: usize = 12;

#[cfg(test)]
mod tests;
