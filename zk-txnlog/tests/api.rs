//! Behaviour of the public API: append / wait / callbacks, group commit under concurrency,
//! reads, truncate, roll, purge, snapshots, the directory lock, fault injection and the latch.

use std::sync::Arc;

use zk_txnlog::{
    Backend, Error, Log, MemDisk, Options, SnapshotStore, inspect_segment, read_segment,
    segment_paths,
};

fn small(disk: &MemDisk) -> Options {
    Options::default()
        .backend(Backend::Memory(disk.clone()))
        .segment_bytes(4096)
        .max_record_bytes(256)
        .max_unsynced_bytes(1024)
}

/// `opts` after a first open that logged record 1, so that the segment exists
/// (its creation syncs) before a test counts syncs or times batches.
fn with_a_segment(opts: Options) -> Options {
    let log = Log::open("mem", opts.clone()).unwrap();
    log.append(1, &payload(1)).unwrap().wait().unwrap();
    opts
}

fn payload(key: u64) -> Vec<u8> {
    let n = (key % 97) as usize + 1;
    (0..n).map(|i| (key as u8).wrapping_add(i as u8)).collect()
}

fn all(log: &Log) -> Vec<(u64, Vec<u8>)> {
    log.iter_from(0)
        .collect::<Result<_, _>>()
        .expect("read log")
}

#[test]
fn append_wait_read_back_and_reopen_all_backends() {
    for backend in ["mmap", "pwrite", "memory"] {
        let dir = tempfile::tempdir().unwrap();
        let disk = MemDisk::new();
        let opts = match backend {
            "mmap" => Options::default().backend(Backend::Mmap),
            "pwrite" => Options::default().backend(Backend::Pwrite),
            _ => Options::default().backend(Backend::Memory(disk.clone())),
        }
        .segment_bytes(8192)
        .max_record_bytes(256)
        .max_unsynced_bytes(2048);
        let keys: Vec<u64> = (1..300).map(|i| i * 3).collect();
        {
            let log = Log::open(dir.path(), opts.clone()).unwrap();
            let tickets: Vec<_> = keys
                .iter()
                .map(|&k| log.append(k, &payload(k)).unwrap())
                .collect();
            for t in tickets {
                let k = t.key();
                assert_eq!(t.wait().unwrap(), k);
            }
            assert_eq!(log.durable_key(), Some(897));
            assert!(
                log.segment_names().len() >= 3,
                "{backend}: rolled {:?}",
                log.segment_names()
            );
            let got = all(&log);
            assert_eq!(got.len(), keys.len());
            assert!(got.iter().all(|(k, v)| *v == payload(*k)));
            // iter_from a key in the middle, and between keys.
            let from: Vec<u64> = log.iter_from(451).map(|r| r.unwrap().0).collect();
            assert_eq!(from[0], 453);
            assert_eq!(from.len(), keys.iter().filter(|&&k| k >= 451).count());
            log.close().unwrap();
        }
        let log = Log::open(dir.path(), opts).unwrap();
        // Open reads the records of the last segment only (DESIGN.md §10).
        let scanned = log.recovery_report().records;
        assert!(
            scanned > 0 && scanned <= keys.len() as u64,
            "{backend}: {scanned}"
        );
        log.verify_all().unwrap();
        assert_eq!(log.recovery_report().torn_tail, None);
        assert_eq!(all(&log).len(), keys.len());
        log.append(1000, b"after reopen").unwrap().wait().unwrap();
        assert!(matches!(log.append(999, b"x"), Err(Error::KeyOrder { .. })));
    }
}

