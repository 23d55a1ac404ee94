//! Scanning one segment: the validation that recovery, read-only inspection and the sparse index
//! share (DESIGN.md §2, §10).

use std::io;

use crate::format::{self, FRAME_HEADER, FrameHead, HEADER_LEN, SegmentHeader};
use crate::storage::SegmentFile;

/// One sparse index entry every this many bytes of records.
pub(crate) const INDEX_EVERY: u64 = 64 * 1024;
const CHUNK: usize = 1 << 20;

/// Buffered positional reader over a segment file (one `read_at` per MiB, not per record).
pub(crate) struct Reader<'a> {
    file: &'a dyn SegmentFile,
    ahead: ReadAhead,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(file: &'a dyn SegmentFile) -> Self {
        Reader {
            file,
            ahead: ReadAhead::new(CHUNK),
        }
    }

    /// `len` bytes at `off`; the caller has checked `off + len <= file.len()`.
    pub(crate) fn get(&mut self, off: u64, len: usize) -> io::Result<&[u8]> {
        self.ahead.get(self.file, off, len, u64::MAX)
    }

    /// The frame head at `off`; the caller has checked it fits in the file.
    fn head_at(&mut self, off: u64) -> io::Result<[u8; FRAME_HEADER]> {
        let b = self.get(off, FRAME_HEADER)?;
        let mut head = [0u8; FRAME_HEADER];
        head.copy_from_slice(b);
        Ok(head)
    }
}

/// A window of a segment's bytes read ahead in one `read_at`: sequential
/// readers (the scan, the log's iterator) make one read per window instead
/// of two per record (a recovery replaying 80k records spent a fifth of its
/// time in those reads' system calls).
/// What was read is trusted later only because a log's written bytes do not
/// change under a reader (a truncation ends the iterators' segments first).
#[derive(Debug)]
pub(crate) struct ReadAhead {
    window: usize,
    buf: Vec<u8>,
    start: u64,
}

impl ReadAhead {
    /// Reads `window` bytes at a time (at least what is asked for).
    pub(crate) fn new(window: usize) -> Self {
        ReadAhead {
            window,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// `len` bytes at `off` of `file`; the caller has checked `off + len
    /// <= file.len()`. Nothing at or after `valid_to` (where a segment still
    /// being written ends) is read ahead, unless asked for.
    pub(crate) fn get(
        &mut self,
        file: &dyn SegmentFile,
        off: u64,
        len: usize,
        valid_to: u64,
    ) -> io::Result<&[u8]> {
        let end = off + len as u64;
        if off < self.start || end > self.start + self.buf.len() as u64 {
            let limit = file.len().min(valid_to.max(end));
            let want = (len.max(self.window) as u64).min(limit - off);
            self.buf.resize(want as usize, 0);
            file.read_at(off, &mut self.buf)?;
            self.start = off;
        }
        let a = (off - self.start) as usize;
        Ok(&self.buf[a..a + len])
    }
}

/// Where and why the valid prefix of a segment stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A zero length: the end of what was written.
    End,
    /// A seal frame at `end`, naming the next segment's first key.
    Seal { next_key: u64 },
    /// A durability mark at `end`: the end of the records, all of them durable.
    Mark,
    /// No room for another frame header before the end of the file.
    FileEnd,
    /// A frame that is not a valid record.
    Bad(String),
}

/// The result of scanning one segment.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub header: SegmentHeader,
    /// Offset just after the last valid record (where a seal, a mark, an end marker or damage
    /// starts).
    pub end: u64,
    pub first_key: Option<u64>,
    pub last_key: Option<u64>,
    pub count: u64,
    /// `(key, offset)` every [`INDEX_EVERY`] bytes, always including the first record.
    pub index: Vec<(u64, u64)>,
    pub stop: Stop,
    /// One past the last non-zero byte at or after the stop (after the seal or mark frame);
    /// equal to that position when everything after it is zero.
    pub nonzero_end: u64,
    /// If not clean: the first valid frame after the stop (found by resynchronising on aligned
    /// offsets) whose durability watermark is above `end`, as `(offset, watermark)`. It proves
    /// the bytes at `end` had been durable: damage, not a torn write (DESIGN.md §10).
    pub proof: Option<(u64, u64)>,
    /// If not clean: the first valid record after the stop, as `(offset, key)`.
    pub next_valid: Option<(u64, u64)>,
}

