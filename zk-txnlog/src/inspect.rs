//! Read-only access to log files for offline inspection: never writes, never takes the lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{self, HEADER_LEN};
use crate::segment::{self, ScanError, Stop};
use crate::storage::{FileStorage, SegmentFile, Storage};

/// Summary of one segment file, from [`inspect_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentSummary {
    /// The file.
    pub path: PathBuf,
    /// First key according to the header.
    pub first_key: u64,
    /// First key of the segment before it, according to the header.
    pub prev_key: Option<u64>,
    /// Valid records.
    pub records: u64,
    /// Key of the last valid record.
    pub last_key: Option<u64>,
    /// Offset just after the last valid record.
    pub end: u64,
    /// `Some(next first key)` if the segment is sealed.
    pub sealed: Option<u64>,
    /// Whether everything after the records (and seal) is zero.
    pub clean: bool,
    /// If not clean: what stopped the scan, at offset `end`.
    pub problem: Option<String>,
    /// The segment's unsynced window W (back-pressure bound), from its header.
    pub window: u64,
    /// Not clean, and no later frame proves that the bytes at `end` had been durable: in the
    /// newest segment this is an unfinished write that recovery cuts (DESIGN.md §10, R2);
    /// anywhere else, and whenever neither `clean` nor `torn`, it is damage (R3).
    pub torn: bool,
    /// If not clean and not torn: the offset of the later frame whose durability watermark
    /// proves the bytes at `end` had been durable (so recovery reports R3).
    pub proven_by: Option<u64>,
}

fn open_ro(path: &Path) -> Result<Arc<dyn SegmentFile>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::corrupt(path, 0, None, "not a segment file name"))?;
    FileStorage::new(dir, false, true)
        .open(name)
        .map_err(|e| Error::io(path, e))
}

