//! Golden vectors: byte-exact frames captured from a real Apache ZooKeeper 3.8
//! talking to kazoo, zkCli.sh and the C client (`tests/golden/*.jsonl`, see the
//! README there). Every frame must decode with this crate's decoders and
//! re-encode to exactly the captured bytes; every strict prefix of a frame must
//! fail cleanly (never panic, never decode to the same value).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use zk_jute::{
    ConnectRequest, ConnectResponse, DecodeError, FrameDecoder, Jute, OpCode, Reader, ReplyHeader,
    Request, Response, WatcherEvent, encode_frame, xid,
};

/// Which way a frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dir {
    C2s,
    S2c,
}

/// One captured frame, length prefix included.
#[derive(Debug, Clone)]
struct Frame {
    /// 1-based line in the fixture file.
    line: usize,
    conn: i64,
    dir: Dir,
    /// The whole frame, 4-byte length prefix included.
    raw: Bytes,
}

impl Frame {
    /// The frame without its length prefix.
    fn body(&self) -> Bytes {
        self.raw.slice(4.min(self.raw.len())..)
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every `*.jsonl` fixture, sorted by name.
fn fixture_files() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(golden_dir()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

/// The raw text of `"key": value` in a flat JSON object line (a string without
/// escapes or a number): enough for the fixture format, with no JSON dependency.
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let rest = &line[line.find(&pat)? + pat.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        Some(&s[..s.find('"')?])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn load(path: &Path) -> Vec<Frame> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let mut frames = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad =
            |what: &str| -> ! { panic!("{}:{line_no}: bad fixture line ({what})", path.display()) };
        let conn = json_field(line, "conn")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| bad("conn"));
        let dir = match json_field(line, "dir") {
            Some("c2s") => Dir::C2s,
            Some("s2c") => Dir::S2c,
            _ => bad("dir"),
        };
        let raw = json_field(line, "hex")
            .and_then(unhex)
            .unwrap_or_else(|| bad("hex"));
        frames.push(Frame {
            line: line_no,
            conn,
            dir,
            raw: Bytes::from(raw),
        });
    }
    frames
}

/// A byte-level description of where two encodings part.
fn diff(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    format!(
        "first difference at byte {at} (lengths {} vs {})\n  captured: {}\n  encoded:  {}",
        expected.len(),
        got.len(),
        hex(expected),
        hex(got)
    )
}

/// What a frame decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decoded {
    Connect(ConnectRequest),
    Connected(ConnectResponse),
    Request(i32, Request),
    Notification(ReplyHeader, WatcherEvent),
    Reply(ReplyHeader, Response),
}

impl Decoded {
    /// The whole frame, length prefix included.
    fn encode(&self) -> BytesMut {
        let mut out = BytesMut::new();
        encode_frame(&mut out, |o| match self {
            Decoded::Connect(c) => c.write(o),
            Decoded::Connected(c) => c.write(o),
            Decoded::Request(xid, r) => r.encode_frame(*xid, o),
            Decoded::Notification(h, e) => {
                h.write(o);
                e.write(o);
            }
            Decoded::Reply(h, r) => r.encode_frame(h, o),
        });
        out
    }
}

/// Which decoder a frame needs: its position and, for replies, the opcode of
/// the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Connected,
    Request,
    /// A reply (or notification when the reply xid is -1); `None` when no request
    /// with that xid was seen.
    Reply(Option<OpCode>),
}

fn decode(kind: Kind, body: Bytes) -> Result<Decoded, DecodeError> {
    match kind {
        Kind::Connect => ConnectRequest::from_bytes(body).map(Decoded::Connect),
        Kind::Connected => ConnectResponse::from_bytes(body).map(Decoded::Connected),
        Kind::Request => Request::decode_frame(body).map(|(h, r)| Decoded::Request(h.xid, r)),
        Kind::Reply(op) => {
            let mut r = Reader::new(body);
            let h = ReplyHeader::read(&mut r)?;
            if h.xid == xid::NOTIFICATION {
                let e = WatcherEvent::read(&mut r)?;
                r.finish("notification")?;
                return Ok(Decoded::Notification(h, e));
            }
            // The reserved xids answer requests with fixed opcodes.
            let op = op.or(match h.xid {
                xid::PING => Some(OpCode::Ping),
                xid::AUTH => Some(OpCode::Auth),
                xid::SET_WATCHES => Some(OpCode::SetWatches),
                _ => None,
            });
            let op = op.ok_or(DecodeError::Invalid {
                what: "reply",
                reason: "no request with this xid was seen",
            })?;
            Ok(Decoded::Reply(h, Response::read_body(op, &mut r)?))
        }
    }
}

