//! Apache ZooKeeper's serialized tree: the body a leader streams after a
//! SNAP packet (design/quorum.md §4). An Apache snapshot file holds the same
//! serialization between its 16-byte header and its seals
//! (design/apache-disk-format.md §4) **without the signature**:
//! `LearnerHandler` writes `"BenWasHere"` after `serializeSnapshot`, `FileSnap`
//! seals the stream right after the `"/"` (found by the oracle test in
//! tests/tests/apache_snap.rs). [`Tree::read_apache_snap`] reads the former,
//! [`Tree::read_apache_file_body`] the latter.
//!
//! Layout, all jute (big-endian; `ustring` and `buffer` are an i32 length,
//! -1 = null, then the bytes; `vector` an i32 count then the elements):
//! ```text
//! sessions  i32 n, n x (sessionId i64, timeoutMs i32)     SerializeUtils.serializeSnapshot
//! ACL map   i32 n, n x (aclId i64, vector<ACL>)            ReferenceCountedACLCache.serialize
//!           ACL = perms i32, scheme ustring, id ustring;   id -1 = OPEN_ACL_UNSAFE, never in the map
//! nodes     path ustring, data buffer, acl i64,            DataTree.serializeNode, pre-order;
//!           StatPersisted{czxid, mzxid, ctime, mtime i64,  the root's path is "", then "/a", "/a/b"
//!           version, cversion, aversion i32,
//!           ephemeralOwner, pzxid i64}
//! end       ustring "/"
//! signature ustring "BenWasHere"                           (a string, not a long; SNAP only)
//! ```
//! There is no length prefix, checksum or digest: a reader stops right after
//! the signature, which is why [`Tree::read_apache_snap`] takes a
//! [`BufRead`] and consumes exactly the body (what follows on the stream,
//! the next quorum packet or a file's seal, stays in the reader).
//!
//! **Writing** ([`Tree::write_apache_snap`]) serializes the tree under one
//! read lock into memory, then writes it out without the lock: the result is
//! exact at the returned zxid (Apache's is fuzzy, which learners tolerate).
//! Children go in id order, their creation order (Apache: hash order; any
//! order is valid), so a tree read from a body writes the same bytes again. ACL ids are 1, 2, ... in the
//! order of the tree's ACL cache (the map precedes the nodes, and
//! [`Tree::apache_snap_stream`] sends nodes before the walk ends; a tree
//! read from a body interns the map in its order), and lists equal to OPEN_ACL_UNSAFE are written as -1, as Apache does for
//! its system nodes (its own user nodes get a regular id; both read the
//! same).
//!
//! **Reading** treats the bytes as untrusted, as `DataTree.deserialize` and a
//! little stricter: every string and buffer length is checked against a
//! limit (Apache's `jute.maxbuffer` + extrasize, [`APACHE_MAX_LEN`] by
//! default) before anything is allocated, and memory grows only with bytes
//! actually read; counts may not be negative; a node's parent must come
//! before it; paths must pass `PathUtils.validatePath`; duplicate sessions,
//! ACL ids or paths, an ACL id a node uses but the map lacks, null strings
//! and null ACL vectors are errors (Apache would silently overwrite, log, or
//! fail later). Errors give the byte offset in the body. ACL map entries no
//! node uses are dropped (`purgeUnused`). Ephemerals, containers and TTL
//! nodes are indexed from `ephemeralOwner` (TTL only with
//! [`TreeConfig::extended_types`], as `EphemeralType.get`). Strings are
//! UTF-8; CESU-8 surrogate pairs (what Java writes for characters above
//! U+FFFF, possible in ACL ids) are accepted.

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use hashbrown::HashMap;
use zk_jute::{Acl, Id, StatPersisted};

use crate::acl::open_acl_unsafe;
use crate::store::{NodeId, ROOT, State};
use crate::{Tree, TreeConfig};

