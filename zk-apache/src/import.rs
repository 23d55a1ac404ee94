//! Replaying a data directory as Apache 3.8 would restore it
//! (design/apache-disk-format.md §4 "Restore", §9.2-9.8, §9.12): the newest
//! usable snapshot, the logs after it (fuzzy replay: zk-tree's apply ignores
//! NONODE / NODEEXISTS as `DataTree.processTxn` does), then the ephemerals
//! of dead sessions deleted (`ZooKeeperServer.loadData`). Digests, where the
//! files carry them, are checked as Apache checks them: the snapshot's at its
//! zxid, each txn's after it once the snapshot's has been reached (before,
//! the tree is still fuzzy: a txn's digest is of Apache's tree at that txn,
//! while ours may already hold later txns the fuzzy snapshot caught). A
//! mismatch is a warning, as in Apache.
//!
//! Where we differ from Apache (§9.5): a torn entry in a log that is not the
//! newest ends that file and reading goes on with the next one (Apache does
//! the same, silently); a checksum failure of the very last entry of the
//! newest log is a torn tail (Apache refuses to start), anywhere else it is
//! an error; a newest log shorter than its header is tolerated.

use std::path::PathBuf;

use zk_jute::{CloseSessionTxn, OpCode, TxnBody, TxnHeader};
use zk_tree::{Tree, TreeConfig};

use crate::files::{DataDir, logs_from};
use crate::log::{LogEnd, LogReader};
use crate::snap::{SnapDigest, read_snapshot};
use crate::{Error, decode_txn};

/// Snapshots tried, newest first (`FileSnap.findNValidSnapshots(100)`).
const MAX_CANDIDATES: usize = 100;
/// Digest mismatches quoted one by one in the warnings; more are counted.
const MAX_QUOTED: usize = 5;
/// Largest log entry replayed. Apache's own limit (jute.maxbuffer plus its
/// extrasize, [`crate::DEFAULT_MAX_ENTRY`] by default) is configurable, so
/// larger entries are accepted and reported (§9.14) up to this bound on what
/// one entry may allocate.
pub const IMPORT_MAX_ENTRY: usize = 64 << 20;

/// A data directory replayed.
#[derive(Debug)]
pub struct Imported {
    /// The tree, with its session table.
    pub tree: Tree,
    /// The snapshot used, `None` when the logs were replayed onto an empty tree.
    pub snapshot: Option<PathBuf>,
    /// The log files read (oldest first).
    pub logs: Vec<PathBuf>,
    /// Txns applied from the logs.
    pub replayed: u64,
    /// Dead sessions whose ephemerals were deleted: (session, ephemerals).
    pub dead_sessions: Vec<(i64, usize)>,
    /// Digests checked and how many did not match.
    pub digests_checked: u64,
    /// Digest mismatches.
    pub digest_mismatches: u64,
    /// What the operator should know (torn tails, skipped snapshots,
    /// ignored files, digest mismatches, zxids going backwards).
    pub warnings: Vec<String>,
}

