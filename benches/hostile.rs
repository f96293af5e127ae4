//! Hostile load on loopback: the release binary as a child process (so its memory can be
//! read from /proc), the simulator in this process, and each probe an outsider could run
//! against the service's defaults. Prints a table of what the service held and answered.
//!
//! Every probe starts a fresh service, so each peak is its own; every loop is bounded in
//! count and in time; all traffic stays on 127.0.0.1; the service is killed when a probe
//! ends (also on a panic). Nothing here is asserted on time: the figures are printed.
//!
//! `cargo bench --bench hostile`; `cargo bench --bench hostile -- memory sync` runs only the
//! probes named (memory, headers, slow, idle, unread, declared, sync). See BENCHMARKS.md ("Hostile load").

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use darktrace_export::simulator::{Faults, Simulator, Store};
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PUBLIC: &str = "bench-public-token";
const PRIVATE: &str = "bench-private-token";
const API_TOKEN: &str = "bench-api-token";

/// The service's defaults these probes push against.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const OBJECTS_PER_RUN: usize = 10_000;
const MAX_CONNECTIONS: usize = 1024;
const HEALTH_CONNECTIONS: usize = 8;

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(filter));
}

/// Rows of the printed table: probe, figure, result.
type Rows = Vec<[String; 3]>;

async fn run(filter: Vec<String>) {
    let sim = Simulator::start_local(PUBLIC, PRIVATE)
        .await
        .expect("simulator");
    sim.record_calls(false);
    let mut rows: Rows = Vec::new();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("memory") {
        memory_per_request(&sim, &mut rows).await;
    }
    if wanted("headers") {
        header_flood(&sim, &mut rows).await;
    }
    if wanted("slow") {
        slow_headers(&sim, &mut rows).await;
    }
    if wanted("idle") {
        idle_connections(&sim, &mut rows).await;
    }
    if wanted("unread") {
        unread_answers(&sim, &mut rows).await;
    }
    if wanted("declared") {
        declared_lengths(&sim, &mut rows).await;
    }
    if wanted("sync") {
        sync_race(&sim, &mut rows).await;
    }
    println!();
    println!("| probe | figure | result |");
    println!("|---|---|---|");
    for [probe, figure, result] in rows {
        println!("| {probe} | {figure} | {result} |");
    }
}

// ---- one request at the worst case the settings allow ------------------------------

/// A batch of `items` items filling `MAX_BODY_BYTES` or just under: item 0 is a valid
/// FQDN (so a sync has something to export and runs to its answer), each other item is
/// `make(i, filler)` with `filler` as long as the body leaves room for.
fn filled_body(items: usize, limit: usize, make: impl Fn(usize, &str) -> String) -> Vec<u8> {
    let first = r#"{"type":"FQDN","value":"ok0.example"}"#;
    let probe_len = make(99_999, "").len() + 1;
    let room = (limit - 2 - first.len()) / (items - 1);
    let filler = "a".repeat(room.saturating_sub(probe_len));
    let mut body = Vec::with_capacity(limit);
    body.push(b'[');
    body.extend_from_slice(first.as_bytes());
    for i in 1..items {
        body.push(b',');
        body.extend_from_slice(make(i, &filler).as_bytes());
    }
    body.push(b']');
    assert!(body.len() <= limit, "{} > {limit}", body.len());
    body
}

