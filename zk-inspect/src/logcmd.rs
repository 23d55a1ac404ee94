//! `zk-inspect log`: the txns of a segment file or of a directory's log, as zkTxnLogToolkit.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::files::{self, Kind};
use crate::text::{self, Obj, json_str};
use crate::txn;
use crate::walk::{self, Event, Totals};
use crate::{Failure, Out};

/// Which txns to print.
#[derive(Debug, Default)]
pub struct Filter {
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub session: Option<i64>,
    pub path_prefix: Option<String>,
}

impl Filter {
    fn is_set(&self) -> bool {
        self.from.is_some()
            || self.to.is_some()
            || self.session.is_some()
            || self.path_prefix.is_some()
    }

    pub fn keeps(&self, rec: &walk::Rec<'_>) -> bool {
        if self.from.is_some_and(|f| rec.key < f) || self.to.is_some_and(|t| rec.key > t) {
            return false;
        }
        if self.session.is_none() && self.path_prefix.is_none() {
            return true;
        }
        let Some((h, body)) = rec.txn else {
            return false;
        };
        if self.session.is_some_and(|s| s != h.client_id) {
            return false;
        }
        match &self.path_prefix {
            None => true,
            Some(p) => txn::paths(body).iter().any(|x| under(x, p)),
        }
    }
}

/// A plain string prefix: `/app` matches `/app`, `/app/x` and `/apple`; `/app/` only what is
/// below `/app`; `/q/lock-` the sequential nodes it names.
fn under(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
}

/// Segment files with the key in their name, oldest first.
pub type Segments = Vec<(Option<u64>, PathBuf)>;

/// The segments named by `target`: the file itself, or the `log.*` of a directory (then `true`:
/// they are checked as a chain).
pub fn segments_of(target: &Path) -> Result<(Segments, bool), Failure> {
    if target.is_dir() {
        let l = files::list(target).map_err(Failure::input)?;
        if l.segments.is_empty() {
            let hint = if l.has_version2 {
                " (a version-2 subdirectory is there: an Apache ZooKeeper data dir?)"
            } else {
                " (is the log in a separate dataLogDir?)"
            };
            return Err(Failure::input(format!(
                "no log segments (log.<zxid hex>) in {}{hint}",
                target.display()
            )));
        }
        let segs = l.segments.into_iter().map(|(k, p)| (Some(k), p)).collect();
        return Ok((segs, true));
    }
    let (kind, len) = files::sniff(target).map_err(Failure::input)?;
    if kind != Kind::Segment {
        return Err(Failure::input(files::wrong_kind(
            target,
            kind,
            len,
            Kind::Segment,
        )));
    }
    Ok((
        vec![(files::key_of(target, "log."), target.to_path_buf())],
        false,
    ))
}

/// Runs `log`.
pub fn run(out: &mut Out, target: &Path, json: bool, filter: &Filter) -> Result<i32, Failure> {
    if let Some(paths) = crate::apache::log_files(target)? {
        return crate::apache::log(out, &paths, json, filter, target);
    }
    let (segs, chain) = segments_of(target)?;
    let mut shown = 0u64;
    let totals: Totals = walk::walk(&segs, chain, &mut |ev| match ev {
        Event::Segment(path, summary) => print_segment(out, json, path, summary),
        Event::Record(rec) => {
            if !filter.keeps(&rec) {
                return Ok(());
            }
            shown += 1;
            print_record(out, json, &rec)
        }
        Event::Finding(f) => print_finding(out, json, f),
    })
    .map_err(Failure::output)?;

    print_summary(out, json, &totals, shown, filter, target)?;
    Ok(exit_code(&totals))
}

/// A segment's line (or JSON object).
fn print_segment(
    out: &mut Out,
    json: bool,
    path: &Path,
    summary: Option<&zk_txnlog::SegmentSummary>,
) -> std::io::Result<()> {
    if json {
        let o = Obj::new()
            .str("kind", "segment")
            .str("file", &path.display().to_string());
        let o = match summary {
            Some(s) => o
                .str("first_zxid", &text::hex(s.first_key as i64))
                .opt_str(
                    "prev_segment_zxid",
                    s.prev_key.map(|k| text::hex(k as i64)).as_deref(),
                )
                .num("records", s.records)
                .num("end", s.end)
                .opt_str(
                    "sealed_next_zxid",
                    s.sealed.map(|k| text::hex(k as i64)).as_deref(),
                )
                .bool("clean", s.clean)
                .bool("torn", s.torn),
            None => o.bool("readable", false),
        };
        writeln!(out, "{}", o.end())
    } else {
        match summary {
            Some(s) => writeln!(
                out,
                "zk-txnlog segment {} (format version 1): first zxid {}, {}",
                path.display(),
                text::hex(s.first_key as i64),
                match s.prev_key {
                    Some(k) => format!("follows log.{k:x}"),
                    None => "the first segment written".to_string(),
                }
            ),
            None => writeln!(out, "zk-txnlog segment {} (unreadable)", path.display()),
        }
    }
}

