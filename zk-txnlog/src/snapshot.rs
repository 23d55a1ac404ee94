//! Snapshots: opaque byte streams keyed by a `u64`, written atomically (DESIGN.md §7).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::{self, u32_at, u64_at};
use crate::storage::sync_dir;

const PREFIX: &str = "snapshot.";
const TMP_SUFFIX: &str = ".tmp";
const MAGIC: &[u8; 8] = b"ZKTXNSN1";
const END_MAGIC: &[u8; 8] = b"ZKSNEND1";
const VERSION: u32 = 1;
const HEAD: u64 = 24;
const TRAILER: u64 = 24;
/// Why a snapshot whose content does not match its trailer's crc is invalid.
const CRC_MISMATCH: &str = "content crc mismatch";

/// `snapshot.<hex>` name of a snapshot.
fn snapshot_name(key: u64) -> String {
    format!("{PREFIX}{key:x}")
}

/// A snapshot file found in the directory (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The key the snapshot is taken at.
    pub key: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes (header and trailer included).
    pub file_len: u64,
}

/// Where an uncached writer's staging buffer waits for the next writer.
type SpareBuffer = Arc<Mutex<Option<Vec<u8>>>>;

/// A directory of snapshots (`snapshot.<key hex>` files).
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// The staging buffer of the last uncached writer, kept for the next one
    /// (shared by clones): a fresh 4 MiB buffer per snapshot is zeroed and
    /// faulted in again, which cost more than writing a small tree's
    /// snapshot (a 3-server setData load on a 10k-znode tree: 15 interim
    /// snapshots a second per server, over half their CPU in the buffer).
    spare: SpareBuffer,
}

