//! End to end on loopback: the release binary as a separate process (so its memory can be
//! read from /proc), against the simulator running in this process.
//!
//! Measures the 100,000-indicator collection exported through `/export` against the floor of
//! sending the same add calls, signed, straight to the simulator with the library's client;
//! `/healthz` during two concurrent exports (probed from a thread of its own, and from this
//! harness's runtime for comparison) and the memory left 15 s after; the export at
//! 300 ms appliance latency; an appliance that takes 3 calls at once; the darktrace-sdk
//! Python script doing the same job (skipped when python3 or the package is missing); then
//! 32 clients sending 100-indicator batches for 15 seconds; and the service's idle and
//! peak resident memory. Every loop is bounded in count and in time; all traffic stays on
//! 127.0.0.1.
//!
//! Then a pull of the same-sized collection from the ThreatQ simulator, 1,000 items a page,
//! through `POST /pull`: its time and the service's peak resident memory
//! (`LOADTEST_PULL_ONLY=1` runs only that).
//!
//! `LOADTEST_MEMORY_ONLY=1` runs only the single 100k exports (time, peak RSS) and the two
//! concurrent ones with the RSS after them, then stops.
//!
//! `cargo bench --bench loadtest`; see BENCHMARKS.md.

#[path = "support/collection.rs"]
mod collection;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use darktrace_export::config::{DarktraceConfig, ScreenConfig};
use darktrace_export::darktrace::wire::AddCall;
use darktrace_export::darktrace::{CallTally, DarktraceClient};
use darktrace_export::outcome::{Reason, Verdict};
use darktrace_export::screen::{Screener, WireValue};
use darktrace_export::simulator::{Faults, Simulator, Store};
use darktrace_export::threatq::{parse_batch, read_batch};
use futures_util::future::join_all;

const PUBLIC: &str = "bench-public-token";
const PRIVATE: &str = "bench-private-token";
const API_TOKEN: &str = "bench-api-token";