/// The shapes that make an answer (and what is held to build it) as large as possible.
fn worst_bodies() -> Vec<(&'static str, Vec<u8>, usize)> {
    let n = OBJECTS_PER_RUN;
    vec![
        (
            "long type names (cut at 256, echoed in type and detail)",
            filled_body(n, MAX_BODY_BYTES, |i, f| {
                format!(r#"{{"type":"T{f}","value":"h{i}.example"}}"#)
            }),
            OBJECTS_PER_RUN,
        ),
        (
            "long values (echoed whole in value)",
            filled_body(n, MAX_BODY_BYTES, |i, f| {
                format!(r#"{{"type":"FQDN","value":"v{i}{f}"}}"#)
            }),
            OBJECTS_PER_RUN,
        ),
        (
            r#"long values of escapes (\\, each decoded into a copy)"#,
            filled_body(n, MAX_BODY_BYTES, |i, f| {
                let escaped = f.replace('a', r"\\");
                let half = &escaped[..escaped.len() / 4 * 2];
                format!(r#"{{"type":"FQDN","value":"v{i}{half}"}}"#)
            }),
            OBJECTS_PER_RUN,
        ),
        (
            "long type, id, status and value in every item",
            filled_body(n, MAX_BODY_BYTES, |i, f| {
                let long = "x".repeat(300);
                format!(
                    r#"{{"id":"{long}{i}","type":"T{long}","status":"S{long}","value":"v{i}{f}"}}"#
                )
            }),
            OBJECTS_PER_RUN,
        ),
        (
            "many small items (OBJECTS_PER_RUN=10,000,000)",
            filled_body(1_300_000, MAX_BODY_BYTES, |_, _| {
                r#"{"type":"T","value":"a"}"#.to_owned()
            }),
            10_000_000,
        ),
    ]
}

async fn memory_per_request(sim: &Simulator, rows: &mut Rows) {
    let http = client();
    let bodies = worst_bodies();
    for path in ["/export", "/sync"] {
        for (shape, body, objects) in &bodies {
            sim.with_store_mut(|s| *s = Store::default());
            let objects = objects.to_string();
            let service = Service::start(&sim.url(), &[("OBJECTS_PER_RUN", &objects)], None);
            service.wait_until_healthy().await;
            let idle = service.kib("VmRSS");
            service.reset_peak();
            let started = Instant::now();
            let response = http
                .post(service.url(path))
                .bearer_auth(API_TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("the request is answered");
            let status = response.status();
            let answer = response.bytes().await.expect("the answer is read");
            let elapsed = started.elapsed();
            let peak = service.kib("VmHWM");
            let body_mib = body.len() as f64 / MIB;
            let peak_mib = peak as f64 / 1024.0;
            rows.push([
                format!("memory: one {body_mib:.1} MiB `{path}`, {shape}"),
                "status; answer; peak RSS (idle before); peak / body".into(),
                format!(
                    "{status}; {:.1} MiB; **{peak_mib:.1} MiB** ({:.1} MiB); {:.2}x ({:.1} s)",
                    answer.len() as f64 / MIB,
                    idle as f64 / 1024.0,
                    peak_mib / body_mib,
                    elapsed.as_secs_f64()
                ),
            ]);
            print_last(rows);
        }
    }
}

// ---- connections -------------------------------------------------------------------

fn huge_head() -> &'static [u8] {
    static HUGE: OnceLock<Vec<u8>> = OnceLock::new();
    HUGE.get_or_init(|| {
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        head.resize(381 * 1024, b'a');
        head
    })
}

/// 10,000 connections at once, each sending 381 KiB of headers that never end, no token.
async fn header_flood(sim: &Simulator, rows: &mut Rows) {
    const CONNECTIONS: usize = 10_000;
    let service = Service::start(&sim.url(), &[], None);
    service.wait_until_healthy().await;
    let idle = service.kib("VmRSS");
    service.reset_peak();
    let addr = service.addr();
    let started = Instant::now();
    let sampler = Sampler::start(service.pid());
    let floods = (0..CONNECTIONS).map(|_| {
        tokio::spawn(async move {
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(60), TcpStream::connect(addr)).await
            else {
                return Flood::NeverConnected;
            };
            let _ = stream.write_all(huge_head()).await;
            match read_until_closed(&mut stream, Duration::from_secs(120)).await {
                Some(seen) if seen.starts_with(b"HTTP/1.1 431") => Flood::Answered431,
                Some(_) => Flood::ClosedUnanswered,
                None => Flood::StillOpen,
            }
        })
    });
    let ends: Vec<Flood> = join_all(floods)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let all_done = started.elapsed();
    let max_sampled = sampler.stop().await;
    let health = fresh_request(addr, "GET", "/healthz", "").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = service.kib("VmRSS");
    let peak = service.kib("VmHWM");
    let count = |c: Flood| ends.iter().filter(|e| **e == c).count();
    rows.push([
        format!("{CONNECTIONS} connections x 381 KiB of headers, no token"),
        "431 / closed without answer / still open / never connected".into(),
        format!(
            "{} / {} / {} / {} (all ended after {:.1} s)",
            count(Flood::Answered431),
            count(Flood::ClosedUnanswered),
            count(Flood::StillOpen),
            count(Flood::NeverConnected),
            all_done.as_secs_f64()
        ),
    ]);
    rows.push([
        String::new(),
        "peak RSS (idle before); RSS 2 s after they closed; /healthz after".into(),
        format!(
            "**{:.1} MiB** ({:.1} MiB; sampled max {:.1} MiB); {:.1} MiB; {}",
            peak as f64 / 1024.0,
            idle as f64 / 1024.0,
            max_sampled as f64 / 1024.0,
            after as f64 / 1024.0,
            describe(&health)
        ),
    ]);
    print_last(rows);
}

enum Trickle {
    ClosedAfter(Duration),
    StillOpen,
    NeverConnected,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flood {
    Answered431,
    ClosedUnanswered,
    StillOpen,
    NeverConnected,
}

/// 2,000 connections sending a request head at one byte a second: held at most
/// `HEADER_READ_TIMEOUT_SECS` (10 s) each, the ones beyond `MAX_CONNECTIONS` once accepted.
async fn slow_headers(sim: &Simulator, rows: &mut Rows) {
    const CONNECTIONS: usize = 2_000;
    const BOUND: Duration = Duration::from_secs(90);
    let service = Service::start(&sim.url(), &[], None);
    service.wait_until_healthy().await;
    service.reset_peak();
    let addr = service.addr();
    let started = Instant::now();
    let trickles = (0..CONNECTIONS).map(|_| {
        tokio::spawn(async move {
            let connect = tokio::time::timeout(BOUND, TcpStream::connect(addr)).await;
            let Ok(Ok(mut stream)) = connect else {
                return Trickle::NeverConnected;
            };
            let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let trickle = async {
                for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    // A read that ends (EOF or reset) means the service closed it.
                    let mut buf = [0u8; 512];
                    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf));
                    if let Ok(Ok(0) | Err(_)) = read.await {
                        return;
                    }
                }
            };
            match tokio::time::timeout(BOUND, trickle).await {
                Ok(()) => Trickle::ClosedAfter(started.elapsed()),
                Err(_) => Trickle::StillOpen,
            }
        })
    });
    let handles: Vec<_> = trickles.collect();
    // While they trickle: memory, and whether a fresh /healthz answers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = service.kib("VmRSS");
    let health = fresh_request(addr, "GET", "/healthz", "").await;
    let ends: Vec<Trickle> = join_all(handles)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let closed: Vec<Duration> = ends
        .iter()
        .filter_map(|e| match e {
            Trickle::ClosedAfter(d) => Some(*d),
            _ => None,
        })
        .collect();
    let never = ends
        .iter()
        .filter(|e| matches!(e, Trickle::NeverConnected))
        .count();
    let open = ends
        .iter()
        .filter(|e| matches!(e, Trickle::StillOpen))
        .count();
    let last = closed.iter().max().copied().unwrap_or_default();
    let peak = service.kib("VmHWM");
    rows.push([
        format!("{CONNECTIONS} connections sending headers at 1 byte/s"),
        "RSS at 5 s; peak RSS; /healthz at 5 s on a fresh connection".into(),
        format!(
            "{:.1} MiB; **{:.1} MiB**; {}",
            held as f64 / 1024.0,
            peak as f64 / 1024.0,
            describe(&health)
        ),
    ]);
    rows.push([
        String::new(),
        format!(
            "closed by the service / still open after {} s / connect failed; the last closed after",
            BOUND.as_secs()
        ),
        format!(
            "**{} / {open} / {never}**; {:.1} s (MAX_CONNECTIONS at a time, 10 s each)",
            closed.len(),
            last.as_secs_f64()
        ),
    ]);
    print_last(rows);
}

