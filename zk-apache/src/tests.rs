//! Hand-made byte streams through the readers: every torn-tail case of the
//! spec's §2 table, checksums, magics, seals, compression, the digest
//! sections of §9.3, and whole directories through [`crate::import`].

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use zk_jute::{CloseSessionTxn, CreateSessionTxn, CreateTxn, SetDataTxn, TxnBody, TxnHeader};
use zk_tree::{Tree, TreeConfig};

use crate::*;

// ---- builders ----

fn txn(zxid: i64, session: i64, body: &TxnBody) -> Bytes {
    let h = TxnHeader {
        client_id: session,
        cxid: 1,
        zxid,
        time: 1000 + zxid,
        txn_type: body.txn_type().code(),
    };
    let mut b = BytesMut::new();
    body.write_record(&h, &mut b);
    b.freeze()
}

fn with_digest(p: &Bytes, digest: i64) -> Bytes {
    let mut b = BytesMut::from(&p[..]);
    b.put_i32(2);
    b.put_i64(digest);
    b.freeze()
}

fn create(path: &str, ephemeral: bool, pcv: i32) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::from(path.to_string())),
        acl: zk_tree::open_acl_unsafe(),
        ephemeral,
        parent_c_version: pcv,
    })
}

use crate::write::{log_entry as entry, log_file, seal};

/// The stream of `tree` up to and including seal 1.
fn snap_stream(tree: &Tree) -> Vec<u8> {
    crate::write::snapshot_stream(tree, None)
}

fn digest_section(s: &mut Vec<u8>, zxid: i64, digest: i64) {
    s.extend_from_slice(&zxid.to_be_bytes());
    s.extend_from_slice(&2i32.to_be_bytes());
    s.extend_from_slice(&digest.to_be_bytes());
    seal(s);
}