/// The segment files (`log.<hex>`) in `dir`, oldest first. Reads the directory only.
pub fn segment_paths(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(k) = entry
            .file_name()
            .to_str()
            .and_then(|n| format::parse_name(n, "log."))
        {
            found.push((k, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Scan a segment file read-only and describe it. Errors name the file and offset.
pub fn inspect_segment(path: impl AsRef<Path>) -> Result<SegmentSummary> {
    let path = path.as_ref();
    let file = open_ro(path)?;
    let s = segment::scan(file.as_ref()).map_err(|e| match e {
        ScanError::Io(e) => Error::io(path, e),
        ScanError::Header { reason, .. } => Error::corrupt(path, 0, None, reason),
    })?;
    Ok(SegmentSummary {
        path: path.to_path_buf(),
        first_key: s.header.first_key,
        prev_key: s.header.prev_key,
        records: s.count,
        last_key: s.last_key,
        end: s.end,
        sealed: match s.stop {
            Stop::Seal { next_key } => Some(next_key),
            _ => None,
        },
        clean: s.is_clean(),
        problem: (!s.is_clean()).then(|| s.describe_stop()),
        window: s.header.window,
        torn: s.is_torn(),
        proven_by: s.proof.map(|(at, _)| at),
    })
}

/// Bytes a record with a payload of `payload_len` bytes occupies in a segment (frame header,
/// payload and padding; DESIGN.md §2), for tools that walk offsets.
pub fn record_frame_len(payload_len: usize) -> u64 {
    format::frame_len(payload_len)
}

/// Iterate the records of one segment file read-only, from the start. The iterator ends at the
/// end marker or seal; a damaged frame yields one `Err` naming file and offset, then ends.
pub fn read_segment(path: impl AsRef<Path>) -> Result<SegmentRecords> {
    let path = path.as_ref();
    let file = open_ro(path)?;
    let mut head = [0u8; HEADER_LEN];
    if file.len() < HEADER_LEN as u64 {
        return Err(Error::corrupt(
            path,
            0,
            None,
            "shorter than the segment header",
        ));
    }
    file.read_at(0, &mut head).map_err(|e| Error::io(path, e))?;
    let header =
        format::SegmentHeader::decode(&head).map_err(|r| Error::corrupt(path, 0, None, r))?;
    Ok(SegmentRecords {
        path: path.to_path_buf(),
        file,
        salt: header.salt,
        pos: HEADER_LEN as u64,
        last: None,
        done: false,
        ahead: segment::ReadAhead::new(crate::log::ITER_READ_AHEAD),
    })
}

/// Records of one segment file, from [`read_segment`]: `(key, payload)`.
pub struct SegmentRecords {
    path: PathBuf,
    file: Arc<dyn SegmentFile>,
    salt: u64,
    pos: u64,
    last: Option<u64>,
    done: bool,
    ahead: segment::ReadAhead,
}

impl std::fmt::Debug for SegmentRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentRecords")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish()
    }
}

impl SegmentRecords {
    /// Offset of the next frame to read: after the last record yielded (where the end marker,
    /// seal, mark or damage is once the iterator has ended).
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// The reason, with the verdict recovery would reach on this stop (same scan): a torn
    /// write (R2, if this is the newest segment) or damage proven by a later frame (R3).
    fn verdict(&self, reason: String) -> String {
        match segment::scan(self.file.as_ref()) {
            Ok(s) if s.end == self.pos => match s.proof {
                Some((at, durable)) => format!(
                    "{reason}; damage: the frame at offset {at} shows the segment was durable \
                     up to offset {durable}"
                ),
                None => format!(
                    "{reason}; torn: no later frame proves it durable (an unfinished write if \
                     this is the newest segment)"
                ),
            },
            _ => reason,
        }
    }
}

impl Iterator for SegmentRecords {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (file, salt, pos) = (self.file.as_ref(), self.salt, self.pos);
        match segment::read_record_ahead(file, salt, pos, &mut self.ahead, u64::MAX) {
            Ok(Some((key, data, next))) if self.last.is_none_or(|l| key > l) => {
                self.pos = next;
                self.last = Some(key);
                Some(Ok((key, data)))
            }
            Ok(Some((key, _, _))) => {
                self.done = true;
                let reason = format!("key {key:#x} not after the previous");
                Some(Err(Error::corrupt(
                    &self.path,
                    self.pos,
                    self.last,
                    self.verdict(reason),
                )))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(reason) => {
                self.done = true;
                let reason = self.verdict(reason);
                Some(Err(Error::corrupt(&self.path, self.pos, self.last, reason)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Log, Options};

    /// `torn` tells an unproven tail (R2) from damage a later frame proves durable (R3),
    /// read-only, with the same scan recovery uses; `read_segment` names the same verdict.
    #[test]
    fn summary_tells_torn_tail_from_damage() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || {
            Options::default()
                .segment_bytes(1 << 20)
                .max_record_bytes(1024)
                .max_unsynced_bytes(8192)
        };
        let log = Log::open(dir.path(), opts()).unwrap();
        for k in 1..=3u64 {
            log.append(k, &[k as u8; 100]).unwrap().wait().unwrap();
        }
        log.close().unwrap();
        let seg = dir.path().join("log.1");
        let s = inspect_segment(&seg).unwrap();
        assert_eq!(
            (s.clean, s.torn, s.window, s.records),
            (true, false, 8192, 3)
        );
        let mut bytes = std::fs::read(&seg).unwrap();
        let end = s.end as usize;
        // Half a frame right after the last record (over the durability mark): a torn write.
        bytes[end..end + 10].fill(0x5a);
        std::fs::write(&seg, &bytes).unwrap();
        let s = inspect_segment(&seg).unwrap();
        assert_eq!((s.clean, s.torn, s.end), (false, true, end as u64));
        assert_eq!(s.proven_by, None);
        // A stray byte far away proves nothing either: still torn.
        bytes[end + 8192 + 100] = 1;
        std::fs::write(&seg, &bytes).unwrap();
        assert!(inspect_segment(&seg).unwrap().torn);
        let errs: Vec<_> = read_segment(&seg)
            .unwrap()
            .filter_map(|r| r.err())
            .collect();
        assert!(errs[0].to_string().contains("torn"), "{}", errs[0]);
        // Damage to record 2: record 3 was written after record 2 was durable and says so.
        let frame = crate::format::frame_len(100) as usize;
        let rec2 = HEADER_LEN + frame;
        bytes[rec2 + 40] ^= 1;
        std::fs::write(&seg, &bytes).unwrap();
        let s = inspect_segment(&seg).unwrap();
        assert_eq!((s.clean, s.torn, s.end), (false, false, rec2 as u64));
        assert_eq!(s.proven_by, Some((rec2 + frame) as u64));
        let errs: Vec<_> = read_segment(&seg)
            .unwrap()
            .filter_map(|r| r.err())
            .collect();
        match &errs[..] {
            [
                Error::Corrupt {
                    offset,
                    key,
                    reason,
                    ..
                },
            ] => {
                assert_eq!((*offset, *key), (rec2 as u64, Some(1)));
                assert!(reason.contains("damage"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read(&seg).unwrap(),
            bytes,
            "inspection writes nothing"
        );
    }
}