/// A txn's line (or JSON object); an undecodable record says where it is.
pub fn print_record(out: &mut Out, json: bool, rec: &walk::Rec<'_>) -> std::io::Result<()> {
    match (rec.txn, json) {
        (Some((h, body)), false) => writeln!(out, "{}", txn::line(h, body)),
        (Some((h, body)), true) => {
            let paths = txn::paths(body);
            let o = Obj::new()
                .str("kind", "txn")
                .str("zxid", &text::hex(h.zxid))
                .num("time_ms", h.time)
                .str("time", &text::iso_date(h.time))
                .str("session", &text::hex(h.client_id))
                .str("cxid", &text::hex(i64::from(h.cxid as u32)))
                .str("op", &txn::op_name(h.txn_type))
                .opt_str("path", paths.first().copied())
                .raw("txn", &txn::json(body))
                .str("file", &rec.file.display().to_string())
                .num("offset", rec.offset);
            writeln!(out, "{}", o.end())
        }
        (None, false) => writeln!(
            out,
            "zxid {} (undecodable record at {} offset {})",
            text::hex(rec.key as i64),
            rec.file.display(),
            rec.offset
        ),
        (None, true) => writeln!(
            out,
            "{}",
            Obj::new()
                .str("kind", "txn")
                .str("zxid", &text::hex(rec.key as i64))
                .raw("txn", "null")
                .str("file", &rec.file.display().to_string())
                .num("offset", rec.offset)
                .end()
        ),
    }
}

/// A finding's line (or JSON object).
pub fn print_finding(out: &mut Out, json: bool, f: &walk::Finding) -> std::io::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            Obj::new()
                .str("kind", "finding")
                .str("severity", &f.severity.label().to_ascii_lowercase())
                .str("file", &f.file.display().to_string())
                .raw("offset", &f.offset.map_or("null".into(), |o| o.to_string()))
                .str("message", &f.message)
                .end()
        )
    } else {
        writeln!(out, "{}", f.line())
    }
}

/// The closing summary: txns read and shown, and what a server would do
/// with the log.
pub fn print_summary(
    out: &mut Out,
    json: bool,
    totals: &Totals,
    shown: u64,
    filter: &Filter,
    target: &Path,
) -> Result<(), Failure> {
    let recover = match (totals.errors, totals.last_key) {
        (0, Some(k)) => Some(k),
        _ => None,
    };
    if json {
        let o = Obj::new()
            .str("kind", "summary")
            .num("txns", totals.records)
            .num("shown", shown)
            .num("segments", totals.segments)
            .opt_str(
                "first_zxid",
                totals.first_key.map(|k| text::hex(k as i64)).as_deref(),
            )
            .opt_str(
                "last_zxid",
                totals.last_key.map(|k| text::hex(k as i64)).as_deref(),
            )
            .opt_str(
                "log_recovers_to_zxid",
                recover.map(|k| text::hex(k as i64)).as_deref(),
            )
            .num("warnings", totals.warnings)
            .num("errors", totals.errors)
            .raw("input", &json_str(&target.display().to_string()));
        writeln!(out, "{}", o.end()).map_err(Failure::output)?;
    } else {
        if filter.is_set() {
            writeln!(
                out,
                "EOF reached after {} txns ({shown} matched the filters).",
                totals.records
            )
        } else {
            writeln!(out, "EOF reached after {} txns.", totals.records)
        }
        .map_err(Failure::output)?;
        if totals.warnings + totals.errors > 0 {
            let tail = match (totals.errors, recover) {
                (0, Some(k)) => format!(
                    "; a server recovers the log up to zxid {} (the last intact txn)",
                    text::hex(k as i64)
                ),
                (0, None) => String::new(),
                _ => match totals.intact_until {
                    Some(k) => format!(
                        "; intact up to zxid {} before the first error (a server refuses to start)",
                        text::hex(k as i64)
                    ),
                    None => "; a server refuses to start".to_string(),
                },
            };
            writeln!(
                out,
                "{} warning(s), {} error(s){tail}.",
                totals.warnings, totals.errors
            )
            .map_err(Failure::output)?;
        }
    }
    Ok(())
}

/// 0 clean, 1 warnings only, 2 errors.
pub fn exit_code(t: &Totals) -> i32 {
    if t.errors > 0 {
        2
    } else if t.warnings > 0 {
        1
    } else {
        0
    }
}