fn last_zxid_section(s: &mut Vec<u8>, zxid: i64) {
    s.extend_from_slice(&zxid.to_be_bytes());
    seal(s);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// xerial snappy-java's stream with blocks of `block` bytes.
fn snappy(b: &[u8], block: usize) -> Vec<u8> {
    let mut out = crate::snap::SNAPPY_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in b.chunks(block) {
        let c = ::snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend(c);
    }
    out
}

/// A tree holding a few nodes, an ephemeral of session 0x51 and that session.
fn sample_tree() -> Tree {
    let t = Tree::new(TreeConfig::default());
    let apply = |z: i64, s: i64, b: TxnBody| {
        let (h, b) = TxnBody::read_record(txn(z, s, &b)).unwrap();
        t.apply(&h, &b);
    };
    apply(
        1,
        0x51,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
    );
    apply(2, 0x51, create("/a", false, 1));
    apply(3, 0x51, create("/a/e", true, 1));
    t
}

fn read(bytes: &[u8], c: Compression) -> Result<Snapshot, Error> {
    read_snapshot_from(bytes, c, 3, TreeConfig::default(), Path::new("snapshot.3"))
}

fn reader(bytes: Vec<u8>) -> Result<LogReader<std::io::Cursor<Vec<u8>>>, Error> {
    LogReader::new(Path::new("log.1"), std::io::Cursor::new(bytes))
}

/// Every entry, then the end.
fn read_log(bytes: Vec<u8>) -> Result<(Vec<u64>, LogEnd), Error> {
    let mut r = reader(bytes)?;
    let mut offsets = Vec::new();
    while let Some(e) = r.next_entry()? {
        offsets.push(e.offset);
    }
    Ok((offsets, r.end().cloned().unwrap()))
}

fn offset_of(e: &Error) -> u64 {
    match e {
        Error::Corrupt { offset, .. } => *offset,
        other => panic!("not a Corrupt error: {other}"),
    }
}

// ---- log files ----

fn two_entries() -> (Vec<Bytes>, Vec<u8>) {
    let p = vec![
        txn(
            1,
            5,
            &TxnBody::CreateSession(CreateSessionTxn { time_out: 1 }),
        ),
        txn(2, 5, &create("/x", false, 1)),
    ];
    let f = log_file(&p);
    (p, f)
}

#[test]
fn log_reads_entries_then_ends_at_eof_or_zeros() {
    // Proves the happy path: entries at their offsets, then EOF or the
    // preallocated zeros (len 0) or len -1 end the file.
    let (p, f) = two_entries();
    let second = 16 + 12 + p[0].len() as u64 + 1;
    assert_eq!(
        read_log(f.clone()).unwrap(),
        (vec![16, second], LogEnd::Eof)
    );
    let mut padded = f.clone();
    padded.resize(f.len() + 4096, 0);
    let end = LogEnd::Zero {
        offset: f.len() as u64,
    };
    assert_eq!(read_log(padded).unwrap(), (vec![16, second], end.clone()));
    let mut minus = f.clone();
    minus.extend_from_slice(&[0; 8]);
    minus.extend_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(read_log(minus).unwrap(), (vec![16, second], end));
    let r = reader(f).unwrap();
    assert_eq!(r.header(), Some((2, 0)));
}

#[test]
fn log_torn_tails_end_the_file() {
    // Proves each "end of this file" row of §2's table: EOF inside the
    // checksum, the length, the payload, before the EOR byte, and a bad EOR.
    let (p, f) = two_entries();
    let second = 16 + 12 + p[0].len() + 1;
    let cuts = [
        (second + 3, "checksum or length cut"),
        (second + 10, "checksum or length cut"),
        (second + 12 + 5, "payload cut"),
        (f.len() - 1, "end-of-record byte missing"),
    ];
    for (cut, reason) in cuts {
        let (offs, end) = read_log(f[..cut].to_vec()).unwrap();
        assert_eq!(offs, vec![16], "cut at {cut}");
        assert_eq!(
            end,
            LogEnd::Torn {
                offset: second as u64,
                reason
            },
            "cut at {cut}"
        );
    }
    let mut bad_eor = f.clone();
    *bad_eor.last_mut().unwrap() = b'A';
    let (offs, end) = read_log(bad_eor).unwrap();
    assert_eq!(offs, vec![16]);
    assert!(matches!(
        end,
        LogEnd::Torn {
            reason: "end-of-record byte is not 'B'",
            ..
        }
    ));
}

#[test]
fn log_fatal_cases_name_the_offset() {
    // Proves the fatal rows: an unreasonable length (negative below -1 or
    // above the limit) and a CRC failure followed by more entries, each with
    // the offset; a bad magic; a file shorter than its header is Short.
    let (p, f) = two_entries();
    let len_at = 16 + 8;
    for bad in [-2i32, DEFAULT_MAX_ENTRY as i32 + 1] {
        let mut b = f.clone();
        b[len_at..len_at + 4].copy_from_slice(&bad.to_be_bytes());
        let e = read_log(b).unwrap_err();
        assert_eq!(offset_of(&e), len_at as u64, "{e}");
        assert!(e.to_string().contains("unreasonable entry length"), "{e}");
    }
    let mut crc = f.clone();
    crc[16 + 12] ^= 0x40; // first payload byte
    let e = read_log(crc).unwrap_err();
    assert_eq!(offset_of(&e), 16);
    assert!(
        e.to_string().contains("log.1 at byte 16: CRC check failed"),
        "{e}"
    );
    // The same damage in the last entry, nothing after it: BadChecksum.
    let mut last = f.clone();
    let second = 16 + 12 + p[0].len() + 1;
    last[second + 12] ^= 0x40;
    let (offs, end) = read_log(last.clone()).unwrap();
    assert_eq!(
        (offs, end),
        (
            vec![16],
            LogEnd::BadChecksum {
                offset: second as u64
            }
        )
    );
    last.resize(last.len() + 100, 0);
    assert!(matches!(
        read_log(last).unwrap().1,
        LogEnd::BadChecksum { .. }
    ));
    let mut magic = f.clone();
    magic[0] = b'X';
    assert_eq!(offset_of(&read_log(magic).unwrap_err()), 0);
    for n in [0, 10] {
        let (offs, end) = read_log(f[..n].to_vec()).unwrap();
        assert_eq!((offs, end), (vec![], LogEnd::Short { len: n as u64 }));
    }
}

// ---- snapshots ----

#[test]
fn snapshot_plain_gz_and_snappy_read_the_same_tree() {
    // Proves the three stream modes decode to the same checked stream
    // (snappy over several blocks), and that seal 1 alone is accepted.
    let t = sample_tree();
    let s = snap_stream(&t);
    let want = read(&s, Compression::None).unwrap();
    assert_eq!(want.tree.node_count(), t.node_count());
    assert_eq!(want.tree.digest(), t.digest());
    assert_eq!(want.sessions, vec![(0x51, 30000)]);
    assert_eq!((want.digest.clone(), want.last_zxid), (None, None));
    assert_eq!(want.stream_len, s.len() as u64);
    let gz = read(&gzip(&s), Compression::Gzip).unwrap();
    assert_eq!(gz.tree.digest(), t.digest());
    for block in [7, 64, 1 << 15] {
        let sn = read(&snappy(&s, block), Compression::Snappy).unwrap();
        assert_eq!(sn.tree.digest(), t.digest(), "block {block}");
    }
    let mut bad = snappy(&s, 64);
    bad[0] = 0;
    assert!(read(&bad, Compression::Snappy).is_err(), "snappy magic");
    assert!(read(&s, Compression::Gzip).is_err(), "not gzip");
}

#[test]
fn snapshot_magic_version_and_seal_1_are_checked() {
    // Proves the header checks and that seal 1 must equal the Adler-32 of
    // every byte before it, the error naming its offset.
    let t = sample_tree();
    let s = snap_stream(&t);
    let mut m = s.clone();
    m[1] = b'X';
    assert_eq!(offset_of(&read(&m, Compression::None).unwrap_err()), 0);
    let mut v = s.clone();
    v[7] = 3;
    assert_eq!(offset_of(&read(&v, Compression::None).unwrap_err()), 4);
    let seal_at = s.len() - 13;
    let mut bad = s.clone();
    bad[seal_at + 7] ^= 1;
    let e = read(&bad, Compression::None).unwrap_err();
    assert_eq!(offset_of(&e), seal_at as u64, "{e}");
    let mut slash = s.clone();
    *slash.last_mut().unwrap() = b'x';
    assert!(read(&slash, Compression::None).is_err());
    let e = read(&s[..seal_at + 4], Compression::None).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // Damage inside the body: an offset inside the stream, not a panic.
    let mut body = s.clone();
    body[16 + 3] = 0x7f; // session count
    assert!(read(&body, Compression::None).is_err());
}

#[test]
fn snapshot_digest_sections_by_size() {
    // Proves §9.3's table: 0, 21 (lastZxid), 33 (digest v2), 54 (both) and
    // a digest before v2 (a string), each seal checked over everything
    // before it (seal 2 also covers seal 1).
    let t = sample_tree();
    let base = snap_stream(&t);
    let mut d = base.clone();
    digest_section(&mut d, 3, 77);
    assert_eq!(d.len() - base.len(), 33);
    let s = read(&d, Compression::None).unwrap();
    assert_eq!(
        s.digest,
        Some(SnapDigest {
            zxid: 3,
            version: 2,
            digest: Some(77)
        })
    );
    let mut both = d.clone();
    last_zxid_section(&mut both, 9);
    assert_eq!(both.len() - base.len(), 54);
    let s = read(&both, Compression::None).unwrap();
    assert_eq!(
        (s.digest.map(|d| d.digest), s.last_zxid),
        (Some(Some(77)), Some(9))
    );
    let mut lz = base.clone();
    last_zxid_section(&mut lz, 5);
    assert_eq!(read(&lz, Compression::None).unwrap().last_zxid, Some(5));
    let mut old = base.clone();
    old.extend_from_slice(&3i64.to_be_bytes());
    old.extend_from_slice(&1i32.to_be_bytes());
    old.extend_from_slice(&4i32.to_be_bytes());
    old.extend_from_slice(b"beef");
    seal(&mut old);
    assert_eq!(
        old.len() - base.len(),
        33,
        "the size of a v2 digest: told by the version"
    );
    let s = read(&old, Compression::None).unwrap();
    assert_eq!(
        s.digest,
        Some(SnapDigest {
            zxid: 3,
            version: 1,
            digest: None
        })
    );
    let mut old_lz = old.clone();
    last_zxid_section(&mut old_lz, 4);
    assert_eq!(read(&old_lz, Compression::None).unwrap().last_zxid, Some(4));
    // A wrong seal 2 and seal 3, and bytes that make no section.
    let mut bad2 = d.clone();
    let at = bad2.len() - 13;
    bad2[at + 7] ^= 1;
    assert_eq!(
        offset_of(&read(&bad2, Compression::None).unwrap_err()),
        at as u64
    );
    let mut bad3 = both.clone();
    let at = bad3.len() - 13;
    bad3[at + 7] ^= 1;
    assert_eq!(
        offset_of(&read(&bad3, Compression::None).unwrap_err()),
        at as u64
    );
    let mut junk = base.clone();
    junk.extend_from_slice(&[1, 2, 3]);
    assert!(read(&junk, Compression::None).is_err());
}

// ---- whole directories ----

struct Dir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir(root.join(VERSION_DIR)).unwrap();
        Dir { _tmp: tmp, root }
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.join(VERSION_DIR).join(name), bytes).unwrap();
    }

    fn import(&self) -> Result<Imported, Error> {
        import(
            &scan(&self.root, &self.root).unwrap(),
            TreeConfig::default(),
        )
    }
}

