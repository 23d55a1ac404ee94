//! Reading one snapshot file (design/apache-disk-format.md §1, §4, §9.2-3).
//!
//! The file is the checked stream below, compressed by its suffix (`.gz`:
//! gzip; `.snappy`: xerial snappy-java's stream, a 16-byte header then
//! `[compressed len i32][raw snappy block]*`). Every seal is the Adler-32 of
//! the uncompressed stream from offset 0 up to the seal, as a long.
//!
//! ```text
//! "ZKSN" | version i32 (2) | dbid i64 (-1)
//! body (zk-tree's Tree::read_apache_file_body): sessions, ACL map, nodes, "/"
//! seal 1: adler i64 | ustring "/"
//! trailing sections, told by the bytes left after seal 1 (§9.3):
//!   0 none | 21 lastZxid | 33 digest v2 | 54 digest v2 + lastZxid | else a digest < v2 (string)
//!   digest = zxid i64 | version i32 | tree digest i64 (v2) or ustring (< v2), then a seal
//!   lastZxid = zxid i64, then a seal (3.9)
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use zk_tree::{APACHE_MAX_LEN, ApacheSnapError, Tree, TreeConfig};

use crate::Error;
use crate::adler::Adler32;
use crate::files::{Compression, SnapFile};

/// `FileSnap.SNAP_MAGIC`: "ZKSN".
pub const SNAP_MAGIC: [u8; 4] = *b"ZKSN";
/// xerial snappy-java's stream magic.
pub const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// A seal: the checksum, then the ustring "/".
const SEAL_LEN: usize = 13;
/// The `"/"` after each checksum.
const SLASH: [u8; 5] = [0, 0, 0, 1, b'/'];
/// Bytes accepted after seal 1 (sections are tens of bytes).
const MAX_TRAILER: u64 = 64 * 1024;
/// Largest snappy block accepted, compressed or not.
const MAX_SNAPPY_BLOCK: usize = 64 << 20;

/// The digest section (`DataTree.ZxidDigest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapDigest {
    /// The zxid the digest is of (0: empty, nothing applied since load).
    pub zxid: i64,
    /// The digest version (2 in 3.6+).
    pub version: i32,
    /// The tree digest (version 2); `None` for an older string digest.
    pub digest: Option<i64>,
}

/// A snapshot read and checked.
#[derive(Debug)]
pub struct Snapshot {
    /// The file (as given to the reader).
    pub path: PathBuf,
    /// The tree, last processed zxid = the zxid in the name.
    pub tree: Tree,
    /// The zxid in the name.
    pub zxid: i64,
    /// The sessions it lists (id, timeout ms).
    pub sessions: Vec<(i64, i32)>,
    /// The digest section, when present.
    pub digest: Option<SnapDigest>,
    /// The 3.9 lastZxid section, when present.
    pub last_zxid: Option<i64>,
    /// Bytes of the uncompressed stream.
    pub stream_len: u64,
}

/// A `BufRead` that sums what is consumed (the seals cover the bytes before them).
struct Checked<R> {
    inner: BufReader<R>,
    adler: Adler32,
    off: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Checked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        let b = self.inner.buffer();
        let n = n.min(b.len());
        self.adler.update(&b[..n]);
        self.off += n as u64;
        self.inner.consume(n);
    }
}