/// The snapshot to start from: the newest that reads and passes its seals,
/// older ones only if the logs reach back to them.
fn choose_snapshot(
    dir: &DataDir,
    config: &TreeConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<crate::Snapshot>, Error> {
    let mut reasons = Vec::new();
    let oldest_log = dir.logs.first().map(|l| l.zxid);
    for (i, file) in dir.snapshots.iter().rev().take(MAX_CANDIDATES).enumerate() {
        if i > 0 && oldest_log.is_none_or(|z| z > file.zxid.saturating_add(1)) {
            reasons.push(format!(
                "{}: the logs do not reach back to it",
                file.path.display()
            ));
            continue;
        }
        match read_snapshot(file, config.clone()) {
            Ok(s) => {
                warnings.extend(reasons.iter().map(|r| format!("snapshot skipped: {r}")));
                return Ok(Some(s));
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if dir.snapshots.is_empty() {
        return Ok(None);
    }
    Err(Error::NoSnapshot {
        dir: dir.snap_dir.clone(),
        reasons: reasons.join("; "),
    })
}

/// Where the snapshot's digest is to be checked.
struct Pending {
    digest: Option<SnapDigest>,
}

impl Pending {
    /// After txn `zxid` (or the load, at the name's zxid): checks the
    /// snapshot digest if it is of `zxid`, and drops it once the replay has
    /// passed it (`DataTree.compareSnapshotDigests`).
    fn check(&mut self, zxid: i64, tree: &Tree, out: &mut Checks) {
        let due = self.digest.take_if(|d| zxid >= d.zxid);
        let want = due
            .filter(|d| d.zxid == zxid && d.version == zk_tree::DIGEST_VERSION)
            .and_then(|d| d.digest);
        if let Some(want) = want {
            out.compare(
                format!("snapshot digest at 0x{zxid:x}"),
                want,
                tree.digest(),
            );
        }
    }

    /// Whether the tree is still fuzzy: a snapshot digest is yet to be
    /// reached, and txn digests are not compared (`DataTree.compareDigest`).
    fn fuzzy(&self) -> bool {
        self.digest.is_some()
    }
}

#[derive(Default)]
struct Checks {
    checked: u64,
    mismatches: u64,
    warnings: Vec<String>,
}

impl Checks {
    fn compare(&mut self, what: String, want: i64, got: i64) {
        self.checked += 1;
        if want != got {
            self.mismatches += 1;
            if self.mismatches as usize <= MAX_QUOTED {
                self.warnings.push(format!(
                    "digest mismatch: {what}: the file says {want:#x}, the replayed tree is {got:#x}"
                ));
            }
        }
    }
}

/// Replays `dir` as Apache would restore it. `config` must mirror the
/// Apache server's settings (`extended_types` = `zookeeper.extendedTypesEnabled`:
/// without it Apache reads TTL nodes as ephemerals of dead sessions and
/// deletes them, and so does this).
pub fn import(dir: &DataDir, config: TreeConfig) -> Result<Imported, Error> {
    let mut warnings: Vec<String> = dir
        .ignored
        .iter()
        .map(|p| {
            format!(
                "not an Apache snapshot or log name, ignored: {}",
                p.display()
            )
        })
        .collect();
    let snap = choose_snapshot(dir, &config, &mut warnings)?;
    let mut checks = Checks::default();
    let (tree, snapshot, from, mut pending) = match snap {
        Some(s) => {
            // zxid 0: an empty digest; below the name's zxid: ignored (§4).
            let digest = s.digest.filter(|d| d.zxid != 0 && d.zxid >= s.zxid);
            let mut pending = Pending { digest };
            pending.check(s.zxid, &s.tree, &mut checks);
            (s.tree, Some(s.path), s.zxid + 1, pending)
        }
        None => {
            warnings.push(format!(
                "no snapshot in {}: the logs are replayed onto an empty tree (a 3.4-era directory)",
                dir.snap_dir.display()
            ));
            (Tree::new(config), None, 1, Pending { digest: None })
        }
    };
    let logs = logs_from(&dir.logs, from);
    let mut replayed = 0u64;
    let mut highest = tree.last_processed_zxid();
    for (i, file) in logs.iter().enumerate() {
        let newest = i + 1 == logs.len();
        let mut reader = LogReader::open(&file.path)?.with_max_len(IMPORT_MAX_ENTRY);
        while let Some(entry) = reader.next_entry()? {
            if entry.payload.len() > crate::DEFAULT_MAX_ENTRY {
                warnings.push(format!(
                    "{} at byte {}: a {}-byte entry, above Apache's default limit (jute.maxbuffer \
                     was raised): zk-server's jute.maxbuffer must allow it too",
                    file.path.display(),
                    entry.offset,
                    entry.payload.len()
                ));
            }
            let txn = decode_txn(entry.payload).map_err(|e| {
                Error::corrupt(
                    &file.path,
                    entry.offset,
                    format!("entry does not decode: {e}"),
                )
            })?;
            let z = txn.header.zxid;
            if z < from {
                continue;
            }
            if z <= highest && replayed > 0 {
                warnings.push(format!(
                    "{} at byte {}: zxid 0x{z:x} after 0x{highest:x} (applied anyway, as Apache does)",
                    file.path.display(),
                    entry.offset
                ));
            }
            highest = highest.max(z);
            let _ = tree.apply(&txn.header, &txn.body);
            replayed += 1;
            pending.check(z, &tree, &mut checks);
            let digest = txn.digest.filter(|d| d.version == zk_tree::DIGEST_VERSION);
            if let Some(d) = digest.filter(|_| !pending.fuzzy()) {
                checks.compare(format!("txn 0x{z:x}"), d.tree_digest, tree.digest());
            }
        }
        end_of_file(reader.end(), &file.path, newest, &mut warnings)?;
    }
    let dead_sessions = kill_dead_sessions(&tree);
    warnings.append(&mut checks.warnings);
    if checks.mismatches as usize > MAX_QUOTED {
        warnings.push(format!("{} digest mismatches in all", checks.mismatches));
    }
    Ok(Imported {
        tree,
        snapshot,
        logs: logs.iter().map(|l| l.path.clone()).collect(),
        replayed,
        dead_sessions,
        digests_checked: checks.checked,
        digest_mismatches: checks.mismatches,
        warnings,
    })
}

/// Whether a file's end is acceptable (see the module docs).
fn end_of_file(
    end: Option<&LogEnd>,
    path: &std::path::Path,
    newest: bool,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    match end {
        None | Some(LogEnd::Eof | LogEnd::Zero { .. }) => Ok(()),
        Some(LogEnd::Torn { offset, reason }) => {
            warnings.push(format!(
                "{} at byte {offset}: torn entry ({reason}); {}",
                path.display(),
                if newest {
                    "the log ends there"
                } else {
                    "reading goes on with the next log"
                }
            ));
            Ok(())
        }
        Some(LogEnd::Short { len }) if newest => {
            warnings.push(format!(
                "{}: {len} bytes, no header yet; skipped",
                path.display()
            ));
            Ok(())
        }
        Some(LogEnd::Short { len }) => Err(Error::corrupt(
            path,
            0,
            format!("{len} bytes, shorter than the 16-byte header, and newer logs follow"),
        )),
        Some(LogEnd::BadChecksum { offset }) if newest => {
            warnings.push(format!(
                "{} at byte {offset}: the last entry fails its CRC check; taken as a torn tail",
                path.display()
            ));
            Ok(())
        }
        Some(LogEnd::BadChecksum { offset }) => Err(Error::corrupt(
            path,
            *offset,
            "CRC check failed (the file's last entry, but newer logs follow)",
        )),
    }
}

/// `ZooKeeperServer.loadData`: sessions that own ephemerals but are not in
/// the session table are dead; their ephemerals go, at the last zxid
/// (`killSession(id, lastProcessedZxid)`).
fn kill_dead_sessions(tree: &Tree) -> Vec<(i64, usize)> {
    let live: std::collections::HashSet<i64> = tree.sessions().iter().map(|s| s.0).collect();
    let zxid = tree.last_processed_zxid();
    let mut dead = Vec::new();
    for (session, paths) in tree.ephemerals_by_session() {
        if live.contains(&session) {
            continue;
        }
        let hdr = TxnHeader {
            client_id: session,
            cxid: 0,
            zxid,
            time: 0,
            txn_type: OpCode::CloseSession.code(),
        };
        let _ = tree.apply(&hdr, &TxnBody::CloseSession(CloseSessionTxn::default()));
        dead.push((session, paths.len()));
    }
    dead
}