fn set_data(path: &str, version: i32) -> TxnBody {
    TxnBody::SetData(SetDataTxn {
        path: path.into(),
        data: Some(Bytes::from_static(b"new")),
        version,
    })
}

#[test]
fn import_replays_a_fuzzy_snapshot_and_checks_digests() {
    // Proves the restore rules: the log before the snapshot is selected from
    // the one that holds name+1 (txn 3 is already in the fuzzy snapshot:
    // NODEEXISTS ignored), digests are compared after each txn, the dead
    // session's ephemeral is deleted and the live one's kept.
    let t = sample_tree();
    let d = Dir::new();
    let mut s = snap_stream(&t);
    digest_section(&mut s, 3, t.digest());
    d.put("snapshot.2", &s);
    d.put("snapshot.1.tmp", b"ignored");
    let log1 = vec![
        txn(
            1,
            0x51,
            &TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
        ),
        txn(2, 0x51, &create("/a", false, 1)),
        txn(3, 0x51, &create("/a/e", true, 1)),
    ];
    d.put("log.1", &log_file(&log1));
    // The oracle: the same txns on a fresh tree, the digest after each.
    let oracle = sample_tree();
    let mut log4 = Vec::new();
    for (z, s, b) in [
        (
            4,
            0x52,
            TxnBody::CreateSession(CreateSessionTxn { time_out: 4000 }),
        ),
        (5, 0x52, create("/a/f", true, 2)),
        (6, 0x51, TxnBody::CloseSession(CloseSessionTxn::default())),
        (7, 0, set_data("/a", 1)),
    ] {
        let p = txn(z, s, &b);
        let (h, body) = TxnBody::read_record(p.clone()).unwrap();
        oracle.apply(&h, &body);
        log4.push(with_digest(
            &p,
            if z == 7 { 12345 } else { oracle.digest() },
        ));
    }
    d.put("log.4", &log_file(&log4));
    let i = d.import().unwrap();
    assert_eq!(i.tree.last_processed_zxid(), 7);
    assert_eq!(i.replayed, 5, "txn 3 again, then 4-7");
    assert_eq!(i.tree.digest(), oracle.digest());
    assert_eq!(i.digests_checked, 5, "snapshot + 4 txns");
    assert_eq!(i.digest_mismatches, 1, "{:?}", i.warnings);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("digest mismatch: txn 0x7"))
    );
    assert!(i.warnings.iter().any(|w| w.contains("snapshot.1.tmp")));
    assert_eq!(i.tree.sessions(), vec![(0x52, 4000)]);
    assert_eq!(
        i.tree.ephemerals_by_session(),
        vec![(0x52, vec!["/a/f".to_string()])]
    );
    assert_eq!(i.logs.len(), 2);
    assert!(i.dead_sessions.is_empty());
}

