//! Zero-filled spare segments, prepared ahead on a helper thread (DESIGN.md §2, "Preallocation").
//!
//! `fallocate` leaves *unwritten* extents: an `fdatasync` after writing into blocks not written
//! before must also commit their extent conversion to the filesystem journal. A segment whose
//! blocks were written with zeros beforehand has none. Writing 64 MiB of zeros takes far too
//! long for the roll (it runs under the log's lock), so the helper prepares the next segment
//! while the current one fills: a file [`SPARE_NAME`] in the log directory, zeroed over its
//! full length in paced 1 MiB steps and synced. `FileStorage::create` renames it into place
//! when it is ready and falls back to `fallocate` when it is not; it never waits for it. The
//! log asks for the next spare once a roll is complete, so the helper's writes do not land on
//! the roll's own syncs.
//!
//! The spare is never trusted across runs: a writable open removes a left-over one before the
//! helper starts, and a clean shutdown removes an unused one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys;

/// Name of the spare in the log directory. It cannot parse as a segment (`log.<hex>`, the hex
/// part must be all hex digits), a snapshot or its temp file (`snapshot.*`), or an intent
/// (`truncate.<hex>`), so listings, recovery, purge and zk-inspect ignore it.
pub(crate) const SPARE_NAME: &str = "log.spare.tmp";
/// A stale spare renamed out of the way at open, for the helper to delete (unlinking a 64 MiB
/// file took a restart 10-25 ms).
pub(crate) const STALE_NAME: &str = "log.spare.stale.tmp";
/// The helper starts the first spare only this long after the log opened: a restarted
/// server's first syncs (an election, a follower's sync with its leader) then do not queue
/// behind its zeros. A roll before that preallocates with fallocate, as always without a spare.
const FIRST_SPARE_DELAY: Duration = Duration::from_secs(1);

/// Zeros are written in chunks of this size...
const CHUNK: usize = 1 << 20;
/// ... with an `fdatasync` after every this many bytes, so the helper never holds more than
/// this much dirty page cache and a log `fdatasync` issued meanwhile waits behind at most one
/// such step of writeback.
const SYNC_EVERY: u64 = 1 << 20;
/// Longest rest between two steps.
const MAX_REST: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    /// A zero-filled, synced spare at `path`, ready to be renamed into place.
    ready: Option<File>,
    /// A (next) spare was asked for: at start, and by the log after each roll.
    wanted: bool,
    /// A segment the last roll sealed, whose pages the helper drops from the page cache
    /// before it writes the next spare's zeros (see [`Spares::request`]).
    sealed: Option<PathBuf>,
    /// Tests: hold the helper before it starts a spare.
    #[cfg(test)]
    paused: bool,
    /// Tests: fail the preparation with EIO after this many chunks.
    #[cfg(test)]
    fail_after_chunks: Option<u64>,
    /// Tests: preparations that failed.
    #[cfg(test)]
    failures: u64,
}

impl State {
    fn should_prepare(&self) -> bool {
        #[cfg(test)]
        if self.paused {
            return false;
        }
        self.wanted && self.ready.is_none()
    }
}