impl SnapshotStore {
    /// Open (creating if needed) the snapshot directory and delete leftovers of snapshots that
    /// were never finished (`*.tmp`, recovery row R6).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut removed = false;
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(PREFIX) && name.ends_with(TMP_SUFFIX) {
                let p = dir.join(name);
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                tracing::info!(file = %p.display(), "zk-txnlog: removed unfinished snapshot");
                removed = true;
            }
        }
        if removed {
            sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(SnapshotStore {
            dir,
            spare: Arc::default(),
        })
    }

    /// Open for reading only: nothing in the directory is changed.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Self {
        SnapshotStore {
            dir: dir.as_ref().to_path_buf(),
            spare: Arc::default(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finished snapshots, oldest (lowest key) first. Not verified.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| format::parse_name(n, PREFIX)) else {
                continue;
            };
            let path = entry.path();
            let file_len = entry.metadata().map_err(|e| Error::io(&path, e))?.len();
            out.push(SnapshotInfo {
                key,
                path,
                file_len,
            });
        }
        out.sort_by_key(|s| s.key);
        Ok(out)
    }

    /// Start writing the snapshot at `key`. Nothing is visible until
    /// [`SnapshotWriter::finish`].
    pub fn create(&self, key: u64) -> Result<SnapshotWriter> {
        self.create_with(key, false)
    }

    /// As [`create`](Self::create), but the bytes bypass the page cache: the
    /// file is opened with `O_DIRECT` (where the filesystem refuses it, without)
    /// and written in aligned 4 MiB chunks from one buffer of the writer's own.
    /// Writing a large snapshot through the page cache costs a page of fresh
    /// memory per 4 KiB, which on a VM is a hypervisor fault per page the guest
    /// touches for the first time (more CPU than the copy itself); the price is
    /// a restart soon after, which reads the snapshot from the disk instead of
    /// the cache.
    pub fn create_uncached(&self, key: u64) -> Result<SnapshotWriter> {
        self.create_with(key, true)
    }

    fn create_with(&self, key: u64, uncached: bool) -> Result<SnapshotWriter> {
        let name = snapshot_name(key);
        let tmp = self.dir.join(format!("{name}{TMP_SUFFIX}"));
        let sink = if uncached {
            Sink::Direct(DirectSink::create(&tmp, &self.spare).map_err(|e| Error::io(&tmp, e))?)
        } else {
            let file = create_file(&tmp, 0).map_err(|e| Error::io(&tmp, e))?;
            Sink::Buffered(BufWriter::with_capacity(1 << 20, file))
        };
        let mut w = SnapshotWriter {
            out: Some(sink),
            tmp,
            path: self.dir.join(name),
            dir: self.dir.clone(),
            key,
            crc: 0,
            len: 0,
            writeback: 0,
            unsynced: 0,
        };
        let mut head = Vec::with_capacity(HEAD as usize);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&key.to_le_bytes());
        w.raw_write(&head)?;
        Ok(w)
    }

    /// Verify and open the snapshot at `key`.
    pub fn open_snapshot(&self, key: u64) -> Result<SnapshotReader> {
        SnapshotReader::open(&self.dir.join(snapshot_name(key)), key)
    }

    /// Open the snapshot at `key` for one pass that checks its crc as it goes
    /// ([`SnapshotStream`]), instead of reading it all once to check the crc
    /// before the pass that uses it ([`open_snapshot`](Self::open_snapshot)).
    /// The frame (header, trailer, length) is checked here.
    pub fn stream_snapshot(&self, key: u64) -> Result<SnapshotStream> {
        SnapshotStream::open(&self.dir.join(snapshot_name(key)), key)
    }

    /// The newest snapshot that verifies, falling back to older ones; `None` if there is none.
    /// Snapshots that fail are logged and left in place.
    pub fn newest_valid(&self) -> Result<Option<SnapshotReader>> {
        for info in self.list()?.into_iter().rev() {
            match SnapshotReader::open(&info.path, info.key) {
                Ok(r) => return Ok(Some(r)),
                Err(Error::BadSnapshot { file, reason }) => {
                    tracing::warn!(file = %file.display(), %reason, "zk-txnlog: skipping invalid snapshot");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Delete the snapshot at `key`, if it exists (no directory sync; callers batch that or
    /// call [`SnapshotStore::sync`]).
    pub fn remove(&self, key: u64) -> Result<()> {
        let p = self.dir.join(snapshot_name(key));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&p, e)),
            _ => Ok(()),
        }
    }

    /// `fsync` the snapshot directory (makes removals durable).
    pub fn sync(&self) -> Result<()> {
        sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }
}

/// Alignment of an `O_DIRECT` write's buffer, offset and length (the page
/// size covers every logical block size Linux disks have).
const DIRECT_ALIGN: usize = 4096;
/// Bytes an uncached writer stages before it writes them.
const DIRECT_CHUNK: usize = 4 << 20;

/// Creates (or truncates) `path` for writing, with extra open `flags`.
fn create_file(path: &Path, flags: i32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(flags)
        .open(path)
}

/// Where a [`SnapshotWriter`]'s bytes go.
#[derive(Debug)]
enum Sink {
    /// Through the page cache.
    Buffered(BufWriter<File>),
    /// Around it ([`SnapshotStore::create_uncached`]).
    Direct(DirectSink),
}

/// Staged, aligned writes at explicit offsets: every write starts at a
/// multiple of [`DIRECT_ALIGN`] and covers whole blocks, so the file may be
/// opened with `O_DIRECT`. The last partial block goes out zero-padded and the
/// file is cut to its length at the end.
#[derive(Debug)]
struct DirectSink {
    file: File,
    path: PathBuf,
    /// Opened with `O_DIRECT` (cleared if a write is refused with `EINVAL`).
    direct: bool,
    /// `DIRECT_CHUNK + DIRECT_ALIGN` bytes; the staging area starts at `start`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes staged at `buf[start..start + fill]`.
    fill: usize,
    /// The file offset of the staged bytes (a multiple of `DIRECT_CHUNK`).
    pos: u64,
    /// Where `buf` goes back when the writer is done.
    spare: SpareBuffer,
}

impl Drop for DirectSink {
    fn drop(&mut self) {
        if let Ok(mut spare) = self.spare.lock() {
            *spare = Some(std::mem::take(&mut self.buf));
        }
    }
}

impl DirectSink {
    fn create(path: &Path, spare: &SpareBuffer) -> io::Result<Self> {
        let (file, direct) = match create_file(path, libc::O_DIRECT) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (create_file(path, 0)?, false),
            r => (r?, true),
        };
        let buf = spare
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_else(|| vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN]);
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        Ok(DirectSink {
            file,
            path: path.to_path_buf(),
            direct,
            buf,
            start,
            fill: 0,
            pos: 0,
            spare: Arc::clone(spare),
        })
    }

    fn write_all(&mut self, mut b: &[u8]) -> io::Result<()> {
        while !b.is_empty() {
            let n = (DIRECT_CHUNK - self.fill).min(b.len());
            self.buf[self.start + self.fill..][..n].copy_from_slice(&b[..n]);
            self.fill += n;
            b = &b[n..];
            if self.fill == DIRECT_CHUNK {
                self.write_out(DIRECT_CHUNK)?;
                self.pos += DIRECT_CHUNK as u64;
                self.fill = 0;
            }
        }
        Ok(())
    }

    /// Writes what is staged, its last block zero-padded; it stays staged (the
    /// next chunk written rewrites those blocks).
    fn write_staged(&mut self) -> io::Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let padded = self.fill.next_multiple_of(DIRECT_ALIGN);
        self.buf[self.start + self.fill..self.start + padded].fill(0);
        self.write_out(padded)
    }

    fn write_out(&mut self, len: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let bytes = &self.buf[self.start..][..len];
        match self.file.write_all_at(bytes, self.pos) {
            // A filesystem that opens with O_DIRECT but refuses the writes:
            // the same aligned writes through the page cache.
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.file = OpenOptions::new().write(true).open(&self.path)?;
                self.direct = false;
                self.file.write_all_at(bytes, self.pos)
            }
            r => r,
        }
    }

    /// Everything on the disk, the file cut to `len` bytes.
    fn finish(mut self, len: u64) -> io::Result<()> {
        self.write_staged()?;
        self.file.set_len(len)?;
        self.file.sync_all()
    }
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Buffered(w) => w.write_all(b),
            Sink::Direct(d) => d.write_all(b),
        }
    }

    /// What was written so far on the disk: a buffered sink flushes its
    /// buffer, an uncached one its staged bytes, then fdatasync.
    fn sync(&mut self) -> io::Result<()> {
        match self {
            Sink::Buffered(w) => {
                w.flush()?;
                w.get_ref().sync_data()
            }
            Sink::Direct(d) => {
                d.write_staged()?;
                d.file.sync_data()
            }
        }
    }

    /// The early sync of `writeback_every`: what reached the file so far on
    /// the disk (an uncached sink's staged bytes wait for their chunk).
    fn writeback(&mut self) -> io::Result<()> {
        match self {
            Sink::Direct(d) => d.file.sync_data(),
            buffered => buffered.sync(),
        }
    }
}

