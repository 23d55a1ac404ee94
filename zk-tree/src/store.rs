//! The node store: a slab of 16-byte node slots linked by `u32` ids. A slot
//! holds the handle of the node's block in the [`Arena`] (its name, not its
//! full path; its ACL reference, persisted stat and data), its parent id, its
//! share of the tree digest and the index of its child set (inline up to
//! [`INLINE_CHILDREN`] ids, a hash table of ids keyed by child name above), 0
//! for a leaf. A path is resolved by walking from the root, one child lookup
//! per component.
//!
//! [`State`] is everything the single applier mutates: the nodes, the ACL
//! cache, sessions, the ephemeral / container / TTL indexes, counters and the
//! digest. Its `apply_*` methods follow `DataTree.processTxn` exactly,
//! including the replay tolerances (create over an existing node, delete of a
//! missing node), and report the watch triggers in order.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet, HashTable};
use smallvec::SmallVec;
use zk_jute::{Acl, ErrorCode, EventType, OpCode, Stat, StatPersisted, TxnBody, TxnHeader};

use crate::acl::{AclCache, open_acl_unsafe, read_acl_unsafe};
use crate::arena::{Arena, Block};
use crate::digest::{DigestPrefix, node_digest};
use crate::ns_stats::NamespaceMap;
use crate::path::{split, split_node, watch_path};
use crate::quota::QuotaPaths;
use crate::{ApplyOutcome, OpOutcome, TreeConfig};

pub(crate) type NodeId = u32;
pub(crate) const ROOT: NodeId = 0;
const NONE: NodeId = u32::MAX;
const INLINE_CHILDREN: usize = 4;
const TO_TABLE: usize = 8;

/// `ephemeralOwner` of a container (`Long.MIN_VALUE`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
const RESERVED_MASK: i64 = 0x00ff_ff00_0000_0000;
/// Largest TTL ZooKeeper can encode: 2^40 - 1 ms.
pub const MAX_TTL: i64 = (1 << 40) - 1;

/// What an `ephemeralOwner` value means (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralType {
    /// Not ephemeral (0).
    Void,
    /// Owned by a session.
    Normal,
    /// A container.
    Container,
    /// A TTL node (only when extended types are enabled).
    Ttl,
}

/// How `ephemeralOwner` values are read: ZooKeeper's
/// `zookeeper.extendedTypesEnabled` and `zookeeper.emulate353TTLNodes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnerTypes {
    /// TTL nodes exist (`0xff` top byte, feature bits 0, the TTL in the
    /// low 40 bits).
    pub extended: bool,
    /// With `extended`: every negative owner but a container's is a TTL
    /// node too, as ZooKeeper 3.5.3 wrote them (`0x80..|ttl`,
    /// ZOOKEEPER-2901; Apache's `EphemeralTypeEmulate353`).
    pub emulate_353: bool,
}

impl OwnerTypes {
    /// The tree's setting.
    pub fn of(config: &crate::TreeConfig) -> OwnerTypes {
        OwnerTypes {
            extended: config.extended_types,
            emulate_353: config.emulate_353_ttl,
        }
    }
}

impl EphemeralType {
    /// Classifies `owner` (`EphemeralType.get`); with extended types off,
    /// 0xff.. owners are sessions.
    pub fn of(owner: i64, types: OwnerTypes) -> EphemeralType {
        if types.extended && types.emulate_353 && owner < 0 && owner != CONTAINER_EPHEMERAL_OWNER {
            return EphemeralType::Ttl;
        }
        if types.extended && owner & EXTENDED_MASK == EXTENDED_MASK {
            // Feature bits 0 = TTL; other feature bits are unknown to ZooKeeper
            // (it throws); treat them as TTL-less normal owners.
            return if (owner & RESERVED_MASK) >> 40 == 0 {
                EphemeralType::Ttl
            } else {
                EphemeralType::Normal
            };
        }
        if owner == CONTAINER_EPHEMERAL_OWNER {
            EphemeralType::Container
        } else if owner == 0 {
            EphemeralType::Void
        } else {
            EphemeralType::Normal
        }
    }
}

/// The `ephemeralOwner` encoding a TTL (`EphemeralType.TTL.toEphemeralOwner`),
/// `None` if `ttl` is not in `1..=MAX_TTL`.
pub fn ttl_owner(ttl: i64) -> Option<i64> {
    if ttl <= 0 || ttl > MAX_TTL {
        None
    } else {
        Some(EXTENDED_MASK | ttl)
    }
}

/// The TTL in an owner value.
pub(crate) fn ttl_of(owner: i64) -> i64 {
    owner & !(EXTENDED_MASK | RESERVED_MASK)
}

pub(crate) fn new_stat(zxid: i64, time: i64, owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: owner,
        pzxid: zxid,
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ChildSet {
    Inline(SmallVec<[NodeId; INLINE_CHILDREN]>),
    /// Ids hashed by name: growing it reads every child's name.
    Table(Box<HashTable<NodeId>>),
    /// Above [`BIG_CHILDREN`]: ids with their names' hashes.
    Big(Box<BigSet>),
}

/// Shards of a [`ChildSet::Big`], chosen by the top bits of the name hash.
const BIG_SHARD_BITS: u32 = 6;

/// A big child set: (hash, id) entries in 64 tables that grow one at a time,
/// so that a growth rehashes 1/64 of the set. One table of 1M entries took
/// 60-90 ms to grow (a new 18 MB table filled under the write lock).
#[derive(Debug, Clone)]
pub(crate) struct BigSet {
    shards: Vec<HashTable<Child>>,
    len: usize,
}

impl BigSet {
    fn new(entries: impl Iterator<Item = Child>, len: usize) -> BigSet {
        let n = 1usize << BIG_SHARD_BITS;
        let mut shards: Vec<HashTable<Child>> = (0..n)
            .map(|_| HashTable::with_capacity(2 * len / n))
            .collect();
        let mut count = 0;
        for e in entries {
            shards[Self::shard(e.hash)].insert_unique(widen(e.hash), e, table_hash);
            count += 1;
        }
        BigSet { shards, len: count }
    }

    fn shard(hash: u32) -> usize {
        (hash >> (32 - BIG_SHARD_BITS)) as usize
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &Child> {
        self.shards.iter().flat_map(|t| t.iter())
    }

    fn find(&self, hash: u32, mut eq: impl FnMut(NodeId) -> bool) -> Option<NodeId> {
        self.shards[Self::shard(hash)]
            .find(widen(hash), |e| e.hash == hash && eq(e.id))
            .map(|e| e.id)
    }

    /// Adds `id` unless `eq` finds an entry of the same name; whether it did.
    fn insert(&mut self, hash: u32, id: NodeId, mut eq: impl FnMut(NodeId) -> bool) -> bool {
        match self.shards[Self::shard(hash)].entry(
            widen(hash),
            |e| e.hash == hash && eq(e.id),
            table_hash,
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(Child { hash, id });
                self.len += 1;
                true
            }
        }
    }

    fn remove(&mut self, hash: u32, mut eq: impl FnMut(NodeId) -> bool) -> Option<NodeId> {
        let e = self.shards[Self::shard(hash)]
            .find_entry(widen(hash), |e| e.hash == hash && eq(e.id))
            .ok()?;
        self.len -= 1;
        Some(e.remove().0.id)
    }
}

/// Children beyond which a set keeps each name's hash beside its id, so that
/// growing the table (rehashing every entry) never reads the children
/// themselves: the rehash of a parent with 500k children read 500k scattered
/// nodes under the write lock, a 100 ms stall of every write. Below it a
/// rehash reads at most this many nodes (< 1 ms) and the set stays 4 bytes a
/// child (1000 parents of 1000 children: 8 MB less).
const BIG_CHILDREN: usize = 4096;

/// An entry of a [`ChildSet::Big`]: the id and 32 bits of its name's hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child {
    hash: u32,
    id: NodeId,
}

