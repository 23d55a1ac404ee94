//! Taking over an Apache ZooKeeper data directory at start (issue 15;
//! design/apache-disk-format.md §9).
//!
//! When dataDir and dataLogDir hold none of our files (no `snapshot.<hex>`
//! in dataDir, no `log.<hex>` in dataLogDir: ours live in the directories
//! themselves) but their `version-2/` holds Apache's, zk-apache replays
//! Apache's newest usable snapshot and the logs after it, and we write, in
//! this order:
//!
//! 1. `currentEpoch` / `acceptedEpoch` (ours, in dataDir): Apache's
//!    `version-2/` files, at least the epoch of the last zxid;
//! 2. `apache-passwords` (in dataDir): from now on session passwords are
//!    Apache's (`java.util.Random` of the id), so the sessions taken over
//!    stay valid in standalone mode too;
//! 3. our snapshot at the last zxid: the commit point. A crash before it
//!    leaves no snapshot of ours, and the next start takes over again.
//!
//! Apache's files are only read. A file that cannot be read, or a corrupt
//! log (other than a torn tail, §9.5), stops the start with the file, the
//! offset and what to do.

use std::fs;
use std::path::Path;

use tracing::{info, warn};
use zk_jute::Zxid;
use zk_tree::TreeConfig;
use zk_txnlog::SnapshotStore;

use crate::config::Config;
use crate::epoch_files::EpochFiles;
use crate::error::{StartError, io_err};

/// The marker that says session passwords are Apache's.
pub(crate) const APACHE_PASSWORDS: &str = "apache-passwords";

/// Whether `dir` holds a file named `<prefix><hex>` (ours).
fn holds(dir: &Path, kind: fn(zk_apache::FileKind) -> bool) -> Result<bool, StartError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(format!("cannot list {}", dir.display()))(e)),
    };
    for e in entries {
        let e = e.map_err(io_err(format!("cannot list {}", dir.display())))?;
        if zk_apache::classify(&e.file_name().to_string_lossy()).is_some_and(kind) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether session passwords are Apache's in this data directory.
pub(crate) fn apache_passwords(data_dir: &Path) -> bool {
    data_dir.join(APACHE_PASSWORDS).exists()
}

/// Takes over Apache's files if there are some and none of ours; returns
/// the line logged, `None` when there was nothing to take over.
pub(crate) fn take_over(
    config: &Config,
    tree_cfg: TreeConfig,
) -> Result<Option<String>, StartError> {
    let ours = holds(&config.data_dir, |k| {
        matches!(k, zk_apache::FileKind::Snapshot(..))
    })? || holds(&config.data_log_dir, |k| {
        matches!(k, zk_apache::FileKind::Log(_))
    })?;
    if ours {
        return Ok(None);
    }
    let fail = |source| StartError::Takeover { source };
    let dir = zk_apache::scan(&config.data_dir, &config.data_log_dir).map_err(fail)?;
    if dir.is_empty() {
        return Ok(None);
    }
    info!(
        "no data of ours in {} / {}, Apache ZooKeeper's in {}: taking it over",
        config.data_dir.display(),
        config.data_log_dir.display(),
        dir.snap_dir.display()
    );
    let imported = zk_apache::import(&dir, tree_cfg).map_err(fail)?;
    for w in &imported.warnings {
        warn!("take-over: {w}");
    }
    for (session, n) in &imported.dead_sessions {
        info!(
            "take-over: session 0x{session:x} is dead: its {n} ephemerals deleted (as Apache does)"
        );
    }
    let tree = &imported.tree;
    let zxid = Zxid::from(tree.last_processed_zxid());
    let epoch = zxid.epoch_i64();
    let current = dir.current_epoch.unwrap_or(epoch).max(epoch);
    let accepted = dir.accepted_epoch.unwrap_or(current).max(current);
    let epochs = EpochFiles::new(&config.data_dir);
    epochs
        .set_current(current)
        .and_then(|()| epochs.set_accepted(accepted))
        .map_err(|e| StartError::TakeoverWrite(e.to_string()))?;
    fs::write(
        config.data_dir.join(APACHE_PASSWORDS),
        "session passwords are Apache ZooKeeper's: this data was taken over from it\n",
    )
    .map_err(io_err(
        "take-over: cannot write apache-passwords in dataDir",
    ))?;
    let snaps = SnapshotStore::open(&config.data_dir).map_err(|source| StartError::Recovery {
        what: format!("cannot open the snapshots in {}", config.data_dir.display()),
        source,
    })?;
    crate::storage::take_snapshot(tree, &snaps, zxid)
        .map_err(|e| StartError::TakeoverWrite(format!("cannot write our snapshot: {e}")))?;
    let files = std::iter::once(imported.snapshot.as_deref())
        .flatten()
        .chain(imported.logs.iter().map(|p| p.as_path()))
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some(format!(
        "took over Apache ZooKeeper's data at zxid {zxid}: {} znodes, {} sessions, {} txns replayed \
         ({} digests checked, {} mismatches), currentEpoch {current}, acceptedEpoch {accepted}; \
         files used: {files}; Apache's files were not changed",
        tree.node_count(),
        tree.sessions().len(),
        imported.replayed,
        imported.digests_checked,
        imported.digest_mismatches,
    )))
}

