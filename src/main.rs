//! Thin entry point: parse settings, start telemetry, run. Bad configuration is one line on
//! stderr and exit code 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use darktrace_export::app::{Application, shutdown_signal};
use darktrace_export::cli::{Cli, Command, ServeArgs};
use darktrace_export::cmd::{check, demo, pull};
use darktrace_export::config::{Config, LogFormat};
use darktrace_export::{simulator, telemetry};

/// jemalloc, which hands memory freed after a large export back to the system (its decay is
/// set in .cargo/config.toml); glibc's malloc kept it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for configuration errors.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let text = error.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Simulate(args)) => {
            telemetry::init(LogFormat::Text);
            match simulator::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("simulator: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Check(mut args)) => {
            if args.demo {
                return demo_refused("check");
            }
            // check serves nothing, so it needs no bearer token: a first run with only the
            // Darktrace settings must talk about Darktrace.
            args.allow_unauthenticated = "true".into();
            let config = match Config::from_args(&args) {
                Ok(config) => config,
                Err(error) => return bad_config(error),
            };
            let mut passed = match check::run(&config).await {
                Ok(line) => {
                    println!("{line}");
                    true
                }
                Err(check::Failure::Config(error)) => return bad_config(error),
                Err(check::Failure::Darktrace(line)) => {
                    println!("{line}");
                    false
                }
            };
            if let Some(threatq) = &config.threatq {
                for line in check::threatq(threatq).await {
                    passed &= line.is_ok();
                    println!("{}", line.unwrap_or_else(|failed| failed));
                }
            }
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Pull(mut args)) => {
            if args.serve.demo {
                return demo_refused("pull");
            }
            // A pull serves nothing, so it needs no bearer token.
            args.serve.allow_unauthenticated = "true".into();
            let config = match Config::from_args(&args.serve) {
                Ok(config) => config,
                Err(error) => return bad_config(error),
            };
            if config.threatq.is_none() {
                eprintln!("THREATQ_URL: not set; a pull needs ThreatQ's address");
                return ExitCode::from(BAD_CONFIG);
            }
            telemetry::init(config.log_format);
            warn_about_risky_settings(&config);
            darktrace_export::config::warn_about_unknown_settings();
            match pull::run(config, args.dry_run, args.force).await {
                Ok((ended, printed)) => {
                    println!("{printed}");
                    match ended {
                        pull::Ended::Clean => ExitCode::SUCCESS,
                        pull::Ended::Failed => ExitCode::FAILURE,
                    }
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::from(BAD_CONFIG)
                }
            }
        }
        Some(Command::SimulateThreatq(args)) => {
            telemetry::init(LogFormat::Text);
            match darktrace_export::threatq_sim::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("simulate-threatq: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Healthcheck { url, listen_addr }) => {
            healthcheck(url.as_deref(), listen_addr.as_deref()).await
        }
    }
}

/// `check` and `pull` talk to the Darktrace and ThreatQ the settings name: taking `--demo`
/// quietly would make a demo pull change the real appliance, so they refuse it.
fn demo_refused(command: &str) -> ExitCode {
    eprintln!(
        "--demo: `{command}` does not take it, it uses the configured Darktrace and ThreatQ; \
         run `darktrace-export --demo` and the pull command it prints"
    );
    ExitCode::from(BAD_CONFIG)
}