const INDICATORS: usize = 100_000;
/// Measured rounds of each of the export and its floor, after one warm-up of each.
const ROUNDS: usize = 5;
const CLIENTS: usize = 32;
const BATCH: usize = 100;
const LOAD_TIME: Duration = Duration::from_secs(15);
/// A ceiling on requests per client, so the load loop is bounded by count as well as time.
const MAX_REQUESTS_PER_CLIENT: usize = 20_000;
/// Distinct 100-indicator bodies the clients cycle through.
const LOAD_BODIES: usize = 64;
/// Matches the service's default `DARKTRACE_BATCH_SIZE`.
const DARKTRACE_BATCH_SIZE: usize = 5000;
/// The appliance latency of the slow-appliance rounds.
const SLOW_LATENCY: Duration = Duration::from_millis(300);
/// Rounds at that latency, alternating the service and the direct client.
const SLOW_ROUNDS: usize = 3;
/// Pairs of concurrent 100k exports whose `/healthz` probes are pooled, for a p99 of a few
/// hundred probes rather than of one pair's hundred.
const TWO_EXPORT_ROUNDS: usize = 3;
/// The capacity of the capacity rounds (`--max-in-flight`).
const CAPACITY: usize = 3;

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let sim = Simulator::start_local(PUBLIC, PRIVATE)
        .await
        .expect("simulator");
    // Recording every body would grow the simulator by gigabytes over the load run.
    sim.record_calls(false);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    if std::env::var_os("LOADTEST_PULL_ONLY").is_some() {
        pull_run(&sim, &http).await;
        return;
    }
    let service = Service::start(&sim.url());
    service.wait_until_healthy(&http).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = service.memory();

    let body = Bytes::from(collection::threatq_collection(INDICATORS, 1));
    let chunks = prepared_chunks(&body);
    let accepted: usize = chunks.iter().map(Vec::len).sum();
    let mut darktrace = DarktraceConfig::new(sim.url().parse().expect("url"), PUBLIC, PRIVATE);
    darktrace.disable_proxies = true;
    let direct = DarktraceClient::new(&darktrace).expect("client");

    service.reset_peak();
    let Rounds {
        mut through_service,
        mut floor,
        mut until_answer,
        answer_len,
    } = export_rounds(&sim, &http, &service, &direct, &body, &chunks, accepted).await;
    let export_peak = service.memory();
    if std::env::var_os("LOADTEST_MEMORY_ONLY").is_some() {
        let two = two_exports(&sim, &http, &service, &body, accepted).await;
        let mib = |bytes: u64| bytes as f64 / MIB;
        println!();
        println!(
            "memory: {INDICATORS} indicators, {:.1} MiB body; idle RSS {:.1} MiB",
            body.len() as f64 / MIB,
            mib(idle.current)
        );
        println!();
        println!("| measurement | result |");
        println!("|---|---|");
        println!(
            "| 100k export via /export, median of {ROUNDS} (runs); direct client | {:.0} ms ({}); {:.0} ms |",
            ms(median(&mut through_service.clone())),
            list(&through_service),
            ms(median(&mut floor))
        );
        println!(
            "| peak RSS during the single exports | {:.1} MiB |",
            mib(export_peak.peak)
        );
        println!(
            "| two concurrent 100k exports: time; peak RSS | {:.0} ms; {:.1} MiB |",
            ms(two.took),
            mib(two.peak)
        );
        println!(
            "| RSS after them: at once / 1 s / 5 s / 15 s | {:.1} / {:.1} / {:.1} / {:.1} MiB |",
            mib(two.after[0]),
            mib(two.after[1]),
            mib(two.after[2]),
            mib(two.after_15s)
        );
        println!(
            "| /healthz during them p99 / max | {:.1} / {:.1} ms |",
            ms(two.health_p99()),
            ms(two.health_max())
        );
        let (shared_p99, shared_max) = two.shared_health();
        println!(
            "| the same probed from the harness's runtime p99 / max | {:.1} / {:.1} ms |",
            ms(shared_p99),
            ms(shared_max)
        );
        return;
    }
    let fast_limits = (
        service.concurrency_limit(&http).await,
        direct.concurrency_limit(),
    );
    let body_file = std::env::temp_dir().join(format!("loadtest-body-{}.json", std::process::id()));
    std::fs::write(&body_file, &body).expect("write the collection for the script");
    sim.with_store_mut(|s| *s = Store::default());
    let peer_fast = sdk_peer(&sim.url(), &body_file);

    let two = two_exports(&sim, &http, &service, &body, accepted).await;
    let (health, two_peak, two_took, after_15s) = (&two.health, two.peak, two.took, two.after_15s);
    let (health_p99, health_max) = (two.health_p99(), two.health_max());
    let (shared_p99, shared_max) = two.shared_health();

    // A slow appliance: the service with its defaults against the direct client, whose
    // limit has settled in the rounds above as the service's has.
    sim.set_faults(Faults {
        latency: SLOW_LATENCY,
        ..Faults::default()
    });
    let (mut slow_service, mut slow_floor) = (Vec::new(), Vec::new());
    for _ in 0..SLOW_ROUNDS {
        sim.with_store_mut(|s| *s = Store::default());
        slow_floor.push(direct_export(&direct, &chunks).await);
        sim.with_store_mut(|s| *s = Store::default());
        slow_service.push(
            service_export(&http, &service, &body, accepted)
                .await
                .0
                .total,
        );
    }
    let slow_limits = (
        service.concurrency_limit(&http).await,
        direct.concurrency_limit(),
    );
    sim.with_store_mut(|s| *s = Store::default());
    let peer_slow = sdk_peer(&sim.url(), &body_file);
    let _ = std::fs::remove_file(&body_file);

    // An appliance that takes CAPACITY calls at once: one export to find it, one at it.
    sim.set_faults(Faults {
        latency: Duration::from_millis(50),
        max_in_flight: CAPACITY,
        ..Faults::default()
    });
    sim.with_store_mut(|s| *s = Store::default());
    let before = sim.overloaded();
    let settle = service_export(&http, &service, &body, accepted)
        .await
        .0
        .total;
    sim.reset_max_in_flight();
    let settled = service_export(&http, &service, &body, accepted)
        .await
        .0
        .total;
    let capacity = (
        sim.overloaded() - before,
        sim.max_in_flight(),
        service.concurrency_limit(&http).await,
        settle,
        settled,
    );
    sim.set_faults(Faults::default());
    // Screening against reading, alternated so that both see the same load on the machine.
    let (mut read_once, mut screened) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        read_once.push(read_floor(&body));
        screened.push(screen_once(&body));
    }

    service.reset_peak();
    let load = load_run(&http, &service).await;
    let load_peak = service.memory();

    let (export, floor) = (median(&mut through_service), median(&mut floor));
    let until_answer = median(&mut until_answer);
    let (read_once, screened) = (median(&mut read_once), median(&mut screened));
    let body_mib = body.len() as f64 / MIB;
    // The budget a single export's peak is held to: the body and 30 MiB more.
    let peak_budget = body_mib + 30.0;
    println!();
    println!(
        "collection: {INDICATORS} indicators, {:.1} MiB, {accepted} accepted in {} add calls; answer {:.1} MiB",
        body_mib,
        chunks.len(),
        answer_len as f64 / MIB
    );
    println!();
    println!("| measurement | result | floor / budget | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| 100k export via /export (median of {ROUNDS}) | {:.0} ms | {:.0} ms direct client | {:.2}x | <= 2x |",
        ms(export),
        ms(floor),
        export.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| of which until the answer begins (median of {ROUNDS}) | {:.0} ms | {:.0} ms direct client | {:.2}x | |",
        ms(until_answer),
        ms(floor),
        until_answer.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| for scale: reading the body once (IgnoredAny, median of {ROUNDS}) | {:.0} ms | {:.0} ms direct client | {:.2}x | |",
        ms(read_once),
        ms(floor),
        read_once.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| screening 100k in process, alternated with reading it (median of {ROUNDS}) | {:.0} ms | {:.0} ms IgnoredAny | {:.0}% of its throughput | >= 50% |",
        ms(screened),
        ms(read_once),
        100.0 * read_once.as_secs_f64() / screened.as_secs_f64()
    );
    println!(
        "| peak RSS during 100k exports | {:.1} MiB | {:.1} MiB (body + 30) | {:.2} | <= 1.0 |",
        export_peak.peak as f64 / MIB,
        peak_budget,
        export_peak.peak as f64 / MIB / peak_budget
    );
    println!(
        "| idle RSS | {:.1} MiB | 20 MiB | {:.2} | <= 1.0 |",
        idle.current as f64 / MIB,
        idle.current as f64 / MIB / 20.0
    );
    println!(
        "| {CLIENTS} clients x {BATCH}-indicator batches, {}s | {:.0} req/s ({:.0} indicators/s) | | | |",
        LOAD_TIME.as_secs(),
        load.requests as f64 / load.elapsed.as_secs_f64(),
        (load.requests * BATCH) as f64 / load.elapsed.as_secs_f64()
    );
    println!(
        "| latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms | | | |",
        ms(load.p50),
        ms(load.p99),
        ms(load.max)
    );
    println!("| errors | {} of {} | | | 0 |", load.errors, load.requests);
    println!(
        "| peak RSS during load | {:.1} MiB | | | |",
        load_peak.peak as f64 / MIB
    );
    println!(
        "| 100k export at {} ms appliance latency (median of {SLOW_ROUNDS}; runs {}) | {:.0} ms | {:.0} ms direct client (runs {}) | {:.2}x | <= 1.2x |",
        SLOW_LATENCY.as_millis(),
        list(&slow_service),
        ms(median(&mut slow_service.clone())),
        ms(median(&mut slow_floor.clone())),
        list(&slow_floor),
        median(&mut slow_service).as_secs_f64() / median(&mut slow_floor).as_secs_f64()
    );
    println!(
        "| concurrency limit after the zero-latency / slow rounds (service, direct client) | {} / {} ; {} / {} | | | |",
        fast_limits.0, fast_limits.1, slow_limits.0, slow_limits.1
    );
    println!(
        "| appliance capacity {CAPACITY} (50 ms latency): 503s answered; max in flight in the second export; service limit after | {} ; {} ; {} (exports {:.0} ms, {:.0} ms; 0 failed) | | | max in flight <= {} |",
        capacity.0,
        capacity.1,
        capacity.2,
        ms(capacity.3),
        ms(capacity.4),
        CAPACITY + 1
    );
    println!(
        "| /healthz during two concurrent 100k exports ({TWO_EXPORT_ROUNDS} pairs, every 5 ms from a thread of its own, {} probes, a pair {:.0} ms) p99 / max | {:.1} / {:.1} ms | | | p99 <= 10 ms |",
        health.len(),
        ms(two_took),
        ms(health_p99),
        ms(health_max)
    );
    println!(
        "| the same probed from the harness's runtime, beside the simulator and the uploads, p99 / max | {:.1} / {:.1} ms | | | |",
        ms(shared_p99),
        ms(shared_max)
    );
    println!(
        "| peak RSS during the two exports; RSS 15 s after | {:.1} MiB; {:.1} MiB | body {:.1} MiB | | peak <= body + 30 per export; after <= 30 MiB |",
        two_peak as f64 / MIB,
        after_15s as f64 / MIB,
        body_mib
    );
    match (&peer_fast, &peer_slow) {
        (Ok((fast, sent)), Ok((slow, _))) => {
            println!(
                "| darktrace-sdk script, same job, {sent} entries in calls of {DARKTRACE_BATCH_SIZE} one after another: zero latency / {} ms | {:.0} ms / {:.0} ms | service {:.0} ms / {:.0} ms | {:.1}x / {:.1}x faster | >= 10x / >= 15x |",
                SLOW_LATENCY.as_millis(),
                ms(*fast),
                ms(*slow),
                ms(export),
                ms(median(&mut slow_service)),
                fast.as_secs_f64() / export.as_secs_f64(),
                slow.as_secs_f64() / median(&mut slow_service).as_secs_f64()
            );
        }
        (Err(why), _) | (_, Err(why)) => println!("\nthe darktrace-sdk script was skipped: {why}"),
    }
    if let Some(first) = load.first_error {
        println!("\nfirst error: {first}");
    }
    drop(service);
    pull_run(&sim, &http).await;
}

