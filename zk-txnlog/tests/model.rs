//! Property test: random append / truncate / crash / reopen / purge / roll / fault sequences on
//! the crash-image backend, checked against a plain `Vec` model after every step.

use proptest::prelude::*;
use zk_txnlog::{Backend, Log, MemDisk, Options};

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` records of `len` bytes with key gaps from `gap`, waiting for each.
    Append {
        n: u8,
        len: u16,
        gap: u8,
    },
    /// Append `n` records without waiting, then crash (some of them may survive, in order).
    AppendThenCrash {
        n: u8,
        seed: u64,
    },
    /// Truncate after the record at `frac` of the log (or below the first).
    Truncate {
        frac: u8,
    },
    /// Power cut now, reopen from the image.
    Crash {
        seed: u64,
    },
    /// Clean close and reopen.
    Reopen,
    /// Purge whole segments before the key at `frac` of the log.
    Purge {
        frac: u8,
    },
    Roll,
    /// Inject an I/O error at the `n`th write or sync, append a few records, then crash.
    Fault {
        n: u8,
        sync: bool,
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..20, 0u16..300, 0u8..4).prop_map(|(n, len, gap)| Op::Append { n, len, gap }),
        2 => (1u8..20, any::<u64>()).prop_map(|(n, seed)| Op::AppendThenCrash { n, seed }),
        2 => any::<u8>().prop_map(|frac| Op::Truncate { frac }),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
        1 => any::<u8>().prop_map(|frac| Op::Purge { frac }),
        1 => Just(Op::Roll),
        1 => (0u8..8, any::<bool>(), any::<u64>()).prop_map(|(n, sync, seed)| Op::Fault { n, sync, seed }),
    ]
}

fn opts(disk: &MemDisk) -> Options {
    Options::default()
        .backend(Backend::Memory(disk.clone()))
        .segment_bytes(2048)
        .max_record_bytes(300)
        .max_unsynced_bytes(1024)
}

fn payload(key: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (key as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

struct Harness {
    disk: MemDisk,
    log: Option<Log>,
    /// Acknowledged records, in order: exactly what must be in the log.
    model: Vec<(u64, Vec<u8>)>,
    next_key: u64,
}

impl Harness {
    fn log(&self) -> &Log {
        self.log.as_ref().expect("open")
    }

    fn contents(&self) -> Vec<(u64, Vec<u8>)> {
        self.log()
            .iter_from(0)
            .collect::<Result<_, _>>()
            .expect("log reads back")
    }

    /// Power cut: reopen from an image; it must open (a crash alone never looks like damage:
    /// no surviving frame may prove durable bytes that a crash tore, DESIGN.md §10) and hold
    /// every acknowledged record, then at most a prefix of `pending`.
    fn crash(&mut self, seed: u64, pending: &[(u64, Vec<u8>)]) -> Result<(), TestCaseError> {
        let img = self.disk.crash(seed);
        self.log = None;
        self.disk = img;
        self.log = Some(
            Log::open("mem", opts(&self.disk)).map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        let got = self.contents();
        prop_assert!(
            got.len() >= self.model.len(),
            "lost acked records: {} < {}",
            got.len(),
            self.model.len()
        );
        prop_assert_eq!(&got[..self.model.len()], &self.model[..]);
        let extra = &got[self.model.len()..];
        prop_assert!(extra.len() <= pending.len());
        prop_assert_eq!(extra, &pending[..extra.len()]);
        self.model = got;
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.contents(), self.model.clone());
        prop_assert_eq!(self.log().last_key(), self.model.last().map(|r| r.0));
        Ok(())
    }

    fn key_at(&self, frac: u8) -> u64 {
        if self.model.is_empty() {
            return 0;
        }
        let i = frac as usize * self.model.len() / 256;
        self.model[i].0
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Append { n, len, gap } => {
                for _ in 0..n {
                    let k = self.next_key;
                    self.next_key += 1 + gap as u64;
                    let v = payload(k, len as usize);
                    self.log().append(k, &v).unwrap().wait().unwrap();
                    self.model.push((k, v));
                }
                self.check()?;
            }
            Op::AppendThenCrash { n, seed } => {
                let mut pending = Vec::new();
                for _ in 0..n {
                    let k = self.next_key;
                    self.next_key += 1;
                    let v = payload(k, (k % 200) as usize);
                    let _ = self.log().append(k, &v).unwrap();
                    pending.push((k, v));
                }
                self.crash(seed, &pending)?;
            }
            Op::Truncate { frac } => {
                let k = self.key_at(frac).saturating_sub(u64::from(frac % 2));
                self.log().truncate_after(k).unwrap();
                self.model.retain(|r| r.0 <= k);
                self.next_key = self.next_key.max(k + 1);
                self.check()?;
            }
            Op::Crash { seed } => self.crash(seed, &[])?,
            Op::Reopen => {
                self.log.take().unwrap().close().unwrap();
                self.log = Some(Log::open("mem", opts(&self.disk)).unwrap());
                self.check()?;
            }
            Op::Purge { frac } => {
                let k = self.key_at(frac);
                let removed = self.log().purge_before(k).unwrap();
                let first = self.log().first_key();
                if !removed.is_empty() {
                    let first = first.expect("purge keeps the last segment");
                    prop_assert!(first <= k || self.model.iter().all(|r| r.0 < k));
                    self.model.retain(|r| r.0 >= first);
                }
                // Every record at or above k survives purge.
                self.check()?;
            }
            Op::Roll => {
                self.log().roll().unwrap();
            }
            Op::Fault { n, sync, seed } => {
                if sync {
                    self.disk.fail_sync_after(n as u64);
                } else {
                    self.disk.fail_write_after(n as u64);
                }
                let mut pending = Vec::new();
                for _ in 0..6 {
                    let k = self.next_key;
                    self.next_key += 1;
                    let v = payload(k, 150);
                    match self.log().append(k, &v).and_then(|t| t.wait()) {
                        Ok(_) => {
                            prop_assert!(pending.is_empty());
                            self.model.push((k, v));
                        }
                        Err(_) => pending.push((k, v)),
                    }
                }
                self.crash(seed, &pending)?;
            }
        }
        Ok(())
    }
}

proptest! {
    // 64 cases by default (fast CI); PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let disk = MemDisk::new();
        let log = Log::open("mem", opts(&disk)).unwrap();
        let mut h = Harness { disk, log: Some(log), model: Vec::new(), next_key: 1 };
        for op in &ops {
            h.step(op)?;
        }
    }
}
