//! Speaking Darktrace's `/intelfeed` API: signing (pure), the wire format, retry rules and
//! the client that puts them together.

pub mod client;
pub mod limit;
pub mod proxy;
pub mod retry;
pub mod sign;
pub mod tls;
pub mod wire;

pub use client::{CallTally, DarktraceClient};
pub use retry::CallError;