impl Scan {
    /// Nothing scanned yet after `header`.
    fn new(header: SegmentHeader) -> Scan {
        Scan {
            header,
            end: HEADER_LEN as u64,
            first_key: None,
            last_key: None,
            count: 0,
            index: Vec::new(),
            stop: Stop::End,
            nonzero_end: 0,
            proof: None,
            next_valid: None,
        }
    }

    /// Where the bytes after the valid prefix start being "free" (after the seal or mark).
    pub(crate) fn after_stop(&self) -> u64 {
        match self.stop {
            Stop::Seal { .. } | Stop::Mark => self.end + FRAME_HEADER as u64,
            _ => self.end,
        }
    }

    /// Everything after the valid prefix (and seal or mark) is zero.
    pub(crate) fn is_clean(&self) -> bool {
        matches!(
            self.stop,
            Stop::End | Stop::Seal { .. } | Stop::Mark | Stop::FileEnd
        ) && self.nonzero_end == self.after_stop()
    }

    /// Not clean, and no later frame proves that the bytes at `end` had been durable: in the
    /// last segment, an unfinished (never acknowledged) write that recovery cuts (R2).
    pub(crate) fn is_torn(&self) -> bool {
        !self.is_clean() && self.proof.is_none()
    }

    pub(crate) fn describe_stop(&self) -> String {
        let what = match &self.stop {
            Stop::Bad(r) => r.clone(),
            Stop::End | Stop::FileEnd | Stop::Mark => format!(
                "non-zero bytes up to offset {} after the end of the records",
                self.nonzero_end
            ),
            Stop::Seal { .. } => "non-zero bytes after the seal".to_string(),
        };
        match self.proof {
            Some((at, durable)) => format!(
                "{what}; the frame at offset {at} shows the segment was durable up to offset \
                 {durable}, so this is damage to acknowledged data, not a torn write"
            ),
            None => what,
        }
    }
}

/// Why a segment could not be scanned at all.
#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    /// The header is unreadable; `zero` says it is all zeros (a creation that never finished).
    Header {
        reason: &'static str,
        zero: bool,
    },
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// The segment's header. A file shorter than a header, or a header of
/// zeros, is reported with `zero` set: recovery treats it as a creation that
/// never finished.
fn read_header(file: &dyn SegmentFile, r: &mut Reader<'_>) -> Result<SegmentHeader, ScanError> {
    let len = file.len();
    if len < HEADER_LEN as u64 {
        // A process killed between creating the file and preallocating it leaves it short
        // (usually empty): "zero" lets recovery treat it as a creation that never finished.
        let mut b = vec![0u8; len as usize];
        file.read_at(0, &mut b)?;
        return Err(ScanError::Header {
            reason: "file shorter than the segment header",
            zero: b.iter().all(|&x| x == 0),
        });
    }
    let hb = r.get(0, HEADER_LEN)?;
    SegmentHeader::decode(hb).map_err(|reason| ScanError::Header {
        reason,
        zero: hb.iter().all(|&b| b == 0),
    })
}

/// The segment's header alone (what open reads of a segment it does not scan).
pub(crate) fn header_of(file: &dyn SegmentFile) -> Result<SegmentHeader, ScanError> {
    // Only the header's bytes: a scan's read-ahead would read (and allocate) a MiB per segment.
    let mut r = Reader {
        file,
        ahead: ReadAhead::new(HEADER_LEN),
    };
    read_header(file, &mut r)
}

