//! Sessions: ids, passwords, timeouts, owners and expiry.
//!
//! * **Ids** as ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`: the top
//!   byte is the server id, the next five bytes come from the wall clock in ms,
//!   the low two bytes count up. After a restart the counter also starts above
//!   every recovered session id of this server, so ids are never reused.
//! * **Passwords** are the first 16 bytes of `sha1(secret ‖ session id as 8
//!   big-endian bytes)`, where `secret` is 16 random bytes created once in
//!   dataDir (`server.secret`). They are deterministic (a client can resume after
//!   a restart) and cannot be derived from the id alone.
//! * **Expiry** is driven by a tick-bucketed [`ExpiryQueue`]: every packet from a
//!   session touches it; when its bucket comes due the session is marked
//!   closing and the caller proposes a closeSession for it.
//! * **Local sessions** (read-only mode's, `sequencer/read_only.rs`) live in the
//!   same table, marked `local`: no txn ever names them, and they expire here
//!   ([`SessionTracker::expired_local`]) while the others wait for a leader.

use std::io::Read;
use std::path::Path;

use hashbrown::HashMap;
use sha1::{Digest, Sha1};

use crate::expiry::ExpiryQueue;

/// Container nodes use this ephemeral owner; a session never gets it.
const CONTAINER_OWNER: i64 = i64::MIN;

/// One live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The negotiated timeout in ms.
    pub timeout: i32,
    /// Set once expiry or closeSession started: the session takes no new requests.
    pub closing: bool,
    /// The connection currently bound to it (0 = none).
    pub owner: u64,
    /// A local session of read-only mode: never logged nor replicated.
    pub local: bool,
}

/// The table of sessions and their expiry.
#[derive(Debug)]
pub struct SessionTracker {
    server_id: u8,
    secret: [u8; 16],
    /// Ensemble mode: passwords as Apache computes them from the id alone
    /// (`java_random::session_password`), so every server validates them.
    apache_passwords: bool,
    next_id: i64,
    sessions: HashMap<i64, Session>,
    expiry: ExpiryQueue<i64>,
    /// Learner: the sessions touched since the last PING answer, with their
    /// timeouts (`None`: not reporting, standalone or leader).
    touched: Option<HashMap<i64, i32>>,
}

/// The first session id for `server_id` at wall-clock time `now_ms`.
pub fn initial_session_id(server_id: u8, now_ms: u64) -> i64 {
    let time_bits = ((now_ms << 24) >> 8) as i64;
    let mut id = time_bits | (i64::from(server_id) << 56);
    if id == CONTAINER_OWNER {
        id += 1;
    }
    id
}

