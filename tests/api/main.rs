//! The black-box tests, in one binary: the app on loopback against the simulator, and the
//! real binary as a child process. One binary links once; each module is one area of the
//! contract, and `helpers` holds what they share.
//!
//! Process-wide state is shared by every module here: the metrics recorder (checks compare
//! scrapes before and after) and the tracing subscriber `observability` installs (its
//! checks pick their own lines by request id).

mod helpers;
mod spec;

mod auth;
mod capacity;
mod check;
mod cli;
mod deploy;
mod export;
mod failures;
mod hostile_input;
mod hostile_load;
mod inbound;
mod observability;
mod openapi;
mod options;
mod proxy;
mod pull;
mod remove_sync;
mod screening;
mod secrets;
mod shutdown;
mod tls;
