//! Where benches that measure durability put their files.
//!
//! An fsync on tmpfs costs nothing, so a durable-write bench run there measures
//! only CPU. [`durable_dir`] picks a directory on a real file system and
//! [`fs_type`] names the file system, for the bench to print next to its
//! figures.

use std::path::{Path, PathBuf};

/// File systems whose fsync does not reach a disk.
const MEMORY_FS: &[&str] = &["tmpfs", "ramfs", "devtmpfs"];

/// A directory for bench files that must reach a real disk:
///
/// 1. `$ZK_BENCH_DIR` when set (point it at the disk you care about);
/// 2. else the system temp dir, unless it is on tmpfs/ramfs;
/// 3. else `zk-bench-tmp` beside the bench executable's profile directory
///    (`target/release/zk-bench-tmp`), created if absent.
pub fn durable_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZK_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let tmp = std::env::temp_dir();
    if !fs_type(&tmp).is_some_and(|t| MEMORY_FS.contains(&t.as_str())) {
        return tmp;
    }
    // The executable is target/<profile>/deps/<bench>-<hash>.
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|p| p.join("zk-bench-tmp")))
        .unwrap_or_else(|| PathBuf::from("zk-bench-tmp"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "cannot create {}: {e}; using {}",
            dir.display(),
            tmp.display()
        );
        return tmp;
    }
    dir
}

/// The type of the file system holding `path` (`ext4`, `xfs`, `tmpfs`, ...),
/// from the longest matching mount point in `/proc/self/mountinfo`; `None` when
/// that cannot be read (not Linux) or the path does not exist.
pub fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        // id parent major:minor root mount-point options [optional...] - type source ...
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        let Some(fs) = fields.skip_while(|f| *f != "-").nth(1) else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        let depth = Path::new(&mount_point).components().count();
        if path.starts_with(&mount_point) && best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, fs.to_string()));
        }
    }
    best.map(|(_, fs)| fs)
}
