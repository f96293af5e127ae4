//! What a sync's refresh changes of an entry Darktrace already holds: its strength, expiry
//! and Autonomous Response setting, as `fulldetails=true` showed them before the sync, beside
//! what the add call sets. Said in the item's detail, so an operator sees a changed
//! `STRENGTH` or `AUTONOMOUS_RESPONSE` reach the appliance.
//!
//! Field types vary between appliance versions, so each is read leniently; a field that is
//! absent or in a form not read here is left out of the comparison, never guessed.

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use crate::darktrace::wire::EntryDetails;

/// The form of Darktrace's expiry the service sends, UTC.
const EXPIRY_FORM: &str = "%Y-%m-%dT%H:%M:%S";

/// What Darktrace showed of one entry. `None`: not shown, or not readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldState {
    pub strength: Option<u8>,
    /// `Some(None)`: shown without an expiry (the entry never expires).
    pub expiry: Option<Option<NaiveDateTime>>,
    pub iagn: Option<bool>,
}

/// What one add call sets on its entries.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'s> {
    /// `None`: left out of the call, so what the appliance keeps is not known.
    pub strength: Option<u8>,
    /// Darktrace's form (`YYYY-MM-DDTHH:MM:SS`); `None`: no expiry.
    pub expiry: Option<&'s str>,
    /// Left out of the call when false.
    pub iagn: bool,
}

impl HeldState {
    pub fn of(details: &EntryDetails) -> HeldState {
        HeldState {
            strength: details.strength.as_ref().and_then(strength),
            expiry: details.expiry.as_ref().and_then(expiry),
            iagn: details.iagn.as_ref().and_then(flag),
        }
    }

    /// What the add changes, one phrase each (`strength 50 → 70`); empty when nothing known
    /// changes.
    pub fn changes(&self, sent: &Sent<'_>) -> Vec<String> {
        let mut changes = Vec::new();
        if let (Some(held), Some(sent)) = (self.strength, sent.strength)
            && held != sent
        {
            changes.push(format!("strength {held} → {sent}"));
        }
        if let Some(held) = self.expiry {
            let sent_at = sent
                .expiry
                .and_then(|e| NaiveDateTime::parse_from_str(e, EXPIRY_FORM).ok());
            if held != sent_at {
                changes.push(format!("expiry {} → {}", shown(held), shown(sent_at)));
            }
        }
        if let Some(held) = self.iagn
            && held != sent.iagn
        {
            changes.push(format!(
                "Autonomous Response {} → {}",
                on_off(held),
                on_off(sent.iagn)
            ));
        }
        changes
    }
}

/// The detail of a refreshed item, with what its add changed (`done`) or would change.
pub fn with_changes(detail: &str, changes: &[String], done: bool) -> String {
    let verb = if done { "changed" } else { "would change" };
    format!("{detail}; {verb} in Darktrace: {}", changes.join(", "))
}

fn shown(expiry: Option<NaiveDateTime>) -> String {
    expiry.map_or("none".into(), |at| at.format(EXPIRY_FORM).to_string())
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// A strength shown as a number (`70`, `70.0`) or a numeric string, 0 to 100.
fn strength(value: &Value) -> Option<u8> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (0.0..=100.0)
        .contains(&number)
        .then_some(number.round() as u8)
}

/// An expiry shown as text (the service's form, with a fraction or a zone, or a space for
/// the `T`), epoch seconds or milliseconds, or empty/null for none.
fn expiry(value: &Value) -> Option<Option<NaiveDateTime>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) if s.trim().is_empty() => Some(None),
        Value::String(s) => {
            let s = s.trim();
            let at = DateTime::parse_from_rfc3339(s)
                .map(|t| t.naive_utc())
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                })
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .ok()?;
            Some(Some(at))
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            let at = if n.abs() >= 100_000_000_000 {
                DateTime::from_timestamp_millis(n)?
            } else {
                DateTime::from_timestamp(n, 0)?
            };
            Some(Some(at.naive_utc()))
        }
        _ => None,
    }
}

/// A flag shown as a boolean, `"true"`/`"false"`, or 1/0.
fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().to_ascii_lowercase().parse().ok(),
        Value::Number(n) => match n.as_u64()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(details: Value) -> HeldState {
        let mut details = details;
        details["name"] = json!("evil.example");
        HeldState::of(&serde_json::from_value(details).unwrap())
    }

    const SENT: Sent<'static> = Sent {
        strength: Some(70),
        expiry: Some("2026-12-31T00:00:00"),
        iagn: true,
    };

    #[test]
    fn each_changed_setting_is_named_with_both_values() {
        let held = state(json!({"strength": 50, "expiry": "2026-12-10T00:00:00", "iagn": false}));
        assert_eq!(
            held.changes(&SENT),
            vec![
                "strength 50 → 70",
                "expiry 2026-12-10T00:00:00 → 2026-12-31T00:00:00",
                "Autonomous Response off → on",
            ]
        );
    }

    #[test]
    fn nothing_is_said_when_the_entry_already_matches() {
        for shown in [
            json!({"strength": 70, "expiry": "2026-12-31T00:00:00", "iagn": true}),
            json!({"strength": "70", "expiry": "2026-12-31T00:00:00Z", "iagn": "true"}),
            json!({"strength": 70.0, "expiry": "2026-12-31 00:00:00", "iagn": 1}),
            json!({"strength": 70, "expiry": 1_798_675_200_000_i64, "iagn": true}),
            json!({"strength": 70, "expiry": "2026-12-31T00:00:00.000+00:00", "iagn": true}),
        ] {
            assert_eq!(
                state(shown.clone()).changes(&SENT),
                Vec::<String>::new(),
                "{shown}"
            );
        }
    }

    #[test]
    fn unknown_or_unreadable_fields_are_not_compared() {
        let held = state(json!({"strength": "high", "expiry": {"at": 1}, "iagn": "maybe"}));
        assert_eq!(held, HeldState::default());
        assert!(held.changes(&SENT).is_empty());
        // A strength the call leaves out is not known to change.
        let held = state(json!({"strength": 50}));
        assert!(
            held.changes(&Sent {
                strength: None,
                ..SENT
            })
            .is_empty()
        );
    }

    #[test]
    fn an_expiry_is_set_or_cleared_and_autonomous_response_turned_off() {
        let held = state(json!({"expiry": "", "iagn": true}));
        assert_eq!(
            held.changes(&Sent {
                iagn: false,
                ..SENT
            }),
            vec![
                "expiry none → 2026-12-31T00:00:00",
                "Autonomous Response on → off"
            ]
        );
        let held = state(json!({"expiry": "2026-12-10T00:00:00"}));
        assert_eq!(
            held.changes(&Sent {
                expiry: None,
                ..SENT
            }),
            vec!["expiry 2026-12-10T00:00:00 → none"]
        );
    }

    #[test]
    fn the_detail_says_whether_the_change_was_made() {
        let changes = vec!["strength 50 → 70".to_owned()];
        assert_eq!(
            with_changes("already in Darktrace; refreshed", &changes, true),
            "already in Darktrace; refreshed; changed in Darktrace: strength 50 → 70"
        );
        assert!(with_changes("valid", &changes, false).contains("would change in Darktrace"));
    }
}