#[test]
fn concurrent_appenders_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            Options::default()
                .segment_bytes(1 << 20)
                .max_record_bytes(1024)
                .max_unsynced_bytes(64 << 10),
        )
        .unwrap(),
    );
    let next = Arc::new(std::sync::Mutex::new(0u64));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (log, next) = (log.clone(), next.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let t = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        log.append(*n, &payload(*n)).unwrap()
                    };
                    t.wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = all(&log);
    assert_eq!(got.len(), 1600);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn callbacks_run_in_key_order_on_a_channel() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    for k in 1..=100u64 {
        let tx = tx.clone();
        log.append_with(k, &payload(k), move |r| {
            tx.send(r.unwrap()).unwrap();
        })
        .unwrap();
    }
    let got: Vec<u64> = (0..100).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
}

/// One `on_durable` callback covers every append before it: it reports the last key, only
/// once that record is durable, after the per-record callbacks queued before it; with
/// everything durable already it runs at once (an idle sync thread would never run it).
#[test]
fn on_durable_covers_the_appends_before_it() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    for round in 0..20u64 {
        let base = round * 10;
        let t1 = tx.clone();
        log.append_with(base + 1, &payload(base + 1), move |r| {
            t1.send(("record", r.unwrap())).unwrap();
        })
        .unwrap();
        let mut last = None;
        for k in base + 2..=base + 9 {
            last = Some(log.append(k, &payload(k)).unwrap());
        }
        let t2 = tx.clone();
        let last = last.unwrap();
        log.on_durable(move |r| {
            assert!(
                last.is_durable(),
                "reported before the last record was durable"
            );
            t2.send(("all", r.unwrap())).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), ("record", base + 1));
        assert_eq!(rx.recv().unwrap(), ("all", base + 9));
    }
    // Nothing left to sync: the callback runs on this thread, before on_durable returns.
    log.flush().unwrap();
    let (t3, r3) = crossbeam_channel::unbounded();
    log.on_durable(move |r| t3.send(r.unwrap()).unwrap())
        .unwrap();
    assert_eq!(r3.try_recv(), Ok(199));
    // An empty log: key 0.
    let empty = Log::open("mem2", small(&MemDisk::new())).unwrap();
    let (t4, r4) = crossbeam_channel::unbounded();
    empty
        .on_durable(move |r| t4.send(r.unwrap()).unwrap())
        .unwrap();
    assert_eq!(r4.try_recv(), Ok(0));
}

/// A failed sync reaches an `on_durable` callback as an error, never as durable.
#[test]
fn on_durable_reports_a_failed_sync() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    log.append(1, b"a").unwrap().wait().unwrap();
    disk.fail_sync_after(0);
    log.append(2, b"b").unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    // The sync thread may fail before the callback is queued (CI hit that race): then the
    // callback is refused at once instead of being called with the failure.
    match log.on_durable(move |r| tx.send(r.is_ok()).unwrap()) {
        Ok(()) => assert!(!rx.recv().unwrap(), "a failed sync was reported durable"),
        Err(e) => assert!(matches!(e, Error::Latched(_)), "{e}"),
    }
    assert!(matches!(
        log.on_durable(|_| panic!("never called")),
        Err(Error::Latched(_))
    ));
}

#[test]
fn contiguous_mode_rejects_gaps_and_default_allows_them() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk).contiguous_keys(true)).unwrap();
    log.append(5, b"a").unwrap();
    log.append(6, b"b").unwrap();
    assert!(matches!(log.append(8, b"c"), Err(Error::KeyOrder { .. })));
    let log2 = Log::open("mem", small(&MemDisk::new())).unwrap();
    log2.append(1, b"a").unwrap();
    log2.append(1 << 32, b"b").unwrap().wait().unwrap();
}

