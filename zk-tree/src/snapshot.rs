//! Snapshots: the tree, its ACLs and the session table as a byte stream.
//!
//! Layout (all integers big-endian):
//! ```text
//! magic "ZKTREE01" | start_zxid i64 | sessions: u32 n, n x (id i64, timeout i32)
//! records, each a tag byte:
//!   1 ACL  : u32 id, u32 n, n x (perms i32, str scheme, str id)
//!   2 NODE : str path, data (i32 len, -1 = null, bytes), u32 acl id,
//!            czxid, mzxid, ctime, mtime i64, version, cversion, aversion i32,
//!            ephemeralOwner, pzxid i64
//!   0 END
//! end_zxid i64 | crc32 u32 of every byte before it
//! str = u32 len + UTF-8
//! ```
//! Nodes come in depth-first order, a parent before its children. The
//! writer is fuzzy like ZooKeeper's: it walks the tree in chunks, each under
//! a short read lock, while the applier goes on; the result is made exact by
//! replaying the log from `start_zxid` (the last applied zxid when the
//! snapshot began), which [`Tree::apply`] tolerates. The walk goes by node
//! id (no path lookups); each read-lock hold is bounded by `CHUNK` nodes,
//! `CHUNK_BYTES` bytes and `CHUNK_TIME`. Nodes with a czxid past
//! `start_zxid` are left to that replay, except in a tree that held such
//! nodes when the walk began (loaded from a fuzzy snapshot whose log ends
//! before them, as Apache's data taken over after a torn write): that walk
//! holds the read lock throughout and writes every node.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use zk_jute::{Acl, Id, StatPersisted};

use crate::digest::Crc32;
use crate::store::{NodeId, ROOT, State};
use crate::{Tree, TreeConfig};

const MAGIC: &[u8; 8] = b"ZKTREE01";
/// Read-lock budget per chunk of the fuzzy walk: at most this many nodes,
/// this many bytes copied, or this long (checked every 32 nodes), whichever
/// comes first, so the applier waits at most a fraction of a millisecond.
const CHUNK: usize = 256;
const CHUNK_BYTES: usize = 256 << 10;
const CHUNK_TIME: Duration = Duration::from_micros(200);

/// How many nodes ahead on its stack the snapshot walk reads at once.
const WARM_AHEAD: usize = 32;

/// Children sorted by id under the read lock at most; more are sorted after it.
const SORT_UNDER_LOCK: usize = 256;
const MAX_STR: u32 = 1 << 20;
const MAX_DATA: i32 = 1 << 30;

/// The snapshot walk's read-ahead: the nodes next on its stack are read in
/// stages (`State::warm_ids`), [`WARM_AHEAD`] of them when children were
/// pushed on top, the next `WARM_AHEAD / 2` below when the walk gets within
/// that of the last read. After a write load the blocks are scattered and
/// each was a cache miss of its own: a churned 1M-node tree wrote in 3x the
/// time of a fresh one (`cargo bench --bench tree -- snapshot`: 552 →
/// 382–389 ms; the fresh tree, read ahead for nothing, 183 → 198–200 ms).
#[derive(Default)]
struct ReadAhead {
    /// Stack entries `[lo, hi)` were read.
    lo: usize,
    hi: usize,
}

