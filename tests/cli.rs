//! The real binary: configuration errors, the demo, the health check.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_darktrace-export");

/// The binary with a clean environment, so the host's settings cannot leak in.
fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

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

#[test]
fn demo_serves_and_prints_a_curl_command_and_healthcheck_sees_it() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = command()
        .args(["--demo", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut curl = None;
    for _ in 0..10 {
        match lines.next() {
            Some(Ok(line)) if line.trim_start().starts_with("curl ") => {
                curl = Some(line);
                break;
            }
            Some(Ok(_)) => continue,
            _ => break,
        }
    }
    let curl = curl.expect("demo prints a curl command");
    assert!(curl.contains("examples/threatq-collection.json"), "{curl}");
    assert!(curl.contains(&format!("127.0.0.1:{port}/export")), "{curl}");

    let mut healthy = false;
    for _ in 0..50 {
        // No --url: the port comes from LISTEN_ADDR, as in the container.
        let status = command()
            .arg("healthcheck")
            .env("LISTEN_ADDR", format!("0.0.0.0:{port}"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(healthy, "healthcheck reaches the demo");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let status = command()
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}
