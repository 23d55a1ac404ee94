//! Apache ZooKeeper's own files, read through zk-apache: `log` over `log.<hex>` files (magic
//! ZKLG) or an Apache data directory, `snapshot` / `summary` over `snapshot.<hex>[.gz|.snappy]`,
//! `verify` over a directory holding `version-2/`, in the same output shapes as for ours. What
//! `verify` reports is what zk-server would do when it takes the directory over.

use std::io::Write;
use std::path::{Path, PathBuf};

use zk_apache::{DataDir, LogEnd, LogReader, VERSION_DIR};

use crate::files::{self, Kind};
use crate::logcmd::{self, Filter};
use crate::snap::{self, Loaded};
use crate::text;
use crate::verify::Counts;
use crate::walk::{Finding, Rec, Severity, Totals};
use crate::{Failure, Out};

/// The directory `target` names as an Apache data directory: `target/version-2`, or `target`
/// itself when it is a `version-2` directory.
fn root_of(target: &Path) -> Option<&Path> {
    if target.join(VERSION_DIR).is_dir() {
        Some(target)
    } else if target.file_name().is_some_and(|n| n == VERSION_DIR) {
        target.parent()
    } else {
        None
    }
}

/// Apache's files under `target` (and `log_dir`), if it is an Apache data directory that holds
/// some and none of ours.
pub fn data_dir(target: &Path, log_dir: Option<&Path>) -> Result<Option<DataDir>, Failure> {
    let Some(root) = root_of(target) else {
        return Ok(None);
    };
    let ours = files::list(root).map_err(Failure::input)?;
    if !ours.segments.is_empty() || !ours.snapshots.is_empty() {
        return Ok(None);
    }
    let log_root = log_dir.map_or(root, |d| root_of(d).unwrap_or(d));
    let dir = zk_apache::scan(root, log_root).map_err(|e| Failure::input(e.to_string()))?;
    Ok((!dir.is_empty()).then_some(dir))
}

/// The Apache log files `target` names: the file itself (magic ZKLG) or the logs of an Apache
/// data directory; `None` if it is not Apache's.
pub fn log_files(target: &Path) -> Result<Option<Vec<PathBuf>>, Failure> {
    if target.is_dir() {
        return Ok(data_dir(target, None)?.map(|d| d.logs.into_iter().map(|l| l.path).collect()));
    }
    let (kind, _) = files::sniff(target).map_err(Failure::input)?;
    Ok((kind == Kind::ZooKeeperLog).then(|| vec![target.to_path_buf()]))
}

/// What reading a file's entries found.
struct FileScan {
    txns: u64,
    first: Option<i64>,
    last: Option<i64>,
    findings: Vec<Finding>,
}

/// Reads every entry of the log `path` (`newest`: the last file, whose tail may be torn),
/// calling `each` with the decoded ones.
fn scan_log(
    path: &Path,
    newest: bool,
    each: &mut dyn FnMut(Rec<'_>) -> std::io::Result<()>,
) -> std::io::Result<FileScan> {
    let mut s = FileScan {
        txns: 0,
        first: None,
        last: None,
        findings: Vec::new(),
    };
    let mut reader = match LogReader::open(path) {
        Ok(r) => r.with_max_len(zk_apache::IMPORT_MAX_ENTRY),
        Err(e) => {
            s.findings
                .push(Finding::new(Severity::Error, path, Some(0), e.to_string()));
            return Ok(s);
        }
    };
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                let offset = match &e {
                    zk_apache::Error::Corrupt { offset, .. } => Some(*offset),
                    _ => None,
                };
                s.findings
                    .push(Finding::new(Severity::Error, path, offset, e.to_string()));
                return Ok(s);
            }
        };
        match zk_apache::decode_txn(entry.payload) {
            Ok(t) => {
                let z = t.header.zxid;
                s.first.get_or_insert(z);
                s.last = Some(z);
                s.txns += 1;
                let pair = (t.header, t.body);
                each(Rec {
                    key: z as u64,
                    file: path,
                    offset: entry.offset,
                    txn: Some(&pair),
                })?;
            }
            Err(e) => {
                let msg = format!("entry does not decode: {e}");
                s.findings
                    .push(Finding::new(Severity::Error, path, Some(entry.offset), msg));
                return Ok(s);
            }
        }
    }
    if let Some(f) = end_finding(path, reader.end(), newest) {
        s.findings.push(f);
    }
    Ok(s)
}