async fn serve(mut args: ServeArgs) -> ExitCode {
    let _simulator = if args.demo {
        match demo::start_simulator(&mut args).await {
            Ok(sim) => Some(sim),
            Err(error) => {
                eprintln!("--demo: cannot start the Darktrace simulator: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let _threatq = if args.demo {
        match demo::start_threatq(&mut args).await {
            Ok(sim) => sim,
            Err(error) => {
                eprintln!("--demo: cannot start the ThreatQ simulator: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => return bad_config(error),
    };
    telemetry::init(config.log_format);
    warn_about_risky_settings(&config);
    darktrace_export::config::warn_about_unknown_settings();
    if config.api_tokens.is_empty() {
        tracing::warn!(
            "no API_TOKENS: /export, /remove, /sync and /pull accept unauthenticated requests"
        );
    }
    // Before the port opens, so a signal sent once the service answers is always handled.
    let shutdown = shutdown_signal();
    let listener = match tokio::net::TcpListener::bind(config.listen_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "LISTEN_ADDR: cannot listen on {}: {error}",
                config.listen_addr
            );
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let with_token = !config.api_tokens.is_empty();
    let app = match Application::build(config, listener) {
        Ok(app) => app,
        Err(error) => return bad_config(error),
    };
    let addr = app.local_addr();
    tracing::info!(%addr, "listening");
    if args.demo {
        println!(
            "darktrace-export demo: listening on http://{addr} with a built-in Darktrace simulator."
        );
        println!("Export the example ThreatQ collection with:\n");
        println!("  {}\n", demo::curl_hint(addr, with_token));
        if let Some(threatq) = &_threatq {
            println!(
                "Or pull it from the built-in ThreatQ simulator ({}, collection {}):\n",
                threatq.url(),
                demo::DEMO_COLLECTION
            );
            println!("  {}\n", demo::pull_hint(addr, with_token));
        }
    }
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn warn_about_risky_settings(config: &Config) {
    let source = &config.defaults.source;
    if !source
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        tracing::warn!(
            source = %source,
            "SOURCE_NAME holds a character that is percent-encoded in a query (a space, &, ...): how an appliance signs such a query is not documented, so /sync and /remove may fail to read the source; `darktrace-export check` tells, or use letters, digits, -, _ and ."
        );
    }
    if config.darktrace.base_url.scheme() == "http" {
        tracing::warn!("DARKTRACE_HOST uses http://: calls to Darktrace are not encrypted");
    }
    if !config.darktrace.trust.verify {
        tracing::warn!("ENABLE_SSL_VERIFICATION=false: any certificate from Darktrace is accepted");
    } else if !config.darktrace.trust.cert_sha256.is_empty()
        && config.darktrace.trust.ca_pem.is_some()
    {
        tracing::warn!(
            "DARKTRACE_CERT_SHA256 is set: only certificates with those fingerprints are accepted, and DARKTRACE_CA_FILE is not used"
        );
    }
    match &config.darktrace.proxy {
        Some(route) => tracing::info!(proxy = %route, "Darktrace calls go through a proxy"),
        None if config.darktrace.disable_proxies => {
            tracing::info!("DISABLE_PROXIES=true: Darktrace calls go direct")
        }
        None => {}
    }
    if config.defaults.autonomous_response {
        tracing::warn!(
            "AUTONOMOUS_RESPONSE=true: entries are added with iagn, so Darktrace's Autonomous Response may act on them"
        );
    }
    if config.screen.protect_popular {
        let (domains, resolvers) = darktrace_export::screen::popular::popular().sizes();
        tracing::info!(
            domains,
            resolvers,
            "PROTECT_POPULAR=true: popular domains and public DNS resolvers are never exported"
        );
    } else {
        tracing::warn!(
            "PROTECT_POPULAR=false: very popular domains and public DNS resolvers may be exported"
        );
    }
    if let Some(threatq) = &config.threatq {
        if threatq.base_url.scheme() == "http" {
            tracing::warn!(
                "THREATQ_URL uses http://: ThreatQ credentials and indicators are not encrypted"
            );
        }
        if !threatq.trust.verify {
            tracing::warn!(
                "THREATQ_ENABLE_SSL_VERIFICATION=false: any certificate from ThreatQ is accepted"
            );
        }
    }
}

fn bad_config(error: darktrace_export::config::ConfigError) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(BAD_CONFIG)
}

async fn healthcheck(url: Option<&str>, listen_addr: Option<&str>) -> ExitCode {
    let probed = match darktrace_export::cmd::healthcheck::target(url, listen_addr) {
        Ok(url) => darktrace_export::cmd::healthcheck::probe(&url).await,
        Err(error) => Err(error),
    };
    match probed {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}
