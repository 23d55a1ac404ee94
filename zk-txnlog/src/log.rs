//! The write-ahead log: append with group commit, read, truncate, purge, recovery on open.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{self, FRAME_HEADER, HEADER_LEN, SegmentHeader};
use crate::options::Options;
use crate::segment::{self, INDEX_EVERY, Scan, ScanError, Stop};
use crate::storage::{Backend, FileStorage, SegmentFile, Storage};

const LOG_PREFIX: &str = "log.";
const TRUNCATE_PREFIX: &str = "truncate.";
const LOCK_FILE: &str = "LOCK";

/// Called once on the sync thread when a record is durable (`Ok(key)`) or can never be
/// (`Err`). Keep it short: send on a channel, wake an event loop.
pub type Callback = Box<dyn FnOnce(Result<u64>) + Send + 'static>;

/// What recovery found and did when the log was opened (DESIGN.md §10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Records in the segments open scanned: the last one (two if R8 dropped an empty last),
    /// or every one after an unfinished truncate (the older ones are scanned when first read; [`Log::verify_all`]).
    pub records: u64,
    /// Key of the first record, if any (the first segment's name, which its first record's
    /// key must equal).
    pub first_key: Option<u64>,
    /// Key of the last record, if any.
    pub last_key: Option<u64>,
    /// R2: a torn tail was cut: the file, the offset of the cut and how many bytes were zeroed.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// R8: a segment left empty by a crash during a roll was removed.
    pub removed_empty_segment: Option<PathBuf>,
    /// R9: an interrupted `truncate_after(key)` was completed.
    pub finished_truncate: Option<u64>,
    /// R11: a spare segment (`log.spare.tmp`) left by an earlier run was removed.
    pub removed_stale_spare: Option<PathBuf>,
}

/// One segment in memory; the mutable bookkeeping lives in [`SegMeta`] under the state lock.
struct Seg {
    first_key: u64,
    path: PathBuf,
    file: Arc<dyn SegmentFile>,
    /// Readers take it shared while copying records out; truncation takes it exclusively while
    /// zeroing, so nobody reads bytes that are being overwritten.
    gate: RwLock<()>,
    /// W of this segment (from its header).
    window: u64,
    /// First key of the segment before it, from the header (`None` for the very first one).
    prev_key: Option<u64>,
    /// Mixed into every frame crc (from the header).
    salt: u64,
}

impl Seg {
    /// An existing segment with header `h`, found by recovery.
    fn opened(
        first_key: u64,
        path: PathBuf,
        file: Arc<dyn SegmentFile>,
        h: &SegmentHeader,
    ) -> Arc<Seg> {
        Arc::new(Seg {
            first_key,
            path,
            file,
            gate: RwLock::new(()),
            window: h.window,
            prev_key: h.prev_key,
            salt: h.salt,
        })
    }
}

struct SegMeta {
    seg: Arc<Seg>,
    /// End of the valid records (for the active segment: of the durable ones, see `State`).
    end: u64,
    last_key: Option<u64>,
    count: u64,
    sealed: bool,
    index: Vec<(u64, u64)>,
    /// False for a sealed segment whose records open did not read (all but the last):
    /// `end`, `last_key`, `count` and `index` are unknown until [`ensure_scanned`] scans it.
    scanned: bool,
}

/// Everything the appenders, the sync thread and the readers share, behind one mutex.
struct State {
    segments: BTreeMap<u64, SegMeta>,
    /// The active segment is always the last one in `segments`; `None` when the log is empty.
    active: Option<u64>,
    /// Offset in the active segment where the next staged frame goes.
    write_pos: u64,
    /// Offset in the active segment up to which records are durable.
    durable_pos: u64,
    /// Frames appended but not yet handed to the sync thread, starting at `staged_start`.
    staged: Vec<u8>,
    staged_start: u64,
    /// (key, lsn at the end of the frame, file offset at the end of the frame), in key order.
    staged_recs: VecDeque<(u64, u64, u64)>,
    callbacks: VecDeque<(u64, u64, Callback)>,
    spare: Vec<u8>,
    /// Bytes ever appended (never decreases); tickets wait for `Shared::durable_lsn` to pass
    /// theirs.
    lsn: u64,
    /// Threads parked in `Ticket::wait`, with the lsn each waits for. The sync thread unparks
    /// exactly the ones a sync completed (no thundering herd through the state lock).
    parked: Vec<(u64, Thread)>,
    last_key: Option<u64>,
    durable_key: Option<u64>,
    /// Appends must be above this too (raised by truncation and by a newer snapshot).
    floor: Option<u64>,
    last_index_pos: Option<u64>,
    /// The sync thread is writing a batch it took (outside the lock).
    syncing: bool,
    /// The sync thread is blocked on `Shared::work` (set and cleared by it under the lock):
    /// only then does an append need to signal it; a busy sync thread looks at the queue
    /// again under the lock before it waits, so no wake-up is lost.
    sync_idle: bool,
    /// The sync thread is waiting out `flush_delay` for a fuller batch (set and cleared by it
    /// under the lock): an append signals it only when the batch reaches `max_batch`.
    sync_batching: bool,
    roll_requested: bool,
    latch: Option<String>,
    closing: bool,
}

struct Shared {
    opts: Options,
    /// Lsn up to which everything is durable; read without the lock by tickets.
    durable_lsn: AtomicU64,
    storage: Box<dyn Storage>,
    state: Mutex<State>,
    /// Signalled when records are staged or the log closes.
    work: Condvar,
    /// Signalled after each sync (success or failure), and when back-pressure may ease.
    durable: Condvar,
}

/// A write-ahead log of records keyed by strictly increasing `u64`s.
///
/// `Log` is `Send + Sync`: share it with `Arc` and append from any number of threads. Appends
/// are made durable by a dedicated sync thread with group commit (one write and one
/// msync/fdatasync per batch). Dropping the log makes everything appended durable first.
pub struct Log {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    report: RecoveryReport,
    _lock: Option<File>,
}

/// Handle of one append: [`Ticket::wait`] blocks until the record is durable.
#[derive(Clone)]
pub struct Ticket {
    shared: Arc<Shared>,
    key: u64,
    lsn: u64,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("key", &self.key).finish()
    }
}

impl Ticket {
    /// The key of the record.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Block until the record is durable (`Ok(key)`), or the log failed (`Err`): never early.
    pub fn wait(self) -> Result<u64> {
        loop {
            if self.is_durable() {
                return Ok(self.key);
            }
            {
                let mut st = self.shared.lock();
                // Re-check under the lock: the sync thread publishes `durable_lsn` before it
                // takes `parked`, so a wake-up cannot be missed.
                if self.is_durable() {
                    return Ok(self.key);
                }
                if let Some(msg) = &st.latch {
                    return Err(Error::Latched(msg.clone()));
                }
                if st.closing && !st.syncing && st.staged_recs.is_empty() {
                    return Err(Error::Closed);
                }
                st.parked.push((self.lsn, std::thread::current()));
                self.shared.wake_idle_sync(st);
            }
            // Spurious wake-ups just loop.
            std::thread::park();
        }
    }

