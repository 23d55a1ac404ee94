//! The Zab epoch files, `currentEpoch` and `acceptedEpoch`, as Apache
//! ZooKeeper keeps them (`QuorumPeer`; design/quorum.md §5,
//! design/apache-disk-format.md §1).
//!
//! * `acceptedEpoch`: the newest epoch this server promised to follow
//!   (written by a learner on LEADERINFO before ACKEPOCH, by a leader when its
//!   epoch quorum forms). It never accepts a leader of an older epoch.
//! * `currentEpoch`: the epoch of the leader it last synced with (written on
//!   NEWLEADER before the ACK, by a leader after the epoch-ack quorum).
//!   `acceptedEpoch >= currentEpoch` always.
//!
//! **Format**: `Long.toString(epoch)`: ASCII decimal, optional sign, no
//! newline. A reader takes the first line (`BufferedReader.readLine`: up to
//! `\n`, `\r` or the end) and parses it as a Java `long`, so a trailing
//! newline written by hand is accepted.
//!
//! **Atomic write** (`AtomicFileWritingIdiom`): `<name>.tmp` is written and
//! fsynced, renamed over `<name>`, then the directory is fsynced (Apache
//! skips that last step; without it the rename may not survive a crash).
//!
//! **Directory**: Apache keeps them in its snapshot directory,
//! `<dataDir>/version-2`. Our snapshots live in `dataDir` itself (zk-txnlog's
//! `SnapshotStore` opened on `config.data_dir` in `storage.rs`; `conf` shows
//! dataDir without `/version-2`), so the files go beside them in `dataDir`,
//! with Apache's names; `quorum::current_epoch` already reads
//! `<dataDir>/currentEpoch`. [`EpochFiles::new`] takes the directory, so
//! moving them is one line at the caller.
//!
//! **Loading** ([`EpochFiles::load`], `QuorumPeer.loadDataBase`), given the
//! last zxid in the log (`E` = its epoch, `zxid >> 32`). Each row has its test
//! in this module, named after the row:
//!
//! | row | state on disk | outcome |
//! |---|---|---|
//! | L1 `missing_current` | no `currentEpoch` | created holding `E` (Apache's upgrade path) |
//! | L2 `missing_accepted` | no `acceptedEpoch` | created holding `E`, then checked as L6 |
//! | L3 `current_from_tmp` | `E > currentEpoch`, `currentEpoch.tmp` holds `t >= E` | a crash interrupted the atomic write: `currentEpoch` rewritten to `t` |
//! | L4 `tmp_behind_log` | `E > currentEpoch`, `currentEpoch.tmp` holds `t < E` | refuse (stricter than Apache, which takes `t`) |
//! | L5 `current_behind_log` | `E > currentEpoch`, no `currentEpoch.tmp`, `acceptedEpoch < E` | refuse; the message says what to do |
//! | L9 `synced_before_current` | `E > currentEpoch`, no `currentEpoch.tmp`, `acceptedEpoch >= E` | used as they are: a learner crashed after making the txns of its sync durable and before writing `currentEpoch` (zk-zab's NEWLEADER order: txns, then currentEpoch, then the ACK; ensemble-testing.md §4 #12); it is synced again by the next leader |
//! | L6 `accepted_behind_current` | `acceptedEpoch < currentEpoch` | refuse |
//! | L7 `garbage` | a file (or `currentEpoch.tmp` in L3) does not parse | error naming the file and its content |
//! | L8 `consistent` | `E <= currentEpoch <= acceptedEpoch` | used as they are; a left-over `.tmp` is ignored |
//!
//! The sequencer's Zab role (`sequencer/role.rs`) loads the epochs at each
//! role start and writes them as zk-zab's cores ask.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::info;
use zk_jute::Zxid;

/// `QuorumPeer.CURRENT_EPOCH_FILENAME`.
pub(crate) const CURRENT_EPOCH: &str = "currentEpoch";
/// `QuorumPeer.ACCEPTED_EPOCH_FILENAME`.
pub(crate) const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// `AtomicFileOutputStream.TMP_EXTENSION`.
const TMP_EXTENSION: &str = ".tmp";
/// Bytes of a bad file quoted in an error.
const QUOTE_MAX: usize = 64;