/// xerial snappy-java's stream (`SnappyInputStream`), decoded block by block.
struct XerialSnappy<R> {
    inner: R,
    block: Vec<u8>,
    pos: usize,
    started: bool,
    dec: snap::raw::Decoder,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> XerialSnappy<R> {
    fn new(inner: R) -> Self {
        XerialSnappy {
            inner,
            block: Vec::new(),
            pos: 0,
            started: false,
            dec: snap::raw::Decoder::new(),
        }
    }

    /// Reads the next block; false at a clean end.
    fn next_block(&mut self) -> io::Result<bool> {
        if !self.started {
            let mut h = [0u8; 16];
            self.inner.read_exact(&mut h)?;
            if h[..8] != SNAPPY_MAGIC {
                return Err(invalid(format!("bad snappy stream magic {:02x?}", &h[..8])));
            }
            self.started = true;
        }
        let mut len = [0u8; 4];
        let got = crate::log::read_full(&mut self.inner, &mut len)?;
        if got == 0 {
            return Ok(false);
        }
        if got < 4 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snappy block length cut",
            ));
        }
        let len = i32::from_be_bytes(len);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= MAX_SNAPPY_BLOCK)
            .ok_or_else(|| invalid(format!("snappy block length {len}")))?;
        let mut comp = vec![0u8; len];
        self.inner.read_exact(&mut comp)?;
        let n = snap::raw::decompress_len(&comp).map_err(|e| invalid(e.to_string()))?;
        if n > MAX_SNAPPY_BLOCK {
            return Err(invalid(format!("snappy block of {n} bytes")));
        }
        self.block.resize(n, 0);
        let n = self
            .dec
            .decompress(&comp, &mut self.block)
            .map_err(|e| invalid(e.to_string()))?;
        self.block.truncate(n);
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for XerialSnappy<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = (self.block.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads and checks the snapshot file `file`.
pub fn read_snapshot(file: &SnapFile, config: TreeConfig) -> Result<Snapshot, Error> {
    let f = File::open(&file.path).map_err(Error::io(&file.path))?;
    read_snapshot_from(f, file.compression, file.zxid, config, &file.path)
}

/// Reads and checks a snapshot stream (`path` names it in errors): header,
/// body, seal 1, the trailing sections and their seals. Never panics on bad
/// bytes.
pub fn read_snapshot_from<R: Read>(
    input: R,
    compression: Compression,
    zxid: i64,
    config: TreeConfig,
    path: &Path,
) -> Result<Snapshot, Error> {
    let raw: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
        Compression::Snappy => Box::new(XerialSnappy::new(input)),
    };
    let mut r = Checked {
        inner: BufReader::with_capacity(1 << 16, raw),
        adler: Adler32::default(),
        off: 0,
    };
    let io_at =
        |off: u64| move |e: io::Error| Error::corrupt(path, off, format!("read failed: {e}"));
    let mut head = [0u8; 16];
    r.read_exact(&mut head).map_err(io_at(0))?;
    if head[..4] != SNAP_MAGIC {
        return Err(Error::corrupt(
            path,
            0,
            format!("bad magic {:02x?}, not a snapshot (\"ZKSN\")", &head[..4]),
        ));
    }
    let version = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if version != 2 {
        return Err(Error::corrupt(
            path,
            4,
            format!("snapshot format version {version}, not 2"),
        ));
    }
    let body = Tree::read_apache_file_body(&mut r, config, APACHE_MAX_LEN, zxid)
        .map_err(|e| body_error(path, e))?;
    let seal1_at = r.off;
    let mut adler = r.adler;
    let mut seal = [0u8; SEAL_LEN];
    r.read_exact(&mut seal).map_err(io_at(seal1_at))?;
    check_seal(&mut adler, &seal, path, seal1_at, 1)?;
    let mut rest = Vec::new();
    (&mut r)
        .take(MAX_TRAILER + 1)
        .read_to_end(&mut rest)
        .map_err(io_at(r.off))?;
    if rest.len() as u64 > MAX_TRAILER {
        return Err(Error::corrupt(
            path,
            seal1_at + SEAL_LEN as u64,
            "more than 64 KiB after seal 1",
        ));
    }
    let (digest, last_zxid) = sections(&rest, &mut adler, path, seal1_at + SEAL_LEN as u64)?;
    Ok(Snapshot {
        path: path.to_path_buf(),
        tree: body.tree,
        zxid,
        sessions: body.sessions,
        digest,
        last_zxid,
        stream_len: r.off,
    })
}

