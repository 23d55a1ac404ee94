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
//!   in the same run so the two can be compared.
//! * `e2e_forcesync_no`: forceSync=no, writes acknowledged before they are
//!   durable: the server's CPU and loopback cost without the disk.
//!
//! The data directories go under [`zk_benches::durable_dir`] (`$ZK_BENCH_DIR`,
//! else the temp dir unless it is tmpfs); the directory and its file system
//! are printed first. Under `-- --test` (the CI smoke run) every bench runs
//! once.

#![allow(missing_docs)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, black_box, criterion_group, criterion_main};
use tempfile::TempDir;
use zk_benches::client::Client;
use zk_benches::{data, durable_dir, fs_type, world_anyone};
use zk_jute::{CreateRequest, GetDataRequest, Request, Response, SetDataRequest};
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
            .call_ok(&create("/bench", None))
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

fn create(path: &str, data: Option<Bytes>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data,
        acl: world_anyone(),
        flags: 0,
    })
}

/// The writes and the read, against one server.
fn ops(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, f: &mut Fixture) {
    let mut seq = 0u64;
    for (name, len) in [("100B", 100), ("1KiB", 1024)] {
        let payload = data(len);
        g.bench_function(format!("create_{name}"), |b| {
            b.iter(|| {
                seq += 1;
                let req = create(&format!("/bench/c-{seq:010}"), Some(payload.clone()));
                black_box(f.client.call_ok(&req).expect("create"))
            })
        });
        let path = format!("/bench/s-{name}");
        f.client
            .call_ok(&create(&path, Some(payload.clone())))
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
        .call_ok(&create("/bench/g", Some(data(100))))
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

/// One `pwrite` of 100 B and `fdatasync` of a preallocated file in `dir`,
/// cycling over its first 4 MiB (zk-txnlog's `latency_probe` does the same).
fn raw_fdatasync(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dir: &Path,
) {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw-fdatasync"))
        .expect("create the probe file");
    f.write_all_at(&vec![0u8; 4 << 20], 0).expect("fill");
    f.sync_all().expect("sync");
    let block = [5u8; 100];
    let mut i = 0u64;
    g.bench_function("disk_pwrite_100B_fdatasync", |b| {
        b.iter(|| {
            f.write_all_at(&block, (i % 32768) * 128).expect("pwrite");
            f.sync_data().expect("fdatasync");
            i += 1;
        })
    });
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
    raw_fdatasync(&mut g, f.dir.path());
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
