//! Per-session request order: a session's requests are answered in the
//! order it sent them. Writes take their place when they are proposed; a
//! read (or ping, sync, setWatches, a rejected request) that arrives while
//! the session has writes in flight waits behind them and is released once
//! the writes before it are committed and answered, as ZooKeeper's
//! CommitProcessor does.
//!
//! Writes are keyed by (session, cxid), never by a zxid: a follower learns a
//! txn's zxid only when the leader's PROPOSAL arrives, but it knows the
//! session and cxid of its own clients' requests, and the committed txn's
//! header carries both. Pure: no I/O, no clock.

use std::collections::VecDeque;

use hashbrown::HashMap;

enum Queued<T> {
    /// A write of the session, proposed and not yet committed.
    Write { cxid: i32 },
    /// Something to answer once the writes before it are: boxed, so that
    /// the queue of a session with writes in flight holds 16 bytes a write,
    /// not the size of a waiting request (176 bytes, copied in and out with
    /// every write of a write load).
    Waiting(Box<T>),
}

/// The per-session queues (only sessions with a write in flight have one).
pub(super) struct SessionOrder<T> {
    queues: HashMap<i64, VecDeque<Queued<T>>>,
}

impl<T> Default for SessionOrder<T> {
    fn default() -> Self {
        SessionOrder {
            queues: HashMap::new(),
        }
    }
}

impl<T> SessionOrder<T> {
    /// A write of `session` with `cxid` was proposed: what the session sends
    /// after it waits for it.
    pub fn write_proposed(&mut self, session: i64, cxid: i32) {
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Write { cxid });
    }

    /// Queues `item` behind the session's writes in flight; without any,
    /// gives it back to be answered now.
    pub fn wait_or_ready(&mut self, session: i64, item: T) -> Option<T> {
        match self.queues.get_mut(&session) {
            Some(q) if !q.is_empty() => {
                q.push_back(Queued::Waiting(Box::new(item)));
                None
            }
            _ => Some(item),
        }
    }

    /// The write (`session`, `cxid`) was committed and answered: the items
    /// that waited for it (and for no later write), in order.
    pub fn write_committed(&mut self, session: i64, cxid: i32) -> Vec<T> {
        let mut ready = Vec::new();
        let Some(q) = self.queues.get_mut(&session) else {
            debug_assert!(false, "no write in flight for session {session:#x}");
            return ready;
        };
        match q.front() {
            Some(Queued::Write { cxid: c }) if *c == cxid => {
                q.pop_front();
            }
            _ => debug_assert!(false, "commit of {session:#x}/{cxid} out of session order"),
        }
        while let Some(Queued::Waiting(_)) = q.front() {
            if let Some(Queued::Waiting(item)) = q.pop_front() {
                ready.push(*item);
            }
        }
        if q.is_empty() {
            self.queues.remove(&session);
        }
        ready
    }

    /// The cxid of the write at the head of `session`'s queue, if the head
    /// is a write (a learner's forwarded `sync` completes only from there).
    pub fn head_write(&self, session: i64) -> Option<i32> {
        match self.queues.get(&session)?.front()? {
            Queued::Write { cxid } => Some(*cxid),
            Queued::Waiting(_) => None,
        }
    }

    /// Whether `session` has writes in flight.
    #[cfg(test)]
    pub fn is_busy(&self, session: i64) -> bool {
        self.queues.get(&session).is_some_and(|q| !q.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_without_writes_in_flight_is_answered_at_once() {
        let mut o = SessionOrder::default();
        assert_eq!(o.wait_or_ready(1, "r"), Some("r"));
        assert!(!o.is_busy(1));
    }

    #[test]
    fn reads_wait_for_the_writes_before_them_only() {
        let mut o = SessionOrder::default();
        o.write_proposed(1, 10);
        assert_eq!(o.wait_or_ready(1, "r1"), None);
        o.write_proposed(1, 12);
        assert_eq!(o.wait_or_ready(1, "r2"), None);
        assert_eq!(o.wait_or_ready(1, "r3"), None);
        // Another session is not held up.
        assert_eq!(o.wait_or_ready(2, "x"), Some("x"));
        assert_eq!(o.write_committed(1, 10), vec!["r1"]);
        assert!(o.is_busy(1));
        assert_eq!(o.write_committed(1, 12), vec!["r2", "r3"]);
        assert!(!o.is_busy(1));
        assert_eq!(o.wait_or_ready(1, "r4"), Some("r4"));
    }

    #[test]
    fn sessions_are_independent() {
        let mut o = SessionOrder::default();
        o.write_proposed(1, 1);
        o.write_proposed(2, 1);
        assert_eq!(o.wait_or_ready(1, "a"), None);
        assert_eq!(o.wait_or_ready(2, "b"), None);
        assert_eq!(o.write_committed(2, 1), vec!["b"]);
        assert!(o.is_busy(1));
        assert_eq!(o.write_committed(1, 1), vec!["a"]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of session order")]
    fn a_commit_out_of_session_order_is_caught() {
        let mut o: SessionOrder<()> = SessionOrder::default();
        o.write_proposed(1, 5);
        o.write_proposed(1, 6);
        o.write_committed(1, 6);
    }
}