    /// Has the record become durable? Never blocks.
    pub fn is_durable(&self) -> bool {
        self.shared.durable_lsn.load(Ordering::Acquire) >= self.lsn
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic in this crate while holding it; the state may be torn,
        // so treat it like an I/O failure: latch.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => {
                let mut g = p.into_inner();
                g.latch
                    .get_or_insert_with(|| "internal panic while holding the log lock".into());
                g
            }
        }
    }

    /// Wakes an idle sync thread if records wait (appended with [`Log::append_quiet`]).
    fn wake_idle_sync(&self, mut st: MutexGuard<'_, State>) {
        let wake = st.sync_idle && !st.staged_recs.is_empty();
        if wake {
            st.sync_idle = false;
        }
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    fn wait_durable<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.durable.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, st: &State) -> Result<()> {
        if let Some(msg) = &st.latch {
            return Err(Error::Latched(msg.clone()));
        }
        if st.closing {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Set the latch, fail every waiter, and return the error for the caller.
    fn fail(&self, st: &mut State, err: Error) -> (Error, Vec<(u64, u64, Callback)>) {
        tracing::error!(error = %err, "zk-txnlog: I/O failure, log latched until reopened");
        st.latch.get_or_insert_with(|| err.to_string());
        self.durable.notify_all();
        self.work.notify_all();
        for (_, t) in st.parked.drain(..) {
            t.unpark();
        }
        (err, st.callbacks.drain(..).collect())
    }

    fn io_err(&self, path: &Path, e: std::io::Error) -> Error {
        Error::io(path, e)
    }

    /// Wait until nothing is staged or being synced.
    fn drain<'a>(&self, mut st: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        while !st.staged_recs.is_empty() || st.syncing {
            self.check_latch(&st)?;
            self.work.notify_one();
            st = self.wait_durable(st);
        }
        self.check_latch(&st)?;
        Ok(st)
    }

    fn check_latch(&self, st: &State) -> Result<()> {
        match &st.latch {
            Some(msg) => Err(Error::Latched(msg.clone())),
            None => Ok(()),
        }
    }
}

fn run_callbacks(cbs: Vec<(u64, u64, Callback)>, err: Option<&Error>) {
    for (_, key, cb) in cbs {
        let res = match err {
            None => Ok(key),
            Some(e) => Err(e.duplicate()),
        };
        // A panicking callback is the caller's bug; it must not stop the sync thread (every
        // later waiter would hang), so it is contained and reported.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(res))).is_err() {
            tracing::error!(key, "zk-txnlog: an append callback panicked");
        }
    }
}