#[test]
fn record_too_large_and_bad_options() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    assert!(matches!(
        log.append(1, &[0; 257]),
        Err(Error::RecordTooLarge { .. })
    ));
    log.append(1, &[]).unwrap().wait().unwrap();
    assert_eq!(all(&log), vec![(1, vec![])]);
    let bad = small(&disk).max_unsynced_bytes(300);
    assert!(matches!(
        Log::open("mem", bad),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn truncate_after_then_append_and_reopen() {
    let disk = MemDisk::new();
    {
        let log = Log::open("mem", small(&disk)).unwrap();
        for k in 1..=200u64 {
            log.append(k * 2, &payload(k * 2)).unwrap();
        }
        log.flush().unwrap();
        let segs = log.segment_names().len();
        log.truncate_after(101).unwrap();
        assert_eq!(log.last_key(), Some(100));
        assert!(log.segment_names().len() < segs);
        assert!(matches!(log.append(101, b"x"), Err(Error::KeyOrder { .. })));
        log.append(103, b"new").unwrap().wait().unwrap();
        let got = all(&log);
        assert_eq!(got.len(), 51);
        assert_eq!(got.last().unwrap(), &(103, b"new".to_vec()));
        // Truncating above the end is a no-op; truncating everything empties the log.
        log.truncate_after(1000).unwrap();
        assert_eq!(all(&log).len(), 51);
    }
    let log = Log::open("mem", small(&disk)).unwrap();
    assert_eq!(log.recovery_report().torn_tail, None);
    assert_eq!(all(&log).len(), 51);
    log.truncate_after(0).unwrap();
    assert!(all(&log).is_empty());
    assert_eq!(log.last_key(), None);
    log.append(7, b"fresh").unwrap().wait().unwrap();
    drop(log);
    let log = Log::open("mem", small(&disk)).unwrap();
    assert_eq!(all(&log), vec![(7, b"fresh".to_vec())]);
}

#[test]
fn roll_starts_a_new_segment_and_iterator_follows_new_records() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    log.append(1, b"a").unwrap().wait().unwrap();
    log.roll().unwrap();
    let mut it = log.iter_from(0);
    assert_eq!(it.next().unwrap().unwrap().0, 1);
    assert!(it.next().is_none());
    log.append(2, b"b").unwrap().wait().unwrap();
    assert_eq!(log.segment_names(), vec!["log.1", "log.2"]);
    let mut it = log.iter_from(0);
    assert_eq!(it.next().unwrap().unwrap().0, 1);
    assert_eq!(it.next().unwrap().unwrap().0, 2);
}

#[test]
fn purge_keeps_retained_snapshots_and_needed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    for k in 1..=400u64 {
        log.append(k, &payload(k)).unwrap();
        if k % 50 == 0 {
            log.flush().unwrap();
            let mut w = snaps.create(k).unwrap();
            std::io::Write::write_all(&mut w, format!("state {k}").as_bytes()).unwrap();
            w.finish().unwrap();
        }
    }
    log.flush().unwrap();
    assert!(matches!(
        zk_txnlog::purge(&log, &snaps, 2),
        Err(Error::InvalidOptions(_))
    ));
    let r = zk_txnlog::purge(&log, &snaps, 3).unwrap();
    assert_eq!(r.snapshots, vec![50, 100, 150, 200, 250]);
    assert!(!r.segments.is_empty());
    let keys: Vec<u64> = snaps.list().unwrap().iter().map(|s| s.key).collect();
    assert_eq!(keys, vec![300, 350, 400]);
    // Everything after the oldest kept snapshot is still readable.
    let first = log.first_key().unwrap();
    assert!(first <= 301, "first {first}");
    let after: Vec<u64> = log.iter_from(301).map(|r| r.unwrap().0).collect();
    assert_eq!(after, (301..=400).collect::<Vec<_>>());
    // A restart resumes from the newest snapshot.
    drop(log);
    let log = Log::open("mem", small(&disk)).unwrap();
    let rec = zk_txnlog::recover(&log, &snaps).unwrap();
    assert_eq!(rec.replay_from, 401);
    assert_eq!(rec.snapshot.unwrap().key(), 400);
}

