//! TLS to Darktrace: verified by default, a private CA trusted with DARKTRACE_CA_FILE,
//! verification off only when asked (and warned about at start).

use crate::helpers::*;

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
    config.darktrace.trust.ca_pem = Some(identity.cert_pem.clone().into_bytes());
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
    config.darktrace.trust.ca_pem = Some(other.cert_pem.into_bytes());
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
    config.darktrace.trust.verify = false;
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

// Exact pins: the appliance's own certificate, whatever its CA flag, and fingerprints.

use darktrace_export::darktrace::tls::{Fingerprint, ca_certificates};
use darktrace_export::simulator::{Authority, Faults, SelfSigned, Simulator, TokenPair};

/// A simulator presenting `identity` over HTTPS.
async fn presenting(identity: &SelfSigned) -> Simulator {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    Simulator::start_tls(
        listener,
        identity,
        vec![TokenPair {
            public: PUBLIC.into(),
            private: PRIVATE.into(),
            can_edit: true,
        }],
        Faults::default(),
    )
    .unwrap()
}

fn fingerprint_of(pem: &str) -> Fingerprint {
    Fingerprint::of(ca_certificates(pem.as_bytes(), "DARKTRACE_CA_FILE").unwrap()[0].as_ref())
}

/// Exports two indicators through `sim` with `trust` applied to the configuration;
/// returns the status and each item's detail.
async fn export_with(
    sim: Simulator,
    trust: impl FnOnce(&mut darktrace_export::config::Config),
) -> (u16, Vec<String>) {
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    trust(&mut config);
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    let details = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                r["outcome"] == "exported",
                status == 200,
                "every item follows the status: {report:#}"
            );
            r["detail"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    (status, details)
}

#[tokio::test]
async fn a_ca_flagged_self_signed_certificate_is_refused_alone_and_accepted_as_an_exact_copy() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let (status, details) = export_with(presenting(&identity).await, |_| {}).await;
    assert_eq!(status, 502);
    assert!(details[0].contains("CaUsedAsEndEntity"), "{details:?}");
    assert!(details[0].contains("DARKTRACE_CERT_SHA256"), "{details:?}");

    let pem = identity.cert_pem.clone().into_bytes();
    let (status, details) = export_with(presenting(&identity).await, |c| {
        c.darktrace.trust.ca_pem = Some(pem)
    })
    .await;
    assert_eq!(status, 200, "{details:?}");
}

#[tokio::test]
async fn an_explicit_ca_false_self_signed_certificate_in_the_ca_file_works() {
    let identity = SelfSigned::generate_not_ca(&[]).unwrap();
    let pem = identity.cert_pem.clone().into_bytes();
    let (status, details) = export_with(presenting(&identity).await, |c| {
        c.darktrace.trust.ca_pem = Some(pem)
    })
    .await;
    assert_eq!(status, 200, "{details:?}");
}

#[tokio::test]
async fn a_ca_file_with_another_ca_flagged_certificate_is_refused() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let other = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let (status, details) = export_with(presenting(&identity).await, |c| {
        c.darktrace.trust.ca_pem = Some(other.cert_pem.into_bytes())
    })
    .await;
    assert_eq!(status, 502);
    assert!(!details[0].contains("DARKTRACE_CA_FILE"), "{details:?}");
}

#[tokio::test]
async fn the_right_pin_is_accepted_without_chain_or_name_checks() {
    // CA:TRUE, and served on 127.0.0.1 while naming only another host.
    let authority = Authority::generate().unwrap();
    for identity in [
        SelfSigned::generate_ca_flagged(&[]).unwrap(),
        authority.issue(&["dt.other.example"]).unwrap(),
    ] {
        let pin = fingerprint_of(&identity.cert_pem);
        let (status, details) = export_with(presenting(&identity).await, |c| {
            c.darktrace.trust.cert_sha256 = vec![pin]
        })
        .await;
        assert_eq!(status, 200, "{details:?}");
    }
}

#[tokio::test]
async fn a_wrong_pin_is_refused_naming_the_setting() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let wrong = Fingerprint::of(b"some other certificate");
    let (status, details) = export_with(presenting(&identity).await, |c| {
        c.darktrace.trust.cert_sha256 = vec![wrong]
    })
    .await;
    assert_eq!(status, 502);
    assert!(details[0].contains("DARKTRACE_CERT_SHA256"), "{details:?}");
}

