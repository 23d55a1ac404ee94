//! zk-txnlog benches: durable append latency, throughput with 1..512 concurrent appenders,
//! mmap vs pwrite, next to this disk's raw `pwrite + fdatasync` latency measured the same way.
//!
//! Run with `cargo bench -p zk-benches --bench txnlog` (files go to `$ZK_TXNLOG_BENCH_DIR`, else
//! the system temp dir: point it at the disk you care about). `-- --test` is a quick smoke run.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use zk_txnlog::{Backend, Log, Options};

fn bench_dir() -> PathBuf {
    std::env::var_os("ZK_TXNLOG_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn backends() -> [(&'static str, Backend); 2] {
    [("mmap", Backend::Mmap), ("pwrite", Backend::Pwrite)]
}

fn open(dir: &tempfile::TempDir, backend: Backend) -> Log {
    Log::open(
        dir.path(),
        Options::default()
            .backend(backend)
            .segment_bytes(64 << 20)
            .max_unsynced_bytes(8 << 20),
    )
    .expect("open log")
}

/// The floor: one 4 KiB `pwrite` + `fdatasync` into a preallocated file, same directory kind.
fn raw_fdatasync(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().join("probe");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.write_all_at(&vec![0u8; 1 << 20], 0).unwrap();
    f.sync_all().unwrap();
    let block = vec![7u8; 4096];
    let mut i = 0u64;
    let mut g = c.benchmark_group("latency");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("raw_pwrite_4k_fdatasync", |b| {
        b.iter(|| {
            f.write_all_at(&block, (i % 256) * 4096).unwrap();
            f.sync_data().unwrap();
            i += 1;
        })
    });
    g.finish();
}

/// One record appended and waited for (one appender: every append pays one sync).
fn durable_append_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (name, backend) in backends() {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let log = open(&dir, backend);
        let data = vec![1u8; 100];
        let mut key = 0u64;
        g.bench_function(BenchmarkId::new("append_100B_durable", name), |b| {
            b.iter(|| {
                key += 1;
                log.append(key, &data).unwrap().wait().unwrap();
            })
        });
    }
    g.finish();
}

/// `threads` appenders, each appending and waiting in a loop (closed loop); reports records/s.
fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for size in [100usize, 1024] {
        for threads in [1usize, 8, 64, 512] {
            for (name, backend) in backends() {
                let per = (1024 / threads).clamp(2, 32);
                let dir = tempfile::tempdir_in(bench_dir()).unwrap();
                let log = Arc::new(open(&dir, backend));
                let next = Arc::new(Mutex::new(0u64));
                let start = Arc::new(Barrier::new(threads + 1));
                let done = Arc::new(Barrier::new(threads + 1));
                let stop = Arc::new(AtomicBool::new(false));
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let (log, next, start, done, stop) = (
                            log.clone(),
                            next.clone(),
                            start.clone(),
                            done.clone(),
                            stop.clone(),
                        );
                        std::thread::Builder::new()
                            .stack_size(64 << 10)
                            .spawn(move || {
                                let data = vec![3u8; size];
                                loop {
                                    start.wait();
                                    if stop.load(Ordering::Relaxed) {
                                        return;
                                    }
                                    for _ in 0..per {
                                        let t = {
                                            let mut k = next.lock().unwrap();
                                            *k += 1;
                                            log.append(*k, &data).unwrap()
                                        };
                                        t.wait().unwrap();
                                    }
                                    done.wait();
                                }
                            })
                            .unwrap()
                    })
                    .collect();
                g.throughput(Throughput::Elements((threads * per) as u64));
                let id =
                    BenchmarkId::new(format!("{size}B/{name}"), format!("{threads}_appenders"));
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let t0 = Instant::now();
                            start.wait();
                            done.wait();
                            total += t0.elapsed();
                        }
                        total
                    })
                });
                stop.store(true, Ordering::Relaxed);
                start.wait();
                for w in workers {
                    w.join().unwrap();
                }
            }
        }
    }
    g.finish();
}

/// One pipeline thread keeping `depth` appends in flight, completions by callback on a channel
/// (the server's pattern: an event loop that never blocks on the disk).
fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for depth in [64usize, 512] {
        for (name, backend) in backends() {
            let dir = tempfile::tempdir_in(bench_dir()).unwrap();
            let log = open(&dir, backend);
            let data = vec![3u8; 100];
            let (tx, rx) = crossbeam_channel::unbounded::<()>();
            let mut key = 0u64;
            let total = 2048usize;
            g.throughput(Throughput::Elements(total as u64));
            g.bench_function(
                BenchmarkId::new(format!("100B/{name}"), format!("{depth}_in_flight")),
                |b| {
                    b.iter(|| {
                        let mut in_flight = 0;
                        for _ in 0..total {
                            if in_flight == depth {
                                rx.recv().unwrap();
                                in_flight -= 1;
                            }
                            key += 1;
                            let tx = tx.clone();
                            log.append_with(key, &data, move |r| {
                                r.unwrap();
                                let _ = tx.send(());
                            })
                            .unwrap();
                            in_flight += 1;
                        }
                        for _ in 0..in_flight {
                            rx.recv().unwrap();
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    raw_fdatasync,
    durable_append_latency,
    throughput,
    pipeline
);
criterion_main!(benches);