/// Derives a session's password.
pub fn password(secret: &[u8; 16], session_id: i64) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(secret);
    h.update(session_id.to_be_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Loads `server.secret` from `dir`, creating it from /dev/urandom (falling back
/// to time and pid entropy) the first time.
pub fn load_or_create_secret(dir: &Path) -> std::io::Result<[u8; 16]> {
    let path = dir.join("server.secret");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 16 => {
            let mut s = [0u8; 16];
            s.copy_from_slice(&bytes);
            return Ok(s);
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not 16 bytes", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .is_ok();
    if !filled {
        let mut h = Sha1::new();
        h.update(format!(
            "{:?}{}",
            std::time::SystemTime::now(),
            std::process::id()
        ));
        secret.copy_from_slice(&h.finalize()[..16]);
    }
    let tmp = dir.join("server.secret.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&secret)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(secret)
}

impl SessionTracker {
    /// An empty tracker; `tick_ms` is the bucket width, `now` the monotonic ms clock.
    pub fn new(server_id: u8, secret: [u8; 16], tick_ms: u64, now: u64, wall_ms: u64) -> Self {
        Self {
            server_id,
            secret,
            apache_passwords: false,
            next_id: initial_session_id(server_id, wall_ms),
            sessions: HashMap::new(),
            expiry: ExpiryQueue::new(tick_ms, now),
            touched: None,
        }
    }

    /// A fresh id for a new session.
    pub fn next_session_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.next_id == CONTAINER_OWNER {
            self.next_id += 1;
        }
        id
    }

    /// The password of `session_id`.
    pub fn password(&self, session_id: i64) -> [u8; 16] {
        if self.apache_passwords {
            crate::java_random::session_password(session_id)
        } else {
            password(&self.secret, session_id)
        }
    }

    /// Learner: starts (or stops) collecting the sessions touched here for
    /// the leader, which alone expires sessions (quorum.md §3.8).
    pub fn report_touches(&mut self, on: bool) {
        self.touched = on.then(HashMap::new);
    }

    /// The sessions touched since the last call, with their timeouts: a
    /// learner's PING answer (Apache's `LearnerSessionTracker.snapshot`).
    pub fn take_touched(&mut self) -> Vec<(i64, i32)> {
        match &mut self.touched {
            Some(t) => t.drain().collect(),
            None => Vec::new(),
        }
    }

    /// Ensemble mode: passwords from the id alone, as every Apache server
    /// computes them (a client moving between servers keeps its session).
    pub fn use_apache_passwords(&mut self) {
        self.apache_passwords = true;
    }

    /// Starts tracking a session (new, or recovered from the log: its expiry
    /// restarts from `now`).
    pub fn add(&mut self, id: i64, timeout: i32, now: u64) {
        if (id >> 56) as u8 == self.server_id && id >= self.next_id {
            self.next_id = id + 1;
        }
        self.sessions.entry(id).or_insert(Session {
            timeout,
            closing: false,
            owner: 0,
            local: false,
        });
        self.expiry.update(id, timeout.max(0) as u64, now);
    }

    /// Starts tracking a new local session (read-only mode).
    pub fn add_local(&mut self, id: i64, timeout: i32, now: u64) {
        self.add(id, timeout, now);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.local = true;
        }
    }

    /// Whether `id` is a local session.
    pub fn is_local(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.local)
    }

    /// How many local sessions there are.
    pub fn local_count(&self) -> usize {
        self.sessions.values().filter(|s| s.local).count()
    }

    /// The local sessions and their owners.
    pub fn local_sessions(&self) -> Vec<(i64, u64)> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.local)
            .map(|(&id, s)| (id, s.owner))
            .collect()
    }

    /// Postpones expiry after activity; false if the session is unknown or closing.
    pub fn touch(&mut self, id: i64, now: u64) -> bool {
        match self.sessions.get(&id) {
            Some(s) if !s.closing => {
                let t = s.timeout.max(0) as u64;
                self.expiry.update(id, t, now);
                if let Some(touched) = &mut self.touched {
                    touched.insert(id, s.timeout);
                }
                true
            }
            _ => false,
        }
    }

    /// The session, if live.
    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Whether `id` is tracked and not closing.
    pub fn is_live(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Binds the session to a connection; returns the previous owner (0 if none).
    pub fn set_owner(&mut self, id: i64, conn: u64) -> u64 {
        match self.sessions.get_mut(&id) {
            Some(s) => std::mem::replace(&mut s.owner, conn),
            None => 0,
        }
    }

    /// Clears the owner if it is still `conn`.
    pub fn release_owner(&mut self, id: i64, conn: u64) {
        if let Some(s) = self.sessions.get_mut(&id)
            && s.owner == conn
        {
            s.owner = 0;
        }
    }

    /// Marks a session closing; returns whether it was live.
    pub fn set_closing(&mut self, id: i64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                s.closing = true;
                true
            }
            _ => false,
        }
    }

    /// Makes the table hold exactly `live` (id, timeout), as a tree rebuilt
    /// or loaded from a leader's SNAP has them: sessions it lacks are
    /// forgotten, new ones start their expiry at `now`, and the others keep
    /// their owner and deadline.
    pub fn replace_with(&mut self, live: &[(i64, i32)], now: u64) {
        let keep: hashbrown::HashSet<i64> = live.iter().map(|s| s.0).collect();
        let gone: Vec<i64> = self
            .sessions
            .keys()
            .filter(|id| !keep.contains(*id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id);
        }
        for &(id, timeout) in live {
            if !self.sessions.contains_key(&id) {
                self.add(id, timeout, now);
            }
        }
    }

    /// Forgets a session (after its closeSession committed).
    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.expiry.remove(&id);
        self.sessions.remove(&id)
    }

    /// Sessions whose deadline passed; they are marked closing.
    pub fn expired(&mut self, now: u64) -> Vec<i64> {
        let ids = self.expiry.poll(now);
        for id in &ids {
            if let Some(s) = self.sessions.get_mut(id) {
                s.closing = true;
            }
        }
        ids
    }

    /// Read-only mode: the local sessions whose deadline passed (marked
    /// closing). The others due then are global sessions, which only a
    /// leader expires: their timeout starts again from `now`, as a new
    /// leader's tracker starts every session's.
    pub fn expired_local(&mut self, now: u64) -> Vec<i64> {
        let mut ids = self.expiry.poll(now);
        ids.retain(|id| match self.sessions.get_mut(id) {
            Some(s) if s.local => {
                s.closing = true;
                true
            }
            Some(s) => {
                self.expiry.update(*id, s.timeout.max(0) as u64, now);
                false
            }
            None => false,
        });
        ids
    }

    /// Ms until the next expiry bucket is due.
    pub fn wait_time(&self, now: u64) -> u64 {
        self.expiry.wait_time(now)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// The sessions that are not local, by id, with their timeouts (a
    /// learner's `dump`: Apache's `LearnerSessionTracker` lists its global
    /// sessions so).
    pub fn global_sessions(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.local)
            .map(|(&id, s)| (id, s.timeout))
            .collect();
        v.sort_unstable();
        v
    }

    /// Expiry buckets of the local sessions only (deadline ms, ids).
    pub fn local_expiry_buckets(&self) -> Vec<(u64, Vec<i64>)> {
        self.expiry_buckets()
            .into_iter()
            .filter_map(|(d, ids)| {
                let ids: Vec<i64> = ids.into_iter().filter(|id| self.is_local(*id)).collect();
                (!ids.is_empty()).then_some((d, ids))
            })
            .collect()
    }

    /// Expiry buckets (deadline ms, session ids) for `dump`.
    pub fn expiry_buckets(&self) -> Vec<(u64, Vec<i64>)> {
        self.expiry
            .buckets()
            .map(|(d, s)| {
                let mut v: Vec<i64> = s.iter().copied().collect();
                v.sort_unstable();
                (d, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_server_id_and_count_up() {
        let id = initial_session_id(3, 1_700_000_000_000);
        assert_eq!((id >> 56) as u8, 3);
        assert_eq!(id & 0xffff, 0, "low two bytes start at zero");
        let mut t = SessionTracker::new(3, [7; 16], 2000, 0, 1_700_000_000_000);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(b, a + 1);
        // A recovered id above the counter pushes it up.
        t.add(a + 100, 30000, 0);
        assert_eq!(t.next_session_id(), a + 101);
    }

    #[test]
    fn passwords_depend_on_secret_and_id() {
        let p1 = password(&[1; 16], 42);
        assert_eq!(p1, password(&[1; 16], 42));
        assert_ne!(p1, password(&[2; 16], 42));
        assert_ne!(p1, password(&[1; 16], 43));
    }

    #[test]
    fn secret_persists() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_secret(dir.path()).unwrap();
        let b = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn expiry_marks_closing_and_touch_postpones() {
        let mut t = SessionTracker::new(0, [0; 16], 1000, 0, 0);
        t.add(1, 2000, 0); // deadline 3000
        t.add(2, 2000, 0);
        assert!(t.touch(2, 1500)); // deadline 4000
        assert!(t.expired(2999).is_empty());
        assert_eq!(t.expired(3000), vec![1]);
        assert!(!t.is_live(1));
        assert!(!t.touch(1, 3001), "a closing session is not touched");
        assert_eq!(t.expired(4000), vec![2]);
        t.remove(1);
        assert!(t.get(1).is_none());
    }

    #[test]
    fn only_local_sessions_expire_in_read_only_mode() {
        let mut t = SessionTracker::new(0, [0; 16], 1000, 0, 0);
        t.add(1, 2000, 0); // global, deadline 3000
        t.add_local(2, 2000, 0); // local, deadline 3000
        assert!(t.is_local(2) && !t.is_local(1));
        assert_eq!(t.local_sessions(), vec![(2, 0)]);
        assert_eq!(t.expired_local(3000), vec![2]);
        assert!(t.is_live(1), "a global session is left to a leader");
        assert!(!t.is_live(2));
        // The global one's timeout started again at 3000 (bucket 6000).
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![1]);
    }

    #[test]
    fn owners() {
        let mut t = SessionTracker::new(0, [0; 16], 1000, 0, 0);
        t.add(5, 2000, 0);
        assert_eq!(t.set_owner(5, 10), 0);
        assert_eq!(t.set_owner(5, 11), 10);
        t.release_owner(5, 10);
        assert_eq!(t.get(5).unwrap().owner, 11);
        t.release_owner(5, 11);
        assert_eq!(t.get(5).unwrap().owner, 0);
    }
}
