//! Property test: random operation sequences against a simple model (a
//! BTreeMap of path -> node, and standard watches), checking errors, stats,
//! children, data and watch events after every step.

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use zk_jute::{
    DeleteRequest, ErrorCode, EventType, MultiOp, MultiResult, Request, SetDataRequest,
    WatcherEvent,
};
use zk_tree::Auth;

const ANY: Auth<'static> = Auth {
    ids: &[],
    is_super: false,
};
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        parent: usize,
        name: usize,
        mode: i32,
        data: Vec<u8>,
        session: i64,
    },
    Delete {
        path: usize,
        version: u8,
    },
    SetData {
        path: usize,
        data: Vec<u8>,
        version: u8,
    },
    GetData {
        path: usize,
        watcher: u64,
    },
    Exists {
        path: usize,
        watcher: u64,
    },
    GetChildren {
        path: usize,
        watcher: u64,
    },
    Multi(Vec<Op>),
    CloseSession {
        session: i64,
    },
}

/// Znode data: mostly a few bytes; sometimes around 1 KiB, where the store
/// moves a node's block between its paged size classes and a boxed block.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..4),
        1 => proptest::collection::vec(any::<u8>(), 1000..1040),
    ]
}

fn leaf_write() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 0..4usize, 0..4i32, data(), 1..3i64)
            .prop_map(|(parent, name, mode, data, session)| Op::Create { parent, name, mode, data, session }),
        2 => (any::<usize>(), 0..3u8).prop_map(|(path, version)| Op::Delete { path, version }),
        2 => (any::<usize>(), data(), 0..3u8)
            .prop_map(|(path, data, version)| Op::SetData { path, data, version }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => leaf_write(),
        2 => (any::<usize>(), 1..3u64).prop_map(|(path, watcher)| Op::GetData { path, watcher }),
        2 => (any::<usize>(), 1..3u64).prop_map(|(path, watcher)| Op::Exists { path, watcher }),
        2 => (any::<usize>(), 1..3u64).prop_map(|(path, watcher)| Op::GetChildren { path, watcher }),
        2 => proptest::collection::vec(leaf_write(), 1..4).prop_map(Op::Multi),
        1 => (1..3i64).prop_map(|session| Op::CloseSession { session }),
    ]
}

#[derive(Debug, Clone)]
struct MNode {
    data: Vec<u8>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    version: i32,
    creates: i32,
    owner: i64,
}

#[derive(Debug, Clone, Default)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    data_w: BTreeMap<String, BTreeSet<u64>>,
    child_w: BTreeMap<String, BTreeSet<u64>>,
}

fn parent_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => String::new(),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Model {
    fn new() -> Self {
        let mut m = Model::default();
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let n = MNode {
                data: vec![],
                czxid: 0,
                mzxid: 0,
                pzxid: 0,
                version: 0,
                creates: 0,
                owner: 0,
            };
            m.nodes.insert(p.into(), n);
        }
        m
    }

    fn children(&self, p: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|k| k.as_str() != "/" && parent_of(k) == p)
            .cloned()
            .collect()
    }

    fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.nodes.keys().cloned().collect();
        v.push("/a".into());
        v.push("/a/b".into());
        v.push("/x/y".into());
        v
    }

    fn fire(set: &mut BTreeMap<String, BTreeSet<u64>>, path: &str) -> Vec<u64> {
        set.remove(path)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }

    fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: i32,
        session: i64,
        z: i64,
        ev: &mut Vec<(u64, WatcherEvent)>,
    ) -> Result<String, ErrorCode> {
        let parent = parent_of(path);
        let Some(p) = self.nodes.get(&parent) else {
            return Err(ErrorCode::NoNode);
        };
        if parent == "/zookeeper/config" {
            return Err(ErrorCode::NoAuth); // world:anyone READ only
        }
        let mut path = path.to_string();
        if mode & 2 != 0 {
            path.push_str(&format!("{:010}", p.creates));
        }
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if p.owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let p = self.nodes.get_mut(&parent).unwrap();
        p.creates += 1;
        p.pzxid = z;
        let owner = if mode & 1 != 0 { session } else { 0 };
        self.nodes.insert(
            path.clone(),
            MNode {
                data: data.to_vec(),
                czxid: z,
                mzxid: z,
                pzxid: z,
                version: 0,
                creates: 0,
                owner,
            },
        );
        for w in Self::fire(&mut self.data_w, &path) {
            ev.push((w, e(EventType::NodeCreated, &path)));
        }
        for w in Self::fire(&mut self.child_w, &parent) {
            ev.push((w, e(EventType::NodeChildrenChanged, &parent)));
        }
        Ok(path)
    }

    fn version_ok(cur: i32, kind: u8) -> (i32, bool) {
        match kind {
            0 => (-1, true),
            1 => (cur, true),
            _ => (cur + 7, false),
        }
    }

    fn delete(
        &mut self,
        path: &str,
        version: i32,
        z: i64,
        ev: &mut Vec<(u64, WatcherEvent)>,
    ) -> Result<(), ErrorCode> {
        if matches!(
            path,
            "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
        ) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = parent_of(path);
        if !self.nodes.contains_key(&parent) {
            return Err(ErrorCode::NoNode);
        }
        let Some(n) = self.nodes.get(path) else {
            return Err(ErrorCode::NoNode);
        };
        if version != -1 && version != n.version {
            return Err(ErrorCode::BadVersion);
        }
        if !self.children(path).is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.nodes.remove(path);
        let p = self.nodes.get_mut(&parent).unwrap();
        p.pzxid = p.pzxid.max(z);
        let data = Self::fire(&mut self.data_w, path);
        for &w in &data {
            ev.push((w, e(EventType::NodeDeleted, path)));
        }
        for w in Self::fire(&mut self.child_w, path) {
            if !data.contains(&w) {
                ev.push((w, e(EventType::NodeDeleted, path)));
            }
        }
        for w in Self::fire(&mut self.child_w, &parent) {
            ev.push((w, e(EventType::NodeChildrenChanged, &parent)));
        }
        Ok(())
    }

    fn set(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        z: i64,
        ev: &mut Vec<(u64, WatcherEvent)>,
    ) -> Result<i32, ErrorCode> {
        let Some(n) = self.nodes.get_mut(path) else {
            return Err(ErrorCode::NoNode);
        };
        if path == "/zookeeper/config" {
            return Err(ErrorCode::NoAuth);
        }
        if version != -1 && version != n.version {
            return Err(ErrorCode::BadVersion);
        }
        n.version += 1;
        n.mzxid = z;
        n.data = data.to_vec();
        let v = n.version;
        for w in Self::fire(&mut self.data_w, path) {
            ev.push((w, e(EventType::NodeDataChanged, path)));
        }
        Ok(v)
    }
}