/// How a file ended, as a finding (none for a clean end).
fn end_finding(path: &Path, end: Option<&LogEnd>, newest: bool) -> Option<Finding> {
    let (sev, offset, msg) = match end? {
        LogEnd::Eof | LogEnd::Zero { .. } => return None,
        LogEnd::Torn { offset, reason } => (
            Severity::Warning,
            *offset,
            format!("torn entry ({reason}): the file ends here, as in Apache"),
        ),
        LogEnd::BadChecksum { offset } if newest => (
            Severity::Warning,
            *offset,
            "the last entry fails its CRC check: zk-server takes it as a torn tail (Apache refuses to start)".to_string(),
        ),
        LogEnd::BadChecksum { offset } => (
            Severity::Error,
            *offset,
            "CRC check failed (newer logs follow)".to_string(),
        ),
        LogEnd::Short { len } => (
            if newest { Severity::Warning } else { Severity::Error },
            0,
            format!("{len} bytes: shorter than the 16-byte header"),
        ),
    };
    Some(Finding::new(sev, path, Some(offset), msg))
}

/// `log` over Apache's files.
pub fn log(
    out: &mut Out,
    paths: &[PathBuf],
    json: bool,
    filter: &Filter,
    target: &Path,
) -> Result<i32, Failure> {
    let mut totals = Totals::default();
    let mut shown = 0u64;
    for (i, path) in paths.iter().enumerate() {
        let header = LogReader::open(path).ok().and_then(|r| r.header());
        file_line(out, json, path, header).map_err(Failure::output)?;
        totals.segments += 1;
        let errors_before = totals.errors;
        let s = scan_log(path, i + 1 == paths.len(), &mut |rec| {
            if errors_before == 0 {
                totals.intact_until = Some(rec.key);
            }
            if !filter.keeps(&rec) {
                return Ok(());
            }
            shown += 1;
            logcmd::print_record(out, json, &rec)
        })
        .map_err(Failure::output)?;
        totals.records += s.txns;
        if totals.first_key.is_none() {
            totals.first_key = s.first.map(|z| z as u64);
        }
        if s.last.is_some() {
            totals.last_key = s.last.map(|z| z as u64);
        }
        for f in &s.findings {
            match f.severity {
                Severity::Warning => totals.warnings += 1,
                Severity::Error => totals.errors += 1,
            }
            logcmd::print_finding(out, json, f).map_err(Failure::output)?;
        }
    }
    logcmd::print_summary(out, json, &totals, shown, filter, target)?;
    Ok(logcmd::exit_code(&totals))
}

/// A log file's line (or JSON object), as zkTxnLogToolkit's first line.
fn file_line(
    out: &mut Out,
    json: bool,
    path: &Path,
    header: Option<(i32, i64)>,
) -> std::io::Result<()> {
    let file = path.display().to_string();
    match (json, header) {
        (true, h) => {
            let o = text::Obj::new()
                .str("kind", "segment")
                .str("file", &file)
                .str("format", "apache");
            let o = match h {
                Some((v, dbid)) => o.num("version", v).num("dbid", dbid),
                None => o.bool("readable", false),
            };
            writeln!(out, "{}", o.end())
        }
        (false, Some((v, dbid))) => writeln!(
            out,
            "ZooKeeper Transactional Log File {file} with dbid {dbid} txnlog format version {v}"
        ),
        (false, None) => writeln!(out, "ZooKeeper Transactional Log File {file} (no header)"),
    }
}

/// An Apache snapshot file by its name, read and checked; `None` if the name is not one.
pub fn load_snapshot(path: &Path) -> Option<Result<Loaded, String>> {
    let name = path.file_name()?.to_str()?;
    let Some(zk_apache::FileKind::Snapshot(zxid, compression)) = zk_apache::classify(name) else {
        return None;
    };
    if compression == zk_apache::Compression::None {
        let (kind, _) = files::sniff(path).ok()?;
        if kind != Kind::ZooKeeperSnapshot {
            return None;
        }
    }
    let file = zk_apache::SnapFile {
        path: path.to_path_buf(),
        zxid,
        compression,
    };
    Some(
        zk_apache::read_snapshot(&file, snap::tree_config())
            .map(|s| Loaded {
                key: s.zxid as u64,
                path: s.path,
                tree: s.tree,
            })
            .map_err(|e| e.to_string()),
    )
}