/// Why the epoch files could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum EpochError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file could not be written, synced or renamed into place.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file (or the directory, for its fsync).
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file does not hold an epoch (row L7).
    #[error("{}: {content:?} is not an epoch (ASCII decimal, as Long.toString writes)", path.display())]
    Garbage {
        /// The file.
        path: PathBuf,
        /// Its first line (at most 64 bytes, invalid UTF-8 replaced).
        content: String,
    },
    /// The log holds txns of an epoch newer than `currentEpoch` and no
    /// interrupted write explains it (row L5).
    #[error(
        "{}: the current epoch {current} is older than the epoch {log_epoch} of the last zxid \
         {last_zxid} in the log, and there is no {}.tmp left by an interrupted write. \
         The epoch file was lost, rolled back or copied from another server. If this server's \
         log is trusted, write {log_epoch} into {} (no newline) and start again; otherwise empty \
         the data directory so that the server resyncs from the leader",
        path.display(), path.display(), path.display()
    )]
    CurrentBehindLog {
        /// `currentEpoch`.
        path: PathBuf,
        /// Its value.
        current: i64,
        /// The epoch of the last zxid.
        log_epoch: i64,
        /// The last zxid.
        last_zxid: Zxid,
    },
    /// `currentEpoch.tmp` would be taken but is older than the log too
    /// (row L4).
    #[error(
        "{}: the interrupted write of epoch {tmp_epoch} is older than the epoch {log_epoch} of \
         the last zxid {last_zxid} in the log; neither it nor currentEpoch can be trusted. If \
         this server's log is trusted, write {log_epoch} into currentEpoch, delete this file \
         and start again; otherwise empty the data directory so that the server resyncs from \
         the leader",
        path.display()
    )]
    TmpBehindLog {
        /// `currentEpoch.tmp`.
        path: PathBuf,
        /// Its value.
        tmp_epoch: i64,
        /// The epoch of the last zxid.
        log_epoch: i64,
        /// The last zxid.
        last_zxid: Zxid,
    },
    /// `acceptedEpoch < currentEpoch` (row L6).
    #[error(
        "{}: the accepted epoch {accepted} is less than the current epoch {current}; a server \
         always accepts an epoch before it makes it current, so one of the two files was lost \
         or rolled back. Empty the data directory so that the server resyncs from the leader",
        path.display()
    )]
    AcceptedBehindCurrent {
        /// `acceptedEpoch`.
        path: PathBuf,
        /// Its value.
        accepted: i64,
        /// `currentEpoch`'s value.
        current: i64,
    },
}

/// The two epochs, as loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epochs {
    /// `currentEpoch`.
    pub(crate) current: i64,
    /// `acceptedEpoch`.
    pub(crate) accepted: i64,
}

/// The epoch files of one data directory.
#[derive(Debug, Clone)]
pub(crate) struct EpochFiles {
    dir: PathBuf,
}

impl EpochFiles {
    /// The files in `dir` (the server's dataDir, where its snapshots are).
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        EpochFiles { dir: dir.into() }
    }

    /// The path of file `name` (`currentEpoch`, `acceptedEpoch`, or a `.tmp`).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Loads both epochs given the last zxid of the log, by the table in the
    /// module docs; creates missing files and replays an interrupted write of
    /// `currentEpoch`.
    pub(crate) fn load(&self, last_zxid: Zxid) -> Result<Epochs, EpochError> {
        let log_epoch = last_zxid.epoch_i64();
        let current_path = self.path(CURRENT_EPOCH);
        let mut current = match read_epoch(&current_path)? {
            Some(e) => e,
            None => {
                // L1
                info!(
                    "{} not found: creating it with the epoch of the last zxid {last_zxid}, {log_epoch}",
                    current_path.display()
                );
                self.set_current(log_epoch)?;
                log_epoch
            }
        };
        if log_epoch > current {
            let tmp_path = self.path(&format!("{CURRENT_EPOCH}{TMP_EXTENSION}"));
            match read_epoch(&tmp_path)? {
                // L3
                Some(t) if t >= log_epoch => {
                    info!(
                        "{} found: an interrupted write; setting the current epoch to {t}",
                        tmp_path.display()
                    );
                    self.set_current(t)?;
                    current = t;
                }
                // L4
                Some(t) => {
                    return Err(EpochError::TmpBehindLog {
                        path: tmp_path,
                        tmp_epoch: t,
                        log_epoch,
                        last_zxid,
                    });
                }
                // L9
                None if read_epoch(&self.path(ACCEPTED_EPOCH))?.is_some_and(|a| a >= log_epoch) => {
                    info!(
                        "the log reaches epoch {log_epoch} ({last_zxid}) beyond currentEpoch {current}: \
                         a sync was durable before its currentEpoch; keeping currentEpoch {current}"
                    );
                }
                // L5
                None => {
                    return Err(EpochError::CurrentBehindLog {
                        path: current_path,
                        current,
                        log_epoch,
                        last_zxid,
                    });
                }
            }
        }
        let accepted_path = self.path(ACCEPTED_EPOCH);
        let accepted = match read_epoch(&accepted_path)? {
            Some(e) => e,
            None => {
                // L2
                info!(
                    "{} not found: creating it with the epoch of the last zxid {last_zxid}, {log_epoch}",
                    accepted_path.display()
                );
                self.set_accepted(log_epoch)?;
                log_epoch
            }
        };
        if accepted < current {
            // L6
            return Err(EpochError::AcceptedBehindCurrent {
                path: accepted_path,
                accepted,
                current,
            });
        }
        Ok(Epochs { current, accepted })
    }

    /// Writes `currentEpoch` atomically (`QuorumPeer.setCurrentEpoch`).
    pub(crate) fn set_current(&self, epoch: i64) -> Result<(), EpochError> {
        write_epoch(&self.dir, CURRENT_EPOCH, epoch)
    }

    /// Writes `acceptedEpoch` atomically (`QuorumPeer.setAcceptedEpoch`).
    pub(crate) fn set_accepted(&self, epoch: i64) -> Result<(), EpochError> {
        write_epoch(&self.dir, ACCEPTED_EPOCH, epoch)
    }
}