/// The single exports of the first part: a warm-up, then `ROUNDS` measured, each after the
/// floor of the same calls sent by the direct client.
struct Rounds {
    through_service: Vec<Duration>,
    floor: Vec<Duration>,
    until_answer: Vec<Duration>,
    answer_len: usize,
}

async fn export_rounds(
    sim: &Simulator,
    http: &reqwest::Client,
    service: &Service,
    direct: &DarktraceClient,
    body: &Bytes,
    chunks: &[Vec<WireValue>],
    accepted: usize,
) -> Rounds {
    let mut rounds = Rounds {
        through_service: Vec::new(),
        floor: Vec::new(),
        until_answer: Vec::new(),
        answer_len: 0,
    };
    for round in 0..=ROUNDS {
        sim.with_store_mut(|s| *s = Store::default());
        let f = direct_export(direct, chunks).await;
        sim.with_store_mut(|s| *s = Store::default());
        let (e, len) = service_export(http, service, body, accepted).await;
        rounds.answer_len = len;
        if round > 0 {
            rounds.floor.push(f);
            rounds.through_service.push(e.total);
            rounds.until_answer.push(e.until_answer);
        }
    }
    rounds
}

/// Two 100k exports at once ([`TWO_EXPORT_ROUNDS`] times) with `/healthz` probed every 5 ms,
/// and the memory left after the last.
struct TwoExports {
    /// Sorted; probed from a thread of its own.
    health: Vec<Duration>,
    /// Sorted; probed from a task on this harness's runtime, beside the simulator and the
    /// uploads (how it was measured before), to show what the harness itself adds.
    shared_health: Vec<Duration>,
    peak: u64,
    /// The longer of each pair, median over the pairs.
    took: Duration,
    /// RSS at once, 1 s and 5 s after both answers were read.
    after: [u64; 3],
    after_15s: u64,
}

