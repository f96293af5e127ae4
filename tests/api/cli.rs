//! The real binary: configuration errors, the demo, the health check.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::helpers::ClosedPort;
use crate::helpers::process::command;

#[test]
fn bad_configuration_is_one_line_naming_the_setting_and_exit_code_2() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "DARKTRACE_HOST"),
        (
            &[("DARKTRACE_HOST", "dt.example")],
            "DARKTRACE_PUBLIC_TOKEN",
        ),
        (
            &[
                ("DARKTRACE_HOST", "dt.example"),
                ("DARKTRACE_PUBLIC_TOKEN", "p"),
                ("DARKTRACE_PRIVATE_TOKEN", "s"),
            ],
            "API_TOKENS",
        ),
        (
            &[
                ("DARKTRACE_HOST", "dt.example"),
                ("DARKTRACE_PUBLIC_TOKEN", "p"),
                ("DARKTRACE_PRIVATE_TOKEN", "s"),
                ("API_TOKENS", "t"),
                ("DAYS_TO_EXPIRATION", "soon"),
            ],
            "DAYS_TO_EXPIRATION",
        ),
    ];
    for (env, setting) in cases {
        let output = command().envs(env.iter().copied()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{setting}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(setting), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn a_private_token_never_appears_in_a_configuration_error() {
    let output = command()
        .envs([
            ("DARKTRACE_HOST", "dt.example"),
            ("DARKTRACE_PUBLIC_TOKEN", "p"),
            ("DARKTRACE_PRIVATE_TOKEN", "very-secret-private"),
            ("API_TOKENS", "t"),
            ("SOURCE_NAME", ""),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("SOURCE_NAME"), "{stderr}");
    assert!(!stderr.contains("very-secret-private"));
}

/// `check` and `pull` share the service's settings, `--demo` among them; they must refuse
/// it rather than run against the Darktrace and ThreatQ the environment names.
#[test]
fn check_and_pull_refuse_demo_instead_of_using_the_configured_appliance() {
    let darktrace = ClosedPort::new();
    for subcommand in ["check", "pull"] {
        let output = command()
            .args([subcommand, "--demo"])
            .envs([
                ("DARKTRACE_HOST", darktrace.url().as_str()),
                ("DARKTRACE_PUBLIC_TOKEN", "p"),
                ("DARKTRACE_PRIVATE_TOKEN", "s"),
                ("THREATQ_URL", "http://127.0.0.1:9"),
                ("THREATQ_CLIENT_ID", "c"),
                ("THREATQ_EMAIL", "u@example.org"),
                ("THREATQ_PASSWORD", "pw"),
                ("THREATQ_COLLECTION", "Feed"),
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{subcommand}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("--demo: `"), "{stderr}");
        assert!(stderr.contains(subcommand), "{stderr}");
        assert!(output.stdout.is_empty(), "{subcommand} did its work");
    }
}

#[test]
fn demo_serves_and_prints_a_curl_command_and_healthcheck_sees_it() {
    let mut child = command()
        .args(["--demo", "--listen-addr", "127.0.0.1:0"])
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut listening, mut curl) = (None, None);
    for _ in 0..10 {
        match lines.next() {
            Some(Ok(line)) if line.trim_start().starts_with("curl ") => {
                curl = Some(line);
                break;
            }
            Some(Ok(line)) if line.contains("listening on http://") => {
                let addr = line.split("http://").nth(1).unwrap_or_default();
                listening = addr.split_whitespace().next().map(str::to_owned);
            }
            Some(Ok(_)) => continue,
            _ => break,
        }
    }
    let curl = curl.expect("demo prints a curl command");
    let addr = listening.expect("demo prints where it listens");
    let port = addr.rsplit(':').next().unwrap().to_owned();
    assert_ne!(port, "0", "{addr}");
    assert!(curl.contains("examples/threatq-collection.json"), "{curl}");
    assert!(curl.contains(&format!("{addr}/export")), "{curl}");

    // Then the command that pulls the same collection from the demo's ThreatQ; it works.
    let pull = lines
        .by_ref()
        .take(5)
        .map_while(Result::ok)
        .find(|line| line.trim_start().starts_with("curl "))
        .expect("demo prints a pull command");
    assert!(pull.contains(&format!("{addr}/pull")), "{pull}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report: serde_json::Value = runtime.block_on(async {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = http
            .post(format!("http://{addr}/pull"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    assert!(
        report["summary"]["exported"].as_u64().unwrap() > 0,
        "{report}"
    );

    // It printed once it was listening: one health check, no retries.
    // No --url: the port comes from LISTEN_ADDR, as in the container.
    let healthy = command()
        .arg("healthcheck")
        .env("LISTEN_ADDR", format!("0.0.0.0:{port}"))
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(healthy, "healthcheck reaches the demo");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let closed = ClosedPort::new();
    let status = command()
        .args(["healthcheck", "--url", &format!("{}/healthz", closed.url())])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

/// A misspelt setting, a `RUST_LOG` that would hide every line and a source name whose
/// read may fail are named at start: otherwise the default stays in force, the warnings
/// are lost, or the first `/sync` fails, without a word.
#[tokio::test]
async fn a_misspelt_setting_an_unusable_rust_log_and_a_risky_source_are_named_at_start() {
    let sim = crate::helpers::simulator().await;
    let service = crate::helpers::process::Service::against(
        &sim.url(),
        &[
            ("DARKTRACE_CONCURENCY", "4"),
            ("THREATQ_TENANT", "x"),
            ("RUST_LOG", "verbose"),
            ("DARKTRACE_EXPORT_SERVICE_HOST", "10.0.0.1"),
            ("SOURCE_NAME", "Threat Q"),
        ],
    );
    // The warnings are written before the port opens, so they are in the log by now.
    let log = service.log();
    assert!(
        log.contains("DARKTRACE_CONCURENCY is not a setting and is ignored; did you mean DARKTRACE_CONCURRENCY?"),
        "{log}"
    );
    assert!(log.contains("THREATQ_TENANT is not a setting"), "{log}");
    assert!(log.contains("RUST_LOG: 'verbose'"), "{log}");
    assert!(!log.contains("DARKTRACE_EXPORT_SERVICE_HOST"), "{log}");
    assert!(log.contains("SOURCE_NAME holds a character"), "{log}");
    // The level fell back to info: the start's own info lines are there.
    assert!(log.contains("\"level\":\"INFO\""), "{log}");
}
