//! Finding Apache's files (design/apache-disk-format.md §1, §9.1): the
//! `version-2` directories under dataDir and dataLogDir, names matched
//! strictly (`snapshot.<hex>[.gz|.snappy]`, `log.<hex>`, lower-case hex as
//! `Long.toHexString` writes it); anything else there is reported, never read
//! (Apache would also read `snapshot.35.tmp`, `log.10.fixed`, ...).

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// Apache's subdirectory (`FileTxnSnapLog.version + VERSION`).
pub const VERSION_DIR: &str = "version-2";

/// How a snapshot file is compressed (`SnapStream.StreamMode`, from its suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No suffix: the checked stream as is.
    None,
    /// `.gz`: a gzip stream.
    Gzip,
    /// `.snappy`: xerial snappy-java's stream format.
    Snappy,
}

/// What a file name in `version-2` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `snapshot.<hex zxid>[.gz|.snappy]`: the zxid in its name.
    Snapshot(i64, Compression),
    /// `log.<hex zxid>`: the zxid of its first txn.
    Log(i64),
}

/// A snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// Its path.
    pub path: PathBuf,
    /// The zxid in its name (the last applied when it started: fuzzy).
    pub zxid: i64,
    /// Its compression.
    pub compression: Compression,
}

/// A txn log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Its path.
    pub path: PathBuf,
    /// The zxid in its name (its first txn).
    pub zxid: i64,
}

/// Apache's files in a data directory (and its log directory).
#[derive(Debug, Clone, Default)]
pub struct DataDir {
    /// `<dataDir>/version-2`.
    pub snap_dir: PathBuf,
    /// `<dataLogDir>/version-2` (may equal `snap_dir`).
    pub log_dir: PathBuf,
    /// Snapshots, oldest first (by zxid, then name).
    pub snapshots: Vec<SnapFile>,
    /// Logs, oldest first.
    pub logs: Vec<LogFile>,
    /// Other files found in either `version-2` (never read).
    pub ignored: Vec<PathBuf>,
    /// `currentEpoch` (quorum mode only).
    pub current_epoch: Option<i64>,
    /// `acceptedEpoch` (quorum mode only).
    pub accepted_epoch: Option<i64>,
}

impl DataDir {
    /// Whether there is nothing to read (no snapshot and no log).
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.logs.is_empty()
    }
}

fn parse_hex(s: &str) -> Option<i64> {
    let ok = !s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    // Long.toHexString of a negative zxid has 16 digits: keep the bits.
    ok.then(|| u64::from_str_radix(s, 16).ok().map(|v| v as i64))
        .flatten()
}

/// Classifies a file name by the strict rules of §9.1; `None` for anything
/// else.
pub fn classify(name: &str) -> Option<FileKind> {
    if let Some(rest) = name.strip_prefix("snapshot.") {
        let (hex, compression) = match rest.split_once('.') {
            None => (rest, Compression::None),
            Some((h, "gz")) => (h, Compression::Gzip),
            Some((h, "snappy")) => (h, Compression::Snappy),
            Some(_) => return None,
        };
        return parse_hex(hex).map(|z| FileKind::Snapshot(z, compression));
    }
    name.strip_prefix("log.")
        .and_then(parse_hex)
        .map(FileKind::Log)
}

/// Lists Apache's files under `data_dir` and `data_log_dir` (their
/// `version-2`; either may be missing) and reads the epoch files.
pub fn scan(data_dir: &Path, data_log_dir: &Path) -> Result<DataDir, Error> {
    let snap_dir = data_dir.join(VERSION_DIR);
    let log_dir = data_log_dir.join(VERSION_DIR);
    let mut out = DataDir {
        snap_dir: snap_dir.clone(),
        log_dir: log_dir.clone(),
        ..DataDir::default()
    };
    let mut dirs = vec![snap_dir.clone()];
    if log_dir != snap_dir {
        dirs.push(log_dir);
    }
    for dir in dirs {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io(&dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match classify(&name) {
                Some(FileKind::Snapshot(zxid, compression)) => out.snapshots.push(SnapFile {
                    path,
                    zxid,
                    compression,
                }),
                Some(FileKind::Log(zxid)) => out.logs.push(LogFile { path, zxid }),
                None if dir == snap_dir && (name == "currentEpoch" || name == "acceptedEpoch") => {}
                None => out.ignored.push(path),
            }
        }
    }
    out.snapshots
        .sort_by(|a, b| a.zxid.cmp(&b.zxid).then(a.path.cmp(&b.path)));
    out.logs
        .sort_by(|a, b| a.zxid.cmp(&b.zxid).then(a.path.cmp(&b.path)));
    out.ignored.sort();
    out.current_epoch = read_epoch(&snap_dir.join("currentEpoch"))?;
    out.accepted_epoch = read_epoch(&snap_dir.join("acceptedEpoch"))?;
    Ok(out)
}