/// Apache's default limit on one string or buffer read from a snapshot or
/// a quorum stream: `jute.maxbuffer` (0xfffff) plus
/// `zookeeper.jute.maxbuffer.extrasize` (by default the same),
/// `BinaryInputArchive.checkLength`.
pub const APACHE_MAX_LEN: usize = 2 * 0xfffff;

/// The ACL id Apache reserves for OPEN_ACL_UNSAFE.
const OPEN_ACL_ID: i64 = -1;
/// The path that ends the node list.
const END_PATH: &str = "/";
/// The signature after it.
const SIGNATURE: &str = "BenWasHere";
/// Bytes of a piece of [`Tree::apache_snap_pieces`].
const SNAP_PIECE: usize = 4 << 20;

/// Why a SNAP body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApacheSnapError {
    /// The reader failed.
    #[error("SNAP body: read failed at byte {offset}: {source}")]
    Io {
        /// Bytes of the body read before the failure.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The stream ended inside the body.
    #[error("SNAP body truncated at byte {offset}, reading {what}")]
    Truncated {
        /// Bytes of the body read.
        offset: u64,
        /// The item being read.
        what: &'static str,
    },
    /// The bytes do not make a valid body.
    #[error("invalid SNAP body at byte {offset}: {reason}")]
    Invalid {
        /// Offset in the body of the bad item.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// A SNAP body read back: the tree and the session table it carried.
#[derive(Debug)]
pub struct ApacheSnap {
    /// The tree; its session table holds [`ApacheSnap::sessions`] too.
    pub tree: Tree,
    /// (session id, timeout ms), in the order of the stream.
    pub sessions: Vec<(i64, i32)>,
}

fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    // Strings and buffers in the tree are bounded far below 2 GiB.
    put_i32(b, i32::try_from(v.len()).unwrap_or(i32::MAX));
    b.extend_from_slice(v);
}

fn put_stat(b: &mut Vec<u8>, s: &StatPersisted) {
    for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
        put_i64(b, v);
    }
    for v in [s.version, s.cversion, s.aversion] {
        put_i32(b, v);
    }
    put_i64(b, s.ephemeral_owner);
    put_i64(b, s.pzxid);
}

/// The body of `st`, handed to `emit` in pieces of about `piece` bytes (the
/// last one smaller) as they fill.
fn encode(st: &State, piece: usize, emit: &mut dyn FnMut(Vec<u8>)) {
    let open = open_acl_unsafe();
    let room = piece + (64 << 10);
    let mut out = Vec::with_capacity(room);
    let mut sessions: Vec<(i64, i32)> = st.sessions.iter().map(|(&k, &v)| (k, v)).collect();
    sessions.sort_unstable();
    put_i32(&mut out, sessions.len() as i32);
    for (id, timeout) in sessions {
        put_i64(&mut out, id);
        put_i32(&mut out, timeout);
    }
    // The map precedes the nodes, so it is every list in use (each is some
    // node's), ids 1, 2, ... in cache order, before the walk: the pieces go
    // out as the walk fills them.
    let mut ids: Vec<i64> = Vec::new();
    let mut lists: Vec<&Arc<[Acl]>> = Vec::new();
    for (idx, list) in st.acls.iter() {
        let idx = idx as usize;
        if ids.len() <= idx {
            ids.resize(idx + 1, OPEN_ACL_ID);
        }
        if **list != open[..] {
            lists.push(list);
            ids[idx] = lists.len() as i64;
        }
    }
    put_i32(&mut out, lists.len() as i32);
    for (i, list) in lists.iter().enumerate() {
        put_i64(&mut out, i as i64 + 1);
        put_i32(&mut out, list.len() as i32);
        for a in list.iter() {
            put_i32(&mut out, a.perms);
            put_bytes(&mut out, a.id.scheme.as_bytes());
            put_bytes(&mut out, a.id.id.as_bytes());
        }
    }
    // Pre-order with an explicit stack (no recursion on deep trees): `path`
    // is the path of the node last written, `ends[d]` the length of its
    // prefix at depth d (the root's path is "").
    let mut stack: Vec<(NodeId, usize)> = vec![(ROOT, 0)];
    let mut path = String::new();
    let mut ends: Vec<usize> = Vec::new();
    let mut kids: Vec<NodeId> = Vec::new();
    while let Some((id, depth)) = stack.pop() {
        let n = st.node(id);
        if depth == 0 {
            path.clear();
            ends.clear();
        } else {
            path.truncate(ends[depth - 1]);
            path.push('/');
            path.push_str(n.name());
            ends.truncate(depth);
        }
        ends.push(path.len());
        let acl = ids.get(n.acl() as usize).copied().unwrap_or(OPEN_ACL_ID);
        put_bytes(&mut out, path.as_bytes());
        match n.data() {
            None => put_i32(&mut out, -1),
            Some(d) => put_bytes(&mut out, d),
        }
        put_i64(&mut out, acl);
        put_stat(&mut out, &n.stat());
        if out.len() >= piece {
            emit(std::mem::replace(&mut out, Vec::with_capacity(room)));
        }
        // Children in id order (creation order; any order is valid):
        // pushed last first. By name, the comparisons' node look-ups took
        // a fifth of a SNAP's serialization.
        kids.clear();
        n.for_each_child(|c| kids.push(c));
        kids.sort_unstable_by(|a, b| b.cmp(a));
        stack.extend(kids.iter().map(|&c| (c, depth + 1)));
    }
    put_bytes(&mut out, END_PATH.as_bytes());
    put_bytes(&mut out, SIGNATURE.as_bytes());
    emit(out);
}

