//! `zk-inspect`: offline inspection of a zk-server data directory, as Apache ZooKeeper's
//! zkTxnLogToolkit, zkSnapShotToolkit and zkSnapshotRecursiveSummaryToolkit. Apache
//! ZooKeeper's own files (`version-2/`, by magic and name) are read too, through zk-apache.
//!
//! It opens every file read-only through zk-txnlog's inspection API (never the `LOCK`, never a
//! write), so it is safe next to a running server.
//!
//! Exit codes: 0 clean; 1 warnings only (a server starts and repairs them itself: a torn tail,
//! an unfinished roll or snapshot); 2 errors (damage, or the input is unreadable or of the
//! wrong kind); 64 bad usage.

#![forbid(unsafe_code)]

mod apache;
mod files;
mod logcmd;
mod snap;
mod text;
mod txn;
mod verify;
mod walk;

use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Standard output, buffered.
pub type Out = BufWriter<std::io::StdoutLock<'static>>;

/// Why a command stopped: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: i32,
    msg: String,
    broken_pipe: bool,
}

impl Failure {
    /// Bad input: a missing, unreadable, truncated or wrong kind of file.
    pub fn input(msg: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            msg: msg.into(),
            broken_pipe: false,
        }
    }

    /// Bad command line.
    pub fn usage(msg: impl Into<String>) -> Failure {
        Failure {
            code: 64,
            msg: format!("{}\n\n{USAGE}", msg.into()),
            broken_pipe: false,
        }
    }

    /// Writing the output failed (a closed pipe ends quietly).
    pub fn output(e: std::io::Error) -> Failure {
        Failure {
            code: 2,
            broken_pipe: e.kind() == std::io::ErrorKind::BrokenPipe,
            msg: format!("cannot write the output: {e}"),
        }
    }
}

