//! A tick-bucketed expiry queue, as ZooKeeper's `ExpiryQueue`.
//!
//! Expiry times are rounded up to the next multiple of the interval (the tick),
//! so elements expire in batches, one bucket per tick, and touching an element
//! only moves it when its rounded deadline changes. Time is passed in (ms on any
//! monotonic clock), so the queue is a plain data structure and tests need no clock.

use std::collections::BTreeMap;
use std::hash::Hash;

use hashbrown::{HashMap, HashSet};

/// Elements with deadlines rounded up to multiples of `interval`.
#[derive(Debug)]
pub struct ExpiryQueue<T: Eq + Hash + Copy> {
    interval: u64,
    deadline_of: HashMap<T, u64>,
    buckets: BTreeMap<u64, HashSet<T>>,
    next_expiration: u64,
}

impl<T: Eq + Hash + Copy> ExpiryQueue<T> {
    /// A queue with buckets `interval` ms wide, starting at `now`.
    pub fn new(interval: u64, now: u64) -> Self {
        let interval = interval.max(1);
        Self {
            interval,
            deadline_of: HashMap::new(),
            buckets: BTreeMap::new(),
            next_expiration: Self::round_up(interval, now),
        }
    }

    fn round_up(interval: u64, t: u64) -> u64 {
        (t / interval + 1) * interval
    }

    /// Sets `elem` to expire `timeout` ms after `now` (rounded up to the next
    /// bucket). Returns the new deadline, or `None` if it did not change.
    pub fn update(&mut self, elem: T, timeout: u64, now: u64) -> Option<u64> {
        let deadline = Self::round_up(self.interval, now.saturating_add(timeout));
        let prev = self.deadline_of.insert(elem, deadline);
        if prev == Some(deadline) {
            return None;
        }
        if let Some(p) = prev {
            self.remove_from_bucket(p, &elem);
        }
        self.buckets.entry(deadline).or_default().insert(elem);
        Some(deadline)
    }

    fn remove_from_bucket(&mut self, deadline: u64, elem: &T) {
        if let Some(b) = self.buckets.get_mut(&deadline) {
            b.remove(elem);
            if b.is_empty() {
                self.buckets.remove(&deadline);
            }
        }
    }

    /// Stops tracking `elem`; returns its deadline if it was tracked.
    pub fn remove(&mut self, elem: &T) -> Option<u64> {
        let d = self.deadline_of.remove(elem)?;
        self.remove_from_bucket(d, elem);
        Some(d)
    }

    /// Ms until the next bucket is due (0 if it is due now).
    pub fn wait_time(&self, now: u64) -> u64 {
        self.next_expiration.saturating_sub(now)
    }

    /// Takes every element whose bucket is due at `now` (all buckets up to
    /// `now`, so a late caller misses nothing).
    pub fn poll(&mut self, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        if now < self.next_expiration {
            return out;
        }
        while let Some((&d, _)) = self.buckets.first_key_value() {
            if d > now {
                break;
            }
            if let Some(set) = self.buckets.remove(&d) {
                for e in set {
                    self.deadline_of.remove(&e);
                    out.push(e);
                }
            }
        }
        self.next_expiration = Self::round_up(self.interval, now);
        out
    }

    /// The deadline of `elem`, if tracked.
    pub fn deadline(&self, elem: &T) -> Option<u64> {
        self.deadline_of.get(elem).copied()
    }

    /// Number of tracked elements.
    pub fn len(&self) -> usize {
        self.deadline_of.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.deadline_of.is_empty()
    }

    /// Buckets in deadline order (for `dump`).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, &HashSet<T>)> {
        self.buckets.iter().map(|(d, s)| (*d, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_the_next_tick() {
        let mut q = ExpiryQueue::new(2000, 0);
        assert_eq!(q.update(1u64, 3000, 100), Some(4000));
        // Same bucket: no move.
        assert_eq!(q.update(1u64, 3000, 900), None);
        assert_eq!(q.update(1u64, 3000, 2100), Some(6000));
        assert_eq!(q.deadline(&1), Some(6000));
    }

    #[test]
    fn expires_in_batches_and_touch_postpones() {
        let mut q = ExpiryQueue::new(1000, 0);
        q.update(1u64, 1500, 0); // 2000
        q.update(2u64, 1800, 0); // 2000
        q.update(3u64, 5000, 0); // 6000
        assert_eq!(q.wait_time(0), 1000);
        assert!(q.poll(999).is_empty());
        assert!(q.poll(1000).is_empty());
        q.update(2u64, 1500, 1200); // touched: now 3000
        let mut first = q.poll(2000);
        first.sort();
        assert_eq!(first, vec![1]);
        assert_eq!(q.poll(3500), vec![2]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.remove(&3), Some(6000));
        assert!(q.poll(10_000).is_empty());
        assert!(q.is_empty());
    }

    #[test]
    fn late_poll_takes_every_overdue_bucket() {
        let mut q = ExpiryQueue::new(10, 0);
        for i in 0..10u64 {
            q.update(i, i * 10, 0);
        }
        let mut all = q.poll(1000);
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