/// The table hash of an entry: its 32 bits spread over 64 (hashbrown takes
/// the bucket from the low bits and the tag from the top 7).
fn widen(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn table_hash(e: &Child) -> u64 {
    widen(e.hash)
}

impl Default for ChildSet {
    fn default() -> Self {
        ChildSet::Inline(SmallVec::new())
    }
}

impl ChildSet {
    pub(crate) fn len(&self) -> usize {
        match self {
            ChildSet::Inline(v) => v.len(),
            ChildSet::Table(t) => t.len(),
            ChildSet::Big(t) => t.len(),
        }
    }
    pub(crate) fn ids(&self) -> Vec<NodeId> {
        match self {
            ChildSet::Inline(v) => v.to_vec(),
            ChildSet::Table(t) => t.iter().copied().collect(),
            ChildSet::Big(t) => t.iter().map(|e| e.id).collect(),
        }
    }
}

/// One znode's slot: 16 bytes. Its name, ACL reference, data and persisted
/// stat live in one arena block (see [`pack`]); a parent's child set lives in
/// [`State`]'s table of child sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    block: Block,
    parent: NodeId,
    /// 0 for a leaf, else 1 + the index of its child set.
    kids: u32,
    /// The node's share of the tree digest (`digest::node_digest` of its
    /// path, data and stat), kept so that a change subtracts it without
    /// reading the old data through the CRC again (4 bytes a znode; a
    /// setData's CRC work on a leader went from four passes to two).
    digest: u32,
}

/// A live node as read: its block, parent and child set.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    bytes: &'a [u8],
    pub(crate) parent: NodeId,
    kids: Option<&'a ChildSet>,
    bases: Bases,
    /// The block's header, parsed once.
    h: Head,
}

/// Longest encoded stat: the mask byte and nine 10-byte varints.
const MAX_STAT: usize = 1 + 9 * 10;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_uvarint(out: &mut [u8], o: &mut usize, mut u: u64) {
    loop {
        let b = (u & 0x7f) as u8;
        u >>= 7;
        if u == 0 {
            out[*o] = b;
            *o += 1;
            return;
        }
        out[*o] = b | 0x80;
        *o += 1;
    }
}

fn uvarint_len(u: u64) -> usize {
    (64 - (u | 1).leading_zeros() as usize).div_ceil(7)
}

fn get_uvarint(b: &[u8], o: &mut usize) -> u64 {
    // Most lengths and ACL references fit one byte.
    if let Some(&x) = b.get(*o)
        && x < 0x80
    {
        *o += 1;
        return u64::from(x);
    }
    let mut u = 0u64;
    let mut shift = 0;
    while let Some(&x) = b.get(*o) {
        *o += 1;
        if shift < 64 {
            u |= u64::from(x & 0x7f) << shift;
        }
        shift += 7;
        if x & 0x80 == 0 {
            break;
        }
    }
    u
}

fn put_varint(out: &mut [u8], o: &mut usize, v: i64) {
    put_uvarint(out, o, zigzag(v));
}

fn get_varint(b: &[u8], o: &mut usize) -> i64 {
    unzigzag(get_uvarint(b, o))
}

/// What a tree's stats are encoded against: ctime is stored as its
/// difference from the wall clock when the state was made (a 2026 timestamp
/// takes 6 varint bytes; one from the last 8 minutes 3, the last 18 hours 4,
/// the last 199 days 5). Fixed for the state's lifetime; a node loaded from a
/// snapshot is re-encoded against the new state's base.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bases {
    time: i64,
}

impl Bases {
    fn now() -> Bases {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Bases { time: ms }
    }
}

/// The stat mask bit saying the node's data is null.
const NULL_DATA: u8 = 0x80;

/// Encodes a stat in a few bytes: a mask byte, czxid and ctime as zigzag
/// varints (ctime as its difference from `bases`), then only the fields that
/// differ from what a fresh node has (mzxid and pzxid = czxid, mtime = ctime,
/// versions and owner 0), as zigzag varints of the difference. A
/// never-modified znode takes 7-13 bytes instead of 60. The mask's top bit is
/// left for [`NULL_DATA`].
fn encode_stat(s: &StatPersisted, bases: Bases, out: &mut [u8; MAX_STAT]) -> usize {
    let mut o = 1;
    let mut mask = 0u8;
    put_varint(out, &mut o, s.czxid);
    put_varint(out, &mut o, s.ctime.wrapping_sub(bases.time));
    let rest = [
        s.mzxid.wrapping_sub(s.czxid),
        s.pzxid.wrapping_sub(s.czxid),
        s.mtime.wrapping_sub(s.ctime),
        i64::from(s.version),
        i64::from(s.cversion),
        i64::from(s.aversion),
        s.ephemeral_owner,
    ];
    for (i, v) in rest.into_iter().enumerate() {
        if v != 0 {
            mask |= 1 << i;
            put_varint(out, &mut o, v);
        }
    }
    out[0] = mask;
    o
}

/// Decodes a stat at the start of `b`; the stat and its encoded length.
fn decode_stat(b: &[u8], bases: Bases) -> (StatPersisted, usize) {
    let mask = b.first().copied().unwrap_or(0);
    let mut o = 1;
    let czxid = get_varint(b, &mut o);
    let ctime = get_varint(b, &mut o).wrapping_add(bases.time);
    let mut rest = [0i64; 7];
    for (i, r) in rest.iter_mut().enumerate() {
        if mask & (1 << i) != 0 {
            *r = get_varint(b, &mut o);
        }
    }
    let s = StatPersisted {
        czxid,
        mzxid: czxid.wrapping_add(rest[0]),
        ctime,
        mtime: ctime.wrapping_add(rest[2]),
        version: rest[3] as i32,
        cversion: rest[4] as i32,
        aversion: rest[5] as i32,
        ephemeral_owner: rest[6],
        pzxid: czxid.wrapping_add(rest[1]),
    };
    (s, o)
}

/// The length of the stat encoded at the start of `b` (skips its varints).
fn stat_len(b: &[u8]) -> usize {
    let mask = b.first().copied().unwrap_or(0);
    let fields = 2 + (mask & !NULL_DATA).count_ones() as usize;
    // Fast path: the varints end within the 16 bytes after the mask (a
    // fresh node's two take 6-9): find the `fields`-th byte with its top
    // bit clear in one 128-bit word.
    if let Some(chunk) = b.get(1..17) {
        let w = u128::from_le_bytes(chunk.try_into().expect("16 bytes"));
        let mut ends = !w & 0x8080_8080_8080_8080_8080_8080_8080_8080;
        for _ in 1..fields {
            ends &= ends.wrapping_sub(1);
        }
        if ends != 0 {
            return 2 + ends.trailing_zeros() as usize / 8;
        }
    }
    let mut o = 1;
    for _ in 0..fields {
        while b.get(o).is_some_and(|&x| x & 0x80 != 0) {
            o += 1;
        }
        o += 1;
    }
    o
}

/// Where the parts of a block are. A block is
/// `[name length * 4 + data length % 4][name][ACL reference][stat][data]`,
/// the numbers unsigned LEB128 varints, the stat's mask byte carrying
/// [`NULL_DATA`]; the data runs to the block's end but for the 0-3 bytes of
/// rounding that its length modulo 4 tells apart. The name comes first, as
/// child lookups read nothing else.
#[derive(Clone, Copy)]
struct Head {
    acl: u32,
    null: bool,
    /// Offset of the stat (its mask byte).
    stat_at: usize,
    data_start: usize,
    data_len: usize,
}

fn head(b: &[u8]) -> Head {
    let mut o = 0;
    let first = get_uvarint(b, &mut o);
    o += (first >> 2) as usize;
    let acl = get_uvarint(b, &mut o) as u32;
    let stat_at = o;
    let data_start = stat_at + stat_len(&b[stat_at.min(b.len())..]);
    // The largest length that fits and has the recorded remainder.
    let room = b.len().saturating_sub(data_start);
    let data_len = room.saturating_sub(room.wrapping_sub(first as usize) & 3);
    Head {
        acl,
        null: b.get(stat_at).is_some_and(|&m| m & NULL_DATA != 0),
        stat_at,
        data_start,
        data_len,
    }
}

/// The name in a block.
fn block_name(b: &[u8]) -> &[u8] {
    let mut o = 0;
    let n = (get_uvarint(b, &mut o) >> 2) as usize;
    &b[o..o + n]
}

/// Writes a node's block into `arena`.
fn pack(
    arena: &mut Arena,
    bases: Bases,
    name: &[u8],
    acl: u32,
    data: Option<&[u8]>,
    stat: &StatPersisted,
) -> Block {
    let mut enc = [0u8; MAX_STAT];
    let sl = encode_stat(stat, bases, &mut enc);
    if data.is_none() {
        enc[0] |= NULL_DATA;
    }
    let d = data.unwrap_or(&[]);
    let first = ((name.len() as u64) << 2) | (d.len() as u64 & 3);
    let len = uvarint_len(first) + name.len() + uvarint_len(u64::from(acl)) + sl + d.len();
    let (block, mem) = arena.alloc(len);
    let mut o = 0;
    put_uvarint(mem, &mut o, first);
    mem[o..o + name.len()].copy_from_slice(name);
    o += name.len();
    put_uvarint(mem, &mut o, u64::from(acl));
    mem[o..o + sl].copy_from_slice(&enc[..sl]);
    o += sl;
    mem[o..].copy_from_slice(d);
    block
}