/// Idle connections up to `MAX_CONNECTIONS`, then past it and past the health reserve:
/// does `/healthz` answer on a fresh connection, and how soon.
async fn idle_connections(sim: &Simulator, rows: &mut Rows) {
    const MORE: usize = 2_000;
    let service = Service::start(&sim.url(), &[], None);
    service.wait_until_healthy().await;
    let addr = service.addr();
    let mut idle = Vec::new();
    let opened = open_idle(addr, MAX_CONNECTIONS, &mut idle).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_cap = fresh_request(addr, "GET", "/healthz", "").await;
    let export_at_cap = fresh_request(addr, "POST", "/export", "[]").await;
    rows.push([
        format!("{opened} idle connections (MAX_CONNECTIONS)"),
        "fresh /healthz; fresh export (taken by the health reserve)".into(),
        format!("**{}**; {}", describe(&at_cap), describe(&export_at_cap)),
    ]);
    print_last(rows);

    let past = open_idle(addr, HEALTH_CONNECTIONS + MORE, &mut idle).await;
    let beyond = fresh_request(addr, "GET", "/healthz", "").await;
    rows.push([
        format!(
            "{} more idle connections (reserve of {HEALTH_CONNECTIONS} filled too, the rest in the backlog)",
            past
        ),
        "fresh /healthz (waits until idle ones hit HEADER_READ_TIMEOUT_SECS=10)".into(),
        format!("**{}**; RSS {:.1} MiB", describe(&beyond), service.kib("VmRSS") as f64 / 1024.0),
    ]);
    print_last(rows);
    drop(idle);
}