#[test]
fn snapshot_round_trip_and_drop_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = snaps.create(0x1_0000_0002).unwrap();
    std::io::Write::write_all(&mut w, &data).unwrap();
    let info = w.finish().unwrap();
    assert!(info.path.ends_with("snapshot.100000002"));
    let w2 = snaps.create(0x1_0000_0009).unwrap();
    drop(w2); // unfinished: leaves nothing
    let list = snaps.list().unwrap();
    assert_eq!(list.len(), 1);
    let mut r = snaps.newest_valid().unwrap().unwrap();
    assert_eq!(r.key(), 0x1_0000_0002);
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn directory_lock_excludes_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().segment_bytes(4 << 20)).unwrap();
    assert!(matches!(
        Log::open(dir.path(), Options::default().segment_bytes(4 << 20)),
        Err(Error::Locked(_))
    ));
    log.append(1, b"x").unwrap().wait().unwrap();
    // Read-only inspection works while the writer runs.
    let seg = dir.path().join("log.1");
    let s = inspect_segment(&seg).unwrap();
    assert_eq!((s.records, s.last_key, s.clean), (1, Some(1), true));
    let recs: Vec<_> = read_segment(&seg)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(recs, vec![(1, b"x".to_vec())]);
    drop(log);
    Log::open(dir.path(), Options::default().segment_bytes(4 << 20)).unwrap();
}

#[test]
fn io_error_at_nth_write_latches_until_reopen() {
    for n in 0..6 {
        let disk = MemDisk::new();
        let log = Log::open("mem", small(&disk)).unwrap();
        for k in 1..=20u64 {
            log.append(k, &payload(k)).unwrap().wait().unwrap();
        }
        disk.fail_write_after(n);
        let mut failed = false;
        let mut acked = 20;
        for k in 21..=60u64 {
            match log.append(k, &payload(k)).and_then(|t| t.wait()) {
                Ok(_) => acked = k,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "n={n}");
        // Latched: everything fails now, even though the disk may work again.
        assert!(matches!(log.append(1000, b"x"), Err(Error::Latched(_))));
        assert!(matches!(log.flush(), Err(Error::Latched(_))));
        assert!(matches!(log.truncate_after(1), Err(Error::Latched(_))));
        drop(log);
        let img = disk.crash(n);
        let log = Log::open("mem", small(&img)).unwrap();
        let got = all(&log);
        assert!(got.len() as u64 >= acked, "acked {acked} got {}", got.len());
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, (k, v))| *k == i as u64 + 1 && *v == payload(*k))
        );
    }
}

#[test]
fn io_error_at_nth_sync_fails_waiters_and_never_reports_durable() {
    for n in 0..6 {
        let disk = MemDisk::new();
        let log = Log::open("mem", small(&disk)).unwrap();
        disk.fail_sync_after(n);
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut tickets = Vec::new();
        let mut results: Vec<(u64, bool)> = Vec::new();
        let mut refused = false;
        for k in 1..=60u64 {
            let tx = tx.clone();
            match log.append_with(k, &payload(k), move |r| {
                let _ = tx.send((k, r.is_ok()));
            }) {
                Ok(()) => tickets.push(k),
                Err(e) => {
                    assert!(matches!(e, Error::Latched(_) | Error::Io { .. }), "{e}");
                    refused = true;
                    break;
                }
            }
            // Wait for the callbacks every 5 records, so there are at least 12 syncs.
            if k % 5 == 0 {
                while results.len() < tickets.len() {
                    results.push(rx.recv().unwrap());
                }
            }
        }
        drop(tx);
        results.extend(rx.iter());
        assert_eq!(results.len(), tickets.len(), "every callback runs once");
        let acked: Vec<u64> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert!(
            refused || results.iter().any(|r| !r.1),
            "n={n}: a sync failed"
        );
        drop(log);
        let img = disk.crash(n + 100);
        let log = Log::open("mem", small(&img)).unwrap();
        let got: Vec<u64> = all(&log).into_iter().map(|r| r.0).collect();
        assert!(got.starts_with(&acked), "acked {acked:?} got {got:?}");
    }
}

