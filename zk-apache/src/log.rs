//! Reading one txn log file (design/apache-disk-format.md §2, §9.5).
//!
//! ```text
//! 0   "ZKLG" | version i32 (2, not checked) | dbid i64 (not checked)
//! 16  entry*: checksum i64 (Adler-32 of the payload) | len i32 | payload | 0x42
//!     then zeros (preallocation) up to the end of the file
//! ```
//!
//! How a file ends, as Apache's `FileTxnIterator` reads it:
//!
//! | situation | [`LogReader`] |
//! |---|---|
//! | EOF inside checksum, length, payload or EOR | [`LogEnd::Torn`] |
//! | `len` 0 or -1 | [`LogEnd::Zero`] (the preallocated tail; -1 also ends it) |
//! | EOR byte not `'B'` | [`LogEnd::Torn`] ("Last transaction was partial.") |
//! | `len < -1` or above the limit | error |
//! | checksum mismatch | error, or [`LogEnd::BadChecksum`] when nothing follows the entry (EOF, or a zero / -1 length next): the caller may treat the last entry of the last file as torn (§9.5) |
//! | file shorter than 16 bytes | [`LogEnd::Short`] (tolerated for the last file only, by the caller) |
//! | bad magic | error |
//! | clean end of file | [`LogEnd::Eof`] |

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{Error, adler32};

/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG".
pub const LOG_MAGIC: [u8; 4] = *b"ZKLG";
/// Bytes of the file header.
pub const LOG_HEADER_LEN: u64 = 16;
/// The end-of-record byte after each payload.
const EOR: u8 = 0x42;
/// Apache's default limit on an entry: jute.maxbuffer plus its extrasize.
pub const DEFAULT_MAX_ENTRY: usize = 2 * 0xfffff;

/// Why reading a file stopped without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// The file ended right after an entry.
    Eof,
    /// A zero (or -1) length at this offset: the preallocated tail.
    Zero {
        /// Offset of the length's entry.
        offset: u64,
    },
    /// An entry cut short or without its end byte at this offset.
    Torn {
        /// Offset of the entry.
        offset: u64,
        /// What was cut.
        reason: &'static str,
    },
    /// The last entry's checksum does not match and nothing follows it.
    BadChecksum {
        /// Offset of the entry.
        offset: u64,
    },
    /// The file is shorter than its 16-byte header.
    Short {
        /// Its length.
        len: u64,
    },
}

/// One entry of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the entry (its checksum) in the file.
    pub offset: u64,
    /// The payload: header, record, optional digest ([`crate::decode_txn`]).
    pub payload: Bytes,
}

/// The entries of one log file, in order, then [`LogReader::end`].
#[derive(Debug)]
pub struct LogReader<R = BufReader<File>> {
    path: PathBuf,
    r: R,
    off: u64,
    max_len: usize,
    end: Option<LogEnd>,
    /// An error was returned: nothing more is read.
    failed: bool,
    /// `(version, dbid)` from the header.
    header: Option<(i32, i64)>,
}

impl LogReader {
    /// Opens `path` (entries up to [`DEFAULT_MAX_ENTRY`] bytes; see
    /// [`LogReader::with_max_len`]).
    pub fn open(path: &Path) -> Result<LogReader, Error> {
        let f = File::open(path).map_err(Error::io(path))?;
        LogReader::new(path, BufReader::with_capacity(1 << 16, f))
    }
}

/// Reads up to `buf.len()` bytes; fewer only at EOF.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: BufRead> LogReader<R> {
    /// Reads the header of the file `path` from `r`.
    pub fn new(path: &Path, mut r: R) -> Result<LogReader<R>, Error> {
        let mut h = [0u8; LOG_HEADER_LEN as usize];
        let n = read_full(&mut r, &mut h).map_err(Error::io(path))?;
        let mut me = LogReader {
            path: path.to_path_buf(),
            r,
            off: n as u64,
            max_len: DEFAULT_MAX_ENTRY,
            end: None,
            failed: false,
            header: None,
        };
        if n < h.len() {
            me.end = Some(LogEnd::Short { len: n as u64 });
            return Ok(me);
        }
        if h[..4] != LOG_MAGIC {
            return Err(Error::corrupt(
                path,
                0,
                format!("bad magic {:02x?}, not a txn log (\"ZKLG\")", &h[..4]),
            ));
        }
        let version = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let mut dbid = [0u8; 8];
        dbid.copy_from_slice(&h[8..]);
        me.header = Some((version, i64::from_be_bytes(dbid)));
        Ok(me)
    }

    /// Sets the largest payload accepted (Apache's jute.maxbuffer + extrasize).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The file's `(version, dbid)`; `None` for a file shorter than its header.
    pub fn header(&self) -> Option<(i32, i64)> {
        self.header
    }

    /// Why the entries ended, once [`LogReader::next_entry`] returned `None`.
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take(&mut self, n: usize) -> Result<Option<Vec<u8>>, Error> {
        let mut v = vec![0u8; n];
        let got = read_full(&mut self.r, &mut v).map_err(Error::io(&self.path))?;
        self.off += got as u64;
        Ok((got == n).then_some(v))
    }

    fn torn(&mut self, offset: u64, reason: &'static str) -> Result<Option<Entry>, Error> {
        self.end = Some(LogEnd::Torn { offset, reason });
        Ok(None)
    }

    /// The next entry; `None` at the end (see [`LogReader::end`]). Errors
    /// name the file and the entry's offset.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        if self.end.is_some() || self.failed {
            return Ok(None);
        }
        let r = self.read_entry();
        self.failed = r.is_err();
        r
    }

    fn read_entry(&mut self) -> Result<Option<Entry>, Error> {
        let at = self.off;
        let Some(head) = self.take(12)? else {
            if self.off == at {
                self.end = Some(LogEnd::Eof);
                return Ok(None);
            }
            return self.torn(at, "checksum or length cut");
        };
        let crc = i64::from_be_bytes(head[..8].try_into().unwrap_or([0; 8]));
        let len = i32::from_be_bytes(head[8..].try_into().unwrap_or([0; 4]));
        if len == 0 || len == -1 {
            self.end = Some(LogEnd::Zero { offset: at });
            return Ok(None);
        }
        let len = match usize::try_from(len) {
            Ok(l) if l <= self.max_len => l,
            _ => {
                return Err(Error::corrupt(
                    &self.path,
                    at + 8,
                    format!("unreasonable entry length {len} (limit {})", self.max_len),
                ));
            }
        };
        let Some(payload) = self.take(len)? else {
            return self.torn(at, "payload cut");
        };
        let Some(eor) = self.take(1)? else {
            return self.torn(at, "end-of-record byte missing");
        };
        if eor[0] != EOR {
            return self.torn(at, "end-of-record byte is not 'B'");
        }
        let want = u64::from(adler32(&payload));
        if crc as u64 != want {
            if self.nothing_follows()? {
                self.end = Some(LogEnd::BadChecksum { offset: at });
                return Ok(None);
            }
            return Err(Error::corrupt(
                &self.path,
                at,
                format!("CRC check failed: entry says {crc:#x}, payload sums to {want:#x}"),
            ));
        }
        Ok(Some(Entry {
            offset: at,
            payload: Bytes::from(payload),
        }))
    }

    /// Whether no entry follows: EOF or a zero / -1 length next.
    fn nothing_follows(&mut self) -> Result<bool, Error> {
        let Some(head) = self.take(12)? else {
            return Ok(true);
        };
        let len = i32::from_be_bytes(head[8..].try_into().unwrap_or([0; 4]));
        Ok(len == 0 || len == -1)
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}
