//! ThreatQ input: the lenient object model of an indicator ([`item`]), the three forms of a
//! request body ([`batch`]), the per-request overrides a body may carry ([`overrides`]), and
//! the one way a body is read ([`read`]), on one thread or two ([`handoff`]).

pub mod batch;
pub mod handoff;
pub mod item;
pub mod overrides;
pub mod read;
pub mod score;
pub mod stream;

pub use batch::{Batch, BatchRead, BatchSeed, ItemSink};
pub use item::{Indicator, Item, ItemId, KeyReading, Named, RawValue, Text};
pub use overrides::{BodyOverrides, OVERRIDE_KEYS, StrayKey, near_override};
pub use read::{HANDOFF_FROM_BYTES, ReadError, parse_batch, read_batch};
pub use score::Score;
pub use stream::read_streamed;