#[test]
fn full_disk_is_an_error_not_a_crash() {
    let disk = MemDisk::new();
    disk.set_capacity(3 * 4096);
    let log = Log::open("mem", small(&disk)).unwrap();
    let mut last_ok = 0;
    let mut err = None;
    for k in 1..=1000u64 {
        match log.append(k, &payload(k)).and_then(|t| t.wait()) {
            Ok(_) => last_ok = k,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("disk fills up");
    assert!(
        err.to_string().contains("No space") || err.to_string().contains("space"),
        "{err}"
    );
    drop(log);
    let log = Log::open("mem", small(&disk.snapshot())).unwrap();
    assert_eq!(log.last_key(), Some(last_ok));
}

#[test]
fn knobs_flush_delay_max_batch_and_no_sync() {
    for opts in [
        small(&MemDisk::new()).flush_delay(std::time::Duration::from_millis(2)),
        small(&MemDisk::new()).max_batch(1),
        small(&MemDisk::new()).unsafe_no_sync(true),
    ] {
        let log = Arc::new(Log::open("mem", opts).unwrap());
        let next = Arc::new(std::sync::Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (log, next) = (log.clone(), next.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let t = {
                            let mut n = next.lock().unwrap();
                            *n += 1;
                            log.append(*n, &payload(*n)).unwrap()
                        };
                        t.wait().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(log.durable_key(), Some(200));
        assert_eq!(all(&log).len(), 200);
    }
}

#[test]
fn read_only_inspection_names_file_and_offset_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(
            dir.path(),
            Options::default()
                .backend(Backend::Pwrite)
                .segment_bytes(64 << 10)
                .max_record_bytes(256)
                .max_unsynced_bytes(1024),
        )
        .unwrap();
        for k in 1..=50u64 {
            log.append(k, &[k as u8; 100]).unwrap();
        }
        log.close().unwrap();
    }
    let seg = dir.path().join("log.1");
    assert_eq!(segment_paths(dir.path()).unwrap(), vec![seg.clone()]);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = 64 + 3 * 128; // 24-byte frame header + 100 bytes, padded to 8
    bytes[at + 30] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let recs: Vec<_> = read_segment(&seg).unwrap().collect();
    assert_eq!(recs.len(), 4);
    match &recs[3] {
        Err(Error::Corrupt {
            file, offset, key, ..
        }) => {
            assert_eq!(file, &seg);
            assert_eq!(*offset, at as u64);
            assert_eq!(*key, Some(3));
        }
        other => panic!("{other:?}"),
    }
    let s = inspect_segment(&seg).unwrap();
    assert_eq!((s.records, s.end, s.clean), (3, at as u64, false));
    // Later records (and the durability mark left by close) prove record 4 was durable: R3.
    assert!(!s.torn && s.proven_by.is_some(), "{s:?}");
    assert!(s.problem.unwrap().contains("crc"));
    // Nothing was written by the inspection.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
    // Garbage that is not a segment at all is an error, not a panic.
    std::fs::write(dir.path().join("log.99"), b"short").unwrap();
    assert!(inspect_segment(dir.path().join("log.99")).is_err());
    assert!(read_segment(dir.path().join("log.99")).is_err());
}

/// Regression: an appender waiting to roll could create a segment for a key that another
/// appender had meanwhile overtaken, leaving the segment chain out of order.
#[test]
fn racing_appenders_with_unordered_keys_keep_the_log_consistent() {
    let disk = MemDisk::new();
    let log = Arc::new(Log::open("mem", small(&disk).segment_bytes(1024)).unwrap());
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0..300u64 {
                    let k = i * 6 + t;
                    match log.append(k, &payload(k)) {
                        Ok(tk) => {
                            if i % 7 == 0 {
                                tk.wait().unwrap();
                            }
                            ok += 1;
                        }
                        Err(Error::KeyOrder { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    log.flush().unwrap();
    let got = all(&log);
    assert_eq!(got.len(), accepted);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(got.iter().all(|(k, v)| *v == payload(*k)));
    drop(log);
    let log = Log::open("mem", small(&disk).segment_bytes(1024)).unwrap();
    assert_eq!(all(&log), got);
}

#[test]
fn real_preallocation_failure_is_an_error_and_leaves_no_file() {
    // A segment far larger than the disk: fallocate fails (ENOSPC / EFBIG) on the real path.
    let dir = tempfile::tempdir().unwrap();
    for backend in [Backend::Mmap, Backend::Pwrite] {
        let log = Log::open(
            dir.path(),
            Options::default().backend(backend).segment_bytes(1 << 52),
        )
        .unwrap();
        match log.append(1, b"x") {
            Err(Error::Io { file, .. }) => assert!(file.ends_with("log.1")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(matches!(log.append(2, b"x"), Err(Error::Latched(_))));
        drop(log);
        assert!(
            !dir.path().join("log.1").exists(),
            "half-made segment removed"
        );
        // The spare helper failed the same way (a warning, not an error) and left nothing.
        assert!(!dir.path().join("log.spare.tmp").exists());
    }
}

#[test]
fn a_panicking_callback_does_not_stop_group_commit() {
    let disk = MemDisk::new();
    let log = Log::open("mem", small(&disk)).unwrap();
    log.append_with(1, b"a", |_| panic!("caller bug")).unwrap();
    log.append(2, b"b").unwrap().wait().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    log.append_with(3, b"c", move |r| tx.send(r.unwrap()).unwrap())
        .unwrap();
    assert_eq!(rx.recv().unwrap(), 3);
}

/// A follower-style reader tails the log while an appender writes and segments roll: it sees
/// every durable record once, in order, with intact bytes, and never an error.
#[test]
fn reader_tails_the_log_during_appends_and_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            Options::default()
                .segment_bytes(16 << 10)
                .max_record_bytes(512)
                .max_unsynced_bytes(4 << 10),
        )
        .unwrap(),
    );
    const N: u64 = 2000;
    let (tx, rx) = crossbeam_channel::unbounded();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for k in 1..=N {
                let t = log.append(k, &payload(k)).unwrap();
                if k % 16 == 0 || k == N {
                    tx.send(t.wait().unwrap()).unwrap();
                }
            }
        })
    };
    let mut next = 1u64;
    let mut it = log.iter_from(1);
    // Each message says "durable up to k": read at least that far, then wait for the next one.
    for durable in rx.iter() {
        while next <= durable {
            let (k, v) = it.next().expect("durable record is readable").unwrap();
            assert_eq!(k, next);
            assert_eq!(v, payload(k));
            next += 1;
        }
    }
    assert_eq!(next, N + 1);
    writer.join().unwrap();
    assert!(log.segment_names().len() > 5);
}

#[test]
fn snapshot_writeback_passes_every_byte_through() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let mut w = snaps.create(7).unwrap();
    w.writeback_every(4 << 20);
    let chunk: Vec<u8> = (0..=255u8).cycle().take(100_003).collect();
    for _ in 0..100 {
        w.write_all(&chunk).unwrap();
    }
    // 10 MB: at least two early syncs happened, and nothing was lost.
    w.finish().unwrap();
    let mut back = Vec::new();
    snaps
        .open_snapshot(7)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back.len(), 100 * chunk.len());
    assert!(back.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
}

#[test]
fn an_uncached_snapshot_is_byte_for_byte_the_buffered_one() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    // Content lengths around the 4 KiB blocks and the 4 MiB chunks the
    // uncached writer stages (the 24-byte header shifts them), written in
    // odd pieces, with an early sync and writeback in between.
    let chunk = 4usize << 20;
    let lens = [
        0,
        1,
        4096 - 48,
        4096 - 47,
        chunk - 24,
        chunk - 23,
        2 * chunk + 4096 - 24,
        9_437_191,
    ];
    for (i, &len) in lens.iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let write = |key: u64, uncached: bool| {
            let mut w = if uncached {
                snaps.create_uncached(key)
            } else {
                snaps.create(key)
            }
            .unwrap();
            w.writeback_every(3 << 20);
            let mut rest = &data[..];
            let mut n = 1;
            while !rest.is_empty() {
                let k = n.min(rest.len());
                w.write_all(&rest[..k]).unwrap();
                rest = &rest[k..];
                if n == 4096 {
                    w.sync().unwrap();
                }
                n = n * 4 + 1;
            }
            std::fs::read(w.finish().unwrap().path).unwrap()
        };
        let buffered = write(2 * i as u64, false);
        let uncached = write(2 * i as u64 + 1, true);
        assert_eq!(buffered.len(), uncached.len(), "content of {len} bytes");
        // Same bytes but for the key in the header.
        assert_eq!(buffered[24..], uncached[24..], "content of {len} bytes");
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut snaps.open_snapshot(2 * i as u64 + 1).unwrap(),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, data, "content of {len} bytes");
    }
}