#[test]
fn import_deletes_the_ephemerals_of_dead_sessions() {
    // Proves ZooKeeperServer.loadData's rule: an ephemeral whose session is
    // not in the table goes, at the last zxid.
    let t = Tree::new(TreeConfig::default());
    let (h, b) = TxnBody::read_record(txn(1, 0x99, &create("/gone", true, 1))).unwrap();
    t.apply(&h, &b);
    let d = Dir::new();
    d.put("snapshot.1", &snap_stream(&t));
    let i = d.import().unwrap();
    assert_eq!(i.dead_sessions, vec![(0x99, 1)]);
    assert_eq!(
        i.tree.node_count(),
        Tree::new(TreeConfig::default()).node_count()
    );
}

#[test]
fn import_torn_tails_and_crc_failures() {
    // Proves §9.5: a torn entry in an older log ends that file and the next
    // log is still read; a CRC failure of the newest log's last entry is a
    // torn tail; one in an older log's last entry, or mid-file, is an error
    // naming the file and offset; a short newest log is skipped.
    let t = Tree::new(TreeConfig::default());
    let d = Dir::new();
    d.put("snapshot.0", &snap_stream(&t));
    let mut l1 = log_file(&[txn(1, 0, &create("/one", false, 1))]);
    l1.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0]); // torn
    d.put("log.1", &l1);
    let mut l2 = log_file(&[
        txn(2, 0, &create("/two", false, 2)),
        txn(3, 0, &create("/three", false, 3)),
    ]);
    let n = l2.len();
    l2[n - 3] ^= 0x20; // inside the last payload
    d.put("log.2", &l2);
    let i = d.import().unwrap();
    assert_eq!(i.tree.last_processed_zxid(), 2);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("log.1 at byte") && w.contains("torn")),
        "{:?}",
        i.warnings
    );
    assert!(
        i.warnings.iter().any(|w| w.contains("fails its CRC check")),
        "{:?}",
        i.warnings
    );
    // A newer log that is shorter than its header: skipped, but log.2 is no
    // longer the newest, so its bad last entry is corruption.
    d.put("log.9", b"ZKL");
    let e = d.import().unwrap_err();
    let second = 16 + entry(&txn(2, 0, &create("/two", false, 2))).len() as u64;
    assert_eq!(offset_of(&e), second, "{e}");
    assert!(e.to_string().contains("log.2"), "{e}");
    // Mid-file damage is an error whatever the file.
    std::fs::remove_file(d.root.join(VERSION_DIR).join("log.9")).unwrap();
    l2[16 + 12] ^= 0x01;
    d.put("log.2", &l2);
    let e = d.import().unwrap_err();
    assert_eq!(offset_of(&e), 16, "{e}");
    // Only the short newest log: tolerated.
    d.put("log.2", &log_file(&[txn(2, 0, &create("/two", false, 2))]));
    d.put("log.9", b"");
    let i = d.import().unwrap();
    assert_eq!(i.tree.last_processed_zxid(), 2);
    assert!(
        i.warnings.iter().any(|w| w.contains("log.9: 0 bytes")),
        "{:?}",
        i.warnings
    );
}

