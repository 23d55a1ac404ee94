//! Watches, as ZooKeeper's `WatchManager` (3.8): two tables (data watches,
//! child watches), each mapping a path to its watchers and each (watcher,
//! path) to one mode: standard (one-shot), persistent or persistent
//! recursive. `addWatch` puts a persistent watch in both tables; a later
//! standard registration by the same watcher on the same path replaces the
//! mode, as in ZooKeeper 3.8.
//!
//! Triggering walks the path and, only while recursive watches exist, its
//! ancestors: standard and persistent watchers fire on the exact path
//! (standard ones are removed), recursive ones on the path or any ancestor,
//! never for NodeChildrenChanged. A watcher fires at most once per trigger.

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::WatcherId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Standard,
    Persistent,
    Recursive,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    by_path: HashMap<Arc<str>, HashMap<WatcherId, Mode>>,
    by_watcher: HashMap<WatcherId, HashSet<Arc<str>>>,
    recursive: usize,
}

impl Table {
    pub(crate) fn add(&mut self, path: &str, w: WatcherId, mode: Mode) {
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        let prev = self.by_path.entry(key.clone()).or_default().insert(w, mode);
        if prev == Some(Mode::Recursive) {
            self.recursive -= 1;
        }
        if mode == Mode::Recursive {
            self.recursive += 1;
        }
        self.by_watcher.entry(w).or_default().insert(key);
    }

    pub(crate) fn contains(&self, path: &str, w: WatcherId) -> bool {
        self.by_path.get(path).is_some_and(|m| m.contains_key(&w))
    }

    pub(crate) fn remove(&mut self, path: &str, w: WatcherId) -> bool {
        let Some(paths) = self.by_watcher.get_mut(&w) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        if paths.is_empty() {
            self.by_watcher.remove(&w);
        }
        let Some(ws) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(mode) = ws.remove(&w) else {
            return false;
        };
        if mode == Mode::Recursive {
            self.recursive -= 1;
        }
        if ws.is_empty() {
            self.by_path.remove(path);
        }
        true
    }

    pub(crate) fn remove_watcher(&mut self, w: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&w) else {
            return;
        };
        for p in paths {
            if let Some(ws) = self.by_path.get_mut(&*p) {
                if ws.remove(&w) == Some(Mode::Recursive) {
                    self.recursive -= 1;
                }
                if ws.is_empty() {
                    self.by_path.remove(&*p);
                }
            }
        }
    }

    /// Fires `path`; returns the watchers reached (sorted, distinct).
    pub(crate) fn trigger(&mut self, path: &str, children_changed: bool) -> Vec<WatcherId> {
        let mut out = Vec::new();
        let mut local = path;
        let mut at_parent = false;
        loop {
            if let Some(ws) = self.by_path.get_mut(local) {
                let mut removed = Vec::new();
                for (&w, &mode) in ws.iter() {
                    match mode {
                        Mode::Recursive => {
                            if !children_changed {
                                out.push(w);
                            }
                        }
                        _ if at_parent => {}
                        Mode::Persistent => out.push(w),
                        Mode::Standard => {
                            out.push(w);
                            removed.push(w);
                        }
                    }
                }
                for w in removed {
                    ws.remove(&w);
                    if let Some(paths) = self.by_watcher.get_mut(&w) {
                        paths.remove(local);
                        if paths.is_empty() {
                            self.by_watcher.remove(&w);
                        }
                    }
                }
                if ws.is_empty() {
                    self.by_path.remove(local);
                }
            }
            if self.recursive == 0 || local == "/" {
                break;
            }
            local = match local.rfind('/') {
                Some(0) => "/",
                Some(i) => &local[..i],
                None => break,
            };
            at_parent = true;
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn count(&self) -> usize {
        self.by_path.values().map(|m| m.len()).sum()
    }

    pub(crate) fn watchers(&self) -> usize {
        self.by_watcher.len()
    }

    pub(crate) fn paths(&self) -> usize {
        self.by_path.len()
    }

    pub(crate) fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v: Vec<(WatcherId, Vec<String>)> = self
            .by_watcher
            .iter()
            .map(|(&w, ps)| {
                let mut ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                ps.sort();
                (w, ps)
            })
            .collect();
        v.sort();
        v
    }

    pub(crate) fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut v: Vec<(String, Vec<WatcherId>)> = self
            .by_path
            .iter()
            .map(|(p, ws)| {
                let mut ws: Vec<WatcherId> = ws.keys().copied().collect();
                ws.sort_unstable();
                (p.to_string(), ws)
            })
            .collect();
        v.sort();
        v
    }
}

/// The data and child watch tables.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    pub(crate) data: Table,
    pub(crate) child: Table,
}

impl Watches {
    /// No watch of any kind is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.by_path.is_empty() && self.child.by_path.is_empty()
    }
}