impl ReadAhead {
    /// Pops the walk's next entry, reading ahead first when due.
    fn pop(
        &mut self,
        st: &State,
        stack: &mut Vec<(NodeId, u32, u64)>,
    ) -> Option<(NodeId, u32, u64)> {
        let len = stack.len();
        if len > self.hi {
            self.lo = len.saturating_sub(WARM_AHEAD);
            self.hi = len;
            st.warm_ids(stack.get(self.lo..).unwrap_or_default().iter().map(|e| e.0));
        } else if len <= self.lo + WARM_AHEAD / 2 && self.lo > 0 {
            let lo = self.lo.saturating_sub(WARM_AHEAD / 2);
            let next = stack.get(lo..self.lo).unwrap_or_default();
            st.warm_ids(next.iter().map(|e| e.0));
            self.lo = lo;
        }
        let top = stack.pop();
        // Children pushed from here on are above what was read.
        self.hi = self.hi.min(stack.len());
        top
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The reader failed (a truncated stream is [`SnapshotError::Corrupt`]).
    #[error("snapshot read failed: {0}")]
    Io(#[from] io::Error),
    /// Not a snapshot of this format.
    #[error("not a zk-tree snapshot (bad magic)")]
    BadMagic,
    /// The bytes do not make a valid snapshot.
    #[error("corrupt snapshot at byte {offset}: {reason}")]
    Corrupt {
        /// Offset of the bad item.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The trailing checksum does not match.
    #[error("snapshot checksum mismatch")]
    Checksum,
    /// A snapshot holding a SNAP body ([`SNAP_BODY_MAGIC`]) whose body does
    /// not read.
    #[error("snapshot holding a SNAP body: {0}")]
    SnapBody(#[from] crate::ApacheSnapError),
}

/// The first bytes of a snapshot stream that holds an Apache SNAP body as a
/// learner received it, exact at the snapshot's key
/// ([`Tree::write_snap_body_snapshot`]): a learner persists a SNAP without
/// serializing the tree it just loaded again. [`Tree::read_any_snapshot`]
/// reads both kinds.
pub const SNAP_BODY_MAGIC: &[u8; 8] = b"ZKSNAPB1";

/// Whether `id` is still a live node at depth `depth` whose parent is the
/// node last written at depth `depth - 1` (its path `path[..ends[depth-1]]`):
/// checked by walking its ancestors' names back to the root.
fn still_at(st: &State, id: NodeId, depth: usize, path: &[u8], ends: &[usize]) -> bool {
    let live = |i: NodeId| st.try_node(i);
    if depth == 0 {
        return id == ROOT;
    }
    let Some(n) = live(id) else { return false };
    let mut cur = n.parent;
    for k in (1..depth).rev() {
        let Some(p) = live(cur) else { return false };
        if cur == ROOT || p.name_bytes() != &path[ends[k - 1] + 1..ends[k]] {
            return false;
        }
        cur = p.parent;
    }
    cur == ROOT
}

/// Stack entries: depth in the low 24 bits, the part of a continuation above.
const PART_SHIFT: u32 = 24;
const DEPTH_MASK: u32 = (1 << PART_SHIFT) - 1;

/// The children of `n` (node `id`, written at `depth`) go on the stack
/// sorted by id (pushed highest first, so the lowest pops first): ids follow
/// creation order, and so do the nodes' places in the slab and the heap,
/// which turns the walk of a large tree into mostly sequential memory access.
/// A big child set is gathered one part (shard) per call into `gather`, with
/// a continuation entry on the stack for the next part, and pushed whole after
/// the last. `Some(from)` ends the chunk: the caller sorts `stack[from..]`
/// without the read lock (more than [`SORT_UNDER_LOCK`] children, or a part
/// gathered).
fn push_children(
    stack: &mut Vec<(NodeId, u32, u64)>,
    gather: &mut Vec<(NodeId, u32, u64)>,
    n: &crate::store::NodeRef<'_>,
    id: NodeId,
    depth: usize,
    part: usize,
    epoch: u64,
) -> Option<usize> {
    let d = depth as u32 + 1;
    let parts = n.child_parts();
    if part >= parts {
        // The set shrank out of its shards while being gathered: take it
        // whole now (what was gathered is in it, or gone).
        gather.clear();
    } else if parts > 1 {
        n.for_each_child_in_part(part, |c| gather.push((c, d, epoch)));
        if part + 1 < parts {
            stack.push((id, depth as u32 | ((part as u32 + 1) << PART_SHIFT), epoch));
            return Some(stack.len());
        }
        let from = stack.len();
        stack.append(gather);
        return Some(from);
    }
    let from = stack.len();
    n.for_each_child(|c| stack.push((c, d, epoch)));
    if stack.len() - from > SORT_UNDER_LOCK {
        return Some(from);
    }
    sort_children(&mut stack[from..]);
    None
}

fn sort_children(children: &mut [(NodeId, u32, u64)]) {
    children.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_be_bytes());
    b.extend_from_slice(s);
}

/// An ACL record (1), whose id must be `next` (ids come in order).
fn read_acl_record<R: Read>(
    r: &mut In<R>,
    at: u64,
    next: usize,
) -> Result<Vec<Acl>, SnapshotError> {
    let id = r.u32()?;
    if id as usize != next {
        return Err(r.corrupt(at, "ACL ids out of order"));
    }
    let count = r.u32()?;
    let mut list = Vec::new();
    for _ in 0..count {
        let perms = r.i32()?;
        let scheme = r.str()?.to_string();
        let id = r.str()?.to_string();
        list.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(list)
}

/// The session table: a count, then (id, timeout) pairs.
fn read_sessions<R: Read>(r: &mut In<R>, st: &mut State) -> Result<(), SnapshotError> {
    let n = r.u32()?;
    for _ in 0..n {
        let id = r.i64()?;
        let to = r.i32()?;
        st.sessions.insert(id, to);
    }
    Ok(())
}

/// The tree's cache index for a snapshot ACL list: interned the first time
/// (`slot` remembers it), referenced again after.
fn intern_acl(st: &mut State, slot: &mut Option<u32>, list: &[Acl]) -> u32 {
    match *slot {
        Some(a) => {
            st.acls.add_ref(a);
            a
        }
        None => {
            let a = st.acls.intern(list);
            *slot = Some(a);
            a
        }
    }
}

/// The fixed-size end of a node record: its ACL id and persisted stat.
fn fixed_fields(f: &[u8]) -> (u32, StatPersisted) {
    let be64 = |o: usize| i64::from_be_bytes(f[o..o + 8].try_into().unwrap_or([0; 8]));
    let be32 = |o: usize| i32::from_be_bytes(f[o..o + 4].try_into().unwrap_or([0; 4]));
    let stat = StatPersisted {
        czxid: be64(4),
        mzxid: be64(12),
        ctime: be64(20),
        mtime: be64(28),
        version: be32(36),
        cversion: be32(40),
        aversion: be32(44),
        ephemeral_owner: be64(48),
        pzxid: be64(56),
    };
    (be32(0) as u32, stat)
}

/// The ACL lists a snapshot has written, by snapshot id.
#[derive(Default)]
struct SnapshotAcls {
    ids: HashMap<std::sync::Arc<[Acl]>, u32>,
    /// Cache index -> (the list it held, snapshot id): skips hashing the
    /// list for every node; the pointer check guards against index reuse.
    by_index: HashMap<u32, (std::sync::Arc<[Acl]>, u32)>,
}

impl SnapshotAcls {
    /// The snapshot id of the ACL at cache index `nacl`, writing the list
    /// (record 1) into `buf` the first time it is met.
    fn id_of(&mut self, st: &State, nacl: u32, buf: &mut Vec<u8>) -> u32 {
        let cached = self
            .by_index
            .get(&nacl)
            .filter(|(l, _)| std::ptr::eq(l.as_ptr(), st.acls.get_ref(nacl).as_ptr()));
        if let Some(&(_, a)) = cached {
            return a;
        }
        let acl = st.acls.get(nacl);
        if let Some(&a) = self.ids.get(&acl) {
            self.by_index.insert(nacl, (acl, a));
            return a;
        }
        let a = self.ids.len() as u32;
        buf.push(1);
        buf.extend_from_slice(&a.to_be_bytes());
        buf.extend_from_slice(&(acl.len() as u32).to_be_bytes());
        for e in acl.iter() {
            buf.extend_from_slice(&e.perms.to_be_bytes());
            put_str(buf, &e.id.scheme);
            put_str(buf, &e.id.id);
        }
        self.ids.insert(acl.clone(), a);
        self.by_index.insert(nacl, (acl, a));
        a
    }
}

/// A node record (2): path, data (null as -1), ACL id, the persisted stat.
fn put_node(buf: &mut Vec<u8>, path: &[u8], data: Option<&[u8]>, aid: u32, s: &StatPersisted) {
    buf.push(2);
    put_bytes(buf, path);
    match data {
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(d) => {
            buf.extend_from_slice(&(d.len() as i32).to_be_bytes());
            buf.extend_from_slice(d);
        }
    }
    buf.extend_from_slice(&aid.to_be_bytes());
    for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    buf.extend_from_slice(&s.ephemeral_owner.to_be_bytes());
    buf.extend_from_slice(&s.pzxid.to_be_bytes());
}

impl Tree {
    /// Writes a fuzzy snapshot to `out` and returns its start zxid (replay
    /// the log from the txn after it). The applier is blocked only for
    /// chunks of at most 256 nodes / 256 KiB / 200 µs at a time; I/O happens outside locks
    /// (except in a tree loaded from a fuzzy snapshot that holds nodes past
    /// its last zxid: see the module docs).
    pub fn write_snapshot<W: Write>(&self, out: &mut W) -> io::Result<i64> {
        self.write_snapshot_interleaved(out, CHUNK, &mut || {})
    }

    /// The snapshot's header (magic, start zxid, the session table) into
    /// `buf`; returns the start zxid (the last zxid applied) and the highest
    /// czxid in the tree.
    fn put_snapshot_header(&self, buf: &mut Vec<u8>) -> (i64, i64) {
        let st = self.read();
        let start_zxid = st.last_zxid;
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&start_zxid.to_be_bytes());
        let mut sessions: Vec<(i64, i32)> = st.sessions.iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort_unstable();
        buf.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
        for (id, to) in sessions {
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&to.to_be_bytes());
        }
        (start_zxid, st.czxid_high)
    }

    /// [`Tree::write_snapshot`] with `chunk` nodes per read lock, calling
    /// `between` after each chunk while no lock is held (tests use it to
    /// apply txns in the middle of a snapshot deterministically; not in a
    /// tree holding nodes past its last zxid, walked under one read lock).
    #[doc(hidden)]
    pub fn write_snapshot_interleaved<W: Write>(
        &self,
        out: &mut W,
        chunk: usize,
        between: &mut dyn FnMut(),
    ) -> io::Result<i64> {
        let mut crc = Crc32::new();
        let mut buf = Vec::with_capacity(1 << 16);
        let (start_zxid, czxid_high) = self.put_snapshot_header(&mut buf);
        // Nodes created after the walk began are told by a czxid past
        // `start_zxid`. A tree loaded from a fuzzy snapshot whose log ended
        // before the txns it caught (Apache's, taken over with a torn tail)
        // holds such nodes from the start, and nothing replays them: then the
        // walk keeps the read lock from start to end, so that nothing is
        // created meanwhile, and writes every node (regression: a take-over
        // dropped the node of the torn txn that Apache's snapshot held, and
        // Apache keeps).
        let whole = (czxid_high > start_zxid).then(|| self.read());
        let bound = if whole.is_some() {
            i64::MAX
        } else {
            start_zxid
        };
        let mut acls = SnapshotAcls::default();
        // Depth-first by node id: `stack` holds (id, depth, free epoch when
        // pushed), the depth's top 8 bits being 0 for a node to write and k
        // for "push part k of this (written) node's children" (a big child
        // set goes on the stack one shard at a time, so no read-lock hold
        // grows with the number of children); `path` is the path of the node last written, `ends[d]` the
        // length of its prefix at depth `d` (a node popped at depth `d` is a
        // child of the node last written at depth `d - 1`). An id is trusted
        // as is while no node has been freed since it was pushed; otherwise it
        // is checked (live, and its ancestors' names spell `path`'s prefix)
        // before use, so a reused id never lands under the wrong path.
        let mut stack: Vec<(NodeId, u32, u64)> = Vec::new();
        // Bytes, not a String: the names were checked when their nodes were
        // made (their UTF-8 check per node was 5 % of a snapshot).
        let mut path: Vec<u8> = Vec::with_capacity(256);
        let mut ends: Vec<usize> = Vec::new();
        let mut first = true;
        let budget = chunk.max(1);
        // Where the children of a node with many of them start on the stack:
        // sorted after the read lock is released (sorting 1M ids under it
        // held every write up for ~60 ms).
        let mut unsorted: Option<usize> = None;
        // The parts of a big child set gathered so far (see `push_children`).
        let mut gather: Vec<(NodeId, u32, u64)> = Vec::new();
        while first || !stack.is_empty() {
            {
                let held;
                let st = match &whole {
                    Some(st) => st,
                    None => {
                        held = self.read();
                        &held
                    }
                };
                let epoch = st.free_epoch;
                if first {
                    stack.push((ROOT, 0, epoch));
                    first = false;
                }
                let t0 = Instant::now();
                let mut done = 0usize;
                let mut ahead = ReadAhead::default();
                while let Some((id, packed, pushed)) = ahead.pop(st, &mut stack) {
                    let depth = (packed & DEPTH_MASK) as usize;
                    let part = (packed >> PART_SHIFT) as usize;
                    let live = pushed == epoch || still_at(st, id, depth, &path, &ends);
                    // A node created after the walk began is left to the log
                    // replay (with its subtree, all created later still).
                    // Besides being redundant, it could be met twice: by a
                    // stack entry whose id was freed and reused for it, and
                    // again when its parent's gathered children are pushed.
                    // The same rule catches a continuation whose parent's id
                    // was reused.
                    let node = live.then(|| st.node(id)).map(|n| (n, n.stat()));
                    let Some((n, s)) = node.filter(|(_, s)| s.czxid <= bound) else {
                        if part > 0 {
                            gather.clear();
                        }
                        continue;
                    };
                    if part > 0 {
                        // A continuation: the node was written already.
                        done += 1;
                        unsorted =
                            push_children(&mut stack, &mut gather, &n, id, depth, part, epoch);
                        if unsorted.is_some() {
                            break;
                        }
                        continue;
                    }
                    if depth == 0 {
                        path.clear();
                        path.push(b'/');
                        ends.clear();
                        ends.push(0);
                    } else {
                        path.truncate(ends[depth - 1]);
                        path.push(b'/');
                        path.extend_from_slice(n.name_bytes());
                        ends.truncate(depth);
                        ends.push(path.len());
                    }
                    let aid = acls.id_of(st, n.acl(), &mut buf);
                    put_node(&mut buf, &path, n.data(), aid, &s);
                    done += 1;
                    unsorted = push_children(&mut stack, &mut gather, &n, id, depth, 0, epoch);
                    if unsorted.is_some() {
                        break;
                    }
                    // Bound the read-lock hold: node count, bytes copied, time.
                    if done >= budget
                        || buf.len() >= CHUNK_BYTES
                        || (done.is_multiple_of(32) && t0.elapsed() >= CHUNK_TIME)
                    {
                        break;
                    }
                }
            }
            if let Some(from) = unsorted.take() {
                sort_children(&mut stack[from..]);
            }
            crc.update(&buf);
            out.write_all(&buf)?;
            buf.clear();
            between();
        }
        buf.push(0);
        buf.extend_from_slice(&self.last_processed_zxid().to_be_bytes());
        crc.update(&buf);
        buf.extend_from_slice(&crc.value().to_be_bytes());
        out.write_all(&buf)?;
        Ok(start_zxid)
    }

    /// Writes a snapshot stream that holds `body` (in pieces, in order),
    /// the body of an Apache SNAP exact at the snapshot's key
    /// ([`SNAP_BODY_MAGIC`]).
    pub fn write_snap_body_snapshot<W: Write, B: AsRef<[u8]>>(
        body: impl IntoIterator<Item = B>,
        out: &mut W,
    ) -> io::Result<()> {
        out.write_all(SNAP_BODY_MAGIC)?;
        for piece in body {
            out.write_all(piece.as_ref())?;
        }
        Ok(())
    }

    /// Reads a snapshot stream of either kind: ours ([`Tree::write_snapshot`],
    /// fuzzy from its start zxid) or a SNAP body
    /// ([`Tree::write_snap_body_snapshot`], exact at `key`, the snapshot's
    /// key). Replay the log after the tree's last processed zxid. Never
    /// panics on bad bytes.
    pub fn read_any_snapshot<R: io::BufRead>(
        input: &mut R,
        config: TreeConfig,
        key: i64,
    ) -> Result<Tree, SnapshotError> {
        if input.fill_buf()?.starts_with(SNAP_BODY_MAGIC) {
            input.consume(SNAP_BODY_MAGIC.len());
            let snap = Tree::read_apache_snap(input, config, crate::APACHE_MAX_LEN, key)?;
            return Ok(snap.tree);
        }
        Tree::read_snapshot(input, config)
    }

    /// Reads a snapshot written by [`Tree::write_snapshot`]. The tree's last
    /// processed zxid is the snapshot's start zxid; replay the log after it.
    /// Never panics on bad bytes.
    pub fn read_snapshot<R: Read>(input: R, config: TreeConfig) -> Result<Tree, SnapshotError> {
        let mut r = In::new(input);
        if r.take(8)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut st = State::empty(&config);
        st.last_zxid = r.i64()?;
        read_sessions(&mut r, &mut st)?;
        let mut acls: Vec<Vec<Acl>> = Vec::new();
        let mut interned: Vec<Option<u32>> = Vec::new();
        // The nodes come depth-first, parent first: the path of the last
        // parent looked up and its id resolve nearly every node without a
        // walk from the root.
        let mut last_parent = String::new();
        let mut last_parent_id: Option<crate::store::NodeId> = None;
        let mut have_root = false;
        loop {
            let at = r.off;
            match r.u8()? {
                0 => break,
                1 => {
                    acls.push(read_acl_record(&mut r, at, acls.len())?);
                    interned.push(None);
                }
                2 => {
                    // One fixed-size read of everything after the path and
                    // the data, then the node is built from the buffer in
                    // place: no allocation but the node's own.
                    let path_at = r.off;
                    let path_len = r.str_len()?;
                    r.fill(path_len + 4)?;
                    let len =
                        i32::from_be_bytes(r.peek_at(path_len, 4).try_into().unwrap_or([0; 4]));
                    let data_len = if len == -1 {
                        0
                    } else if (0..=MAX_DATA).contains(&len) {
                        len as usize
                    } else {
                        return Err(r.corrupt(at, "bad data length"));
                    };
                    const FIXED: usize = 4 + 4 * 8 + 3 * 4 + 2 * 8;
                    let total = path_len + 4 + data_len + FIXED;
                    r.fill(total)?;
                    let rec = r.peek_at(0, total);
                    let Ok(path) = std::str::from_utf8(&rec[..path_len]) else {
                        return Err(r.corrupt(path_at, "string not UTF-8"));
                    };
                    let data = (len != -1).then(|| &rec[path_len + 4..path_len + 4 + data_len]);
                    let (acl_id, stat) = fixed_fields(&rec[path_len + 4 + data_len..]);
                    let Some(list) = acls.get(acl_id as usize) else {
                        return Err(r.corrupt(at, "unknown ACL id"));
                    };
                    let a = intern_acl(&mut st, &mut interned[acl_id as usize], list);
                    if path == "/" {
                        if have_root {
                            return Err(r.corrupt(at, "duplicate root"));
                        }
                        have_root = true;
                        st.insert_root(data, a, stat);
                        r.consume(total);
                        continue;
                    }
                    if !have_root {
                        return Err(r.corrupt(at, "node before the root"));
                    }
                    let Some((parent, name)) = crate::path::split(path) else {
                        return Err(r.corrupt(at, "path without /"));
                    };
                    if name.is_empty() {
                        return Err(r.corrupt(at, "empty node name"));
                    }
                    if parent == "/" {
                        // "//a" would load as "/a" under a digest of "//a".
                        return Err(r.corrupt(at, "empty path component"));
                    }
                    let pid = match last_parent_id {
                        Some(id) if last_parent == parent => id,
                        _ => {
                            let Some(id) = st.lookup(parent) else {
                                return Err(r.corrupt(at, "node before its parent"));
                            };
                            last_parent.clear();
                            last_parent.push_str(parent);
                            last_parent_id = Some(id);
                            id
                        }
                    };
                    if st
                        .insert_child_at(pid, name, Some(path), data, a, stat)
                        .is_none()
                    {
                        return Err(r.corrupt(at, "duplicate node"));
                    }
                    r.consume(total);
                }
                _ => return Err(r.corrupt(at, "unknown record tag")),
            }
        }
        if !have_root {
            return Err(r.corrupt(r.off, "no root"));
        }
        let _end_zxid = r.i64()?;
        let expect = r.crc_so_far();
        let c = r.u32()?;
        if c != expect {
            return Err(SnapshotError::Checksum);
        }
        Ok(Tree::from_state(st, config))
    }
}

/// A buffered reader that checksums what it hands out in large runs (one
/// CRC update per buffer refill, not one per field).
struct In<R> {
    r: R,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// `buf[crc_from..pos]` is consumed but not yet in `crc`.
    crc_from: usize,
    crc: Crc32,
    /// Stream offset of `buf[pos]`.
    off: u64,
}

const READ_BUF: usize = 1 << 20;

impl<R: Read> In<R> {
    fn new(r: R) -> Self {
        In {
            r,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            crc_from: 0,
            crc: Crc32::new(),
            off: 0,
        }
    }
    fn corrupt(&self, offset: u64, reason: &'static str) -> SnapshotError {
        SnapshotError::Corrupt { offset, reason }
    }
    /// Makes at least `n` unread bytes available in `buf[pos..]`.
    fn fill(&mut self, n: usize) -> Result<(), SnapshotError> {
        if self.end - self.pos >= n {
            return Ok(());
        }
        self.crc.update(&self.buf[self.crc_from..self.pos]);
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        self.crc_from = 0;
        while self.end < n {
            if self.end == self.buf.len() {
                // Grow with what arrives, so a corrupt length cannot make us
                // allocate a gigabyte before finding the stream truncated.
                let len = n.min(self.buf.len() * 2);
                self.buf.resize(len, 0);
            }
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(SnapshotError::Corrupt {
                        offset: self.off + self.end as u64,
                        reason: "truncated",
                    });
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SnapshotError::Io(e)),
            }
        }
        Ok(())
    }
    /// `n` bytes at `at` past the unread position (after `fill(at + n)`).
    fn peek_at(&self, at: usize, n: usize) -> &[u8] {
        &self.buf[self.pos + at..self.pos + at + n]
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.off += n as u64;
    }
    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        self.fill(n)?;
        let p = self.pos;
        self.consume(n);
        Ok(&self.buf[p..p + n])
    }
    /// The CRC of every byte consumed so far.
    fn crc_so_far(&mut self) -> u32 {
        self.crc.update(&self.buf[self.crc_from..self.pos]);
        self.crc_from = self.pos;
        self.crc.clone().value()
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let b = self.take(N)?;
        Ok(b.try_into().unwrap_or([0; N]))
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.arr::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        Ok(i32::from_be_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.arr()?))
    }
    /// Reads a string's length prefix (bounded by `MAX_STR`).
    fn str_len(&mut self) -> Result<usize, SnapshotError> {
        let at = self.off;
        let n = self.u32()?;
        if n > MAX_STR {
            return Err(self.corrupt(at, "string too long"));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<&str, SnapshotError> {
        let at = self.off;
        let n = self.str_len()?;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| SnapshotError::Corrupt {
            offset: at,
            reason: "string not UTF-8",
        })
    }
}
