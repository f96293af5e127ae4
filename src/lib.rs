//! darktrace-export: exports ThreatQ FQDN and IP indicators to Darktrace's Watched Domains.
//!
//! The flow of one request: `http` (auth, limits, decode) → `threatq` (lenient input) →
//! `indicator` (parse + normalise) → `screen` + `protect` (what goes, and why not) →
//! `darktrace` (sign, send, retry) → `export` (reconcile) → `outcome` (the answer).
//! `removal` and `sync` reuse the same screening and client to take entries out.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod darktrace;
pub mod deadline;
pub mod http;
pub mod indicator;
pub mod offload;
pub mod outcome;
pub mod pipeline;
pub mod pull;
pub mod screen;
pub mod simulator;
pub mod source_lock;
pub mod telemetry;
pub mod threatq;
pub mod threatq_sim;