impl Log {
    /// Open (creating if needed) the log in `dir`, recovering as DESIGN.md §10 describes, and
    /// start its sync thread. Takes an exclusive lock on `dir/LOCK` (file backends).
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Log> {
        opts.validate()?;
        let dir = dir.as_ref();
        let (storage, lock): (Box<dyn Storage>, Option<File>) = match &opts.backend {
            Backend::Memory(disk) => (Box::new(disk.storage()), None),
            other => {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let lock_path = dir.join(LOCK_FILE);
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| Error::io(&lock_path, e))?;
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => return Err(Error::Locked(dir.into())),
                    Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
                }
                let mmap = matches!(other, Backend::Mmap);
                (Box::new(FileStorage::new(dir, mmap, false)), Some(lock))
            }
        };
        let (segments, mut report) = recover(storage.as_ref())?;
        // R11: a spare left by an earlier run is never trusted; then start preparing ours.
        let spare_len = (opts.zero_fill_ahead && !opts.no_sync).then_some(opts.segment_bytes);
        report.removed_stale_spare = storage.start_spares(spare_len);
        let mut st = State {
            segments: BTreeMap::new(),
            active: None,
            write_pos: 0,
            durable_pos: 0,
            staged: Vec::new(),
            staged_start: 0,
            staged_recs: VecDeque::new(),
            callbacks: VecDeque::new(),
            spare: Vec::new(),
            lsn: 0,
            parked: Vec::new(),
            last_key: None,
            durable_key: None,
            floor: None,
            last_index_pos: None,
            syncing: false,
            roll_requested: false,
            sync_idle: false,
            sync_batching: false,
            latch: None,
            closing: false,
        };
        for m in segments {
            st.last_key = m.last_key.or(st.last_key);
            st.active = Some(m.seg.first_key);
            st.write_pos = m.end;
            st.durable_pos = m.end;
            st.staged_start = m.end;
            st.last_index_pos = m.index.last().map(|&(_, at)| at);
            st.segments.insert(m.seg.first_key, m);
        }
        st.durable_key = st.last_key;
        let shared = Arc::new(Shared {
            durable_lsn: AtomicU64::new(0),
            opts,
            storage,
            state: Mutex::new(st),
            work: Condvar::new(),
            durable: Condvar::new(),
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("zk-txnlog-sync".into())
            .spawn(move || {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sync_loop(&s2)));
                if res.is_err() {
                    // A bug in this crate: fail everyone rather than leave them waiting.
                    let mut st = s2.lock();
                    let (e, cbs) = s2.fail(&mut st, Error::Latched("sync thread panicked".into()));
                    drop(st);
                    run_callbacks(cbs, Some(&e));
                }
            })
            .map_err(|e| Error::io(dir, e))?;
        Ok(Log {
            shared,
            thread: Some(thread),
            report,
            _lock: lock,
        })
    }

    /// The storage underneath. (Tests.)
    #[cfg(test)]
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.shared.storage.as_ref()
    }

    /// What recovery found when this log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Append a record; the returned [`Ticket`] reports when it is durable.
    ///
    /// Fails at once if `key` is not above [`last_key`](Self::last_key) (and the floor), if the
    /// record is too large, or if the log is latched. May block briefly for back-pressure (more
    /// than `max_unsynced_bytes` queued) or while a new segment is created.
    pub fn append(&self, key: u64, data: &[u8]) -> Result<Ticket> {
        self.append_ticket(key, data, true)
    }

    /// [`append`](Self::append) for a caller appending a run of records: an idle sync thread
    /// is not woken for it, so the run is written and synced as one batch once the caller asks
    /// for its durability ([`on_durable`](Self::on_durable), [`Ticket::wait`],
    /// [`flush`](Self::flush)) or appends with [`append`](Self::append). Woken at the first
    /// record of a run, the sync thread synced that record alone and the rest after it (a
    /// follower's DIFF of 1000 txns: two syncs, the first of one record). A full window or
    /// a busy sync thread behave as for [`append`](Self::append).
    pub fn append_quiet(&self, key: u64, data: &[u8]) -> Result<Ticket> {
        self.append_ticket(key, data, false)
    }

    fn append_ticket(&self, key: u64, data: &[u8], wake_idle: bool) -> Result<Ticket> {
        let lsn = self.append_inner(key, data, None, wake_idle)?;
        Ok(Ticket {
            shared: self.shared.clone(),
            key,
            lsn,
        })
    }

    /// Append a record and have `done` called on the sync thread once it is durable (or failed),
    /// for event loops that must not block. Callbacks run in key order.
    pub fn append_with(
        &self,
        key: u64,
        data: &[u8],
        done: impl FnOnce(Result<u64>) + Send + 'static,
    ) -> Result<()> {
        self.append_inner(key, data, Some(Box::new(done)), true)
            .map(|_| ())
    }

    /// Have `done` called once every record appended so far is durable (`Ok` with the last
    /// key appended, 0 if none), or the log failed: one callback for a run of
    /// [`append`](Self::append)s, where [`append_with`](Self::append_with) boxes one per
    /// record. It runs on the sync thread after the callbacks queued before it; at once, on
    /// this thread, if everything appended is durable already. Fails at once if the log is
    /// latched.
    pub fn on_durable(&self, done: impl FnOnce(Result<u64>) + Send + 'static) -> Result<()> {
        let sh = &*self.shared;
        let mut st = sh.lock();
        sh.check(&st)?;
        let (lsn, key) = (st.lsn, st.last_key.unwrap_or(0));
        // The sync thread raises `durable_lsn` and takes the callbacks it covers under the
        // lock: one queued now would wait for a later batch, which may never come.
        if sh.durable_lsn.load(Ordering::Acquire) >= lsn {
            drop(st);
            done(Ok(key));
            return Ok(());
        }
        st.callbacks.push_back((lsn, key, Box::new(done)));
        sh.wake_idle_sync(st);
        Ok(())
    }

    fn append_inner(
        &self,
        key: u64,
        data: &[u8],
        cb: Option<Callback>,
        wake_idle: bool,
    ) -> Result<u64> {
        let sh = &*self.shared;
        let opts = &sh.opts;
        if data.len() > opts.max_record_bytes {
            return Err(Error::RecordTooLarge {
                len: data.len(),
                max: opts.max_record_bytes,
            });
        }
        let frame = format::frame_len(data.len());
        let mut st = sh.lock();
        loop {
            sh.check(&st)?;
            let last = st.last_key.max(st.floor);
            if let Some(last) = last
                && (key <= last
                    || (opts.contiguous_keys && st.last_key.is_some() && key != last + 1))
            {
                return Err(Error::KeyOrder { key, last });
            }
            let needs_roll = match st.active {
                None => true,
                Some(a) => {
                    let seg = &st.segments[&a].seg;
                    st.roll_requested && st.segments[&a].count > 0
                        || st.write_pos + frame + FRAME_HEADER as u64 > seg.file.len()
                        // A segment written with a smaller window (older options) cannot
                        // take this frame without breaking its torn-tail bound.
                        || 2 * frame > seg.window
                }
            };
            if needs_roll {
                st = self.roll_locked(st, key)?;
                continue;
            }
            let window = st.segments[&st.active.expect("active segment")].seg.window;
            let unsynced = st.write_pos - st.durable_pos;
            if unsynced > 0 && unsynced + frame > window {
                sh.work.notify_one();
                st = sh.wait_durable(st);
                continue;
            }
            break;
        }
        let active = st.active.expect("active segment");
        let pos = st.write_pos;
        let salt = st.segments[&active].seg.salt;
        // The watermark: how far this segment is known durable now (published by the sync
        // thread after its sync returned). Never more than the truth, so a later frame can
        // prove an earlier one durable but never claim too much (DESIGN.md §10).
        let durable = st.durable_pos;
        format::encode_record(&mut st.staged, salt, key, durable, data);
        st.write_pos += frame;
        st.lsn += frame;
        let (lsn, end) = (st.lsn, st.write_pos);
        st.staged_recs.push_back((key, lsn, end));
        if let Some(cb) = cb {
            st.callbacks.push_back((lsn, key, cb));
        }
        st.last_key = Some(key);
        if st.last_index_pos.is_none_or(|at| pos - at >= INDEX_EVERY) {
            st.last_index_pos = Some(pos);
            st.segments
                .get_mut(&active)
                .expect("active segment")
                .index
                .push((key, pos));
        }
        let m = st.segments.get_mut(&active).expect("active segment");
        m.count += 1;
        // Signal only a sync thread that is waiting for work (a futex wake per append
        // otherwise), or one waiting out a flush delay once the batch is full.
        let wake = (wake_idle && st.sync_idle)
            || (st.sync_batching
                && (st.staged_recs.len() >= sh.opts.max_batch || window_half_full(&st)));
        if wake {
            // Signalled once: until the woken thread holds the lock again the flags would
            // still say it waits, and every append in between would signal it again (a
            // futex wake per record on a follower fed its proposals in batches).
            st.sync_idle = false;
            st.sync_batching = false;
        }
        drop(st);
        if wake {
            sh.work.notify_one();
        }
        Ok(lsn)
    }

    /// Start a new segment whose first record is `next_key`. Called with the lock held; does
    /// I/O under it (rare: once per segment).
    fn roll_locked<'a>(
        &'a self,
        st: MutexGuard<'a, State>,
        next_key: u64,
    ) -> Result<MutexGuard<'a, State>> {
        let sh = &*self.shared;
        let (active, write_pos) = (st.active, st.write_pos);
        let mut st = sh.drain(st)?;
        // Draining released the lock: another appender may have rolled or appended meanwhile,
        // or taken a key above ours. Let the caller's loop look again.
        if st.active != active
            || st.write_pos != write_pos
            || st.last_key.max(st.floor).is_some_and(|l| next_key <= l)
        {
            return Ok(st);
        }
        let name = format::segment_name(next_key);
        let path = sh.storage.dir().join(&name);
        let prev = st.active;
        let header = SegmentHeader {
            first_key: next_key,
            prev_key: prev,
            window: sh.opts.max_unsynced_bytes,
            size: sh.opts.segment_bytes,
            salt: format::new_salt(next_key),
        };
        let mut sealed = false;
        let res = sh
            .storage
            .create(&name, sh.opts.segment_bytes, &header.encode())
            .map_err(|e| sh.io_err(&path, e))
            .and_then(|file| {
                sh.storage
                    .sync_dir()
                    .map_err(|e| sh.io_err(sh.storage.dir(), e))?;
                Ok(file)
            })
            .and_then(|file| {
                if let Some(p) = prev {
                    let old = &st.segments[&p].seg;
                    let at = st.write_pos;
                    // Always room, except in a file shortened from outside (a cut torn tail
                    // within a frame header of its end): then the chain rests on the new
                    // header's `prev key` alone.
                    if at + FRAME_HEADER as u64 <= old.file.len() {
                        old.file
                            .write_at(at, &format::encode_seal(old.salt, next_key, at))
                            .and_then(|()| old.file.sync(at, FRAME_HEADER as u64))
                            .map_err(|e| sh.io_err(&old.path, e))?;
                        sealed = true;
                    }
                }
                Ok(file)
            });
        // Whether or not it used one: the roll's syncs are done, the helper may prepare the
        // next spare now, and drop the sealed segment's pages from the page cache first.
        let sealed_path = prev
            .filter(|_| sealed)
            .map(|p| st.segments[&p].seg.path.clone());
        sh.storage.request_spare(sealed_path.as_deref());
        let file = match res {
            Ok(f) => f,
            Err(e) => {
                let (e, cbs) = sh.fail(&mut st, e);
                drop(st);
                run_callbacks(cbs, Some(&e));
                return Err(e);
            }
        };
        if let Some(p) = prev {
            let wp = st.write_pos;
            let m = st.segments.get_mut(&p).expect("previous segment");
            m.sealed = sealed;
            m.end = wp;
        }
        let seg = Arc::new(Seg {
            first_key: next_key,
            path,
            file,
            gate: RwLock::new(()),
            window: sh.opts.max_unsynced_bytes,
            prev_key: prev,
            salt: header.salt,
        });
        st.segments.insert(
            next_key,
            SegMeta {
                seg,
                end: HEADER_LEN as u64,
                last_key: None,
                count: 0,
                sealed: false,
                index: Vec::new(),
                scanned: true,
            },
        );
        st.active = Some(next_key);
        st.write_pos = HEADER_LEN as u64;
        st.durable_pos = HEADER_LEN as u64;
        st.staged_start = HEADER_LEN as u64;
        st.last_index_pos = None;
        st.roll_requested = false;
        tracing::debug!(segment = %name, "zk-txnlog: rolled to a new segment");
        Ok(st)
    }

    /// Make the next append start a new segment (as ZooKeeper rolls its log after a snapshot).
    pub fn roll(&self) -> Result<()> {
        let mut st = self.shared.lock();
        self.shared.check(&st)?;
        st.roll_requested = true;
        Ok(())
    }

    /// Block until everything appended so far is durable.
    pub fn flush(&self) -> Result<()> {
        let st = self.shared.lock();
        self.shared.drain(st).map(drop)
    }

    /// Key of the last record appended (durable or not), if any.
    pub fn last_key(&self) -> Option<u64> {
        self.shared.lock().last_key
    }

    /// Key of the last durable record, if any.
    pub fn durable_key(&self) -> Option<u64> {
        self.shared.lock().durable_key
    }

    /// Key of the first record still in the log, if any.
    pub fn first_key(&self) -> Option<u64> {
        let st = self.shared.lock();
        st.segments.keys().next().copied()
    }

    /// Require every later append to use a key above `key` (used after loading a snapshot that
    /// is newer than the log; not persisted).
    pub fn raise_floor(&self, key: u64) {
        let mut st = self.shared.lock();
        st.floor = st.floor.max(Some(key));
    }

    /// The durable records with keys `>= key`, in key order. The iterator follows records that
    /// become durable while it runs and ends at the durable end.
    pub fn iter_from(&self, key: u64) -> Iter {
        Iter {
            shared: self.shared.clone(),
            from: key,
            cur: None,
            done: false,
        }
    }

    /// Does the oldest segment have a predecessor that is gone (purged or lost)?
    pub(crate) fn first_segment_prev(&self) -> Option<(PathBuf, u64)> {
        let st = self.shared.lock();
        let m = st.segments.values().next()?;
        m.seg.prev_key.map(|p| (m.seg.path.clone(), p))
    }

    /// File names of the segments, oldest first.
    pub fn segment_names(&self) -> Vec<String> {
        let st = self.shared.lock();
        st.segments
            .keys()
            .map(|&k| format::segment_name(k))
            .collect()
    }

    /// Scans every segment that open left unscanned (DESIGN.md §10), as reading them would:
    /// `Corrupt` or `MissingSegment` for the first damaged one. For tools and tests.
    pub fn verify_all(&self) -> Result<()> {
        let keys: Vec<u64> = self.shared.lock().segments.keys().copied().collect();
        for k in keys {
            ensure_scanned(&self.shared, k)?;
        }
        Ok(())
    }

    /// Remove every record with a key above `key`, durably (Zab's TRUNC). Waits for pending
    /// appends first. Later appends must use keys above `key`.
    pub fn truncate_after(&self, key: u64) -> Result<()> {
        let sh = &*self.shared;
        // The cut is searched in the segment holding `key`: scan it if open did not.
        let containing = {
            let st = sh.lock();
            st.segments.range(..=key).next_back().map(|(&k, _)| k)
        };
        if let Some(c) = containing {
            ensure_scanned(sh, c)?;
        }
        let st = sh.lock();
        sh.check(&st)?;
        let mut st = sh.drain(st)?;
        if st.last_key.is_none_or(|l| l <= key) {
            st.floor = st.floor.max(Some(key));
            return Ok(());
        }
        match truncate_locked(sh, &mut st, key) {
            Ok(()) => Ok(()),
            Err(e) => {
                let (e, cbs) = sh.fail(&mut st, e);
                drop(st);
                run_callbacks(cbs, Some(&e));
                Err(e)
            }
        }
    }

    /// Remove whole segments whose records all have keys `< key` (keeping the segment that
    /// holds the records just below and above it, and always the active one). Oldest first.
    /// Returns the removed file names.
    pub fn purge_before(&self, key: u64) -> Result<Vec<String>> {
        let sh = &*self.shared;
        let mut st = sh.lock();
        sh.check(&st)?;
        let keys: Vec<u64> = st.segments.keys().copied().collect();
        let mut removed = Vec::new();
        for w in keys.windows(2) {
            // Segment w[0] holds keys in [w[0], w[1]); all are < key iff w[1] <= key.
            if w[1] > key {
                break;
            }
            let name = format::segment_name(w[0]);
            if let Err(e) = sh.storage.remove(&name) {
                let err = sh.io_err(&sh.storage.dir().join(&name), e);
                return Err(self.fail_locked(st, err));
            }
            st.segments.remove(&w[0]);
            removed.push(name);
        }
        if !removed.is_empty()
            && let Err(e) = sh.storage.sync_dir()
        {
            let err = sh.io_err(sh.storage.dir(), e);
            return Err(self.fail_locked(st, err));
        }
        Ok(removed)
    }

    fn fail_locked(&self, mut st: MutexGuard<'_, State>, err: Error) -> Error {
        let (e, cbs) = self.shared.fail(&mut st, err);
        drop(st);
        run_callbacks(cbs, Some(&e));
        e
    }

    /// Make everything appended durable, stop the sync thread and release the lock.
    pub fn close(mut self) -> Result<()> {
        let res = self.flush();
        self.stop();
        res
    }

    fn stop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.closing = true;
        }
        self.shared.work.notify_all();
        self.shared.durable.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.storage.stop_spares();
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Log")
            .field("dir", &self.shared.storage.dir())
            .field("segments", &st.segments.len())
            .field("last_key", &st.last_key)
            .field("durable_key", &st.durable_key)
            .finish()
    }
}