impl TwoExports {
    fn health_p99(&self) -> Duration {
        p99(&self.health)
    }

    fn health_max(&self) -> Duration {
        *self.health.last().expect("a probe")
    }

    /// p99 / max of the probe on the harness's runtime.
    fn shared_health(&self) -> (Duration, Duration) {
        (
            p99(&self.shared_health),
            *self.shared_health.last().expect("a probe"),
        )
    }
}

/// Of sorted samples.
fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

async fn two_exports(
    sim: &Simulator,
    http: &reqwest::Client,
    service: &Service,
    body: &Bytes,
    accepted: usize,
) -> TwoExports {
    service.reset_peak();
    let (mut health, mut shared_health, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TWO_EXPORT_ROUNDS {
        sim.with_store_mut(|s| *s = Store::default());
        let probe_end = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_health(
            http.clone(),
            service.url("/healthz"),
            probe_end.clone(),
        ));
        let own_probe = probe_health_on_own_thread(service.url("/healthz"), probe_end.clone());
        let (a, b) = tokio::join!(
            service_export(http, service, body, accepted),
            service_export(http, service, body, accepted)
        );
        probe_end.store(true, Ordering::Relaxed);
        shared_health.extend(probe.await.expect("probe"));
        health.extend(own_probe.join().expect("probe thread"));
        pairs.push(a.0.total.max(b.0.total));
    }
    health.sort();
    shared_health.sort();
    let peak = service.memory().peak;
    let took = median(&mut pairs);
    let ended = Instant::now();
    let mut after = [0; 3];
    for (slot, at) in after.iter_mut().zip([0, 1, 5]) {
        tokio::time::sleep_until((ended + Duration::from_secs(at)).into()).await;
        *slot = service.memory().current;
    }
    tokio::time::sleep_until((ended + Duration::from_secs(15)).into()).await;
    TwoExports {
        health,
        shared_health,
        peak,
        took,
        after,
        after_15s: service.memory().current,
    }
}

