//! `zk-inspect verify`: every segment and snapshot of a data directory checked read-only, the
//! recovery a server would do replayed in memory, and the zxid it would recover to.

use std::io::Write;
use std::path::Path;

use zk_jute::Zxid;
use zk_tree::Tree;

use crate::files;
use crate::snap;
use crate::text;
use crate::walk::{self, Event, Finding, Severity};
use crate::{Failure, Out};

/// Runs `verify`.
/// `extended`: zoo.cfg's extendedTypesEnabled (it decides what an Apache
/// take-over makes of owners 0xff..).
pub fn run(
    out: &mut Out,
    data_dir: &Path,
    log_dir: Option<&Path>,
    extended: bool,
) -> Result<i32, Failure> {
    if !data_dir.is_dir() {
        return Err(Failure::input(format!(
            "{} is not a directory (verify takes a data directory)",
            data_dir.display()
        )));
    }
    if let Some(apache) = crate::apache::data_dir(data_dir, log_dir)? {
        return crate::apache::verify(out, &apache, extended);
    }
    let log_dir = log_dir.unwrap_or(data_dir);
    let data = files::list(data_dir).map_err(Failure::input)?;
    let logs = if log_dir == data_dir {
        None
    } else {
        Some(files::list(log_dir).map_err(Failure::input)?)
    };
    let logs_ref = logs.as_ref().unwrap_or(&data);
    let mut counts = Counts::default();
    let o = |e| Failure::output(e);

    writeln!(out, "Data directory {}", data_dir.display()).map_err(o)?;
    if log_dir != data_dir {
        writeln!(out, "Log directory {}", log_dir.display()).map_err(o)?;
    }

    let base = snapshots(out, &data, &mut counts)?;

    // The log, replayed onto the newest valid snapshot.
    let snap_key = base.as_ref().map(|b| b.key);
    let tree = match base {
        Some(b) => b.tree,
        None => Tree::new(snap::tree_config()),
    };
    let segs: Vec<_> = logs_ref
        .segments
        .iter()
        .map(|(k, p)| (Some(*k), p.clone()))
        .collect();
    writeln!(out, "Log segments ({}):", segs.len()).map_err(o)?;
    for k in &logs_ref.truncates {
        let f = Finding::new(
            Severity::Warning,
            &log_dir.join(format!("truncate.{k:x}")),
            None,
            format!(
                "unfinished truncation: a server discards the txns after zxid {k:#x} before starting"
            ),
        );
        counts.report(out, &f).map_err(o)?;
    }
    let truncate_at = logs_ref.truncates.first().copied();
    let mut replayed = 0u64;
    let totals = walk::walk(&segs, true, &mut |ev| match ev {
        Event::Segment(path, s) => writeln!(out, "{}", segment_line(path, s)),
        Event::Record(rec) => {
            if snap_key.is_none_or(|s| rec.key > s)
                && truncate_at.is_none_or(|t| rec.key <= t)
                && let Some((h, b)) = rec.txn
            {
                let _ = tree.apply(h, b);
                replayed += 1;
            }
            Ok(())
        }
        Event::Finding(f) => counts.report(out, f),
    })
    .map_err(o)?;

    if totals.first_key.is_none() && segs.is_empty() {
        writeln!(
            out,
            "  (no log segments here: a new server, or the log is in a separate dataLogDir: use --log-dir)"
        )
        .map_err(o)?;
    }
    for f in &coverage(&totals, snap_key, log_dir) {
        counts.report(out, f).map_err(o)?;
    }

    outcome(
        out,
        &counts,
        &tree,
        &totals,
        snap_key,
        truncate_at,
        replayed,
    )
}

/// Findings counted by severity as they are printed.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) warnings: usize,
    pub(crate) errors: usize,
}

impl Counts {
    pub(crate) fn report(&mut self, out: &mut Out, f: &Finding) -> std::io::Result<()> {
        match f.severity {
            Severity::Warning => self.warnings += 1,
            Severity::Error => self.errors += 1,
        }
        writeln!(out, "  {}", f.line())
    }

    /// The closing `verify:` line; returns the exit code (0 OK, 1 warnings,
    /// 2 errors).
    pub(crate) fn finish(&self, out: &mut Out) -> std::io::Result<i32> {
        let code = if self.errors > 0 {
            2
        } else {
            i32::from(self.warnings > 0)
        };
        if code == 0 {
            writeln!(out, "verify: OK")?;
        } else {
            writeln!(
                out,
                "verify: {} warning(s), {} error(s)",
                self.warnings, self.errors
            )?;
        }
        Ok(code)
    }
}

