//! `--demo`: a Darktrace simulator in the process, with generated tokens, so the service can
//! be tried with nothing else at hand; and a ThreatQ simulator serving the example
//! collection, so a pull can be tried too.

use rand::distr::{Alphanumeric, SampleString};
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::simulator::{Faults, Simulator, TokenPair};
use crate::threatq_sim::{ThreatqSim, ThreatqSimConfig};

/// Starts the simulator and points the settings at it.
pub async fn start_simulator(args: &mut ServeArgs) -> std::io::Result<Simulator> {
    let public = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let private = Alphanumeric.sample_string(&mut rand::rng(), 40);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let sim = Simulator::start(
        listener,
        vec![TokenPair {
            public: public.clone(),
            private: private.clone(),
            can_edit: true,
        }],
        Faults::default(),
    )?;
    args.darktrace_host = Some(sim.url());
    args.darktrace_public_token = Some(SecretString::from(public));
    args.darktrace_private_token = Some(SecretString::from(private));
    args.darktrace_public_token_file = None;
    args.darktrace_private_token_file = None;
    // The simulator is on loopback in this process: a corporate proxy cannot reach it.
    args.disable_proxies = "true".into();
    Ok(sim)
}

/// The example collection, relative to the repository (where the demo runs).
pub const EXAMPLE_COLLECTION: &str = "examples/threatq-collection.json";

/// The hash the demo's ThreatQ serves the example collection under.
pub const DEMO_COLLECTION: &str = "example-collection";

/// Starts a ThreatQ simulator serving the example collection, with generated credentials,
/// and points the pull settings at it (unless a ThreatQ is configured already).
pub async fn start_threatq(args: &mut ServeArgs) -> Result<Option<ThreatqSim>, String> {
    if args.threatq_url.is_some() {
        return Ok(None);
    }
    // Read where the curl command reads it: the demo runs from the repository.
    let items = crate::threatq_sim::load_collection(std::path::Path::new(EXAMPLE_COLLECTION))?;
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let mut config = ThreatqSimConfig::new("demo-client", "demo@example.org", &password);
    config.collections.insert(DEMO_COLLECTION.into(), items);
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| e.to_string())?;
    let sim = ThreatqSim::start(listener, config).map_err(|e| e.to_string())?;
    args.threatq_url = Some(sim.url());
    args.threatq_client_id = Some("demo-client".into());
    args.threatq_email = Some("demo@example.org".into());
    args.threatq_password = Some(SecretString::from(password));
    args.threatq_password_file = None;
    args.threatq_collection = Some(DEMO_COLLECTION.into());
    Ok(Some(sim))
}

/// The ready-to-paste command that pulls the example collection from the demo's ThreatQ.
pub fn pull_hint(listen: std::net::SocketAddr, with_token: bool) -> String {
    let auth = if with_token {
        " -H 'Authorization: Bearer <one of API_TOKENS>'"
    } else {
        ""
    };
    format!("curl -s -X POST http://{listen}/pull{auth}")
}

/// The ready-to-paste command that exports the example collection.
pub fn curl_hint(listen: std::net::SocketAddr, with_token: bool) -> String {
    let auth = if with_token {
        " -H 'Authorization: Bearer <one of API_TOKENS>'"
    } else {
        ""
    };
    format!(
        "curl -s -X POST http://{listen}/export -H 'Content-Type: application/json'{auth} --data-binary @examples/threatq-collection.json"
    )
}
