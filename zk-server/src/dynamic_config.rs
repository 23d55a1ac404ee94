//! The dynamic config file, as ZooKeeper 3.5+ keeps it with
//! `reconfigEnabled=true`: once an epoch gives the ensemble's configuration a
//! version (ZOOKEEPER-1783: a version-0 configuration takes the new epoch's
//! first zxid), every member writes its membership to
//! `<zoo.cfg>.dynamic.<hex version>` and rewrites zoo.cfg to name it
//! (`dynamicConfigFile=`), without its `server.X` lines. A restart then reads
//! the versioned configuration back ([`crate::config::Config`]), so that its
//! LearnerInfo is not refused by a leader of the same version, nor does it
//! refuse such learners when it leads.
//!
//! As ZooKeeper's `QuorumPeerConfig.writeDynamicConfig` and
//! `editStaticConfig`: the dynamic file holds the `server.N=...` lines sorted
//! as text, no version line (its name carries it); zoo.cfg loses its
//! `server.`, `group`, `weight`, `peerType` and `dynamicConfigFile` lines
//! (and `clientPort` / `clientPortAddress` when this server's own line gives
//! its client address) and gains `dynamicConfigFile=<absolute path>`; a
//! zoo.cfg that still held its membership is first copied to `zoo.cfg.bak`.
//! Unlike ZooKeeper's rewrite (Java properties in hash order, comments
//! dropped), the lines kept stay in their order, comments included. Both
//! files are replaced atomically (a temporary file synced, renamed, the
//! directory synced).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, property};

/// Writes the dynamic config file of `cfg`'s membership at `version` next
/// to `zoo_cfg` and rewrites `zoo_cfg` to name it; returns the dynamic
/// file's path.
pub(crate) fn persist(zoo_cfg: &Path, cfg: &Config, version: u64) -> io::Result<PathBuf> {
    let dynamic = PathBuf::from(format!("{}.dynamic.{version:x}", zoo_cfg.display()));
    let mut lines: Vec<String> = cfg
        .servers
        .iter()
        .map(|s| format!("server.{}={}", s.id, s.to_config_value()))
        .collect();
    lines.sort();
    write_atomically(&dynamic, lines.join("\n").as_bytes())?;
    let old = std::fs::read_to_string(zoo_cfg)?;
    let erase_client = cfg
        .servers
        .iter()
        .any(|s| s.id == cfg.my_id && s.client_addr.is_some());
    let static_membership = !old
        .lines()
        .any(|l| property(l).is_some_and(|(k, _)| k == "dynamicConfigFile"));
    if static_membership {
        write_atomically(
            &PathBuf::from(format!("{}.bak", zoo_cfg.display())),
            old.as_bytes(),
        )?;
    }
    let mut text = String::new();
    for line in old.lines() {
        let dropped = property(line).is_some_and(|(k, _)| {
            k.starts_with("server.")
                || k.starts_with("group")
                || k.starts_with("weight")
                || k == "peerType"
                || k == "dynamicConfigFile"
                || (erase_client && (k == "clientPort" || k == "clientPortAddress"))
        });
        if !dropped {
            text.push_str(line);
            text.push('\n');
        }
    }
    let absolute = std::fs::canonicalize(&dynamic)?;
    text.push_str(&format!("dynamicConfigFile={}\n", absolute.display()));
    write_atomically(zoo_cfg, text.as_bytes())?;
    Ok(dynamic)
}

/// Replaces `path` with `bytes`: a temporary file beside it, synced, then
/// renamed over it and the directory synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rewritten zoo.cfg reads back as the same ensemble at the version.
    #[test]
    fn a_persisted_version_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let zoo = dir.path().join("zoo.cfg");
        let text = format!(
            "# my ensemble\ntickTime=2000\ndataDir={}\nclientPort=2181\nreconfigEnabled=true\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.10=127.0.0.1:2890:3890:observer\npeerType=participant\n",
            dir.path().display()
        );
        std::fs::write(&zoo, &text).unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let cfg = Config::from_file(&zoo).unwrap();
        let dynamic = persist(&zoo, &cfg, 0x1_0000_0000).unwrap();
        assert_eq!(dynamic, dir.path().join("zoo.cfg.dynamic.100000000"));
        assert_eq!(
            std::fs::read_to_string(&dynamic).unwrap(),
            "server.10=127.0.0.1:2890:3890:observer\n\
             server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.1:2889:3889:participant",
            "sorted as text (as Java's String order: '0' before '='), no version line"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("zoo.cfg.bak")).unwrap(),
            text
        );
        let rewritten = std::fs::read_to_string(&zoo).unwrap();
        assert!(
            rewritten.starts_with("# my ensemble\ntickTime=2000\n"),
            "{rewritten}"
        );
        assert!(!rewritten.contains("server.") && !rewritten.contains("peerType"));
        let again = Config::from_file(&zoo).unwrap();
        assert_eq!(again.config_version, 0x1_0000_0000);
        let by_id = |c: &Config| {
            let mut s = c.servers.clone();
            s.sort_by_key(|s| s.id);
            s
        };
        assert_eq!(by_id(&again), by_id(&cfg));
        assert_eq!(again.quorum_config_text_at(0), cfg.quorum_config_text_at(0));
        assert_eq!((again.my_id, again.client_port), (2, 2181));
        // A later version: the file named anew, zoo.cfg.bak left as it was.
        persist(&zoo, &again, 0x2_0000_0000).unwrap();
        let third = Config::from_file(&zoo).unwrap();
        assert_eq!(third.config_version, 0x2_0000_0000);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("zoo.cfg.bak")).unwrap(),
            text
        );
    }

    /// A server whose own line gives its client address loses clientPort and
    /// clientPortAddress from zoo.cfg (the dynamic file has it).
    #[test]
    fn a_client_address_in_the_server_line_moves_out_of_zoo_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let zoo = dir.path().join("zoo.cfg");
        std::fs::write(
            &zoo,
            format!(
                "dataDir={}\nclientPort=2182\nserver.1=127.0.0.1:2888:3888;2181\n\
                 server.2=127.0.0.1:2889:3889;2182\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let cfg = Config::from_file(&zoo).unwrap();
        persist(&zoo, &cfg, 0x5_0000_0000).unwrap();
        let rewritten = std::fs::read_to_string(&zoo).unwrap();
        assert!(!rewritten.contains("clientPort"), "{rewritten}");
        let again = Config::from_file(&zoo).unwrap();
        assert_eq!(again.client_port, 2182);
    }
}
