//! The process's Prometheus recorder, behind `GET /metrics`.
//!
//! The `metrics` facade has one global recorder per process, so it is installed once
//! (`OnceLock`) and every app built in the process (several per test binary) shares it.
//! Latencies are real histograms with fixed buckets, so they can be summed across replicas.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests by `method`, `route` (the matched path, `unmatched` for any other)
/// and `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram: request latency in seconds, by `method` and `route`.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Gauge: requests being served now.
pub const HTTP_IN_FLIGHT: &str = "http_requests_in_flight";
/// Counter: indicators answered, by `outcome` and `reason`.
pub const INDICATORS: &str = "indicators_total";
/// Counter: Darktrace call attempts by `result`: `ok`, `retried`, or the failure class.
pub const DARKTRACE_CALLS: &str = "darktrace_calls_total";
/// Histogram: latency of one Darktrace call attempt in seconds.
pub const DARKTRACE_DURATION: &str = "darktrace_call_duration_seconds";
/// Counter: pulls of the ThreatQ collection by `result`: `ok`, `failed` (items failed),
/// `refused` (the sync cap or the empty-collection guard), `threatq_error`.
pub const PULL_RUNS: &str = "pull_runs_total";
/// Gauge: Unix time of the last pull that changed Darktrace with nothing failed.
pub const PULL_LAST_SUCCESS: &str = "pull_last_success_timestamp_seconds";
/// Histogram: duration of one pull in seconds, reading ThreatQ included.
pub const PULL_DURATION: &str = "pull_duration_seconds";
/// Counter: items of pulls by `outcome`, a sync's removals included.
pub const PULL_ITEMS: &str = "pull_items_total";
/// Gauge: how many Darktrace calls may be in flight now (the adaptive limit, at most
/// `DARKTRACE_CONCURRENCY`).
pub const DARKTRACE_CONCURRENCY_LIMIT: &str = "darktrace_concurrency_limit";
/// Gauge, always 1: the running `version`.
pub const BUILD_INFO: &str = "darktrace_export_build_info";

/// Request latency buckets: health probes take microseconds, a large export minutes.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Darktrace call buckets, up to the default 30 s attempt timeout.
const DARKTRACE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder's handle, installing the recorder on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(install)
}

/// How often histograms are drained when nobody scrapes, so memory stays flat.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(DARKTRACE_DURATION.into()), DARKTRACE_BUCKETS)
        })
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(PULL_DURATION.into()), HTTP_BUCKETS))
        .expect("bucket lists are not empty")
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
    }
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(HTTP_IN_FLIGHT).set(0.0);
    handle
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, matched route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by method and matched route"
    );
    describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being served");
    describe_counter!(INDICATORS, "Indicators answered, by outcome and reason");
    describe_counter!(
        DARKTRACE_CALLS,
        "Darktrace call attempts by result: ok, retried, or the failure class"
    );
    describe_histogram!(
        DARKTRACE_DURATION,
        Unit::Seconds,
        "Latency of one Darktrace call attempt"
    );
    describe_counter!(PULL_RUNS, "Pulls of the ThreatQ collection by result");
    describe_gauge!(
        PULL_LAST_SUCCESS,
        "Unix time of the last pull with nothing failed"
    );
    describe_histogram!(PULL_DURATION, Unit::Seconds, "Duration of one pull");
    describe_counter!(PULL_ITEMS, "Items of pulls by outcome");
    describe_gauge!(
        DARKTRACE_CONCURRENCY_LIMIT,
        "Darktrace calls that may be in flight now (adaptive, at most DARKTRACE_CONCURRENCY)"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label says what runs");
}