/// Zero `[from, to)` of a segment backwards in chunks of at most W/2, syncing each, so that at
/// any crash the stray bytes after the valid prefix stay within W of it (DESIGN.md §6).
fn zero_backwards(seg: &Seg, from: u64, to: u64) -> std::io::Result<()> {
    let _g = seg.gate.write().unwrap_or_else(|e| e.into_inner());
    let chunk = (seg.window / 2).max(FRAME_HEADER as u64);
    let zeros = vec![0u8; chunk.min(to.saturating_sub(from)) as usize];
    let mut hi = to;
    while hi > from {
        let lo = hi.saturating_sub(chunk).max(from);
        seg.file.write_at(lo, &zeros[..(hi - lo) as usize])?;
        seg.file.sync(lo, hi - lo)?;
        hi = lo;
    }
    Ok(())
}

/// Position just after the last record with key `<= key` in a segment, and that record's key.
fn cut_point(seg: &Seg, index: &[(u64, u64)], end: u64, key: u64) -> Result<(u64, Option<u64>)> {
    let i = index.partition_point(|&(k, _)| k <= key);
    let mut pos = if i == 0 {
        HEADER_LEN as u64
    } else {
        index[i - 1].1
    };
    let mut last = None;
    let mut ahead = segment::ReadAhead::new(ITER_READ_AHEAD);
    while pos < end {
        match segment::read_record_ahead(seg.file.as_ref(), seg.salt, pos, &mut ahead, end) {
            Ok(Some((k, _, next))) if k <= key => {
                last = Some(k);
                pos = next;
            }
            Ok(_) => break,
            Err(reason) => return Err(Error::corrupt(&seg.path, pos, last, reason)),
        }
    }
    Ok((pos, last))
}