#[tokio::test]
async fn with_pins_set_a_certificate_that_webpki_trusts_but_no_pin_matches_is_refused() {
    let authority = Authority::generate().unwrap();
    let leaf = authority.issue(&["127.0.0.1"]).unwrap();
    let ca = authority.cert_pem.clone().into_bytes();
    let (status, _) = export_with(presenting(&leaf).await, |c| {
        c.darktrace.trust.ca_pem = Some(ca.clone())
    })
    .await;
    assert_eq!(status, 200, "the chain alone is trusted");
    let (status, details) = export_with(presenting(&leaf).await, |c| {
        c.darktrace.trust.ca_pem = Some(ca);
        c.darktrace.trust.cert_sha256 = vec![Fingerprint::of(b"another")];
    })
    .await;
    assert_eq!(status, 502);
    assert!(details[0].contains("DARKTRACE_CERT_SHA256"), "{details:?}");
}

#[tokio::test]
async fn a_pinned_certificate_from_a_server_without_its_key_is_refused() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let pin = fingerprint_of(&identity.cert_pem);
    let impostor = identity.impostor().unwrap();
    let (status, _) = export_with(presenting(&impostor).await, |c| {
        c.darktrace.trust.cert_sha256 = vec![pin]
    })
    .await;
    assert_eq!(status, 502, "the handshake signature is verified");
    let (status, _) = export_with(presenting(&identity).await, |c| {
        c.darktrace.trust.cert_sha256 = vec![pin]
    })
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_private_ca_chain_checks_the_name() {
    let authority = Authority::generate().unwrap();
    let ca = authority.cert_pem.clone().into_bytes();
    let right = authority.issue(&["127.0.0.1"]).unwrap();
    let (status, details) = export_with(presenting(&right).await, |c| {
        c.darktrace.trust.ca_pem = Some(ca.clone())
    })
    .await;
    assert_eq!(status, 200, "{details:?}");

    let wrong = authority.issue(&["dt.other.example"]).unwrap();
    let (status, details) = export_with(presenting(&wrong).await, |c| {
        c.darktrace.trust.ca_pem = Some(ca)
    })
    .await;
    assert_eq!(status, 502);
    assert!(
        details[0].contains("dt.other.example") && details[0].contains("DARKTRACE_HOST"),
        "{details:?}"
    );
}

// `check`'s account of a refused certificate.

/// `check::probe` against `sim` with `trust` applied: the line it prints.
async fn check_line(
    sim: &Simulator,
    trust: impl FnOnce(&mut darktrace_export::config::DarktraceConfig),
) -> Result<String, String> {
    let mut config = config_for(sim).darktrace;
    trust(&mut config);
    let client = darktrace_export::darktrace::DarktraceClient::new(&config)
        .unwrap()
        .with_max_retries(0);
    darktrace_export::cmd::check::probe(&client, &config, "ThreatQ").await
}

#[tokio::test]
async fn check_prints_the_fingerprint_and_names_and_advises_pinning_a_ca_flagged_certificate() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let fp = fingerprint_of(&identity.cert_pem);
    let sim = presenting(&identity).await;
    let line = check_line(&sim, |_| {}).await.unwrap_err();
    assert!(line.starts_with("tls: "), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(&fp.to_string()), "{line}");
    assert!(
        line.contains("localhost") && line.contains("127.0.0.1"),
        "{line}"
    );
    assert!(line.contains("CA:TRUE"), "{line}");
    assert!(line.contains("DARKTRACE_CA_FILE"), "{line}");
    assert!(
        line.contains(&format!("DARKTRACE_CERT_SHA256={fp}")),
        "{line}"
    );
}

