//! [`Tree`]: the shared tree, its reads, apply, watches and statistics.
//!
//! Locking: one `RwLock` over the node store ([`State`]) and one `Mutex` over
//! the watch tables, always taken in that order. `apply` holds the write lock
//! for the whole txn (a multi is atomic for readers) and fires watches before
//! releasing it; a read that registers a watch holds the read lock while it
//! does, so a watch set by a read can never miss a change applied after it.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use zk_jute::{
    Acl, AddWatchMode, ErrorCode, EventType, Id, KeeperState, SetWatches2, Stat, StatPersisted,
    TxnBody, TxnHeader, WatcherEvent, WatcherType, perms,
};

use crate::acl::{Auth, check_acl};
use crate::digest::DigestPrefix;
use crate::ns_stats::{NamespaceCounts, NamespaceStat, ReadStats, java_len};
use crate::store::{EphemeralType, ROOT, State, Trigger, Triggers, ttl_of};
use crate::watch::{Mode, Watches};
use crate::{ApplyOutcome, Event, TreeConfig, WatcherId};

/// The znode tree shared by the applier and the readers (wrap it in an `Arc`).
#[derive(Debug)]
pub struct Tree {
    pub(crate) state: RwLock<State>,
    pub(crate) watches: Mutex<Watches>,
    pub(crate) config: TreeConfig,
    /// Bytes read per namespace (`read_per_namespace`).
    reads: ReadStats,
    /// Writes refused by a quota's hard limit, per namespace.
    pub(crate) quota_exceeded: NamespaceCounts,
}

/// Which watch table a dump or summary is about (ZooKeeper's 4lw `wchs`,
/// `wchc`, `wchp` report the data table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// Data and exist watches (and the data half of persistent watches).
    Data,
    /// Child watches (and the child half of persistent watches).
    Child,
}

/// Watch table summary (`wchs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Distinct watchers.
    pub watchers: usize,
    /// Distinct watched paths.
    pub paths: usize,
    /// (watcher, path) pairs.
    pub total: usize,
}

/// A node as the prep thread sees it (`ChangeRecord`).
#[derive(Debug, Clone)]
pub(crate) struct NodeRecord {
    pub(crate) stat: StatPersisted,
    pub(crate) children: i32,
    pub(crate) acl: Arc<[Acl]>,
    /// Its digest's path-and-data part (`ChangeRecord.data` for digests);
    /// empty in a record read for a setData, which brings its own.
    pub(crate) prefix: DigestPrefix,
    /// The node's share of the tree digest as the record was read (the
    /// committed tree's or the latest prepared one's): what a change
    /// subtracts (`PrecalculatedDigest.nodeDigest`).
    pub(crate) base: u32,
    /// Its data's length (a quota check of a setData).
    pub(crate) data_len: i64,
}

impl NodeRecord {
    /// The node's digest with its current stat.
    pub(crate) fn digest(&self) -> u32 {
        self.prefix.with_stat(&self.stat)
    }
}

fn event(t: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: t.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_string(),
    }
}

