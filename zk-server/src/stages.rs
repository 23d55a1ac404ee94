//! Write-path latency by pipeline stage, for performance work: off unless
//! the environment variable `ZKRS_STAGE_TIMES` is set, when every write
//! request's timestamps are kept in log-2 histograms and the percentiles are
//! logged when the core stops. Disabled, each probe point costs one load of a
//! cached bool.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The stages of a write, in order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// Frame decoded on the loop → request taken by the core.
    LoopToCore = 0,
    /// Core: prep, zxid, encode, log append returned.
    Prep,
    /// Append returned → durable callback on the sync thread (queueing for
    /// the batch, write, fdatasync).
    Durable,
    /// Durable callback → the core handles it (channel + wake-up).
    CallbackToCore,
    /// Core: commit, apply, events and reply handed to the loop.
    Apply,
    /// Reply handed to the loop → written to the socket.
    CoreToSocket,
    /// Frame decoded → reply written.
    Total,
}

const STAGES: [&str; 7] = [
    "loop->core",
    "prep+append",
    "append->durable",
    "durable->core",
    "apply+reply",
    "core->socket",
    "total",
];
/// Log-linear: 4 buckets per power of two (≤ 25 % wide).
const BUCKETS: usize = 256;

struct Hist {
    b: [[AtomicU64; BUCKETS]; 7],
}

fn hist() -> &'static Hist {
    static H: OnceLock<Hist> = OnceLock::new();
    H.get_or_init(|| Hist {
        b: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
    })
}

/// Whether stage times are recorded.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("ZKRS_STAGE_TIMES").is_some())
}

/// Now, if recording (so that disabled probes do not read the clock).
pub(crate) fn now() -> Option<Instant> {
    enabled().then(Instant::now)
}

/// Records `to - from` for `stage`.
pub(crate) fn record(stage: Stage, from: Instant, to: Instant) {
    let ns = (to.saturating_duration_since(from).as_nanos() as u64).max(4);
    let e = 63 - ns.leading_zeros() as usize;
    let sub = ((ns >> (e - 2)) & 3) as usize;
    hist().b[stage as usize][(e * 4 + sub).min(BUCKETS - 1)].fetch_add(1, Relaxed);
}

/// One line per stage: count, p50, p99, p99.9 (upper bucket bounds).
pub(crate) fn report() -> String {
    let h = hist();
    let mut out =
        String::from("write path by stage (upper bounds of buckets 1/4 of a power of two wide):");
    for (s, name) in STAGES.iter().enumerate() {
        let counts: Vec<u64> = h.b[s].iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let q = |f: f64| {
            let want = ((total as f64) * f).ceil() as u64;
            let mut acc = 0;
            for (i, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= want {
                    let (e, sub) = (i / 4, i % 4);
                    return Duration::from_nanos(((4 + sub as u64 + 1) << e) >> 2);
                }
            }
            Duration::MAX
        };
        out.push_str(&format!(
            "\n  {name:<16} n={total:<9} p50<{:?} p99<{:?} p99.9<{:?}",
            q(0.5),
            q(0.99),
            q(0.999)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_recorded_durations() {
        let t = Instant::now();
        for us in [3u64, 100, 100, 100, 5000] {
            record(Stage::Total, t, t + Duration::from_micros(us));
        }
        let r = report();
        let line = r.lines().find(|l| l.contains("total")).expect("total line");
        assert!(line.contains("n=5"), "{line}");
        // p50 is 100 µs: its bucket's upper bound lies in (100 µs, 125 µs].
        let p50 = line
            .split("p50<")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert!(p50.ends_with("µs"), "{line}");
        let v: f64 = p50.trim_end_matches("µs").parse().unwrap();
        assert!(v > 100.0 && v <= 125.0, "{line}");
    }
}