/// A token, then every page of the bench collection read one after the other, as the pull
/// reads them, and nothing done with them: what the ThreatQ side costs on its own.
async fn read_pages(http: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let token: serde_json::Value = http
        .post(format!("{url}/api/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "bench-client"),
            ("email", "bench@example.org"),
            ("password", "bench-pass"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token answer");
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("token"));
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(rename = "nextCursorMark")]
        next: String,
        #[allow(dead_code)]
        data: serde::de::IgnoredAny,
    }
    let mut cursor = "*".to_owned();
    // The pages of items and the end page, each read through once (IgnoredAny).
    for _ in 0..=INDICATORS.div_ceil(PULL_PAGE_SIZE) {
        let bytes = http
            .get(format!("{url}/api/indicators/query/hash/bench"))
            .query(&[
                ("limit", PULL_PAGE_SIZE.to_string()),
                ("cursorMark", cursor.clone()),
            ])
            .header("Authorization", &bearer)
            .send()
            .await
            .expect("page")
            .bytes()
            .await
            .expect("page answer");
        cursor = serde_json::from_slice::<Page>(&bytes).expect("a page").next;
    }
    started.elapsed()
}

/// Items per page of the pull, as `THREATQ_PAGE_SIZE`'s default.
const PULL_PAGE_SIZE: usize = 1000;

/// A pull of `INDICATORS` items from the ThreatQ simulator through a fresh service's
/// `POST /pull` (sync mode, an empty source): time, and peak RSS beside a push's budget.
async fn pull_run(sim: &Simulator, http: &reqwest::Client) {
    use darktrace_export::threatq_sim::{ThreatqSim, ThreatqSimConfig};
    let body = collection::threatq_collection(INDICATORS, 1);
    let page: serde_json::Value = serde_json::from_slice(&body).expect("collection is JSON");
    let items = match page {
        serde_json::Value::Array(items) => items,
        mut other => other["data"].take().as_array().cloned().expect("a list"),
    };
    let mut config = ThreatqSimConfig::new("bench-client", "bench@example.org", "bench-pass");
    config.collections.insert("bench".into(), items);
    let tq = ThreatqSim::start_local(config)
        .await
        .expect("ThreatQ simulator");
    sim.with_store_mut(|s| *s = Store::default());
    let page_size = PULL_PAGE_SIZE.to_string();
    let service = Service::start_with(
        &sim.url(),
        &[
            ("THREATQ_URL", &tq.url()),
            ("THREATQ_CLIENT_ID", "bench-client"),
            ("THREATQ_EMAIL", "bench@example.org"),
            ("THREATQ_PASSWORD", "bench-pass"),
            ("THREATQ_COLLECTION", "bench"),
            ("THREATQ_PAGE_SIZE", &page_size),
        ],
    );
    service.wait_until_healthy(http).await;
    let floor = read_pages(http, &tq.url()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = service.memory();
    service.reset_peak();
    let pages_before = tq.pages_served();
    let started = Instant::now();
    let response = http
        .post(service.url("/pull"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("pull request");
    let status = response.status();
    let answer = response.bytes().await.expect("pull answer");
    let elapsed = started.elapsed();
    let peak = service.memory();
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(2000)])
    );
    let report: serde_json::Value = serde_json::from_slice(&answer).expect("report");
    let body_mib = body.len() as f64 / MIB;
    println!();
    println!(
        "pull: {INDICATORS} items ({body_mib:.1} MiB as one body) in {} pages of {PULL_PAGE_SIZE}; {} exported",
        tq.pages_served() - pages_before,
        report["summary"]["exported"]
    );
    println!();
    println!("| measurement | result | for comparison |");
    println!("|---|---|---|");
    println!(
        "| 100k pull via POST /pull (sync, one run) | {:.0} ms | {:.0} ms: a token and every page read straight from the simulator, nothing else |",
        ms(elapsed),
        ms(floor)
    );
    println!(
        "| peak RSS during the pull | {:.1} MiB | {:.1} MiB: a push's budget (body + 30) |",
        peak.peak as f64 / MIB,
        body_mib + 30.0
    );
    println!(
        "| idle RSS before it | {:.1} MiB | |",
        idle.current as f64 / MIB
    );
}

