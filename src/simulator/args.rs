//! `darktrace-export simulate`: the simulator alone, its faults set from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use super::{Faults, SelfSigned, Simulator, TokenPair};

/// `darktrace-export simulate`: the simulator alone.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// The public token clients must sign with.
    #[arg(long)]
    pub public_token: String,
    /// The private token (HMAC key).
    #[arg(long)]
    pub private_token: String,
    /// Milliseconds of latency added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Capacity: answer 503 with Retry-After (--retry-after, else 1 s) to a call arriving
    /// while N are in progress. 0: no cap.
    #[arg(long, default_value_t = 0)]
    pub max_in_flight: usize,
    /// Answer the first N calls with --fail-status.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u32,
    /// Status of the injected failures.
    #[arg(long, default_value_t = 503)]
    pub fail_status: u16,
    /// Retry-After seconds sent with the injected failures.
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Leave addedList/updatedList out of add answers (older appliances).
    #[arg(long)]
    pub no_lists: bool,
    /// Refuse the compact date form.
    #[arg(long)]
    pub refuse_compact_date: bool,
    /// Never answer any call (the client's timeout is what ends it).
    #[arg(long)]
    pub hang: bool,
    /// Apply the first N changes, then cut the connection instead of answering.
    #[arg(long, default_value_t = 0)]
    pub reset_after_change: u32,
    /// Seconds the appliance's clock is off by (negative: behind); past ±1800 every
    /// signed call gets API DATE ERROR.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub clock_offset_secs: i64,
    /// Serve HTTPS with a fresh self-signed certificate, written in PEM to this file.
    #[arg(long)]
    pub tls_cert_out: Option<PathBuf>,
    /// A second token pair, without the "Edit Domains" permission: it may read, but a
    /// change gets 302 to /403.
    #[arg(long, requires = "readonly_private_token")]
    pub readonly_public_token: Option<String>,
    /// The private token of the read-only pair.
    #[arg(long, requires = "readonly_public_token")]
    pub readonly_private_token: Option<String>,
    /// With --tls-cert-out: make the certificate CA:TRUE, as `openssl req -x509` does.
    #[arg(long, requires = "tls_cert_out")]
    pub tls_ca_flagged: bool,
    /// Check a GET's signature over its percent-decoded query, as some signers compute
    /// it: a source name holding a space or `&` then fails only on the source's read.
    #[arg(long)]
    pub sign_decoded_query: bool,
}

/// Runs `simulate` until interrupted.
pub async fn run(args: SimulateArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let faults = Faults {
        latency: std::time::Duration::from_millis(args.latency_ms),
        fail_next: args.fail_first,
        fail_status: args.fail_status,
        retry_after_secs: args.retry_after,
        no_lists: args.no_lists,
        refuse_compact_date: args.refuse_compact_date,
        hang: args.hang,
        reset_after_change: args.reset_after_change,
        clock_offset_secs: args.clock_offset_secs,
        sign_decoded_query: args.sign_decoded_query,
        max_in_flight: args.max_in_flight,
        ..Faults::default()
    };
    let mut tokens = vec![TokenPair {
        public: args.public_token,
        private: args.private_token,
        can_edit: true,
    }];
    if let (Some(public), Some(private)) = (args.readonly_public_token, args.readonly_private_token)
    {
        tokens.push(TokenPair {
            public,
            private,
            can_edit: false,
        });
    }
    let sim = match &args.tls_cert_out {
        Some(path) => {
            let extra = vec![args.listen.ip().to_string()];
            let identity = if args.tls_ca_flagged {
                SelfSigned::generate_ca_flagged(&extra)
            } else {
                SelfSigned::generate(&extra)
            }
            .map_err(std::io::Error::other)?;
            std::fs::write(path, &identity.cert_pem).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?;
            Simulator::start_tls(listener, &identity, tokens, faults)?
        }
        None => Simulator::start(listener, tokens, faults)?,
    };
    // Nothing can read the records of a standalone simulator; keeping them would only grow it.
    sim.record_calls(false);
    tracing::info!(addr = %sim.addr(), "Darktrace simulator listening");
    println!("Darktrace simulator listening on {}", sim.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