/// A block's parts, copied out (to re-pack a node from its own block).
struct Parts {
    name: SmallVec<[u8; 32]>,
    acl: u32,
    data: Option<Vec<u8>>,
    stat: StatPersisted,
}

impl<'a> NodeRef<'a> {
    /// The name's bytes (compare and hash these: no UTF-8 check).
    pub(crate) fn name_bytes(&self) -> &'a [u8] {
        block_name(self.bytes)
    }

    /// The name (`""` for the root).
    pub(crate) fn name(&self) -> &'a str {
        // Always built from a &str.
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The ACL reference (into the state's ACL cache).
    pub(crate) fn acl(&self) -> u32 {
        self.h.acl
    }

    /// The persisted stat.
    pub(crate) fn stat(&self) -> StatPersisted {
        decode_stat(&self.bytes[self.h.stat_at..], self.bases).0
    }

    /// The data; `None` is null (kept apart from empty).
    pub(crate) fn data(&self) -> Option<&'a [u8]> {
        let h = &self.h;
        (!h.null).then(|| &self.bytes[h.data_start..h.data_start + h.data_len])
    }

    /// Length of the data (0 when null).
    pub(crate) fn data_len(&self) -> usize {
        self.h.data_len
    }

    fn parts(&self) -> Parts {
        Parts {
            name: SmallVec::from_slice(self.name_bytes()),
            acl: self.acl(),
            data: self.data().map(<[u8]>::to_vec),
            stat: self.stat(),
        }
    }

    pub(crate) fn children_len(&self) -> usize {
        self.kids.map_or(0, ChildSet::len)
    }

    /// Calls `f` with each child's id (no allocation).
    pub(crate) fn for_each_child(&self, mut f: impl FnMut(NodeId)) {
        match self.kids {
            None => {}
            Some(ChildSet::Inline(v)) => v.iter().for_each(|&c| f(c)),
            Some(ChildSet::Table(t)) => t.iter().for_each(|&c| f(c)),
            Some(ChildSet::Big(t)) => t.iter().for_each(|e| f(e.id)),
        }
    }

    /// How many parts [`NodeRef::for_each_child_in_part`] splits the children
    /// into: the shards of a big set, else 1.
    pub(crate) fn child_parts(&self) -> usize {
        match self.kids {
            Some(ChildSet::Big(t)) => t.shards.len(),
            _ => 1,
        }
    }

    /// Calls `f` with each child's id in part `k` (see [`NodeRef::child_parts`]).
    pub(crate) fn for_each_child_in_part(&self, k: usize, mut f: impl FnMut(NodeId)) {
        match self.kids {
            Some(ChildSet::Big(t)) => {
                if let Some(s) = t.shards.get(k) {
                    s.iter().for_each(|e| f(e.id));
                }
            }
            _ if k == 0 => self.for_each_child(f),
            _ => {}
        }
    }

    pub(crate) fn child_ids(&self) -> Vec<NodeId> {
        self.kids.map_or_else(Vec::new, ChildSet::ids)
    }

    pub(crate) fn client_stat(&self, extended: OwnerTypes) -> Stat {
        client_stat_of(
            &self.stat(),
            self.children_len() as i32,
            self.data_len() as i32,
            extended,
        )
    }
}

/// What [`State::replace_data`] read of the node and wrote.
pub(crate) struct Replaced {
    /// The old data's length.
    old_len: i64,
    acl: u32,
    children: i32,
    /// The new persisted stat.
    stat: StatPersisted,
}

/// The stat a client sees of a node with persisted stat `s`, `n` children
/// and `data_len` bytes of data.
fn client_stat_of(s: &StatPersisted, n: i32, data_len: i32, extended: OwnerTypes) -> Stat {
    let owner = match EphemeralType::of(s.ephemeral_owner, extended) {
        EphemeralType::Normal | EphemeralType::Void => s.ephemeral_owner,
        _ => 0,
    };
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        // ZooKeeper stores the number of creates; clients see creates + deletes.
        cversion: s.cversion.wrapping_mul(2).wrapping_sub(n),
        aversion: s.aversion,
        ephemeral_owner: owner,
        data_length: data_len,
        num_children: n,
        pzxid: s.pzxid,
    }
}

/// A trigger for the watch manager, in the order ZooKeeper fires them.
#[derive(Debug, Clone)]
pub(crate) enum Trigger {
    /// dataWatches.triggerWatch(path, type, acl of the node)
    Data(String, EventType, Arc<[Acl]>),
    /// childWatches.triggerWatch(path, type), suppressing the watchers the
    /// preceding data trigger reached when `suppress` is set.
    Child(String, EventType, bool, Arc<[Acl]>),
}

/// The triggers of one apply, in order; nothing is recorded (no path
/// copied, no ACL looked up) while no watch is set anywhere, which the
/// caller checks under the tree's write lock (every watch is added under
/// the tree's lock, so none can appear during the apply).
#[derive(Debug, Default)]
pub(crate) struct Triggers {
    /// Whether triggers are recorded.
    on: bool,
    pub(crate) list: Vec<Trigger>,
}

impl Triggers {
    /// A collector that records (`on`) or ignores every trigger.
    pub(crate) fn new(on: bool) -> Triggers {
        Triggers {
            on,
            list: Vec::new(),
        }
    }

    /// dataWatches.triggerWatch(`path`, `ty`) with the node's ACL `acl`.
    fn data(&mut self, path: &str, ty: EventType, acl: impl FnOnce() -> Arc<[Acl]>) {
        if self.on {
            self.list.push(Trigger::Data(path.to_string(), ty, acl()));
        }
    }

    /// childWatches.triggerWatch(`path`, `ty`), see [`Trigger::Child`].
    fn child(
        &mut self,
        path: &str,
        ty: EventType,
        suppress: bool,
        acl: impl FnOnce() -> Arc<[Acl]>,
    ) {
        if self.on {
            self.list
                .push(Trigger::Child(path.to_string(), ty, suppress, acl()));
        }
    }
}

const SLAB_CHUNK_BITS: u32 = 16;
const SLAB_CHUNK: usize = 1 << SLAB_CHUNK_BITS;

/// The node slots, in chunks of 65536 that never move: one `Vec` that
/// doubled copied every slot (and faulted in the new pages) under the write
/// lock — an apply of 60-120 ms when it passed 1M and 2M nodes. Growing now
/// allocates one chunk; a chunk emptied by `pop` is kept for the next push.
#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, slot: T) {
        let c = self.len >> SLAB_CHUNK_BITS;
        if c == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
        }
        self.chunks[c].push(slot);
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        self.chunks[last >> SLAB_CHUNK_BITS].pop()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks
            .get(i >> SLAB_CHUNK_BITS)?
            .get(i & (SLAB_CHUNK - 1))
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> SLAB_CHUNK_BITS][i & (SLAB_CHUNK - 1)]
    }
}

impl<T> std::ops::IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> SLAB_CHUNK_BITS][i & (SLAB_CHUNK - 1)]
    }
}

/// Everything the applier mutates.
/// Every how many zxids the digest log keeps the tree digest (Apache's
/// `DataTree.DIGEST_LOG_INTERVAL`).
pub const DIGEST_LOG_INTERVAL: i64 = 128;
/// How many entries the digest log keeps (`DataTree.DIGEST_LOG_LIMIT`).
pub const DIGEST_LOG_LIMIT: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) slots: Slab<Option<Node>>,
    free: Vec<NodeId>,
    /// The nodes' blocks (name, ACL reference, stat, data).
    blocks: Arena,
    bases: Bases,
    /// Child sets of the nodes that have children; `Node::kids` indexes it.
    kids: Vec<Option<ChildSet>>,
    spare_kids: Vec<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    pub(crate) acls: AclCache,
    pub(crate) sessions: HashMap<i64, i32>,
    pub(crate) ephemerals: HashMap<i64, HashSet<NodeId>>,
    pub(crate) containers: HashSet<NodeId>,
    pub(crate) ttls: HashSet<NodeId>,
    pub(crate) node_count: usize,
    pub(crate) data_size: i64,
    pub(crate) digest: i64,
    /// (zxid, digest) after every txn whose zxid is a multiple of
    /// [`DIGEST_LOG_INTERVAL`], the newest [`DIGEST_LOG_LIMIT`] (Apache's
    /// `DataTree.digestLog`, printed by `hash`).
    pub(crate) digest_log: std::collections::VecDeque<(i64, i64)>,
    pub(crate) last_zxid: i64,
    pub(crate) extended: OwnerTypes,
    /// Bumped whenever a live node is freed (its id may then be reused): the
    /// snapshot writer trusts ids it took under an earlier read lock only
    /// while this is unchanged.
    pub(crate) free_epoch: u64,
    /// The highest czxid of any node ever inserted. Ahead of `last_zxid`
    /// only in a tree loaded from a fuzzy snapshot whose log ended before
    /// the txns the snapshot caught (Apache keeps such nodes; so do we).
    pub(crate) czxid_high: i64,
    /// The paths with a quota (not in snapshots: rebuilt at load).
    pub(crate) quotas: QuotaPaths,
    /// Bytes written per namespace (`write_per_namespace`).
    pub(crate) writes: NamespaceMap,
}

