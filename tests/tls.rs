//! TLS to Darktrace: verified by default, a private CA trusted with DARKTRACE_CA_FILE,
//! verification off only when asked (and warned about at start).

mod common;

use common::*;

fn exported(n: usize) -> Vec<(String, String)> {
    vec![("exported".into(), "added".into()); n]
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_by_default_as_darktrace_tls() {
    let (sim, _) = tls_simulator().await;
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(
        outcomes(&report),
        vec![("failed".into(), "darktrace_tls".into()); 2]
    );
    for result in report["results"].as_array().unwrap() {
        let detail = result["detail"].as_str().unwrap();
        assert!(
            detail.contains("DARKTRACE_CA_FILE") && detail.contains("ENABLE_SSL_VERIFICATION"),
            "{detail}"
        );
    }
    assert!(app.sim.calls().is_empty(), "no call got past the handshake");
}

#[tokio::test]
async fn trusting_the_certificate_with_darktrace_ca_file_exports() {
    let (sim, identity) = tls_simulator().await;
    let mut config = config_for(&sim);
    config.darktrace.ca_pem = Some(identity.cert_pem.clone().into_bytes());
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(outcomes(&report), exported(2));
    assert!(app.sim.url().starts_with("https://"));
}

#[tokio::test]
async fn another_ca_does_not_make_the_certificate_trusted() {
    let (sim, _) = tls_simulator().await;
    let other = darktrace_export::simulator::SelfSigned::generate(&[]).unwrap();
    let mut config = config_for(&sim);
    config.darktrace.ca_pem = Some(other.cert_pem.into_bytes());
    let app = spawn_with(sim, config).await;
    let (_, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(
        outcomes(&report),
        vec![("failed".into(), "darktrace_tls".into()); 2]
    );
}

#[tokio::test]
async fn with_verification_off_any_certificate_is_accepted() {
    let (sim, _) = tls_simulator().await;
    let mut config = config_for(&sim);
    config.darktrace.verify_tls = false;
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(outcomes(&report), exported(2));
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_darktrace_tls_naming_the_host_setting() {
    let sim = simulator().await;
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    config.darktrace.base_url = format!("https://{}", sim.addr()).parse().unwrap();
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(
        outcomes(&report),
        vec![("failed".into(), "darktrace_tls".into()); 2]
    );
    let detail = report["results"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("DARKTRACE_HOST"), "{detail}");
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_stops_the_service_naming_the_setting() {
    let dir = std::env::temp_dir().join(format!("dtx-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let output = binary()
        .env("DARKTRACE_HOST", "https://127.0.0.1:1")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("ALLOW_UNAUTHENTICATED", "true")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DARKTRACE_CA_FILE", &path)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("DARKTRACE_CA_FILE"), "{stderr}");
}

#[tokio::test]
async fn check_against_simulate_with_tls_names_the_fix_then_passes_with_the_ca_file() {
    let dir = std::env::temp_dir().join(format!("dtx-tls-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("darktrace-sim.pem").to_string_lossy().into_owned();
    let (_sim, url) = simulate(&["--tls-cert-out", &cert]).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("tls: "), "{line}");
    assert!(line.contains("DARKTRACE_CA_FILE"), "{line}");
    assert_eq!(line.lines().count(), 1);

    let (code, line) = run_check(&url, &[("DARKTRACE_CA_FILE", &cert)]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok: "), "{line}");

    let (code, line) = run_check(&url, &[("ENABLE_SSL_VERIFICATION", "false")]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("NOT verified"), "{line}");
}

#[tokio::test]
async fn turning_verification_off_is_warned_about_at_start() {
    let log = start_log(&[("ENABLE_SSL_VERIFICATION", "false")]).await;
    let warned = log
        .lines()
        .any(|line| line.contains("WARN") && line.contains("ENABLE_SSL_VERIFICATION=false"));
    assert!(warned, "a warning names ENABLE_SSL_VERIFICATION=false");
}
