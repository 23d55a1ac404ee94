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
    let mut t = Totals::default();
    let mut prev_first: Option<u64> = None;
    let mut seen_error = false;
    let emit = |t: &mut Totals,
                seen_error: &mut bool,
                sink: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
                f: Finding|
     -> io::Result<()> {
        match f.severity {
            Severity::Warning => t.warnings += 1,
            Severity::Error => {
                t.errors += 1;
                *seen_error = true;
            }
        }
        sink(Event::Finding(&f))
    };
    for (i, (name_key, path)) in segments.iter().enumerate() {
        let newest = i + 1 == segments.len();
        t.segments += 1;
        let s = match zk_txnlog::inspect_segment(path) {
            Ok(s) => s,
            Err(e) => {
                sink(Event::Segment(path, None))?;
                let f = if chain && newest && files::zero_header(path) {
                    Finding::new(
                        Severity::Warning,
                        path,
                        Some(0),
                        "newest segment was never initialised (zero or short header: a crash while rolling); a server removes it",
                    )
                } else {
                    Finding::new(Severity::Error, path, Some(0), unreadable(&e))
                };
                emit(&mut t, &mut seen_error, sink, f)?;
                prev_first = None;
                continue;
            }
        };
        sink(Event::Segment(path, Some(&s)))?;
        if let Some(k) = name_key
            && *k != s.first_key
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
            emit(&mut t, &mut seen_error, sink, f)?;
        }
        if chain {
            if i == 0 {
                t.first_prev = s.prev_key;
            } else if let Some(pf) = prev_first
                && s.prev_key != Some(pf)
            {
                let msg = match s.prev_key {
                    Some(k) => format!(
                        "missing segment: its header names log.{k:x} as the segment before it, but the one before is log.{pf:x}"
                    ),
                    None => "its header says it is the first segment ever written, but older segments exist".to_string(),
                };
                emit(
                    &mut t,
                    &mut seen_error,
                    sink,
                    Finding::new(Severity::Error, path, Some(0), msg),
                )?;
            }
        }
        prev_first = Some(s.first_key);

        // The records.
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
                    if let Some(last) = t.last_key {
                        if key <= last {
                            let f = Finding::new(
                                Severity::Error,
                                path,
                                Some(offset),
                                format!("zxid {key:#x} is not after the previous {last:#x}"),
                            );
                            emit(&mut t, &mut seen_error, sink, f)?;
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
                            emit(&mut t, &mut seen_error, sink, f)?;
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
                            emit(&mut t, &mut seen_error, sink, f)?;
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
                        emit(&mut t, &mut seen_error, sink, f)?;
                    }
                    t.records += 1;
                    t.first_key.get_or_insert(key);
                    t.last_key = Some(key);
                    if !seen_error {
                        t.intact_until = Some(key);
                    }
                    sink(Event::Record(Rec {
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

        // How the segment ends.
        let last_good = match t.last_key {
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
            emit(&mut t, &mut seen_error, sink, f)?;
        } else if let Some(e) = read_error {
            // The scan was clean but reading failed (the file changed under us?).
            let f = Finding::new(Severity::Error, path, None, e.to_string());
            emit(&mut t, &mut seen_error, sink, f)?;
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
            emit(&mut t, &mut seen_error, sink, f)?;
        }
        if chain && s.clean {
            let next = segments.get(i + 1).map(|(k, _)| *k);
            let f = match (s.sealed, next) {
                (Some(k), Some(Some(n))) if k == n => None,
                (Some(k), _) => Some(format!("sealed: continued in log.{k:x}, which is missing")),
                (None, Some(_)) => Some("not sealed, but a newer segment follows it".to_string()),
                (None, None) => None,
            };
            if let Some(msg) = f {
                emit(
                    &mut t,
                    &mut seen_error,
                    sink,
                    Finding::new(Severity::Error, path, Some(s.end), msg),
                )?;
            }
        }
        if chain && newest && s.records == 0 && (s.clean || s.torn) {
            let f = Finding::new(
                Severity::Warning,
                path,
                None,
                "the newest segment holds no txn (a crash while rolling); a server removes it",
            );
            emit(&mut t, &mut seen_error, sink, f)?;
        }
    }
    Ok(t)
}

fn unreadable(e: &zk_txnlog::Error) -> String {
    match e {
        zk_txnlog::Error::Corrupt { reason, .. } => {
            format!("not a readable segment: {reason}")
        }
        other => other.to_string(),
    }
}