/// When our files exist (nothing was taken over at this start): whether
/// Apache ran on this directory after the take-over, so that its writes since
/// are not ours. Told by an Apache file that names a zxid past our last one,
/// or that was modified after the take-over (the `apache-passwords` marker's
/// time; the two histories may share zxids). Says so once, at start; `None`
/// when there is nothing to say.
pub(crate) fn apache_newer(config: &Config, our_last: Zxid) -> Option<String> {
    let dir = zk_apache::scan(&config.data_dir, &config.data_log_dir).ok()?;
    let files = dir
        .snapshots
        .iter()
        .map(|s| (s.zxid, &s.path))
        .chain(dir.logs.iter().map(|l| (l.zxid, &l.path)));
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let taken = mtime(&config.data_dir.join(APACHE_PASSWORDS));
    let mut why = None;
    for (zxid, path) in files {
        let reason = if zxid > our_last.as_i64() {
            format!("names zxid {zxid:#x}, past our last zxid {our_last}")
        } else if taken.is_some_and(|t| mtime(path).is_some_and(|m| m > t)) {
            "was written after zk-server took the directory over".to_string()
        } else {
            continue;
        };
        why = Some(format!("{} {reason}", path.display()));
    }
    Some(format!(
        "{}: Apache ZooKeeper ran on this directory after zk-server took it over, and its \
         writes since are not in zk-server's data. To take Apache's data over again, stop \
         zk-server and remove its own files from dataDir / dataLogDir (see the README)",
        why?
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use bytes::BytesMut;
    use zk_jute::{CreateTxn, TxnBody, TxnHeader};
    use zk_tree::Tree;

    use super::*;

    fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let b = fs::read(&p).unwrap();
                (p, b)
            })
            .collect()
    }

    /// An Apache dir: snapshot.0 of a fresh tree and a log with one create in
    /// epoch 3; Apache's currentEpoch 5, acceptedEpoch 6.
    fn apache_dir(root: &Path) {
        let v2 = root.join(zk_apache::VERSION_DIR);
        fs::create_dir_all(&v2).unwrap();
        let tree = Tree::new(TreeConfig::default());
        fs::write(
            v2.join("snapshot.0"),
            zk_apache::write::snapshot_stream(&tree, None),
        )
        .unwrap();
        let body = TxnBody::Create(CreateTxn {
            path: "/a".into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            ephemeral: false,
            parent_c_version: 1,
        });
        let h = TxnHeader {
            client_id: 0,
            cxid: 0,
            zxid: 0x3_0000_0001,
            time: 1,
            txn_type: body.txn_type().code(),
        };
        let mut b = BytesMut::new();
        body.write_record(&h, &mut b);
        fs::write(v2.join("log.300000001"), zk_apache::write::log_file(&[b])).unwrap();
        fs::write(v2.join("currentEpoch"), "5").unwrap();
        fs::write(v2.join("acceptedEpoch"), "6").unwrap();
    }

    #[test]
    fn takes_over_once_and_keeps_apaches_epochs() {
        // Proves the take-over's writes: our snapshot at the last zxid, the
        // epoch files carried from Apache's, the password marker; Apache's
        // files unchanged; a second start finds our files and does nothing.
        let d = tempfile::tempdir().unwrap();
        apache_dir(d.path());
        let before = files(&d.path().join(zk_apache::VERSION_DIR));
        let config = Config::standalone(d.path().to_path_buf(), 0);
        let line = take_over(&config, TreeConfig::default()).unwrap().unwrap();
        assert!(line.contains("at zxid 0x300000001: 5 znodes"), "{line}");
        assert!(line.contains("currentEpoch 5, acceptedEpoch 6"), "{line}");
        assert!(d.path().join("snapshot.300000001").exists());
        assert!(apache_passwords(d.path()));
        let epochs = EpochFiles::new(d.path())
            .load(Zxid::from(0x3_0000_0001i64))
            .unwrap();
        assert_eq!((epochs.current, epochs.accepted), (5, 6));
        assert_eq!(files(&d.path().join(zk_apache::VERSION_DIR)), before);
        assert!(take_over(&config, TreeConfig::default()).unwrap().is_none());
        // Apache ran again afterwards: said at the next start.
        let last = Zxid::from(0x3_0000_0001i64);
        assert_eq!(apache_newer(&config, last), None);
        let later = d.path().join(zk_apache::VERSION_DIR).join("log.300000005");
        fs::write(&later, zk_apache::write::log_file::<&[u8]>(&[])).unwrap();
        let msg = apache_newer(&config, last).unwrap();
        assert!(
            msg.contains("log.300000005 names zxid 0x300000005"),
            "{msg}"
        );
    }

    #[test]
    fn nothing_to_take_over_and_damage_stops_the_start() {
        // Proves the two other outcomes: an empty dir is left alone; a
        // damaged log is an error naming it, and nothing of ours is written.
        let d = tempfile::tempdir().unwrap();
        let config = Config::standalone(d.path().to_path_buf(), 0);
        assert!(take_over(&config, TreeConfig::default()).unwrap().is_none());
        apache_dir(d.path());
        let log = d.path().join(zk_apache::VERSION_DIR).join("log.300000001");
        let mut b = fs::read(&log).unwrap();
        b[16 + 12] ^= 1;
        b.extend(zk_apache::write::log_entry(b"not read"));
        fs::write(&log, b).unwrap();
        let e = take_over(&config, TreeConfig::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("log.300000001 at byte 16: CRC check failed"),
            "{msg}"
        );
        assert!(!apache_passwords(d.path()));
        assert!(!d.path().join("currentEpoch").exists());
    }
}
