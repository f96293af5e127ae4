//! Proxies for Darktrace calls: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, in either
//! case, honoured by default and ignored with DISABLE_PROXIES=true.
//!
//! The variables are given to the real binary as a child process with a cleared
//! environment; this process's environment is never changed. A small recording proxy on
//! loopback stands between it and the simulator.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::helpers::*;
use darktrace_export::darktrace::proxy::ProxyRoute;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP proxy on loopback that records the first request line of each connection and
/// passes the traffic on (absolute-form requests and CONNECT tunnels), to loopback only.
struct RecordingProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, log.clone()));
            }
        });
        RecordingProxy { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn relay(mut client: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    log.lock().unwrap().push(request_line.clone());
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = if method == "CONNECT" {
        target
    } else {
        target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
    };
    if !authority.starts_with("127.0.0.1:") {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if method == "CONNECT" {
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else if upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::test]
async fn check_goes_through_the_proxy_named_by_each_variable_in_either_case() {
    let sim = simulator().await;
    for variable in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        let proxy = RecordingProxy::start().await;
        let (code, line) = run_check(&sim.url(), &[(variable, &proxy.url())]).await;
        assert_eq!(code, Some(0), "{variable}: {line}");
        assert!(
            line.contains(&format!("via proxy {}", proxy.url())),
            "{line}"
        );
        // The proxy records the first request of each connection: check's second read
        // (the source) shows only when it did not reuse the first one's connection.
        let seen = proxy.seen();
        let reads = [
            format!("GET {}/intelfeed?sources=true HTTP/1.1", sim.url()),
            format!(
                "GET {}/intelfeed?fulldetails=true&source=ThreatQ HTTP/1.1",
                sim.url()
            ),
        ];
        assert_eq!(seen.first(), Some(&reads[0]), "{variable}: {seen:?}");
        assert!(
            seen.iter().all(|s| reads.contains(s)),
            "{variable}: {seen:?}"
        );
    }
}

#[tokio::test]
async fn disable_proxies_true_ignores_every_proxy_variable() {
    let sim = simulator().await;
    let proxy = RecordingProxy::start().await;
    let url = proxy.url();
    let (code, line) = run_check(
        &sim.url(),
        &[
            ("HTTP_PROXY", &url),
            ("http_proxy", &url),
            ("ALL_PROXY", &url),
            ("DISABLE_PROXIES", "true"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert!(!line.contains("proxy"), "{line}");
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    assert_eq!(sim.calls().len(), 2, "both of check's reads went direct");
}

#[tokio::test]
async fn no_proxy_in_either_case_sends_darktrace_direct() {
    let sim = simulator().await;
    for variable in ["NO_PROXY", "no_proxy"] {
        let proxy = RecordingProxy::start().await;
        let (code, line) = run_check(
            &sim.url(),
            &[
                ("HTTP_PROXY", &proxy.url()),
                (variable, "localhost,127.0.0.1"),
            ],
        )
        .await;
        assert_eq!(code, Some(0), "{line}");
        assert!(proxy.seen().is_empty(), "{variable}: {:?}", proxy.seen());
    }
}

#[tokio::test]
async fn https_darktrace_is_reached_through_a_connect_tunnel_from_https_proxy() {
    let (sim, identity) = tls_simulator().await;
    let dir = std::env::temp_dir().join(format!("dtx-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &identity.cert_pem).unwrap();
    let ca = ca.to_string_lossy().into_owned();

    let proxy = RecordingProxy::start().await;
    let (code, line) = run_check(
        &sim.url(),
        &[("HTTPS_PROXY", &proxy.url()), ("DARKTRACE_CA_FILE", &ca)],
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT {} HTTP/1.1", sim.addr())]
    );

    let http_only = RecordingProxy::start().await;
    let (code, line) = run_check(
        &sim.url(),
        &[("HTTP_PROXY", &http_only.url()), ("DARKTRACE_CA_FILE", &ca)],
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert!(
        http_only.seen().is_empty(),
        "HTTP_PROXY is for http:// hosts only"
    );
}

#[tokio::test]
async fn an_export_goes_through_the_proxy_in_the_configuration() {
    let proxy = RecordingProxy::start().await;
    let app = spawn_adjusted(|config| {
        config.darktrace.proxy = Some(ProxyRoute::new("HTTP_PROXY", &proxy.url()).unwrap());
    })
    .await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        proxy.seen(),
        vec![format!("POST {}/intelfeed HTTP/1.1", app.sim.url())]
    );
}

#[tokio::test]
async fn the_proxy_in_use_is_logged_at_start_without_its_password() {
    let text = start_log(&[("https_proxy", "http://user:pr0xy-s3cret@127.0.0.1:3128")]).await;
    assert!(
        text.contains("http://127.0.0.1:3128 (from https_proxy)"),
        "{text}"
    );
    assert!(!text.contains("pr0xy-s3cret"), "{text}");
}

#[tokio::test]
async fn an_unusable_proxy_stops_the_service_naming_the_variable() {
    let output = binary()
        .env("DARKTRACE_HOST", "https://127.0.0.1:1")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("API_TOKENS", API_TOKEN)
        .env("ALL_PROXY", "socks5://user:pr0xy-s3cret@127.0.0.1:1080")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("ALL_PROXY"), "{stderr}");
    assert!(!stderr.contains("pr0xy-s3cret"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