/// Validate a segment: header, then every record's bounds, crc, watermark and key order; if
/// the valid prefix is followed by anything but zeros, resynchronise to find a proof of
/// durability beyond it.
///
/// Never panics on any bytes: every length is checked against the file size before use.
pub(crate) fn scan(file: &dyn SegmentFile) -> Result<Scan, ScanError> {
    let len = file.len();
    let mut r = Reader::new(file);
    let header = read_header(file, &mut r)?;
    let salt = header.salt;
    let mut s = Scan::new(header);
    let mut pos = HEADER_LEN as u64;
    let mut last_indexed: Option<u64> = None;
    s.stop = loop {
        if pos + FRAME_HEADER as u64 > len {
            break Stop::FileEnd;
        }
        let head = r.head_at(pos)?;
        match format::decode_head(salt, &head) {
            FrameHead::End => break Stop::End,
            FrameHead::Seal { next_key, durable } => {
                if durable != pos {
                    break Stop::Bad(format!("seal names offset {durable}, not its own"));
                }
                if s.last_key.is_some_and(|k| next_key <= k) {
                    break Stop::Bad(format!(
                        "seal names key {next_key:#x} not after the last key"
                    ));
                }
                break Stop::Seal { next_key };
            }
            FrameHead::Mark { durable } => {
                if durable != pos {
                    break Stop::Bad(format!("mark names offset {durable}, not its own"));
                }
                break Stop::Mark;
            }
            FrameHead::BadSeal => break Stop::Bad("seal or mark crc mismatch".into()),
            FrameHead::BadLen => break Stop::Bad("impossible record length".into()),
            FrameHead::Record {
                len: body,
                crc,
                key,
                durable,
            } => {
                let frame_end = pos + format::align_up(8 + u64::from(body));
                if frame_end > len {
                    break Stop::Bad(format!(
                        "record length {body} runs past the end of the file"
                    ));
                }
                let payload = r.get(pos + FRAME_HEADER as u64, (body - 16) as usize)?;
                if !format::check_record(salt, key, durable, body, crc, payload) {
                    break Stop::Bad(format!("crc mismatch in record with key {key:#x}"));
                }
                if !plausible_watermark(durable, pos) {
                    break Stop::Bad(format!(
                        "record with key {key:#x} claims a durable offset {durable} beyond itself"
                    ));
                }
                match s.last_key {
                    None if key != header.first_key => {
                        break Stop::Bad(format!(
                            "first key {key:#x} differs from the segment's name {:#x}",
                            header.first_key
                        ));
                    }
                    Some(last) if key <= last => {
                        break Stop::Bad(format!("key {key:#x} not after the previous {last:#x}"));
                    }
                    _ => {}
                }
                if last_indexed.is_none_or(|at| pos - at >= INDEX_EVERY) {
                    s.index.push((key, pos));
                    last_indexed = Some(pos);
                }
                s.first_key.get_or_insert(key);
                s.last_key = Some(key);
                s.count += 1;
                pos = frame_end;
                s.end = pos;
            }
        }
    };
    let from = s.after_stop().min(len);
    s.nonzero_end = last_nonzero(&mut r, from, len)?.map_or(from, |at| at + 1);
    if !s.is_clean() {
        resync(&mut r, &mut s)?;
    }
    Ok(s)
}

/// [`scan`] for opening a log: the same result, faster when the segment is clean. A record's crc
/// is checked only if no later verified frame's watermark vouches for it (DESIGN.md §10: a
/// watermark `D` proves every byte in `[64, D)` had been synced): the records of the last
/// window, the newest one always, and every seal or mark. Damage to a record that a watermark
/// vouches for is reported when the record is read (the iterator checks every crc), as for a
/// segment older than the last. Anything unusual — a frame that does not decode or verify, a
/// stop that is not clean — falls back to [`scan`], so torn tails and damage near the end get
/// exactly its verdicts. Checking every crc of a 64 MiB segment was two fifths of opening it.
pub(crate) fn scan_for_open(file: &dyn SegmentFile) -> Result<Scan, ScanError> {
    match scan_trusting_watermarks(file)? {
        Some(s) => Ok(s),
        None => scan(file),
    }
}

