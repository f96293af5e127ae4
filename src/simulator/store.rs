//! What the simulated appliance holds: watched entries, each in any number of sources, each
//! source with its own expiry (a re-add from one source never changes another's).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use chrono::NaiveDateTime;
use serde::Serialize;

/// One watched entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub description: Option<String>,
    pub hostname: bool,
    /// Darktrace's strength, 0 to 100.
    pub strength: u8,
    /// Autonomous Response may act when the entry is seen.
    pub iagn: bool,
    /// Each source holding the entry, with the expiry its last add gave (`None`: never).
    pub sources: BTreeMap<String, Option<NaiveDateTime>>,
}

impl Entry {
    /// When the entry leaves `source` (`None`: never, or not held there).
    pub fn expiry_in(&self, source: &str) -> Option<NaiveDateTime> {
        self.sources.get(source).copied().flatten()
    }

    /// When the entry leaves the appliance: its last source's expiry, `None` if one never
    /// expires.
    fn last_expiry(&self) -> Option<NaiveDateTime> {
        self.sources
            .values()
            .try_fold(None, |last: Option<NaiveDateTime>, e| {
                e.map(|e| Some(last.map_or(e, |l| l.max(e))))
            })
            .flatten()
    }
}

/// The strength an entry gets from an add that gives none.
pub const DEFAULT_STRENGTH: u8 = 100;

/// An entry as `GET /intelfeed?fulldetails=true` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryView {
    pub name: String,
    pub description: String,
    pub expiry: String,
    pub strength: u8,
    pub iagn: bool,
    pub hostname: bool,
    pub sources: Vec<String>,
}

/// The settings of one add call.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub source: Option<String>,
    pub description: Option<String>,
    pub expiry: Option<NaiveDateTime>,
    pub hostname: bool,
    /// `None`: [`DEFAULT_STRENGTH`].
    pub strength: Option<u8>,
    pub iagn: bool,
}

/// What an add did: `added` holds every accepted entry, `updated` those already present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddResult {
    pub added: Vec<String>,
    pub updated: Vec<String>,
}

/// The source an entry gets when the call names none.
pub const DEFAULT_SOURCE: &str = "default";

#[derive(Debug, Default)]
pub struct Store {
    entries: BTreeMap<String, Entry>,
    /// Every source ever used: a source stays listed after its last entry goes.
    sources: BTreeSet<String>,
    /// How many times `removeall` was received (the service must never send it).
    pub removeall_calls: usize,
    /// No entry expires before this (it may be earlier than the true first expiry, never
    /// later), so most calls skip the scan for expired entries.
    next_expiry: Option<NaiveDateTime>,
}

impl Store {
    /// Drops entries whose expiry has passed.
    pub fn expire(&mut self, now: NaiveDateTime) {
        if self.next_expiry.is_none_or(|first| first > now) {
            return;
        }
        for entry in self.entries.values_mut() {
            entry.sources.retain(|_, e| e.is_none_or(|x| x > now));
        }
        self.entries.retain(|_, e| !e.sources.is_empty());
        self.next_expiry = self
            .entries
            .values()
            .flat_map(|e| e.sources.values().flatten())
            .min()
            .copied();
    }

    pub fn add(&mut self, names: &[&str], options: &AddOptions) -> AddResult {
        let source = options
            .source
            .clone()
            .unwrap_or_else(|| DEFAULT_SOURCE.into());
        self.sources.insert(source.clone());
        if let Some(expiry) = options.expiry {
            self.next_expiry = Some(self.next_expiry.map_or(expiry, |first| first.min(expiry)));
        }
        let mut result = AddResult::default();
        for raw in names {
            let name = raw.trim();
            if name.is_empty() {
                continue;
            }
            if !is_acceptable_entry(name) {
                continue; // left out of both lists, as an appliance does
            }
            let name = name.to_ascii_lowercase();
            match self.entries.get_mut(&name) {
                Some(entry) => {
                    entry.sources.insert(source.clone(), options.expiry);
                    entry.hostname = options.hostname;
                    entry.strength = options.strength.unwrap_or(DEFAULT_STRENGTH);
                    entry.iagn = options.iagn;
                    if options.description.is_some() {
                        entry.description = options.description.clone();
                    }
                    result.updated.push(name.clone());
                }
                None => {
                    self.entries.insert(
                        name.clone(),
                        Entry {
                            description: options.description.clone(),
                            hostname: options.hostname,
                            strength: options.strength.unwrap_or(DEFAULT_STRENGTH),
                            iagn: options.iagn,
                            sources: BTreeMap::from([(source.clone(), options.expiry)]),
                        },
                    );
                }
            }
            result.added.push(name);
        }
        result
    }

    /// Removes `name` from `source`; the entry goes when no source holds it. Without a
    /// source, it is removed only if one source holds it. True when something was removed.
    pub fn remove(&mut self, name: &str, source: Option<&str>) -> bool {
        let name = name.trim().to_ascii_lowercase();
        let Some(entry) = self.entries.get_mut(&name) else {
            return false;
        };
        let removed = match source {
            Some(source) => entry.sources.remove(source).is_some(),
            None if entry.sources.len() <= 1 => {
                entry.sources.clear();
                true
            }
            None => false,
        };
        if entry.sources.is_empty() {
            self.entries.remove(&name);
        }
        removed
    }

    pub fn remove_all(&mut self) {
        self.removeall_calls += 1;
        self.entries.clear();
    }

