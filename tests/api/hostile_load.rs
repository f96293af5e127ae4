//! Hostile load: what one client can make the service hold, and what stays available to
//! others while it tries. Bounded in count and time, loopback only; nothing here asserts how
//! fast anything happens, only that it happens (or is refused).

use std::time::Duration;

use crate::helpers::*;
use serde_json::json;

/// Two syncs of one source at once, collections A and B: one runs, the other is refused
/// with 409 `sync-in-progress` and changes nothing, so Darktrace ends with exactly one
/// collection. The first sync's first call waits at a closed gate in front of Darktrace
/// until the second has been answered, so they surely overlap.
#[tokio::test]
async fn a_second_sync_of_a_source_in_progress_is_409_and_one_collection_remains() {
    let sim = simulator().await;
    let (config, gate) = config_behind_gate(&sim).await;
    let app = std::sync::Arc::new(spawn_with(sim, config).await);
    let collection = |names: &[&str]| {
        json!(
            names
                .iter()
                .map(|n| json!({"type": "FQDN", "value": n}))
                .collect::<Vec<_>>()
        )
    };
    let a = collection(&["a1.example", "a2.example", "a3.example"]);
    let b = collection(&["b1.example", "b2.example", "b3.example"]);

    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.post("/sync", &a).await })
    };
    gate.until_held(1).await;
    let second = app.post_as("/sync", API_TOKEN, &b).await;
    assert_eq!(second.headers()["retry-after"], "5");
    let problem = expect_problem(second, 409).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:sync-in-progress"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("ThreatQ"),
        "{problem}"
    );

    gate.open();
    let (status, report) = first.await.unwrap();
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 3);
    let mut names = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    names.sort();
    assert_eq!(names, ["a1.example", "a2.example", "a3.example"]);

    // The lock is released with the answer: the next sync of the source runs.
    let (status, report) = app.post("/sync", &b).await;
    assert_eq!(status, 200, "{report:#}");
    let mut names = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    names.sort();
    assert_eq!(names, ["b1.example", "b2.example", "b3.example"]);
}

/// A type or id longer than 256 characters comes back cut, with its full length, in
/// `type`/`id` and in `detail` alike: the answer does not grow with the item's text.
#[tokio::test]
async fn long_echoed_fields_are_cut_with_a_marker() {
    let app = spawn().await;
    let long_type = "T".repeat(10_000);
    let long_id = "i".repeat(5_000);
    let (status, report) = app
        .export(&json!([{"type": long_type, "id": long_id, "value": "x.example"}]))
        .await;
    assert_eq!(status, 200, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(result["reason"], "unsupported_type");
    let echoed_type = result["type"].as_str().unwrap();
    assert_eq!(
        echoed_type,
        format!("{}…(cut, 10000 characters)", "T".repeat(256))
    );
    assert_eq!(
        result["id"],
        format!("{}…(cut, 5000 characters)", "i".repeat(256))
    );
    let detail = result["detail"].as_str().unwrap();
    assert!(detail.contains("(cut, 10000 characters)"), "{detail}");
    let answer = serde_json::to_string(&report).unwrap();
    assert!(answer.len() < 2_000, "{} bytes", answer.len());
}

/// `"status":"Whitelisted","status":"Active"` is not exported as Active: a screened key
/// given twice makes the item `invalid`/`duplicate_key`, naming the key; nothing is sent.
#[tokio::test]
async fn a_key_given_twice_in_one_item_is_invalid_never_last_wins() {
    let app = spawn().await;
    let body = br#"[{"type": "FQDN", "value": "twice.example", "status": "Whitelisted", "status": "Active"},
                    {"type": "FQDN", "value": "once.example", "status": "Active"}]"#;
    let response = app
        .http
        .post(app.url("/export"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_accounts_for_every_item(&report, 2);
    let first = &report["results"][0];
    assert_eq!(first["outcome"], "invalid", "{first}");
    assert_eq!(first["reason"], "duplicate_key");
    assert!(
        first["detail"].as_str().unwrap().contains("status"),
        "{first}"
    );
    assert_eq!(report["results"][1]["outcome"], "exported");
    assert_eq!(
        app.sim.with_store(|s| s.names(Some("ThreatQ"))),
        ["once.example"]
    );
}

// ---- The real binary under hostile connections -------------------------------------

use crate::helpers::process::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A field of `/proc/<pid>/status`, in KiB (`VmHWM`: peak resident; `VmPeak`: peak
/// address space).
fn proc_kib(service: &Service, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

fn start(extra: &[(&str, &str)]) -> (Service, darktrace_export::simulator::Simulator) {
    let sim =
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(simulator()));
    (Service::against(&sim.url(), extra), sim)
}

/// Reads until the peer closes (or resets) the connection; `None` if it is still open
/// after `bound` (generous: a bound on the test, not a measure of the service).
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok().map(|()| seen)
}

/// The `http_requests_in_flight` gauge, this request included.
async fn requests_in_flight(service: &Service) -> u64 {
    let (_, text) = fresh_request(service, "GET", "/metrics", "").await;
    text.lines()
        .find_map(|l| l.strip_prefix("http_requests_in_flight "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// One request on a new connection, `Connection: close`; the answer's status and body.
async fn fresh_request(service: &Service, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(30))
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// 1,000 connections that send 381 KiB of headers are each refused at `MAX_HEADER_BYTES`
/// and closed; 1,000 more that send part of their headers and stop are held, at about
/// 16 KiB each. Peak resident memory stays under 200 MiB (hyper's default buffer would
/// have taken about 400 MiB), and `/healthz` answers on a fresh connection meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_are_bounded_in_memory_and_health_answers_throughout() {
    const CONNECTIONS: usize = 1000;
    const BOUND_KIB: u64 = 200 * 1024;
    let (service, _sim) = start(&[("HEADER_READ_TIMEOUT_SECS", "60")]);
    static HUGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let huge: &'static [u8] = HUGE.get_or_init(|| {
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        head.resize(381 * 1024, b'a');
        head
    });
    let addr = service.addr;
    let floods: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let _ = stream.write_all(huge).await;
                read_until_closed(&mut stream, Duration::from_secs(60)).await
            })
        })
        .collect();
    let mut refused = 0;
    for flood in floods {
        let answer = flood.await.unwrap().expect("closed by the service");
        if answer.starts_with(b"HTTP/1.1 431") {
            refused += 1;
        }
    }
    assert!(refused > 0, "431 for headers past MAX_HEADER_BYTES");

    let mut held = Vec::with_capacity(CONNECTIONS);
    let partial = [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "[..],
        &[b'a'; 12 * 1024],
    ]
    .concat();
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&partial).await.unwrap();
        held.push(stream);
    }
    assert_eq!(fresh_request(&service, "GET", "/healthz", "").await.0, 200);
    let peak = proc_kib(&service, "VmHWM");
    assert!(
        peak < BOUND_KIB,
        "peak resident {peak} KiB with {CONNECTIONS} slow-header connections"
    );
    assert_eq!(fresh_request(&service, "GET", "/readyz", "").await.0, 200);
}

