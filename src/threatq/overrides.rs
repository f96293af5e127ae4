//! The per-request overrides a body may carry, and the keys it may not.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The per-request overrides, by the name they have in a body and in the query.
pub const OVERRIDE_KEYS: [&str; 6] = [
    "source",
    "days_to_expiration",
    "description",
    "autonomous_response",
    "dry_run",
    "force",
];

/// Per-request settings given in the body (forms 2 and 3). Checked like the settings by
/// the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BodyOverrides {
    pub source: Option<String>,
    /// Signed, so a negative number is refused as out of range (400), not as a shape (422).
    pub days_to_expiration: Option<i64>,
    pub description: Option<String>,
    pub autonomous_response: Option<bool>,
    pub dry_run: Option<bool>,
    pub force: Option<bool>,
}

/// The override a body key was probably meant to be: the same name but for case, `-` and
/// `_` (`Dry_Run`, `dry-run`, `dryrun`). `None` for an override's exact name.
pub fn near_override(key: &str) -> Option<&'static str> {
    let folded = fold_key(key);
    OVERRIDE_KEYS
        .into_iter()
        .find(|known| *known != key && fold_key(known) == folded)
}

fn fold_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A top-level body key the service will not take, refused before anything is sent: a
/// misspelt `dry_run` must never turn a dry run into a real export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayKey {
    /// A key of the `indicators` form that is not one of its own.
    Unknown(String),
    /// A key of a ThreatQ page that differs from an override only in case, `-` or `_`.
    NearOverride { key: String, meant: &'static str },
}

impl StrayKey {
    /// The sentence of the refusal.
    pub fn detail(&self) -> String {
        let known = OVERRIDE_KEYS.join(", ");
        match self {
            StrayKey::Unknown(key) => format!(
                "unknown key '{key}' in the body; an object with \"indicators\" takes only indicators, {known}"
            ),
            StrayKey::NearOverride { key, meant } => format!(
                "key '{key}' in the body is not an override; did you mean '{meant}'? The overrides are {known}"
            ),
        }
    }
}

/// An override's value, refused in words a person reads (`true or false`), not in
/// Rust's type names.
macro_rules! override_field {
    ($name:ident, $ty:ty, $expecting:literal, $($visit:ident($arg:ty) => $conv:expr),+) => {
        pub(super) struct $name(pub(super) Option<$ty>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                        Ok($name(None))
                    }
                    $(fn $visit<E: de::Error>(self, v: $arg) -> Result<Self::Value, E> {
                        #[allow(clippy::redundant_closure_call)]
                        ($conv)(v).map(|v| $name(Some(v)))
                    })+
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

override_field!(OverrideText, String, "a string",
    visit_str(&str) => |v: &str| Ok(v.to_owned()));
override_field!(OverrideFlag, bool, "true or false",
    visit_bool(bool) => Ok);
override_field!(OverrideDays, i64, "a whole number of days",
    visit_i64(i64) => Ok,
    visit_u64(u64) => |v: u64| Ok(i64::try_from(v).unwrap_or(i64::MAX)));
