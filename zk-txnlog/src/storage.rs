//! The small storage trait (DESIGN.md §3) and its three implementations: mmap files, pwrite
//! files and the in-memory crash-image disk used by tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::spare::{SPARE_NAME, STALE_NAME, Spares};
use crate::sys::{self, MappedFile};

/// One file of the log: fixed length (preallocated), positional reads and writes, range sync.
pub(crate) trait SegmentFile: Send + Sync {
    fn len(&self) -> u64;
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()>;
    /// Make `[off, off + len)` durable (msync / fdatasync).
    fn sync(&self, off: u64, len: u64) -> io::Result<()>;
}

/// A directory of segment files.
pub(crate) trait Storage: Send + Sync {
    /// The directory, for error messages.
    fn dir(&self) -> &Path;
    fn list(&self) -> io::Result<Vec<String>>;
    /// Create `name` (must not exist) with `len` bytes reserved and zeroed, `initial` written at
    /// offset 0, and the file's data synced. The directory entry is not yet durable.
    fn create(&self, name: &str, len: u64, initial: &[u8]) -> io::Result<Arc<dyn SegmentFile>>;
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>>;
    fn remove(&self, name: &str) -> io::Result<()>;
    fn sync_dir(&self) -> io::Result<()>;
    /// For a writable open, after recovery: remove a spare segment left by an earlier run (never
    /// trusted) and, with `Some(len)`, start preparing zero-filled spares of `len` bytes in the
    /// background for `create` to use. Returns the path of a stale spare it removed. Never
    /// fails: spares are only a speed-up (problems are logged).
    fn start_spares(&self, _len: Option<u64>) -> Option<PathBuf> {
        None
    }
    /// A segment was just created (the roll is complete): prepare the next spare if there is
    /// none. Called after the roll's own syncs, so the helper's writes do not delay them.
    /// `sealed`: the segment the roll sealed (synced), whose cached pages may be dropped.
    fn request_spare(&self, _sealed: Option<&Path>) {}
    /// Stop preparing spares (a bounded wait) and remove an unused one. Idempotent.
    fn stop_spares(&self) {}
    /// The spare helper, if one runs. (Tests.)
    #[cfg(test)]
    fn spares(&self) -> Option<&Spares> {
        None
    }
}

/// Which storage implementation a [`Log`](crate::Log) uses.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Backend {
    /// Segments mapped shared; appends are copies into the mapping, syncs are `msync`.
    #[default]
    Mmap,
    /// `pwrite` + `fdatasync`, reads with `pread`.
    Pwrite,
    /// An in-memory disk that can produce a power-cut image: for tests.
    Memory(MemDisk),
}

// ---------------------------------------------------------------------------------------------
// Real files.

pub(crate) struct FileStorage {
    dir: PathBuf,
    mmap: bool,
    read_only: bool,
    /// The zero-filled spare segment's helper (writable opens with `zero_fill_ahead`).
    spares: OnceLock<Spares>,
}

impl FileStorage {
    pub(crate) fn new(dir: &Path, mmap: bool, read_only: bool) -> Self {
        FileStorage {
            dir: dir.to_path_buf(),
            mmap,
            read_only,
            spares: OnceLock::new(),
        }
    }