/// The fast path of [`scan_for_open`]: `None` when the full scan must decide.
fn scan_trusting_watermarks(file: &dyn SegmentFile) -> Result<Option<Scan>, ScanError> {
    let len = file.len();
    let mut r = Reader::new(file);
    let header = read_header(file, &mut r)?;
    let salt = header.salt;
    let window = header.window.max(FRAME_HEADER as u64);
    let mut s = Scan::new(header);
    // Records whose crc is not checked yet and that no verified watermark vouches for, oldest
    // first: (offset, frame end).
    let mut unchecked: std::collections::VecDeque<(u64, u64)> = std::collections::VecDeque::new();
    let mut pos = HEADER_LEN as u64;
    let mut last_indexed: Option<u64> = None;
    s.stop = loop {
        if pos + FRAME_HEADER as u64 > len {
            break Stop::FileEnd;
        }
        let head = r.head_at(pos)?;
        match format::decode_head(salt, &head) {
            FrameHead::End => break Stop::End,
            FrameHead::Seal { next_key, durable }
                if durable == pos && s.last_key.is_none_or(|k| next_key > k) =>
            {
                break Stop::Seal { next_key };
            }
            FrameHead::Mark { durable } if durable == pos => break Stop::Mark,
            FrameHead::Record {
                len: body,
                key,
                durable,
                ..
            } => {
                let frame_end = pos + format::align_up(8 + u64::from(body));
                let in_order = match s.last_key {
                    None => key == s.header.first_key,
                    Some(last) => key > last,
                };
                if frame_end > len || !plausible_watermark(durable, pos) || !in_order {
                    return Ok(None);
                }
                if last_indexed.is_none_or(|at| pos - at >= INDEX_EVERY) {
                    s.index.push((key, pos));
                    last_indexed = Some(pos);
                }
                s.first_key.get_or_insert(key);
                s.last_key = Some(key);
                s.count += 1;
                unchecked.push_back((pos, frame_end));
                if unchecked
                    .front()
                    .is_some_and(|&(p, _)| pos - p > 2 * window)
                    && !check_unchecked(&mut r, salt, &mut unchecked, false, window)?
                {
                    return Ok(None);
                }
                pos = frame_end;
                s.end = pos;
            }
            _ => return Ok(None),
        }
    };
    match s.stop {
        // A verified seal or mark at the end of the records vouches for all of them, but the
        // newest record's key becomes the log's last key: it is checked whatever vouches for it.
        Stop::Seal { .. } | Stop::Mark => {
            if let Some(&newest) = unchecked.back() {
                unchecked.clear();
                unchecked.push_back(newest);
            }
        }
        _ => {}
    }
    if !check_unchecked(&mut r, salt, &mut unchecked, true, 0)? {
        return Ok(None);
    }
    // A crash leaves written bytes only below the durable end (which is at or before the stop)
    // plus the segment's window and a mark (DESIGN.md §10): beyond that the preallocated zeros
    // are not read, which was most of opening a partly written 64 MiB segment (and all of it
    // read from disk when the page cache is cold). Zeros there cannot hide a torn write.
    let from = s.after_stop().min(len);
    let to = from.saturating_add(window + FRAME_HEADER as u64).min(len);
    s.nonzero_end = last_nonzero(&mut r, from, to)?.map_or(from, |at| at + 1);
    Ok(s.is_clean().then_some(s))
}

/// Checks the newest unchecked record and drops the ones its watermark vouches for; then checks
/// the others oldest first, all of them if `all`, else those more than `keep` bytes before the
/// newest (a record's watermark trails it by at most the window, so a later record usually
/// vouches for them). False if a crc does not match.
fn check_unchecked(
    r: &mut Reader<'_>,
    salt: u64,
    unchecked: &mut std::collections::VecDeque<(u64, u64)>,
    all: bool,
    keep: u64,
) -> io::Result<bool> {
    let Some((newest, _)) = unchecked.pop_back() else {
        return Ok(true);
    };
    let Some(vouched) = check_at(r, salt, newest)? else {
        return Ok(false);
    };
    while unchecked.front().is_some_and(|&(_, end)| end <= vouched) {
        unchecked.pop_front();
    }
    while let Some(&(p, _)) = unchecked.front() {
        if !all && newest - p <= keep {
            break;
        }
        if check_at(r, salt, p)?.is_none() {
            return Ok(false);
        }
        unchecked.pop_front();
    }
    Ok(true)
}

/// The watermark of the record at `pos` if its crc matches (the caller decoded its head and
/// checked its bounds).
fn check_at(r: &mut Reader<'_>, salt: u64, pos: u64) -> io::Result<Option<u64>> {
    let head = r.head_at(pos)?;
    let FrameHead::Record {
        len: body,
        crc,
        key,
        durable,
    } = format::decode_head(salt, &head)
    else {
        return Ok(None);
    };
    let payload = r.get(pos + FRAME_HEADER as u64, (body - 16) as usize)?;
    Ok(format::check_record(salt, key, durable, body, crc, payload).then_some(durable))
}

/// A watermark a writer can have produced for a frame at `pos`: aligned, within the records
/// area, and not beyond the frame itself (nothing after a frame is durable before it is).
fn plausible_watermark(durable: u64, pos: u64) -> bool {
    durable >= HEADER_LEN as u64 && durable <= pos && durable.is_multiple_of(format::ALIGN)
}

