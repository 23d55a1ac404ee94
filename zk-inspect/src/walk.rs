//! Walking the log segments of a directory (or one segment file) read-only, through zk-txnlog's
//! inspection API: every record decoded, and every departure from the recovery rules of
//! zk-txnlog's DESIGN.md §10 reported as a finding that names the file and offset.

use std::io;
use std::path::{Path, PathBuf};

use zk_jute::{TxnBody, TxnHeader, Zxid};
use zk_txnlog::SegmentSummary;

use crate::files::{self, Progress};
use crate::txn;

/// Records start after the 64-byte segment header (zk-txnlog DESIGN.md §2); the size of each
/// frame comes from `zk_txnlog::record_frame_len`.
const SEGMENT_HEADER: u64 = 64;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A server starts anyway and repairs or ignores it (a torn tail, an unfinished roll or
    /// snapshot, an invalid snapshot with an older valid one).
    Warning,
    /// Damage: a server refuses to start, or txns are missing.
    Error,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    /// Byte offset in the file, where it applies.
    pub offset: Option<u64>,
    pub message: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        file: &Path,
        offset: Option<u64>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            file: file.to_path_buf(),
            offset,
            message: message.into(),
        }
    }

    /// `ERROR - <file> offset <n>: <message>`.
    pub fn line(&self) -> String {
        match self.offset {
            Some(o) => format!(
                "{} - {} offset {o}: {}",
                self.severity.label(),
                self.file.display(),
                self.message
            ),
            None => format!(
                "{} - {}: {}",
                self.severity.label(),
                self.file.display(),
                self.message
            ),
        }
    }
}

/// One record of the log.
#[derive(Debug)]
pub struct Rec<'a> {
    pub key: u64,
    pub file: &'a Path,
    /// Offset of its frame.
    pub offset: u64,
    /// The decoded txn (`None` if it does not decode: a finding says why).
    pub txn: Option<&'a (TxnHeader, TxnBody)>,
}

/// What the walk reports, in order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A segment is about to be read (`None` if its header is unreadable).
    Segment(&'a Path, Option<&'a SegmentSummary>),
    Record(Rec<'a>),
    Finding(&'a Finding),
}

/// The totals of a walk.
#[derive(Debug, Default)]
pub struct Totals {
    pub segments: usize,
    pub records: u64,
    pub first_key: Option<u64>,
    /// The `prev key` of the first readable segment: older segments existed (and were purged).
    pub first_prev: Option<u64>,
    /// The last record read intact.
    pub last_key: Option<u64>,
    /// The last record before the first error (what a server could use, had it started).
    pub intact_until: Option<u64>,
    pub warnings: usize,
    pub errors: usize,
}

/// Walks `segments` (oldest first). With `chain`, they are a whole directory: the header chain,
/// seals, continuity across segments and the tail rules of the newest segment are checked.
pub fn walk(
    segments: &[(Option<u64>, PathBuf)],
    chain: bool,
    sink: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> io::Result<Totals> {
    let mut w = Walk {
        t: Totals::default(),
        seen_error: false,
        sink,
    };
    let mut prev_first: Option<u64> = None;
    for (i, (name_key, path)) in segments.iter().enumerate() {
        let newest = i + 1 == segments.len();
        w.t.segments += 1;
        let Some(s) = w.open_segment(path, chain && newest)? else {
            prev_first = None;
            continue;
        };
        w.check_header(path, &s, *name_key, chain.then_some((i, prev_first)))?;
        prev_first = Some(s.first_key);
        let read = w.records(path, &s, chain)?;
        let next = segments.get(i + 1).map(|(k, _)| *k);
        w.check_end(path, &s, read, chain, newest, next)?;
    }
    Ok(w.t)
}

/// How reading a segment's records went: (records read, the offset after
/// the last, the error that stopped the read).
type SegmentRead = (u64, u64, Option<zk_txnlog::Error>);

/// A walk in progress: the totals, whether an error was met (the records
/// after it are not intact), and where events go.
struct Walk<'s> {
    t: Totals,
    seen_error: bool,
    sink: &'s mut dyn FnMut(Event<'_>) -> io::Result<()>,
}

