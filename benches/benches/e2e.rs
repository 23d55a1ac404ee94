//! End-to-end latency through a real zk-server over loopback: one client, one
//! request at a time (create and setData of 100 B and 1 KiB, getData of
//! 100 B), each measured from the request's write to its reply's last byte.
//!
//! Two servers, one after the other, each on its own data directory:
//!
//! * `e2e_forcesync_yes`: the default, every write acknowledged only once its
//!   log record is durable (one fdatasync per write with a single client).
//!   The group also measures this directory's raw `pwrite` of 100 B +
//!   `fdatasync` (`disk_pwrite_100B_fdatasync`): the floor of a durable write,
//!   in the same run so the two can be compared. As the disk's latency drifts
//!   between criterion's runs, an interleaved probe (raw fdatasync, create,
//!   setData round-robin) is printed first, with the ratios to the raw sync.
//! * `e2e_forcesync_no`: forceSync=no, writes acknowledged before they are
//!   durable: the server's CPU and loopback cost without the disk.
//!
//! The data directories go under [`zk_benches::durable_dir`] (`$ZK_BENCH_DIR`,
//! else the temp dir unless it is tmpfs); the directory and its file system
//! are printed first. Under `-- --test` (the CI smoke run) every bench runs
//! once.

#![allow(missing_docs)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, black_box, criterion_group, criterion_main};
use tempfile::TempDir;
use zk_benches::client::Client;
use zk_benches::{create_request, data, durable_dir, fs_type};
use zk_jute::{GetDataRequest, Request, Response, SetDataRequest};
use zk_server::{Config, Server};

/// A server on a fresh data directory and one connected client.
struct Fixture {
    client: Client,
    server: Server,
    dir: TempDir,
}

impl Fixture {
    fn start(force_sync: bool) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("zk-e2e-bench")
            .tempdir_in(durable_dir())
            .expect("create the data directory");
        let mut config = Config::standalone(dir.path().to_path_buf(), 0);
        config.client_port_address = Some([127, 0, 0, 1].into());
        config.force_sync = force_sync;
        let server = Server::start(config).expect("start the server");
        let mut client = Client::connect(server.local_addr()).expect("connect");
        client
            .call_ok(&create_request("/bench", None))
            .expect("create /bench");
        Fixture {
            client,
            server,
            dir,
        }
    }

    fn stop(self) {
        self.client.close().expect("close the session");
        self.server.shutdown();
        drop(self.dir);
    }
}

/// The writes and the read, against one server.
fn ops(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, f: &mut Fixture) {
    let mut seq = 0u64;
    for (name, len) in [("100B", 100), ("1KiB", 1024)] {
        let payload = data(len);
        g.bench_function(format!("create_{name}"), |b| {
            b.iter(|| {
                seq += 1;
                let req = create_request(&format!("/bench/c-{seq:010}"), Some(payload.clone()));
                black_box(f.client.call_ok(&req).expect("create"))
            })
        });
        let path = format!("/bench/s-{name}");
        f.client
            .call_ok(&create_request(&path, Some(payload.clone())))
            .expect("create the setData node");
        let req = Request::SetData(SetDataRequest {
            path,
            data: Some(payload),
            version: -1,
        });
        g.bench_function(format!("set_data_{name}"), |b| {
            b.iter(|| black_box(f.client.call_ok(&req).expect("setData")))
        });
    }

    f.client
        .call_ok(&create_request("/bench/g", Some(data(100))))
        .expect("create the getData node");
    let req = Request::GetData(GetDataRequest {
        path: "/bench/g".into(),
        watch: false,
    });
    g.bench_function("get_data_100B", |b| {
        b.iter(|| {
            let resp = f.client.call_ok(&req).expect("getData");
            debug_assert!(matches!(&resp, Response::GetData(d) if d.data.as_ref().map(Bytes::len) == Some(100)));
            black_box(resp)
        })
    });
}