fn e(t: EventType, p: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: t.code(),
        state: 3,
        path: p.into(),
    }
}

/// Turns a generated write into a request, resolving indexes against the model.
fn to_request(m: &Model, op: &Op) -> (Request, MultiOp) {
    let paths = m.paths();
    match op {
        Op::Create {
            parent,
            name,
            mode,
            data,
            ..
        } => {
            let p = &paths[parent % paths.len()];
            let r = create_req(&join(p, NAMES[*name]), data, *mode);
            (Request::Create(r.clone()), MultiOp::Create(r))
        }
        Op::Delete { path, version } => {
            let p = paths[path % paths.len()].clone();
            let cur = m.nodes.get(&p).map_or(0, |n| n.version);
            let r = DeleteRequest {
                path: p,
                version: Model::version_ok(cur, *version).0,
            };
            (Request::Delete(r.clone()), MultiOp::Delete(r))
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            let p = paths[path % paths.len()].clone();
            let cur = m.nodes.get(&p).map_or(0, |n| n.version);
            let r = SetDataRequest {
                path: p,
                data: Some(Bytes::copy_from_slice(data)),
                version: Model::version_ok(cur, *version).0,
            };
            (Request::SetData(r.clone()), MultiOp::SetData(r))
        }
        _ => unreachable!("writes only"),
    }
}

/// Applies a write to the model, as ZooKeeper would; Ok carries the created path.
fn model_write(
    m: &mut Model,
    req: &MultiOp,
    session: i64,
    z: i64,
    ev: &mut Vec<(u64, WatcherEvent)>,
) -> Result<Option<String>, ErrorCode> {
    match req {
        MultiOp::Create(r) => m
            .create(
                &r.path,
                r.data.as_deref().unwrap_or(&[]),
                r.flags,
                session,
                z,
                ev,
            )
            .map(Some),
        MultiOp::Delete(r) => m.delete(&r.path, r.version, z, ev).map(|_| None),
        MultiOp::SetData(r) => m
            .set(&r.path, r.data.as_deref().unwrap_or(&[]), r.version, z, ev)
            .map(|_| None),
        _ => unreachable!(),
    }
}