/// A reader of jute items from a [`BufRead`], counting the offset and
/// bounding every length.
struct Rd<'a, R> {
    r: &'a mut R,
    off: u64,
    max_len: usize,
}

impl<R: BufRead> Rd<'_, R> {
    fn invalid(&self, offset: u64, reason: impl Into<String>) -> ApacheSnapError {
        ApacheSnapError::Invalid {
            offset,
            reason: reason.into(),
        }
    }

    /// Appends exactly `n` bytes to `out`, growing it only as bytes arrive.
    fn read_into(
        &mut self,
        out: &mut Vec<u8>,
        n: usize,
        what: &'static str,
    ) -> Result<(), ApacheSnapError> {
        let mut left = n;
        while left > 0 {
            let avail = match self.r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ApacheSnapError::Io {
                        offset: self.off,
                        source,
                    });
                }
            };
            if avail.is_empty() {
                return Err(ApacheSnapError::Truncated {
                    offset: self.off,
                    what,
                });
            }
            let k = avail.len().min(left);
            out.extend_from_slice(&avail[..k]);
            self.r.consume(k);
            self.off += k as u64;
            left -= k;
        }
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ApacheSnapError> {
        let mut v = Vec::with_capacity(N);
        self.read_into(&mut v, N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, ApacheSnapError> {
        Ok(i32::from_be_bytes(self.fixed(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, ApacheSnapError> {
        Ok(i64::from_be_bytes(self.fixed(what)?))
    }

    /// A count (of sessions, ACL entries, ACLs): not negative.
    fn count(&mut self, what: &'static str) -> Result<usize, ApacheSnapError> {
        let at = self.off;
        let n = self.i32(what)?;
        usize::try_from(n).map_err(|_| self.invalid(at, format!("{what} {n} is negative")))
    }

    /// A buffer or string: `None` for null (-1). Lengths below -1 or above
    /// the limit are refused before anything is allocated.
    fn buffer(&mut self, what: &'static str) -> Result<Option<Vec<u8>>, ApacheSnapError> {
        let at = self.off;
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let len = usize::try_from(n)
            .ok()
            .filter(|&l| l <= self.max_len)
            .ok_or_else(|| {
                self.invalid(
                    at,
                    format!("unreasonable length {n} of {what} (limit {})", self.max_len),
                )
            })?;
        let mut v = Vec::with_capacity(len.min(1 << 16));
        self.read_into(&mut v, len, what)?;
        Ok(Some(v))
    }

    /// A non-null ustring.
    fn string(&mut self, what: &'static str) -> Result<String, ApacheSnapError> {
        let at = self.off;
        let b = self
            .buffer(what)?
            .ok_or_else(|| self.invalid(at, format!("{what} is null")))?;
        decode_ustring(b).ok_or_else(|| self.invalid(at, format!("{what} is not UTF-8")))
    }
}

/// Decodes a jute ustring: UTF-8, or CESU-8 where Java wrote a character
/// above U+FFFF as a surrogate pair of 3-byte sequences.
fn decode_ustring(b: Vec<u8>) -> Option<String> {
    let b = match String::from_utf8(b) {
        Ok(s) => return Some(s),
        Err(e) => e.into_bytes(),
    };
    let mut out = String::with_capacity(b.len());
    let mut rest = &b[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Some(out);
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).ok()?);
                // A high surrogate (ED A0..AF xx) then a low one (ED B0..BF xx).
                let pair = match tail {
                    [0xed, h1 @ 0xa0..=0xaf, h2, 0xed, l1 @ 0xb0..=0xbf, l2, ..]
                        if (h2 & 0xc0) == 0x80 && (l2 & 0xc0) == 0x80 =>
                    {
                        let hi = 0xd000 | (u32::from(h1 & 0x3f) << 6) | u32::from(h2 & 0x3f);
                        let lo = 0xd000 | (u32::from(l1 & 0x3f) << 6) | u32::from(l2 & 0x3f);
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    }
                    _ => return None,
                };
                out.push(char::from_u32(pair)?);
                rest = &tail[6..];
            }
        }
    }
}

impl Tree {
    /// Writes the tree as the body of an Apache SNAP (module docs): sessions,
    /// ACL map, nodes in pre-order, `"/"`, `"BenWasHere"`. Serialized under
    /// one read lock into memory (about the size of the tree's data), written
    /// to `out` after the lock is released. Returns the last processed zxid
    /// the body is exact at (the zxid of the SNAP packet).
    pub fn write_apache_snap<W: Write>(&self, out: &mut W) -> io::Result<i64> {
        let (pieces, zxid) = self.apache_snap_pieces();
        for p in pieces {
            out.write_all(&p)?;
        }
        Ok(zxid)
    }

    /// [`Tree::write_apache_snap`]'s bytes as they were serialized, in
    /// order (no copy into one buffer: a SNAP of 1M znodes is 205 MB), and
    /// the last processed zxid they are exact at.
    pub fn apache_snap_pieces(&self) -> (Vec<Vec<u8>>, i64) {
        let mut pieces = Vec::new();
        let zxid = self.apache_snap_stream(SNAP_PIECE, |p| pieces.push(p));
        (pieces, zxid)
    }

    /// [`Tree::write_apache_snap`]'s bytes handed to `emit` in pieces of
    /// about `piece` bytes as the walk fills them, so that a leader sends
    /// the first while it serializes the rest. Under one read lock
    /// throughout (`emit` runs under it: it should only pass the piece on);
    /// returns the last processed zxid the body is exact at.
    pub fn apache_snap_stream(&self, piece: usize, mut emit: impl FnMut(Vec<u8>)) -> i64 {
        let st = self.read();
        encode(&st, piece.max(1), &mut emit);
        st.last_zxid
    }

    /// Reads the body of an Apache SNAP (module docs) from `input`, consuming
    /// exactly its bytes, signature included, into a tree whose last
    /// processed zxid is `last_zxid` (the SNAP packet's zxid). `max_len`
    /// bounds every string and buffer ([`APACHE_MAX_LEN`] is Apache's
    /// default). Never panics on bad bytes; errors give the offset.
    pub fn read_apache_snap<R: BufRead>(
        input: &mut R,
        config: TreeConfig,
        max_len: usize,
        last_zxid: i64,
    ) -> Result<ApacheSnap, ApacheSnapError> {
        read(input, config, max_len, last_zxid, true)
    }

    /// [`Tree::read_apache_snap`] for the body of an Apache snapshot file
    /// (after its 16-byte header): the same serialization without the
    /// signature, so it stops right after the `"/"` that ends the nodes,
    /// where the file's first seal begins. `last_zxid` is the zxid in the
    /// file's name.
    pub fn read_apache_file_body<R: BufRead>(
        input: &mut R,
        config: TreeConfig,
        max_len: usize,
        last_zxid: i64,
    ) -> Result<ApacheSnap, ApacheSnapError> {
        read(input, config, max_len, last_zxid, false)
    }
}

/// The reader behind both forms; `signature`: whether `"BenWasHere"` follows.
fn read<R: BufRead>(
    input: &mut R,
    config: TreeConfig,
    max_len: usize,
    last_zxid: i64,
    signature: bool,
) -> Result<ApacheSnap, ApacheSnapError> {
    let mut r = Rd {
        r: input,
        off: 0,
        max_len,
    };
    let mut st = State::empty(&config);
    st.last_zxid = last_zxid;
    let sessions = read_sessions(&mut r, &mut st)?;
    let mut acls = read_acl_map(&mut r, &mut st)?;
    let mut nodes = Nodes::default();
    loop {
        let at = r.off;
        let path = r.string("node path")?;
        if path == END_PATH {
            break;
        }
        let data = r.buffer("node data")?;
        let acl_at = r.off;
        let acl_id = r.i64("node ACL id")?;
        let stat = read_stat(&mut r)?;
        let Some(acl) = acls.take_ref(&mut st, acl_id) else {
            return Err(r.invalid(
                acl_at,
                format!("node {path:?} uses ACL id {acl_id}, not in the map"),
            ));
        };
        nodes
            .insert(&mut st, path, data.as_deref(), acl, stat)
            .map_err(|reason| r.invalid(at, reason))?;
    }
    let at = r.off;
    if signature {
        let sig = r.string("signature")?;
        if sig != SIGNATURE {
            return Err(r.invalid(at, format!("signature {sig:?}, not \"{SIGNATURE}\"")));
        }
    }
    if !nodes.have_root {
        return Err(r.invalid(at, "no root node"));
    }
    acls.release_map_refs(&mut st);
    Ok(ApacheSnap {
        tree: Tree::from_state(st, config),
        sessions,
    })
}

/// The session list, into `st` as well; a session listed twice is an error.
fn read_sessions<R: BufRead>(
    r: &mut Rd<'_, R>,
    st: &mut State,
) -> Result<Vec<(i64, i32)>, ApacheSnapError> {
    let n = r.count("session count")?;
    let mut sessions = Vec::new();
    for _ in 0..n {
        let at = r.off;
        let id = r.i64("session id")?;
        let timeout = r.i32("session timeout")?;
        if st.sessions.insert(id, timeout).is_some() {
            return Err(r.invalid(at, format!("session 0x{id:x} listed twice")));
        }
        sessions.push((id, timeout));
    }
    Ok(sessions)
}

/// The ACL map as read, interned into the tree's cache in the map's order
/// (so that the tree writes the same ids again), each list holding one
/// reference of the map's until the nodes are read.
#[derive(Default)]
struct AclMap {
    /// Apache id -> (the list, its index in our cache).
    lists: HashMap<i64, (Vec<Acl>, Option<u32>)>,
    /// OPEN_ACL_UNSAFE's index in our cache once a node uses id -1.
    open: Option<u32>,
}

impl AclMap {
    /// One more reference to the list of Apache id `id` in `st`'s cache;
    /// `None` if the map has no such id.
    fn take_ref(&mut self, st: &mut State, id: i64) -> Option<u32> {
        let (slot, list) = if id == OPEN_ACL_ID {
            (&mut self.open, None)
        } else {
            let (list, slot) = self.lists.get_mut(&id)?;
            (slot, Some(&list[..]))
        };
        Some(match *slot {
            Some(a) => {
                st.acls.add_ref(a);
                a
            }
            None => {
                let a = match list {
                    Some(l) => st.acls.intern(l),
                    None => st.acls.intern(&open_acl_unsafe()),
                };
                *slot = Some(a);
                a
            }
        })
    }

    /// Drops the map's own references: a list no node uses leaves the cache
    /// (as Apache's `purgeUnused` after a load).
    fn release_map_refs(&self, st: &mut State) {
        for &(_, a) in self.lists.values() {
            if let Some(a) = a {
                st.acls.release(a);
            }
        }
    }
}

/// `ReferenceCountedACLCache.deserialize`, refusing id -1 and duplicates;
/// the lists are interned into `st`'s cache.
fn read_acl_map<R: BufRead>(r: &mut Rd<'_, R>, st: &mut State) -> Result<AclMap, ApacheSnapError> {
    let mut map = AclMap::default();
    let n = r.count("ACL map size")?;
    for _ in 0..n {
        let at = r.off;
        let id = r.i64("ACL id")?;
        if id == OPEN_ACL_ID {
            return Err(r.invalid(at, "ACL id -1 (OPEN_ACL_UNSAFE) in the map"));
        }
        if map.lists.contains_key(&id) {
            return Err(r.invalid(at, format!("ACL id {id} listed twice")));
        }
        let k = r.count("ACL vector length")?;
        let mut list = Vec::new();
        for _ in 0..k {
            let perms = r.i32("ACL perms")?;
            let scheme = r.string("ACL scheme")?;
            let id = r.string("ACL id string")?;
            list.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        let a = st.acls.intern(&list);
        map.lists.insert(id, (list, Some(a)));
    }
    Ok(map)
}

/// A `StatPersisted`.
fn read_stat<R: BufRead>(r: &mut Rd<'_, R>) -> Result<StatPersisted, ApacheSnapError> {
    Ok(StatPersisted {
        czxid: r.i64("czxid")?,
        mzxid: r.i64("mzxid")?,
        ctime: r.i64("ctime")?,
        mtime: r.i64("mtime")?,
        version: r.i32("version")?,
        cversion: r.i32("cversion")?,
        aversion: r.i32("aversion")?,
        ephemeral_owner: r.i64("ephemeralOwner")?,
        pzxid: r.i64("pzxid")?,
    })
}

/// Places the nodes as they come. The last node inserted is the likeliest
/// parent of the next (pre-order), then the last parent looked up; else a
/// lookup from the root.
struct Nodes {
    have_root: bool,
    last: (String, NodeId),
    last_parent: (String, NodeId),
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            have_root: false,
            last: (String::new(), ROOT),
            last_parent: (String::new(), ROOT),
        }
    }
}