/// Reads an epoch file: `None` if it does not exist.
pub(crate) fn read_epoch(path: &Path) -> Result<Option<i64>, EpochError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EpochError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse_epoch(&bytes).map(Some).ok_or_else(|| {
        let line = first_line(&bytes);
        let quoted = &line[..line.len().min(QUOTE_MAX)];
        EpochError::Garbage {
            path: path.to_path_buf(),
            content: String::from_utf8_lossy(quoted).into_owned(),
        }
    })
}

/// What `BufferedReader.readLine` returns first: the bytes up to `\n`, `\r`
/// or the end.
fn first_line(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(bytes.len());
    &bytes[..end]
}

/// `Long.parseLong` of the first line, for ASCII digits: an optional `+` or
/// `-`, then 1-19 digits within the range of a long. (Java also takes
/// non-ASCII Unicode digits; nobody writes those into an epoch file.)
fn parse_epoch(bytes: &[u8]) -> Option<i64> {
    let line = first_line(bytes);
    let digits = line.strip_prefix(b"+").or_else(|| line.strip_prefix(b"-"));
    let digits = digits.unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Only ASCII sign and digits are left, so this is UTF-8.
    std::str::from_utf8(line).ok()?.parse::<i64>().ok()
}

/// Writes `value` as `name` in `dir` atomically: `<name>.tmp`, fsync,
/// rename, fsync of the directory.
pub(crate) fn write_epoch(dir: &Path, name: &str, value: i64) -> Result<(), EpochError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_EXTENSION}"));
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| EpochError::Write { path: p, source }
    };
    let mut f = File::create(&tmp).map_err(write_err(&tmp))?;
    f.write_all(value.to_string().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write_err(&tmp))?;
    drop(f);
    if let Err(e) = fs::rename(&tmp, &path) {
        // As AtomicFileOutputStream: do not leave a tmp that the next load
        // could mistake for an interrupted write.
        let _ = fs::remove_file(&tmp);
        return Err(write_err(&path)(e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const E5: Zxid = Zxid::new(5, 7);

    fn files() -> (tempfile::TempDir, EpochFiles) {
        let dir = tempfile::tempdir().unwrap();
        let f = EpochFiles::new(dir.path());
        (dir, f)
    }

    fn put(f: &EpochFiles, name: &str, content: &str) {
        fs::write(f.path(name), content).unwrap();
    }

    fn get(f: &EpochFiles, name: &str) -> String {
        fs::read_to_string(f.path(name)).unwrap()
    }

    #[test]
    fn write_is_decimal_without_newline_and_leaves_no_tmp() {
        let (_d, f) = files();
        f.set_current(12).unwrap();
        f.set_accepted(-3).unwrap();
        assert_eq!(get(&f, CURRENT_EPOCH), "12");
        assert_eq!(get(&f, ACCEPTED_EPOCH), "-3");
        f.set_current(i64::MAX).unwrap();
        assert_eq!(get(&f, CURRENT_EPOCH), "9223372036854775807");
        assert!(!f.path("currentEpoch.tmp").exists());
        assert!(!f.path("acceptedEpoch.tmp").exists());
    }

    #[test]
    fn read_takes_the_first_line_as_java() {
        let (_d, f) = files();
        for (content, want) in [
            ("5", Some(5)),
            ("5\n", Some(5)),
            ("5\r\n", Some(5)),
            ("5\rjunk", Some(5)),
            ("+5", Some(5)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("", None),
            ("\n5", None),
            (" 5", None),
            ("5 ", None),
            ("0x5", None),
            ("+", None),
            ("9223372036854775808", None),
        ] {
            put(&f, CURRENT_EPOCH, content);
            let got = read_epoch(&f.path(CURRENT_EPOCH));
            match want {
                Some(v) => assert_eq!(got.unwrap(), Some(v), "{content:?}"),
                None => assert!(
                    matches!(got, Err(EpochError::Garbage { .. })),
                    "{content:?}: {got:?}"
                ),
            }
        }
        assert_eq!(read_epoch(&f.path("absent")).unwrap(), None);
    }

    /// L1: a missing currentEpoch is created from the log's epoch.
    #[test]
    fn l1_missing_current() {
        let (_d, f) = files();
        put(&f, ACCEPTED_EPOCH, "6");
        let e = f.load(E5).unwrap();
        assert_eq!(
            e,
            Epochs {
                current: 5,
                accepted: 6
            }
        );
        assert_eq!(get(&f, CURRENT_EPOCH), "5");
    }

    /// L2: a missing acceptedEpoch is created from the log's epoch (and both
    /// on a fresh directory, epoch 0).
    #[test]
    fn l2_missing_accepted() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "5");
        assert_eq!(
            f.load(E5).unwrap(),
            Epochs {
                current: 5,
                accepted: 5
            }
        );
        assert_eq!(get(&f, ACCEPTED_EPOCH), "5");

        let (_d, f) = files();
        assert_eq!(
            f.load(Zxid::ZERO).unwrap(),
            Epochs {
                current: 0,
                accepted: 0
            }
        );
        assert_eq!(get(&f, CURRENT_EPOCH), "0");
        assert_eq!(get(&f, ACCEPTED_EPOCH), "0");

        // Created from the log even when that leaves it behind currentEpoch:
        // then L6 refuses, as Apache.
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "7");
        let err = f.load(E5).unwrap_err();
        assert!(matches!(
            err,
            EpochError::AcceptedBehindCurrent {
                accepted: 5,
                current: 7,
                ..
            }
        ));
        assert_eq!(get(&f, ACCEPTED_EPOCH), "5");
    }

    /// L3: the log is ahead of currentEpoch, but currentEpoch.tmp holds the
    /// epoch of a write a crash interrupted: it becomes currentEpoch.
    #[test]
    fn l3_current_from_tmp() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "4");
        put(&f, "currentEpoch.tmp", "6");
        put(&f, ACCEPTED_EPOCH, "6");
        assert_eq!(
            f.load(E5).unwrap(),
            Epochs {
                current: 6,
                accepted: 6
            }
        );
        assert_eq!(get(&f, CURRENT_EPOCH), "6");
        assert!(!f.path("currentEpoch.tmp").exists(), "renamed into place");
    }

    /// L4: currentEpoch.tmp is behind the log too.
    #[test]
    fn l4_tmp_behind_log() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "3");
        put(&f, "currentEpoch.tmp", "4");
        put(&f, ACCEPTED_EPOCH, "6");
        let err = f.load(E5).unwrap_err();
        assert!(
            matches!(
                err,
                EpochError::TmpBehindLog {
                    tmp_epoch: 4,
                    log_epoch: 5,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("currentEpoch.tmp"), "{err}");
        assert_eq!(get(&f, CURRENT_EPOCH), "3", "nothing rewritten");
    }

    /// L5: the log is ahead of currentEpoch and nothing explains it (not even
    /// an acceptedEpoch that reaches the log's epoch, L9).
    #[test]
    fn l5_current_behind_log() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "4");
        put(&f, ACCEPTED_EPOCH, "4");
        let err = f.load(E5).unwrap_err();
        assert!(
            matches!(
                err,
                EpochError::CurrentBehindLog {
                    current: 4,
                    log_epoch: 5,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&f.path(CURRENT_EPOCH).display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("0x500000007"), "{msg}");
        assert!(msg.contains("write 5 into"), "says what to do: {msg}");
    }

    /// L6: acceptedEpoch behind currentEpoch.
    #[test]
    fn l6_accepted_behind_current() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "6");
        put(&f, ACCEPTED_EPOCH, "5");
        let err = f.load(E5).unwrap_err();
        assert!(
            matches!(
                err,
                EpochError::AcceptedBehindCurrent {
                    accepted: 5,
                    current: 6,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("acceptedEpoch"), "{err}");
    }

    /// L7: garbage in any of the files is an error naming it and quoting it.
    #[test]
    fn l7_garbage() {
        for (name, setup) in [
            (
                CURRENT_EPOCH,
                [("currentEpoch", "five"), ("acceptedEpoch", "5")],
            ),
            (
                ACCEPTED_EPOCH,
                [("currentEpoch", "5"), ("acceptedEpoch", "five")],
            ),
            (
                "currentEpoch.tmp",
                [("currentEpoch", "4"), ("currentEpoch.tmp", "five")],
            ),
        ] {
            let (_d, f) = files();
            for (n, c) in setup {
                put(&f, n, c);
            }
            let err = f.load(E5).unwrap_err();
            match &err {
                EpochError::Garbage { path, content } => {
                    assert_eq!(path, &f.path(name));
                    assert_eq!(content, "five");
                }
                other => panic!("{name}: {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains("\"five\""), "{msg}");
        }
        // An empty file (a write cut before its data) and binary junk.
        let (_d, f) = files();
        fs::write(f.path(CURRENT_EPOCH), b"").unwrap();
        assert!(
            matches!(f.load(E5), Err(EpochError::Garbage { content, .. }) if content.is_empty())
        );
        fs::write(f.path(CURRENT_EPOCH), [0xff_u8; 200]).unwrap();
        match f.load(E5) {
            Err(EpochError::Garbage { content, .. }) => {
                assert_eq!(content.chars().count(), QUOTE_MAX)
            }
            other => panic!("{other:?}"),
        }
    }

    /// L8: consistent files are used as they are; a left-over tmp is ignored.
    #[test]
    fn l8_consistent() {
        let (_d, f) = files();
        put(&f, CURRENT_EPOCH, "5");
        put(&f, ACCEPTED_EPOCH, "7");
        put(&f, "currentEpoch.tmp", "junk");
        put(&f, "acceptedEpoch.tmp", "junk");
        assert_eq!(
            f.load(E5).unwrap(),
            Epochs {
                current: 5,
                accepted: 7
            }
        );
        assert_eq!(get(&f, CURRENT_EPOCH), "5");
        assert_eq!(get(&f, ACCEPTED_EPOCH), "7");
        // A log behind the epochs (no txns yet in the new epoch) is fine.
        assert_eq!(
            f.load(Zxid::new(2, 1)).unwrap(),
            Epochs {
                current: 5,
                accepted: 7
            }
        );
    }

    #[test]
    fn write_errors_name_the_file() {
        let (d, f) = files();
        let missing = EpochFiles::new(d.path().join("no-such-dir"));
        let err = missing.set_current(1).unwrap_err();
        assert!(
            err.to_string().contains("no-such-dir/currentEpoch.tmp"),
            "{err}"
        );
        // A directory where the file should be: the rename fails and the tmp
        // is removed.
        fs::create_dir(f.path(CURRENT_EPOCH)).unwrap();
        fs::write(f.path("currentEpoch/x"), "").unwrap();
        let err = f.set_current(1).unwrap_err();
        assert!(matches!(&err, EpochError::Write { path, .. } if path == &f.path(CURRENT_EPOCH)));
        assert!(!f.path("currentEpoch.tmp").exists());
    }
}

#[cfg(test)]
mod synced_before_current {
    use super::*;

    /// L9: a learner crashed between making its synced txns durable and
    /// writing currentEpoch; it must restart (ensemble-testing.md §4 #12),
    /// keeping currentEpoch as it is.
    #[test]
    fn synced_before_current() {
        let dir = tempfile::tempdir().unwrap();
        let files = EpochFiles::new(dir.path());
        files.set_current(1).unwrap();
        files.set_accepted(2).unwrap();
        let e = files.load(Zxid::new(2, 3)).unwrap();
        assert_eq!((e.current, e.accepted), (1, 2));
        // Without the accepted epoch behind it, the same log is refused (L5).
        files.set_accepted(1).unwrap();
        assert!(matches!(
            files.load(Zxid::new(2, 3)),
            Err(EpochError::CurrentBehindLog { .. })
        ));
    }
}