/// An epoch file: `Long.toString(epoch)`, first line; `None` if missing.
fn read_epoch(path: &Path) -> Result<Option<i64>, Error> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path)(e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    line.parse::<i64>()
        .map(Some)
        .map_err(|_| Error::corrupt(path, 0, format!("not an epoch: {line:?}")))
}

/// The logs `FileTxnIterator(dir, from)` reads, oldest first: those that
/// start at or after `from`, plus the newest one that starts before it.
pub fn logs_from(logs: &[LogFile], from: i64) -> &[LogFile] {
    let start = logs.iter().rposition(|l| l.zxid < from).unwrap_or(0);
    &logs[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_strictly() {
        // Proves §9.1: only exact snapshot/log names count; tool outputs and
        // left-over .tmp files do not.
        use Compression::*;
        assert_eq!(
            classify("snapshot.1a"),
            Some(FileKind::Snapshot(0x1a, None))
        );
        assert_eq!(
            classify("snapshot.1a.gz"),
            Some(FileKind::Snapshot(0x1a, Gzip))
        );
        assert_eq!(
            classify("snapshot.100000002.snappy"),
            Some(FileKind::Snapshot(0x1_0000_0002, Snappy))
        );
        assert_eq!(classify("log.10"), Some(FileKind::Log(0x10)));
        for bad in [
            "snapshot.35.tmp",
            "log.10.fixed",
            "log.10.chopped5",
            "log.1A",
            "log.",
            "snapshot.",
            "log.x1",
            "log.11111111111111111",
            "currentEpoch",
        ] {
            assert_eq!(classify(bad), Option::None, "{bad}");
        }
    }

    #[test]
    fn log_selection_follows_file_txn_iterator() {
        // Proves §2 "Which files are read": the newest log starting before
        // the zxid, plus every later one.
        let logs: Vec<LogFile> = [1, 0x10, 0x20]
            .iter()
            .map(|&z| LogFile {
                path: PathBuf::from(format!("log.{z:x}")),
                zxid: z,
            })
            .collect();
        let z = |from| {
            logs_from(&logs, from)
                .iter()
                .map(|l| l.zxid)
                .collect::<Vec<_>>()
        };
        assert_eq!(z(0xf), vec![1, 0x10, 0x20]);
        assert_eq!(z(0x10), vec![1, 0x10, 0x20]);
        assert_eq!(z(0x11), vec![0x10, 0x20]);
        assert_eq!(z(0x30), vec![0x20]);
        assert_eq!(z(1), vec![1, 0x10, 0x20]);
    }

    #[test]
    fn scan_reports_other_files_and_reads_epochs() {
        // Proves the scan: both kinds found and sorted, others reported,
        // epoch files read.
        let d = tempfile::tempdir().unwrap();
        let v = d.path().join(VERSION_DIR);
        fs::create_dir(&v).unwrap();
        for n in [
            "log.20",
            "log.3",
            "snapshot.2",
            "snapshot.1f.gz",
            "snapshot.5.tmp",
        ] {
            fs::write(v.join(n), b"").unwrap();
        }
        fs::write(v.join("currentEpoch"), b"4").unwrap();
        fs::write(v.join("acceptedEpoch"), b"5\n").unwrap();
        let s = scan(d.path(), d.path()).unwrap();
        assert_eq!(
            s.logs.iter().map(|l| l.zxid).collect::<Vec<_>>(),
            vec![3, 0x20]
        );
        assert_eq!(
            s.snapshots.iter().map(|l| l.zxid).collect::<Vec<_>>(),
            vec![2, 0x1f]
        );
        assert_eq!(s.ignored, vec![v.join("snapshot.5.tmp")]);
        assert_eq!((s.current_epoch, s.accepted_epoch), (Some(4), Some(5)));
        fs::write(v.join("currentEpoch"), b"x").unwrap();
        assert!(matches!(
            scan(d.path(), d.path()),
            Err(Error::Corrupt { .. })
        ));
    }
}
