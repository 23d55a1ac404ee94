//! The three commands: `run`, `load`, `wait`.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use zk_jute::ErrorCode;

use crate::args::{Common, Limit, LoadArgs, OpMix, RunArgs, WaitArgs};
use crate::engine::{Outcome, Plan, drive};
use crate::report::{Obj, Stats, table};
use crate::wire::{self, Kind};
use crate::workload::{Budget, CreateSource, Created, DeleteSource, Layout, MixSource, payload};

/// A command's failure: the message for stderr.
pub type CmdResult = Result<(), String>;

/// The first address of a `--server` list (set-up, clean-up, load, wait).
fn resolve(server: &str) -> Result<SocketAddr, String> {
    resolve_one(server.split(',').next().unwrap_or(server))
}

/// Every address of a comma-separated `--server` list, in order.
fn resolve_all(server: &str) -> Result<Vec<SocketAddr>, String> {
    server.split(',').map(|s| resolve_one(s.trim())).collect()
}

fn resolve_one(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {server:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server:?} resolves to no address"))
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 40
}

fn plan(c: &Common, addr: SocketAddr, label: &str) -> Plan {
    Plan {
        addr,
        also: Vec::new(),
        sessions: c.sessions,
        in_flight: c.in_flight,
        threads: c.threads,
        session_timeout_ms: c.session_timeout_ms,
        warmup: Duration::ZERO,
        duration: None,
        progress: (!c.quiet).then(|| label.to_owned()),
        seed: seed(),
        rate: None,
    }
}

/// `/a/b` -> `["/a", "/a/b"]`.
fn ancestors_and_self(path: &str) -> Vec<String> {
    path.match_indices('/')
        .skip(1)
        .map(|(i, _)| path[..i].to_owned())
        .chain(std::iter::once(path.to_owned()))
        .collect()
}

/// Creates `paths` one at a time, in order (each may be the parent of the next).
fn create_in_order(c: &Common, addr: SocketAddr, paths: Vec<String>) -> Result<Outcome, String> {
    let n = paths.len() as u64;
    let mut p = plan(c, addr, "setup");
    (p.sessions, p.in_flight, p.threads, p.progress) = (1, 1, 1, None);
    let out = drive(&p, &CreateSource::new(Layout::List(paths), n, Vec::new()));
    check(&out, "setup")?;
    Ok(out)
}

/// Fails on lost sessions or on any error reply (set-up and load must not have any).
fn check(out: &Outcome, what: &str) -> CmdResult {
    if !out.failures.is_empty() {
        return Err(format!("{what} failed: {}", out.failures.join("; ")));
    }
    if out.error_count() > 0 {
        return Err(format!("{what} got error replies: {}", out.error_summary()));
    }
    Ok(())
}

/// CPU seconds (user + system, every thread) this process has used, from
/// `/proc/self/stat` (Linux; USER_HZ is 100 on every Linux ABI). `None` elsewhere.
pub fn own_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// What `--cleanup` did.
#[derive(Debug, Default)]
struct Cleanup {
    /// Whether it ran.
    done: bool,
    /// Wall time, sessions opened and closed included.
    secs: f64,
    /// Paths enumerated (every create the run issued).
    issued: u64,
    /// Deletes that removed a znode.
    deleted: u64,
    /// Deletes answered NONODE (the create had failed, or the znode was gone).
    missing: u64,
    /// Lost sessions or error replies other than NONODE.
    failure: Option<String>,
}

/// Deletes every znode a `run --op create` issued a create for: the paths
/// `PREFIX/c/<run_id hex>-<session>-<0..issued>` of each session, pipelined
/// with the run's sessions x in-flight shape. `drive` returns only once every
/// reply has arrived, so no create of the run is still on its way.
fn cleanup(c: &Common, addr: SocketAddr, run_id: u64, out: &Outcome) -> Cleanup {
    let created = Created::new(&c.prefix, run_id, &out.issued);
    let issued = created.count();
    // Always said (even with --quiet): a script that samples the server's CPU or memory
    // takes this line as the end of the measured load (compare.py does).
    eprintln!("zk-bench: cleanup: deleting the {issued} znodes the run created");
    if issued == 0 {
        // Nothing was sent (no session connected): no session to open either.
        return Cleanup {
            done: true,
            ..Cleanup::default()
        };
    }
    let start = Instant::now();
    let cout = drive(&plan(c, addr, "cleanup"), &DeleteSource::new(created));
    let secs = start.elapsed().as_secs_f64();
    Cleanup {
        done: true,
        secs,
        issued,
        deleted: cout.completed - cout.missing - cout.error_count(),
        missing: cout.missing,
        failure: check(&cout, "cleanup").err(),
    }
}

