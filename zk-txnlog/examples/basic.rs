//! Using zk-txnlog from another project: a tiny replicated-state-machine style store.
//!
//! `cargo run -p zk-txnlog --example basic [DIR]` — writes into DIR (default: a temp dir), can be
//! run repeatedly on the same DIR to see recovery resume where the last run stopped.

use std::io::{Read, Write};
use std::sync::Arc;

use zk_txnlog::{Log, Options, SnapshotStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    // The log and the snapshots may live on different disks; here they share a directory.
    let log = Arc::new(Log::open(
        dir.join("log"),
        Options::default().segment_bytes(8 << 20),
    )?);
    let snaps = SnapshotStore::open(dir.join("snap"))?;

    // 1. Recover: newest valid snapshot, then replay the log after it.
    let rec = zk_txnlog::recover(&log, &snaps)?;
    let mut base: u64 = 0; // our "state machine": a sum of the records
    if let Some(mut snap) = rec.snapshot {
        let mut b = [0u8; 8];
        snap.read_exact(&mut b)?;
        base = u64::from_le_bytes(b);
        println!("loaded snapshot {:#x}: state {base}", snap.key());
    }
    let mut state = base;
    for r in log.iter_from(rec.replay_from) {
        let (_key, data) = r?;
        state += u64::from(data[0]);
    }
    let mut next = log.last_key().map_or(1, |k| k + 1);
    println!("recovered {:?}; state {state}", log.recovery_report());

    // 2. Append from several threads; each waits for its record to be durable (group commit
    //    makes one fdatasync serve all of them).
    let keys = Arc::new(std::sync::Mutex::new(next));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (log, keys) = (log.clone(), keys.clone());
            std::thread::spawn(move || -> zk_txnlog::Result<()> {
                for _ in 0..25 {
                    let ticket = {
                        let mut k = keys.lock().expect("key lock");
                        *k += 1;
                        log.append(*k - 1, &[1u8])?
                    };
                    ticket.wait()?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread")?;
    }
    next = *keys.lock().expect("key lock");

    // 3. Or, for an event loop: completions on a channel, never blocking the appender.
    let (tx, rx) = crossbeam_channel::unbounded();
    for k in next..next + 10 {
        let tx = tx.clone();
        log.append_with(k, &[1u8], move |r| {
            let _ = tx.send(r);
        })?;
    }
    for _ in 0..10 {
        rx.recv()??;
    }
    let last = log.last_key().expect("records appended");
    state = log
        .iter_from(rec.replay_from)
        .try_fold(base, |s, r| r.map(|(_, d)| s + u64::from(d[0])))?;

    // 4. Snapshot the state at `last`, roll the log, apply retention.
    let mut w = snaps.create(last)?;
    w.write_all(&state.to_le_bytes())?;
    w.finish()?;
    log.roll()?;
    let purged = zk_txnlog::purge(&log, &snaps, 3)?;
    println!("snapshot at {last:#x}, state {state}; purged {purged:?}");
    Ok(())
}
