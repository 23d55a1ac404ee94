//! One test per row of the recovery table in DESIGN.md §10.

use zk_txnlog::{Backend, Error, Log, MemDisk, Options, SnapshotStore};

const HEADER: usize = 64;
const PAYLOAD: usize = 100;
/// 24-byte frame header + payload, padded to a multiple of 8.
const FRAME: usize = (24 + PAYLOAD).div_ceil(8) * 8;

/// Small segments and a small window (W = 1 KiB) so that rows are cheap to build.
fn opts(disk: &MemDisk) -> Options {
    Options::default()
        .backend(Backend::Memory(disk.clone()))
        .segment_bytes(64 * 1024)
        .max_record_bytes(256)
        .max_unsynced_bytes(1024)
}

fn payload(key: u64) -> Vec<u8> {
    (0..PAYLOAD).map(|i| (key as u8) ^ (i as u8)).collect()
}

/// A log with records 1..=n in one segment (`log.1`), cleanly closed.
fn log_with(n: u64, o: impl Fn(&MemDisk) -> Options) -> MemDisk {
    let disk = MemDisk::new();
    let log = Log::open("mem", o(&disk)).unwrap();
    for k in 1..=n {
        log.append(k, &payload(k)).unwrap();
    }
    log.close().unwrap();
    disk
}

fn keys(log: &Log) -> Vec<u64> {
    log.iter_from(0)
        .map(|r| {
            let (k, v) = r.unwrap();
            assert_eq!(v, payload(k), "bytes of key {k}");
            k
        })
        .collect()
}

fn record_offset(i: usize) -> usize {
    HEADER + i * FRAME
}

#[test]
fn r1_zeroed_preallocated_tail() {
    let disk = log_with(10, opts);
    let log = Log::open("mem", opts(&disk)).unwrap();
    let r = log.recovery_report();
    assert_eq!(
        (r.records, r.last_key, r.torn_tail.clone()),
        (10, Some(10), None)
    );
    assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());
    log.append(11, &payload(11)).unwrap().wait().unwrap();
}

/// A log with records 1..=n acknowledged one at a time, then record n+1 written but its sync
/// failed (never acknowledged), imaged as if every write had reached the disk: the state a
/// power cut during the last batch leaves, before any damage is added.
fn unsynced_last(n: u64) -> MemDisk {
    let disk = MemDisk::new();
    let log = Log::open("mem", opts(&disk)).unwrap();
    for k in 1..=n {
        log.append(k, &payload(k)).unwrap().wait().unwrap();
    }
    disk.fail_sync_after(0);
    assert!(log.append(n + 1, &payload(n + 1)).unwrap().wait().is_err());
    drop(log);
    disk.snapshot()
}

#[test]
fn r2_torn_last_record() {
    // Record 10 was being written when the power went: part of its payload never arrived.
    let disk = unsynced_last(9);
    let at = record_offset(9);
    assert!(disk.corrupt("log.1", at + 24 + 50, &[0xAA, 0xBB]));
    let log = Log::open("mem", opts(&disk)).unwrap();
    let (file, off, _) = log
        .recovery_report()
        .torn_tail
        .clone()
        .expect("torn tail cut");
    assert!(file.ends_with("log.1"));
    assert_eq!(off, at as u64);
    assert_eq!(keys(&log), (1..=9).collect::<Vec<_>>());
    // The cut is durable: a crash right away does not bring the torn bytes back.
    log.append(10, &payload(10)).unwrap().wait().unwrap();
    drop(log);
    let log = Log::open("mem", opts(&disk.crash(1))).unwrap();
    assert_eq!(log.recovery_report().torn_tail, None);
    assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());

    // A half-written frame header (only the length) after the last record, over the
    // durability mark, is torn too: nothing after it proves anything.
    let disk = log_with(10, opts);
    assert!(disk.corrupt("log.1", record_offset(10), &[100, 0, 0, 0]));
    let log = Log::open("mem", opts(&disk)).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(keys(&log).len(), 10);
}