#[test]
fn a_flush_delay_gathers_the_appends_of_its_window_into_one_sync() {
    let disk = MemDisk::new();
    // The segment exists without waiting out a delay.
    let opts = with_a_segment(
        small(&disk)
            .segment_bytes(1 << 16)
            .max_unsynced_bytes(1 << 14),
    );
    let opts = opts.flush_delay(std::time::Duration::from_secs(3));
    let log = Log::open("mem", opts).unwrap();
    // The next sync succeeds, every later one fails: records that needed a second sync fail.
    disk.fail_sync_after(1);
    let first = log.append(2, &payload(2)).unwrap();
    // Well inside the delay (a stall of the test thread would have to last 3 s to matter);
    // without the delay, record 2 would be synced alone by now.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let rest: Vec<_> = (3..=6)
        .map(|k| log.append(k, &payload(k)).unwrap())
        .collect();
    first.wait().unwrap();
    for t in rest {
        t.wait().unwrap();
    }
    assert_eq!(log.durable_key(), Some(6));
}

#[test]
fn a_busy_log_gathers_its_next_batch_for_as_long_as_the_last_one_took() {
    use std::time::Duration;
    let disk = MemDisk::new();
    let opts = with_a_segment(small(&disk).segment_bytes(1 << 16));
    // The first batch takes 2 s (its sync observer sleeps): long enough for records 3..=7 to
    // come meanwhile (busy: 4 or more) and for 8 and 9 to come while the next batch gathers.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let opts = opts
        .gather_when_busy(4, Duration::from_secs(30))
        .on_sync(move |_| {
            if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
        });
    let log = Log::open("mem", opts).unwrap();
    // Two syncs succeed, every later one fails: 8 and 9 are durable only if they shared the
    // second sync with 3..=7.
    disk.fail_sync_after(2);
    let first = log.append(2, &payload(2)).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let mut rest: Vec<_> = (3..=7)
        .map(|k| log.append(k, &payload(k)).unwrap())
        .collect();
    first.wait().unwrap();
    // Without gathering, 3..=7 would be syncing alone by now.
    rest.extend((8..=9).map(|k| log.append(k, &payload(k)).unwrap()));
    for t in rest {
        t.wait().unwrap();
    }
    assert_eq!(log.durable_key(), Some(9));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_log_that_is_not_busy_syncs_at_once() {
    use std::time::Duration;
    let disk = MemDisk::new();
    let opts = with_a_segment(small(&disk).segment_bytes(1 << 16));
    // Gathering would wait up to 30 s; one record per batch never makes the log busy.
    let opts = opts.gather_when_busy(2, Duration::from_secs(30));
    let log = Log::open("mem", opts).unwrap();
    let start = std::time::Instant::now();
    for k in 2..=20 {
        log.append(k, &payload(k)).unwrap().wait().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_flush_delay_ends_early_when_half_the_unsynced_window_is_used() {
    let disk = MemDisk::new();
    let opts = small(&disk)
        .segment_bytes(1 << 16)
        .max_unsynced_bytes(4096)
        .flush_delay(std::time::Duration::from_secs(30));
    let log = Log::open("mem", opts).unwrap();
    let start = std::time::Instant::now();
    // ~3 KiB of records: past half the window, so the batch holding the first record does not
    // wait out the delay. (Records appended after that batch was taken may: a flush delay is
    // what a record can wait, so only the first ticket is timed.)
    let mut tickets: Vec<_> = (1..=25u64)
        .map(|k| log.append(k, &[k as u8; 100]).unwrap())
        .collect();
    tickets.remove(0).wait().unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(15),
        "the first batch waited out the 30 s flush delay: {:?}",
        start.elapsed()
    );
    drop(tickets);
    drop(log); // closing ends the delay of what is left
}

#[test]
fn on_sync_sees_every_batch_sync_and_none_without_syncs() {
    use std::sync::atomic::{AtomicU64, Ordering};
    for no_sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let syncs = Arc::new(AtomicU64::new(0));
        let seen = syncs.clone();
        let opts = Options::default()
            .backend(Backend::Pwrite)
            .segment_bytes(8192)
            .max_record_bytes(256)
            .max_unsynced_bytes(2048)
            .unsafe_no_sync(no_sync)
            .on_sync(move |_took| {
                seen.fetch_add(1, Ordering::Relaxed);
            });
        let log = Log::open(dir.path(), opts).unwrap();
        for k in 1..=20 {
            // One at a time: each record is a batch of its own.
            log.append(k, &payload(k)).unwrap().wait().unwrap();
        }
        let n = syncs.load(Ordering::Relaxed);
        if no_sync {
            assert_eq!(n, 0);
        } else {
            assert_eq!(n, 20);
        }
    }
}

/// Regression: woken by the first record of a run, the sync thread synced it alone and the
/// rest after it (a follower appending a DIFF of 1000 txns made two syncs, the second waiting
/// out a busy log's gathering). Quiet appends wait for the caller's request for durability,
/// then go out as one batch; every way of asking wakes the sync thread.
#[test]
fn quiet_appends_are_synced_as_one_batch_once_durability_is_asked_for() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    let syncs = Arc::new(AtomicU64::new(0));
    let seen = syncs.clone();
    let disk = MemDisk::new();
    let opts = with_a_segment(
        Options::default()
            .backend(Backend::Memory(disk))
            .max_record_bytes(256)
            .on_sync(move |_took| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
    );
    let log = Log::open("mem", opts).unwrap();
    // Let the sync thread go idle (a busy one takes whatever is staged when it looks).
    std::thread::sleep(Duration::from_millis(50));
    let base = syncs.load(Ordering::Relaxed);
    for k in 2..=200 {
        log.append_quiet(k, &payload(k)).unwrap();
        if k == 2 {
            // An idle sync thread woken by this record would have synced it by now.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(
        syncs.load(Ordering::Relaxed),
        base,
        "nothing synced unasked"
    );
    assert_eq!(log.durable_key(), Some(1));
    let (tx, rx) = std::sync::mpsc::channel();
    log.on_durable(move |r| tx.send(r.unwrap()).unwrap())
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 200);
    assert_eq!(
        syncs.load(Ordering::Relaxed),
        base + 1,
        "one sync for the run"
    );
    // A ticket's wait and a flush ask too.
    let t = log.append_quiet(201, &payload(201)).unwrap();
    assert_eq!(t.wait().unwrap(), 201);
    log.append_quiet(202, &payload(202)).unwrap();
    log.flush().unwrap();
    assert_eq!(log.durable_key(), Some(202));
}