/// Opens up to `count` connections that send nothing; the number that connected within
/// a bound (beyond the kernel's backlog a connect waits for SYN retries).
async fn open_idle(addr: SocketAddr, count: usize, into: &mut Vec<TcpStream>) -> usize {
    let mut opened = 0;
    let deadline = Instant::now() + Duration::from_secs(8);
    // Bounded: at most twice `count` attempts, within 8 s.
    for _ in 0..2 * count {
        if opened == count || Instant::now() > deadline {
            break;
        }
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
        {
            into.push(stream);
            opened += 1;
        }
    }
    opened
}

// ---- answers that are never read -----------------------------------------------------

/// 20 clients with a token send an export with a large answer and never read it.
async fn unread_answers(sim: &Simulator, rows: &mut Rows) {
    const CLIENTS: usize = 20;
    let service = Service::start(&sim.url(), &[("MAX_CONCURRENT_EXPORTS", "20")], None);
    service.wait_until_healthy().await;
    let idle = service.kib("VmRSS");
    service.reset_peak();
    let addr = service.addr();
    // 10,000 skipped items whose answer echoes a cut 256-character type twice: about 7 MiB.
    let kind = "K".repeat(2_000);
    let items: Vec<String> = (0..OBJECTS_PER_RUN)
        .map(|i| format!(r#"{{"type":"{kind}","value":"h{i}.example"}}"#))
        .collect();
    let body = format!("[{}]", items.join(","));
    let head = format!(
        "POST /export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stalled = Vec::new();
    for _ in 0..CLIENTS {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer size");
        let mut stream = socket.connect(addr).await.expect("connect");
        let send = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        };
        tokio::time::timeout(Duration::from_secs(60), send)
            .await
            .expect("the body is read within 60 s")
            .expect("the body is sent");
        stalled.push(stream);
    }
    let started = Instant::now();
    // Until all 20 are being answered (the gauge counts the /metrics request too).
    for _ in 0..400 {
        if requests_in_flight(addr).await > CLIENTS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = service.kib("VmRSS");
    let refused = fresh_request(addr, "POST", "/export", "[]").await;
    // Until a new export is served: the permits came back.
    let mut freed_after = None;
    for _ in 0..240 {
        if fresh_request(addr, "POST", "/export", "[]").await.status == Some(200) {
            freed_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut cut = 0;
    for stream in &mut stalled {
        if let Some(seen) = read_until_closed(stream, Duration::from_secs(30)).await
            && seen.len() < 7 * 1024 * 1024
        {
            cut += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = service.kib("VmRSS");
    rows.push([
        format!(
            "{CLIENTS} clients with a token never reading their answers (MAX_CONCURRENT_EXPORTS=20, {:.1} MiB bodies)",
            body.len() as f64 / MIB
        ),
        "RSS held (idle before); a new export meanwhile".into(),
        format!(
            "**{:.1} MiB** ({:.1} MiB); **{}**",
            held as f64 / 1024.0,
            idle as f64 / 1024.0,
            describe(&refused)
        ),
    ]);
    rows.push([
        String::new(),
        "permits back (new export 200) after; cut off before their whole answer; RSS after".into(),
        format!(
            "{}; **{cut} of {CLIENTS}**; **{:.1} MiB** (peak {:.1} MiB)",
            freed_after.map_or("not within 120 s".into(), |d| format!(
                "{:.1} s (WRITE_TIMEOUT_SECS=30)",
                d.as_secs_f64()
            )),
            after as f64 / 1024.0,
            service.kib("VmHWM") as f64 / 1024.0
        ),
    ]);
    print_last(rows);
}

// ---- declared lengths under an address-space limit -----------------------------------

/// 64 requests of 200 bytes declaring `Content-Length: 33554432`, the service under an
/// address-space limit that 64 buffers of 32 MiB would exceed.
async fn declared_lengths(sim: &Simulator, rows: &mut Rows) {
    const REQUESTS: usize = 64;
    // Measured first without a limit: the address space the service reserves at rest
    // (thread stacks, allocator arenas), so the limit leaves it 1 GiB on top.
    let unlimited = Service::start(&sim.url(), &[], None);
    unlimited.wait_until_healthy().await;
    let rest_kib = unlimited.kib("VmPeak");
    drop(unlimited);
    let limit = rest_kib * 1024 + 1024 * 1024 * 1024;
    let mut service = Service::start(&sim.url(), &[], Some(limit));
    service.wait_until_healthy().await;
    let addr = service.addr();
    let head = format!(
        "POST /export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 33554432\r\n\r\n{}",
        "[".repeat(200)
    );
    let mut open = Vec::new();
    for _ in 0..REQUESTS {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        open.push(stream);
    }
    for _ in 0..200 {
        if requests_in_flight(addr).await > REQUESTS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = fresh_request(addr, "POST", "/export", "[]").await;
    let health = fresh_request(addr, "GET", "/healthz", "").await;
    drop(open);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let export = fresh_request(
        addr,
        "POST",
        "/export",
        r#"[{"type":"FQDN","value":"after.example"}]"#,
    )
    .await;
    let alive = service.alive();
    rows.push([
        format!(
            "{REQUESTS} requests declaring Content-Length 32 MiB, `prlimit --as` {:.0} MiB",
            limit as f64 / MIB
        ),
        "process alive; export meanwhile; /healthz; export after".into(),
        format!(
            "**{}**; {}; {}; {}; VmPeak {:.1} MiB (at rest {:.1} MiB)",
            if alive { "yes" } else { "no" },
            describe(&during),
            describe(&health),
            describe(&export),
            service.kib("VmPeak") as f64 / 1024.0,
            rest_kib as f64 / 1024.0
        ),
    ]);
    print_last(rows);
}

// ---- two syncs of one source ---------------------------------------------------------

/// Two `/sync` of one source sent at once, collections A and B, six trials: the answers,
/// and whether Darktrace holds exactly one collection afterwards.
async fn sync_race(sim: &Simulator, rows: &mut Rows) {
    const TRIALS: usize = 6;
    let service = Service::start(&sim.url(), &[], None);
    service.wait_until_healthy().await;
    let http = client();
    let collection = |tag: &str| {
        let items: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"type":"FQDN","value":"{tag}{i}.example"}}"#))
            .collect();
        format!("[{}]", items.join(","))
    };
    let (a, b) = (collection("a"), collection("b"));
    let names = |tag: &str| {
        let mut n: Vec<String> = (0..50).map(|i| format!("{tag}{i}.example")).collect();
        n.sort();
        n
    };
    let mut statuses = Vec::new();
    let mut exactly_one = 0;
    for _ in 0..TRIALS {
        sim.with_store_mut(|s| *s = Store::default());
        // Each Darktrace call answered after 200 ms, so the two surely overlap.
        sim.set_faults(Faults {
            latency: Duration::from_millis(200),
            ..Faults::default()
        });
        let send = |body: String| {
            http.post(service.url("/sync"))
                .bearer_auth(API_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let (ra, rb) = tokio::join!(send(a.clone()), send(b.clone()));
        let pair = [ra, rb].map(|r| r.map_or(0, |r| r.status().as_u16()));
        statuses.push(format!("{}+{}", pair[0], pair[1]));
        let mut held = sim.with_store(|s| s.names(Some("ThreatQ")));
        held.sort();
        if held == names("a") || held == names("b") {
            exactly_one += 1;
        }
    }
    sim.set_faults(Faults::default());
    rows.push([
        format!("two `/sync` of one source at once, A and B, {TRIALS} trials"),
        "answers (A+B); trials ending with exactly one collection".into(),
        format!("{}; **{exactly_one} of {TRIALS}**", statuses.join(", ")),
    ]);
    print_last(rows);
}

// ---- plumbing ------------------------------------------------------------------------

fn print_last(rows: &Rows) {
    if let Some([probe, figure, result]) = rows.last() {
        eprintln!("{probe} | {figure} | {result}");
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("http client")
}

/// Lifts this process's open-file limit to its hard limit (10,000 client connections need
/// 10,000 descriptors); the service inherits it.
fn raise_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned));
    if let Some(hard) = hard {
        let _ = Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={hard}:{hard}"),
            ])
            .status();
    }
}

struct Answer {
    status: Option<u16>,
    elapsed: Duration,
}

fn describe(answer: &Answer) -> String {
    match answer.status {
        Some(status) => format!(
            "{status} in {:.0} ms",
            answer.elapsed.as_secs_f64() * 1000.0
        ),
        None => format!("no answer within {:.0} s", answer.elapsed.as_secs_f64()),
    }
}

/// One request on a new connection, `Connection: close`, bounded at 30 s.
async fn fresh_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    let started = Instant::now();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse::<u16>().ok()
    };
    let status = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .ok()
        .flatten();
    Answer {
        status,
        elapsed: started.elapsed(),
    }
}

/// The `http_requests_in_flight` gauge, the request reading it included.
async fn requests_in_flight(addr: SocketAddr) -> u64 {
    let read = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("http_requests_in_flight "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()
        .flatten()
        .map_or(0, |v| v as u64)
}

/// Reads until the peer closes (or resets) the connection; `None` if still open after
/// `bound`.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if seen.len() < 64 * 1024 => seen.extend_from_slice(&buf[..n]),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok().map(|()| seen)
}

/// Samples a process's resident memory every 100 ms until stopped; the highest seen.
struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut max = 0;
            // Bounded: at most 10 minutes of samples.
            for _ in 0..6_000 {
                max = max.max(proc_kib(pid, "VmRSS").unwrap_or(0));
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            max
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}

fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The service binary as a child process on a free loopback port; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    /// Starts the release binary with its defaults plus `env`, under `prlimit --as=limit`
    /// when `address_space` is given.
    fn start(darktrace_url: &str, env: &[(&str, &str)], address_space: Option<u64>) -> Service {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let binary = env!("CARGO_BIN_EXE_darktrace-export");
        let mut command = match address_space {
            Some(limit) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--as={limit}")).arg("--").arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DARKTRACE_HOST", darktrace_url)
            .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
            .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
            .env("API_TOKENS", API_TOKEN)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DISABLE_PROXIES", "true")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "error")
            .envs(env.iter().copied())
            // The allocator's run-time settings, to measure them (BENCHMARKS.md).
            .envs(std::env::var_os("_RJEM_MALLOC_CONF").map(|conf| ("_RJEM_MALLOC_CONF", conf)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn().expect("start the service binary");
        Service { child, port }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_until_healthy(&self) {
        for _ in 0..300 {
            if fresh_request(self.addr(), "GET", "/healthz", "")
                .await
                .status
                == Some(200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not become healthy within 15 s");
    }

    /// A field of `/proc/PID/status` in KiB.
    fn kib(&self, field: &str) -> u64 {
        proc_kib(self.pid(), field).expect("the service is running")
    }

    /// Starts a new peak-RSS window (writing 5 to clear_refs resets VmHWM).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("reset peak");
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