/// Snapshots, newest first: the first that loads is the one a server uses
/// (returned); printed oldest first, with the unfinished ones.
fn snapshots(
    out: &mut Out,
    data: &files::Listing,
    counts: &mut Counts,
) -> Result<Option<snap::Loaded>, Failure> {
    let o = |e| Failure::output(e);
    writeln!(out, "Snapshots ({}):", data.snapshots.len()).map_err(o)?;
    let mut base: Option<snap::Loaded> = None;
    let mut lines = Vec::new();
    for (key, path) in data.snapshots.iter().rev() {
        match snap::load(path) {
            Ok(l) => {
                let sessions = l.tree.sessions().len();
                let used = base.is_none();
                lines.push((
                    *key,
                    format!(
                        "  {}  zxid {}  {} znodes  {sessions} sessions  digest {}  ok{}",
                        path.display(),
                        text::hex(*key as i64),
                        l.tree.node_count(),
                        l.tree.digest(),
                        if used {
                            "  (newest valid: recovery starts here)"
                        } else {
                            ""
                        }
                    ),
                    None,
                ));
                if used {
                    base = Some(l);
                }
            }
            Err(msg) => {
                let f = Finding::new(
                    Severity::Warning,
                    path,
                    None,
                    format!("invalid snapshot, a server skips it: {msg}"),
                );
                lines.push((*key, format!("  {}  INVALID", path.display()), Some(f)));
            }
        }
    }
    for (_, line, f) in lines.iter().rev() {
        writeln!(out, "{line}").map_err(o)?;
        if let Some(f) = f {
            counts.report(out, f).map_err(o)?;
        }
    }
    for p in &data.tmp_snapshots {
        let f = Finding::new(
            Severity::Warning,
            p,
            None,
            "unfinished snapshot (a crash, or a snapshot being written now); a server deletes it",
        );
        counts.report(out, &f).map_err(o)?;
    }
    Ok(base)
}

/// Whether the log covers everything after the snapshot at `snap_key`: a
/// purged start, or a gap between the snapshot and the log in one epoch.
fn coverage(totals: &walk::Totals, snap_key: Option<u64>, log_dir: &Path) -> Vec<Finding> {
    let mut coverage = Vec::new();
    let Some(first) = totals.first_key else {
        return coverage;
    };
    let s = snap_key;
    let needed = s.map_or(1, |s| s + 1);
    if let Some(prev) = totals.first_prev
        && s.is_none_or(|s| s + 1 < first)
    {
        coverage.push(Finding::new(
            Severity::Error,
            &log_dir.join(format!("log.{first:x}")),
            None,
            format!(
                "txns from {} on are needed ({}) but the log starts at {}: log.{prev:x} and any older segments are gone",
                text::hex(needed as i64),
                match s {
                    Some(s) => format!("the newest valid snapshot is at {}", text::hex(s as i64)),
                    None => "there is no valid snapshot".to_string(),
                },
                text::hex(first as i64)
            ),
        ));
    } else if let Some(s) = s
        && first > s + 1
        && Zxid::from(first).epoch() == Zxid::from(s).epoch()
    {
        coverage.push(Finding::new(
            Severity::Error,
            &log_dir.join(format!("log.{first:x}")),
            None,
            format!(
                "txns {}..{} between the snapshot and the log are missing",
                text::hex((s + 1) as i64),
                text::hex((first - 1) as i64)
            ),
        ));
    }
    coverage
}

/// What a server would do with this directory, and the exit code: 0 clean,
/// 1 warnings, 2 errors.
/// The `recovered state` line of `verify` (ours and Apache's directories).
pub(crate) fn recovered_state(out: &mut Out, tree: &Tree) -> std::io::Result<()> {
    writeln!(
        out,
        "  recovered state: {} znodes, {} sessions, {} ephemerals, digest {}",
        tree.node_count(),
        tree.sessions().len(),
        tree.ephemerals_count(),
        tree.digest()
    )
}

fn outcome(
    out: &mut Out,
    counts: &Counts,
    tree: &Tree,
    totals: &walk::Totals,
    snap_key: Option<u64>,
    truncate_at: Option<u64>,
    replayed: u64,
) -> Result<i32, Failure> {
    let o = |e| Failure::output(e);
    let log_last = totals.last_key.map(|k| truncate_at.map_or(k, |t| k.min(t)));
    let recover_to = snap_key.into_iter().chain(log_last).max().unwrap_or(0);
    writeln!(out, "Result:").map_err(o)?;
    if counts.errors == 0 {
        match snap_key {
            Some(s) => writeln!(
                out,
                "  recovery: snapshot {} + {replayed} txns from the log",
                text::hex(s as i64)
            ),
            None => writeln!(out, "  recovery: no snapshot, {replayed} txns from the log"),
        }
        .map_err(o)?;
        recovered_state(out, tree).map_err(o)?;
        writeln!(
            out,
            "  a server would recover to zxid {}",
            text::hex(recover_to as i64)
        )
        .map_err(o)?;
    } else {
        let intact = totals
            .intact_until
            .map_or("nothing".to_string(), |k| text::hex(k as i64));
        writeln!(
            out,
            "  a server would refuse to start; the log is intact up to zxid {intact} before the first error"
        )
        .map_err(o)?;
    }
    counts.finish(out).map_err(o)
}

/// A segment's line: its txns, zxid range and how it ends.
fn segment_line(path: &Path, s: Option<&zk_txnlog::SegmentSummary>) -> String {
    match s {
        Some(s) => format!(
            "  {}  {} txns  zxids {}..{}  {}",
            path.display(),
            s.records,
            text::hex(s.first_key as i64),
            s.last_key.map_or("-".to_string(), |k| text::hex(k as i64)),
            match (s.sealed, s.clean, s.torn) {
                (Some(_), true, _) => "sealed",
                (None, true, _) => "open",
                (_, false, true) => "torn tail",
                _ => "DAMAGED",
            }
        ),
        None => format!("  {}  unreadable header", path.display()),
    }
}
