//! Prometheus' `/metrics` (`metricsProvider.className` naming Apache's
//! `PrometheusMetricsProvider`, on `metricsProvider.httpHost`:`httpPort`,
//! default 0.0.0.0:7000), in the text exposition format, with the names,
//! types and help texts of Apache's provider (Prometheus' simpleclient 0.9):
//!
//! * every number `mntr` prints, without the `zk_` prefix, as the gauge or
//!   counter Apache registers it as ([`crate::figures::monitor`]);
//! * the request latencies as summaries `readlatency` and `updatelatency`
//!   (ms, quantiles 0.5, 0.9 and 0.99 as Apache's "advanced" summaries;
//!   estimated from [`crate::stats::Summary`]'s buckets), and `fsynctime`, `snapshottime`,
//!   `election_time`, `follower_sync_time` and `observer_sync_time` (ms,
//!   quantile 0.5: "basic" ones);
//! * the process: `process_resident_memory_bytes`, `process_cpu_seconds_total`,
//!   `process_open_fds`, ... (the `prometheus` crate's process collector,
//!   read from /proc).
//!
//! The figures are read when scraped; the request path only bumps atomics.
//! Apache's JVM series (`jvm_*`) have no equivalent and are absent; a metric
//! this server does not measure is absent rather than a constant.

use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::figures::{Kind, monitor};
use crate::http::{Handler, HttpServer, Response};
use crate::shared::Shared;
use crate::stats::Summary;

/// How long a scrape's connection may stay silent (Prometheus scrapes
/// within seconds).
const IDLE: Duration = Duration::from_secs(30);

/// Starts `/metrics` if the config asks for it. A port that cannot be bound
/// is logged and the server goes on serving clients without it.
pub(crate) fn start(shared: &Arc<Shared>) -> Option<HttpServer> {
    let cfg = shared.config.metrics.as_ref()?;
    if cfg.export_jvm_info {
        tracing::info!(
            "metricsProvider.exportJvmInfo: there is no JVM in this server; no jvm_* metrics"
        );
    }
    let addr = std::net::SocketAddr::new(cfg.host, cfg.port);
    let weak = Arc::downgrade(shared);
    let process = Arc::new(prometheus::process_collector::ProcessCollector::for_self());
    let handler: Handler = Arc::new(move |path: &str, _query: &str| {
        let Some(shared) = weak.upgrade() else {
            return Response::status(503);
        };
        if path != "/metrics" {
            return Response::status(404);
        }
        let mut families = families(&shared);
        families.extend(process.collect());
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        match encoder.encode(&families, &mut body) {
            Ok(()) => Response::ok("text/plain; version=0.0.4; charset=utf-8", body),
            Err(e) => {
                tracing::warn!("cannot encode the metrics: {e}");
                Response::status(500)
            }
        }
    });
    match HttpServer::start("zk-metrics", addr, IDLE, handler) {
        Ok(srv) => {
            tracing::info!(
                "serving Prometheus metrics on http://{}/metrics",
                srv.local_addr()
            );
            Some(srv)
        }
        Err(e) => {
            tracing::warn!(
                "cannot start the metrics endpoint on {addr}: {e}; serving clients without it"
            );
            None
        }
    }
}

