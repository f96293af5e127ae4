//! What Darktrace holds under one source, read once before a removal or a sync: the entries
//! as Darktrace spells them, found by the form the service sends.

use std::collections::HashMap;

use super::changes::HeldState;
use super::reconcile::normalise_echo;
use crate::darktrace::CallError;
use crate::darktrace::wire::{EntryDetails, HeldName};
use crate::outcome::Verdict;
use crate::screen::WireValue;

/// The entries Darktrace holds under one source, as it spells them, in the order it listed
/// them, found by the form the service sends.
#[derive(Debug, Clone, Default)]
pub struct Held {
    names: Vec<HeldName>,
    /// What `fulldetails` showed of each name (empty when only names were read).
    states: Vec<HeldState>,
    by_value: HashMap<String, usize>,
}

impl Held {
    /// Keeps the first spelling of names that normalise alike.
    pub fn new(listed: impl IntoIterator<Item = HeldName>) -> Held {
        Held::with_states(listed.into_iter().map(|name| (name, HeldState::default())))
    }

    /// The entries of a `fulldetails` read, with what it showed of each.
    pub fn from_details(details: Vec<EntryDetails>) -> Held {
        Held::with_states(details.into_iter().map(|d| {
            let state = HeldState::of(&d);
            (d.name, state)
        }))
    }

    fn with_states(listed: impl IntoIterator<Item = (HeldName, HeldState)>) -> Held {
        let mut held = Held::default();
        for (name, state) in listed {
            let value = normalise_echo(name.as_str()).into_owned();
            if value.is_empty() || held.by_value.contains_key(&value) {
                continue;
            }
            held.by_value.insert(value, held.names.len());
            held.names.push(name);
            held.states.push(state);
        }
        held
    }

    /// What Darktrace showed of `wire_value`'s entry, when it holds it.
    pub fn state(&self, wire_value: &WireValue) -> Option<&HeldState> {
        self.by_value
            .get(wire_value.as_str())
            .map(|&i| &self.states[i])
    }

    /// Darktrace's spelling of `wire_value`, when it holds it.
    pub fn get(&self, wire_value: &WireValue) -> Option<&HeldName> {
        self.by_value
            .get(wire_value.as_str())
            .map(|&i| &self.names[i])
    }

    /// `(normalised value, Darktrace's spelling)` in Darktrace's order.
    pub fn iter(&self) -> impl Iterator<Item = (String, &HeldName)> {
        self.names
            .iter()
            .map(|name| (normalise_echo(name.as_str()).into_owned(), name))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The verdict of every item a request could not judge because the source could not be read.
pub fn read_failure(error: &CallError, source: &str) -> Verdict {
    let cause = error.verdict();
    Verdict::new(
        cause.reason,
        format!(
            "could not read what Darktrace holds under source {source}, so nothing was changed: {}",
            cause.detail
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Reason;

    #[test]
    fn held_finds_darktrace_spellings_by_the_sent_form_and_keeps_order() {
        let held = Held::new(
            ["B.Example.", "a.example", "b.example", "198.51.100.7"]
                .into_iter()
                .map(HeldName::listed),
        );
        assert_eq!(held.len(), 3);
        let spelling = held.get(&WireValue::unchecked("b.example"));
        assert_eq!(spelling.map(HeldName::as_str), Some("B.Example."));
        assert_eq!(held.get(&WireValue::unchecked("c.example")), None);
        let order: Vec<String> = held.iter().map(|(value, _)| value).collect();
        assert_eq!(order, vec!["b.example", "a.example", "198.51.100.7"]);
    }

    #[test]
    fn a_failed_read_keeps_the_calls_reason_and_says_nothing_changed() {
        let verdict = read_failure(&CallError::Clock, "ThreatQ");
        assert_eq!(verdict.reason, Reason::DarktraceClock);
        assert!(verdict.detail.contains("nothing was changed"));
    }
}