fn truncate_locked(sh: &Shared, st: &mut State, key: u64) -> Result<()> {
    let dir = sh.storage.dir().to_path_buf();
    let intent = format!("{TRUNCATE_PREFIX}{key:x}");
    let _ = sh.storage.remove(&intent);
    sh.storage
        .create(&intent, 0, &[])
        .map_err(|e| Error::io(dir.join(&intent), e))?;
    sh.storage.sync_dir().map_err(|e| Error::io(&dir, e))?;
    // Remove later segments, newest first.
    let later: Vec<u64> = st
        .segments
        .range(key.saturating_add(1)..)
        .map(|(&k, _)| k)
        .collect();
    for k in later.iter().rev() {
        let name = format::segment_name(*k);
        sh.storage
            .remove(&name)
            .map_err(|e| Error::io(dir.join(&name), e))?;
        st.segments.remove(k);
    }
    sh.storage.sync_dir().map_err(|e| Error::io(&dir, e))?;
    let active = st.active;
    let containing = st.segments.range(..=key).next_back().map(|(&k, _)| k);
    match containing {
        Some(c) => {
            let m = st.segments.get(&c).expect("segment");
            // Where written bytes end in this segment: after the durability mark at the staging
            // position if it was active, else after the seal. The mark must go too: left
            // behind, it would later vouch for bytes rewritten after the cut.
            let written_end = if active == Some(c) {
                (st.write_pos + FRAME_HEADER as u64).min(m.seg.file.len())
            } else {
                m.end + if m.sealed { FRAME_HEADER as u64 } else { 0 }
            };
            let records_end = if active == Some(c) {
                st.durable_pos
            } else {
                m.end
            };
            let (cut, last) = cut_point(&m.seg, &m.index, records_end, key)?;
            zero_backwards(&m.seg, cut, written_end).map_err(|e| Error::io(&m.seg.path, e))?;
            let m = st.segments.get_mut(&c).expect("segment");
            m.end = cut;
            m.sealed = false;
            m.last_key = last;
            m.index.retain(|&(_, at)| at < cut);
            st.last_index_pos = m.index.last().map(|&(_, at)| at);
            st.active = Some(c);
            st.write_pos = cut;
            st.durable_pos = cut;
            st.staged_start = cut;
            st.last_key = last;
        }
        None => {
            st.active = None;
            st.last_key = None;
            st.last_index_pos = None;
        }
    }
    st.durable_key = st.last_key;
    st.floor = st.floor.max(Some(key));
    sh.storage
        .remove(&intent)
        .map_err(|e| Error::io(dir.join(&intent), e))?;
    sh.storage.sync_dir().map_err(|e| Error::io(&dir, e))?;
    Ok(())
}

/// Whether the bytes not yet durable fill half the active segment's unsynced window.
fn window_half_full(st: &State) -> bool {
    st.active
        .and_then(|a| st.segments.get(&a))
        .is_some_and(|m| 2 * (st.write_pos - st.durable_pos) >= m.seg.window)
}

/// The flush delay (or a busy log's gathering): waits up to `delay` for more
/// records to share the sync, but not past a full batch, nor past half the
/// unsynced window (appenders would soon block on it).
fn wait_for_batch<'a>(
    sh: &'a Shared,
    mut st: MutexGuard<'a, State>,
    delay: Duration,
) -> MutexGuard<'a, State> {
    let deadline = Instant::now() + delay;
    while st.staged_recs.len() < sh.opts.max_batch && !st.closing && !window_half_full(&st) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        st.sync_batching = true;
        st = sh
            .work
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        st.sync_batching = false;
    }
    st
}

/// Syncs a batch, telling [`Options::on_sync`]'s callback how long it took.
fn timed_sync(sh: &Shared, file: &dyn SegmentFile, start: u64, len: u64) -> std::io::Result<()> {
    let t = std::time::Instant::now();
    let synced = file.sync(start, len);
    if let Some(f) = &sh.opts.on_sync {
        (f.0)(t.elapsed());
    }
    synced
}

/// One batch on the disk: one write, one sync, then the durability mark.
fn write_batch(
    sh: &Shared,
    seg: &Seg,
    start: u64,
    batch: &[u8],
    file_end: u64,
) -> std::io::Result<()> {
    seg.file
        .write_at(start, batch)
        .and_then(|()| {
            if sh.opts.no_sync {
                Ok(())
            } else {
                timed_sync(sh, &*seg.file, start, batch.len() as u64)
            }
        })
        .and_then(|()| {
            // The durability mark: "everything before file_end is durable", written (not
            // synced) right after the sync, where the next batch will go. When the log goes
            // idle it is what proves the last batch durable (a crash that tears nothing
            // leaves it behind, so damage to that batch is R3, not a torn tail). Appenders
            // only stage in memory and roll/truncate wait for `syncing`, so nobody else
            // writes here meanwhile.
            if file_end + FRAME_HEADER as u64 <= seg.file.len() {
                seg.file
                    .write_at(file_end, &format::encode_mark(seg.salt, file_end))
            } else {
                Ok(())
            }
        })
}