/// Opts for one large group-commit batch: up to 40 records wait for one sync.
fn batch_opts(d: &MemDisk) -> Options {
    opts(d)
        .max_unsynced_bytes(16 * 1024)
        .max_batch(40)
        .flush_delay(std::time::Duration::from_secs(5))
}

/// Records 1..=10 acknowledged, then one batch of 40 (11..=50, ~10 sectors) written but its
/// sync failed. Returns the disk (before any power cut) and the batch's file offset.
fn unsynced_batch() -> (MemDisk, usize) {
    let disk = MemDisk::new();
    let log = Log::open("mem", batch_opts(&disk).max_batch(1)).unwrap();
    for k in 1..=10 {
        log.append(k, &payload(k)).unwrap().wait().unwrap();
    }
    drop(log);
    let log = Log::open("mem", batch_opts(&disk)).unwrap();
    disk.fail_sync_after(0);
    let tickets: Vec<_> = (11..=50)
        .map(|k| log.append(k, &payload(k)).unwrap())
        .collect();
    for t in tickets {
        assert!(t.wait().is_err());
    }
    drop(log);
    (disk, record_offset(10))
}

#[test]
fn r2b_torn_batch_with_later_pages_written() {
    // The first sectors of the batch never reached the disk, later ones did (writeback of an
    // mmap'd range, or a disk reordering writes, in any order): valid records of the batch
    // lie after the damage, but their watermarks say only "durable up to the batch start".
    let (disk, at) = unsynced_batch();
    let img = disk.snapshot();
    assert!(img.corrupt("log.1", at, &[0u8; 1024]));
    let log = Log::open("mem", batch_opts(&img)).unwrap();
    let (file, off, _) = log
        .recovery_report()
        .torn_tail
        .clone()
        .expect("torn tail cut");
    assert!(file.ends_with("log.1"));
    assert_eq!(off, at as u64);
    assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());
    // Same with only a middle sector lost: the records before it survive, the rest is cut.
    let img = disk.snapshot();
    let hole = at + 2048;
    assert!(img.corrupt("log.1", hole, &[0u8; 512]));
    let log = Log::open("mem", batch_opts(&img)).unwrap();
    let ks = keys(&log);
    assert!(ks.len() > 10 && ks.len() < 50, "{}", ks.len());
    assert_eq!(ks, (1..=ks.len() as u64).collect::<Vec<_>>());
    // Every power-cut image of the batch opens, keeps 1..=10 and at most a prefix of the rest.
    for seed in 0..64 {
        let log = Log::open("mem", batch_opts(&disk.crash(seed))).unwrap();
        let ks = keys(&log);
        assert!(ks.len() >= 10, "seed {seed}");
        assert_eq!(ks, (1..=ks.len() as u64).collect::<Vec<_>>(), "seed {seed}");
    }
}