/// `zk-bench run`.
pub fn run(a: &RunArgs) -> CmdResult {
    let c = &a.common;
    let addr = resolve(&c.server)?;
    let data = payload(c.payload);
    let (setup_created, setup_existed, setup_secs) = setup(a, addr, &data)?;
    let also: Vec<SocketAddr> = resolve_all(&c.server)?.into_iter().skip(1).collect();
    if a.mix != OpMix::Create && a.keys > 0 {
        // The other servers of an ensemble serve the set-up's keys first.
        let last = format!("{}/k/{}", c.prefix, a.keys - 1);
        for s in &also {
            wait_for_path(*s, &s.to_string(), &last, Duration::from_secs(60))?;
        }
    }

    let mut p = plan(c, addr, a.mix.name());
    p.also = also;
    p.warmup = a.warmup;
    p.rate = a.rate;
    let ops_limit = match a.limit {
        Limit::Duration(d) => {
            p.duration = Some(d);
            None
        }
        Limit::Ops(n) => Some(n),
    };
    let run_id = p.seed & 0xffff_ffff;
    let src = MixSource {
        mix: a.mix,
        keys: a.keys,
        prefix: c.prefix.clone(),
        run_id,
        data,
        budget: Budget::new(ops_limit),
    };
    let cpu0 = own_cpu_secs();
    let out = drive(&p, &src);
    let client_cpu = own_cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    // After the measured run, whose figures are final: the clean-up is not measured.
    let clean = if a.cleanup && a.mix == OpMix::Create {
        cleanup(c, addr, run_id, &out)
    } else {
        Cleanup::default()
    };

    let secs = out.measured_secs;
    let reads = Stats::of(&out.reads, secs);
    let writes = Stats::of(&out.writes, secs);
    let mut all_h = out.reads.clone();
    all_h.merge(&out.writes);
    let all = Stats::of(&all_h, secs);
    let read_ratio = match a.mix {
        OpMix::Mixed { read_ratio } => read_ratio,
        OpMix::GetData => 1.0,
        _ => 0.0,
    };
    // Fixed rate: the achieved throughput is `all.ops_per_s` (successful ops per second
    // of the measured window).
    let shortfall = a
        .rate
        .is_some_and(|r| crate::engine::rate_shortfall(r, all.ops_per_s));
    let lag = Stats::of(&out.send_lag, secs);
    if let Some(r) = a.rate.filter(|_| shortfall) {
        eprintln!(
            "zk-bench: WARNING: rate shortfall: achieved {:.0} ops/s is {:.1}% below the offered \
             {r:.0} ops/s (the server, or {} session(s) x {} in flight, could not keep up); \
             latencies include the wait for the backlog",
            all.ops_per_s,
            (1.0 - all.ops_per_s / r) * 100.0,
            c.sessions,
            c.in_flight
        );
    }

    let r = RunReport {
        out,
        reads,
        writes,
        all,
        lag,
        secs,
        read_ratio,
        shortfall,
        client_cpu,
        setup_created,
        setup_existed,
        setup_secs,
        clean,
    };
    if c.json {
        print_run_json(a, &r);
    } else {
        print_run_text(a, &r);
    }
    let (out, clean) = (r.out, r.clean);
    let mut problems = Vec::new();
    if !out.failures.is_empty() {
        problems.push(format!(
            "{} session(s) failed: {}",
            out.failures.len(),
            out.failures.join("; ")
        ));
    }
    problems.extend(clean.failure);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Creates the prefix and, unless the run creates, its keys: (keys
/// created, keys that existed, seconds taken).
fn setup(a: &RunArgs, addr: SocketAddr, data: &[u8]) -> Result<(u64, u64, f64), String> {
    let c = &a.common;
    let setup_start = Instant::now();
    let (mut setup_created, mut setup_existed) = (0u64, 0u64);
    if a.setup {
        let mut paths = ancestors_and_self(&c.prefix);
        paths.push(format!("{}/k", c.prefix));
        paths.push(format!("{}/c", c.prefix));
        create_in_order(c, addr, paths)?;
        if a.mix != OpMix::Create {
            let src = CreateSource::new(Layout::Keys(c.prefix.clone()), a.keys, data.to_vec());
            let out = drive(&plan(c, addr, "setup"), &src);
            check(&out, "setup")?;
            setup_existed = out.existed;
            setup_created = out.writes.count() - out.existed;
        }
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();

    Ok((setup_created, setup_existed, setup_secs))
}

/// What a run measured, for its report.
struct RunReport {
    out: Outcome,
    reads: Stats,
    writes: Stats,
    all: Stats,
    lag: Stats,
    secs: f64,
    read_ratio: f64,
    shortfall: bool,
    client_cpu: Option<f64>,
    setup_created: u64,
    setup_existed: u64,
    setup_secs: f64,
    clean: Cleanup,
}

/// The run's report as one JSON object.
fn print_run_json(a: &RunArgs, r: &RunReport) {
    let c = &a.common;
    let &RunReport {
        ref out,
        reads,
        writes,
        all,
        lag,
        secs,
        read_ratio,
        shortfall,
        client_cpu,
        setup_created,
        setup_existed,
        setup_secs,
        ref clean,
    } = r;
    let mut codes = Obj::default();
    for (code, n) in &out.errors {
        codes = codes.raw(&crate::engine::code_name(*code), n);
    }
    let j = Obj::default()
        .str("command", "run")
        .str("server", &c.server)
        .str("op", a.mix.name())
        .num("read_ratio", read_ratio, 3)
        .raw("sessions", c.sessions)
        .raw("in_flight", c.in_flight)
        .raw("threads", c.threads)
        .raw("payload", c.payload)
        .raw("keys", a.keys)
        .str(
            "mode",
            if a.rate.is_some() {
                "fixed-rate"
            } else {
                "closed-loop"
            },
        )
        .raw(
            "offered_ops_per_s",
            a.rate.map_or("null".to_owned(), |r| format!("{r:.1}")),
        )
        .raw("rate_shortfall", shortfall)
        .num("send_lag_p50_us", lag.p50_us, 1)
        .num("send_lag_p99_us", lag.p99_us, 1)
        .num("send_lag_max_us", lag.max_us, 1)
        .num("warmup_s", a.warmup.as_secs_f64(), 3)
        .num("measured_s", secs, 3)
        .raw("ops", all.ops)
        .raw("completed", out.completed)
        .num("client_cpu_s", client_cpu.unwrap_or(0.0), 2)
        .num("ops_per_s", all.ops_per_s, 1)
        .raw("errors", out.error_count())
        .raw("error_codes", codes.render())
        .raw("existed", out.existed)
        .raw("failures", out.failures.len())
        .raw("setup_created", setup_created)
        .raw("setup_existed", setup_existed)
        .num("setup_s", setup_secs, 3)
        .raw("cleanup", clean.done)
        .num("cleanup_s", clean.secs, 3)
        .raw("cleanup_deleted", clean.deleted)
        .raw("cleanup_missing", clean.missing)
        .stats("read", &reads)
        .stats("write", &writes)
        .stats("all", &all);
    println!("{}", j.render());
}

/// The run's report as text.
fn print_run_text(a: &RunArgs, r: &RunReport) {
    let c = &a.common;
    let &RunReport {
        ref out,
        reads,
        writes,
        all,
        lag,
        secs,
        read_ratio: _,
        shortfall,
        client_cpu,
        setup_created,
        setup_existed,
        setup_secs,
        ref clean,
    } = r;
    let mix = match a.mix {
        OpMix::Mixed { read_ratio } => format!("mixed ({:.0}% getData)", read_ratio * 100.0),
        m => m.name().to_owned(),
    };
    let rate = a
        .rate
        .map_or(String::new(), |r| format!("  fixed rate {r:.0} ops/s"));
    println!(
        "zk-bench run: {}  op {mix}  {} sessions x {} in flight{rate}  payload {} B  keys {}",
        c.server, c.sessions, c.in_flight, c.payload, a.keys
    );
    println!(
        "measured {secs:.1} s after a {:.1} s warm-up; setup {setup_secs:.1} s ({setup_created} keys created, {setup_existed} existed)",
        a.warmup.as_secs_f64()
    );
    let mut rows = Vec::new();
    if reads.ops > 0 {
        rows.push(("read", reads));
    }
    if writes.ops > 0 {
        rows.push(("write", writes));
    }
    rows.push(("all", all));
    print!("{}", table(&rows));
    if let Some(r) = a.rate {
        println!(
            "fixed rate: offered {r:.0} ops/s, achieved {:.0} ops/s ({:.1}%){}; latency from \
             each op's scheduled time; send lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            all.ops_per_s,
            all.ops_per_s * 100.0 / r,
            if shortfall { ", SHORTFALL" } else { "" },
            lag.p50_us / 1000.0,
            lag.p99_us / 1000.0,
            lag.max_us / 1000.0
        );
    }
    println!(
        "errors: {}",
        if out.error_count() == 0 {
            "none".to_owned()
        } else {
            out.error_summary()
        }
    );
    if let Some(cpu) = client_cpu.filter(|_| out.completed > 0) {
        println!(
            "client CPU: {cpu:.2} s ({:.1} us per request, warm-up included)",
            cpu * 1e6 / out.completed as f64
        );
    }
    if clean.done {
        println!(
            "cleanup (not measured): {} znodes deleted in {:.2} s ({} of {} paths already gone)",
            clean.deleted, clean.secs, clean.missing, clean.issued
        );
    }
}

/// `zk-bench load`.
pub fn load(a: &LoadArgs) -> CmdResult {
    let c = &a.common;
    let addr = resolve(&c.server)?;
    let data = payload(c.payload);
    create_in_order(c, addr, ancestors_and_self(&c.prefix))?;
    let start = Instant::now();
    let parents = a.znodes.div_ceil(a.fanout);
    let src = CreateSource::new(Layout::Parents(c.prefix.clone()), parents, Vec::new());
    let pout = drive(&plan(c, addr, "load parents"), &src);
    check(&pout, "load (parents)")?;
    let leaves = Layout::Leaves(c.prefix.clone(), a.fanout);
    let last_path = leaves.path(a.znodes - 1);
    let src = CreateSource::new(leaves, a.znodes, data);
    let out = drive(&plan(c, addr, "load"), &src);
    let secs = start.elapsed().as_secs_f64();
    let w = Stats::of(&out.writes, out.measured_secs);
    let created = out.writes.count() - out.existed;
    let rate = out.writes.count() as f64 / secs;
    if c.json {
        let j = Obj::default()
            .str("command", "load")
            .str("server", &c.server)
            .raw("znodes", a.znodes)
            .raw("payload", c.payload)
            .raw("fanout", a.fanout)
            .raw("parents", parents)
            .raw("sessions", c.sessions)
            .raw("in_flight", c.in_flight)
            .raw("created", created)
            .raw("existed", out.existed)
            .raw("errors", out.error_count())
            .num("secs", secs, 3)
            .num("znodes_per_s", rate, 1)
            .str("last_path", &last_path)
            .stats("write", &w);
        println!("{}", j.render());
    } else {
        println!(
            "zk-bench load: {}  {} znodes x {} B under {} ({} parents)  {} sessions x {} in flight",
            c.server, a.znodes, c.payload, c.prefix, parents, c.sessions, c.in_flight
        );
        println!(
            "{created} created, {} existed, {} errors in {secs:.1} s: {rate:.0} znodes/s; last {last_path}",
            out.existed,
            out.error_count()
        );
        print!("{}", table(&[("create", w)]));
    }
    check(&out, "load")
}

/// One attempt: open a session and getData `path`.
fn probe(addr: SocketAddr, path: &str) -> Result<(), String> {
    let opts = zk_client::ConnectOptions {
        timeout_ms: 10_000,
        io_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let (mut s, _) = zk_client::open_session(addr, &opts).map_err(|e| format!("connect: {e}"))?;
    let mut out = BytesMut::new();
    wire::encode_op(&mut out, 1, Kind::GetData, path, &[], &[]);
    s.write_all(&out).map_err(|e| format!("write: {e}"))?;
    let frame = wire::read_frame(&mut s).map_err(|e| format!("read: {e}"))?;
    let h = wire::reply_header(&frame).ok_or("short reply")?;
    let mut close = BytesMut::new();
    wire::encode_bare(&mut close, 2, zk_jute::OpCode::CloseSession);
    let _ = s.write_all(&close);
    match h.err {
        0 => Ok(()),
        e => Err(format!(
            "getData {path}: {}",
            ErrorCode::try_from(e).map_or_else(|_| e.to_string(), |c| c.name().to_owned())
        )),
    }
}

/// `zk-bench wait`: polls until getData(path) succeeds.
pub fn wait(a: &WaitArgs) -> CmdResult {
    let addr = resolve(&a.server)?;
    let secs = wait_for_path(addr, &a.server, &a.path, a.timeout)?;
    println!("{} serves {} after {secs:.3} s", a.server, a.path);
    Ok(())
}

/// Polls until getData(path) succeeds at `addr`; returns the seconds it took.
fn wait_for_path(
    addr: SocketAddr,
    name: &str,
    path: &str,
    timeout: Duration,
) -> Result<f64, String> {
    let start = Instant::now();
    loop {
        let Err(last) = probe(addr, path) else {
            return Ok(start.elapsed().as_secs_f64());
        };
        if start.elapsed() >= timeout {
            return Err(format!(
                "{name} did not serve getData {path} within {:.1} s (last: {last})",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_is_readable() {
        let a = own_cpu_secs().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(std::hint::black_box(x) != 1);
        assert!(own_cpu_secs().unwrap() >= a);
    }

    #[test]
    fn ancestors() {
        assert_eq!(ancestors_and_self("/a"), vec!["/a"]);
        assert_eq!(ancestors_and_self("/a/b/c"), vec!["/a", "/a/b", "/a/b/c"]);
    }
}
