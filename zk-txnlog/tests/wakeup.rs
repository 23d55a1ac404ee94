//! The sync thread is signalled only when it waits for work: appenders racing it from many
//! threads, with idle gaps between bursts (the sync thread going to sleep and being woken
//! again), must never leave a ticket waiting forever. A watchdog turns a lost wake-up into a
//! failure instead of a hang.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use zk_txnlog::{Backend, Log, MemDisk, Options};

fn stress(opts: Options, threads: u64, bursts: u64, per_burst: u64) {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let log = Arc::new(Log::open("/wakeup", opts).expect("open"));
        // Keys must increase: one lock hands them out and appends in order.
        let next = Arc::new(Mutex::new(1u64));
        let acked = Arc::new(AtomicU64::new(0));
        for burst in 0..bursts {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let (log, next, acked) = (log.clone(), next.clone(), acked.clone());
                    std::thread::spawn(move || {
                        for i in 0..per_burst {
                            let t = {
                                let mut k = next.lock().unwrap();
                                let t = log.append(*k, &k.to_be_bytes()).expect("append");
                                *k += 1;
                                t
                            };
                            // Mostly wait at once (the sync thread often idle), sometimes
                            // pipeline a few (it stays busy).
                            if i % 4 != 3 {
                                t.wait().expect("durable");
                            } else {
                                drop(t);
                            }
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            // A lone append after the burst: it must be made durable by itself.
            let k = {
                let mut k = next.lock().unwrap();
                *k += 1;
                *k - 1
            };
            log.append(k, b"tail")
                .expect("append")
                .wait()
                .expect("tail durable");
            if burst % 8 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let last = *next.lock().unwrap() - 1;
        assert_eq!(log.durable_key(), Some(last));
        assert_eq!(acked.load(Ordering::Relaxed), bursts * threads * per_burst);
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("stress run finished (a lost wake-up would hang a ticket)");
}

#[test]
fn no_lost_wakeups_under_racing_appenders() {
    let disk = MemDisk::new();
    let opts = Options::default()
        .backend(Backend::Memory(disk))
        .segment_bytes(1 << 16)
        .max_record_bytes(64)
        .max_unsynced_bytes(4096);
    stress(opts, 8, 200, 50);
}

#[test]
fn no_lost_wakeups_with_a_flush_delay_and_small_batches() {
    let disk = MemDisk::new();
    let opts = Options::default()
        .backend(Backend::Memory(disk))
        .segment_bytes(1 << 16)
        .max_record_bytes(64)
        .max_unsynced_bytes(4096)
        .max_batch(3)
        .flush_delay(Duration::from_micros(50));
    stress(opts, 6, 100, 30);
}