fn body_error(path: &Path, e: ApacheSnapError) -> Error {
    let h = 16;
    match e {
        ApacheSnapError::Invalid { offset, reason } => Error::corrupt(path, h + offset, reason),
        ApacheSnapError::Truncated { offset, what } => {
            Error::corrupt(path, h + offset, format!("stream ends inside {what}"))
        }
        ApacheSnapError::Io { offset, source } => {
            Error::corrupt(path, h + offset, format!("read failed: {source}"))
        }
        other => Error::corrupt(path, h, other.to_string()),
    }
}

/// Checks a 13-byte seal against the sum of everything before it, then adds it.
fn check_seal(adler: &mut Adler32, seal: &[u8], path: &Path, at: u64, n: u8) -> Result<(), Error> {
    let mut v = [0u8; 8];
    v.copy_from_slice(&seal[..8]);
    let got = i64::from_be_bytes(v);
    let want = i64::from(adler.value());
    if got != want {
        return Err(Error::corrupt(
            path,
            at,
            format!("seal {n} is {got:#x}, the stream sums to {want:#x}"),
        ));
    }
    if seal[8..] != SLASH {
        return Err(Error::corrupt(
            path,
            at + 8,
            format!("seal {n} not followed by \"/\""),
        ));
    }
    adler.update(seal);
    Ok(())
}

type Sections = (Option<SnapDigest>, Option<i64>);

/// The trailing sections by the table of §9.3; `at` is the offset of `rest`.
fn sections(rest: &[u8], adler: &mut Adler32, path: &Path, at: u64) -> Result<Sections, Error> {
    let long = |b: &[u8]| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[..8]);
        i64::from_be_bytes(v)
    };
    let int = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let last_zxid = |b: &[u8], adler: &mut Adler32, at: u64| -> Result<i64, Error> {
        adler.update(&b[..8]);
        check_seal(adler, &b[8..21], path, at + 8, 3)?;
        Ok(long(b))
    };
    match rest.len() {
        0 => return Ok((None, None)),
        21 => return Ok((None, Some(last_zxid(rest, adler, at)?))),
        // A string digest (version < 2) can be 33 or 54 bytes long too.
        33 | 54 if int(&rest[8..]) >= 2 => {
            let d = SnapDigest {
                zxid: long(rest),
                version: int(&rest[8..]),
                digest: Some(long(&rest[12..])),
            };
            adler.update(&rest[..20]);
            check_seal(adler, &rest[20..33], path, at + 20, 2)?;
            let lz = if rest.len() == 54 {
                Some(last_zxid(&rest[33..], adler, at + 33)?)
            } else {
                None
            };
            return Ok((Some(d), lz));
        }
        _ => {}
    }
    // A digest before version 2: zxid, version, ustring, seal [, lastZxid].
    let bad = |off: usize, why: &str| Error::corrupt(path, at + off as u64, why.to_string());
    if rest.len() < 16 {
        return Err(bad(0, "trailing bytes after seal 1 make no section"));
    }
    let version = int(&rest[8..]);
    let slen = usize::try_from(int(&rest[12..])).map_err(|_| bad(12, "digest string length"))?;
    let end = 16 + slen;
    if version >= 2 || rest.len() < end + SEAL_LEN {
        return Err(bad(0, "trailing bytes after seal 1 make no section"));
    }
    adler.update(&rest[..end]);
    check_seal(adler, &rest[end..end + SEAL_LEN], path, at + end as u64, 2)?;
    let d = SnapDigest {
        zxid: long(rest),
        version,
        digest: None,
    };
    match rest.len() - end - SEAL_LEN {
        0 => Ok((Some(d), None)),
        21 => {
            let lz_at = at + (end + SEAL_LEN) as u64;
            Ok((
                Some(d),
                Some(last_zxid(&rest[end + SEAL_LEN..], adler, lz_at)?),
            ))
        }
        _ => Err(bad(
            end + SEAL_LEN,
            "trailing bytes after the digest section",
        )),
    }
}