/// Per-connection decoding state.
#[derive(Default)]
struct Conn {
    c2s: usize,
    s2c: usize,
    /// Opcodes of requests not yet answered, by xid (in order: pings share -2).
    pending: HashMap<i32, VecDeque<OpCode>>,
}

/// One frame checked: where it was, what it decoded to.
struct Checked {
    frame: Frame,
    /// Index of the frame within its connection and direction.
    index: usize,
    kind: Kind,
    decoded: Decoded,
}

/// Decodes and re-encodes every frame of one fixture file, failing with the
/// file, connection, frame index and a byte diff.
fn check_file(path: &Path) -> Vec<Checked> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut conns: HashMap<i64, Conn> = HashMap::new();
    let mut out = Vec::new();
    for frame in load(path) {
        let conn = conns.entry(frame.conn).or_default();
        let index = match frame.dir {
            Dir::C2s => &mut conn.c2s,
            Dir::S2c => &mut conn.s2c,
        };
        let i = *index;
        *index += 1;
        let loc = format!(
            "{name}:{} conn {} {:?} frame {i}",
            frame.line, frame.conn, frame.dir
        );
        let declared = frame
            .raw
            .get(..4)
            .map(|p| u32::from_be_bytes(p.try_into().unwrap()));
        assert_eq!(
            declared,
            Some(u32::try_from(frame.raw.len() - 4).unwrap()),
            "{loc}: length prefix does not match the frame"
        );
        let kind = match (frame.dir, i) {
            (Dir::C2s, 0) => Kind::Connect,
            (Dir::S2c, 0) => Kind::Connected,
            (Dir::C2s, _) => Kind::Request,
            (Dir::S2c, _) => {
                let xid = frame
                    .body()
                    .get(..4)
                    .map_or(0, |b| i32::from_be_bytes(b.try_into().unwrap()));
                Kind::Reply(conn.pending.get_mut(&xid).and_then(VecDeque::pop_front))
            }
        };
        let decoded = decode(kind, frame.body()).unwrap_or_else(|e| {
            panic!(
                "{loc}: does not decode as {kind:?}: {e}\n  frame: {}",
                hex(&frame.raw)
            )
        });
        match &decoded {
            Decoded::Request(xid, req) => {
                conn.pending
                    .entry(*xid)
                    .or_default()
                    .push_back(req.op_code());
            }
            Decoded::Reply(h, resp)
                if matches!(h.xid, xid::PING | xid::AUTH | xid::SET_WATCHES) =>
            {
                // Replies to the reserved xids are a bare header.
                assert_eq!(*resp, Response::Empty, "{loc}: reply to xid {}", h.xid);
            }
            Decoded::Reply(h, resp) if h.err != 0 => {
                // An error reply has no body (multi reports errors per op with err 0).
                let multi = matches!(kind, Kind::Reply(Some(OpCode::Multi | OpCode::MultiRead)));
                assert!(
                    multi || *resp == Response::Empty,
                    "{loc}: error reply {} with a body: {resp:?}",
                    h.err
                );
            }
            _ => {}
        }
        let again = decoded.encode();
        assert!(
            again[..] == frame.raw[..],
            "{loc}: re-encoding {decoded:?} differs: {}",
            diff(&frame.raw, &again)
        );
        out.push(Checked {
            frame,
            index: i,
            kind,
            decoded,
        });
    }
    out
}

#[test]
fn golden_frames_decode_and_reencode_exactly() {
    let files = fixture_files();
    if files.is_empty() {
        eprintln!("no golden fixtures in {}", golden_dir().display());
        return;
    }
    let mut total = 0;
    for path in &files {
        let checked = check_file(path);
        let c2s = checked.iter().filter(|c| c.frame.dir == Dir::C2s).count();
        eprintln!(
            "{}: {} frames ({c2s} c2s, {} s2c) re-encode exactly",
            path.display(),
            checked.len(),
            checked.len() - c2s
        );
        total += checked.len();
    }
    assert!(total > 0, "fixture files hold no frames");
}

