//! Real crash test (sled style): a child process appends under group commit and prints each key
//! once it is durable; the parent SIGKILLs it at a random moment, reopens the log and checks that
//! every reported key is present, in order, with intact bytes. Many rounds on one directory, so
//! each round also recovers from the previous kill. Alternates the mmap and pwrite backends.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use zk_txnlog::{Backend, Log, Options};

const CHILD_ENV: &str = "ZK_TXNLOG_CRASH_CHILD";
const ROUNDS: u64 = 30;

fn opts(round: u64) -> Options {
    Options::default()
        .backend(if round.is_multiple_of(2) {
            Backend::Mmap
        } else {
            Backend::Pwrite
        })
        .segment_bytes(256 << 10)
        .max_record_bytes(4096)
        .max_unsynced_bytes(64 << 10)
}

fn payload(key: u64) -> Vec<u8> {
    let n = (key.wrapping_mul(2_654_435_761) % 2000) as usize;
    (0..n)
        .map(|i| (key as u8).wrapping_mul(7).wrapping_add(i as u8))
        .collect()
}

/// Child mode: append forever from 4 threads, report durable keys on stdout.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only runs as the parent's child.
    };
    let round: u64 = std::env::var("ZK_TXNLOG_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let log = Arc::new(Log::open(&dir, opts(round)).expect("child opens the log"));
    let next = Arc::new(Mutex::new(log.last_key().map_or(1, |k| k + 1 + round % 3)));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    {
        let mut o = out.lock().unwrap();
        writeln!(o, "ready").unwrap();
        o.flush().unwrap();
    }
    let threads: Vec<std::thread::JoinHandle<()>> = (0..4)
        .map(|_| {
            let (log, next, out) = (log.clone(), next.clone(), out.clone());
            std::thread::spawn(move || {
                loop {
                    let mut n = next.lock().unwrap();
                    let k = *n;
                    *n += 1;
                    let out = out.clone();
                    log.append_with(k, &payload(k), move |r| {
                        if r.is_ok() {
                            let mut o = out.lock().unwrap();
                            writeln!(o, "{k}").unwrap();
                            o.flush().unwrap();
                        }
                    })
                    .unwrap();
                    drop(n);
                }
            })
        })
        .collect();
    // The appenders never return: this process ends by SIGKILL.
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn sigkill_during_group_commit_loses_no_acknowledged_record() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
    let mut acked: Vec<u64> = Vec::new();
    for round in 0..ROUNDS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 1 + rng % 400;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("ZK_TXNLOG_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        let mut lines = stdout.lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let Ok(k) = line.trim().parse::<u64>() else {
                continue;
            };
            assert!(
                acked.last().is_none_or(|&l| k > l),
                "child reported {k} out of order"
            );
            acked.push(k);
            seen += 1;
            if seen >= kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Keys reported after we stopped reading were durable too: collect them.
        for line in lines {
            if let Ok(k) = line.unwrap().trim().parse::<u64>() {
                acked.push(k);
            }
        }
        child.wait().unwrap();
        assert!(seen >= kill_after, "round {round}: child died early");

        // The child's spare segment (zeroed ahead on its helper thread) is left behind by
        // the kill, whole or partial, unless the kill caught it between two segments: R11.
        let stale_spare = dir.path().join("log.spare.tmp").exists();
        let log = Log::open(dir.path(), opts(round + 1)).unwrap();
        assert_eq!(
            log.recovery_report().removed_stale_spare.is_some(),
            stale_spare,
            "round {round}: a stale spare is removed at open"
        );
        let mut want = acked.iter().peekable();
        let mut last = None;
        for r in log.iter_from(0) {
            let (k, v) = r.unwrap();
            assert!(last.is_none_or(|l| k > l), "keys in order");
            last = Some(k);
            assert_eq!(v, payload(k), "bytes of key {k}");
            if want.peek() == Some(&&k) {
                want.next();
            }
        }
        assert!(
            want.peek().is_none(),
            "round {round}: acknowledged key {:?} missing",
            want.peek()
        );
    }
}
