//! `darktrace-export simulate-threatq`: the ThreatQ simulator alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{ThreatqSim, ThreatqSimConfig};
use crate::simulator::tls::SelfSigned;

/// The ThreatQ simulator's settings.
#[derive(Debug, Clone, Args)]
pub struct SimulateThreatqArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// The API client id to accept.
    #[arg(long)]
    pub client_id: String,
    /// The user's e-mail to accept (password grant).
    #[arg(long)]
    pub email: String,
    /// The user's password to accept (password grant).
    #[arg(long)]
    pub password: String,
    /// The OAuth client secret to accept (client credentials grant); none = that grant refused.
    #[arg(long)]
    pub client_secret: Option<String>,
    /// A collection to serve: HASH=FILE, the file a JSON array of indicator objects or
    /// `{"data": [...]}`. May be given more than once.
    #[arg(long, required = true)]
    pub collection: Vec<String>,
    /// Seconds a token is accepted.
    #[arg(long, default_value = "3600")]
    pub token_ttl_secs: u64,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value = "0")]
    pub latency_ms: u64,
    /// The first N requests fail with --fail-status.
    #[arg(long, default_value = "0")]
    pub fail_first: usize,
    /// The status of the failing requests.
    #[arg(long, default_value = "503")]
    pub fail_status: u16,
    /// Serve HTTPS with a fresh self-signed certificate, written in PEM to this file (for
    /// THREATQ_CA_FILE, or its fingerprint for THREATQ_CERT_SHA256).
    #[arg(long)]
    pub tls_cert_out: Option<PathBuf>,
}

/// Reads a collection file: a JSON array of indicator objects, or `{"data": [...]}`.
pub fn load_collection(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Object(mut map)) => match map.remove("data") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(format!(
                "{}: an object without a \"data\" list",
                path.display()
            )),
        },
        Ok(_) => Err(format!("{}: not a list of indicators", path.display())),
        Err(e) => Err(format!("{}: not JSON ({e})", path.display())),
    }
}

/// Runs the simulator until the process is stopped.
pub async fn run(args: SimulateThreatqArgs) -> Result<(), String> {
    let mut config = ThreatqSimConfig::new(&args.client_id, &args.email, &args.password);
    config.client_secret = args.client_secret;
    config.token_ttl = Duration::from_secs(args.token_ttl_secs);
    config.latency = Duration::from_millis(args.latency_ms);
    config.fail_first = args.fail_first;
    config.fail_status = args.fail_status;
    for spec in &args.collection {
        let (hash, file) = spec
            .split_once('=')
            .ok_or_else(|| format!("--collection {spec}: give HASH=FILE"))?;
        config
            .collections
            .insert(hash.to_owned(), load_collection(Path::new(file))?);
    }
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let sim = match &args.tls_cert_out {
        Some(path) => {
            let host = args.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
            let identity = SelfSigned::generate(&[host.trim_matches(['[', ']']).to_owned()])
                .map_err(|e| format!("cannot make a certificate: {e}"))?;
            std::fs::write(path, &identity.cert_pem)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            ThreatqSim::start_tls(listener, &identity, config)
        }
        None => ThreatqSim::start(listener, config),
    }
    .map_err(|e| e.to_string())?;
    println!("ThreatQ simulator listening on {}", sim.url());
    std::future::pending::<()>().await;
    Ok(())
}