    /// Turn the ready spare into segment `name`: rename it (refusing to replace an existing
    /// file), write `initial` at 0, sync its data. `Ok(None)` if there was no spare or it could
    /// not be renamed (the caller falls back to creating the file).
    fn create_from_spare(
        &self,
        spares: &Spares,
        name: &str,
        initial: &[u8],
    ) -> io::Result<Option<File>> {
        let Some(file) = spares.take() else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        // `rename` would silently replace an existing file; `create` must not. The directory
        // is ours alone (LOCK), so checking first is enough.
        let renamed = match fs::symlink_metadata(&path) {
            Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(spares.path(), &path),
            Err(e) => Err(e),
        };
        if let Err(e) = renamed {
            if e.kind() != io::ErrorKind::AlreadyExists {
                tracing::warn!(file = %spares.path().display(), error = %e,
                    "zk-txnlog: could not rename the spare segment; preallocating instead");
            }
            drop(file);
            let _ = fs::remove_file(spares.path());
            return Ok(None);
        }
        let res = file
            .write_all_at(initial, 0)
            .and_then(|()| file.sync_data());
        if let Err(e) = res {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(Some(file))
    }

    fn wrap(&self, file: File) -> io::Result<Arc<dyn SegmentFile>> {
        if self.mmap && !self.read_only {
            let map = MappedFile::map(&file)?;
            Ok(Arc::new(MmapSegment { map, file }))
        } else {
            let len = file.metadata()?.len();
            Ok(Arc::new(PwriteSegment { file, len }))
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FileStorage {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str, len: u64, initial: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        if let Some(spares) = self.spares.get()
            && len > 0
            && len == spares.len()
            && let Some(file) = self.create_from_spare(spares, name, initial)?
        {
            return self.wrap(file);
        }
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let res = (|| {
            if len > 0 {
                sys::preallocate(&file, len)?;
            }
            file.write_all_at(initial, 0)?;
            file.sync_data()
        })();
        if let Err(e) = res {
            // Do not leave a half-made file behind (e.g. after ENOSPC).
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.wrap(file)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(!self.read_only)
            .open(self.dir.join(name))?;
        self.wrap(file)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        sync_dir(&self.dir)
    }

    fn start_spares(&self, len: Option<u64>) -> Option<PathBuf> {
        if self.read_only {
            return None;
        }
        let stale = self.dir.join(SPARE_NAME);
        let trash = self.dir.join(STALE_NAME);
        // Moved aside at once (a rename; the name parses as nothing, and replaces one left by
        // a crash since), deleted by the helper thread, or here without one.
        let removed = match fs::rename(&stale, &trash) {
            Ok(()) => {
                tracing::info!(file = %stale.display(), "zk-txnlog: removed a stale spare segment");
                Some(stale)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            // Harmless where it is (nothing reads it; the helper recreates the file).
            Err(e) => {
                tracing::warn!(file = %stale.display(), error = %e,
                    "zk-txnlog: could not remove a stale spare segment");
                None
            }
        };
        let trash = trash.exists().then_some(trash);
        let mut trash_left = trash.clone();
        if let Some(len) = len.filter(|&l| l > 0)
            && self.spares.get().is_none()
        {
            match Spares::start(&self.dir, len, trash) {
                Ok(s) => {
                    let _ = self.spares.set(s);
                    trash_left = None;
                }
                // Only a speed-up: without the helper every segment is fallocated.
                Err(e) => tracing::warn!(error = %e,
                    "zk-txnlog: could not start the spare segment helper thread"),
            }
        }
        if let Some(t) = trash_left
            && let Err(e) = fs::remove_file(&t)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %t.display(), error = %e,
                "zk-txnlog: could not remove a stale spare segment");
        }
        removed
    }

    fn request_spare(&self, sealed: Option<&Path>) {
        if let Some(s) = self.spares.get() {
            s.request(sealed);
        }
    }

    fn stop_spares(&self) {
        if let Some(s) = self.spares.get() {
            s.stop();
        }
    }

    #[cfg(test)]
    fn spares(&self) -> Option<&Spares> {
        self.spares.get()
    }
}

struct MmapSegment {
    map: MappedFile,
    #[allow(dead_code)] // keeps the descriptor open for the life of the mapping
    file: File,
}

impl SegmentFile for MmapSegment {
    fn len(&self) -> u64 {
        self.map.len() as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.map.read_at(off, buf)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.map.write_at(off, data)
    }
    fn sync(&self, off: u64, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("sync range too large"))?;
        self.map.sync(off, len)
    }
}

struct PwriteSegment {
    file: File,
    len: u64,
}

impl PwriteSegment {
    fn check(&self, off: u64, len: usize) -> io::Result<()> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "access outside the segment",
            )),
        }
    }
}

impl SegmentFile for PwriteSegment {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(off, buf.len())?;
        self.file.read_exact_at(buf, off)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.check(off, data.len())?;
        self.file.write_all_at(data, off)
    }
    fn sync(&self, _off: u64, _len: u64) -> io::Result<()> {
        self.file.sync_data()
    }
}

// ---------------------------------------------------------------------------------------------
// The in-memory crash-image disk.

const SECTOR: usize = 512;

/// An in-memory "disk" for tests: it remembers what a power cut would leave and can inject
/// faults.
///
/// Every file keeps its current bytes and its durable bytes; a `sync` of a range makes that
/// range durable. Directory changes (create, remove) become durable on a directory sync.
/// [`MemDisk::crash`] returns the disk a power cut would leave: each 512-byte sector written
/// since its last sync independently holds the old or the new bytes, and each directory change
/// not yet synced may or may not have happened. Clones share the same disk.
#[derive(Clone, Default)]
pub struct MemDisk {
    inner: Arc<Mutex<MemState>>,
}

impl std::fmt::Debug for MemDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("MemDisk")
            .field("files", &st.names.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Default, Clone)]