/// Streams one snapshot to a temporary file; [`finish`](Self::finish) makes it durable and
/// visible. Dropping it unfinished deletes the temporary file.
#[derive(Debug)]
pub struct SnapshotWriter {
    out: Option<Sink>,
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    key: u64,
    crc: u32,
    len: u64,
    /// Make written bytes durable every this many bytes (0: only at `finish`).
    writeback: u64,
    /// Bytes written since the last early sync.
    unsynced: u64,
}

impl SnapshotWriter {
    /// Makes what was written so far durable (flush + fdatasync); the
    /// snapshot stays invisible until [`SnapshotWriter::finish`], which then
    /// only adds the trailer. Lets a caller write and sync a large snapshot
    /// on another thread and decide later whether to publish it (dropping
    /// the writer leaves a `.tmp` file that the next [`SnapshotStore::open`]
    /// removes).
    pub fn sync(&mut self) -> Result<()> {
        let out = self.out.as_mut().ok_or(Error::Closed)?;
        out.sync().map_err(|e| Error::io(&self.tmp, e))
    }

    /// Make what was written durable (flush + fdatasync) every `bytes` bytes while
    /// the snapshot is written, instead of only at [`SnapshotWriter::finish`]. A
    /// large snapshot left dirty in the page cache until its final fsync goes to
    /// the disk in one burst that every log sync issued meanwhile waits behind;
    /// in steps of a few MiB a log sync waits for at most one step. Extra syncs
    /// only: `finish` still fsyncs, renames and syncs the directory. 0 (the
    /// default) turns it off.
    pub fn writeback_every(&mut self, bytes: u64) {
        self.writeback = bytes;
    }

