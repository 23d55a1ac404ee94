//! `zk-inspect snapshot` and `summary`: a snapshot loaded read-only into a zk-tree, printed as
//! zkSnapShotToolkit and zkSnapshotRecursiveSummaryToolkit do.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use zk_jute::Stat;
use zk_tree::{Auth, Tree, TreeConfig};
use zk_txnlog::SnapshotStore;

use crate::files::{self, Counting, Kind, Progress};
use crate::text::{self, Obj, json_array};
use crate::{Failure, Out};

/// A verified, loaded snapshot.
pub struct Loaded {
    /// The key in its name and header: the last zxid applied when it started.
    pub key: u64,
    pub path: PathBuf,
    pub tree: Tree,
}

/// The tree settings for reading: every node is readable (nothing is enforced offline).
pub fn tree_config() -> TreeConfig {
    TreeConfig {
        skip_acl: true,
        ..TreeConfig::default()
    }
}

/// Verifies (header, trailer, length, crc) and loads the snapshot at `path`, read-only.
/// `Err` is a complete message naming the file.
pub fn load(path: &Path) -> Result<Loaded, String> {
    if let Some(apache) = crate::apache::load_snapshot(path) {
        return apache;
    }
    let (kind, len) = files::sniff(path)?;
    if kind != Kind::Snapshot {
        return Err(files::wrong_kind(path, kind, len, Kind::Snapshot));
    }
    let Some(key) = files::key_of(path, "snapshot.") else {
        return Err(format!(
            "{}: a snapshot file must be named snapshot.<zxid hex> (its header is checked against the name); inspect a copy with that name",
            path.display()
        ));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let reader = SnapshotStore::open_read_only(dir)
        .open_snapshot(key)
        .map_err(|e| e.to_string())?;
    let total = reader.len();
    let mut input = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: reader,
            done: 0,
            progress: Progress::new(format!("loading {}", path.display()), total),
        },
    );
    // Ours, or the SNAP body a learner kept as it came.
    let tree = Tree::read_any_snapshot(&mut input, tree_config(), key as i64);
    input.into_inner().progress.finish();
    let tree = tree.map_err(|e| {
        format!(
            "{}: {e} (offsets count from the start of the content, after the container header)",
            path.display()
        )
    })?;
    Ok(Loaded {
        key,
        path: path.to_path_buf(),
        tree,
    })
}

const SUPER: Auth<'static> = Auth {
    ids: &[],
    is_super: true,
};

fn node(tree: &Tree, path: &str) -> Option<(Option<bytes::Bytes>, Stat, Vec<String>)> {
    let (data, stat) = tree.get_data(path, &SUPER, None).ok()?;
    let (mut children, _) = tree.get_children(path, &SUPER, None).ok()?;
    children.sort_unstable();
    Some((data, stat, children))
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Sessions with their timeouts and ephemeral counts.
fn sessions(tree: &Tree) -> Vec<(i64, i32, usize)> {
    let eph: std::collections::HashMap<i64, usize> = tree
        .ephemerals_by_session()
        .into_iter()
        .map(|(s, v)| (s, v.len()))
        .collect();
    tree.sessions()
        .into_iter()
        .map(|(s, t)| (s, t, eph.get(&s).copied().unwrap_or(0)))
        .collect()
}

/// Runs `snapshot`.
pub fn run(out: &mut Out, path: &Path, data: bool, json: bool) -> Result<i32, Failure> {
    let l = load(path).map_err(Failure::input)?;
    if json {
        print_json(out, &l, data).map_err(Failure::output)?;
    } else {
        print_text(out, &l, data).map_err(Failure::output)?;
    }
    Ok(0)
}

fn print_text(out: &mut Out, l: &Loaded, data: bool) -> std::io::Result<()> {
    let tree = &l.tree;
    writeln!(out, "ZNode Details (count={}):", tree.node_count())?;
    let mut max_zxid = l.key as i64;
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let Some((d, s, children)) = node(tree, &path) else {
            continue;
        };
        max_zxid = max_zxid.max(s.mzxid).max(s.pzxid);
        writeln!(out, "----")?;
        writeln!(out, "{path}")?;
        writeln!(out, "  cZxid = {}", text::hex016(s.czxid))?;
        writeln!(out, "  ctime = {}", text::java_date(s.ctime))?;
        writeln!(out, "  mZxid = {}", text::hex016(s.mzxid))?;
        writeln!(out, "  mtime = {}", text::java_date(s.mtime))?;
        writeln!(out, "  pZxid = {}", text::hex016(s.pzxid))?;
        writeln!(out, "  cversion = {}", s.cversion)?;
        writeln!(out, "  dataVersion = {}", s.version)?;
        writeln!(out, "  aclVersion = {}", s.aversion)?;
        writeln!(
            out,
            "  ephemeralOwner = {}",
            text::hex016(s.ephemeral_owner)
        )?;
        if data {
            let b64 = d
                .as_deref()
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d))
                .unwrap_or_default();
            writeln!(out, "  data = {b64}")?;
        } else {
            writeln!(out, "  dataLength = {}", s.data_length)?;
        }
        for c in children.iter().rev() {
            stack.push(child_path(&path, c));
        }
    }
    writeln!(out, "----")?;
    writeln!(out, "Session Details (sid, timeout, ephemeralCount):")?;
    for (sid, to, n) in sessions(tree) {
        writeln!(out, "{}, {to}, {n}", text::hex016(sid))?;
    }
    writeln!(
        out,
        "Tree digest (version {}): {}",
        zk_tree::DIGEST_VERSION,
        tree.digest()
    )?;
    writeln!(out, "----")?;
    writeln!(out, "Last zxid: {}", text::hex(max_zxid))
}