struct MemState {
    /// Current directory: name -> file id.
    names: BTreeMap<String, u64>,
    /// Directory as of the last directory sync.
    durable_names: BTreeMap<String, u64>,
    files: BTreeMap<u64, MemFile>,
    next_id: u64,
    /// Fault injection: fail the write (sync) when this counter reaches zero.
    writes_until_fault: Option<u64>,
    syncs_until_fault: Option<u64>,
    capacity: Option<u64>,
}

#[derive(Default, Clone)]
struct MemFile {
    data: Vec<u8>,
    durable: Vec<u8>,
    dirty: BTreeSet<usize>,
}

impl MemState {
    fn used(&self) -> u64 {
        let live: BTreeSet<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        live.iter().map(|id| self.files[id].data.len() as u64).sum()
    }

    fn count_write(&mut self) -> io::Result<()> {
        tick(&mut self.writes_until_fault, "injected write error")
    }

    fn count_sync(&mut self) -> io::Result<()> {
        tick(&mut self.syncs_until_fault, "injected sync error")
    }
}

fn tick(counter: &mut Option<u64>, what: &str) -> io::Result<()> {
    if let Some(n) = counter {
        if *n == 0 {
            return Err(io::Error::other(what.to_string()));
        }
        *n -= 1;
    }
    Ok(())
}

/// A small deterministic generator (xorshift64*), so crash images are reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn coin(&mut self) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63) == 1
    }
}

impl MemDisk {
    /// A new, empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock (a failing test) must not hide the disk from the rest
        // of the test.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk a power cut at this instant would leave, chosen by `seed`. The image is an
    /// independent disk without fault injection.
    pub fn crash(&self, seed: u64) -> MemDisk {
        let st = self.lock();
        let mut rng = Rng::new(seed);
        let mut out = MemState {
            next_id: st.next_id,
            ..MemState::default()
        };
        let all: BTreeSet<&String> = st.names.keys().chain(st.durable_names.keys()).collect();
        for name in all {
            let cur = st.names.get(name);
            let dur = st.durable_names.get(name);
            let pick = if cur == dur || rng.coin() { cur } else { dur };
            let Some(&id) = pick else { continue };
            let f = &st.files[&id];
            let mut data = f.durable.clone();
            for &s in &f.dirty {
                if rng.coin() {
                    let a = s * SECTOR;
                    let b = (a + SECTOR).min(data.len());
                    data[a..b].copy_from_slice(&f.data[a..b]);
                }
            }
            out.names.insert(name.clone(), id);
            out.durable_names.insert(name.clone(), id);
            out.files.insert(
                id,
                MemFile {
                    durable: data.clone(),
                    data,
                    dirty: BTreeSet::new(),
                },
            );
        }
        MemDisk {
            inner: Arc::new(Mutex::new(out)),
        }
    }

    /// The image if every write reached the disk (a clean shutdown), as an independent disk.
    pub fn snapshot(&self) -> MemDisk {
        let mut st = self.lock().clone();
        st.durable_names = st.names.clone();
        for f in st.files.values_mut() {
            f.durable = f.data.clone();
            f.dirty.clear();
        }
        st.writes_until_fault = None;
        st.syncs_until_fault = None;
        MemDisk {
            inner: Arc::new(Mutex::new(st)),
        }
    }

    /// Fail the `n`th write from now (0 = the next one) and every one after it, with EIO.
    pub fn fail_write_after(&self, n: u64) {
        self.lock().writes_until_fault = Some(n);
    }

    /// Fail the `n`th sync (file or directory) from now (0 = the next one) and every later one.
    pub fn fail_sync_after(&self, n: u64) {
        self.lock().syncs_until_fault = Some(n);
    }

    /// Limit the bytes of all files together: a creation beyond it fails with ENOSPC.
    pub fn set_capacity(&self, bytes: u64) {
        self.lock().capacity = Some(bytes);
    }