    fn raw_write(&mut self, b: &[u8]) -> Result<()> {
        let out = self.out.as_mut().ok_or(Error::Closed)?;
        out.write_all(b).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Write the trailer, fsync the file, rename it into place and fsync the directory.
    pub fn finish(mut self) -> Result<SnapshotInfo> {
        let mut trailer = Vec::with_capacity(TRAILER as usize);
        trailer.extend_from_slice(&self.len.to_le_bytes());
        trailer.extend_from_slice(&self.crc.to_le_bytes());
        trailer.extend_from_slice(&0u32.to_le_bytes());
        trailer.extend_from_slice(END_MAGIC);
        self.raw_write(&trailer)?;
        let file_len = HEAD + self.len + TRAILER;
        match self.out.take().ok_or(Error::Closed)? {
            Sink::Buffered(out) => {
                let file = out
                    .into_inner()
                    .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
                file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
            }
            Sink::Direct(d) => d.finish(file_len).map_err(|e| Error::io(&self.tmp, e))?,
        }
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        Ok(SnapshotInfo {
            key: self.key,
            path: self.path.clone(),
            file_len,
        })
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("snapshot already finished"))?;
        out.write_all(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.len += buf.len() as u64;
        self.unsynced += buf.len() as u64;
        if self.writeback > 0 && self.unsynced >= self.writeback {
            self.unsynced = 0;
            out.writeback()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(Sink::Buffered(o)) => o.flush(),
            Some(Sink::Direct(_)) | None => Ok(()),
        }
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A verified snapshot, read as a stream of its content bytes.
#[derive(Debug)]
pub struct SnapshotReader {
    key: u64,
    path: PathBuf,
    len: u64,
    inner: io::Take<BufReader<File>>,
}

impl SnapshotReader {
    fn bad(path: &Path, reason: impl Into<String>) -> Error {
        Error::BadSnapshot {
            file: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// Checks the frame of the file at `path` (header, trailer, length):
    /// the file, positioned at the content, the content's length and the
    /// crc the trailer promises for it.
    fn open_frame(path: &Path, key: u64) -> Result<(File, u64, u32)> {
        let ioe = |e| Error::io(path, e);
        let mut f = File::open(path).map_err(ioe)?;
        let file_len = f.metadata().map_err(ioe)?.len();
        if file_len < HEAD + TRAILER {
            return Err(Self::bad(path, "shorter than header and trailer"));
        }
        let mut head = [0u8; HEAD as usize];
        f.read_exact(&mut head).map_err(ioe)?;
        if &head[0..8] != MAGIC || u32_at(&head, 8) != VERSION {
            return Err(Self::bad(path, "bad magic or version"));
        }
        if u64_at(&head, 16) != key {
            return Err(Self::bad(path, "key in header differs from the name"));
        }
        let mut tr = [0u8; TRAILER as usize];
        f.seek(SeekFrom::End(-(TRAILER as i64))).map_err(ioe)?;
        f.read_exact(&mut tr).map_err(ioe)?;
        if &tr[16..24] != END_MAGIC {
            return Err(Self::bad(path, "missing trailer (unfinished write?)"));
        }
        let len = u64_at(&tr, 0);
        if HEAD.checked_add(len).and_then(|x| x.checked_add(TRAILER)) != Some(file_len) {
            return Err(Self::bad(
                path,
                "content length in trailer differs from file size",
            ));
        }
        f.seek(SeekFrom::Start(HEAD)).map_err(ioe)?;
        Ok((f, len, u32_at(&tr, 8)))
    }

    /// Verify header, trailer, length and crc of the file at `path`, then open it for reading.
    pub(crate) fn open(path: &Path, key: u64) -> Result<Self> {
        let ioe = |e| Error::io(path, e);
        let (f, len, want) = Self::open_frame(path, key)?;
        let mut r = BufReader::with_capacity(1 << 20, f).take(len);
        let mut crc = 0u32;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf).map_err(ioe)?;
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
        }
        if crc != want {
            return Err(Self::bad(path, CRC_MISMATCH));
        }
        let mut f = r.into_inner().into_inner();
        f.seek(SeekFrom::Start(HEAD)).map_err(ioe)?;
        Ok(SnapshotReader {
            key,
            path: path.to_path_buf(),
            len,
            inner: BufReader::with_capacity(1 << 20, f).take(len),
        })
    }

    /// The key the snapshot was taken at.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The snapshot file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the content in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Is the content empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Bytes a [`SnapshotStream`]'s reader thread reads at a time.
const STREAM_CHUNK: usize = 4 << 20;
/// Chunks read ahead of the consumer.
const STREAM_AHEAD: usize = 4;

/// What a [`SnapshotStream`]'s reader thread sends.
enum StreamMsg {
    /// The next bytes of content: `buf[from..to]`.
    Chunk(Vec<u8>, usize, usize),
    /// No more content: verified, a crc mismatch or a read failure.
    End(StreamEnd),
}

/// How a [`SnapshotStream`]'s pass stands.
#[derive(Debug)]
enum StreamEnd {
    /// Content is still coming.
    Open,
    /// All of it came and its crc matched.
    Verified,
    /// It did not match.
    BadCrc,
    /// Reading failed.
    Failed(io::ErrorKind, String),
}

/// A snapshot read in one pass, its content's crc checked as it streams by:
/// a thread (`zk-snap-read`) reads the file ahead in 4 MiB chunks and
/// computes the crc, so reading the disk, the crc and the consumer's work
/// overlap. Until [`finish`](Self::finish) the content is unverified: the
/// consumer must not trust what it built from it before `finish` says the
/// crc matched. Read past the content's end, a stream whose crc does not
/// match returns an `InvalidData` error.
#[derive(Debug)]
pub struct SnapshotStream {
    path: PathBuf,
    len: u64,
    rx: Receiver<StreamMsg>,
    /// Emptied buffers back to the reader thread.
    back: SyncSender<Vec<u8>>,
    /// The chunk being consumed: its unread bytes are `cur[pos..cur_end]`.
    cur: Vec<u8>,
    pos: usize,
    cur_end: usize,
    end: StreamEnd,
}

impl SnapshotStream {
    fn open(path: &Path, key: u64) -> Result<Self> {
        let (file, len, want) = SnapshotReader::open_frame(path, key)?;
        let reader = ChunkReader::open(path, file);
        let (tx, rx) = sync_channel(STREAM_AHEAD);
        let (back, back_rx) = sync_channel(STREAM_AHEAD + 2);
        std::thread::Builder::new()
            .name("zk-snap-read".into())
            .spawn(move || stream_file(reader, len, want, &tx, &back_rx))
            .map_err(|e| Error::io(path, e))?;
        Ok(SnapshotStream {
            path: path.to_path_buf(),
            len,
            rx,
            back,
            cur: Vec::new(),
            pos: 0,
            cur_end: 0,
            end: StreamEnd::Open,
        })
    }

    /// Length of the content in bytes (the caller knows the key and the
    /// file: it opened the stream by key).
    pub fn content_len(&self) -> u64 {
        self.len
    }

    /// Reads whatever content the consumer left and says whether the whole
    /// content matched its crc: [`Error::BadSnapshot`] if it did not (the
    /// snapshot is invalid, as [`SnapshotStore::newest_valid`] would have
    /// found), [`Error::Io`] if reading it failed.
    pub fn finish(mut self) -> Result<()> {
        loop {
            match io::BufRead::fill_buf(&mut self) {
                Ok([]) => return Ok(()),
                Ok(b) => {
                    let n = b.len();
                    io::BufRead::consume(&mut self, n);
                }
                Err(e) => {
                    return Err(match self.end {
                        StreamEnd::BadCrc => SnapshotReader::bad(&self.path, CRC_MISMATCH),
                        _ => Error::io(&self.path, e),
                    });
                }
            }
        }
    }

    /// The error a read past a failed end returns.
    fn end_error(&self) -> io::Error {
        match &self.end {
            StreamEnd::BadCrc => io::Error::new(io::ErrorKind::InvalidData, CRC_MISMATCH),
            StreamEnd::Failed(kind, msg) => io::Error::new(*kind, msg.clone()),
            StreamEnd::Open | StreamEnd::Verified => {
                io::Error::other("snapshot stream ended without its verdict")
            }
        }
    }
}

/// Reads a snapshot file in aligned chunks, with `O_DIRECT` where the
/// filesystem allows: a restart reads its snapshot once, and through the
/// page cache each fresh page costs more than the disk read itself on a VM
/// (see [`SnapshotStore::create_uncached`]).
struct ChunkReader {
    file: File,
    path: PathBuf,
    direct: bool,
}

impl ChunkReader {
    /// Opens `path` again with `O_DIRECT`, or keeps `buffered` (its frame's
    /// file) where that is refused.
    fn open(path: &Path, buffered: File) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(file) => ChunkReader {
                file,
                path: path.to_path_buf(),
                direct: true,
            },
            Err(_) => Self::buffered(path, buffered),
        }
    }

    fn buffered(path: &Path, file: File) -> Self {
        // A hint only, so its failure is no error.
        let _ = crate::sys::advise_sequential(&file);
        ChunkReader {
            file,
            path: path.to_path_buf(),
            direct: false,
        }
    }

    /// Fills `buf` from file offset `at` (a multiple of [`DIRECT_ALIGN`]), short
    /// only at the end of the file; the bytes read.
    fn read_at(&mut self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], at + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A filesystem that opens with O_DIRECT but refuses the reads.
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    let file = File::open(&self.path)?;
                    *self = Self::buffered(&self.path.clone(), file);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// The reader thread of a [`SnapshotStream`]: the `len` content bytes of the
/// file (after its header) in chunks, then the crc's verdict. Ends early
/// when the stream is dropped.
fn stream_file(
    mut file: ChunkReader,
    len: u64,
    want: u32,
    tx: &SyncSender<StreamMsg>,
    back: &Receiver<Vec<u8>>,
) {
    let content_end = HEAD + len;
    let mut at = 0u64;
    let mut crc = 0u32;
    while at < content_end {
        // A buffer the consumer is done with (its pages already mapped) if
        // there is one; its chunk starts aligned.
        let mut buf = back
            .try_recv()
            .unwrap_or_else(|_| vec![0u8; STREAM_CHUNK + DIRECT_ALIGN]);
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        let n = match file.read_at(&mut buf[start..start + STREAM_CHUNK], at) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot shorter than its trailer says",
            )),
            r => r,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(StreamMsg::End(StreamEnd::Failed(e.kind(), e.to_string())));
                return;
            }
        };
        // The content's part of the chunk: past the header, before the trailer.
        let from = start + HEAD.saturating_sub(at).min(n as u64) as usize;
        let to = start + (content_end - at).min(n as u64) as usize;
        crc = crc32c::crc32c_append(crc, &buf[from..to]);
        at += n as u64;
        if tx.send(StreamMsg::Chunk(buf, from, to)).is_err() {
            return;
        }
    }
    let verdict = if crc == want {
        StreamEnd::Verified
    } else {
        StreamEnd::BadCrc
    };
    let _ = tx.send(StreamMsg::End(verdict));
}

impl io::BufRead for SnapshotStream {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur_end {
            match self.end {
                StreamEnd::Open => {}
                StreamEnd::Verified => return Ok(&[]),
                StreamEnd::BadCrc | StreamEnd::Failed(..) => return Err(self.end_error()),
            }
            let msg = self.rx.recv().unwrap_or_else(|_| {
                StreamMsg::End(StreamEnd::Failed(
                    io::ErrorKind::Other,
                    "snapshot reader thread ended".into(),
                ))
            });
            match msg {
                StreamMsg::Chunk(buf, from, to) => {
                    let done = std::mem::replace(&mut self.cur, buf);
                    if !done.is_empty() {
                        let _ = self.back.try_send(done);
                    }
                    (self.pos, self.cur_end) = (from, to);
                }
                StreamMsg::End(end) => self.end = end,
            }
        }
        Ok(&self.cur[self.pos..self.cur_end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur_end);
    }
}

impl Read for SnapshotStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = io::BufRead::fill_buf(self)?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}