/// `MAX_CONNECTIONS` idle connections hold every regular slot: a fresh `/healthz` and
/// `/readyz` still answer (from the health reserve), while a fresh export on the reserve is
/// told 503 `overloaded`, which shows the cap was reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_health_still_answers_on_a_fresh_connection() {
    let (service, _sim) = start(&[
        ("MAX_CONNECTIONS", "200"),
        ("HEALTH_CONNECTIONS", "2"),
        ("HEADER_READ_TIMEOUT_SECS", "120"),
    ]);
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(service.addr).await.unwrap());
    }
    assert_eq!(fresh_request(&service, "GET", "/healthz", "").await.0, 200);
    let (status, body) = fresh_request(&service, "POST", "/export", "[]").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("MAX_CONNECTIONS"), "{body}");
    assert_eq!(fresh_request(&service, "GET", "/readyz", "").await.0, 200);
    drop(idle);
    // Once they are gone, exports are served again.
    let mut status = 0;
    for _ in 0..100 {
        status = fresh_request(&service, "POST", "/export", "[]").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

/// With `HEADER_READ_TIMEOUT_SECS=1`, a connection that sends nothing, one that trickles
/// its headers a byte at a time, and one left idle after a keep-alive answer are all closed
/// by the service. (The bound below only ends the test; the closing is what is checked.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_trickling_and_idle_connections_are_closed_after_the_header_read_timeout() {
    let (service, _sim) = start(&[("HEADER_READ_TIMEOUT_SECS", "1")]);
    let bound = Duration::from_secs(30);

    let mut silent = TcpStream::connect(service.addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent, bound).await.is_some(),
        "silent"
    );

    let mut trickling = TcpStream::connect(service.addr).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in head.iter() {
        if trickling.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !closed {
        closed = read_until_closed(&mut trickling, bound).await.is_some();
    }
    assert!(
        closed,
        "a trickle of header bytes does not keep a connection open"
    );

    let mut kept_alive = TcpStream::connect(service.addr).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept_alive, bound)
        .await
        .expect("idle after its answer, then closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

/// A client that sends an export and never reads its (large) answer keeps the
/// `MAX_CONCURRENT_EXPORTS` permit while the answer is unwritten, so with one permit a second
/// export is refused 503; after `WRITE_TIMEOUT_SECS` the stalled connection is cut off, the
/// permit comes back and an export succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answer_is_cut_off_and_its_permit_freed() {
    let (service, _sim) = start(&[
        ("MAX_CONCURRENT_EXPORTS", "1"),
        ("WRITE_TIMEOUT_SECS", "5"), // room for the probes on a loaded machine
        ("OBJECTS_PER_RUN", "40000"),
    ]);
    // Skipped items (no Darktrace call), each answered with about 500 bytes: some 15 MiB,
    // more than the socket buffers of both ends hold.
    let kind = "K".repeat(200);
    let items: Vec<_> = (0..30_000)
        .map(|i| json!({"type": kind, "value": format!("h{i}.example")}))
        .collect();
    let body = serde_json::to_vec(&items).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(service.addr).await.unwrap();
    let head = format!(
        "POST /export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&body).await.unwrap();
    // Probe only once the stalled export is served (the gauge counts /metrics too): a probe
    // sent before could take the one permit first.
    for _ in 0..200 {
        if requests_in_flight(&service).await > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The first export holds the only permit until its answer is written or cut off.
    let mut saw_refusal = false;
    let mut later = 0;
    for _ in 0..300 {
        let (status, answer) = fresh_request(&service, "POST", "/export", "[]").await;
        match status {
            503 => {
                assert!(answer.contains("overloaded"), "{answer}");
                saw_refusal = true;
            }
            200 if saw_refusal => {
                later = 200;
                break;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_refusal, "an unread answer still holds its permit");
    assert_eq!(
        later, 200,
        "the permit came back once the stalled client was cut off"
    );
    let read = read_until_closed(&mut stalled, Duration::from_secs(30))
        .await
        .expect("the stalled connection was closed");
    assert!(
        read.len() < 15 * 1024 * 1024,
        "cut off before the whole answer"
    );
}

/// 64 requests of 200 bytes that declare 32 MiB each reserve no 32 MiB buffers: the
/// process's peak address space grows by far less than the 2 GiB they declare beyond what
/// 64 requests declaring their true 200 bytes take (each body is read on a thread of its
/// own, and each such thread has a stack and allocator arenas of its own: address space).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_content_length_reserves_no_memory() {
    let (service, _sim) = start(&[("MAX_CONCURRENT_EXPORTS", "64")]);
    let mut peaks = Vec::new();
    // `/export` reads its body as it arrives, `/sync` whole: neither reserves what is declared.
    for (path, declared) in [
        ("/export", 200),
        ("/export", 33_554_432),
        ("/sync", 33_554_432),
    ] {
        let before = proc_kib(&service, "VmPeak");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{}",
            "[".repeat(199)
        );
        let mut open = Vec::new();
        for _ in 0..64 {
            let mut stream = TcpStream::connect(service.addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            open.push(stream);
        }
        // Wait until all 64 are being read (the gauge counts the /metrics request too); a
        // probe sent before then could take a permit from one of them.
        let mut in_flight = 0;
        for _ in 0..200 {
            in_flight = requests_in_flight(&service).await;
            if in_flight > 64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(in_flight, 65, "the 64 requests are being read");
        let status = fresh_request(&service, "POST", "/export", "[]").await.0;
        assert_eq!(status, 503, "the 64 requests hold every permit");
        peaks.push(proc_kib(&service, "VmPeak").saturating_sub(before));
        drop(open);
        for _ in 0..200 {
            if requests_in_flight(&service).await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (grown, path) in [(peaks[1], "/export"), (peaks[2], "/sync")] {
        assert!(
            grown < 512 * 1024,
            "address space grew by {grown} KiB for the declared lengths through {path} (by {} KiB for the first 64)",
            peaks[0]
        );
    }
}

/// What hyper answers itself, before the service runs (so not problem+json, as the README
/// says): 400 for a malformed `Content-Length` or request line, 431 for a head past
/// `MAX_HEADER_BYTES` or `MAX_HEADERS`; then it closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_is_refused_by_the_http_layer_and_the_connection_closed() {
    let (service, _sim) = start(&[]);
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        (
            "POST /export HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
            "400",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(1 << 20)
            ),
            "431",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            "431",
        ),
        ("\x01\x02 garbage\r\n\r\n".to_owned(), "400"),
    ];
    for (request, expected) in cases {
        let mut stream = TcpStream::connect(service.addr).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(30))
            .await
            .expect("closed");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {expected}")),
            "{expected} for {:?}: {text:?}",
            &request[..request.len().min(60)]
        );
    }
}