/// A written and synced 4 MiB file in `dir` for the raw fdatasync probe.
fn probe_file(dir: &Path) -> File {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw-fdatasync"))
        .expect("create the probe file");
    f.write_all_at(&vec![0u8; 4 << 20], 0).expect("fill");
    f.sync_all().expect("sync");
    f
}

/// The `i`th raw write: `pwrite` of 100 B and `fdatasync`, cycling over the
/// file's 4 MiB (zk-txnlog's `latency_probe` does the same).
fn raw_write(f: &File, i: u64) {
    f.write_all_at(&[5u8; 100], (i % 32768) * 128)
        .expect("pwrite");
    f.sync_data().expect("fdatasync");
}

fn raw_fdatasync(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    f: &File,
) {
    let mut i = 0u64;
    g.bench_function("disk_pwrite_100B_fdatasync", |b| {
        b.iter(|| {
            raw_write(f, i);
            i += 1;
        })
    });
}

/// This disk's latency swings by 10x within minutes, so criterion's runs one
/// after the other do not compare well. This probe interleaves a raw
/// fdatasync, a durable create and a durable setData (100 B each)
/// round-robin, so the disk's mood hits all three alike, and prints their
/// percentiles and the ratio of medians. `$ZK_E2E_PROBE_ROUNDS` rounds
/// (default 300; 3 under `--test`).
fn interleaved_probe(f: &mut Fixture, raw: &File) {
    let rounds: u64 = if std::env::args().any(|a| a == "--test") {
        3
    } else {
        std::env::var("ZK_E2E_PROBE_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300)
    };
    let payload = data(100);
    let path = "/bench/probe-set";
    f.client
        .call_ok(&create_request(path, Some(payload.clone())))
        .expect("create the probe node");
    let set = Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(payload.clone()),
        version: -1,
    });
    let mut times: [Vec<Duration>; 3] = Default::default();
    for i in 0..rounds {
        let t = Instant::now();
        raw_write(raw, i);
        times[0].push(t.elapsed());
        let req = create_request(&format!("/bench/probe-{i:010}"), Some(payload.clone()));
        let t = Instant::now();
        f.client.call_ok(&req).expect("create");
        times[1].push(t.elapsed());
        let t = Instant::now();
        f.client.call_ok(&set).expect("setData");
        times[2].push(t.elapsed());
    }
    let names = [
        "raw pwrite 100B + fdatasync",
        "e2e create 100B, forceSync",
        "e2e setData 100B, forceSync",
    ];
    eprintln!("e2e interleaved probe, {rounds} rounds:");
    let mut medians = [0.0f64; 3];
    for (k, v) in times.iter_mut().enumerate() {
        v.sort();
        let us = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        medians[k] = us(0.5);
        eprintln!(
            "  {:<28} p50 {:>7.0} µs  p90 {:>7.0} µs  p99 {:>7.0} µs  p50/raw {:.2}",
            names[k],
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.5) / medians[0]
        );
    }
}

fn e2e(c: &mut Criterion) {
    let base = durable_dir();
    eprintln!(
        "e2e: data directories under {} ({})",
        base.display(),
        fs_type(&base).as_deref().unwrap_or("unknown file system")
    );

    let mut f = Fixture::start(true);
    let mut g = c.benchmark_group("e2e_forcesync_yes");
    // Milliseconds per write: fewer samples, each a flat run of iterations,
    // so that a 5 s measurement is enough.
    g.sample_size(20).sampling_mode(SamplingMode::Flat);
    let raw = probe_file(f.dir.path());
    interleaved_probe(&mut f, &raw);
    raw_fdatasync(&mut g, &raw);
    ops(&mut g, &mut f);
    g.finish();
    f.stop();

    let mut f = Fixture::start(false);
    let mut g = c.benchmark_group("e2e_forcesync_no");
    ops(&mut g, &mut f);
    g.finish();
    f.stop();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
