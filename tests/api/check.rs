//! `darktrace-export check`: one signed call, one line saying what is right or what to fix,
//! exit 0 or 1. Run as the real binary against `simulate`, also a child process.

use crate::helpers::*;

fn one_line(line: &str) {
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[tokio::test]
async fn a_working_setup_is_one_ok_line_and_exit_0() {
    let (_sim, url) = simulate(&[]).await;
    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok: "), "{line}");
    one_line(&line);
}

#[tokio::test]
async fn a_wrong_private_token_is_reported_as_the_tokens() {
    let (_sim, url) = simulate(&[]).await;
    let (code, line) = run_check(&url, &[("DARKTRACE_PRIVATE_TOKEN", "not-the-key")]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("tokens: "), "{line}");
    assert!(line.contains("DARKTRACE_PRIVATE_TOKEN"), "{line}");
    assert!(
        !line.contains("not-the-key"),
        "a secret is never echoed: {line}"
    );
    one_line(&line);
}

#[tokio::test]
async fn an_appliance_clock_an_hour_ahead_is_reported_as_the_clock() {
    let (_sim, url) = simulate(&["--clock-offset-secs", "3600"]).await;
    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("clock: "), "{line}");
    assert!(line.contains("30 minutes"), "{line}");
    one_line(&line);
}

#[tokio::test]
async fn nothing_listening_is_reported_as_the_host() {
    let closed = ClosedPort::new();
    let url = closed.url();
    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with(&format!("host: {url}")), "{line}");
    assert!(line.contains("DARKTRACE_HOST"), "{line}");
    one_line(&line);
}

#[tokio::test]
async fn a_hanging_appliance_is_reported_as_the_host_within_one_timeout() {
    let (_sim, url) = simulate(&["--hang"]).await;
    let (code, line) = run_check(&url, &[("DARKTRACE_TIMEOUT_SECS", "1")]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("host: "), "{line}");
    assert!(line.contains("DARKTRACE_TIMEOUT_SECS"), "{line}");
}

#[tokio::test]
async fn a_read_only_token_passes_and_the_line_says_permission_shows_on_export() {
    let (_sim, url) = simulate(&[
        "--readonly-public-token",
        "ro-public",
        "--readonly-private-token",
        "ro-private",
    ])
    .await;
    let (code, line) = run_check(
        &url,
        &[
            ("DARKTRACE_PUBLIC_TOKEN", "ro-public"),
            ("DARKTRACE_PRIVATE_TOKEN", "ro-private"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert!(
        line.contains("Edit Domains") && line.contains("darktrace_permission"),
        "{line}"
    );
}

#[tokio::test]
async fn the_simulators_read_only_token_is_refused_a_change_with_a_redirect_to_403() {
    let (_sim, url) = simulate(&[
        "--readonly-public-token",
        "ro-public",
        "--readonly-private-token",
        "ro-private",
    ])
    .await;
    let mut config = darktrace_export::config::DarktraceConfig::new(
        url.parse().unwrap(),
        "ro-public",
        "ro-private",
    );
    config.max_retries = 0;
    let client = darktrace_export::darktrace::DarktraceClient::new(&config).unwrap();
    let entry = checked("a.example");
    let call = darktrace_export::darktrace::wire::AddCall::plain(vec![&entry], "ThreatQ");
    let error = client
        .add(&call, &darktrace_export::darktrace::CallTally::default())
        .await
        .unwrap_err();
    assert_eq!(error, darktrace_export::darktrace::CallError::Permission);
}

#[tokio::test]
async fn check_needs_only_the_darktrace_settings() {
    let (_sim, url) = simulate(&[]).await;
    let output = binary()
        .arg("check")
        .env("DARKTRACE_HOST", &url)
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

#[tokio::test]
async fn over_plain_http_the_ok_line_says_so_and_claims_no_tls() {
    let (_sim, url) = simulate(&[]).await;
    assert!(url.starts_with("http://"), "{url}");
    let (code, line) = run_check(&url, &[]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("plain HTTP"), "{line}");
    assert!(!line.contains("TLS"), "{line}");
}

#[tokio::test]
async fn check_reads_the_source_and_names_it_when_only_that_read_is_refused() {
    // This appliance signs the decoded query: `source=Threat Q` instead of what was sent.
    let (_sim, url) = simulate(&["--sign-decoded-query"]).await;
    let (code, line) = run_check(&url, &[("SOURCE_NAME", "Threat Q")]).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("source: "), "{line}");
    assert!(line.contains("SOURCE_NAME 'Threat Q'"), "{line}");
    one_line(&line);

    let (code, line) = run_check(&url, &[("SOURCE_NAME", "ThreatQ-feed")]).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("'ThreatQ-feed' holds 0 entries"), "{line}");
}