/// Every opcode seen in the fixtures, so a reader can see what they cover.
#[test]
fn golden_fixtures_cover_the_common_ops() {
    let files = fixture_files();
    if files.is_empty() {
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut notifications = 0;
    for path in &files {
        for c in check_file(path) {
            match c.decoded {
                Decoded::Request(_, r) => {
                    seen.insert(r.op_code());
                }
                Decoded::Notification(..) => notifications += 1,
                _ => {}
            }
        }
    }
    eprintln!("opcodes in fixtures: {seen:?}; {notifications} notifications");
    for op in [
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetChildren2,
        OpCode::Ping,
        OpCode::CloseSession,
    ] {
        assert!(seen.contains(&op), "no {op} request in the fixtures");
    }
}

/// The concatenated stream of each connection and direction, fed to
/// [`FrameDecoder`] in awkward chunk sizes, yields exactly the captured frames.
#[test]
fn golden_streams_split_into_the_captured_frames() {
    for path in fixture_files() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let frames = load(&path);
        let mut streams: HashMap<(i64, Dir), Vec<&Frame>> = HashMap::new();
        for f in &frames {
            streams.entry((f.conn, f.dir)).or_default().push(f);
        }
        for ((conn, dir), frames) in streams {
            let stream: Vec<u8> = frames.iter().flat_map(|f| f.raw.iter().copied()).collect();
            for chunk in [1, 3, 7, 64, stream.len().max(1)] {
                let decoder = FrameDecoder::default();
                let mut buf = BytesMut::new();
                let mut got = Vec::new();
                for piece in stream.chunks(chunk) {
                    buf.extend_from_slice(piece);
                    while let Some(f) = decoder.decode(&mut buf).unwrap_or_else(|e| {
                        panic!(
                            "{name} conn {conn} {dir:?} (chunks of {chunk}): frame {}: {e}",
                            got.len()
                        )
                    }) {
                        got.push(f);
                    }
                }
                assert!(
                    buf.is_empty(),
                    "{name} conn {conn} {dir:?}: {} bytes left over",
                    buf.len()
                );
                assert_eq!(
                    got.len(),
                    frames.len(),
                    "{name} conn {conn} {dir:?}: frame count"
                );
                for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
                    assert!(
                        g[..] == f.body()[..],
                        "{name} conn {conn} {dir:?} frame {i} (chunks of {chunk}): {}",
                        diff(&f.body(), g)
                    );
                }
            }
        }
    }
}

/// Every strict prefix of every golden frame is an error, never a panic. The
/// only prefixes that may decode are the ones the format makes legal: a
/// handshake without its optional trailing `readOnly` byte, and a reply cut
/// right after its header (an empty body); but for `ConnectResponse`, whose
/// missing `readOnly` reads as false, they must not decode to the same value.
/// Through the [`FrameDecoder`], every prefix of a frame is "need more bytes".
#[test]
fn golden_frame_prefixes_fail_cleanly() {
    let decoder = FrameDecoder::default();
    for path in fixture_files() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for c in check_file(&path) {
            let loc = format!(
                "{name}:{} conn {} {:?} frame {}",
                c.frame.line, c.frame.conn, c.frame.dir, c.index
            );
            for cut in 0..c.frame.raw.len() {
                let mut buf = BytesMut::from(&c.frame.raw[..cut]);
                assert_eq!(
                    decoder.decode(&mut buf),
                    Ok(None),
                    "{loc}: {cut}-byte prefix"
                );
            }
            let body = c.frame.body();
            for cut in 0..body.len() {
                let Ok(short) = decode(c.kind, body.slice(..cut)) else {
                    continue;
                };
                let legal = match (&short, cut) {
                    // ConnectResponse.read_only is a plain bool that defaults to
                    // false when a (very old) server omits it, so this prefix may
                    // decode to the same value; every other legal prefix may not.
                    (Decoded::Connected(_), _) => cut + 1 == body.len(),
                    (Decoded::Connect(_), _) => cut + 1 == body.len() && short != c.decoded,
                    (Decoded::Reply(_, Response::Empty), 16) => short != c.decoded,
                    _ => false,
                };
                assert!(
                    legal,
                    "{loc}: the {cut}-byte prefix of the body decodes: {short:?}"
                );
            }
        }
    }
}

/// A reply header with a non-zero `err` and nothing after it decodes as
/// [`Response::Empty`] whatever the request was, and re-encodes to the header alone.
#[test]
fn error_reply_with_empty_body_is_empty() {
    for &op in OpCode::ALL {
        let h = ReplyHeader {
            xid: 7,
            zxid: 0x1_0000_0005,
            err: zk_jute::ErrorCode::NoNode.code(),
        };
        let mut frame = BytesMut::new();
        Response::Empty.encode_frame(&h, &mut frame);
        assert_eq!(frame.len(), 16);
        let mut r = Reader::new(frame.clone().freeze());
        assert_eq!(ReplyHeader::read(&mut r).unwrap(), h);
        assert_eq!(Response::read_body(op, &mut r), Ok(Response::Empty), "{op}");
        assert_eq!(r.remaining(), 0);
    }
}
