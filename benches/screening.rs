//! Screening throughput: parse, check and normalise a realistic 100,000-indicator ThreatQ
//! collection, against the floor of merely reading the same bytes (`IgnoredAny`), plus the
//! cost of building and signing one Darktrace add call.
//!
//! `cargo bench --bench screening`; see BENCHMARKS.md.

#[path = "support/collection.rs"]
mod collection;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use darktrace_export::config::ScreenConfig;
use darktrace_export::darktrace::sign;
use darktrace_export::darktrace::wire::AddCall;
use darktrace_export::export;
use darktrace_export::http::request::{Reading, parse_batch, read_items, read_items_with};
use darktrace_export::outcome::{ItemResult, Reason, Verdict};
use darktrace_export::screen::{Accepted, Screener};
use darktrace_export::threatq::ItemSink;
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
                    read_items(black_box(&body), count, || screener.start()).unwrap();
                screening.finish(&pending)
            })
        });
        group.finish();
    }
    let body = collection::threatq_collection(INDICATORS, 1);

    // The entries of one full add call: the first 1,000 accepted values of the collection.
    let batch = parse_batch(&body, INDICATORS).unwrap();
    let screened = screener.screen(batch.items, &pending);
    let entries: Vec<&str> = screened
        .accepted
        .iter()
        .take(1000)
        .map(|a| a.wire_value.as_str())
        .collect();
    let call = AddCall {
        entries,
        source: "ThreatQ",
        expiry: Some("2026-12-27T17:52:02"),
        description: None,
        hostname: false,
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
        let (judged, _) = read_items(black_box(&body), INDICATORS, || screener.start()).unwrap();
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

/// Rounds of the mechanism comparison below.
const MECHANISM_ROUNDS: usize = 21;

/// Times of each variant, alternated round by round so that every variant sees the same
/// load on a shared machine. Each closure times its own stage (set-up left out).
fn alternate(variants: &mut [(&str, &mut dyn FnMut() -> Duration)]) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(MECHANISM_ROUNDS); variants.len()];
    for round in 0..MECHANISM_ROUNDS {
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

/// Each speed mechanism against the simple code it replaces, on the stage it serves.
fn mechanisms() {
    let screener = Screener::new(&ScreenConfig::default(), Some("dt.corp.example"));
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let body = collection::threatq_collection(INDICATORS, 1);
    let batch = parse_batch(&body, INDICATORS).unwrap();
    // Every variant gives the same answer, byte for byte, before any is timed.
    let answer = |s: darktrace_export::screen::Screened| {
        (serde_json::to_vec(&s.results).unwrap(), s.accepted)
    };
    let reference = answer(screener.screen(batch.items.clone(), &pending));
    let mut by_copy = screener.start_by_copy();
    for item in batch.items.clone() {
        by_copy.take(item);
    }
    assert!(answer(by_copy.finish(&pending)) == reference);
    for reading in [Reading::Raw, Reading::Checked, Reading::PathAlways] {
        let (screening, _) =
            read_items_with(&body, INDICATORS, || screener.start(), reading).unwrap();
        assert!(answer(screening.finish(&pending)) == reference);
    }
    println!("\nmechanisms, alternated, {MECHANISM_ROUNDS} rounds");
    println!(
        "| stage | variant | median | range | vs first (medians) | vs first (per round: median, range) |"
    );
    println!("|---|---|---|---|---|---|");

    // 1. Reconcile: Darktrace's usual answer names every entry in addedList, in order.
    let screened = screener.screen(batch.items.clone(), &pending);
    type Reconcile = for<'l, 'r> fn(
        &[&Accepted],
        &'l Option<Vec<String>>,
        &'l Option<Vec<String>>,
        &mut [ItemResult<'r>],
    );
    for entries in [5000, 1000] {
        let chunk: Vec<&Accepted> = screened.accepted.iter().take(entries).collect();
        let added = Some(
            chunk
                .iter()
                .map(|a| a.wire_value.clone())
                .collect::<Vec<_>>(),
        );
        let updated = Some(Vec::new());
        let repeat = 200_000 / entries;
        let timer = |f: Reconcile| {
            let mut results = screened.results.clone();
            let (chunk, added, updated) = (&chunk, &added, &updated);
            move || {
                let started = Instant::now();
                for _ in 0..repeat {
                    f(chunk, black_box(added), updated, &mut results);
                }
                started.elapsed() / repeat as u32
            }
        };
        let mut fast = timer(export::reconcile_lists);
        let mut sets = timer(export::reconcile_by_sets);
        let names = ["in-order fast path", "sets only"];
        let times = alternate(&mut [(names[0], &mut fast), (names[1], &mut sets)]);
        let stage = format!("reconcile {entries}-entry answer");
        print_stage(&stage, &names, &times, ("µs", 1e6));
    }

    // 2. First-seen values: screening alone, on the list already read.
    let screen_with = |by_copy: bool| {
        let (screener, pending, items) = (&screener, &pending, &batch.items);
        move || {
            let items = items.clone();
            let started = Instant::now();
            let mut screening = if by_copy {
                screener.start_by_copy()
            } else {
                screener.start()
            };
            for item in items {
                screening.take(item);
            }
            let screened = black_box(screening.finish(pending));
            let elapsed = started.elapsed();
            drop(screened);
            elapsed
        }
    };
    let names = ["HashTable, no copy", "HashMap<String>, a copy"];
    let (mut table, mut map) = (screen_with(false), screen_with(true));
    let times = alternate(&mut [(names[0], &mut table), (names[1], &mut map)]);
    print_stage("screening 100k (list read)", &names, &times, ("ms", 1e3));
    // ... and as /export does it, screening beside the reading.
    let read_and_screen = |by_copy: bool| {
        let (screener, pending, body) = (&screener, &pending, &body);
        move || {
            let started = Instant::now();
            let (screening, _) = read_items(black_box(body), INDICATORS, || {
                if by_copy {
                    screener.start_by_copy()
                } else {
                    screener.start()
                }
            })
            .unwrap();
            let screened = black_box(screening.finish(pending));
            let elapsed = started.elapsed();
            drop(screened);
            elapsed
        }
    };
    let (mut table, mut map) = (read_and_screen(false), read_and_screen(true));
    let times = alternate(&mut [(names[0], &mut table), (names[1], &mut map)]);
    print_stage("read + screen 100k", &names, &times, ("ms", 1e3));

    // 3. Keys: read and screen as /export does, and read a body broken at its end.
    let broken = {
        let mut broken = body.clone();
        let at = broken.len() - 2;
        broken.truncate(at);
        broken.extend_from_slice(b"]");
        broken
    };
    let readings = [Reading::Raw, Reading::Checked, Reading::PathAlways];
    let names = [
        "raw keys, re-read on error",
        "text keys, re-read on error for the path",
        "text keys, path tracked, one read",
    ];
    for (stage, body, valid) in [
        ("read + screen 100k", &body, true),
        ("refuse 100k broken at the end", &broken, false),
    ] {
        let timer = |reading: Reading| {
            let (screener, pending) = (&screener, &pending);
            move || {
                let started = Instant::now();
                let read = read_items_with(body, INDICATORS, || screener.start(), reading);
                assert_eq!(read.is_ok(), valid);
                let screened = read.map(|(screening, _)| black_box(screening.finish(pending)));
                let elapsed = started.elapsed();
                drop(screened);
                elapsed
            }
        };
        let mut variants: Vec<_> = readings.map(timer).into_iter().collect();
        let mut list: Vec<(&str, &mut dyn FnMut() -> Duration)> = names
            .iter()
            .zip(&mut variants)
            .map(|(n, v)| (*n, v as &mut dyn FnMut() -> Duration))
            .collect();
        let times = alternate(&mut list);
        print_stage(stage, &names, &times, ("ms", 1e3));
    }
}

criterion_group!(benches, screening);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    alternated_ratio();
    mechanisms();
}
