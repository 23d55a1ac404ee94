//! Interleaved latency probe: raw `pwrite + fdatasync` vs one durable append (mmap, pwrite),
//! measured round-robin so that the noise of a shared disk hits all three alike.
//!
//! `cargo run --release -p zk-txnlog --example latency_probe [DIR] [ROUNDS]`

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use zk_txnlog::{Backend, Log, Options};

fn stats(name: &str, v: &mut [Duration]) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<28} p50 {:>8.0} µs   p90 {:>8.0} µs   p99 {:>8.0} µs",
        p(0.5).as_secs_f64() * 1e6,
        p(0.9).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let rounds: usize = std::env::args().nth(2).map_or(Ok(300), |s| s.parse())?;
    let dir = tempfile::tempdir_in(base)?;
    let raw = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("raw"))?;
    raw.write_all_at(&vec![0u8; 4 << 20], 0)?;
    raw.sync_all()?;
    let mmap = Log::open(
        dir.path().join("mmap"),
        Options::default().backend(Backend::Mmap),
    )?;
    let pwrite = Log::open(
        dir.path().join("pwrite"),
        Options::default().backend(Backend::Pwrite),
    )?;
    let data = [5u8; 100];
    let (mut r, mut m, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds as u64 {
        let t = Instant::now();
        raw.write_all_at(&data, i * 128)?;
        raw.sync_data()?;
        r.push(t.elapsed());
        let t = Instant::now();
        mmap.append(i + 1, &data)?.wait()?;
        m.push(t.elapsed());
        let t = Instant::now();
        pwrite.append(i + 1, &data)?.wait()?;
        p.push(t.elapsed());
    }
    stats("raw pwrite+fdatasync (100B)", &mut r);
    stats("durable append, mmap", &mut m);
    stats("durable append, pwrite", &mut p);
    Ok(())
}
