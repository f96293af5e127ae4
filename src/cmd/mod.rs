//! The subcommands besides serving: `check` (one signed call, one line), `healthcheck` (the
//! container's probe) and `--demo` (the service beside an in-process simulator).

pub mod check;
pub mod demo;
pub mod healthcheck;
pub mod pull;
