//! Tuning knobs of a [`Log`](crate::Log).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{FRAME_HEADER, HEADER_LEN};
use crate::storage::Backend;

/// Options for [`Log::open`](crate::Log::open). Build with `Options::default()` and the setters.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) segment_bytes: u64,
    pub(crate) max_record_bytes: usize,
    pub(crate) max_unsynced_bytes: u64,
    pub(crate) max_batch: usize,
    pub(crate) flush_delay: Duration,
    pub(crate) gather_when_busy: (usize, Duration),
    pub(crate) backend: Backend,
    pub(crate) no_sync: bool,
    pub(crate) contiguous_keys: bool,
    pub(crate) zero_fill_ahead: bool,
    pub(crate) on_sync: Option<SyncObserver>,
}

/// A callback given each batch sync's duration (see [`Options::on_sync`]).
#[derive(Clone)]
pub(crate) struct SyncObserver(pub(crate) Arc<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 64 << 20,
            max_record_bytes: 1 << 20,
            max_unsynced_bytes: 8 << 20,
            max_batch: 4096,
            flush_delay: Duration::ZERO,
            gather_when_busy: (0, Duration::ZERO),
            backend: Backend::Mmap,
            no_sync: false,
            contiguous_keys: false,
            zero_fill_ahead: true,
            on_sync: None,
        }
    }
}

impl Options {
    /// Size of each preallocated segment file (default 64 MiB).
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Largest payload accepted by `append` (default 1 MiB, ZooKeeper's `jute.maxbuffer`). Must be at most half of
    /// [`max_unsynced_bytes`](Self::max_unsynced_bytes) and fit in an empty segment.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Most bytes that may be appended but not yet durable (default 8 MiB). Appenders wait
    /// beyond it (back-pressure). It is written into each segment's header; records are at most
    /// half of it. (Recovery tells a torn tail from damage by the records' durability
    /// watermarks, not by this window.)
    pub fn max_unsynced_bytes(mut self, bytes: u64) -> Self {
        self.max_unsynced_bytes = bytes;
        self
    }

    /// Most records made durable by one sync (default 4096).
    pub fn max_batch(mut self, records: usize) -> Self {
        self.max_batch = records;
        self
    }

    /// How long the sync thread waits for more records before syncing (default zero: sync as
    /// soon as anything is queued; records arriving during a sync form the next batch).
    pub fn flush_delay(mut self, delay: Duration) -> Self {
        self.flush_delay = delay;
        self
    }

    /// Group commit under load: when at least `records` records were appended while the
    /// previous batch was written and synced, the sync thread waits up to that batch's write
    /// and sync time (at most `max_wait`) for more before the next one (not past `max_batch`
    /// or half the unsynced window), so that a busy log syncs fewer, larger batches; a log
    /// appended to slowly syncs at once as before. `records` 0 (the default) turns it off; a
    /// `flush_delay` replaces it.
    pub fn gather_when_busy(mut self, records: usize, max_wait: Duration) -> Self {
        self.gather_when_busy = (records, max_wait);
        self
    }

    /// Calls `f` on the sync thread with the duration of each batch's sync
    /// (msync / fdatasync, not the write before it), for metrics such as
    /// ZooKeeper's `fsynctime`; not called with
    /// [`unsafe_no_sync`](Self::unsafe_no_sync). `f` must be quick: the next
    /// batch waits for it.
    pub fn on_sync(mut self, f: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.on_sync = Some(SyncObserver(Arc::new(f)));
        self
    }

    /// Which storage implementation to use (default [`Backend::Mmap`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// **Unsafe for real data, tests only:** skip msync/fdatasync. Records are still reported
    /// "durable" in order, but a crash or power cut may lose any of them.
    pub fn unsafe_no_sync(mut self, no_sync: bool) -> Self {
        self.no_sync = no_sync;
        self
    }

    /// Require each appended key to be exactly one more than the previous one (an assertion for
    /// users with dense keys; the contract is only "strictly increasing").
    pub fn contiguous_keys(mut self, on: bool) -> Self {
        self.contiguous_keys = on;
        self
    }

    /// Prepare the next segment ahead of time on a helper thread (`zk-txnlog-prep`): a file
    /// `log.spare.tmp` in the log directory whose blocks are written with zeros and synced, in
    /// 1 MiB writes with an `fdatasync` every 4 MiB (default on). A roll renames it into place
    /// when it is ready and preallocates with `fallocate` as before when it is not (it never
    /// waits). Appends into zero-written blocks sync faster than into `fallocate`'s unwritten
    /// extents, whose first sync must also commit the extent conversion to the filesystem
    /// journal (DESIGN.md §2, BENCH.md): measured here, 15–30 % lower append→durable p50 under a
    /// pipelined load (syncs of several KiB), but ~10 µs slower per sync when each sync carries
    /// one small record (an idle log). Costs one segment of extra disk space and a segment's
    /// worth of paced background writes per roll (and at open).
    ///
    /// File backends only ([`Backend::Memory`] ignores it); also off with
    /// [`unsafe_no_sync`](Self::unsafe_no_sync), which has no syncs to speed up.
    pub fn zero_fill_ahead(mut self, on: bool) -> Self {
        self.zero_fill_ahead = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOptions(m));
        if self.max_record_bytes > (u32::MAX - 64) as usize {
            return bad("max_record_bytes must be below 4 GiB".into());
        }
        let max_frame = crate::format::frame_len(self.max_record_bytes);
        if self.max_unsynced_bytes < 2 * max_frame {
            return bad(format!(
                "max_unsynced_bytes ({}) must be at least twice the largest frame ({max_frame})",
                self.max_unsynced_bytes
            ));
        }
        if self.segment_bytes < HEADER_LEN as u64 + max_frame + FRAME_HEADER as u64 {
            return bad(format!(
                "segment_bytes ({}) cannot hold one record of max_record_bytes plus a seal",
                self.segment_bytes
            ));
        }
        if self.max_batch == 0 {
            return bad("max_batch must be at least 1".into());
        }
        Ok(())
    }
}