    pub fn sources(&self) -> Vec<String> {
        self.sources.iter().cloned().collect()
    }

    /// Names, all or those of one source.
    pub fn names(&self, source: Option<&str>) -> Vec<String> {
        self.filtered(source).map(|(n, _)| n.clone()).collect()
    }

    /// The entries, all or one source's; the expiry shown is that source's, or when the
    /// entry leaves the appliance.
    pub fn details(&self, source: Option<&str>) -> Vec<EntryView> {
        self.filtered(source)
            .map(|(name, e)| EntryView {
                name: name.clone(),
                description: e.description.clone().unwrap_or_default(),
                expiry: source
                    .map_or_else(|| e.last_expiry(), |s| e.expiry_in(s))
                    .map(|x| x.format("%Y-%m-%dT%H:%M:%S").to_string())
                    .unwrap_or_default(),
                strength: e.strength,
                iagn: e.iagn,
                hostname: e.hostname,
                sources: e.sources.keys().cloned().collect(),
            })
            .collect()
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    fn filtered<'s>(
        &'s self,
        source: Option<&'s str>,
    ) -> impl Iterator<Item = (&'s String, &'s Entry)> {
        self.entries
            .iter()
            .filter(move |(_, e)| source.is_none_or(|s| e.sources.contains_key(s)))
    }
}

/// Domains, hostnames, IPv4 addresses and ranges, and IPv6 in full form; nothing else.
pub fn is_acceptable_entry(name: &str) -> bool {
    if name.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    if let Some((ip, prefix)) = name.split_once('/') {
        return ip.parse::<Ipv4Addr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 32);
    }
    if name.contains(':') {
        let groups: Vec<&str> = name.split(':').collect();
        return groups.len() == 8
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lists_every_accepted_entry_and_updated_the_existing_ones() {
        let mut store = Store::default();
        let opts = AddOptions {
            source: Some("S".into()),
            ..AddOptions::default()
        };
        store.add(&["a.example", "b.example", "c.example", "d.example"], &opts);
        let r = store.add(
            &[
                "a.example",
                "b.example",
                "c.example",
                "d.example",
                "e.example",
                "bad name",
            ],
            &opts,
        );
        assert_eq!(r.added.len(), 5);
        assert_eq!(r.updated.len(), 4);
        assert!(!r.added.contains(&"bad name".to_string()));
    }

    #[test]
    fn entries_vanish_once_their_expiry_has_passed() {
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, 27)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        let mut store = Store::default();
        let until = |h: u32| AddOptions {
            source: Some("S".into()),
            expiry: Some(at(h)),
            ..AddOptions::default()
        };
        store.add(&["late.example"], &until(12));
        store.add(&["early.example"], &until(10));
        store.add(&["never.example"], &AddOptions::default());
        store.expire(at(9));
        assert_eq!(store.names(None).len(), 3);
        store.expire(at(10));
        assert_eq!(store.names(None), vec!["late.example", "never.example"]);
        store.expire(at(11));
        assert_eq!(store.names(None).len(), 2);
        store.expire(at(12));
        assert_eq!(store.names(None), vec!["never.example"]);
    }

    #[test]
    fn each_source_keeps_its_own_expiry_and_the_entry_stays_while_one_holds_it() {
        let at = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        let add = |store: &mut Store, source: &str, expiry: Option<NaiveDateTime>| {
            let options = AddOptions {
                source: Some(source.into()),
                expiry,
                ..AddOptions::default()
            };
            store.add(&["shared.example"], &options)
        };
        let mut store = Store::default();
        add(&mut store, "A", Some(at(10)));
        add(&mut store, "B", Some(at(20)));
        let entry = store.entry("shared.example").unwrap();
        assert_eq!(
            entry.expiry_in("A"),
            Some(at(10)),
            "B's add left A's expiry"
        );
        let shown = |store: &Store, source| store.details(source)[0].expiry.clone();
        assert_eq!(shown(&store, Some("A")), "2026-12-10T00:00:00");
        assert_eq!(shown(&store, Some("B")), "2026-12-20T00:00:00");
        assert_eq!(shown(&store, None), "2026-12-20T00:00:00");
        store.expire(at(11));
        assert!(store.names(Some("A")).is_empty(), "gone from A");
        assert_eq!(store.names(Some("B")), vec!["shared.example"]);
        add(&mut store, "C", None);
        store.expire(at(21));
        assert_eq!(store.names(None), vec!["shared.example"], "C never expires");
        assert_eq!(shown(&store, None), "");
    }

    #[test]
    fn removal_touches_one_source_only() {
        let mut store = Store::default();
        let s = |n: &str| AddOptions {
            source: Some(n.into()),
            ..AddOptions::default()
        };
        store.add(&["a.example"], &s("S"));
        store.add(&["a.example"], &s("Other"));
        assert!(store.remove("a.example", Some("S")));
        assert_eq!(store.names(Some("Other")), vec!["a.example"]);
        assert!(store.names(Some("S")).is_empty());
        assert_eq!(store.sources(), vec!["Other", "S"]);
    }

    #[test]
    fn compressed_ipv6_and_junk_are_not_acceptable() {
        assert!(is_acceptable_entry(
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        ));
        assert!(!is_acceptable_entry("2001:db8::1"));
        assert!(!is_acceptable_entry("http://a.example"));
        assert!(is_acceptable_entry("198.51.100.0/24"));
    }
}