/// The add calls the service makes for `body`, computed with the same screening.
fn prepared_chunks(body: &[u8]) -> Vec<Vec<WireValue>> {
    let batch = parse_batch(body, INDICATORS).expect("collection parses");
    let screener = Screener::new(&ScreenConfig::default(), Some("127.0.0.1"));
    let pending = Verdict::new(Reason::DryRun, "");
    let screened = screener.screen(batch.items, &pending);
    screened
        .accepted
        .chunks(DARKTRACE_BATCH_SIZE)
        .map(|chunk| chunk.iter().map(|a| a.wire_value.clone()).collect())
        .collect()
}

/// Reading the collection once and nothing more: no export can take less than this on top
/// of sending.
fn read_floor(body: &[u8]) -> Duration {
    let started = Instant::now();
    serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("collection is JSON");
    started.elapsed()
}

/// Parsing and screening the collection, as the service does before it sends anything.
fn screen_once(body: &[u8]) -> Duration {
    let screener = Screener::new(&ScreenConfig::default(), Some("127.0.0.1"));
    let pending = Verdict::new(Reason::DryRun, "");
    let started = Instant::now();
    let (screening, _) =
        read_batch(body, INDICATORS, || screener.start()).expect("collection parses");
    let accepted = screening.finish(&pending).accepted.len();
    let elapsed = started.elapsed();
    assert!(accepted > 0);
    elapsed
}

/// The floor: the same calls, signed and sent by the library's client, with the same
/// concurrency limit the service uses.
async fn direct_export(client: &DarktraceClient, chunks: &[Vec<WireValue>]) -> Duration {
    let tally = CallTally::default();
    let started = Instant::now();
    let answers = join_all(chunks.iter().map(|chunk| {
        let call = AddCall::plain(chunk.iter().collect(), "ThreatQ");
        let tally = &tally;
        async move { client.add(&call, tally).await }
    }))
    .await;
    let elapsed = started.elapsed();
    for (chunk, answer) in chunks.iter().zip(answers) {
        let answer = answer.expect("direct add call");
        assert_eq!(answer.added_list.map_or(0, |l| l.len()), chunk.len());
    }
    elapsed
}

async fn service_export(
    http: &reqwest::Client,
    service: &Service,
    body: &Bytes,
    accepted: usize,
) -> (ExportTiming, usize) {
    let started = Instant::now();
    let response = http
        .post(service.url("/export"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("export request");
    let status = response.status();
    let headers_at = started.elapsed();
    let answer = response.bytes().await.expect("export answer");
    let elapsed = started.elapsed();
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(2000)])
    );
    // Off the harness's workers: reading 100k results takes tens of milliseconds, which
    // would hold up the simulator and the other client sharing them.
    let (answer, report) = tokio::task::spawn_blocking(move || {
        let report: serde_json::Value = serde_json::from_slice(&answer).expect("report");
        (answer, report)
    })
    .await
    .expect("reading the report");
    assert_eq!(
        report["summary"]["exported"], accepted,
        "{}",
        report["summary"]
    );
    assert_eq!(report["summary"]["failed"], 0);
    (
        ExportTiming {
            total: elapsed,
            until_answer: headers_at,
        },
        answer.len(),
    )
}

/// One export through the service, and how long the answer took to begin: until then the
/// service was receiving, screening, sending and building the answer.
struct ExportTiming {
    total: Duration,
    until_answer: Duration,
}