/// After a stop that is not clean: look at every aligned offset after it, up to the last
/// non-zero byte, for frames that verify (plausible length and watermark, key above the last
/// good key, crc with this segment's salt). Record the first such record (`next_valid`) and the
/// first frame whose watermark proves the bytes at `end` had been durable (`proof`).
fn resync(r: &mut Reader<'_>, s: &mut Scan) -> io::Result<()> {
    let len = r.file.len();
    let salt = s.header.salt;
    let x = s.end;
    let mut p = match s.stop {
        Stop::Seal { .. } | Stop::Mark => s.end + FRAME_HEADER as u64,
        _ => s.end + format::ALIGN,
    };
    while p < s.nonzero_end && p + FRAME_HEADER as u64 <= len {
        let head = r.head_at(p)?;
        match format::decode_head(salt, &head) {
            FrameHead::Seal { durable, .. } | FrameHead::Mark { durable } if durable == p => {
                // Written only after everything before it was durable.
                s.proof = Some((p, durable));
                return Ok(());
            }
            FrameHead::Record {
                len: body,
                crc,
                key,
                durable,
            } if u64::from(body) + 8 <= s.header.window
                && plausible_watermark(durable, p)
                && s.last_key.map_or(key >= s.header.first_key, |k| key > k) =>
            {
                let frame_end = p + format::align_up(8 + u64::from(body));
                if frame_end <= len {
                    let payload = r.get(p + FRAME_HEADER as u64, (body - 16) as usize)?;
                    if format::check_record(salt, key, durable, body, crc, payload) {
                        s.next_valid.get_or_insert((p, key));
                        if durable > x {
                            s.proof = Some((p, durable));
                            return Ok(());
                        }
                        p = frame_end;
                        continue;
                    }
                }
            }
            _ => {}
        }
        p += format::ALIGN;
    }
    Ok(())
}

/// Offset of the last non-zero byte in `[from, to)`, scanning backwards a MiB at a time.
fn last_nonzero(r: &mut Reader<'_>, from: u64, to: u64) -> io::Result<Option<u64>> {
    let mut hi = to;
    while hi > from {
        let lo = hi.saturating_sub(CHUNK as u64).max(from);
        let chunk = r.get(lo, (hi - lo) as usize)?;
        // OR-fold 4 KiB blocks (vectorised, unlike a byte-by-byte search
        // with an early exit) and look for the byte only in the block that
        // has one: the zero tail of a preallocated segment is tens of MiB.
        let mut end = chunk.len();
        while end > 0 {
            let start = end.saturating_sub(4096);
            let block = &chunk[start..end];
            if block.iter().fold(0u8, |a, &b| a | b) != 0
                && let Some(i) = block.iter().rposition(|&b| b != 0)
            {
                return Ok(Some(lo + (start + i) as u64));
            }
            end = start;
        }
        hi = lo;
    }
    Ok(None)
}

/// Read one record at `pos` (below a bound the caller knows to be valid or durable), checking
/// it again. `Ok(None)` at an end marker, a seal, a mark or the end of the file.
#[cfg(test)]
pub(crate) fn read_record(
    file: &dyn SegmentFile,
    salt: u64,
    pos: u64,
) -> Result<Option<(u64, Vec<u8>, u64)>, String> {
    read_record_ahead(file, salt, pos, &mut ReadAhead::new(0), u64::MAX)
}

