//! Results as a table (for people) and as one JSON object (for scripts).
//!
//! The JSON is written by hand: the values are numbers and plain strings, and a
//! serde dependency would be the largest part of the build.

use std::fmt::Write as _;

use crate::hist::Histogram;

/// Throughput and latency of one class of ops.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Successful ops in the measured window.
    pub ops: u64,
    /// `ops` per second of the window.
    pub ops_per_s: f64,
    /// Latency percentiles, mean and extremes, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Stats {
    /// Summarises a histogram of nanoseconds over a window of `secs`.
    pub fn of(h: &Histogram, secs: f64) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            ops: h.count(),
            ops_per_s: if secs > 0.0 {
                h.count() as f64 / secs
            } else {
                0.0
            },
            p50_us: us(h.quantile(0.5)),
            p99_us: us(h.quantile(0.99)),
            p999_us: us(h.quantile(0.999)),
            max_us: us(h.max()),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"ops\":{},\"ops_per_s\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\"min_us\":{:.1},\"mean_us\":{:.1}}}",
            self.ops,
            self.ops_per_s,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.min_us,
            self.mean_us
        )
    }

    fn row(&self, name: &str) -> String {
        let ms = |us: f64| us / 1000.0;
        format!(
            "{name:<6} {:>10} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            self.ops,
            self.ops_per_s,
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us),
            ms(self.mean_us)
        )
    }
}

/// Escapes a string for JSON.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object built field by field, in order.
#[derive(Debug, Default)]
pub struct Obj(Vec<(String, String)>);

impl Obj {
    /// A string field.
    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.0.push((k.into(), json_str(v)));
        self
    }
    /// A number (or any raw JSON) field.
    pub fn raw(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.0.push((k.into(), v.to_string()));
        self
    }
    /// A float with fixed decimals.
    pub fn num(self, k: &str, v: f64, decimals: usize) -> Self {
        let v = if v.is_finite() { v } else { 0.0 };
        self.raw(k, format!("{v:.decimals$}"))
    }
    /// A latency/throughput block.
    pub fn stats(self, k: &str, s: &Stats) -> Self {
        self.raw(k, s.json())
    }
    /// The JSON text.
    pub fn render(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_str(k)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// The latency table: a header and one row per `(name, stats)`.
pub fn table(rows: &[(&str, Stats)]) -> String {
    let mut out = format!(
        "{:<6} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "", "ops", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms"
    );
    for (name, s) in rows {
        out.push_str(&s.row(name));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_json() {
        let mut h = Histogram::new();
        for v in [1_000u64, 2_000, 3_000, 4_000] {
            h.record(v);
        }
        let s = Stats::of(&h, 2.0);
        assert_eq!(s.ops, 4);
        assert_eq!(s.ops_per_s, 2.0);
        assert_eq!((s.min_us, s.max_us, s.mean_us), (1.0, 4.0, 2.5));
        assert!(s.p50_us <= s.p99_us && s.p99_us <= s.p999_us && s.p999_us <= s.max_us);
        let j = Obj::default()
            .str("a", "x\"y\n")
            .raw("n", 3)
            .num("f", 1.26, 1)
            .stats("s", &s)
            .render();
        assert!(j.starts_with("{\"a\":\"x\\\"y\\u000a\",\"n\":3,\"f\":1.3,\"s\":{\"ops\":4,"));
        assert!(j.ends_with("}}"));
        let t = table(&[("read", s)]);
        assert_eq!(t.lines().count(), 2);
        assert!(t.contains("p99.9 ms"));
    }
}