    /// Names of the files currently in the directory.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().names.keys().cloned().collect()
    }

    /// Current bytes of file `name`, if it exists.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let id = st.names.get(name)?;
        Some(st.files[id].data.clone())
    }

    /// Overwrite bytes of file `name` at `off` and make them durable at once (to model damage
    /// such as bit rot). Returns false if the file does not exist or the range is outside it.
    pub fn corrupt(&self, name: &str, off: usize, bytes: &[u8]) -> bool {
        let mut st = self.lock();
        let Some(&id) = st.names.get(name) else {
            return false;
        };
        let f = st.files.get_mut(&id).expect("named file exists");
        if off + bytes.len() > f.data.len() {
            return false;
        }
        f.data[off..off + bytes.len()].copy_from_slice(bytes);
        f.durable[off..off + bytes.len()].copy_from_slice(bytes);
        true
    }

    /// Create or replace file `name` with `bytes`, durably (to craft damaged images).
    pub fn put_file(&self, name: &str, bytes: &[u8]) {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.files.insert(
            id,
            MemFile {
                data: bytes.to_vec(),
                durable: bytes.to_vec(),
                dirty: BTreeSet::new(),
            },
        );
        st.names.insert(name.to_string(), id);
        st.durable_names.insert(name.to_string(), id);
    }

    /// Remove file `name` durably (to model a lost file).
    pub fn delete(&self, name: &str) {
        let mut st = self.lock();
        st.names.remove(name);
        st.durable_names.remove(name);
    }

    pub(crate) fn storage(&self) -> MemStorage {
        MemStorage {
            disk: self.clone(),
            dir: PathBuf::from("<memory>"),
        }
    }
}

pub(crate) struct MemStorage {
    disk: MemDisk,
    dir: PathBuf,
}

impl Storage for MemStorage {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.disk.file_names())
    }

    fn create(&self, name: &str, len: u64, initial: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let mut st = self.disk.lock();
        if st.names.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("too large"))?;
        if let Some(cap) = st.capacity
            && st.used() + len as u64 > cap
        {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        st.count_write()?;
        if let Err(e) = st.count_sync() {
            // Like a process that dies after `open(O_CREAT)` and before preallocating: an empty
            // file whose directory entry is not durable yet.
            let id = st.next_id;
            st.next_id += 1;
            st.files.insert(id, MemFile::default());
            st.names.insert(name.to_string(), id);
            return Err(e);
        }
        let mut data = vec![0u8; len.max(initial.len())];
        data[..initial.len()].copy_from_slice(initial);
        let id = st.next_id;
        st.next_id += 1;
        st.files.insert(
            id,
            MemFile {
                durable: data.clone(),
                data,
                dirty: BTreeSet::new(),
            },
        );
        st.names.insert(name.to_string(), id);
        Ok(Arc::new(MemSegment {
            disk: self.disk.clone(),
            id,
            len: len as u64,
        }))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let st = self.disk.lock();
        let id = *st
            .names
            .get(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let len = st.files[&id].data.len() as u64;
        Ok(Arc::new(MemSegment {
            disk: self.disk.clone(),
            id,
            len,
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        // File contents stay reachable for open handles (like an unlinked inode); `crash`
        // copies only named files.
        self.disk.lock().names.remove(name);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut st = self.disk.lock();
        st.count_sync()?;
        st.durable_names = st.names.clone();
        Ok(())
    }
}

struct MemSegment {
    disk: MemDisk,
    id: u64,
    len: u64,
}

impl MemSegment {
    fn range(&self, off: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
        let a = usize::try_from(off).map_err(|_| io::Error::other("offset"))?;
        match a.checked_add(len) {
            Some(b) if b as u64 <= self.len => Ok(a..b),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "access outside the segment",
            )),
        }
    }
}

impl SegmentFile for MemSegment {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let r = self.range(off, buf.len())?;
        let st = self.disk.lock();
        let f = st
            .files
            .get(&self.id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        buf.copy_from_slice(&f.data[r]);
        Ok(())
    }

    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        let r = self.range(off, data.len())?;
        let mut st = self.disk.lock();
        st.count_write()?;
        let Some(f) = st.files.get_mut(&self.id) else {
            // Removed from the directory and collected: writes go nowhere, like an unlinked
            // inode that nobody will see again.
            return Ok(());
        };
        if r.is_empty() {
            return Ok(());
        }
        f.data[r.clone()].copy_from_slice(data);
        for s in r.start / SECTOR..=(r.end - 1) / SECTOR {
            f.dirty.insert(s);
        }
        Ok(())
    }

    fn sync(&self, off: u64, len: u64) -> io::Result<()> {
        let mut st = self.disk.lock();
        st.count_sync()?;
        let Some(f) = st.files.get_mut(&self.id) else {
            return Ok(());
        };
        let a = usize::try_from(off).unwrap_or(usize::MAX) / SECTOR;
        let b = usize::try_from(off.saturating_add(len))
            .unwrap_or(usize::MAX)
            .div_ceil(SECTOR);
        let synced: Vec<usize> = f.dirty.range(a..b).copied().collect();
        for s in synced {
            let x = s * SECTOR;
            let y = (x + SECTOR).min(f.data.len());
            let (data, durable) = (&f.data, &mut f.durable);
            durable[x..y].copy_from_slice(&data[x..y]);
            f.dirty.remove(&s);
        }
        Ok(())
    }
}
