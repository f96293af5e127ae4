//! The subcommands besides serving: `check` (two signed reads, one line), `healthcheck` (the
//! container's probe) and `--demo` (the service beside an in-process simulator).

pub mod check;
pub mod demo;
pub mod healthcheck;
pub mod pull;