#[tokio::test]
async fn check_never_advises_the_ca_file_once_it_is_set_and_refused() {
    let identity = SelfSigned::generate_ca_flagged(&[]).unwrap();
    let fp = fingerprint_of(&identity.cert_pem);
    let sim = presenting(&identity).await;
    let other = SelfSigned::generate(&[]).unwrap().cert_pem.into_bytes();
    let line = check_line(&sim, |c| c.trust.ca_pem = Some(other))
        .await
        .unwrap_err();
    assert!(line.starts_with("tls: "), "{line}");
    assert!(!line.contains("DARKTRACE_CA_FILE"), "{line}");
    assert!(
        line.contains(&format!("DARKTRACE_CERT_SHA256={fp}")),
        "{line}"
    );
}

#[tokio::test]
async fn check_lists_the_names_a_certificate_holds_when_the_host_is_not_one() {
    let authority = Authority::generate().unwrap();
    let leaf = authority.issue(&["dt.other.example", "10.9.8.7"]).unwrap();
    let sim = presenting(&leaf).await;
    let ca = authority.cert_pem.clone().into_bytes();
    let line = check_line(&sim, |c| c.trust.ca_pem = Some(ca))
        .await
        .unwrap_err();
    assert!(line.starts_with("tls: "), "{line}");
    assert!(
        line.contains("it holds dt.other.example, 10.9.8.7: set DARKTRACE_HOST to one of them"),
        "{line}"
    );
    assert!(
        line.contains(&fingerprint_of(&leaf.cert_pem).to_string()),
        "{line}"
    );
}

#[tokio::test]
async fn check_says_an_expired_certificate_has_expired() {
    let authority = Authority::generate().unwrap();
    let leaf = authority.issue_expired(&["127.0.0.1"]).unwrap();
    let sim = presenting(&leaf).await;
    let ca = authority.cert_pem.clone().into_bytes();
    let line = check_line(&sim, |c| c.trust.ca_pem = Some(ca))
        .await
        .unwrap_err();
    assert!(line.contains("expired"), "{line}");
    assert!(line.contains("2021-01-01"), "{line}");
    assert!(line.contains("clock"), "{line}");
}

#[tokio::test]
async fn check_says_which_pin_the_certificate_does_not_match() {
    let identity = SelfSigned::generate(&[]).unwrap();
    let fp = fingerprint_of(&identity.cert_pem);
    let sim = presenting(&identity).await;
    let line = check_line(&sim, |c| {
        c.trust.cert_sha256 = vec![Fingerprint::of(b"old")]
    })
    .await
    .unwrap_err();
    assert!(line.contains("matches no DARKTRACE_CERT_SHA256"), "{line}");
    assert!(line.contains(&fp.to_string()), "{line}");
}

#[tokio::test]
async fn check_against_a_ca_flagged_simulate_passes_with_the_file_or_the_pin() {
    let dir = std::env::temp_dir().join(format!("dtx-tls-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("ca-flagged.pem").to_string_lossy().into_owned();
    let (_sim, url) = simulate(&["--tls-cert-out", &cert, "--tls-ca-flagged"]).await;
    let fp = fingerprint_of(&std::fs::read_to_string(&cert).unwrap());

    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains(&format!("DARKTRACE_CERT_SHA256={fp}")),
        "{line}"
    );

    let (code, line) = run_check(&url, &[("DARKTRACE_CA_FILE", &cert)]).await;
    assert_eq!(code, Some(0), "{line}");

    // The pin as openssl prints it.
    let openssl = format!("sha256 Fingerprint={fp}");
    let (code, line) = run_check(&url, &[("DARKTRACE_CERT_SHA256", &openssl)]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok: ") && line.contains("TLS"), "{line}");
}

/// `check` with `env`: exit code and stderr.
async fn check_stderr(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = binary()
        .arg("check")
        .env("DARKTRACE_HOST", "https://127.0.0.1:1")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn check_exits_2_on_a_bad_ca_file_or_fingerprint_naming_the_setting() {
    let dir = std::env::temp_dir().join(format!("dtx-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // PEM armour around bytes that are not a certificate: the PEM parses, the DER does not.
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    for path in [&garbage, &missing] {
        let (code, stderr) = check_stderr(&[("DARKTRACE_CA_FILE", path.to_str().unwrap())]).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.starts_with("DARKTRACE_CA_FILE: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let (code, stderr) = check_stderr(&[("DARKTRACE_CERT_SHA256", "AB:CD:EF")]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("DARKTRACE_CERT_SHA256: "), "{stderr}");
}