struct Inner {
    path: PathBuf,
    len: u64,
    stop: AtomicBool,
    state: Mutex<State>,
    cv: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The helper and its one spare.
pub(crate) struct Spares {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spares {
    /// Start the helper thread on `dir`; it first deletes `trash` (a stale spare moved aside)
    /// if given, then prepares a spare of `len` bytes after [`FIRST_SPARE_DELAY`].
    pub(crate) fn start(dir: &Path, len: u64, trash: Option<PathBuf>) -> io::Result<Spares> {
        let inner = Arc::new(Inner {
            path: dir.join(SPARE_NAME),
            len,
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                wanted: true,
                ..State::default()
            }),
            cv: Condvar::new(),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("zk-txnlog-prep".into())
            .spawn(move || {
                if let Some(t) = trash {
                    remove(&t);
                }
                rest(&i2, first_spare_delay());
                helper(&i2)
            })?;
        Ok(Spares {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Size of the spares this helper prepares.
    pub(crate) fn len(&self) -> u64 {
        self.inner.len
    }

    /// Where the spare lives.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The ready spare, if there is one; never waits. The caller owns the file at
    /// [`path`](Self::path) until the next [`request`](Self::request), which comes only after
    /// the file was renamed away or removed (the log asks once its roll is complete).
    pub(crate) fn take(&self) -> Option<File> {
        let mut st = self.inner.lock();
        // Not before the caller's `request`: the helper would recreate the file at `path`
        // while the caller still renames it.
        st.wanted = false;
        st.ready.take()
    }

    /// Is a spare ready? (Tests.)
    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.inner.lock().ready.is_some()
    }

    /// Tests: hold the helper before it starts the next spare (one under way finishes).
    #[cfg(test)]
    pub(crate) fn pause(&self, on: bool) {
        self.inner.lock().paused = on;
        self.inner.cv.notify_all();
    }

    /// Tests: the next preparation fails with EIO after `chunks` chunks were written.
    #[cfg(test)]
    pub(crate) fn fail_after_chunks(&self, chunks: u64) {
        self.inner.lock().fail_after_chunks = Some(chunks);
    }

    /// Tests: how many preparations failed.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u64 {
        self.inner.lock().failures
    }

    /// Ask for the next spare (no-op while one is ready or being prepared). `sealed`: the
    /// segment the roll just sealed. The helper first drops its pages from the page cache: they
    /// are all written back (the seal was synced), the log never reads them while it runs, and
    /// the spare's zeros then land in memory the kernel just freed. Zeros written into pages
    /// the system never touched cost far more: 64 MiB took 0.55 s on the 2-core VM this was
    /// measured on (each first touch of guest memory faults in the hypervisor) against 30 ms
    /// into freshly freed pages, and under a sustained write load that was up to a tenth of
    /// the machine's CPU (BENCH.md).
    pub(crate) fn request(&self, sealed: Option<&Path>) {
        let mut st = self.inner.lock();
        st.wanted = true;
        if let Some(p) = sealed {
            st.sealed = Some(p.to_path_buf());
        }
        drop(st);
        self.inner.cv.notify_all();
    }

    /// Stop the helper: it finishes at most one chunk (and one sync step), removes an unused
    /// or partial spare, and exits. Idempotent.
    pub(crate) fn stop(&self) {
        self.inner.stop.store(true, Ordering::Release);
        drop(self.inner.lock());
        self.inner.cv.notify_all();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.stop();
    }
}

fn helper(inner: &Inner) {
    loop {
        {
            let mut st = inner.lock();
            while !inner.stop.load(Ordering::Acquire) && !st.should_prepare() && st.sealed.is_none()
            {
                st = inner.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if inner.stop.load(Ordering::Acquire) {
                break;
            }
            let sealed = st.sealed.take();
            let prepare = st.should_prepare();
            if prepare {
                st.wanted = false;
            }
            drop(st);
            if let Some(p) = sealed {
                drop_cached(&p);
            }
            if !prepare {
                continue;
            }
        }
        match prepare(inner) {
            Ok(Some(file)) => {
                inner.lock().ready = Some(file);
                tracing::debug!(file = %inner.path.display(), "zk-txnlog: spare segment ready");
            }
            Ok(None) => {
                remove(&inner.path);
                break;
            }
            Err(e) => {
                // Not the log's failure: the next roll falls back to fallocate, which reports
                // the real error if there is one (ENOSPC). Retried at the next roll's request.
                tracing::warn!(
                    file = %inner.path.display(),
                    error = %e,
                    "zk-txnlog: could not prepare a zero-filled spare segment; the next roll \
                     preallocates with fallocate"
                );
                remove(&inner.path);
                #[cfg(test)]
                {
                    inner.lock().failures += 1;
                }
            }
        }
    }
    if inner.lock().ready.take().is_some() {
        remove(&inner.path);
    }
}

/// Drop a sealed segment's pages from the page cache (only a hint: failures are logged).
fn drop_cached(path: &Path) {
    let res = File::open(path).and_then(|f| sys::drop_cached(&f));
    match res {
        Ok(()) => {}
        // Purged meanwhile: nothing left to drop.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::debug!(file = %path.display(), error = %e,
            "zk-txnlog: could not drop a sealed segment's pages from the page cache"),
    }
}

fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %path.display(), error = %e,
            "zk-txnlog: could not remove the spare segment"),
    }
}