/// The sync thread: take what is staged, one write, one sync, complete the waiters.
fn sync_loop(sh: &Shared) {
    let mut st = sh.lock();
    // How long the last batch took to write and sync, and whether at least
    // `gather_when_busy` records came meanwhile.
    let mut last_batch = Duration::ZERO;
    let mut busy = false;
    loop {
        while st.staged_recs.is_empty() && !st.closing && st.latch.is_none() {
            st.sync_idle = true;
            st = sh.work.wait(st).unwrap_or_else(|e| e.into_inner());
            st.sync_idle = false;
        }
        if st.latch.is_some() || (st.closing && st.staged_recs.is_empty()) {
            sh.durable.notify_all();
            for (_, t) in st.parked.drain(..) {
                t.unpark();
            }
            return;
        }
        if !st.closing {
            if !sh.opts.flush_delay.is_zero() {
                st = wait_for_batch(sh, st, sh.opts.flush_delay);
            } else if busy {
                st = wait_for_batch(sh, st, last_batch.min(sh.opts.gather_when_busy.1));
            }
        }
        let n = st.staged_recs.len().min(sh.opts.max_batch);
        let (last_key, lsn_end, file_end) = st.staged_recs[n - 1];
        let start = st.staged_start;
        let take = (file_end - start) as usize;
        let batch = if take == st.staged.len() {
            let spare = std::mem::take(&mut st.spare);
            std::mem::replace(&mut st.staged, spare)
        } else {
            let rest = st.staged.split_off(take);
            std::mem::replace(&mut st.staged, rest)
        };
        st.staged_recs.drain(..n);
        st.staged_start = file_end;
        st.syncing = true;
        let seg = st.segments[&st.active.expect("active segment")].seg.clone();
        drop(st);

        let began = Instant::now();
        let res = write_batch(sh, &seg, start, &batch, file_end);

        st = sh.lock();
        st.syncing = false;
        last_batch = began.elapsed();
        let (records, _) = sh.opts.gather_when_busy;
        busy = records > 0 && st.staged_recs.len() >= records;
        match res {
            Ok(()) => {
                st.durable_pos = file_end;
                sh.durable_lsn.store(lsn_end, Ordering::Release);
                let mut wake = Vec::new();
                st.parked.retain(|(lsn, t)| {
                    if *lsn <= lsn_end {
                        wake.push(t.clone());
                        false
                    } else {
                        true
                    }
                });
                st.durable_key = Some(last_key);
                if let Some(m) = st.segments.get_mut(&seg.first_key) {
                    m.end = file_end;
                    m.last_key = Some(last_key);
                }
                let mut done = Vec::new();
                while st.callbacks.front().is_some_and(|c| c.0 <= lsn_end) {
                    done.push(st.callbacks.pop_front().expect("front exists"));
                }
                let mut batch = batch;
                batch.clear();
                if st.spare.capacity() < batch.capacity() {
                    st.spare = batch;
                }
                sh.durable.notify_all();
                drop(st);
                for t in wake {
                    t.unpark();
                }
                run_callbacks(done, None);
                st = sh.lock();
            }
            Err(e) => {
                let err = Error::io(&seg.path, e);
                let (err, cbs) = sh.fail(&mut st, err);
                drop(st);
                run_callbacks(cbs, Some(&err));
                return;
            }
        }
    }
}

/// Iterator over durable records, from [`Log::iter_from`]. Yields `(key, payload)`.
///
/// Damage found while reading is reported as `Err` naming the file and offset, after which the
/// iterator ends.
pub struct Iter {
    shared: Arc<Shared>,
    from: u64,
    cur: Option<Cursor>,
    done: bool,
}

struct Cursor {
    seg: Arc<Seg>,
    pos: u64,
    end: u64,
    last: Option<u64>,
    /// The segment's bytes read ahead (never trusted at or after `end`).
    ahead: segment::ReadAhead,
}

/// How much of a segment sequential readers (the iterator, a truncation's
/// cut search, inspection) read at a time.
pub(crate) const ITER_READ_AHEAD: usize = 256 << 10;

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("from", &self.from).finish()
    }
}

impl Iter {
    /// Readable end of a segment: durable end for the active one. `None` if it is gone.
    fn end_of(st: &State, key: u64) -> Option<u64> {
        let m = st.segments.get(&key)?;
        Some(if st.active == Some(key) {
            st.durable_pos
        } else {
            m.end
        })
    }

    /// Position the cursor: the segment holding `from` (or the next one), via the sparse index.
    /// `Err(key)` if that segment was not scanned yet (the caller scans it without the lock and
    /// seeks again).
    fn seek(&self, st: &State, after_seg: Option<u64>) -> std::result::Result<Option<Cursor>, u64> {
        let found = match after_seg {
            None => st
                .segments
                .range(..=self.from)
                .next_back()
                .or_else(|| st.segments.range(self.from..).next()),
            Some(prev) => st.segments.range(prev.saturating_add(1)..).next(),
        };
        let Some((key, m)) = found else {
            return Ok(None);
        };
        if after_seg.is_some_and(|p| *key <= p) {
            return Ok(None);
        }
        if !m.scanned {
            return Err(*key);
        }
        let i = m.index.partition_point(|&(k, _)| k <= self.from);
        let pos = if i == 0 {
            HEADER_LEN as u64
        } else {
            m.index[i - 1].1
        };
        Ok(Self::end_of(st, *key).map(|end| Cursor {
            seg: m.seg.clone(),
            pos,
            end,
            last: None,
            ahead: segment::ReadAhead::new(ITER_READ_AHEAD),
        }))
    }

