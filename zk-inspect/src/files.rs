//! Finding and recognising the files of a data directory, read-only; the progress line.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zk-txnlog segment (`ZKTXNLG1`).
    Segment,
    /// A zk-txnlog snapshot (`ZKTXNSN1`).
    Snapshot,
    /// Apache ZooKeeper's own txn log (`ZKLG`).
    ZooKeeperLog,
    /// Apache ZooKeeper's own snapshot (`ZKSN`).
    ZooKeeperSnapshot,
    /// Anything else.
    Other,
}

/// Reads the magic of `path` (opened read-only). `Err` is a complete message.
pub fn sniff(path: &Path) -> Result<(Kind, u64), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    let mut f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut magic = Vec::with_capacity(8);
    (&mut f)
        .take(8)
        .read_to_end(&mut magic)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kind = match magic.as_slice() {
        b"ZKTXNLG1" => Kind::Segment,
        b"ZKTXNSN1" => Kind::Snapshot,
        [b'Z', b'K', b'L', b'G', ..] => Kind::ZooKeeperLog,
        [b'Z', b'K', b'S', b'N', ..] => Kind::ZooKeeperSnapshot,
        _ => Kind::Other,
    };
    Ok((kind, meta.len()))
}

/// The message for a file that is not of the `wanted` kind.
pub fn wrong_kind(path: &Path, kind: Kind, len: u64, wanted: Kind) -> String {
    let p = path.display();
    match kind {
        Kind::Segment => {
            format!("{p} is a txn log segment, not a snapshot: use `zk-inspect log {p}`")
        }
        Kind::Snapshot => {
            format!("{p} is a snapshot, not a txn log segment: use `zk-inspect snapshot {p}`")
        }
        Kind::ZooKeeperLog => format!(
            "{p} is an Apache ZooKeeper txn log (magic ZKLG), not a snapshot: use `zk-inspect log {p}`"
        ),
        Kind::ZooKeeperSnapshot => format!(
            "{p} is an Apache ZooKeeper snapshot (magic ZKSN) not named snapshot.<zxid hex>: inspect a copy with that name"
        ),
        Kind::Other => {
            let what = if wanted == Kind::Segment {
                "a zk-txnlog segment (magic ZKTXNLG1)"
            } else {
                "a zk-txnlog snapshot (magic ZKTXNSN1)"
            };
            if len < 8 {
                format!("{p} is not {what}: only {len} bytes, truncated or empty")
            } else {
                format!("{p} is not {what}: unknown magic at offset 0")
            }
        }
    }
}

/// `<prefix><hex>` exactly, as zk-txnlog names its files (DESIGN.md §1).
pub fn parse_name(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The key in a file's name (`log.<hex>` or `snapshot.<hex>`).
pub fn key_of(path: &Path, prefix: &str) -> Option<u64> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| parse_name(n, prefix))
}

/// The zk-txnlog files of a directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// `log.<hex>`, by key.
    pub segments: Vec<(u64, PathBuf)>,
    /// `snapshot.<hex>`, by key.
    pub snapshots: Vec<(u64, PathBuf)>,
    /// `snapshot.<hex>.tmp`: unfinished snapshots.
    pub tmp_snapshots: Vec<PathBuf>,
    /// `truncate.<hex>`: keys of unfinished truncations.
    pub truncates: Vec<u64>,
    /// Whether a `version-2` subdirectory exists (an Apache ZooKeeper data dir).
    pub has_version2: bool,
}

/// Lists `dir` (read-only).
pub fn list(dir: &Path) -> Result<Listing, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut l = Listing::default();
    for entry in rd {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        if let Some(k) = parse_name(&name, "log.") {
            l.segments.push((k, path));
        } else if let Some(k) = parse_name(&name, "snapshot.") {
            l.snapshots.push((k, path));
        } else if name.starts_with("snapshot.") && name.ends_with(".tmp") {
            l.tmp_snapshots.push(path);
        } else if let Some(k) = parse_name(&name, "truncate.") {
            l.truncates.push(k);
        } else if name == "version-2" {
            l.has_version2 = true;
        }
    }
    l.segments.sort();
    l.snapshots.sort();
    l.tmp_snapshots.sort();
    l.truncates.sort_unstable();
    Ok(l)
}

/// Whether the first bytes of `path` (up to a segment header) are all zero or absent: a segment
/// whose creation never finished (zk-txnlog DESIGN.md §10, R8).
pub fn zero_header(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut b = Vec::with_capacity(64);
    f.take(64).read_to_end(&mut b).is_ok() && b.iter().all(|&x| x == 0)
}

/// A progress line on stderr for work that takes more than a moment: nothing for the first
/// second (`ZK_INSPECT_PROGRESS_AFTER_MS` changes that, for tests), then an update at most every
/// half second (a terminal) or every five (a file).
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    start: Instant,
    after: Duration,
    last: Option<Instant>,
    tty: bool,
}

impl Progress {
    /// Starts timing `label` over `total` units (bytes).
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        Progress {
            label: label.into(),
            total,
            start: Instant::now(),
            after: std::env::var("ZK_INSPECT_PROGRESS_AFTER_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(Duration::from_secs(1), Duration::from_millis),
            last: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// `done` of `total` units are done.
    pub fn update(&mut self, done: u64) {
        let now = Instant::now();
        if now.duration_since(self.start) < self.after {
            return;
        }
        let every = if self.tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        if self.last.is_some_and(|l| now.duration_since(l) < every) {
            return;
        }
        self.last = Some(now);
        let pct = (done.min(self.total) as f64 * 100.0) / (self.total.max(1) as f64);
        let msg = format!(
            "{}: {pct:.0}% ({:.1} of {:.1} MiB, {:.0} s)",
            self.label,
            done as f64 / 1048576.0,
            self.total as f64 / 1048576.0,
            now.duration_since(self.start).as_secs_f64()
        );
        let mut e = std::io::stderr().lock();
        let _ = if self.tty {
            write!(e, "\r\x1b[K{msg}")
        } else {
            writeln!(e, "{msg}")
        };
        let _ = e.flush();
    }

    /// Clears the line (a terminal) or reports the end (a file), if anything was shown.
    pub fn finish(self) {
        if self.last.is_none() {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = if self.tty {
            write!(e, "\r\x1b[K")
        } else {
            writeln!(
                e,
                "{}: done in {:.1} s",
                self.label,
                self.start.elapsed().as_secs_f64()
            )
        };
        let _ = e.flush();
    }
}

/// A reader that reports its progress.
pub struct Counting<R> {
    pub inner: R,
    pub done: u64,
    pub progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.update(self.done);
        Ok(n)
    }
}