const USAGE: &str = "\
usage:
  zk-inspect log [--json] [--from ZXID] [--to ZXID] [--session ID] [--path PREFIX] <segment file | log dir>
      (also Apache ZooKeeper's log.<hex> files, or a data dir holding version-2/)
      one line per txn as zkTxnLogToolkit, then `EOF reached after N txns.`;
      --json: one JSON object per line (segments, txns, findings, a summary)
  zk-inspect snapshot [--data|-d] [--json] <snapshot file>
      (also Apache ZooKeeper's snapshot.<hex>[.gz|.snappy], seals checked)
      every znode with its stat as zkSnapShotToolkit, then the sessions, the digest, the last zxid;
      --data: the data (base64) instead of its length; --json: a nested tree
  zk-inspect verify [--log-dir DIR] [--extended-types] <data dir>
      checks every segment and snapshot, replays recovery in memory, prints the zxid a server
      would recover to; exit 0 clean, 1 warnings only (e.g. a torn tail), 2 damage;
      on an Apache ZooKeeper data dir (version-2/): what zk-server's take-over would do;
      --extended-types: as with extendedTypesEnabled=true in zoo.cfg (owners 0xff.. are TTL
      nodes, not ephemerals of a dead session)
  zk-inspect summary <snapshot file> [path] [depth]
      nodes below and data bytes per subtree, down to `depth` levels (default / and 1)
ZXID and ID: hex with 0x, or decimal. Files are only ever opened for reading.";

fn number(flag: &str, v: Option<String>) -> Result<u64, Failure> {
    let v = v.ok_or_else(|| Failure::usage(format!("{flag} needs a value")))?;
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse::<u64>(),
    };
    parsed.map_err(|_| Failure::usage(format!("{flag}: not a number: {v}")))
}

/// Splits `args` into flags (with the values of those in `with_value`) and positionals.
struct Args {
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

fn split(args: Vec<String>, known: &[&str], with_value: &[&str]) -> Result<Args, Failure> {
    let mut a = Args {
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            a.positional.extend(it.by_ref());
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if with_value.contains(&name.as_str()) {
                let v = inline.or_else(|| it.next());
                a.flags.push((name, v));
            } else if known.contains(&name.as_str()) && inline.is_none() {
                a.flags.push((name, None));
            } else {
                return Err(Failure::usage(format!("unknown option {arg}")));
            }
        } else {
            a.positional.push(arg);
        }
    }
    Ok(a)
}

impl Args {
    fn has(&self, names: &[&str]) -> bool {
        self.flags.iter().any(|(n, _)| names.contains(&n.as_str()))
    }

    fn value(&self, name: &str) -> Option<Option<String>> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn one_path(&self, what: &str) -> Result<PathBuf, Failure> {
        match self.positional.as_slice() {
            [p] => Ok(PathBuf::from(p)),
            [] => Err(Failure::usage(format!("missing {what}"))),
            _ => Err(Failure::usage(format!("expected one {what}"))),
        }
    }
}

fn run(out: &mut Out, mut argv: Vec<String>) -> Result<i32, Failure> {
    if argv.is_empty() {
        return Err(Failure::usage("missing command"));
    }
    let cmd = argv.remove(0);
    match cmd.as_str() {
        "log" => {
            let a = split(
                argv,
                &["--json", "-json"],
                &["--from", "--to", "--session", "--path"],
            )?;
            let target = a.one_path("segment file or log directory")?;
            let filter = logcmd::Filter {
                from: a.value("--from").map(|v| number("--from", v)).transpose()?,
                to: a.value("--to").map(|v| number("--to", v)).transpose()?,
                session: a
                    .value("--session")
                    .map(|v| number("--session", v).map(|n| n as i64))
                    .transpose()?,
                path_prefix: match a.value("--path") {
                    Some(Some(p)) => Some(p),
                    Some(None) => return Err(Failure::usage("--path needs a value")),
                    None => None,
                },
            };
            logcmd::run(out, &target, a.has(&["--json", "-json"]), &filter)
        }
        "snapshot" => {
            let a = split(argv, &["--json", "-json", "--data", "-d"], &[])?;
            let target = a.one_path("snapshot file")?;
            snap::run(
                out,
                &target,
                a.has(&["--data", "-d"]),
                a.has(&["--json", "-json"]),
            )
        }
        "verify" => {
            let a = split(argv, &["--extended-types"], &["--log-dir"])?;
            let dir = a.one_path("data directory")?;
            let log_dir = match a.value("--log-dir") {
                Some(Some(d)) => Some(PathBuf::from(d)),
                Some(None) => return Err(Failure::usage("--log-dir needs a value")),
                None => None,
            };
            verify::run(out, &dir, log_dir.as_deref(), a.has(&["--extended-types"]))
        }
        "summary" => {
            let a = split(argv, &[], &[])?;
            let (file, start, depth) = match a.positional.as_slice() {
                [f] => (f, "/", 1),
                [f, p] => (f, p.as_str(), 1),
                [f, p, d] => (
                    f,
                    p.as_str(),
                    d.parse::<usize>()
                        .map_err(|_| Failure::usage(format!("depth: not a number: {d}")))?,
                ),
                [] => return Err(Failure::usage("missing snapshot file")),
                _ => return Err(Failure::usage("too many arguments")),
            };
            if !start.starts_with('/') {
                return Err(Failure::usage(format!("{start}: a path starts with /")));
            }
            snap::summary(out, &PathBuf::from(file), start, depth)
        }
        "help" | "--help" | "-h" => {
            writeln!(out, "{USAGE}").map_err(Failure::output)?;
            Ok(0)
        }
        other => Err(Failure::usage(format!("unknown command {other}"))),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut out: Out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let result = run(&mut out, argv);
    let flushed = out.flush().map_err(Failure::output);
    let code = match result.and_then(|c| flushed.map(|()| c)) {
        Ok(c) => c,
        Err(f) if f.broken_pipe => 141,
        Err(f) => {
            eprintln!("zk-inspect: {}", f.msg);
            f.code
        }
    };
    std::process::exit(code);
}