/// [`read_record`] through `ahead` (sequential reads), trusting no byte at or
/// after `valid_to` from an earlier read.
pub(crate) fn read_record_ahead(
    file: &dyn SegmentFile,
    salt: u64,
    pos: u64,
    ahead: &mut ReadAhead,
    valid_to: u64,
) -> Result<Option<(u64, Vec<u8>, u64)>, String> {
    let len = file.len();
    if pos.saturating_add(FRAME_HEADER as u64) > len {
        return Ok(None);
    }
    let head: [u8; FRAME_HEADER] = ahead
        .get(file, pos, FRAME_HEADER, valid_to)
        .map_err(|e| e.to_string())?
        .try_into()
        .expect("FRAME_HEADER bytes");
    match format::decode_head(salt, &head) {
        FrameHead::End | FrameHead::Seal { .. } | FrameHead::Mark { .. } => Ok(None),
        FrameHead::BadSeal => Err("seal or mark crc mismatch".into()),
        FrameHead::BadLen => Err("impossible record length".into()),
        FrameHead::Record {
            len: body,
            crc,
            key,
            durable,
        } => {
            let end = pos + format::align_up(8 + u64::from(body));
            if end > len {
                return Err(format!(
                    "record length {body} runs past the end of the file"
                ));
            }
            let payload = ahead
                .get(
                    file,
                    pos + FRAME_HEADER as u64,
                    (body - 16) as usize,
                    valid_to,
                )
                .map_err(|e| e.to_string())?
                .to_vec();
            if !format::check_record(salt, key, durable, body, crc, &payload) {
                return Err(format!("crc mismatch in record with key {key:#x}"));
            }
            Ok(Some((key, payload, end)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemDisk, Storage};
    use proptest::prelude::*;

    fn file_of(bytes: &[u8]) -> std::sync::Arc<dyn SegmentFile> {
        let disk = MemDisk::new();
        disk.put_file("log.1", bytes);
        disk.storage().open("log.1").unwrap()
    }

    const SALT: u64 = 0x5a17;

    fn header() -> Vec<u8> {
        SegmentHeader {
            first_key: 1,
            prev_key: None,
            window: 512,
            size: 4096,
            salt: SALT,
        }
        .encode()
        .to_vec()
    }

    /// A clean segment of three records, its stop, and the segment's window (512).
    fn three_records(len: usize) -> (Vec<u8>, u64) {
        let mut img = header();
        for k in 1..=3u64 {
            crate::format::encode_record(&mut img, SALT, k, HEADER_LEN as u64, &[k as u8; 20]);
        }
        let end = img.len() as u64;
        img.resize(len, 0);
        (img, end)
    }

    /// Open reads the zeros after the records only as far as a crash can have written (the
    /// segment's window and a mark past the stop): a partly written 64 MiB segment's tail was
    /// most of a restart. A byte inside that bound still sends open to the full scan.
    #[test]
    fn open_checks_the_zero_tail_only_within_the_window() {
        let bound = 512 + FRAME_HEADER;
        let (mut img, end) = three_records(4096);
        img[end as usize + bound] = 0x5a;
        let f = file_of(&img);
        let opened = scan_for_open(f.as_ref()).unwrap();
        assert_eq!((opened.end, opened.count), (end, 3));
        assert!(opened.is_clean(), "{:?}", opened.stop);
        // The full scan (zk-inspect's, and open's fallback) still looks at every byte.
        let full = scan(f.as_ref()).unwrap();
        assert_eq!(full.nonzero_end, end + bound as u64 + 1);
        assert!(!full.is_clean());

        let (mut img, end) = three_records(4096);
        img[end as usize + bound - 1] = 0x5a;
        let f = file_of(&img);
        let opened = scan_for_open(f.as_ref()).unwrap();
        assert_eq!(opened.nonzero_end, end + bound as u64);
        assert!(!opened.is_clean());
    }

    proptest! {
        /// No byte pattern after a valid header makes the scan or a record read panic, and the
        /// scan's claims hold: `end` within the file, records before it readable.
        #[test]
        fn scan_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048), valid in 0usize..6) {
            let mut img = header();
            for k in 1..=valid as u64 {
                let at = img.len() as u64;
                crate::format::encode_record(&mut img, SALT, k, at.min(HEADER_LEN as u64 + 8 * k), &[k as u8; 20]);
            }
            img.extend_from_slice(&body);
            let f = file_of(&img);
            let s = scan(f.as_ref()).unwrap();
            prop_assert!(s.end <= img.len() as u64);
            prop_assert!(s.count >= valid as u64 || !body.is_empty());
            let mut pos = HEADER_LEN as u64;
            let mut n = 0;
            while pos < s.end {
                let (_, _, next) = read_record(f.as_ref(), SALT, pos).unwrap().unwrap();
                pos = next;
                n += 1;
            }
            prop_assert_eq!(n, s.count);
            // Arbitrary offsets never panic either.
            for off in [0u64, 1, 63, 64, 65, img.len() as u64 - 1, img.len() as u64, u64::MAX - 3] {
                let _ = read_record(f.as_ref(), SALT, off);
            }
        }

        /// Random whole files (no valid header) are an error, never a panic.
        #[test]
        fn garbage_header_is_an_error(img in prop::collection::vec(any::<u8>(), 0..300)) {
            let f = file_of(&img);
            prop_assert!(scan(f.as_ref()).is_err() || img.len() >= HEADER_LEN);
        }
    }
}
