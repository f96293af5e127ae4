//! `--demo`: a Darktrace simulator in the process, with generated tokens, so the service can
//! be tried with nothing else at hand.

use rand::distr::{Alphanumeric, SampleString};
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::simulator::{Faults, Simulator, TokenPair};

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