fn check_tree(h: &Harness, m: &Model) -> Result<(), TestCaseError> {
    let dump = dump(&h.tree);
    let got: Vec<&String> = dump.iter().map(|d| &d.0).collect();
    let want: Vec<&String> = m.nodes.keys().collect();
    prop_assert_eq!(got, want);
    for (path, data, s, _) in &dump {
        let n = &m.nodes[path];
        let kids = m.children(path).len() as i32;
        prop_assert_eq!(data.as_deref(), Some(&n.data[..]), "data of {}", path);
        prop_assert_eq!(
            (
                s.czxid,
                s.mzxid,
                s.pzxid,
                s.version,
                s.cversion,
                s.num_children,
                s.data_length,
                s.ephemeral_owner
            ),
            (
                n.czxid,
                n.mzxid,
                n.pzxid,
                n.version,
                2 * n.creates - kids,
                kids,
                n.data.len() as i32,
                n.owner
            ),
            "stat of {}",
            path
        );
        let (mut c, _) = h.tree.get_children(path, &SUPER, None).unwrap();
        c.sort();
        let want: Vec<String> = m
            .children(path)
            .iter()
            .map(|k| k.rsplit('/').next().unwrap().to_string())
            .collect();
        let mut want = want;
        want.sort();
        prop_assert_eq!(c, want);
    }
    prop_assert_eq!(h.tree.node_count(), m.nodes.len());
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut m = Model::new();
    h.open_session(1, 1000);
    h.open_session(2, 1000);
    for op in ops {
        let z = h.zxid + 1;
        match &op {
            Op::Create { .. } | Op::Delete { .. } | Op::SetData { .. } => {
                let session = if let Op::Create { session, .. } = &op {
                    *session
                } else {
                    1
                };
                let (req, mop) = to_request(&m, &op);
                let mut ev = Vec::new();
                let want = model_write(&mut m, &mop, session, z, &mut ev);
                let out = h.req(session, req);
                prop_assert_eq!(
                    out.err,
                    want.as_ref().err().copied().unwrap_or(ErrorCode::Ok),
                    "{:?}",
                    op
                );
                if let Ok(Some(p)) = want {
                    prop_assert_eq!(out.path, Some(p));
                }
                prop_assert_eq!(out.events, ev, "{:?}", op);
            }
            Op::Multi(subs) => {
                let mut trial = m.clone();
                let mut ev = Vec::new();
                let mut codes = Vec::new();
                let mut reqs = Vec::new();
                let mut failed = false;
                for s in subs {
                    // Requests are built against the state the op will see.
                    let (_, mop) = to_request(&trial, s);
                    reqs.push(mop.clone());
                    if failed {
                        codes.push(-2);
                        continue;
                    }
                    match model_write(&mut trial, &mop, 1, z, &mut ev) {
                        Ok(_) => codes.push(0),
                        Err(e) => {
                            codes.push(e.code());
                            failed = true;
                        }
                    }
                }
                let out = h.req(1, Request::Multi(reqs));
                if failed {
                    let got: Vec<i32> = out
                        .multi_results()
                        .iter()
                        .map(|r| {
                            if let MultiResult::Error(e) = r {
                                e.err
                            } else {
                                99
                            }
                        })
                        .collect();
                    prop_assert_eq!(got, codes);
                    prop_assert!(out.events.is_empty());
                } else {
                    prop_assert_eq!(out.err, ErrorCode::Ok);
                    prop_assert_eq!(out.events, ev);
                    m = trial;
                }
            }
            Op::GetData { path, watcher } => {
                let p = m.paths()[path % m.paths().len()].clone();
                let r = h.tree.get_data(&p, &ANY, Some(*watcher));
                prop_assert_eq!(r.is_ok(), m.nodes.contains_key(&p));
                if r.is_ok() {
                    m.data_w.entry(p).or_default().insert(*watcher);
                }
            }
            Op::Exists { path, watcher } => {
                let p = m.paths()[path % m.paths().len()].clone();
                let r = h.tree.exists(&p, &ANY, Some(*watcher));
                prop_assert_eq!(r.is_ok(), m.nodes.contains_key(&p));
                m.data_w.entry(p).or_default().insert(*watcher);
            }
            Op::GetChildren { path, watcher } => {
                let p = m.paths()[path % m.paths().len()].clone();
                let r = h.tree.get_children(&p, &ANY, Some(*watcher));
                prop_assert_eq!(r.is_ok(), m.nodes.contains_key(&p));
                if r.is_ok() {
                    m.child_w.entry(p).or_default().insert(*watcher);
                }
            }
            Op::CloseSession { session } => {
                let mine: Vec<String> = m
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.owner == *session)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut ev = Vec::new();
                for p in &mine {
                    m.delete(p, -1, z, &mut ev).expect("ephemerals are leaves");
                }
                let out = h.close_session(*session);
                prop_assert_eq!(out.err, ErrorCode::Ok);
                prop_assert_eq!(out.events, ev);
                h.open_session(*session, 1000);
            }
        }
        check_tree(&h, &m)?;
        prop_assert_eq!(h.tree.last_processed_zxid(), h.zxid);
        prop_assert!(h.pending.is_empty());
    }
    // The digest kept incrementally equals one computed from scratch.
    let mut buf = Vec::new();
    h.tree.write_snapshot(&mut buf).unwrap();
    let loaded = zk_tree::Tree::read_snapshot(&buf[..], zk_tree::TreeConfig::default()).unwrap();
    prop_assert_eq!(loaded.digest(), h.tree.digest());
    prop_assert_eq!(dump(&loaded), dump(&h.tree));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
