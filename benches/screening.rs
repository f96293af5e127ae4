//! Screening throughput: parse, check and normalise a realistic 100,000-indicator ThreatQ
//! collection, against the floor of merely reading the same bytes (`IgnoredAny`), plus the
//! cost of building and signing one Darktrace add call, and of matching Darktrace's answer to
//! the entries of one call.
//!
//! `cargo bench --bench screening`; see BENCHMARKS.md.

#[path = "support/collection.rs"]
mod collection;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use darktrace_export::config::ScreenConfig;
use darktrace_export::darktrace::sign;
use darktrace_export::darktrace::wire::AddCall;
use darktrace_export::outcome::{Reason, Report, Summary, Verdict};
use darktrace_export::pipeline::reconcile;
use darktrace_export::screen::{Accepted, Screener};
use darktrace_export::threatq::{parse_batch, read_batch, read_streamed};
use serde::de::IgnoredAny;
use std::hint::black_box;
use std::time::{Duration, Instant};

const INDICATORS: usize = 100_000;

fn screening(c: &mut Criterion) {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    // The same mix in a batch small enough to stay in the CPU cache, to show what the size
    // of the large one costs.
    for (name, count) in [("collection_100k", INDICATORS), ("collection_1k", 1000)] {
        let body = collection::threatq_collection(count, 1);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(20);
        group.bench_function("floor_ignored_any", |b| {
            b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
        });
        group.bench_function("parse_only", |b| {
            b.iter(|| parse_batch(black_box(&body), count).unwrap())
        });
        // Two passes, as /remove and /sync read: the whole list, then screening.
        group.bench_function("parse_then_screen", |b| {
            b.iter(|| {
                let batch = parse_batch(black_box(&body), count).unwrap();
                screener.screen(batch.items, &pending)
            })
        });
        // One pass, as /export reads: each item judged as soon as it is read.
        group.bench_function("parse_and_screen", |b| {
            b.iter(|| {
                let (screening, _) =
                    read_batch(black_box(&body), count, || screener.start()).unwrap();
                screening.finish(&pending)
            })
        });
        group.finish();
    }
    let body = collection::threatq_collection(INDICATORS, 1);

    // The entries of one full add call: the first 1,000 accepted values of the collection.
    let batch = parse_batch(&body, INDICATORS).unwrap();
    let screened = screener.screen(batch.items, &pending);
    let entries: Vec<_> = screened
        .accepted
        .iter()
        .take(1000)
        .map(|a| &a.wire_value)
        .collect();
    let call = AddCall {
        entries,
        source: "ThreatQ",
        expiry: Some("2026-12-27T17:52:02"),
        description: None,
        hostname: false,
        iagn: false,
        strength: None,
    };
    let mut group = c.benchmark_group("add_call_1000_entries");
    group.throughput(Throughput::Bytes(call.to_body().len() as u64));
    group.bench_function("body_and_signature", |b| {
        b.iter_batched(
            || sign::date_header(chrono::Utc::now()),
            |date| {
                let body = call.to_body();
                let signature = sign::request_signature(
                    b"private-token",
                    "public-token",
                    "/intelfeed",
                    &body,
                    &date,
                );
                (body, signature)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Rounds of the alternated comparison below.
const ALTERNATED_ROUNDS: usize = 21;

/// The screening target as one ratio: the floor and screening run alternately, so that both
/// see the same load on a shared machine (criterion measures one function after another,
/// seconds apart), and the medians are compared.
fn alternated_ratio() {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let body = collection::threatq_collection(INDICATORS, 1);
    let mut floor = Vec::with_capacity(ALTERNATED_ROUNDS);
    let mut screening = Vec::with_capacity(ALTERNATED_ROUNDS);
    for _ in 0..ALTERNATED_ROUNDS {
        let started = Instant::now();
        serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap();
        floor.push(started.elapsed());
        let started = Instant::now();
        let (judged, _) = read_batch(black_box(&body), INDICATORS, || screener.start()).unwrap();
        black_box(judged.finish(&pending));
        screening.push(started.elapsed());
    }
    floor.sort();
    screening.sort();
    let (floor, screening) = (
        floor[ALTERNATED_ROUNDS / 2],
        screening[ALTERNATED_ROUNDS / 2],
    );
    println!("\ncollection_100k alternated, median of {ALTERNATED_ROUNDS}:");
    println!("| figure | median | throughput |");
    println!("|---|---|---|");
    for (name, time) in [
        ("floor_ignored_any", floor),
        ("parse_and_screen", screening),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.0} MiB/s |",
            time.as_secs_f64() * 1e3,
            body.len() as f64 / (1024.0 * 1024.0) / time.as_secs_f64()
        );
    }
    println!(
        "screening runs at {:.0}% of the floor's throughput (target >= 50%)",
        100.0 * floor.as_secs_f64() / screening.as_secs_f64()
    );
}

/// Rounds of the reconcile comparison below, unless `MECHANISM_ROUNDS` says otherwise.
fn mechanism_rounds() -> usize {
    std::env::var("MECHANISM_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(21)
}

/// Times of each variant, alternated round by round so that every variant sees the same
/// load on a shared machine. Each closure times its own stage (set-up left out).
fn alternate(variants: &mut [(&str, &mut dyn FnMut() -> Duration)]) -> Vec<Vec<Duration>> {
    let rounds = mechanism_rounds();
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        // The order within a round turns too, so neither variant always runs first.
        for step in 0..variants.len() {
            let at = (round + step) % variants.len();
            times[at].push((variants[at].1)());
        }
    }
    times
}

fn print_stage(stage: &str, names: &[&str], times: &[Vec<Duration>], unit: (&str, f64)) {
    let median = |t: &[Duration]| {
        let mut t = t.to_vec();
        t.sort();
        t[t.len() / 2]
    };
    let base = &times[0];
    for (name, t) in names.iter().zip(times) {
        let mut sorted = t.clone();
        sorted.sort();
        let mut ratios: Vec<f64> = t
            .iter()
            .zip(base)
            .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {stage} | {name} | {:.1} {} | {:.1}–{:.1} | {:+.1}% | {:+.1}% ({:+.1}% to {:+.1}%) |",
            median(t).as_secs_f64() * unit.1,
            unit.0,
            sorted[0].as_secs_f64() * unit.1,
            sorted[sorted.len() - 1].as_secs_f64() * unit.1,
            100.0 * (median(t).as_secs_f64() / median(base).as_secs_f64() - 1.0),
            100.0 * (ratios[ratios.len() / 2] - 1.0),
            100.0 * (ratios[0] - 1.0),
            100.0 * (ratios[ratios.len() - 1] - 1.0),
        );
    }
}

/// Matching Darktrace's lists to the entries of one add call: the answer Darktrace gives
/// (every entry in `addedList`, in the order sent), settled without building sets, against
/// the same names in another order, which are matched by sets.
fn reconcile() {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let body = collection::threatq_collection(INDICATORS, 1);
    let batch = parse_batch(&body, INDICATORS).unwrap();
    let screened = screener.screen(batch.items, &pending);
    println!("\nreconcile, alternated, {} rounds", mechanism_rounds());
    println!(
        "| stage | variant | median | range | vs first (medians) | vs first (per round: median, range) |"
    );
    println!("|---|---|---|---|---|---|");
    for entries in [5000, 1000] {
        let chunk: Vec<&Accepted> = screened.accepted.iter().take(entries).collect();
        let in_order: Vec<String> = chunk
            .iter()
            .map(|a| a.wire_value.as_str().to_owned())
            .collect();
        let mut rotated = in_order.clone();
        rotated.rotate_left(1);
        // Enough calls per sample to read a clock that ticks in tens of nanoseconds.
        let repeat = 200_000 / entries;
        let timer = |added: Vec<String>| {
            let mut results = screened.results.clone();
            let (chunk, added, updated) = (&chunk, Some(added), Some(Vec::new()));
            move || {
                let started = Instant::now();
                for _ in 0..repeat {
                    reconcile::reconcile_lists(chunk, black_box(&added), &updated, &mut results);
                }
                started.elapsed() / repeat as u32
            }
        };
        let (mut fast, mut sets) = (timer(in_order), timer(rotated));
        let names = ["in order: fast path", "another order: sets"];
        let times = alternate(&mut [(names[0], &mut fast), (names[1], &mut sets)]);
        let stage = format!("reconcile {entries}-entry answer");
        print_stage(&stage, &names, &times, ("µs", 1e6));
    }
}

/// The critical path of a 100k `/export` before the calls: the whole body read at once
/// (items borrowed from it, as `/remove` and `/sync` read), against the body read as it
/// arrives in 16 KiB chunks (items made owned, as `/export` reads; hyper reads at most
/// 16 KiB at a time), both screening beside the reading, and the arriving body screened on
/// the reading thread itself, to show what the second thread gains. The chunks are cut
/// before the clock starts.
fn critical_path() {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let body = collection::threatq_collection(INDICATORS, 1);
    println!("\ncritical path, alternated, {} rounds", mechanism_rounds());
    println!(
        "| stage | variant | median | range | vs first (medians) | vs first (per round: median, range) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut whole = || {
        let started = Instant::now();
        let (judged, _) = read_batch(black_box(&body), INDICATORS, || screener.start()).unwrap();
        black_box(judged.finish(&pending));
        started.elapsed()
    };
    let arriving = |beside: bool| {
        let chunks: Vec<bytes::Bytes> = body
            .chunks(16 * 1024)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let started = Instant::now();
        let (judged, _) =
            read_streamed(chunks.into_iter(), INDICATORS, beside, || screener.start()).unwrap();
        black_box(judged.finish(&pending));
        started.elapsed()
    };
    let names = [
        "whole body, items borrowed",
        "arriving in 16 KiB chunks, items owned",
        "the same, screened on the reading thread",
    ];
    let times = alternate(&mut [
        (names[0], &mut whole),
        (names[1], &mut || arriving(true)),
        (names[2], &mut || arriving(false)),
    ]);
    print_stage("read and screen 100k", &names, &times, ("ms", 1e3));
}

/// Writing the answer to a 100k `/export`: serde_json's writer against the report's own,
/// which copies strings that need no escaping as they are.
fn answer_writing() {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let body = collection::threatq_collection(INDICATORS, 1);
    let (judged, _) = read_batch(&body, INDICATORS, || screener.start()).unwrap();
    let results = judged.finish(&pending).results;
    let report = Report {
        source: "ThreatQ".into(),
        expiry: Some("2026-12-27T17:52:02".into()),
        dry_run: true,
        summary: Summary::of(&results),
        results,
        removals: None,
    };
    let capacity = 512 + report.results.len() * 192;
    let mut with_serde = || {
        let started = Instant::now();
        let mut out = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut out, black_box(&report)).unwrap();
        black_box(out);
        started.elapsed()
    };
    let mut own = || {
        let started = Instant::now();
        let mut out = Vec::with_capacity(capacity);
        black_box(&report).write_json(&mut out).unwrap();
        black_box(out);
        started.elapsed()
    };
    println!(
        "\nanswer writing, alternated, {} rounds",
        mechanism_rounds()
    );
    println!(
        "| stage | variant | median | range | vs first (medians) | vs first (per round: median, range) |"
    );
    println!("|---|---|---|---|---|---|");
    let names = ["serde_json::to_writer", "Report::write_json"];
    let times = alternate(&mut [(names[0], &mut with_serde), (names[1], &mut own)]);
    print_stage("write the 100k answer", &names, &times, ("ms", 1e3));
}

criterion_group!(benches, screening);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    alternated_ratio();
    reconcile();
    critical_path();
    answer_writing();
}