impl State {
    /// A tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub(crate) fn new(config: &TreeConfig) -> State {
        let mut s = State::empty(config);
        // As ZooKeeper: empty (not null) data, zero stats, world:anyone ALL.
        let empty = || Some(&[][..]);
        let open = s.acls.intern(&open_acl_unsafe());
        s.insert_root(empty(), open, new_stat(0, 0, 0));
        s.acls.intern(&open_acl_unsafe());
        let zk = s.insert_child(ROOT, "zookeeper", empty(), open, new_stat(0, 0, 0));
        s.acls.intern(&open_acl_unsafe());
        s.insert_child(zk, "quota", empty(), open, new_stat(0, 0, 0));
        let ro = s.acls.intern(&read_acl_unsafe());
        let mut cs = new_stat(0, 0, 0);
        cs.aversion = -1;
        s.insert_child(zk, "config", Some(&[][..]), ro, cs);
        s
    }

    pub(crate) fn empty(config: &TreeConfig) -> State {
        State {
            slots: Slab::default(),
            free: Vec::new(),
            blocks: Arena::default(),
            bases: Bases::now(),
            kids: Vec::new(),
            spare_kids: Vec::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            acls: AclCache::default(),
            sessions: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            node_count: 0,
            data_size: 0,
            digest: 0,
            digest_log: std::collections::VecDeque::new(),
            last_zxid: 0,
            extended: OwnerTypes::of(config),
            free_epoch: 0,
            czxid_high: 0,
            quotas: QuotaPaths::default(),
            writes: NamespaceMap::default(),
        }
    }

    pub(crate) fn insert_root(&mut self, data: Option<&[u8]>, acl: u32, stat: StatPersisted) {
        let digest = node_digest("/", data, &stat);
        // ZooKeeper counts the root under its alias "/" too (path length 1).
        self.data_size += 1 + data.map_or(0, |d| d.len() as i64);
        let node = self.new_node(b"", acl, data, &stat, NONE);
        if self.slots.is_empty() {
            self.slots.push(Some(node));
        } else if let Some(old) = self.slots[0].replace(node) {
            self.blocks.free(old.block);
            self.drop_kids(old.kids);
        }
        self.set_node_digest(ROOT, digest);
        self.node_count += 1;
    }

    fn new_node(
        &mut self,
        name: &[u8],
        acl: u32,
        data: Option<&[u8]>,
        stat: &StatPersisted,
        parent: NodeId,
    ) -> Node {
        self.czxid_high = self.czxid_high.max(stat.czxid);
        Node {
            block: pack(&mut self.blocks, self.bases, name, acl, data, stat),
            parent,
            kids: 0,
            digest: 0,
        }
    }

    #[inline]
    fn view(&self, n: &Node) -> NodeRef<'_> {
        let bytes = self.blocks.get(n.block);
        NodeRef {
            bytes,
            parent: n.parent,
            kids: self.kid_set(n.kids),
            bases: self.bases,
            h: head(bytes),
        }
    }

    /// A live node's name (child lookups: reads nothing else).
    #[inline]
    fn name_of(&self, id: NodeId) -> &[u8] {
        block_name(self.blocks.get(self.slot(id).block))
    }

    #[inline]
    fn kid_set(&self, k: u32) -> Option<&ChildSet> {
        let i = (k as usize).checked_sub(1)?;
        self.kids.get(i)?.as_ref()
    }

    /// A live node.
    #[inline]
    pub(crate) fn node(&self, id: NodeId) -> NodeRef<'_> {
        self.try_node(id).expect("live node id")
    }

    /// Node `id`, if it is live.
    #[inline]
    pub(crate) fn try_node(&self, id: NodeId) -> Option<NodeRef<'_>> {
        let n = self.slots.get(id as usize)?.as_ref()?;
        Some(self.view(n))
    }

    #[inline]
    fn slot(&self, id: NodeId) -> Node {
        self.slots[id as usize].expect("live node id")
    }

    /// Replaces node `id`'s block by one of these parts.
    fn repack(&mut self, id: NodeId, p: &Parts) {
        self.pack_into(id, &p.name, p.acl, p.data.as_deref(), &p.stat);
    }

    /// Gives node `id` a new block of these parts and frees its old one.
    fn pack_into(
        &mut self,
        id: NodeId,
        name: &[u8],
        acl: u32,
        data: Option<&[u8]>,
        stat: &StatPersisted,
    ) {
        let b = pack(&mut self.blocks, self.bases, name, acl, data, stat);
        let n = self.slots[id as usize].as_mut().expect("live node id");
        let old = std::mem::replace(&mut n.block, b);
        self.blocks.free(old);
    }

    /// Changes a node's stat: in place when its encoding keeps its length (a
    /// parent's pzxid/cversion on every child create or delete: no copy of
    /// the parent's data), else by re-packing its block. Returns the new stat.
    fn update_stat(&mut self, id: NodeId, f: impl FnOnce(&mut StatPersisted)) -> StatPersisted {
        let block = self.slot(id).block;
        let bytes = self.blocks.get(block);
        let at = head(bytes).stat_at;
        let (mut s, old_len) = decode_stat(&bytes[at..], self.bases);
        let null = bytes[at] & NULL_DATA;
        f(&mut s);
        let mut enc = [0u8; MAX_STAT];
        let sl = encode_stat(&s, self.bases, &mut enc);
        if sl == old_len {
            enc[0] |= null;
            self.blocks.get_mut(block)[at..at + sl].copy_from_slice(&enc[..sl]);
            return s;
        }
        let mut p = self.node(id).parts();
        p.stat = s;
        self.repack(id, &p);
        s
    }

    /// Points node `id` at ACL reference `acl`; the one it had.
    fn set_node_acl(&mut self, id: NodeId, acl: u32) -> u32 {
        let mut p = self.node(id).parts();
        let old = std::mem::replace(&mut p.acl, acl);
        if old != acl {
            self.repack(id, &p);
        }
        old
    }

    /// The tree digest after a node's share went from `old` to `new`.
    fn swap_digest(&mut self, old: u32, new: u32) {
        self.digest = self
            .digest
            .wrapping_sub(i64::from(old))
            .wrapping_add(i64::from(new));
    }

    /// Node `id`'s share of the tree digest, `new`, replacing the one it had.
    fn set_node_digest(&mut self, id: NodeId, new: u32) {
        let n = self.slots[id as usize].as_mut().expect("live node id");
        let old = std::mem::replace(&mut n.digest, new);
        self.swap_digest(old, new);
    }

    /// Node `id`'s share of the tree digest.
    pub(crate) fn node_digest_of(&self, id: NodeId) -> u32 {
        self.slot(id).digest
    }

    /// [`State::update_stat`] and the digest with it: the node's path and
    /// data go through the CRC once, for the new digest.
    fn change_stat(&mut self, id: NodeId, path: &str, f: impl FnOnce(&mut StatPersisted)) {
        let prefix = DigestPrefix::new(path, self.node(id).data());
        let stat = self.update_stat(id, f);
        self.set_node_digest(id, prefix.with_stat(&stat));
    }

    /// Takes node `id`'s child set out of the table (put it back with
    /// [`State::put_kids`]).
    fn take_kids(&mut self, id: NodeId) -> Option<ChildSet> {
        let k = (self.slot(id).kids as usize).checked_sub(1)?;
        self.kids[k].take()
    }

    /// Stores node `id`'s child set (`None`: it has no children).
    fn put_kids(&mut self, id: NodeId, set: Option<ChildSet>) {
        let k = self.slot(id).kids;
        let new_k = match (k, set) {
            (0, None) => 0,
            (0, Some(s)) => match self.spare_kids.pop() {
                Some(i) => {
                    self.kids[i as usize] = Some(s);
                    i + 1
                }
                None => {
                    self.kids.push(Some(s));
                    self.kids.len() as u32
                }
            },
            (k, Some(s)) => {
                self.kids[k as usize - 1] = Some(s);
                k
            }
            (k, None) => {
                self.drop_kids(k);
                0
            }
        };
        if let Some(n) = self.slots[id as usize].as_mut() {
            n.kids = new_k;
        }
    }

    fn drop_kids(&mut self, k: u32) {
        if let Some(i) = k.checked_sub(1) {
            self.kids[i as usize] = None;
            self.spare_kids.push(i);
        }
    }

    /// 32 bits of the hash of a child's name (see [`Child`]).
    fn hash_name(&self, name: &[u8]) -> u32 {
        (self.hasher.hash_one(name) >> 32) as u32
    }

    /// The child of `parent` called `name`.
    pub(crate) fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let name = name.as_bytes();
        // The parent's slot only: its block (a header parse) is not needed.
        match self.kid_set(self.slot(parent).kids)? {
            ChildSet::Inline(v) => v.iter().copied().find(|&c| self.name_of(c) == name),
            ChildSet::Table(t) => {
                let h = self.hash_name(name);
                t.find(widen(h), |&c| self.name_of(c) == name).copied()
            }
            ChildSet::Big(t) => {
                let h = self.hash_name(name);
                t.find(h, |c| self.name_of(c) == name)
            }
        }
    }

    /// The child of `parent` whose name hashes as `name` does, without
    /// reading any child's name: a guess for [`State::warm`] (usually the
    /// child itself, or none in an inline set, whose names are compared).
    fn child_by_hash(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        match self.kid_set(self.slot(parent).kids)? {
            ChildSet::Inline(_) => None,
            ChildSet::Table(t) => t.find(widen(self.hash_name(name)), |_| true).copied(),
            ChildSet::Big(t) => t.find(self.hash_name(name), |_| true),
        }
    }

    /// Reads, for each of `paths`, what looking it up reads — its parent's
    /// child-set entry, its slot, its block — in stages over all of them
    /// (every entry, then every slot, then every block), so that the cache
    /// misses of different paths overlap. A batch of committed txns applied
    /// after this finds its nodes in the cache: one look-up at a time,
    /// each a chain of dependent misses, was a tenth of a loaded follower's
    /// CPU. Only a hint: a path that does not resolve is skipped, and a
    /// wrong guess only costs the reads. Returns how many blocks it read.
    pub(crate) fn warm<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> usize {
        let mut ids: SmallVec<[NodeId; 64]> = SmallVec::new();
        let mut last_parent: Option<(&str, NodeId)> = None;
        for path in paths {
            let Some((parent, name)) = path.rsplit_once('/') else {
                continue;
            };
            let pid = match last_parent {
                Some((p, id)) if p == parent => id,
                _ => match self.lookup(parent) {
                    Some(id) => {
                        last_parent = Some((parent, id));
                        id
                    }
                    None => continue,
                },
            };
            ids.extend(self.child_by_hash(pid, name.as_bytes()));
        }
        self.warm_ids(ids)
    }

    /// The last two stages of [`State::warm`] for nodes known by id: every
    /// slot, then every block (ids that are not live nodes are skipped).
    /// Returns how many blocks it read.
    pub(crate) fn warm_ids(&self, ids: impl IntoIterator<Item = NodeId>) -> usize {
        let blocks: SmallVec<[Block; 64]> = ids
            .into_iter()
            .filter_map(|id| self.slots.get(id as usize).copied().flatten())
            .map(|n| n.block)
            .collect();
        let read = blocks.iter().fold(0u8, |acc, &b| {
            acc ^ self.blocks.get(b).first().copied().unwrap_or(0)
        });
        std::hint::black_box(read);
        blocks.len()
    }

    /// The table hash of child `c` (reads its name).
    fn child_hash(&self, c: NodeId) -> u64 {
        widen(self.hash_name(self.name_of(c)))
    }

    /// Resolves a path; `""` and `"/"` are the root. Anything that is not an
    /// existing node's path (including malformed ones) is `None`.
    pub(crate) fn lookup(&self, path: &str) -> Option<NodeId> {
        if path.is_empty() || path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut cur = ROOT;
        for comp in rest.split('/') {
            cur = self.child(cur, comp)?;
        }
        Some(cur)
    }

    /// The full path of a node.
    pub(crate) fn path_of(&self, id: NodeId) -> String {
        if id == ROOT {
            return "/".into();
        }
        let mut names = Vec::new();
        let mut cur = id;
        while cur != ROOT && cur != NONE {
            let n = self.node(cur);
            names.push(n.name());
            cur = n.parent;
        }
        let mut p = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for n in names.iter().rev() {
            p.push('/');
            p.push_str(n);
        }
        p
    }

    pub(crate) fn child_names(&self, id: NodeId) -> Vec<String> {
        self.node(id)
            .child_ids()
            .into_iter()
            .map(|c| self.node(c).name().to_string())
            .collect()
    }

    /// Links `child` (already in the slab, called `name`) under `parent`;
    /// `false` (nothing changed) if `parent` already has a child of that name.
    fn add_child_link(&mut self, parent: NodeId, child: NodeId, name: &[u8]) -> bool {
        let h = self.hash_name(name);
        let mut set = self.take_kids(parent);
        let added = match set.as_mut() {
            None => {
                let mut v = SmallVec::new();
                v.push(child);
                set = Some(ChildSet::Inline(v));
                true
            }
            Some(ChildSet::Inline(v)) => {
                if v.iter().any(|&c| self.name_of(c) == name) {
                    false
                } else if v.len() < TO_TABLE {
                    v.push(child);
                    true
                } else {
                    let mut t = HashTable::with_capacity(v.len() * 2);
                    for &c in v.iter() {
                        t.insert_unique(self.child_hash(c), c, |&x| self.child_hash(x));
                    }
                    t.insert_unique(widen(h), child, |&x| self.child_hash(x));
                    set = Some(ChildSet::Table(Box::new(t)));
                    true
                }
            }
            Some(ChildSet::Table(t)) => {
                if t.find(widen(h), |&c| self.name_of(c) == name).is_some() {
                    false
                } else if t.len() < BIG_CHILDREN {
                    t.insert_unique(widen(h), child, |&x| self.child_hash(x));
                    true
                } else {
                    let entries = t.iter().map(|&c| Child {
                        hash: self.hash_name(self.name_of(c)),
                        id: c,
                    });
                    let all = entries.chain(std::iter::once(Child { hash: h, id: child }));
                    let big = BigSet::new(all, t.len() + 1);
                    set = Some(ChildSet::Big(Box::new(big)));
                    true
                }
            }
            Some(ChildSet::Big(t)) => t.insert(h, child, |c| self.name_of(c) == name),
        };
        self.put_kids(parent, set);
        added
    }

    fn remove_child_link(&mut self, parent: NodeId, name: &str) -> Option<NodeId> {
        let name = name.as_bytes();
        let h = self.hash_name(name);
        let mut set = self.take_kids(parent);
        let found = match set.as_mut() {
            None => None,
            Some(ChildSet::Inline(v)) => {
                let pos = v.iter().position(|&c| self.name_of(c) == name);
                pos.map(|p| v.remove(p))
            }
            Some(ChildSet::Table(t)) => {
                match t.find_entry(widen(h), |&c| self.name_of(c) == name) {
                    Ok(e) => Some(e.remove().0),
                    Err(_) => None,
                }
            }
            Some(ChildSet::Big(t)) => t.remove(h, |c| self.name_of(c) == name),
        };
        match set.as_ref() {
            Some(ChildSet::Table(t)) if t.len() <= INLINE_CHILDREN => {
                set = Some(ChildSet::Inline(t.iter().copied().collect()));
            }
            Some(ChildSet::Big(t)) if t.len() <= INLINE_CHILDREN => {
                set = Some(ChildSet::Inline(t.iter().map(|e| e.id).collect()));
            }
            Some(ChildSet::Inline(v)) if v.is_empty() => set = None,
            _ => {}
        }
        self.put_kids(parent, set);
        found
    }

    /// Inserts a node under `parent` (no checks, no parent stat change).
    pub(crate) fn insert_child(
        &mut self,
        parent: NodeId,
        name: &str,
        data: Option<&[u8]>,
        acl: u32,
        stat: StatPersisted,
    ) -> NodeId {
        self.insert_child_at(parent, name, None, data, acl, stat)
            .expect("new child name")
    }

    /// [`State::insert_child`] with the node's full path when the caller has
    /// it; `None` (nothing changed) if `parent` already has a child `name`.
    pub(crate) fn insert_child_at(
        &mut self,
        parent: NodeId,
        name: &str,
        path: Option<&str>,
        data: Option<&[u8]>,
        acl: u32,
        stat: StatPersisted,
    ) -> Option<NodeId> {
        let node = self.new_node(name.as_bytes(), acl, data, &stat, parent);
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(node);
                id
            }
            None => {
                self.slots.push(Some(node));
                (self.slots.len() - 1) as NodeId
            }
        };
        if !self.add_child_link(parent, id, name.as_bytes()) {
            self.blocks.free(node.block);
            self.slots[id as usize] = None;
            if id as usize == self.slots.len() - 1 {
                self.slots.pop();
            } else {
                self.free.push(id);
            }
            return None;
        }
        let owned;
        let path = match path {
            Some(p) => p,
            None => {
                owned = self.path_of(id);
                &owned
            }
        };
        let n = self.node(id);
        let d = node_digest(path, n.data(), &stat);
        let size = path.len() as i64 + n.data_len() as i64;
        let owner = stat.ephemeral_owner;
        self.set_node_digest(id, d);
        self.data_size += size;
        self.node_count += 1;
        match EphemeralType::of(owner, self.extended) {
            EphemeralType::Container => {
                self.containers.insert(id);
            }
            EphemeralType::Ttl => {
                self.ttls.insert(id);
            }
            EphemeralType::Normal => {
                self.ephemerals.entry(owner).or_default().insert(id);
            }
            EphemeralType::Void => {}
        }
        Some(id)
    }

    /// Frees a node already unlinked from its parent, and (only possible
    /// while replaying over a fuzzy snapshot) its descendants.
    fn free_subtree(&mut self, id: NodeId, path: &str) {
        let ids = self.node(id).child_ids();
        for c in ids {
            let cp = format!("{}/{}", path, self.node(c).name());
            self.free_subtree(c, &cp);
        }
        let Some(n) = self.try_node(id) else {
            return;
        };
        let (acl, data_len, owner) = (n.acl(), n.data_len(), n.stat().ephemeral_owner);
        let slot = self.slot(id);
        let d = slot.digest;
        self.slots[id as usize] = None;
        self.blocks.free(slot.block);
        self.drop_kids(slot.kids);
        self.free_epoch += 1;
        self.free.push(id);
        self.acls.release(acl);
        self.digest = self.digest.wrapping_sub(i64::from(d));
        self.data_size -= path.len() as i64 + data_len as i64;
        self.node_count -= 1;
        match EphemeralType::of(owner, self.extended) {
            EphemeralType::Container => {
                self.containers.remove(&id);
            }
            EphemeralType::Ttl => {
                self.ttls.remove(&id);
            }
            EphemeralType::Normal => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            EphemeralType::Void => {}
        }
    }

    /// `DataTree.createNode`.
    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        trig: &mut Triggers,
    ) -> Result<Stat, ErrorCode> {
        let (parent_path, name) = split_node(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let a = self.acls.intern(acl);
        // The insert finds an existing child itself (the child set is
        // searched once, not checked first and searched again).
        let Some(id) = self.insert_child_at(
            parent,
            name,
            Some(path),
            data,
            a,
            new_stat(zxid, time, owner),
        ) else {
            // Replay over a fuzzy snapshot: ZooKeeper still takes the txn's
            // ACL, and the parent is left as it is.
            let existing = self.child(parent, name).expect("the insert found it");
            let old = self.set_node_acl(existing, a);
            self.acls.release(old);
            return Err(ErrorCode::NodeExists);
        };
        // The parent's stat after its child set: the digest is a sum, and
        // the stat holds no child count.
        let mut pcv = parent_cversion;
        if pcv == -1 {
            pcv = self.node(parent).stat().cversion.wrapping_add(1);
        }
        let pp = if parent == ROOT { "/" } else { parent_path };
        if pcv > self.node(parent).stat().cversion {
            self.change_stat(parent, pp, |s| {
                s.cversion = pcv;
                s.pzxid = zxid;
            });
        }
        let bytes = data.map_or(0, <[u8]>::len);
        self.quota_after_create(parent_path, name, path, bytes as i64);
        self.writes.add(path, bytes as u64);
        trig.data(path, EventType::NodeCreated, || self.acls.get(a));
        trig.child(
            watch_path(parent_path),
            EventType::NodeChildrenChanged,
            false,
            || self.acls.get(self.node(parent).acl()),
        );
        Ok(self.node(id).client_stat(self.extended))
    }

    /// `DataTree.deleteNode`.
    fn delete_node(&mut self, path: &str, zxid: i64, trig: &mut Triggers) -> Result<(), ErrorCode> {
        let (parent_path, name) = split_node(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let removed = self.remove_child_link(parent, name);
        if zxid > self.node(parent).stat().pzxid {
            let pp = if parent == ROOT { "/" } else { parent_path };
            self.change_stat(parent, pp, |s| s.pzxid = zxid);
        }
        let id = removed.ok_or(ErrorCode::NoNode)?;
        let bytes = self.node(id).data_len() as i64;
        // The ACLs are read before the node is freed.
        let acls = trig.on.then(|| {
            (
                self.acls.get(self.node(id).acl()),
                self.acls.get(self.node(parent).acl()),
            )
        });
        self.free_subtree(id, path);
        self.quota_after_delete(parent_path, name, path, bytes);
        self.writes.add(path, 0);
        if let Some((node_acl, parent_acl)) = acls {
            trig.data(path, EventType::NodeDeleted, || node_acl.clone());
            trig.child(path, EventType::NodeDeleted, true, || node_acl);
            trig.child(
                watch_path(parent_path),
                EventType::NodeChildrenChanged,
                false,
                || parent_acl,
            );
        }
        Ok(())
    }

    /// `DataTree.setData` (also outside any txn: `Tree::set_config`).
    pub(crate) fn set_data_raw(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time: i64,
        trig: &mut Triggers,
    ) -> Result<Stat, ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let p = if id == ROOT { "/" } else { path };
        let r = self.replace_data(id, p, data, |st| {
            st.mtime = time;
            st.mzxid = zxid;
            st.version = version;
        });
        let bytes = data.map_or(0, <[u8]>::len);
        self.quota_after_set_data(path, bytes as i64 - r.old_len);
        self.writes.add(path, bytes as u64);
        trig.data(path, EventType::NodeDataChanged, || self.acls.get(r.acl));
        Ok(client_stat_of(
            &r.stat,
            r.children,
            bytes as i32,
            self.extended,
        ))
    }

    /// Gives node `id` (path `p`) this data and its stat changed by `f`,
    /// keeping the data size and digest. One read of the old block: a
    /// setData's apply read it four times (two stat decodes more).
    pub(crate) fn replace_data(
        &mut self,
        id: NodeId,
        p: &str,
        data: Option<&[u8]>,
        f: impl FnOnce(&mut StatPersisted),
    ) -> Replaced {
        let n = self.node(id);
        let mut stat = n.stat();
        let old_len = n.data_len() as i64;
        let acl = n.acl();
        let children = n.children_len() as i32;
        let name: SmallVec<[u8; 32]> = SmallVec::from_slice(n.name_bytes());
        f(&mut stat);
        self.pack_into(id, &name, acl, data, &stat);
        self.data_size += data.map_or(0, |d| d.len() as i64) - old_len;
        self.set_node_digest(id, node_digest(p, data, &stat));
        Replaced {
            old_len,
            acl,
            children,
            stat,
        }
    }

    /// `DataTree.setACL`.
    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let a = self.acls.intern(acl);
        let p = if id == ROOT { "/" } else { path };
        // One re-pack for the new ACL reference and aversion.
        let mut parts = self.node(id).parts();
        let old = std::mem::replace(&mut parts.acl, a);
        parts.stat.aversion = version;
        self.repack(id, &parts);
        self.acls.release(old);
        self.set_node_digest(id, node_digest(p, parts.data.as_deref(), &parts.stat));
        Ok(self.node(id).client_stat(self.extended))
    }

    /// `DataTree.setCversionPzxid`.
    fn set_cversion_pzxid(
        &mut self,
        path: &str,
        cversion: i32,
        zxid: i64,
    ) -> Result<(), ErrorCode> {
        let path = path.strip_suffix('/').unwrap_or(path);
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let cur = self.node(id).stat().cversion;
        let cv = if cversion == -1 {
            cur.wrapping_add(1)
        } else {
            cversion
        };
        if cv > cur {
            let p = if id == ROOT { "/" } else { path };
            self.change_stat(id, p, |s| {
                s.cversion = cv;
                s.pzxid = zxid;
            });
        }
        Ok(())
    }

    /// Paths of a session's ephemerals, sorted.
    pub(crate) fn ephemeral_paths(&self, session: i64) -> Vec<String> {
        let mut v: Vec<String> = match self.ephemerals.get(&session) {
            Some(set) => set.iter().map(|&id| self.path_of(id)).collect(),
            None => Vec::new(),
        };
        v.sort();
        v
    }

    /// Applies one txn (`DataTree.processTxn`), recording watch triggers.
    pub(crate) fn process(
        &mut self,
        hdr: &TxnHeader,
        body: &TxnBody,
        trig: &mut Triggers,
    ) -> ApplyOutcome {
        let mut out = self.process_one(hdr, body, trig);
        if hdr.zxid > self.last_zxid {
            self.last_zxid = hdr.zxid;
        }
        if hdr.zxid % DIGEST_LOG_INTERVAL == 0 {
            if self.digest_log.len() == DIGEST_LOG_LIMIT {
                self.digest_log.pop_front();
            }
            self.digest_log.push_back((hdr.zxid, self.digest));
        }
        out.zxid = hdr.zxid;
        out
    }

    /// A create of any kind: the node, or NODEEXISTS (replay over a fuzzy
    /// snapshot still moves the parent's cversion/pzxid forward).
    fn process_create(
        &mut self,
        hdr: &TxnHeader,
        body: &TxnBody,
        out: &mut ApplyOutcome,
        trig: &mut Triggers,
    ) -> Result<(), ErrorCode> {
        let z = hdr.zxid;
        let t = hdr.time;
        let (path, data, acl, owner, pcv) = match body {
            TxnBody::Create(c) | TxnBody::Create2(c) => {
                let owner = if c.ephemeral { hdr.client_id } else { 0 };
                (&c.path, &c.data, &c.acl, owner, c.parent_c_version)
            }
            TxnBody::CreateTtl(c) => {
                let owner = ttl_owner(c.ttl).unwrap_or(EXTENDED_MASK);
                (&c.path, &c.data, &c.acl, owner, c.parent_c_version)
            }
            TxnBody::CreateContainer(c) => (
                &c.path,
                &c.data,
                &c.acl,
                CONTAINER_EPHEMERAL_OWNER,
                c.parent_c_version,
            ),
            _ => unreachable!("process_create is given creates only"),
        };
        out.path = Some(path.clone());
        match self.create_node(path, data.as_deref(), acl, owner, pcv, z, t, trig) {
            Ok(s) => {
                out.stat = Some(s);
                Ok(())
            }
            Err(ErrorCode::NodeExists) => {
                // Replay over a fuzzy snapshot met a node created
                // after the snapshot began: ZooKeeper still moves the
                // parent's cversion/pzxid forward (it does so for
                // `create` only; doing it for every create kind
                // keeps replay exact, and only replay gets here).
                let parent = split(path).map_or("", |(p, _)| p);
                match self.set_cversion_pzxid(parent, pcv, z) {
                    Ok(()) => Err(ErrorCode::NodeExists),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A multi: each op in order; once one failed, every op is an error
    /// txn (OK before the failing one, RUNTIMEINCONSISTENCY after), as
    /// ZooKeeper logs a failed multi.
    fn process_multi(
        &mut self,
        hdr: &TxnHeader,
        subs: &[TxnBody],
        out: &mut ApplyOutcome,
        trig: &mut Triggers,
    ) {
        let failed = subs.iter().any(|s| matches!(s, TxnBody::Error(_)));
        let mut post_failed = false;
        for sub in subs {
            let sub_body;
            let body_ref = if matches!(sub, TxnBody::Error(_)) {
                post_failed = true;
                sub
            } else if failed {
                let ec = if post_failed {
                    ErrorCode::RuntimeInconsistency
                } else {
                    ErrorCode::Ok
                };
                sub_body = TxnBody::Error(zk_jute::ErrorTxn { err: ec.code() });
                &sub_body
            } else {
                sub
            };
            let sub_hdr = TxnHeader {
                txn_type: body_ref.txn_type().code(),
                ..*hdr
            };
            let r = if matches!(body_ref, TxnBody::Multi(_)) {
                ApplyOutcome {
                    err: ErrorCode::BadArguments,
                    ..ApplyOutcome::default()
                }
            } else {
                self.process_one(&sub_hdr, body_ref, trig)
            };
            if r.err != ErrorCode::Ok && out.err == ErrorCode::Ok {
                out.err = r.err;
            }
            // Report the op's own type (create2 stays create2) so the
            // reply can be built; failed ops are errors.
            out.multi.push(OpOutcome {
                txn_type: if r.err == ErrorCode::Ok && !failed {
                    sub.txn_type()
                } else {
                    OpCode::Error
                },
                err: r.err,
                path: r.path,
                stat: r.stat,
            });
        }
    }

    fn process_one(
        &mut self,
        hdr: &TxnHeader,
        body: &TxnBody,
        trig: &mut Triggers,
    ) -> ApplyOutcome {
        let mut out = ApplyOutcome {
            zxid: hdr.zxid,
            txn_type: body.txn_type(),
            ..ApplyOutcome::default()
        };
        let z = hdr.zxid;
        let t = hdr.time;
        let res: Result<(), ErrorCode> = match body {
            TxnBody::Create(_)
            | TxnBody::Create2(_)
            | TxnBody::CreateTtl(_)
            | TxnBody::CreateContainer(_) => self.process_create(hdr, body, &mut out, trig),
            TxnBody::Delete(d) | TxnBody::DeleteContainer(d) => {
                out.path = Some(d.path.clone());
                self.delete_node(&d.path, z, trig)
            }
            TxnBody::SetData(s) | TxnBody::Reconfig(s) => {
                out.path = Some(s.path.clone());
                self.set_data_raw(&s.path, s.data.as_deref(), s.version, z, t, trig)
                    .map(|st| out.stat = Some(st))
            }
            TxnBody::SetAcl(s) => {
                out.path = Some(s.path.clone());
                self.set_acl(&s.path, &s.acl, s.version)
                    .map(|st| out.stat = Some(st))
            }
            TxnBody::CreateSession(c) => {
                self.sessions.insert(hdr.client_id, c.time_out);
                Ok(())
            }
            TxnBody::CloseSession(c) => {
                self.kill_session(hdr.client_id, z, &c.paths2_delete, trig);
                Ok(())
            }
            TxnBody::Error(e) => Err(ErrorCode::try_from(e.err).unwrap_or(ErrorCode::SystemError)),
            TxnBody::Check(c) => {
                out.path = Some(c.path.clone());
                Ok(())
            }
            TxnBody::Multi(subs) => {
                self.process_multi(hdr, subs, &mut out, trig);
                Ok(())
            }
            _ => Err(ErrorCode::Unimplemented),
        };
        if let Err(e) = res {
            out.err = e;
        }
        out
    }

    /// `DataTree.killSession`: deletes the txn's paths, then any other
    /// ephemeral the session still owns; forgets the session.
    fn kill_session(&mut self, session: i64, zxid: i64, listed: &[String], trig: &mut Triggers) {
        let local: Vec<String> = self.ephemeral_paths(session);
        for p in listed {
            let _ = self.delete_node(p, zxid, trig);
        }
        for p in local {
            if !listed.contains(&p) {
                let _ = self.delete_node(&p, zxid, trig);
            }
        }
        self.ephemerals.remove(&session);
        self.sessions.remove(&session);
    }

    /// Number of descendants of `id`.
    pub(crate) fn descendants(&self, id: NodeId) -> usize {
        let mut stack = vec![id];
        let mut n = 0usize;
        while let Some(c) = stack.pop() {
            let ids = self.node(c).child_ids();
            n += ids.len();
            stack.extend(ids);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_layout_stays_compact() {
        // 1M znodes: every byte here is a MiB.
        // 12 bytes and the node's digest (4 bytes: see `Node::digest`).
        assert_eq!(std::mem::size_of::<Option<Node>>(), 16);
        let mut st = State::empty(&crate::TreeConfig::default());
        st.insert_root(Some(b""), 0, new_stat(0, 0, 0));
        let n = st.insert_child(ROOT, "name", Some(b"data"), 3, new_stat(1, 2, 0));
        let v = st.node(n);
        assert_eq!(
            (v.name(), v.data(), v.acl()),
            ("name", Some(&b"data"[..]), 3)
        );
        assert_eq!((v.stat(), v.parent), (new_stat(1, 2, 0), ROOT));
        let m = st.insert_child(ROOT, "x", None, 0, new_stat(1, 2, 0));
        assert_eq!((st.node(m).data(), st.node(m).data_len()), (None, 0));
        st.set_data_raw("/x", Some(b""), 1, 9, 10, &mut Triggers::new(true))
            .unwrap();
        assert_eq!(st.node(m).data(), Some(&b""[..]));
        st.set_data_raw("/x", None, 2, 11, 12, &mut Triggers::new(true))
            .unwrap();
        assert_eq!((st.node(m).name(), st.node(m).data()), ("x", None));
        st.update_stat(m, |s| s.version = 3);
        let v = st.node(m);
        assert_eq!((v.name(), v.data(), v.stat().version), ("x", None, 3));
        assert_eq!((v.stat().mzxid, v.stat().mtime), (11, 12));
        // Same encoded length: rewritten in place, the block kept.
        let p = st.insert_child(ROOT, "p", Some(&[9u8; 4096][..]), 70_000, new_stat(5, 6, 0));
        st.update_stat(p, |s| s.pzxid = 7);
        let at = st.slot(p).block;
        st.update_stat(p, |s| s.pzxid = 8);
        assert_eq!(st.slot(p).block, at);
        let v = st.node(p);
        assert_eq!(
            (v.stat().pzxid, v.stat().czxid, v.name(), v.acl()),
            (8, 5, "p", 70_000)
        );
        assert_eq!(v.data(), Some(&[9u8; 4096][..]));
        // A longer encoding re-packs and keeps name, ACL and data.
        st.update_stat(p, |s| s.pzxid = 1 << 40);
        let v = st.node(p);
        assert_eq!((v.stat().pzxid, v.name(), v.acl()), (1 << 40, "p", 70_000));
        assert_eq!(v.data(), Some(&[9u8; 4096][..]));
        assert_eq!(st.set_node_acl(p, 1), 70_000);
        assert_eq!((st.node(p).acl(), st.node(p).stat().pzxid), (1, 1 << 40));
        // A 100-byte znode made a minute ago: 16 bytes of slot, 116 of block.
        let mut a = Arena::default();
        let bases = Bases::now();
        let s = new_stat(0xf_4242, bases.time - 60_000, 0);
        let b = pack(&mut a, bases, b"n123456", 0, Some(&[7; 100]), &s);
        assert_eq!(a.get(b).len(), 116);
    }

    #[test]
    fn slab_grows_and_shrinks_across_chunks() {
        let mut s: Slab<Option<u64>> = Slab::default();
        assert!(s.is_empty() && s.get(0).is_none());
        let n = SLAB_CHUNK as u64 + 10;
        for i in 0..n {
            s.push(Some(i));
        }
        assert_eq!(s.len(), n as usize);
        for i in [0, 1, SLAB_CHUNK - 1, SLAB_CHUNK, SLAB_CHUNK + 9] {
            assert_eq!(s[i], Some(i as u64));
        }
        assert!(s.get(SLAB_CHUNK + 10).is_none());
        // Back below the chunk boundary and up again: the emptied chunk is reused.
        for i in (SLAB_CHUNK as u64 - 5..n).rev() {
            assert_eq!(s.pop(), Some(Some(i)));
        }
        assert_eq!(s.len(), SLAB_CHUNK - 5);
        for i in 0..20u64 {
            s.push(Some(1_000_000 + i));
        }
        assert_eq!(s.len(), SLAB_CHUNK + 15);
        assert_eq!(s[SLAB_CHUNK - 5], Some(1_000_000));
        assert_eq!(s[SLAB_CHUNK + 14], Some(1_000_019));
        s[3] = None;
        assert!(s[3].is_none() && s.get(3).is_some_and(Option::is_none));
    }

    #[test]
    fn large_child_sets_grow_shrink_and_find() {
        let mut st = State::empty(&crate::TreeConfig::default());
        // Inline -> Table -> Big on the way up, Big -> Inline on the way down.
        let names: Vec<String> = (0..20_000).map(|i| format!("c{i:07}")).collect();
        let ids: Vec<NodeId> = names
            .iter()
            .map(|n| st.insert_child(ROOT, n, None, 0, new_stat(1, 1, 0)))
            .collect();
        for (n, &id) in names.iter().zip(&ids) {
            assert_eq!(st.child(ROOT, n), Some(id));
        }
        // Removing all but a few turns the table back into an inline set.
        for (i, n) in names.iter().enumerate() {
            if i % 5000 != 0 {
                assert_eq!(st.remove_child_link(ROOT, n), Some(ids[i]));
                assert_eq!(st.child(ROOT, n), None);
            }
        }
        let mut left = Vec::new();
        st.node(ROOT).for_each_child(|c| left.push(c));
        left.sort_unstable();
        let want: Vec<NodeId> = ids.iter().step_by(5000).copied().collect();
        // ROOT also holds /zookeeper.
        assert!(want.iter().all(|w| left.contains(w)), "{left:?}");
        assert!(matches!(st.node(ROOT).kids, Some(ChildSet::Inline(_))));
        assert_eq!(st.child(ROOT, "c0005000"), Some(ids[5000]));
        assert_eq!(st.child(ROOT, "nope"), None);
        // Table -> Inline.
        let p = st.insert_child(ROOT, "parent", None, 0, new_stat(1, 1, 0));
        let kids: Vec<NodeId> = (0..100)
            .map(|i| st.insert_child(p, &format!("k{i}"), None, 0, new_stat(1, 1, 0)))
            .collect();
        assert!(matches!(st.node(p).kids, Some(ChildSet::Table(_))));
        for (i, &k) in kids.iter().enumerate().take(97) {
            assert_eq!(st.remove_child_link(p, &format!("k{i}")), Some(k));
        }
        assert!(matches!(st.node(p).kids, Some(ChildSet::Inline(_))));
        assert_eq!(st.child(p, "k99"), Some(kids[99]));
    }

    #[test]
    fn stat_encoding_round_trips() {
        let edge = [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            i64::MAX,
            i64::MIN,
            1 << 40,
            0x1_0000_0001,
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let pick = (rng % 16) as usize;
            if pick < edge.len() {
                edge[pick]
            } else {
                rng as i64 >> (rng % 64)
            }
        };
        let mut arena = Arena::default();
        for _ in 0..20_000 {
            let s = StatPersisted {
                czxid: next(),
                mzxid: next(),
                ctime: next(),
                mtime: next(),
                version: next() as i32,
                cversion: next() as i32,
                aversion: next() as i32,
                ephemeral_owner: next(),
                pzxid: next(),
            };
            let bases = Bases { time: next() };
            let mut b = [0u8; MAX_STAT];
            let n = encode_stat(&s, bases, &mut b);
            assert_eq!(decode_stat(&b[..n], bases), (s, n));
            assert_eq!(stat_len(&b[..n]), n);
            // Followed by anything (the data): the 16-byte fast path.
            let junk = next() as u64;
            for (k, x) in b[n..].iter_mut().enumerate() {
                *x = (junk >> (k % 8 * 8)) as u8 | if k % 3 == 0 { 0x80 } else { 0 };
            }
            assert_eq!(stat_len(&b), n);
            // And in a block, with names, ACL references and data of any size.
            let r = next() as u64;
            let name = "n".repeat((r % 300) as usize);
            let data = vec![r as u8; (r >> 9) as usize % 3000];
            let data = (!r.is_multiple_of(7)).then_some(&data[..]);
            let acl = (r >> 20) as u32;
            let blk = pack(&mut arena, bases, name.as_bytes(), acl, data, &s);
            let node = NodeRef {
                bytes: arena.get(blk),
                parent: ROOT,
                kids: None,
                bases,
                h: head(arena.get(blk)),
            };
            assert_eq!(
                (node.stat(), node.name(), node.data(), node.acl()),
                (s, &name[..], data, acl)
            );
            assert_eq!(node.data_len(), data.map_or(0, <[u8]>::len));
            arena.free(blk);
            let mut buf = [0u8; 10];
            let mut o = 0;
            put_uvarint(&mut buf, &mut o, r >> (r % 64));
            assert_eq!(o, uvarint_len(r >> (r % 64)));
        }
        // A fresh znode (epoch 1, a 2026 timestamp) fits in 13 bytes, in 10
        // when made within 18 hours of the base.
        let mut b = [0u8; MAX_STAT];
        let fresh = new_stat(0x1_0000_0001, 1_790_000_000_000, 0);
        assert!(encode_stat(&fresh, Bases { time: 0 }, &mut b) <= 13);
        let near = Bases {
            time: 1_790_000_000_000 - 18 * 3_600_000,
        };
        assert!(encode_stat(&fresh, near, &mut b) <= 10);
    }
}