impl Walk<'_> {
    /// Counts a finding and reports it.
    fn emit(&mut self, f: Finding) -> io::Result<()> {
        match f.severity {
            Severity::Warning => self.t.warnings += 1,
            Severity::Error => {
                self.t.errors += 1;
                self.seen_error = true;
            }
        }
        (self.sink)(Event::Finding(&f))
    }

    /// The segment's summary and its Segment event; `None` (after a
    /// finding) if its header is unreadable. `newest_in_chain`: a zero
    /// header there is a roll a crash interrupted, not damage.
    fn open_segment(
        &mut self,
        path: &Path,
        newest_in_chain: bool,
    ) -> io::Result<Option<SegmentSummary>> {
        match zk_txnlog::inspect_segment(path) {
            Ok(s) => {
                (self.sink)(Event::Segment(path, Some(&s)))?;
                Ok(Some(s))
            }
            Err(e) => {
                (self.sink)(Event::Segment(path, None))?;
                let f = if newest_in_chain && files::zero_header(path) {
                    Finding::new(
                        Severity::Warning,
                        path,
                        Some(0),
                        "newest segment was never initialised (zero or short header: a crash while rolling); a server removes it",
                    )
                } else {
                    Finding::new(Severity::Error, path, Some(0), unreadable(&e))
                };
                self.emit(f)?;
                Ok(None)
            }
        }
    }

    /// The header against the file name and, in a chain (`Some((index,
    /// first key of the segment before))`), against its predecessor.
    fn check_header(
        &mut self,
        path: &Path,
        s: &SegmentSummary,
        name_key: Option<u64>,
        chain: Option<(usize, Option<u64>)>,
    ) -> io::Result<()> {
        if let Some(k) = name_key
            && k != s.first_key
        {
            let f = Finding::new(
                Severity::Error,
                path,
                Some(0),
                format!(
                    "header first zxid {:#x} differs from the file name",
                    s.first_key
                ),
            );
            self.emit(f)?;
        }
        if let Some((i, prev_first)) = chain {
            if i == 0 {
                self.t.first_prev = s.prev_key;
            } else if let Some(pf) = prev_first
                && s.prev_key != Some(pf)
            {
                let msg = match s.prev_key {
                    Some(k) => format!(
                        "missing segment: its header names log.{k:x} as the segment before it, but the one before is log.{pf:x}"
                    ),
                    None => "its header says it is the first segment ever written, but older segments exist".to_string(),
                };
                self.emit(Finding::new(Severity::Error, path, Some(0), msg))?;
            }
        }
        Ok(())
    }

    /// Reads the records: order and epoch continuity, decoding, key vs
    /// header zxid; a Record event each.
    fn records(&mut self, path: &Path, s: &SegmentSummary, chain: bool) -> io::Result<SegmentRead> {
        let mut progress = Progress::new(format!("reading {}", path.display()), s.end);
        let mut offset = SEGMENT_HEADER;
        let mut read_error: Option<zk_txnlog::Error> = None;
        let mut count = 0u64;
        match zk_txnlog::read_segment(path) {
            Err(e) => read_error = Some(e),
            Ok(records) => {
                for item in records {
                    let (key, payload) = match item {
                        Ok(r) => r,
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    };
                    let frame = zk_txnlog::record_frame_len(payload.len());
                    count += 1;
                    if let Some(last) = self.t.last_key {
                        if key <= last {
                            let f = Finding::new(
                                Severity::Error,
                                path,
                                Some(offset),
                                format!("zxid {key:#x} is not after the previous {last:#x}"),
                            );
                            self.emit(f)?;
                        } else if chain
                            && Zxid::from(key).epoch() == Zxid::from(last).epoch()
                            && key != last + 1
                        {
                            let f = Finding::new(
                                Severity::Error,
                                path,
                                Some(offset),
                                format!(
                                    "zxid gap: {key:#x} follows {last:#x} in the same epoch ({} txns missing)",
                                    key - last - 1
                                ),
                            );
                            self.emit(f)?;
                        }
                    }
                    let decoded = match txn::decode(payload) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            let f = Finding::new(
                                Severity::Error,
                                path,
                                Some(offset),
                                format!("record of zxid {key:#x} does not decode as a txn: {e}"),
                            );
                            self.emit(f)?;
                            None
                        }
                    };
                    if let Some((h, _)) = &decoded
                        && Zxid::from(h.zxid).as_u64() != key
                    {
                        let f = Finding::new(
                            Severity::Error,
                            path,
                            Some(offset),
                            format!(
                                "record keyed {key:#x} holds a txn of zxid {:#x}",
                                Zxid::from(h.zxid).as_u64()
                            ),
                        );
                        self.emit(f)?;
                    }
                    self.t.records += 1;
                    self.t.first_key.get_or_insert(key);
                    self.t.last_key = Some(key);
                    if !self.seen_error {
                        self.t.intact_until = Some(key);
                    }
                    (self.sink)(Event::Record(Rec {
                        key,
                        file: path,
                        offset,
                        txn: decoded.as_ref(),
                    }))?;
                    offset += frame;
                    progress.update(offset);
                }
            }
        }
        progress.finish();
        Ok((count, offset, read_error))
    }

    /// How the segment ends: a torn or damaged tail, a read that disagrees
    /// with the scan, the seal against the next segment (`next`: its name
    /// key), an empty newest segment.
    fn check_end(
        &mut self,
        path: &Path,
        s: &SegmentSummary,
        (count, offset, read_error): SegmentRead,
        chain: bool,
        newest: bool,
        next: Option<Option<u64>>,
    ) -> io::Result<()> {
        // How the segment ends.
        let last_good = match self.t.last_key {
            Some(k) => format!("{k:#x}"),
            None => "none".to_string(),
        };
        if !s.clean {
            let problem = s.problem.clone().unwrap_or_default();
            let f = if s.torn && (newest || !chain) {
                let which = if chain {
                    "a server cuts the log here"
                } else {
                    "if this is the newest segment, a server cuts the log here"
                };
                Finding::new(
                    Severity::Warning,
                    path,
                    Some(s.end),
                    format!(
                        "torn tail (an unfinished last write: {problem}); the last intact txn is zxid {last_good}; {which}"
                    ),
                )
            } else if s.torn {
                Finding::new(
                    Severity::Error,
                    path,
                    Some(s.end),
                    format!(
                        "corrupt record: {problem} (last good zxid {last_good}); the records after it are lost, and a newer segment follows"
                    ),
                )
            } else {
                Finding::new(
                    Severity::Error,
                    path,
                    Some(s.end),
                    format!(
                        "corrupt record: {problem} (last good zxid {last_good}); non-zero bytes beyond the unsynced window of {} bytes mean damage, not a torn write",
                        s.window
                    ),
                )
            };
            self.emit(f)?;
        } else if let Some(e) = read_error {
            // The scan was clean but reading failed (the file changed under us?).
            let f = Finding::new(Severity::Error, path, None, e.to_string());
            self.emit(f)?;
        }
        if count != s.records || (s.clean && offset != s.end) {
            let f = Finding::new(
                Severity::Warning,
                path,
                None,
                format!(
                    "the scan found {} records ending at offset {}, the read {count} ending at {offset} (is a server writing it?)",
                    s.records, s.end
                ),
            );
            self.emit(f)?;
        }
        if chain && s.clean {
            let f = match (s.sealed, next) {
                (Some(k), Some(Some(n))) if k == n => None,
                (Some(k), _) => Some(format!("sealed: continued in log.{k:x}, which is missing")),
                (None, Some(_)) => Some("not sealed, but a newer segment follows it".to_string()),
                (None, None) => None,
            };
            if let Some(msg) = f {
                self.emit(Finding::new(Severity::Error, path, Some(s.end), msg))?;
            }
        }
        if chain && newest && s.records == 0 && (s.clean || s.torn) {
            let f = Finding::new(
                Severity::Warning,
                path,
                None,
                "the newest segment holds no txn (a crash while rolling); a server removes it",
            );
            self.emit(f)?;
        }
        Ok(())
    }
}

fn unreadable(e: &zk_txnlog::Error) -> String {
    match e {
        zk_txnlog::Error::Corrupt { reason, .. } => {
            format!("not a readable segment: {reason}")
        }
        other => other.to_string(),
    }
}