impl Nodes {
    /// Inserts node `path` (`""` = the root) into `st`, or says why not.
    fn insert(
        &mut self,
        st: &mut State,
        path: String,
        data: Option<&[u8]>,
        acl: u32,
        stat: StatPersisted,
    ) -> Result<(), String> {
        if path.is_empty() {
            if self.have_root {
                return Err("the root (path \"\") appears twice".into());
            }
            self.have_root = true;
            st.insert_root(data, acl, stat);
            return Ok(());
        }
        if !self.have_root {
            return Err(format!("node {path:?} before the root"));
        }
        if crate::path::validate_path(&path).is_err() {
            return Err(format!("invalid path {path:?}"));
        }
        // A valid path other than "/" has a last '/' and a non-empty name.
        let Some((parent, name)) = crate::path::split(&path) else {
            return Err(format!("invalid path {path:?}"));
        };
        let pid = if parent.is_empty() {
            ROOT
        } else if self.last.0 == parent {
            self.last.1
        } else if self.last_parent.0 == parent {
            self.last_parent.1
        } else {
            let Some(id) = st.lookup(parent) else {
                return Err(format!("node {path:?} before its parent {parent:?}"));
            };
            self.last_parent = (parent.to_string(), id);
            id
        };
        let Some(id) = st.insert_child_at(pid, name, Some(&path), data, acl, stat) else {
            return Err(format!("node {path:?} appears twice"));
        };
        self.last = (path, id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node as (path, data, ACL, stat).
    type NodeDump = (String, Option<Vec<u8>>, Vec<Acl>, StatPersisted);

    /// Every node, sorted by path.
    fn dump(t: &Tree) -> Vec<NodeDump> {
        let st = t.read();
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            let n = st.node(id);
            out.push((
                st.path_of(id),
                n.data().map(<[u8]>::to_vec),
                st.acls.get(n.acl()).to_vec(),
                n.stat(),
            ));
            n.for_each_child(|c| stack.push(c));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn read(b: &[u8]) -> Result<ApacheSnap, ApacheSnapError> {
        let mut r = b;
        let s = Tree::read_apache_snap(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 7)?;
        assert!(r.is_empty(), "{} bytes left", r.len());
        Ok(s)
    }

    #[test]
    fn fresh_tree_round_trips_and_uses_the_open_acl_id() {
        let t = Tree::new(TreeConfig::default());
        let mut b = Vec::new();
        t.write_apache_snap(&mut b).unwrap();
        // 0 sessions; one ACL (READ_ACL_UNSAFE of /zookeeper/config) as id 1.
        assert_eq!(&b[..4], &[0, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0, 0, 0, 1]);
        assert_eq!(&b[8..16], &1i64.to_be_bytes());
        // The root's path is "" and its ACL id -1.
        let root_at = 8 + 8 + 4 + 4 + 4 + 5 + 4 + 6;
        assert_eq!(&b[root_at..root_at + 4], &[0, 0, 0, 0], "root path \"\"");
        assert_eq!(&b[root_at + 8..root_at + 16], &(-1i64).to_be_bytes());
        assert!(b.ends_with(b"\0\0\0\x01/\0\0\0\x0aBenWasHere"));
        let s = read(&b).unwrap();
        assert_eq!(dump(&s.tree), dump(&t));
        assert_eq!(s.tree.digest(), t.digest());
        assert_eq!(s.tree.last_processed_zxid(), 7);
    }

    #[test]
    fn a_snapshot_holding_a_snap_body_reads_back_as_ours_does() {
        let t = Tree::new(TreeConfig::default());
        let mut body = Vec::new();
        t.write_apache_snap(&mut body).unwrap();
        let mut held = Vec::new();
        Tree::write_snap_body_snapshot([&body], &mut held).unwrap();
        let back = Tree::read_any_snapshot(&mut &held[..], TreeConfig::default(), 9).unwrap();
        assert_eq!(dump(&back), dump(&t));
        assert_eq!(back.digest(), t.digest());
        assert_eq!(back.last_processed_zxid(), 9, "exact at the snapshot's key");
        // Ours goes through the same door.
        let mut ours = Vec::new();
        t.write_snapshot(&mut ours).unwrap();
        let back = Tree::read_any_snapshot(&mut &ours[..], TreeConfig::default(), 9).unwrap();
        assert_eq!(dump(&back), dump(&t));
        // A cut body is an error naming it, never a panic.
        let cut = &held[..held.len() - 5];
        let e = Tree::read_any_snapshot(&mut &cut[..], TreeConfig::default(), 9).unwrap_err();
        assert!(e.to_string().contains("SNAP body"), "{e}");
    }

    #[test]
    fn cesu8_surrogate_pairs_decode() {
        // U+1F600 as Java writes it: D83D DE00 as two 3-byte sequences.
        let cesu = vec![b'a', 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80, b'b'];
        assert_eq!(decode_ustring(cesu).as_deref(), Some("a\u{1f600}b"));
        assert_eq!(decode_ustring(vec![0xed, 0xa0, 0xbd]), None, "lone");
        assert_eq!(decode_ustring(vec![0xff]), None);
        assert_eq!(decode_ustring("é".into()).as_deref(), Some("é"));
    }
}