/// Damage at offset `at` after the good key `key` is reported as `Corrupt` naming the file,
/// the offset and the key, and nothing on disk changes: by `Log::open` when the scan cannot
/// tell it from a torn write without looking, or when the record is first read when a later
/// frame's watermark vouches for it (open checks the crc of those lazily, DESIGN.md §10). Never
/// a cut.
fn expect_corrupt(disk: &MemDisk, o: &dyn Fn(&MemDisk) -> Options, at: usize, key: u64) {
    let before = disk.read_file("log.1").unwrap();
    let check = |e: Error| match e {
        Error::Corrupt {
            file,
            offset,
            key: k,
            reason,
        } => {
            assert!(file.ends_with("log.1"));
            assert_eq!(offset, at as u64, "{reason}");
            assert_eq!(k, Some(key), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    match Log::open("mem", o(disk)) {
        Err(e) => check(e),
        Ok(log) => {
            assert_eq!(log.recovery_report().torn_tail, None, "never a cut");
            let read = log.iter_from(0).find_map(|r| r.err());
            check(read.expect("reading the log reports the damage"));
        }
    }
    assert_eq!(
        disk.read_file("log.1").unwrap(),
        before,
        "nothing changed on disk"
    );
}

#[test]
fn r3_crc_mismatch_in_middle() {
    let disk = log_with(40, opts);
    let at = record_offset(2);
    assert!(disk.corrupt("log.1", at + 24 + 3, &[0xFF]));
    expect_corrupt(&disk, &opts, at, 2);
}

#[test]
fn open_checks_only_the_crcs_no_watermark_vouches_for() {
    // Checking every record's crc was two fifths of opening a 64 MiB segment. A record that a
    // later verified frame's watermark vouches for was synced: a flipped bit in it is found when
    // it is read, not at open, and it is never taken for a torn tail.
    let disk = log_with(40, opts);
    let at = record_offset(2);
    assert!(disk.corrupt("log.1", at + 24 + 3, &[0xFF]));
    let log = Log::open("mem", opts(&disk)).expect("open trusts what the mark vouches for");
    assert_eq!(log.recovery_report().torn_tail, None);
    assert_eq!(log.last_key(), Some(40));
    match log.iter_from(0).find_map(|r| r.err()) {
        Some(Error::Corrupt { offset, key, .. }) => {
            assert_eq!((offset, key), (at as u64, Some(2)));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    drop(log);
    // The newest record is always checked: its key becomes the log's last key.
    let disk = log_with(40, opts);
    assert!(disk.corrupt("log.1", record_offset(39) + 24 + 3, &[0xFF]));
    expect_corrupt(&disk, &opts, record_offset(39), 39);
    assert!(
        Log::open("mem", opts(&disk)).is_err(),
        "the last record's damage is found at open"
    );
}

#[test]
fn r3c_damage_near_the_end_proven_durable() {
    // One byte flipped in record 150 of 300 appended in one burst (as the server does for
    // pipelined requests), log far smaller than W: the mark written after the last sync proves
    // everything durable, so this is R3, not a torn tail that would drop 150 records.
    let big = |d: &MemDisk| opts(d).max_unsynced_bytes(8 << 20);
    let disk = log_with(300, big);
    let at = record_offset(149);
    assert!(disk.corrupt("log.1", at + 24 + 3, &[0x5a]));
    expect_corrupt(&disk, &big, at, 149);

    // Records acknowledged one by one: the last two, a few hundred bytes from the end. The
    // one before the last is proven by the last record's watermark, the last by the mark.
    let one_by_one = || {
        let disk = MemDisk::new();
        let log = Log::open("mem", opts(&disk)).unwrap();
        for k in 1..=20 {
            log.append(k, &payload(k)).unwrap().wait().unwrap();
        }
        drop(log);
        disk
    };
    let disk = one_by_one();
    assert!(disk.corrupt("log.1", record_offset(18) + 30, &[0x01]));
    expect_corrupt(&disk, &opts, record_offset(18), 18);
    let disk = one_by_one();
    // The mark is gone too (say, overwritten): record 20 still proves record 19.
    assert!(disk.corrupt("log.1", record_offset(20), &[0u8; 24]));
    assert!(disk.corrupt("log.1", record_offset(18) + 30, &[0x01]));
    expect_corrupt(&disk, &opts, record_offset(18), 18);
    let disk = one_by_one();
    assert!(disk.corrupt("log.1", record_offset(19) + 30, &[0x01]));
    expect_corrupt(&disk, &opts, record_offset(19), 19);
    // A lost sector (zeros) in the middle is damage too.
    let disk = one_by_one();
    assert!(disk.corrupt("log.1", record_offset(5), &[0u8; 64]));
    expect_corrupt(&disk, &opts, record_offset(5), 5);
}

#[test]
fn r3b_damage_in_older_segment() {
    // Segments of ~1 KiB: several sealed ones. Damage the last record of the first: even at
    // its tail this is corruption, because a sealed segment was fully synced.
    let small = |d: &MemDisk| opts(d).segment_bytes(1024);
    let disk = log_with(30, small);
    let names = disk.file_names();
    assert!(names.len() > 3, "{names:?}");
    let per_seg = (1024 - HEADER - 24) / FRAME;
    assert!(disk.corrupt("log.1", record_offset(per_seg - 1) + 20, &[0x55]));
    // Open reads only the last segment's records (restart time must not grow with the
    // log's history): the damage is reported when log.1 is first read, by any reader.
    let log = Log::open("mem", small(&disk)).expect("open reads the last segment only");
    let is_damage = |e: Error| match e {
        Error::Corrupt { file, offset, .. } => {
            assert!(file.ends_with("log.1"));
            assert_eq!(offset, record_offset(per_seg - 1) as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    let after: Vec<u64> = log
        .iter_from(per_seg as u64 + 1)
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(after, (per_seg as u64 + 1..=30).collect::<Vec<_>>());
    is_damage(log.iter_from(1).find_map(|r| r.err()).expect("log.1 read"));
    is_damage(log.verify_all().unwrap_err());
    // A truncation into it reads it too.
    is_damage(log.truncate_after(2).unwrap_err());
}

#[test]
fn open_reads_only_the_last_segment() {
    // Opening a log scanned every segment: a restart grew with the log's history (~25 ms per
    // 64 MiB segment). Every record of the older ones destroyed: open still succeeds, the
    // tail reads, and the damage is found when the old records are read.
    let small = |d: &MemDisk| opts(d).segment_bytes(1024);
    let disk = log_with(60, small);
    let mut keys: Vec<u64> = disk
        .file_names()
        .iter()
        .filter_map(|n| n.strip_prefix("log."))
        .filter_map(|k| u64::from_str_radix(k, 16).ok())
        .collect();
    keys.sort_unstable();
    assert!(keys.len() > 5, "{keys:?}");
    for &k in &keys[..keys.len() - 1] {
        let name = format!("log.{k:x}");
        let len = disk.read_file(&name).unwrap().len();
        assert!(disk.corrupt(&name, HEADER, &vec![0xA5; len - HEADER]));
    }
    let log = Log::open("mem", small(&disk)).expect("the old segments are not read at open");
    let tail_from = keys[keys.len() - 1];
    let tail: Vec<u64> = log.iter_from(tail_from).map(|r| r.unwrap().0).collect();
    assert_eq!(tail, (tail_from..=60).collect::<Vec<_>>());
    assert_eq!(log.last_key(), Some(60));
    assert!(matches!(log.verify_all(), Err(Error::Corrupt { .. })));
    // Appends go on.
    log.append(61, b"x").unwrap().wait().unwrap();
}

#[test]
fn r4_key_regression_is_corruption() {
    let disk = log_with(40, opts);
    // Copy record 2 (a valid frame, key 2) over record 3: a key regression with a good crc.
    let img = disk.read_file("log.1").unwrap();
    let frame2 = img[record_offset(1)..record_offset(2)].to_vec();
    assert!(disk.corrupt("log.1", record_offset(2), &frame2));
    match Log::open("mem", opts(&disk)) {
        Err(Error::Corrupt {
            offset,
            key,
            reason,
            ..
        }) => {
            assert_eq!(offset, record_offset(2) as u64);
            assert_eq!(key, Some(2));
            assert!(reason.contains("not after"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn r4b_name_mismatch() {
    let disk = log_with(5, opts);
    let img = disk.read_file("log.1").unwrap();
    disk.delete("log.1");
    disk.put_file("log.2", &img);
    match Log::open("mem", opts(&disk)) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert!(file.ends_with("log.2"));
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn r4c_gaps_are_legal() {
    let disk = MemDisk::new();
    let ks = [1u64, 2, 9, 1 << 32, (1 << 32) + 1, (2 << 32) + 7];
    {
        let log = Log::open("mem", opts(&disk)).unwrap();
        for &k in &ks {
            log.append(k, &payload(k)).unwrap();
        }
        log.close().unwrap();
    }
    let log = Log::open("mem", opts(&disk)).unwrap();
    assert_eq!(keys(&log), ks);
    let from: Vec<u64> = log.iter_from(10).map(|r| r.unwrap().0).collect();
    assert_eq!(from, &ks[3..]);
}

#[test]
fn r5_snapshot_newer_than_log() {
    let dir = tempfile::tempdir().unwrap();
    let disk = log_with(3, opts);
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let mut w = snaps.create(10).unwrap();
    std::io::Write::write_all(&mut w, b"state").unwrap();
    w.finish().unwrap();
    let log = Log::open("mem", opts(&disk)).unwrap();
    let rec = zk_txnlog::recover(&log, &snaps).unwrap();
    assert_eq!(rec.replay_from, 11);
    assert!(rec.snapshot_ahead_of_log);
    assert_eq!(rec.snapshot.unwrap().key(), 10);
    assert_eq!(log.iter_from(11).count(), 0);
    assert!(matches!(log.append(5, b"x"), Err(Error::KeyOrder { .. })));
    log.append(11, &payload(11)).unwrap().wait().unwrap();
}

#[test]
fn r6_partial_snapshot_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let snaps = SnapshotStore::open(dir.path()).unwrap();
        for k in [5u64, 9] {
            let mut w = snaps.create(k).unwrap();
            std::io::Write::write_all(&mut w, &vec![k as u8; 10_000]).unwrap();
            w.finish().unwrap();
        }
    }
    // snapshot.9 lost its tail (as a copy interrupted by a crash), and a temp file is left over.
    let p9 = dir.path().join("snapshot.9");
    let len = std::fs::metadata(&p9).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p9)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    std::fs::write(dir.path().join("snapshot.c.tmp"), b"half").unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    assert!(
        !dir.path().join("snapshot.c.tmp").exists(),
        "temp file removed"
    );
    assert!(matches!(
        snaps.open_snapshot(9),
        Err(Error::BadSnapshot { .. })
    ));
    let r = snaps.newest_valid().unwrap().unwrap();
    assert_eq!(r.key(), 5);
    // A flipped content byte is caught by the crc as well.
    let p5 = dir.path().join("snapshot.5");
    let mut b = std::fs::read(&p5).unwrap();
    b[100] ^= 1;
    std::fs::write(&p5, b).unwrap();
    assert!(snaps.newest_valid().unwrap().is_none());
}

/// Three segments of ~1 KiB each: keys 1..=7, 8..=14, 15..=20.
fn three_segments() -> (MemDisk, impl Fn(&MemDisk) -> Options) {
    let small = |d: &MemDisk| opts(d).segment_bytes(1024);
    let disk = log_with(20, small);
    assert_eq!(disk.file_names(), vec!["log.1", "log.8", "log.f"]);
    (disk, small)
}

#[test]
fn r7_missing_middle_segment() {
    let (disk, small) = three_segments();
    disk.delete("log.8");
    match Log::open("mem", small(&disk)) {
        Err(Error::MissingSegment { file, expected }) => {
            assert!(
                file.ends_with("log.f") || file.ends_with("log.1"),
                "{file:?}"
            );
            assert!(expected.contains("log.8"), "{expected}");
        }
        other => panic!("expected MissingSegment, got {other:?}"),
    }
}

#[test]
fn r7b_missing_last_segment() {
    let (disk, small) = three_segments();
    disk.delete("log.f");
    match Log::open("mem", small(&disk)) {
        Err(Error::MissingSegment { file, expected }) => {
            assert!(file.ends_with("log.8"));
            assert_eq!(expected, "log.f");
        }
        other => panic!("expected MissingSegment, got {other:?}"),
    }
}

#[test]
fn r7c_missing_first_segment_after_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, small) = three_segments();
    disk.delete("log.1");
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let log = Log::open("mem", small(&disk)).unwrap();
    // No snapshot: records 1..=7 are needed and gone.
    assert!(matches!(
        zk_txnlog::recover(&log, &snaps),
        Err(Error::MissingSegment { .. })
    ));
    // A snapshot at 5 still needs 6..=7.
    let w = snaps.create(5).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        zk_txnlog::recover(&log, &snaps),
        Err(Error::MissingSegment { .. })
    ));
    // A snapshot at 7 covers them.
    snaps.create(7).unwrap().finish().unwrap();
    let rec = zk_txnlog::recover(&log, &snaps).unwrap();
    assert_eq!(rec.replay_from, 8);
    assert_eq!(log.iter_from(8).count(), 13);
}

#[test]
fn r8_crash_during_roll() {
    // (a) The new segment has its header but no record, and the old one is sealed.
    let (disk, small) = three_segments();
    let img = disk.read_file("log.f").unwrap();
    let mut empty = img[..HEADER].to_vec();
    empty.resize(img.len(), 0);
    disk.put_file("log.f", &empty);
    let log = Log::open("mem", small(&disk)).unwrap();
    let r = log.recovery_report();
    assert!(r.removed_empty_segment.as_ref().unwrap().ends_with("log.f"));
    assert_eq!(keys(&log), (1..=14).collect::<Vec<_>>());
    for k in 15..=30 {
        log.append(k * 10, &payload(k * 10)).unwrap();
    }
    log.close().unwrap();
    let log = Log::open("mem", small(&disk)).unwrap();
    assert_eq!(keys(&log).len(), 30);

    // (b) The new segment's header never reached the disk (all zeros).
    let (disk, small) = three_segments();
    let len = disk.read_file("log.f").unwrap().len();
    disk.put_file("log.f", &vec![0; len]);
    let log = Log::open("mem", small(&disk)).unwrap();
    assert_eq!(keys(&log), (1..=14).collect::<Vec<_>>());

    // (c) The new segment is an empty file (process killed between creating and preallocating).
    let (disk, small) = three_segments();
    disk.put_file("log.f", &[]);
    let log = Log::open("mem", small(&disk)).unwrap();
    assert!(log.recovery_report().removed_empty_segment.is_some());
    assert_eq!(keys(&log), (1..=14).collect::<Vec<_>>());
    // ... but a short file with data in it is damage.
    let (disk, small) = three_segments();
    disk.put_file("log.f", b"ZKTX");
    assert!(matches!(
        Log::open("mem", small(&disk)),
        Err(Error::Corrupt { .. })
    ));

    // (d) Crashes at every point of a roll, from fault injection: always opens, never loses
    // an acknowledged record.
    for n in 0..6 {
        let disk = MemDisk::new();
        let small = |d: &MemDisk| opts(d).segment_bytes(1024);
        let log = Log::open("mem", small(&disk)).unwrap();
        for k in 1..=7 {
            log.append(k, &payload(k)).unwrap().wait().unwrap();
        }
        disk.fail_sync_after(n);
        let _ = log.append(8, &payload(8)).and_then(|t| t.wait());
        drop(log);
        for seed in 0..8 {
            let log = Log::open("mem", small(&disk.crash(seed))).unwrap();
            let ks = keys(&log);
            assert!(ks == (1..=7).collect::<Vec<_>>() || ks == (1..=8).collect::<Vec<_>>());
        }
    }
}

#[test]
fn r9_crash_during_truncate() {
    let small = |d: &MemDisk| opts(d).segment_bytes(2048).max_unsynced_bytes(600);
    for n in 0..12 {
        let disk = MemDisk::new();
        let log = Log::open("mem", small(&disk)).unwrap();
        for k in 1..=40 {
            log.append(k, &payload(k)).unwrap();
        }
        log.flush().unwrap();
        disk.fail_sync_after(n);
        let res = log.truncate_after(12);
        drop(log);
        for seed in 0..6 {
            let log = Log::open("mem", small(&disk.crash(seed))).unwrap();
            let ks = keys(&log);
            let r = log.recovery_report();
            // All or nothing: a finished (or redone) truncate leaves 1..=12; one whose intent
            // never became durable leaves everything.
            if res.is_ok() || r.finished_truncate.is_some() {
                assert_eq!(ks, (1..=12).collect::<Vec<_>>(), "n={n} seed={seed}");
            } else if ks.len() != 12 {
                assert_eq!(ks, (1..=40).collect::<Vec<_>>(), "n={n} seed={seed}");
            }
        }
    }
}

#[test]
fn r10_bad_header() {
    let (disk, small) = three_segments();
    assert!(disk.corrupt("log.1", 2, b"Q"));
    match Log::open("mem", small(&disk)) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert!(file.ends_with("log.1"));
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn r9b_damage_before_an_unfinished_truncate_point_is_corruption() {
    // An intent to truncate after 12, and a flipped byte in record 6: the truncate never
    // touches bytes before record 12's end, so this is damage, not its zeroing.
    let disk = log_with(40, opts);
    disk.put_file("truncate.c", &[]);
    assert!(disk.corrupt("log.1", record_offset(5) + 40, &[0x11]));
    expect_corrupt(&disk, &opts, record_offset(5), 5);
    // Damage after the point is the truncate's business: redone, 1..=12 remain.
    let disk = log_with(40, opts);
    disk.put_file("truncate.c", &[]);
    assert!(disk.corrupt("log.1", record_offset(20) + 40, &[0x11]));
    let log = Log::open("mem", opts(&disk)).unwrap();
    assert_eq!(log.recovery_report().finished_truncate, Some(12));
    assert_eq!(keys(&log), (1..=12).collect::<Vec<_>>());
}

#[test]
fn r2c_file_shortened_within_a_frame_header_of_the_end() {
    // Someone cut the newest segment 10 bytes into a frame header: the torn record is cut,
    // and since no seal fits any more the next roll relies on the new header's `prev key`.
    let disk = log_with(10, opts);
    let img = disk.read_file("log.1").unwrap();
    disk.put_file("log.1", &img[..record_offset(9) + 10]);
    let log = Log::open("mem", opts(&disk)).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(keys(&log), (1..=9).collect::<Vec<_>>());
    for k in 10..=15 {
        log.append(k, &payload(k)).unwrap().wait().unwrap();
    }
    assert_eq!(log.segment_names(), vec!["log.1", "log.a"]);
    drop(log);
    let log = Log::open("mem", opts(&disk)).unwrap();
    assert_eq!(keys(&log), (1..=15).collect::<Vec<_>>());
}

/// R11: a spare segment left by an earlier run (killed while zeroing it, or between taking it
/// and the directory sync of its rename) is not a segment: listings, read-only opens and
/// snapshot stores leave it alone; a writable open removes it before preparing its own.
#[test]
fn r11_stale_spare_is_ignored_and_removed_at_open() {
    const SPARE: &str = "log.spare.tmp";
    let file_opts = |zero_fill: bool| {
        Options::default()
            .backend(Backend::Pwrite)
            .segment_bytes(64 * 1024)
            .max_record_bytes(256)
            .max_unsynced_bytes(1024)
            .zero_fill_ahead(zero_fill)
    };
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    for (d, n) in [(dir.path(), 10), (other.path(), 30)] {
        let log = Log::open(d, file_opts(false)).unwrap();
        for k in 1..=n {
            log.append(k, &payload(k)).unwrap();
        }
        log.close().unwrap();
    }
    // The most misleading leftover: a valid segment with more records (first key 1).
    let stale = std::fs::read(other.path().join("log.1")).unwrap();
    let spare = dir.path().join(SPARE);
    for zero_fill in [false, true] {
        std::fs::write(&spare, &stale).unwrap();
        // Read-only access and the snapshot store: ignored, untouched.
        assert_eq!(
            zk_txnlog::segment_paths(dir.path()).unwrap(),
            vec![dir.path().join("log.1")]
        );
        let s = zk_txnlog::inspect_segment(dir.path().join("log.1")).unwrap();
        assert_eq!((s.records, s.clean), (10, true));
        assert_eq!(
            zk_txnlog::read_segment(dir.path().join("log.1"))
                .unwrap()
                .count(),
            10
        );
        let _ = SnapshotStore::open_read_only(dir.path()).list().unwrap();
        let _ = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::read(&spare).unwrap(), stale);
        // A second writer is refused before it touches anything.
        let held = Log::open(dir.path(), file_opts(zero_fill)).unwrap();
        assert!(matches!(
            Log::open(dir.path(), file_opts(zero_fill)),
            Err(Error::Locked(_))
        ));
        drop(held);
        // `held` removed it already; put it back for the open under test.
        std::fs::write(&spare, &stale).unwrap();
        let log = Log::open(dir.path(), file_opts(zero_fill)).unwrap();
        let r = log.recovery_report();
        assert_eq!(r.removed_stale_spare.as_deref(), Some(spare.as_path()));
        assert_eq!((r.records, r.last_key, r.segments), (10, Some(10), 1));
        assert_eq!(r.torn_tail, None);
        assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());
        if zero_fill {
            // What is there now is the helper's own (being zeroed or ready), never the stale
            // bytes: it was created afresh.
            if let Ok(b) = std::fs::read(&spare) {
                assert!(b.iter().all(|&x| x == 0), "a fresh spare holds zeros only");
            }
        } else {
            assert!(!spare.exists());
        }
        // Appends and rolls go on as usual.
        for k in 11..=1000 {
            log.append(k, &payload(k)).unwrap();
        }
        log.close().unwrap();
        assert!(!spare.exists(), "a clean close leaves no spare");
        let log = Log::open(dir.path(), file_opts(zero_fill)).unwrap();
        assert!(log.segment_names().len() > 1);
        assert_eq!(keys(&log), (1..=1000).collect::<Vec<_>>());
        assert_eq!(log.recovery_report().removed_stale_spare, None);
        log.truncate_after(10).unwrap();
        log.close().unwrap();
    }
    // The stale spare is moved aside at open (`log.spare.stale.tmp`, which parses as nothing)
    // and deleted by the helper thread, off the open path (unlinking 64 MiB took a restart
    // 10-25 ms); one left by a crash since is deleted by the next open.
    let trash = dir.path().join("log.spare.stale.tmp");
    for zero_fill in [false, true] {
        std::fs::write(&trash, &stale).unwrap();
        let log = Log::open(dir.path(), file_opts(zero_fill)).unwrap();
        assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());
        let t0 = std::time::Instant::now();
        while trash.exists() {
            assert!(
                t0.elapsed().as_secs() < 10,
                "the moved-aside spare is deleted"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        log.close().unwrap();
    }
}

/// A snapshot streamed in one pass: the content as written, the crc verdict
/// at the end; a flipped byte is found by `finish` (and by a read past the
/// end), also when the consumer stopped reading early.
#[test]
fn streamed_snapshot_checks_its_crc_at_the_end() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    // More than one of the stream's 4 MiB chunks, not a multiple of it.
    let content: Vec<u8> = (0..9_000_001u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut w = snaps.create(3).unwrap();
    std::io::Write::write_all(&mut w, &content).unwrap();
    w.finish().unwrap();

    let mut s = snaps.stream_snapshot(3).unwrap();
    assert_eq!(s.content_len(), content.len() as u64);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got == content, "content as written");
    s.finish().unwrap();

    // Read only the first bytes: finish reads the rest to check it.
    let mut s = snaps.stream_snapshot(3).unwrap();
    assert_eq!(s.fill_buf().unwrap()[..3], content[..3]);
    s.finish().unwrap();
    // Dropped unfinished: the reader thread stops (no hang, nothing left).
    let mut s = snaps.stream_snapshot(3).unwrap();
    s.fill_buf().unwrap();
    drop(s);

    let p = dir.path().join("snapshot.3");
    let mut b = std::fs::read(&p).unwrap();
    b[5_000_000] ^= 0x10;
    std::fs::write(&p, b).unwrap();
    let mut s = snaps.stream_snapshot(3).unwrap();
    let mut got = Vec::new();
    let err = s.read_to_end(&mut got).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        got.len(),
        content.len(),
        "every byte came before the verdict"
    );
    assert!(matches!(s.finish(), Err(Error::BadSnapshot { .. })));
    let s = snaps.stream_snapshot(3).unwrap();
    assert!(matches!(s.finish(), Err(Error::BadSnapshot { .. })));

    // The frame is checked at open.
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 1).unwrap();
    assert!(matches!(
        snaps.stream_snapshot(3),
        Err(Error::BadSnapshot { .. })
    ));
}