    /// Scans segment `key` for a seek that found it unscanned; an error ends the iteration.
    fn scan_for_seek(&mut self, key: u64) -> Option<Result<(u64, Vec<u8>)>> {
        match ensure_scanned(&self.shared, key) {
            Ok(()) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let Some(cur) = &mut self.cur else {
                let st = self.shared.lock();
                match self.seek(&st, None) {
                    Ok(c) => {
                        self.done = c.is_none();
                        self.cur = c;
                    }
                    Err(key) => {
                        drop(st);
                        if let Some(err) = self.scan_for_seek(key) {
                            return Some(err);
                        }
                    }
                }
                continue;
            };
            if cur.pos >= cur.end {
                let st = self.shared.lock();
                match Self::end_of(&st, cur.seg.first_key) {
                    Some(end) if end > cur.pos => {
                        cur.end = end;
                        continue;
                    }
                    _ => {}
                }
                // Move to the next segment only once this one is finished (not active).
                if st.active == Some(cur.seg.first_key) {
                    return None;
                }
                let (seg_key, last) = (cur.seg.first_key, cur.last);
                let next = self.seek(&st, Some(seg_key));
                drop(st);
                match next {
                    Ok(Some(mut c)) => {
                        c.pos = HEADER_LEN as u64;
                        c.last = last;
                        self.cur = Some(c);
                    }
                    Ok(None) => return None,
                    Err(key) => {
                        if let Some(err) = self.scan_for_seek(key) {
                            return Some(err);
                        }
                    }
                }
                continue;
            }
            let read = {
                let _g = cur.seg.gate.read().unwrap_or_else(|e| e.into_inner());
                segment::read_record_ahead(
                    cur.seg.file.as_ref(),
                    cur.seg.salt,
                    cur.pos,
                    &mut cur.ahead,
                    cur.end,
                )
            };
            match read {
                Ok(Some((key, data, next))) => {
                    cur.pos = next;
                    cur.last = Some(key);
                    if key >= self.from {
                        return Some(Ok((key, data)));
                    }
                }
                Ok(None) => cur.end = cur.pos,
                Err(reason) => {
                    // Truncated under us? Then this is simply the end of the segment.
                    let st = self.shared.lock();
                    match Self::end_of(&st, cur.seg.first_key) {
                        Some(end) if end > cur.pos => {
                            self.done = true;
                            return Some(Err(Error::corrupt(
                                &cur.seg.path,
                                cur.pos,
                                cur.last,
                                reason,
                            )));
                        }
                        _ => cur.end = cur.pos,
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery (DESIGN.md §10).

struct Found {
    key: u64,
    name: String,
    path: PathBuf,
    file: Arc<dyn SegmentFile>,
    scan: Option<Scan>,
    /// The header of a segment open does not scan (`scan` is `None`).
    deferred: Option<SegmentHeader>,
}

fn recover(storage: &dyn Storage) -> Result<(Vec<SegMeta>, RecoveryReport)> {
    let dir = storage.dir().to_path_buf();
    let names = storage.list().map_err(|e| Error::io(&dir, e))?;
    let mut report = RecoveryReport::default();
    let (intent, keys) = drop_truncated_segments(storage, &names)?;
    // An unfinished truncate may leave any segment last: then every one is scanned.
    let mut found = scan_segments(storage, &keys, intent.is_some())?;
    drop_empty_last(storage, &mut found, &mut report)?;
    validate_chain(&found)?;
    if let Some(l) = found.last_mut() {
        repair_tail(l, intent, &mut report)?;
    }
    if let Some(k) = intent {
        finish_truncate(storage, k, &mut found, &mut report)?;
    }
    let mut metas = Vec::with_capacity(found.len());
    for f in found {
        if let Some(h) = f.deferred {
            report.first_key = report.first_key.or(Some(f.key));
            metas.push(SegMeta {
                seg: Seg::opened(f.key, f.path, f.file, &h),
                end: HEADER_LEN as u64,
                last_key: None,
                count: 0,
                sealed: true,
                index: Vec::new(),
                scanned: false,
            });
            continue;
        }
        let s = f.scan.expect("scanned");
        report.records += s.count;
        report.first_key = report.first_key.or(s.first_key);
        report.last_key = s.last_key.or(report.last_key);
        metas.push(SegMeta {
            seg: Seg::opened(f.key, f.path, f.file, &s.header),
            end: s.end,
            last_key: s.last_key,
            count: s.count,
            sealed: matches!(s.stop, Stop::Seal { .. }),
            index: s.index,
            scanned: true,
        });
    }
    report.segments = metas.len();
    Ok((metas, report))
}

/// R9, first step: an unfinished truncate (its intent file names the key)
/// drops the segments after the key, newest first. Returns the intent's key
/// and the segment keys left, in order.
fn drop_truncated_segments(
    storage: &dyn Storage,
    names: &[String],
) -> Result<(Option<u64>, Vec<u64>)> {
    let dir = storage.dir().to_path_buf();
    let io = |p: &Path, e| Error::io(p, e);
    let intent = names
        .iter()
        .filter_map(|n| format::parse_name(n, TRUNCATE_PREFIX))
        .min();
    let mut keys: Vec<u64> = names
        .iter()
        .filter_map(|n| format::parse_name(n, LOG_PREFIX))
        .collect();
    keys.sort_unstable();
    if let Some(k) = intent {
        for &s in keys.iter().rev().filter(|&&s| s > k) {
            let name = format::segment_name(s);
            storage.remove(&name).map_err(|e| io(&dir.join(&name), e))?;
        }
        storage.sync_dir().map_err(|e| io(&dir, e))?;
        keys.retain(|&s| s <= k);
    }
    Ok((intent, keys))
}

/// Scans the segment recovery decides on before changing anything: the last one, or all of
/// them if `all`; of the others only the header is read, their records are scanned when first
/// needed ([`ensure_scanned`]) or when R8 drops an empty last segment after them. (R8: a last
/// segment whose creation never finished has no scan.)
fn scan_segments(storage: &dyn Storage, keys: &[u64], all: bool) -> Result<Vec<Found>> {
    let dir = storage.dir().to_path_buf();
    let io = |p: &Path, e| Error::io(p, e);
    let mut found = Vec::with_capacity(keys.len());
    for (i, &key) in keys.iter().enumerate() {
        let name = format::segment_name(key);
        let path = dir.join(&name);
        let file = storage.open(&name).map_err(|e| io(&path, e))?;
        let last = i + 1 == keys.len();
        if !all && !last {
            let h = segment::header_of(file.as_ref()).map_err(scan_err(&path))?;
            if h.first_key != key {
                return Err(Error::corrupt(
                    &path,
                    0,
                    None,
                    format!("header first key {:#x} differs from the name", h.first_key),
                ));
            }
            found.push(Found {
                key,
                name,
                path,
                file,
                scan: None,
                deferred: Some(h),
            });
            continue;
        }
        let scan = match segment::scan_for_open(file.as_ref()) {
            Ok(s) => Some(s),
            Err(ScanError::Io(e)) => return Err(io(&path, e)),
            // R8: a creation that never finished (zero or short header) in the last segment.
            Err(ScanError::Header { zero: true, .. }) if last => None,
            Err(ScanError::Header { reason, .. }) => {
                return Err(Error::corrupt(&path, 0, None, reason));
            }
        };
        if let Some(s) = &scan
            && s.header.first_key != key
        {
            return Err(Error::corrupt(
                &path,
                0,
                None,
                format!(
                    "header first key {:#x} differs from the name",
                    s.header.first_key
                ),
            ));
        }
        found.push(Found {
            key,
            name,
            path,
            file,
            scan,
            deferred: None,
        });
    }
    Ok(found)
}

/// A segment that is not the last: its records end clean at a seal naming `next` (the next
/// segment's first key, if known), or at the end of the file (shortened from outside so that no
/// seal fitted: the next header's `prev key` is the chain).
fn check_sealed(path: &Path, s: &Scan, next: Option<u64>) -> Result<()> {
    match s.stop {
        Stop::Seal { next_key } if s.is_clean() && next.is_none_or(|n| n == next_key) => Ok(()),
        Stop::FileEnd if s.is_clean() => Ok(()),
        Stop::Seal { next_key } if s.is_clean() => Err(Error::MissingSegment {
            file: path.to_path_buf(),
            expected: format::segment_name(next_key),
        }),
        _ => Err(Error::corrupt(
            path,
            s.end,
            s.last_key,
            format!("segment not followed by its seal: {}", s.describe_stop()),
        )),
    }
}

/// A segment's scan error as the log reports it: I/O, or an unreadable header (offset 0).
fn scan_err(path: &Path) -> impl Fn(ScanError) -> Error + '_ {
    move |e| match e {
        ScanError::Io(e) => Error::io(path, e),
        ScanError::Header { reason, .. } => Error::corrupt(path, 0, None, reason),
    }
}

/// Scans a segment open left unscanned, the first time its records are needed, outside the
/// state lock, and checks what open checks of a segment that is not the last (DESIGN.md §10):
/// its records end clean at a seal naming the next segment (or at the end of the file), below
/// the next segment's first key. Damage is `Corrupt` naming the file and offset, a seal naming
/// another segment `MissingSegment`; nothing on disk changes.
fn ensure_scanned(sh: &Shared, key: u64) -> Result<()> {
    let (seg, next) = {
        let st = sh.lock();
        match st.segments.get(&key) {
            Some(m) if !m.scanned => (
                m.seg.clone(),
                st.segments
                    .range(key.saturating_add(1)..)
                    .next()
                    .map(|(&k, _)| k),
            ),
            _ => return Ok(()),
        }
    };
    let s = {
        let _g = seg.gate.read().unwrap_or_else(|e| e.into_inner());
        segment::scan_for_open(seg.file.as_ref()).map_err(scan_err(&seg.path))?
    };
    check_sealed(&seg.path, &s, next)?;
    if let (Some(n), Some(l)) = (next, s.last_key)
        && l >= n
    {
        return Err(Error::corrupt(
            &seg.path,
            s.end,
            Some(l),
            format!("last key {l:#x} not before the next segment's first key {n:#x}"),
        ));
    }
    let mut st = sh.lock();
    if let Some(m) = st.segments.get_mut(&key)
        && !m.scanned
        && Arc::ptr_eq(&m.seg, &seg)
    {
        m.end = s.end;
        m.last_key = s.last_key;
        m.count = s.count;
        m.sealed = matches!(s.stop, Stop::Seal { .. });
        m.index = s.index;
        m.scanned = true;
    }
    Ok(())
}

/// R8: the last segment holds no record (crash during a roll, or a torn
/// first record): removed, and its predecessor's seal undone.
fn drop_empty_last(
    storage: &dyn Storage,
    found: &mut Vec<Found>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let dir = storage.dir().to_path_buf();
    let io = |p: &Path, e| Error::io(p, e);
    if let Some(l) = found.last() {
        let empty = match &l.scan {
            None => true,
            Some(s) => s.count == 0 && (s.is_clean() || s.is_torn()),
        };
        if empty {
            let l = found.pop().expect("last");
            if let Some(p) = found.last_mut() {
                if p.scan.is_none() {
                    // Open read only its header: it is the last segment now.
                    p.scan =
                        Some(segment::scan_for_open(p.file.as_ref()).map_err(scan_err(&p.path))?);
                    p.deferred = None;
                }
                let ps = p.scan.as_mut().expect("scanned just above");
                if ps.stop == (Stop::Seal { next_key: l.key }) && ps.is_clean() {
                    p.file
                        .write_at(ps.end, &[0u8; FRAME_HEADER])
                        .and_then(|()| p.file.sync(ps.end, FRAME_HEADER as u64))
                        .map_err(|e| io(&p.path, e))?;
                    ps.stop = Stop::End;
                    ps.nonzero_end = ps.end;
                }
            }
            storage.remove(&l.name).map_err(|e| io(&l.path, e))?;
            storage.sync_dir().map_err(|e| io(&dir, e))?;
            report.removed_empty_segment = Some(l.path);
        }
    }
    Ok(())
}

/// Validates the chain (each header's `prev key`, keys increasing across
/// segments) and every segment but the last (clean up to its seal).
fn validate_chain(found: &[Found]) -> Result<()> {
    let n = found.len();
    let mut prev_last: Option<u64> = None;
    for i in 0..n {
        let f = &found[i];
        let header = match (&f.scan, &f.deferred) {
            (Some(s), _) => &s.header,
            (None, Some(h)) => h,
            // Only an empty last segment has neither, and R8 dropped it.
            (None, None) => {
                return Err(Error::corrupt(
                    &f.path,
                    0,
                    None,
                    "segment header unreadable",
                ));
            }
        };
        if i > 0 {
            let pk = found[i - 1].key;
            if header.prev_key != Some(pk) {
                return Err(Error::MissingSegment {
                    file: f.path.clone(),
                    expected: match header.prev_key {
                        Some(k) => format!("{} before it", format::segment_name(k)),
                        None => "no predecessor, but older segments exist".into(),
                    },
                });
            }
        }
        // A segment not scanned yet: its records are checked when first read.
        let Some(s) = f.scan.as_ref() else {
            prev_last = None;
            continue;
        };
        if let (Some(pl), Some(fk)) = (prev_last, s.first_key)
            && fk <= pl
        {
            return Err(Error::corrupt(
                &f.path,
                HEADER_LEN as u64,
                Some(pl),
                format!("first key {fk:#x} not after the previous segment's last key {pl:#x}"),
            ));
        }
        prev_last = s.last_key.or(prev_last);
        if i + 1 < n {
            check_sealed(&f.path, s, Some(found[i + 1].key))?;
        }
    }
    Ok(())
}

/// The last segment: R7b (sealed, successor missing), R9 (cut after the
/// truncate's key), R2/R3 (a torn tail is cut and zeroed, damage is an
/// error).
fn repair_tail(l: &mut Found, intent: Option<u64>, report: &mut RecoveryReport) -> Result<()> {
    let io = |p: &Path, e| Error::io(p, e);
    let s = l.scan.as_mut().expect("scanned");
    if let Stop::Seal { next_key } = s.stop
        && s.is_clean()
        && intent.is_none()
    {
        return Err(Error::MissingSegment {
            file: l.path.clone(),
            expected: format::segment_name(next_key),
        });
    }
    let clean = s.is_clean();
    let acceptable = clean
        || match intent {
            // R9: a truncate after k was under way. Everything was durable when it began,
            // and it only zeroes bytes after k's record: damage there is its own work
            // (wherever its chunked zeroing stopped), damage before it is R3.
            Some(k) => {
                s.last_key.is_some_and(|lk| lk >= k) || s.next_valid.is_none_or(|(_, nk)| nk > k)
            }
            // R2 / R3: torn iff no later frame proves the bytes at the stop durable.
            None => s.is_torn(),
        };
    if !acceptable {
        return Err(Error::corrupt(
            &l.path,
            s.end,
            s.last_key,
            s.describe_stop(),
        ));
    }
    let mut cut = s.end;
    let mut zero_to = s.nonzero_end.max(s.after_stop());
    if clean && !matches!(s.stop, Stop::Seal { .. }) {
        zero_to = cut;
    }
    // A handle on the segment for cutting and zeroing its tail.
    let seg = Seg {
        first_key: l.key,
        path: l.path.clone(),
        file: l.file.clone(),
        gate: RwLock::new(()),
        window: s.header.window,
        prev_key: None,
        salt: s.header.salt,
    };
    if let Some(k) = intent
        && s.last_key.is_some_and(|lk| lk > k)
    {
        let (c, last) = cut_point(&seg, &s.index, s.end, k)?;
        cut = c;
        // Up to the end of the records and past a mark or seal after them.
        zero_to = zero_to.max(s.after_stop());
        s.last_key = last;
        s.index.retain(|&(_, at)| at < cut);
        // Count is only informational; recount cheaply from a rescan below.
    }
    if zero_to > cut {
        zero_backwards(&seg, cut, zero_to).map_err(|e| io(&l.path, e))?;
        if !clean && intent.is_none() {
            tracing::warn!(file = %l.path.display(), offset = cut, "zk-txnlog: cut torn tail");
            report.torn_tail = Some((l.path.clone(), cut, zero_to - cut));
        }
        if cut != s.end {
            let rescanned = segment::scan(l.file.as_ref()).map_err(scan_err(&l.path))?;
            *s = rescanned;
        } else {
            s.stop = Stop::End;
            s.nonzero_end = s.end;
        }
    }
    Ok(())
}

/// R9, last step: the truncate is done; its intent file goes, and a last
/// segment it left without records too.
fn finish_truncate(
    storage: &dyn Storage,
    k: u64,
    found: &mut Vec<Found>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let dir = storage.dir().to_path_buf();
    let io = |p: &Path, e| Error::io(p, e);
    let name = format!("{TRUNCATE_PREFIX}{k:x}");
    storage.remove(&name).map_err(|e| io(&dir.join(&name), e))?;
    storage.sync_dir().map_err(|e| io(&dir, e))?;
    report.finished_truncate = Some(k);
    // A truncate that removed every record of the last segment leaves it empty: drop it.
    if let Some(l) = found.last()
        && l.scan.as_ref().is_some_and(|s| s.count == 0)
    {
        let l = found.pop().expect("last");
        storage.remove(&l.name).map_err(|e| io(&l.path, e))?;
        storage.sync_dir().map_err(|e| io(&dir, e))?;
    }
    Ok(())
}