/// `verify` over an Apache data directory: each file checked, then the take-over replayed (with
/// TTL nodes when `extended`, as zk-server with extendedTypesEnabled=true).
pub fn verify(out: &mut Out, dir: &DataDir, extended: bool) -> Result<i32, Failure> {
    let o = Failure::output;
    let mut counts = Counts::default();
    writeln!(
        out,
        "Apache ZooKeeper data directory {}",
        dir.snap_dir.display()
    )
    .map_err(o)?;
    if dir.log_dir != dir.snap_dir {
        writeln!(out, "Log directory {}", dir.log_dir.display()).map_err(o)?;
    }
    writeln!(out, "Snapshots ({}):", dir.snapshots.len()).map_err(o)?;
    for s in &dir.snapshots {
        match zk_apache::read_snapshot(s, snap::tree_config()) {
            Ok(l) => writeln!(
                out,
                "  {}  zxid {}  {} znodes  {} sessions  ok",
                s.path.display(),
                text::hex(s.zxid),
                l.tree.node_count(),
                l.sessions.len()
            )
            .map_err(o)?,
            Err(e) => {
                writeln!(out, "  {}  INVALID", s.path.display()).map_err(o)?;
                let msg = format!("invalid snapshot, skipped: {e}");
                let f = Finding::new(Severity::Warning, &s.path, None, msg);
                counts.report(out, &f).map_err(o)?;
            }
        }
    }
    writeln!(out, "Logs ({}):", dir.logs.len()).map_err(o)?;
    for (i, l) in dir.logs.iter().enumerate() {
        let s = scan_log(&l.path, i + 1 == dir.logs.len(), &mut |_| Ok(())).map_err(o)?;
        let z = |v: Option<i64>| v.map_or("-".to_string(), text::hex);
        writeln!(
            out,
            "  {}  {} txns  zxids {}..{}",
            l.path.display(),
            s.txns,
            z(s.first),
            z(s.last)
        )
        .map_err(o)?;
        for f in &s.findings {
            counts.report(out, f).map_err(o)?;
        }
    }
    writeln!(out, "Result:").map_err(o)?;
    let config = zk_tree::TreeConfig {
        extended_types: extended,
        ..snap::tree_config()
    };
    match zk_apache::import(dir, config) {
        Ok(i) => {
            for w in &i.warnings {
                writeln!(out, "  WARNING - {w}").map_err(o)?;
            }
            counts.warnings += i.warnings.len();
            outcome(out, &i, extended)?;
        }
        Err(e) => {
            counts.errors += 1;
            writeln!(out, "  ERROR - {e}").map_err(o)?;
            writeln!(out, "  zk-server would refuse to take this directory over").map_err(o)?;
        }
    }
    counts.finish(out).map_err(o)
}

fn outcome(out: &mut Out, i: &zk_apache::Imported, extended: bool) -> Result<(), Failure> {
    let o = Failure::output;
    let tree = &i.tree;
    match &i.snapshot {
        Some(p) => writeln!(
            out,
            "  recovery: {} + {} txns from the logs",
            p.display(),
            i.replayed
        ),
        None => writeln!(
            out,
            "  recovery: no snapshot, {} txns from the logs",
            i.replayed
        ),
    }
    .map_err(o)?;
    for (session, n) in &i.dead_sessions {
        writeln!(
            out,
            "  dead session {}: its {n} ephemerals deleted",
            text::hex(*session)
        )
        .map_err(o)?;
        // The owner of a TTL node reads as a session without
        // extendedTypesEnabled, in Apache and in zk-server alike.
        let with_ttl = zk_tree::OwnerTypes {
            extended: true,
            emulate_353: false,
        };
        if !extended
            && zk_tree::EphemeralType::of(*session, with_ttl) == zk_tree::EphemeralType::Ttl
        {
            writeln!(
                out,
                "    (0xff.. is how a TTL node's owner reads: with extendedTypesEnabled=true in \
                 zoo.cfg these are TTL nodes and stay; see --extended-types)"
            )
            .map_err(o)?;
        }
    }
    writeln!(
        out,
        "  digests: {} checked, {} mismatches",
        i.digests_checked, i.digest_mismatches
    )
    .map_err(o)?;
    crate::verify::recovered_state(out, tree).map_err(o)?;
    writeln!(
        out,
        "  zk-server would take it over at zxid {}",
        text::hex(tree.last_processed_zxid())
    )
    .map_err(o)
}
