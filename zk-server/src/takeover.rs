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