fn stat_fields(o: Obj, s: &Stat) -> Obj {
    o.str("czxid", &text::hex(s.czxid))
        .num("ctime", s.ctime)
        .str("mzxid", &text::hex(s.mzxid))
        .num("mtime", s.mtime)
        .str("pzxid", &text::hex(s.pzxid))
        .num("cversion", s.cversion)
        .num("version", s.version)
        .num("aversion", s.aversion)
        .str("ephemeral_owner", &text::hex(s.ephemeral_owner))
        .num("data_length", s.data_length)
        .num("num_children", s.num_children)
}

/// A nested tree, written without recursion (paths may nest deeper than a stack).
fn print_json(out: &mut Out, l: &Loaded, data: bool) -> std::io::Result<()> {
    enum Item {
        Node(String, bool),
        Close,
    }
    let tree = &l.tree;
    write!(
        out,
        "{{\"file\":{},\"snapshot_zxid\":\"{}\",\"node_count\":{},\"tree\":",
        text::json_str(&l.path.display().to_string()),
        text::hex(l.key as i64),
        tree.node_count()
    )?;
    let mut max_zxid = l.key as i64;
    let mut stack = vec![Item::Node("/".to_string(), true)];
    while let Some(item) = stack.pop() {
        let (path, first) = match item {
            Item::Close => {
                write!(out, "]}}")?;
                continue;
            }
            Item::Node(p, f) => (p, f),
        };
        let Some((d, s, children)) = node(tree, &path) else {
            // Vanished between listing and reading: cannot happen offline; keep JSON valid.
            if !first {
                write!(out, ",")?;
            }
            write!(out, "null")?;
            continue;
        };
        max_zxid = max_zxid.max(s.mzxid).max(s.pzxid);
        if !first {
            write!(out, ",")?;
        }
        let name = path.rsplit('/').next().unwrap_or("");
        let mut o = stat_fields(Obj::new().str("path", &path).str("name", name), &s);
        if data {
            o = match d.as_deref() {
                Some(d) => o.str(
                    "data_base64",
                    &base64::engine::general_purpose::STANDARD.encode(d),
                ),
                None => o.raw("data_base64", "null"),
            };
        }
        let obj = o.raw("children", "[").end();
        // Drop the closing brace: the children and "]}" follow.
        write!(out, "{}", &obj[..obj.len() - 1])?;
        stack.push(Item::Close);
        for (i, c) in children.iter().enumerate().rev() {
            stack.push(Item::Node(child_path(&path, c), i == 0));
        }
    }
    let sess = json_array(sessions(tree).into_iter().map(|(sid, to, n)| {
        Obj::new()
            .str("id", &text::hex(sid))
            .num("timeout", to)
            .num("ephemerals", n)
            .end()
    }));
    writeln!(
        out,
        ",\"sessions\":{sess},\"digest_version\":{},\"digest\":{},\"last_zxid\":\"{}\"}}",
        zk_tree::DIGEST_VERSION,
        tree.digest(),
        text::hex(max_zxid)
    )
}

/// Runs `summary`: per node down to `depth` levels below `start`, the number of nodes below it
/// and the bytes of data in its subtree (itself included).
pub fn summary(out: &mut Out, path: &Path, start: &str, depth: usize) -> Result<i32, Failure> {
    let l = load(path).map_err(Failure::input)?;
    let tree = &l.tree;
    if node(tree, start).is_none() {
        return Err(Failure::input(format!(
            "{start}: no such node in {}",
            path.display()
        )));
    }
    // Pre-order with parent links, then sums from the leaves up.
    struct N {
        path: String,
        level: usize,
        parent: Option<usize>,
        nodes: u64,
        bytes: u64,
    }
    let mut all: Vec<N> = Vec::new();
    let mut stack = vec![(start.to_string(), 0usize, None::<usize>)];
    while let Some((p, level, parent)) = stack.pop() {
        let Some((d, _, children)) = node(tree, &p) else {
            continue;
        };
        let idx = all.len();
        for c in children.iter().rev() {
            stack.push((child_path(&p, c), level + 1, Some(idx)));
        }
        all.push(N {
            path: p,
            level,
            parent,
            nodes: 0,
            bytes: d.map_or(0, |d| d.len() as u64),
        });
    }
    for i in (0..all.len()).rev() {
        if let Some(p) = all[i].parent {
            let (n, b) = (all[i].nodes + 1, all[i].bytes);
            all[p].nodes += n;
            all[p].bytes += b;
        }
    }
    let w = |out: &mut Out| -> std::io::Result<()> {
        for n in all.iter().filter(|n| n.level <= depth) {
            let prefix = "--".repeat(n.level);
            let sep = if n.level == 0 { "" } else { " " };
            writeln!(out, "{prefix}{sep}{}", n.path)?;
            writeln!(out, "{prefix}   children: {}", n.nodes)?;
            writeln!(out, "{prefix}   data: {}", n.bytes)?;
        }
        Ok(())
    };
    w(out).map_err(Failure::output)?;
    Ok(0)
}