/// Create the spare and write zeros over all of it, syncing every [`SYNC_EVERY`] bytes and
/// then resting as long as that step took (at most [`MAX_REST`]), so that the log's own syncs
/// find the device idle at least half the time. `Ok(None)` if asked to stop meanwhile (the
/// partial file is the caller's to remove).
fn prepare(inner: &Inner) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&inner.path)?;
    // Reserve the blocks first: a full disk fails here at once, and the file gets one
    // contiguous allocation. The zeros below turn the unwritten extents into written ones.
    sys::reserve(&file, inner.len)?;
    let zeros = vec![0u8; CHUNK];
    #[cfg(test)]
    let mut fail_in = inner.lock().fail_after_chunks.take();
    let (sync_every, pace) = tuning();
    let (mut at, mut unsynced) = (0u64, 0u64);
    let mut step_start = Instant::now();
    while at < inner.len {
        if inner.stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        #[cfg(test)]
        match &mut fail_in {
            Some(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Some(n) => *n -= 1,
            None => {}
        }
        let n = (inner.len - at).min(CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        unsynced += n as u64;
        if unsynced >= sync_every && at < inner.len {
            file.sync_data()?;
            unsynced = 0;
            if pace {
                rest(inner, step_start.elapsed().min(MAX_REST));
            }
            step_start = Instant::now();
        }
    }
    file.sync_data()?;
    Ok(Some(file))
}

/// Sleep for `d` unless asked to stop.
fn rest(inner: &Inner, d: Duration) {
    let deadline = Instant::now() + d;
    let mut st = inner.lock();
    while !inner.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        st = inner
            .cv
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

#[cfg(not(test))]
fn tuning() -> (u64, bool) {
    (SYNC_EVERY, true)
}

#[cfg(not(test))]
fn first_spare_delay() -> Duration {
    FIRST_SPARE_DELAY
}

/// Unit tests wait for spares: none of the delay.
#[cfg(test)]
fn first_spare_delay() -> Duration {
    let _ = FIRST_SPARE_DELAY;
    Duration::ZERO
}

/// Tests and probes: `ZK_TXNLOG_SPARE_STEP_KIB`, `ZK_TXNLOG_SPARE_PACE=0`.
#[cfg(test)]
fn tuning() -> (u64, bool) {
    let step = std::env::var("ZK_TXNLOG_SPARE_STEP_KIB")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(SYNC_EVERY, |k| k << 10);
    let pace = std::env::var("ZK_TXNLOG_SPARE_PACE").map_or(true, |v| v != "0");
    (step, pace)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::storage::{FileStorage, Storage};
    use crate::{Backend, Log, Options, SnapshotStore};

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn ready(sp: &Spares) {
        wait_for("a ready spare", || sp.is_ready());
    }

    fn ino(p: &Path) -> u64 {
        fs::metadata(p).unwrap().ino()
    }

    /// `initial` followed by zeros up to `len`, as the file and as the segment reads it.
    fn assert_header_then_zeros(
        path: &Path,
        seg: &dyn crate::storage::SegmentFile,
        initial: &[u8],
        len: u64,
    ) {
        let bytes = fs::read(path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(&bytes[..initial.len()], initial);
        assert!(bytes[initial.len()..].iter().all(|&b| b == 0), "zero tail");
        assert_eq!(seg.len(), len);
        let mut back = vec![1u8; len as usize];
        seg.read_at(0, &mut back).unwrap();
        assert_eq!(back, bytes);
    }

    /// Two sync steps and a partial chunk.
    const LEN: u64 = (8 << 20) + 4096 + 512;

    #[test]
    fn create_takes_a_ready_spare_and_falls_back_without_one() {
        for mmap in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let spare = dir.path().join(SPARE_NAME);
            // A stale spare (garbage) is removed, and never shows through.
            fs::write(&spare, vec![0xABu8; 100_000]).unwrap();
            let st = FileStorage::new(dir.path(), mmap, false);
            assert_eq!(st.start_spares(Some(LEN)), Some(spare.clone()));
            let sp = st.spares().unwrap();
            ready(sp);
            assert_eq!(fs::metadata(&spare).unwrap().len(), LEN);
            let spare_ino = ino(&spare);
            // Other sizes (the truncate intent is 0 bytes) never use it.
            st.create("truncate.5", 0, &[]).unwrap();
            assert!(sp.is_ready() && ino(&spare) == spare_ino);

            // With a spare ready: it becomes the segment.
            sp.pause(true);
            let head: Vec<u8> = (0..64u8).map(|i| i | 0x80).collect();
            let f = st.create("log.1", LEN, &head).unwrap();
            assert_eq!(ino(&dir.path().join("log.1")), spare_ino);
            assert!(!spare.exists(), "renamed away");
            assert_header_then_zeros(&dir.path().join("log.1"), f.as_ref(), &head, LEN);
            f.write_at(100, b"appended").unwrap();

            // None ready (the helper is held): fallocate, same contents, no waiting.
            assert!(!sp.is_ready());
            let f2 = st.create("log.2", LEN, &head).unwrap();
            assert!(!spare.exists());
            assert_header_then_zeros(&dir.path().join("log.2"), f2.as_ref(), &head, LEN);

            // Never replaces an existing file; the spare it took is dropped, not leaked.
            sp.pause(false);
            st.request_spare(None);
            ready(sp);
            let err = st.create("log.1", LEN, &head).err().expect("exists");
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            let mut b = [0u8; 8];
            f.read_at(100, &mut b).unwrap();
            assert_eq!(&b, b"appended");

            // The next one comes from a fresh spare again.
            st.request_spare(None);
            ready(sp);
            let spare_ino = ino(&spare);
            let f3 = st.create("log.3", LEN, &head).unwrap();
            assert_eq!(ino(&dir.path().join("log.3")), spare_ino);
            assert_header_then_zeros(&dir.path().join("log.3"), f3.as_ref(), &head, LEN);

            // Shutdown removes an unused spare.
            st.request_spare(None);
            ready(sp);
            st.stop_spares();
            assert!(!spare.exists());
            st.stop_spares();
        }
    }

    #[test]
    fn a_roll_drops_the_sealed_segments_pages_before_the_next_spare() {
        let dir = tempfile::tempdir().unwrap();
        let st = FileStorage::new(dir.path(), false, false);
        st.start_spares(Some(LEN));
        let sp = st.spares().unwrap();
        ready(sp);
        let seg = st.create("log.1", LEN, &[7u8; 64]).unwrap();
        seg.write_at(4096, &vec![9u8; 1 << 20]).unwrap();
        seg.sync(0, LEN).unwrap();
        let path = dir.path().join("log.1");
        let cached = || sys::cached_pages(&File::open(&path).unwrap()).unwrap();
        assert!(cached() > 0, "written through the page cache");
        // A request without a sealed segment leaves the cache alone...
        st.request_spare(None);
        ready(sp);
        assert!(cached() > 0);
        // ... one naming it drops its pages (all clean: synced), while the data stays.
        st.request_spare(Some(&path));
        wait_for("the sealed segment's pages dropped", || cached() == 0);
        let mut b = [0u8; 4];
        seg.read_at(4096, &mut b).unwrap();
        assert_eq!(b, [9u8; 4]);
        // A segment purged meanwhile is no error; the helper goes on preparing spares.
        let gone = dir.path().join("log.gone");
        st.request_spare(Some(&gone));
        let _ = st.create("log.2", LEN, &[7u8; 64]).unwrap();
        st.request_spare(Some(&gone));
        ready(sp);
        st.stop_spares();
    }

    #[test]
    fn read_only_storage_never_touches_a_spare() {
        let dir = tempfile::tempdir().unwrap();
        let spare = dir.path().join(SPARE_NAME);
        fs::write(&spare, b"left by a crash").unwrap();
        let st = FileStorage::new(dir.path(), false, true);
        assert_eq!(st.start_spares(Some(LEN)), None);
        assert!(st.spares().is_none());
        assert_eq!(fs::read(&spare).unwrap(), b"left by a crash");
    }

    fn opts(backend: Backend) -> Options {
        Options::default()
            .backend(backend)
            .segment_bytes((1 << 20) + (64 << 10))
            .max_record_bytes(4000)
            .max_unsynced_bytes(64 << 10)
    }

    fn payload(k: u64) -> Vec<u8> {
        format!("record {k} ")
            .repeat(1 + (k % 50) as usize)
            .into_bytes()
    }

    fn append_durably(log: &Log, keys: std::ops::RangeInclusive<u64>) {
        let mut last = None;
        for k in keys {
            last = Some(log.append(k, &payload(k)).unwrap());
        }
        last.unwrap().wait().unwrap();
    }

    #[test]
    fn rolls_with_and_without_a_spare_and_after_a_helper_error() {
        for backend in [Backend::Mmap, Backend::Pwrite] {
            let dir = tempfile::tempdir().unwrap();
            let spare = dir.path().join(SPARE_NAME);
            let seg = |k: u64| dir.path().join(crate::format::segment_name(k));
            let log = Log::open(dir.path(), opts(backend.clone())).unwrap();
            let sp = log.storage().spares().expect("helper runs");
            ready(sp);
            // 1: the first segment from the spare prepared at open.
            sp.pause(true);
            let ino1 = ino(&spare);
            append_durably(&log, 1..=100);
            assert_eq!(ino(&seg(1)), ino1);
            // 2: a roll with no spare ready (held): fallocate.
            log.roll().unwrap();
            append_durably(&log, 101..=200);
            assert!(seg(101).exists() && !spare.exists());
            // 3: the helper fails (EIO after its first 1 MiB chunk): a warning, the partial file removed,
            // the log unaffected; the roll preallocates.
            sp.fail_after_chunks(1);
            sp.pause(false);
            wait_for("the injected failure", || sp.failures() == 1);
            assert!(!spare.exists(), "partial spare removed");
            log.roll().unwrap();
            append_durably(&log, 201..=300);
            // 4: that roll asked again; this one finds a spare.
            ready(sp);
            let ino4 = ino(&spare);
            log.roll().unwrap();
            append_durably(&log, 301..=400);
            assert_eq!(ino(&seg(301)), ino4);
            // The roll sealed segment 201; the helper dropped its pages from the page cache
            // (with pwrite: a mapped segment's pages stay while it is mapped).
            if matches!(backend, Backend::Pwrite) {
                let cached = || sys::cached_pages(&File::open(seg(201)).unwrap()).unwrap();
                wait_for("segment 201's pages dropped", || cached() == 0);
            }
            // 5: rolls by filling the segment, spare or not, as it comes.
            append_durably(&log, 401..=10_000);
            let names = log.segment_names();
            assert!(names.len() >= 6, "{names:?}");
            // Purge never touches the spare.
            ready(sp);
            let ino_s = ino(&spare);
            let snaps = SnapshotStore::open(dir.path()).unwrap();
            for k in [300, 5000, 8000, 9000] {
                let mut w = snaps.create(k).unwrap();
                io::Write::write_all(&mut w, b"s").unwrap();
                w.finish().unwrap();
            }
            let purged = crate::purge(&log, &snaps, 3).unwrap();
            assert!(!purged.segments.is_empty());
            assert!(sp.is_ready() && ino(&spare) == ino_s);

            let first = log.first_key().unwrap();
            let got: Vec<_> = log.iter_from(0).map(Result::unwrap).collect();
            let want: Vec<_> = (first..=10_000).map(|k| (k, payload(k))).collect();
            assert_eq!(got, want);
            // Every segment: valid header, records, then zeros (the newest may be unsealed).
            for name in log.segment_names() {
                let s = crate::inspect_segment(dir.path().join(&name)).unwrap();
                assert!(s.clean, "{name}: {s:?}");
            }
            drop(log);
            assert!(!spare.exists(), "a clean close removes the unused spare");

            let log = Log::open(dir.path(), opts(backend.clone())).unwrap();
            let r = log.recovery_report();
            assert_eq!(r.removed_stale_spare, None);
            assert_eq!(r.torn_tail, None);
            assert_eq!(r.removed_empty_segment, None);
            let got2: Vec<_> = log.iter_from(0).map(Result::unwrap).collect();
            assert_eq!(got2, want);
        }
    }

    #[test]
    fn dropping_the_log_stops_the_helper_mid_fill() {
        let dir = tempfile::tempdir().unwrap();
        // 1 GiB: zeroing all of it takes seconds on this disk; stopping takes one chunk.
        let log = Log::open(dir.path(), Options::default().segment_bytes(1 << 30)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        drop(log);
        let took = t.elapsed();
        assert!(
            !dir.path().join(SPARE_NAME).exists(),
            "partial spare removed"
        );
        assert!(took < Duration::from_secs(5), "drop took {took:?}");
    }

    #[test]
    fn off_with_the_option_with_no_sync_and_for_memory() {
        let dir = tempfile::tempdir().unwrap();
        for o in [
            opts(Backend::Pwrite).zero_fill_ahead(false),
            opts(Backend::Mmap).unsafe_no_sync(true),
        ] {
            let log = Log::open(dir.path(), o).unwrap();
            assert!(log.storage().spares().is_none());
            append_durably(&log, 1..=10);
            assert!(!dir.path().join(SPARE_NAME).exists());
            log.truncate_after(0).unwrap();
        }
        let log = Log::open("mem", opts(Backend::Memory(crate::MemDisk::new()))).unwrap();
        assert!(log.storage().spares().is_none());
    }
}

/// Measurements for BENCH.md ("Zero-filled spare segments"), ignored by default:
///
/// `cargo test --release -p zk-txnlog --lib probe_ -- --ignored --nocapture --test-threads=1`
///
/// `ZK_TXNLOG_PROBE_DIR` picks the directory (default: the temp dir); `ZK_TXNLOG_PROBE_ROUNDS`
/// scales the run.
#[cfg(test)]
mod probe {
    use std::fs::{File, OpenOptions};
    use std::os::unix::fs::FileExt;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{Backend, Log, Options};

    fn base() -> tempfile::TempDir {
        match std::env::var_os("ZK_TXNLOG_PROBE_DIR") {
            Some(d) => tempfile::tempdir_in(d).unwrap(),
            None => tempfile::tempdir().unwrap(),
        }
    }

    fn rounds(default: usize) -> usize {
        std::env::var("ZK_TXNLOG_PROBE_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    fn stats(name: &str, v: &mut [Duration]) {
        v.sort();
        let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{name:<44} n {:>6}  p50 {:>7.0} µs  p90 {:>7.0} µs  p99 {:>7.0} µs  p99.9 {:>7.0} µs  max {:>7.0} µs",
            v.len(),
            p(0.5),
            p(0.9),
            p(0.99),
            p(0.999),
            p(1.0)
        );
    }

    const SEG: u64 = 64 << 20;

    fn new_file(dir: &Path, name: &str) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .unwrap()
    }

    /// pwrite + fdatasync of `size`-byte appends at increasing offsets, round-robin between a
    /// fallocated file (unwritten extents) and one zeroed by the helper's own code.
    #[test]
    #[ignore]
    fn probe_fdatasync_fallocated_vs_zeroed() {
        let dir = base();
        for size in [128usize, 1024, 4096, 16384] {
            let n = rounds(10_000).min((SEG as usize - 4096) / size);
            let falloc = new_file(dir.path(), &format!("falloc.{size}"));
            assert!(
                sys::reserve(&falloc, SEG).unwrap(),
                "fallocate supported here"
            );
            falloc.sync_all().unwrap();
            let inner = Inner {
                path: dir.path().join(format!("zeroed.{size}")),
                len: SEG,
                stop: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
            };
            let t = Instant::now();
            let zeroed = prepare(&inner).unwrap().unwrap();
            println!(
                "zero-filling one {} MiB spare as the helper does (paced 1 MiB steps): {:.0} ms",
                SEG >> 20,
                t.elapsed().as_secs_f64() * 1e3
            );
            let data = vec![0x5au8; size];
            let (mut f, mut z) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for i in 0..n {
                let at = 4096 + (i * size) as u64;
                let one = |file: &File, out: &mut Vec<Duration>| {
                    let t = Instant::now();
                    file.write_all_at(&data, at).unwrap();
                    file.sync_data().unwrap();
                    out.push(t.elapsed());
                };
                // Alternate who goes first, so neither always follows the other's sync.
                if i % 2 == 0 {
                    one(&falloc, &mut f);
                    one(&zeroed, &mut z);
                } else {
                    one(&zeroed, &mut z);
                    one(&falloc, &mut f);
                }
            }
            stats(&format!("{size} B append + fdatasync, fallocated"), &mut f);
            stats(&format!("{size} B append + fdatasync, zero-filled"), &mut z);
        }
    }

    /// Low load: one durable append of 100 B at a time, alternating between a log whose
    /// segment came from a spare (helper idle, next spare ready) and one whose segment was
    /// fallocated. Each sync writes one 128-byte frame, 32 per block.
    #[test]
    #[ignore]
    fn probe_log_one_at_a_time() {
        let dir = base();
        let n = rounds(20_000) as u64;
        let logs = probe_logs(dir.path());
        let sp = logs[0].storage().spares().unwrap();
        wait_ready(sp);
        logs[0].append(1, b"first").unwrap().wait().unwrap();
        logs[1].append(1, b"first").unwrap().wait().unwrap();
        // The first segment of "on" was fallocated too if the spare was not ready; roll both
        // once the spare is ready, then wait for the next one so the helper is idle.
        wait_ready(sp);
        for log in &logs {
            log.roll().unwrap();
            log.append(2, b"second").unwrap().wait().unwrap();
        }
        wait_ready(sp);
        let data = [7u8; 100];
        let mut lat = [Vec::new(), Vec::new()];
        for i in 0..n {
            for w in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
                let t = Instant::now();
                logs[w].append(i + 3, &data).unwrap().wait().unwrap();
                lat[w].push(t.elapsed());
            }
        }
        stats("one at a time, segment from a spare", &mut lat[0]);
        stats("one at a time, fallocated segment", &mut lat[1]);
    }

    /// The two logs the probes compare: `on/` with spares, `off/` without (pwrite backend).
    fn probe_logs(dir: &Path) -> [Log; 2] {
        let open = |name: &str, on: bool| {
            Log::open(
                dir.join(name),
                Options::default()
                    .backend(Backend::Pwrite)
                    .zero_fill_ahead(on),
            )
            .unwrap()
        };
        [open("on", true), open("off", false)]
    }

    fn wait_ready(sp: &Spares) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !sp.is_ready() {
            assert!(Instant::now() < deadline, "spare never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's pattern: one thread keeps 64 appends of 100 B in flight (`append_with`,
    /// completion by callback; each sync covers several KiB, so most syncs write into blocks
    /// never synced before) on the pwrite backend with default 64 MiB segments, which roll
    /// when full. Two logs, one with spares and one without, take turns in phases of 200 000
    /// records. Reports append→durable latency (for the log with spares also split by whether
    /// the helper was zeroing the next spare at the time), how long the appending thread was
    /// blocked in the appends that rolled, and records/s.
    #[test]
    #[ignore]
    fn probe_log_pipeline_with_and_without_spares() {
        let dir = base();
        let phases = rounds(20);
        let per_phase = 200_000u64;
        let in_flight = 64;
        let logs = probe_logs(dir.path());
        let data = [7u8; 100];
        // [on, off, on while the helper zeroes, on with a spare ready]
        let mut lat: [Vec<Duration>; 4] = Default::default();
        let mut roll_call = [Vec::new(), Vec::new()];
        let mut busy = [Duration::ZERO; 2];
        let mut next = [1u64; 2];
        let mut segs = [1usize; 2];
        let (tx, rx) = crossbeam_channel::unbounded::<(usize, Duration)>();
        let take = |lat: &mut [Vec<Duration>; 4], (b, d): (usize, Duration)| {
            lat[if b < 2 { b } else { 0 }].push(d);
            if b >= 2 {
                lat[b].push(d);
            }
        };
        for phase in 0..2 * phases {
            // on, off, off, on, on, off, ...: neither always runs right after the other.
            let w = (phase + phase / 2) % 2;
            let log = &logs[w];
            let start = Instant::now();
            let mut pending = 0;
            for _ in 0..per_phase {
                if pending == in_flight {
                    take(&mut lat, rx.recv().unwrap());
                    pending -= 1;
                }
                let bucket = match log.storage().spares() {
                    None => 1,
                    Some(sp) if sp.is_ready() => 3,
                    Some(_) => 2,
                };
                let t = Instant::now();
                let tx = tx.clone();
                log.append_with(next[w], &data, move |r| {
                    r.unwrap();
                    tx.send((bucket, t.elapsed())).unwrap();
                })
                .unwrap();
                let call = t.elapsed();
                // A roll syncs (file, directory, seal): never under 100 µs here.
                if call > Duration::from_micros(100) {
                    let n = log.segment_names().len();
                    if n != segs[w] {
                        segs[w] = n;
                        roll_call[w].push(call);
                    }
                }
                next[w] += 1;
                pending += 1;
            }
            for _ in 0..pending {
                take(&mut lat, rx.recv().unwrap());
            }
            busy[w] += start.elapsed();
        }
        println!(
            "rolls: {} with spares, {} without",
            segs[0] - 1,
            segs[1] - 1
        );
        stats("append->durable, zero_fill_ahead on", &mut lat[0]);
        stats("append->durable, zero_fill_ahead off", &mut lat[1]);
        stats("  on, while the helper zeroes a spare", &mut lat[2]);
        stats("  on, with a spare ready (helper idle)", &mut lat[3]);
        stats("blocked in the rolling append, on", &mut roll_call[0]);
        stats("blocked in the rolling append, off", &mut roll_call[1]);
        for (w, name) in ["on", "off"].iter().enumerate() {
            let recs = (next[w] - 1) as f64;
            println!("{name:<4} {:.0} records/s", recs / busy[w].as_secs_f64());
        }
    }
}
