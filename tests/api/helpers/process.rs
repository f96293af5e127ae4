//! The real binary as a child process: a clean environment, port 0, stderr captured.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_darktrace-export");

/// The binary with a clean environment, so the host's settings cannot leak in.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// A running service: its address and everything it wrote to stderr so far.
pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Reads stderr into `log` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Service {
    /// Starts the service with `env` (plus `LISTEN_ADDR=127.0.0.1:0` and JSON logs) and
    /// waits for its "listening" line.
    pub fn start(env: &[(&str, &str)]) -> Service {
        let mut child = command()
            .envs(env.iter().copied())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = addr_tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the service never said where it listens: {}",
                    log.lock().unwrap()
                );
            }
        };
        Service {
            child,
            addr,
            log,
            reader: Some(reader),
            exited: None,
        }
    }

    /// [`Service::start`] against Darktrace at `host` with the test token pair and
    /// `API_TOKENS=`[`API_TOKEN`](super::API_TOKEN), then `extra` (which may override them).
    pub fn against(host: &str, extra: &[(&str, &str)]) -> Service {
        let mut env = vec![
            ("DARKTRACE_HOST", host),
            ("DARKTRACE_PUBLIC_TOKEN", super::PUBLIC),
            ("DARKTRACE_PRIVATE_TOKEN", super::PRIVATE),
            ("API_TOKENS", super::API_TOKEN),
        ];
        env.extend_from_slice(extra);
        Service::start(&env)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends a signal (`TERM`, `INT`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (at most a minute) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                // Every line is in the log once the reader has seen stderr close.
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the log reader ends");
                }
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("the service did not exit: {}", self.log());
    }

    /// Everything written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the service's JSON "listening" line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")? != "listening" {
        return None;
    }
    value.get("addr")?.as_str()?.parse().ok()
}