/// This server's metric families, scraped now.
pub(crate) fn families(shared: &Shared) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    for f in monitor(shared) {
        let Some(v) = f.value.as_f64() else { continue };
        let mut m = proto::Metric::default();
        let kind = match f.kind {
            Kind::Info => continue,
            Kind::Gauge => {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
                MetricType::GAUGE
            }
            Kind::Counter => {
                let mut c = proto::Counter::default();
                c.set_value(v);
                m.set_counter(c);
                MetricType::COUNTER
            }
        };
        out.push(family(&f.name, kind, m));
    }
    let st = &shared.stats;
    const ADVANCED: &[f64] = &[0.5, 0.9, 0.99];
    const BASIC: &[f64] = &[0.5];
    out.push(summary("follower_sync_time", &st.follower_sync_time, BASIC));
    out.push(summary("fsynctime", &st.fsync.time, BASIC));
    out.push(summary("snapshottime", &st.snapshot_time, BASIC));
    out.push(summary("election_time", &st.election_time, BASIC));
    out.push(summary("observer_sync_time", &st.observer_sync_time, BASIC));
    for (name, s) in [
        "node_created_watch_count",
        "node_deleted_watch_count",
        "node_changed_watch_count",
        "node_children_watch_count",
        "dbinittime",
        "startup_snap_load_time",
        "startup_txns_loaded",
        "startup_txns_load_time",
    ]
    .into_iter()
    .zip(st.watch_counts.iter().chain(&st.startup))
    {
        out.push(summary(name, s, BASIC));
    }
    out.push(summary("readlatency", &st.read_latency, ADVANCED));
    out.push(summary("updatelatency", &st.update_latency, ADVANCED));
    for (name, stats) in [
        ("read_per_namespace", shared.tree.read_namespaces()),
        ("write_per_namespace", shared.tree.write_namespaces()),
    ] {
        if !stats.is_empty() {
            out.push(namespace_summary(name, &stats));
        }
    }
    let refused = shared.tree.quota_exceeded_namespaces();
    if !refused.is_empty() {
        out.push(namespace_counter(
            "quota_exceeded_error_per_namespace",
            &refused,
        ));
    }
    out
}

/// A family of one series per namespace, labelled `key` (Apache's
/// `PrometheusLabelledCounter` / `PrometheusLabelledSummary`), each made by
/// `fill` from the namespace's figures.
fn per_namespace<T>(
    name: &str,
    kind: MetricType,
    items: &[(String, T)],
    fill: impl Fn(&mut proto::Metric, &T),
) -> MetricFamily {
    let metrics = items
        .iter()
        .map(|(ns, v)| {
            let mut label = proto::LabelPair::default();
            label.set_name("key".into());
            label.set_value(ns.clone());
            let mut m = proto::Metric::default();
            m.set_label(vec![label]);
            fill(&mut m, v);
            m
        })
        .collect();
    let mut fam = family(name, kind, proto::Metric::default());
    fam.set_metric(metrics);
    fam
}

/// A counter set: a counter per namespace.
fn namespace_counter(name: &str, counts: &[(String, u64)]) -> MetricFamily {
    per_namespace(name, MetricType::COUNTER, counts, |m, n| {
        let mut c = proto::Counter::default();
        c.set_value(*n as f64);
        m.set_counter(c);
    })
}

/// A summary set: per namespace its count and sum (no quantile: per
/// namespace only count, sum, min and max are kept).
fn namespace_summary(name: &str, stats: &[(String, zk_tree::NamespaceStat)]) -> MetricFamily {
    per_namespace(name, MetricType::SUMMARY, stats, |m, s| {
        let mut sm = proto::Summary::default();
        sm.set_sample_count(s.count);
        sm.set_sample_sum(s.sum as f64);
        m.set_summary(sm);
    })
}

/// A family of one unlabelled metric; the help text is the name, as
/// Apache's provider has it.
fn family(name: &str, kind: MetricType, metric: proto::Metric) -> MetricFamily {
    let mut fam = MetricFamily::default();
    fam.set_name(name.to_string());
    fam.set_help(name.to_string());
    fam.set_field_type(kind);
    fam.set_metric(vec![metric]);
    fam
}

/// A summary as Apache's provider registers it: quantiles 0.5, 0.9, 0.99
/// ("advanced") or 0.5 ("basic"), count and sum (a quantile is NaN before
/// the first value, as simpleclient's).
fn summary(name: &str, s: &Summary, quantiles: &[f64]) -> MetricFamily {
    let (count, sum) = s.count_sum();
    let mut sm = proto::Summary::default();
    sm.set_sample_count(count);
    sm.set_sample_sum(sum as f64);
    let quantiles = quantiles
        .iter()
        .map(|&q| {
            let mut qv = proto::Quantile::default();
            qv.set_quantile(q);
            qv.set_value(s.quantile(q).map_or(f64::NAN, |v| v as f64));
            qv
        })
        .collect();
    sm.set_quantile(quantiles);
    let mut m = proto::Metric::default();
    m.set_summary(sm);
    family(name, MetricType::SUMMARY, m)
}