#[test]
fn txn_digests_wait_for_the_snapshot_digest() {
    // Proves DataTree.compareDigest's fuzzy rule: a snapshot named 0x1 that
    // already holds txns 0x2 and 0x3 (its digest section at 0x3) is not
    // comparable with txn 0x2's digest (Apache's tree at 0x2), so that one
    // is skipped; the snapshot digest is checked at 0x3, then txn digests
    // again (a kill -9 during Apache's snapshots found this).
    let t = Tree::new(TreeConfig::default());
    let mut payloads = Vec::new();
    let mut digests = Vec::new();
    for (z, path) in [(1, "/a"), (2, "/b"), (3, "/c"), (4, "/d")] {
        let p = txn(z, 0, &create(path, false, z as i32));
        let (h, b) = TxnBody::read_record(p.clone()).unwrap();
        t.apply(&h, &b);
        digests.push(t.digest());
        payloads.push(p);
    }
    // The fuzzy snapshot: the tree after 0x3, named 0x1.
    let snap_tree = Tree::new(TreeConfig::default());
    for p in &payloads[..3] {
        let (h, b) = TxnBody::read_record(p.clone()).unwrap();
        snap_tree.apply(&h, &b);
    }
    let d = Dir::new();
    d.put(
        "snapshot.1",
        &crate::write::snapshot_stream(&snap_tree, Some((3, digests[2]))),
    );
    let logged: Vec<Bytes> = payloads
        .iter()
        .zip(&digests)
        .map(|(p, &dg)| with_digest(p, dg))
        .collect();
    d.put("log.1", &log_file(&logged));
    let i = d.import().unwrap();
    assert_eq!(i.tree.digest(), t.digest());
    assert_eq!(
        (i.digests_checked, i.digest_mismatches),
        (3, 0),
        "{:?}",
        i.warnings
    );
}

#[test]
fn no_snapshot_replays_onto_an_empty_tree_and_big_entries_are_reported() {
    // Proves §9.4 (a 3.4-era directory: logs and no snapshot are replayed
    // onto an empty tree, with a warning) and §9.14 (an entry above Apache's
    // default 2 MiB limit is replayed and reported).
    let d = Dir::new();
    let big = TxnBody::Create(CreateTxn {
        path: "/big".into(),
        data: Some(Bytes::from(vec![7u8; DEFAULT_MAX_ENTRY + 10])),
        acl: zk_tree::open_acl_unsafe(),
        ephemeral: false,
        parent_c_version: 1,
    });
    d.put(
        "log.1",
        &log_file(&[txn(1, 0, &big), txn(2, 0, &set_data("/big", 1))]),
    );
    let i = d.import().unwrap();
    assert_eq!(i.snapshot, None);
    assert_eq!((i.replayed, i.tree.last_processed_zxid()), (2, 2));
    assert!(
        i.warnings.iter().any(|w| w.contains("no snapshot")),
        "{:?}",
        i.warnings
    );
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("above Apache's default limit")),
        "{:?}",
        i.warnings
    );
    let (data, stat) = i
        .tree
        .get_data("/big", &zk_tree::Auth::default(), None)
        .unwrap();
    assert_eq!((data.as_deref(), stat.version), (Some(&b"new"[..]), 1));
}