impl Tree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` (world:anyone ALL)
    /// and `/zookeeper/config` (world:anyone READ, aversion -1), all zxid 0.
    pub fn new(config: TreeConfig) -> Tree {
        let state = State::new(&config);
        Tree::from_state(state, config)
    }

    /// A tree of loaded (or fresh) nodes: the quota set is rebuilt and
    /// every quota recounted, as Apache does when it loads a snapshot.
    pub(crate) fn from_state(mut state: State, config: TreeConfig) -> Tree {
        state.setup_quotas();
        Tree {
            state: RwLock::new(state),
            watches: Mutex::new(Watches::default()),
            config,
            reads: ReadStats::default(),
            quota_exceeded: NamespaceCounts::default(),
        }
    }

    /// Replaces this tree's nodes, sessions and last zxid with `other`'s
    /// (a learner loading a leader's SNAP, or rebuilding after TRUNC), under
    /// the write lock: a reader sees the old tree or the new one. The watch
    /// tables stay (they belong to the connections).
    pub fn replace_data(&self, other: Tree) {
        let mut state = other.state.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut st = self.write();
        // Metrics outlive the data (Apache's are the server's).
        state.writes = std::mem::take(&mut st.writes);
        *st = state;
    }

    /// The configuration.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn watches(&self) -> MutexGuard<'_, Watches> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, acl: &[Acl], perm: i32, auth: &Auth<'_>) -> Result<(), ErrorCode> {
        if self.config.skip_acl {
            Ok(())
        } else {
            check_acl(acl, perm, auth)
        }
    }

    // ---- apply ----

    /// Applies a txn (the single applier, in zxid order; also log replay).
    /// Never fails: errors (error txns, failed multis, NONODE / NODEEXISTS
    /// while replaying over a fuzzy snapshot) are in the outcome. Returns
    /// the reply material and the watch events to send, in order.
    pub fn apply(&self, hdr: &TxnHeader, body: &TxnBody) -> ApplyOutcome {
        let mut st = self.write();
        let mut trig = Triggers::new(!self.watches().is_empty());
        let mut out = st.process(hdr, body, &mut trig);
        if !trig.list.is_empty() {
            let mut w = self.watches();
            let mut last_data: Vec<WatcherId> = Vec::new();
            for t in trig.list {
                match t {
                    Trigger::Data(p, ty, acl) => {
                        last_data = w.data.trigger(&p, false);
                        if !last_data.is_empty() {
                            out.watch_counts.push((ty, last_data.len()));
                        }
                        for &id in &last_data {
                            out.events.push(Event {
                                watcher: id,
                                event: event(ty, &p),
                                acl: acl.clone(),
                            });
                        }
                    }
                    Trigger::Child(p, ty, suppress, acl) => {
                        let hit = w.child.trigger(&p, ty == EventType::NodeChildrenChanged);
                        if !hit.is_empty() {
                            out.watch_counts.push((ty, hit.len()));
                        }
                        for id in hit {
                            if suppress && last_data.binary_search(&id).is_ok() {
                                continue;
                            }
                            out.events.push(Event {
                                watcher: id,
                                event: event(ty, &p),
                                acl: acl.clone(),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Brings the nodes at `paths` into the CPU cache ahead of applying a
    /// batch of txns that change them: their look-ups are staged across the
    /// batch so that the memory reads of different paths overlap (see
    /// `State::warm`). Changes nothing; paths that are not nodes are skipped.
    /// Returns how many nodes it read (those in sets of more than a few
    /// children: a handful are compared by name when looked up anyway).
    pub fn warm<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> usize {
        let mut paths = paths.into_iter().peekable();
        if paths.peek().is_none() {
            return 0;
        }
        self.read().warm(paths)
    }

    // ---- reads ----

    /// getData: data and stat; NONODE, or NOAUTH without READ. With `watch`,
    /// leaves a data watch (only when the read succeeds).
    pub fn get_data(
        &self,
        path: &str,
        auth: &Auth<'_>,
        watch: Option<WatcherId>,
    ) -> Result<(Option<Bytes>, Stat), ErrorCode> {
        let st = self.read();
        let id = st.lookup(path).ok_or(ErrorCode::NoNode)?;
        let n = st.node(id);
        self.check(st.acls.get_ref(n.acl()), perms::READ, auth)?;
        if let Some(w) = watch {
            self.watches().data.add(path, w, Mode::Standard);
        }
        let (data, stat) = (
            n.data().map(Bytes::copy_from_slice),
            n.client_stat(st.extended),
        );
        drop(st);
        // Counted outside the tree's lock.
        self.reads
            .add(path, data.as_ref().map_or(0, |d| d.len() as u64));
        Ok((data, stat))
    }

    /// exists: the stat, or NONODE. BADARGUMENTS for a path with NUL. With
    /// `watch`, leaves a data watch whether or not the node exists (an exist
    /// watch when it does not). READ is checked on existing nodes when
    /// [`TreeConfig::exists_checks_read`] (then NOAUTH leaves no watch).
    pub fn exists(
        &self,
        path: &str,
        auth: &Auth<'_>,
        watch: Option<WatcherId>,
    ) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let st = self.read();
        let id = st.lookup(path);
        if let Some(id) = id
            && self.config.exists_checks_read
        {
            self.check(st.acls.get_ref(st.node(id).acl()), perms::READ, auth)?;
        }
        if let Some(w) = watch {
            self.watches().data.add(path, w, Mode::Standard);
        }
        match id {
            Some(id) => {
                let stat = st.node(id).client_stat(st.extended);
                drop(st);
                self.reads.add(path, 0);
                Ok(stat)
            }
            None => Err(ErrorCode::NoNode),
        }
    }

    /// getChildren / getChildren2: child names (unordered, as ZooKeeper) and
    /// the node's stat; NONODE; NOAUTH without READ. With `watch`, leaves a
    /// child watch.
    pub fn get_children(
        &self,
        path: &str,
        auth: &Auth<'_>,
        watch: Option<WatcherId>,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let st = self.read();
        let id = st.lookup(path).ok_or(ErrorCode::NoNode)?;
        let n = st.node(id);
        self.check(st.acls.get_ref(n.acl()), perms::READ, auth)?;
        if let Some(w) = watch {
            self.watches().child.add(path, w, Mode::Standard);
        }
        let (names, stat) = (st.child_names(id), n.client_stat(st.extended));
        drop(st);
        self.reads
            .add(path, names.iter().map(|c| java_len(c)).sum::<u64>());
        Ok((names, stat))
    }

    /// getACL: needs READ or ADMIN (NOAUTH otherwise); without ADMIN the
    /// digest hashes are masked (`user:x`), as ZooKeeper 3.8.
    pub fn get_acl(&self, path: &str, auth: &Auth<'_>) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let st = self.read();
        let id = st.lookup(path).ok_or(ErrorCode::NoNode)?;
        let n = st.node(id);
        let acl = st.acls.get_ref(n.acl());
        self.check(acl, perms::READ | perms::ADMIN, auth)?;
        let stat = n.client_stat(st.extended);
        if self.check(acl, perms::ADMIN, auth).is_ok() {
            return Ok((acl.to_vec(), stat));
        }
        let masked = acl
            .iter()
            .map(|a| {
                if a.id.scheme == "digest" {
                    let user = a.id.id.split(':').next().unwrap_or("");
                    Acl {
                        perms: a.perms,
                        id: Id {
                            scheme: a.id.scheme.clone(),
                            id: format!("{user}:x"),
                        },
                    }
                } else {
                    a.clone()
                }
            })
            .collect();
        Ok((masked, stat))
    }

    /// getAllChildrenNumber: the number of descendants (for `/`, every node
    /// but the root, `/zookeeper` included); NONODE; NOAUTH without READ.
    pub fn get_all_children_number(&self, path: &str, auth: &Auth<'_>) -> Result<i32, ErrorCode> {
        let st = self.read();
        let id = st.lookup(path).ok_or(ErrorCode::NoNode)?;
        self.check(st.acls.get_ref(st.node(id).acl()), perms::READ, auth)?;
        let n = if id == ROOT {
            st.node_count - 1
        } else {
            st.descendants(id)
        };
        Ok(n as i32)
    }

    /// getEphemerals: the session's ephemeral paths starting with `prefix`
    /// (all of them for `/` or a blank prefix), sorted.
    pub fn get_ephemerals(&self, session: i64, prefix: &str) -> Vec<String> {
        let st = self.read();
        let mut v = st.ephemeral_paths(session);
        let trimmed = prefix.trim();
        if !trimmed.is_empty() && trimmed != "/" {
            v.retain(|p| p.starts_with(prefix));
        }
        v
    }

    /// The prep thread's view of a committed node; its base is the digest
    /// the node's slot keeps. `with_prefix: false` leaves the prefix empty
    /// for a caller that replaces the data (no CRC over the old data).
    pub(crate) fn record(&self, path: &str, with_prefix: bool) -> Option<NodeRecord> {
        let st = self.read();
        let id = st.lookup(path)?;
        let n = st.node(id);
        let prefix = if with_prefix {
            DigestPrefix::new(if path.is_empty() { "/" } else { path }, n.data())
        } else {
            DigestPrefix::default()
        };
        Some(NodeRecord {
            stat: n.stat(),
            children: n.children_len() as i32,
            acl: st.acls.get(n.acl()),
            prefix,
            base: st.node_digest_of(id),
            data_len: n.data_len() as i64,
        })
    }

    // ---- watches ----

    /// addWatch: a persistent (or persistent recursive) watch on `path`,
    /// in both tables. The node need not exist.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: WatcherId) {
        let m = match mode {
            AddWatchMode::Persistent => Mode::Persistent,
            AddWatchMode::PersistentRecursive => Mode::Recursive,
        };
        // Under the tree's lock, as every watch is added: an apply decides
        // under the write lock whether any watch can fire.
        let _st = self.read();
        let mut w = self.watches();
        w.child.add(path, watcher, m);
        w.data.add(path, watcher, m);
    }

    /// removeWatches: removes `watcher`'s watches of the type on `path`
    /// (Data: the data table, Children: the child table, Any: both; a
    /// persistent watch lives in both). NOWATCHER if nothing was removed;
    /// Persistent / PersistentRecursive types are NOWATCHER, as in 3.8.
    pub fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: WatcherId,
    ) -> Result<(), ErrorCode> {
        let mut w = self.watches();
        let removed = match kind {
            WatcherType::Children => w.child.remove(path, watcher),
            WatcherType::Data => w.data.remove(path, watcher),
            WatcherType::Any => {
                let c = w.child.remove(path, watcher);
                let d = w.data.remove(path, watcher);
                c || d
            }
            WatcherType::Persistent | WatcherType::PersistentRecursive => false,
        };
        if removed {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// checkWatches: OK if `watcher` has a watch of the type on `path`,
    /// NOWATCHER otherwise.
    pub fn check_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: WatcherId,
    ) -> Result<(), ErrorCode> {
        let w = self.watches();
        let has = match kind {
            WatcherType::Children => w.child.contains(path, watcher),
            WatcherType::Data => w.data.contains(path, watcher),
            WatcherType::Any => w.child.contains(path, watcher) || w.data.contains(path, watcher),
            WatcherType::Persistent | WatcherType::PersistentRecursive => false,
        };
        if has {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// setWatches / setWatches2 after a reconnect (`DataTree.setWatches`):
    /// re-registers the watches, except that a data watch on a node deleted
    /// or changed after `relative_zxid`, an exist watch on a node that now
    /// exists and a child watch on a node deleted or whose children changed
    /// after `relative_zxid` fire at once instead; those events are returned,
    /// in ZooKeeper's order. For setWatches (101) pass empty persistent lists.
    pub fn set_watches(&self, w: &SetWatches2, watcher: WatcherId) -> Vec<WatcherEvent> {
        let st = self.read();
        let mut ws = self.watches();
        let mut out = Vec::new();
        let rel = w.relative_zxid;
        for p in &w.data_watches {
            match st.lookup(p) {
                None => out.push(event(EventType::NodeDeleted, p)),
                Some(id) if st.node(id).stat().mzxid > rel => {
                    out.push(event(EventType::NodeDataChanged, p))
                }
                Some(_) => ws.data.add(p, watcher, Mode::Standard),
            }
        }
        for p in &w.exist_watches {
            match st.lookup(p) {
                Some(_) => out.push(event(EventType::NodeCreated, p)),
                None => ws.data.add(p, watcher, Mode::Standard),
            }
        }
        for p in &w.child_watches {
            match st.lookup(p) {
                None => out.push(event(EventType::NodeDeleted, p)),
                Some(id) if st.node(id).stat().pzxid > rel => {
                    out.push(event(EventType::NodeChildrenChanged, p))
                }
                Some(_) => ws.child.add(p, watcher, Mode::Standard),
            }
        }
        for p in &w.persistent_watches {
            ws.child.add(p, watcher, Mode::Persistent);
            ws.data.add(p, watcher, Mode::Persistent);
        }
        for p in &w.persistent_recursive_watches {
            ws.child.add(p, watcher, Mode::Recursive);
            ws.data.add(p, watcher, Mode::Recursive);
        }
        out
    }

    /// Forgets every watch of `watcher` (connection closed, session gone).
    pub fn remove_watcher(&self, watcher: WatcherId) {
        let mut w = self.watches();
        w.data.remove_watcher(watcher);
        w.child.remove_watcher(watcher);
    }

    /// Number of watches in both tables (`mntr` `zk_watch_count`; a
    /// persistent watch counts twice, as in ZooKeeper).
    pub fn watch_count(&self) -> usize {
        let w = self.watches();
        w.data.count() + w.child.count()
    }

    /// Summary of one table (`wchs` reports [`WatchKind::Data`]).
    pub fn watch_summary(&self, kind: WatchKind) -> WatchSummary {
        let w = self.watches();
        let t = match kind {
            WatchKind::Data => &w.data,
            WatchKind::Child => &w.child,
        };
        WatchSummary {
            watchers: t.watchers(),
            paths: t.paths(),
            total: t.count(),
        }
    }

    /// Watched paths per watcher, sorted (`wchc`).
    pub fn watches_by_watcher(&self, kind: WatchKind) -> Vec<(WatcherId, Vec<String>)> {
        let w = self.watches();
        match kind {
            WatchKind::Data => w.data.by_watcher(),
            WatchKind::Child => w.child.by_watcher(),
        }
    }

    /// Watchers per path, sorted (`wchp`).
    pub fn watches_by_path(&self, kind: WatchKind) -> Vec<(String, Vec<WatcherId>)> {
        let w = self.watches();
        match kind {
            WatchKind::Data => w.data.by_path(),
            WatchKind::Child => w.child.by_path(),
        }
    }

    // ---- sessions, containers, statistics ----

    /// The session table (id, timeout ms), sorted, as maintained by
    /// createSession / closeSession txns and kept in snapshots.
    pub fn sessions(&self) -> Vec<(i64, i32)> {
        let st = self.read();
        let mut v: Vec<(i64, i32)> = st.sessions.iter().map(|(&k, &v)| (k, v)).collect();
        v.sort_unstable();
        v
    }

    /// Deletion candidates, as `ContainerManager.getCandidates`: empty
    /// containers that have had a child (or never had one for longer than
    /// [`TreeConfig::container_max_never_used_ms`], if set), and childless
    /// TTL nodes not modified for longer than their TTL. Sorted. The server
    /// turns each into a deleteContainer request.
    pub fn expired_ttl_and_empty_containers(&self, now_ms: i64) -> Vec<String> {
        let st = self.read();
        let mut out = Vec::new();
        let never = self.config.container_max_never_used_ms;
        for &id in &st.containers {
            let n = st.node(id);
            if n.children_len() != 0 {
                continue;
            }
            if n.stat().cversion > 0 || (never != 0 && now_ms - n.stat().mtime > never) {
                out.push(st.path_of(id));
            }
        }
        for &id in &st.ttls {
            let n = st.node(id);
            if n.children_len() == 0
                && EphemeralType::of(n.stat().ephemeral_owner, st.extended) == EphemeralType::Ttl
            {
                let ttl = ttl_of(n.stat().ephemeral_owner);
                if ttl != 0 && now_ms - n.stat().mtime > ttl {
                    out.push(st.path_of(id));
                }
            }
        }
        out.sort();
        out
    }

    /// Bytes read per namespace since the start (Apache's
    /// `read_per_namespace`), sorted by namespace.
    pub fn read_namespaces(&self) -> Vec<(String, NamespaceStat)> {
        self.reads.snapshot()
    }

    /// Writes refused with QUOTAEXCEEDED per namespace of the written path
    /// (Apache's `quota_exceeded_error_per_namespace`), sorted.
    pub fn quota_exceeded_namespaces(&self) -> Vec<(String, u64)> {
        self.quota_exceeded.snapshot()
    }

    /// Bytes written per namespace since the start, replay included
    /// (Apache's `write_per_namespace`), sorted by namespace.
    pub fn write_namespaces(&self) -> Vec<(String, NamespaceStat)> {
        crate::ns_stats::snapshot(&self.read().writes)
    }

    /// The zxid of the last applied txn (of the snapshot, right after a load).
    pub fn last_processed_zxid(&self) -> i64 {
        self.read().last_zxid
    }

    /// The tree digest (ZooKeeper's digest version 2, for `hash`).
    pub fn digest(&self) -> i64 {
        self.read().digest
    }

    /// Sets `/zookeeper/config`'s data to an ensemble's configuration text,
    /// outside any txn, as Apache's `ZKDatabase.initConfigInZKDatabase` does
    /// after every load of the database in quorum mode: mzxid the config's
    /// `version`, mtime `time_ms`, data version -1. False if the node is
    /// missing.
    pub fn set_config(&self, data: &[u8], version: i64, time_ms: i64) -> bool {
        let mut trig = Triggers::new(false);
        self.write()
            .set_data_raw(
                "/zookeeper/config",
                Some(data),
                -1,
                version,
                time_ms,
                &mut trig,
            )
            .is_ok()
    }

    /// Forgets the digest log (after a replay over a fuzzy snapshot, whose
    /// entries would describe a tree ahead of their zxid).
    pub fn clear_digest_log(&self) {
        self.write().digest_log.clear();
    }

    /// The digest log, oldest first: (zxid, tree digest after it) for the
    /// applied zxids that are multiples of 128, the newest 1024 (`hash`).
    pub fn digest_log(&self) -> Vec<(i64, i64)> {
        self.read().digest_log.iter().copied().collect()
    }

    /// Number of znodes, the root and the `/zookeeper` nodes included
    /// (ZooKeeper's `Node count` counts the root twice: add one).
    pub fn node_count(&self) -> usize {
        self.read().node_count
    }

    /// Sum of path lengths and data lengths (`zk_approximate_data_size`).
    pub fn approximate_data_size(&self) -> i64 {
        self.read().data_size
    }

    /// Number of ephemeral nodes (`zk_ephemerals_count`).
    pub fn ephemerals_count(&self) -> usize {
        self.read().ephemerals.values().map(|s| s.len()).sum()
    }

    /// Ephemeral paths per session, sorted (`dump`).
    pub fn ephemerals_by_session(&self) -> Vec<(i64, Vec<String>)> {
        let st = self.read();
        let mut sessions: Vec<i64> = st.ephemerals.keys().copied().collect();
        sessions.sort_unstable();
        sessions
            .into_iter()
            .map(|s| (s, st.ephemeral_paths(s)))
            .collect()
    }

    /// Number of distinct ACL lists in the cache.
    pub fn acl_cache_size(&self) -> usize {
        self.read().acls.len()
    }
}