struct Load {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// `CLIENTS` clients, each sending one batch after another until `LOAD_TIME` has passed.
async fn load_run(http: &reqwest::Client, service: &Service) -> Load {
    let bodies: Vec<Bytes> = (0..LOAD_BODIES)
        .map(|k| Bytes::from(collection::threatq_collection(BATCH, 1000 + k as u64)))
        .collect();
    let url = service.url("/export");
    let started = Instant::now();
    let end = started + LOAD_TIME;
    let clients = (0..CLIENTS).map(|client| {
        let (http, url, bodies) = (http.clone(), url.clone(), bodies.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            let mut sent = 0;
            while Instant::now() < end && sent < MAX_REQUESTS_PER_CLIENT {
                let body = bodies[(client + sent) % bodies.len()].clone();
                sent += 1;
                let t = Instant::now();
                let result = http
                    .post(&url)
                    .bearer_auth(API_TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match result {
                    Ok(response) => {
                        let status = response.status();
                        let ok = response.bytes().await.is_ok();
                        if status != 200 || !ok {
                            errors.push(format!("status {status}"));
                        }
                    }
                    Err(error) => errors.push(error.to_string()),
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for (l, e) in join_all(clients)
        .await
        .into_iter()
        .map(|r| r.expect("client task"))
    {
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
    Load {
        requests: latencies.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        elapsed,
        p50: at(50),
        p99: at(99),
        max: *latencies.last().expect("at least one request"),
    }
}

/// The darktrace-sdk script (`benches/support/sdk_peer.py`) doing the same job against the
/// simulator: its time and the entries it sent, or why it could not run.
fn sdk_peer(url: &str, body_file: &std::path::Path) -> Result<(Duration, usize), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/sdk_peer.py");
    let output = Command::new("python3")
        .arg(script)
        .args([url, PUBLIC, PRIVATE])
        .arg(body_file)
        .arg(DARKTRACE_BATCH_SIZE.to_string())
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .map_err(|e| format!("python3 cannot run ({e})"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(if err.contains("No module named 'darktrace'") {
            "the darktrace-sdk package is not installed (pip install darktrace-sdk)".into()
        } else {
            format!("the script failed: {}", err.lines().last().unwrap_or(""))
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    let secs: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("no time printed")?;
    let sent: usize = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("no count printed")?;
    Ok((Duration::from_secs_f64(secs), sent))
}

/// `GET url` every 5 ms until `end`, each probe's latency.
/// [`probe_health`] on a thread of its own with its own client, so what it measures is the
/// service and the machine, not a wait for this harness's workers (busy with the simulator
/// and the uploads).
fn probe_health_on_own_thread(
    url: String,
    end: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime")
            .block_on(probe_health(reqwest::Client::new(), url, end))
    })
}

async fn probe_health(http: reqwest::Client, url: String, end: Arc<AtomicBool>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while !end.load(Ordering::Relaxed) && latencies.len() < 100_000 {
        let t = Instant::now();
        let ok = match http.get(&url).send().await {
            Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        latencies.push(if ok { t.elapsed() } else { Duration::MAX / 4 });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies
}

fn list(samples: &[Duration]) -> String {
    samples
        .iter()
        .map(|d| format!("{:.0}", ms(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The service binary running as a child process; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

struct Memory {
    current: u64,
    peak: u64,
}

impl Service {
    fn start(darktrace_url: &str) -> Service {
        Service::start_with(darktrace_url, &[])
    }

    /// The service with `extra` settings besides the load test's own.
    fn start_with(darktrace_url: &str, extra: &[(&str, &str)]) -> Service {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // SERVICE_BIN: another build of the service to measure against the same harness.
        let binary = std::env::var_os("SERVICE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_darktrace-export").into());
        let child = Command::new(binary)
            .env_clear()
            .env("DARKTRACE_HOST", darktrace_url)
            .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
            .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
            .env("API_TOKENS", API_TOKEN)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("OBJECTS_PER_RUN", INDICATORS.to_string())
            .env("MAX_BODY_BYTES", (256 * 1024 * 1024).to_string())
            .env("DISABLE_PROXIES", "true")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "error")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the service binary");
        Service { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_until_healthy(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(self.url("/healthz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not become healthy within 15 s");
    }

    /// The service's `darktrace_concurrency_limit` gauge, from `/metrics`.
    async fn concurrency_limit(&self, http: &reqwest::Client) -> String {
        let text = match http.get(self.url("/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .find_map(|l| l.strip_prefix("darktrace_concurrency_limit "))
            .unwrap_or("?")
            .to_owned()
    }

    /// Resident and peak resident memory, from /proc.
    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|k| k * 1024)
                .expect("field in /proc/PID/status")
        };
        Memory {
            current: kib("VmRSS:"),
            peak: kib("VmHWM:"),
        }
    }

    /// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("reset the peak RSS");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
