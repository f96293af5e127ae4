//! Very popular domains and well-known public DNS resolvers, never exported while
//! `PROTECT_POPULAR` is on: a feed that lists `google.com` or `8.8.8.8` by mistake would
//! otherwise have Darktrace watch (and possibly block) what a whole network relies on.
//!
//! The lists are shipped in `data/popular/` (MISP warning lists, CC0), compiled in, and
//! refreshed by `scripts/refresh-popular.py`; each file's `# list:` lines name what it holds,
//! and a result's detail quotes them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::OnceLock;

const DOMAINS: &str = include_str!("../../data/popular/domains.txt");
const RESOLVERS: &str = include_str!("../../data/popular/resolvers.txt");

/// The shipped lists, read once per process.
#[derive(Debug)]
pub struct Popular {
    domains: HashSet<&'static str>,
    /// Each domain that is a proper parent of a listed one, with one listed name under it.
    parents: HashMap<&'static str, &'static str>,
    resolvers: HashSet<IpAddr>,
    domains_label: String,
    resolvers_label: String,
}

/// The lists, parsed on first use (about 73,000 values; a few milliseconds).
pub fn popular() -> &'static Popular {
    static LISTS: OnceLock<Popular> = OnceLock::new();
    LISTS.get_or_init(|| Popular::parse(DOMAINS, RESOLVERS))
}

impl Popular {
    fn parse(domains_text: &'static str, resolvers_text: &'static str) -> Popular {
        let domains: HashSet<&'static str> = values(domains_text).collect();
        let mut parents = HashMap::new();
        for name in &domains {
            let mut rest = *name;
            while let Some((_, parent)) = rest.split_once('.') {
                parents.entry(parent).or_insert(*name);
                rest = parent;
            }
        }
        let resolvers = values(resolvers_text)
            .map(|v| {
                v.parse()
                    .expect("data/popular/resolvers.txt holds addresses")
            })
            .collect();
        Popular {
            domains,
            parents,
            resolvers,
            domains_label: label(domains_text),
            resolvers_label: label(resolvers_text),
        }
    }

    /// How many values each list holds, for the start-up log line.
    pub fn sizes(&self) -> (usize, usize) {
        (self.domains.len(), self.resolvers.len())
    }

    /// Why this name is never exported, if it is listed, is the `www.` name of a listed one,
    /// or (when entries match the names under them) is a parent of a listed one. Other names
    /// under a listed domain stay exportable: `evil.blogspot.com` is a real indicator.
    pub fn domain_rule(&self, name: &str, entries_match_subdomains: bool) -> Option<String> {
        let label = &self.domains_label;
        if self.domains.contains(name) {
            return Some(format!("is a very popular domain ({label}; {ALLOW})"));
        }
        if let Some(listed) = name.strip_prefix("www.")
            && self.domains.contains(listed)
        {
            return Some(format!(
                "is the www name of very popular domain {listed} ({label}; {ALLOW})"
            ));
        }
        if entries_match_subdomains && let Some(listed) = self.parents.get(name) {
            return Some(format!(
                "is a parent domain of very popular domain {listed} ({label}); as a watched domain it would match it ({ALLOW})"
            ));
        }
        None
    }

    /// Why this address is never exported, if it is a listed public resolver.
    pub fn address_rule(&self, ip: IpAddr) -> Option<String> {
        self.resolvers.contains(&ip).then(|| {
            format!(
                "is a well-known public DNS resolver ({}; {ALLOW})",
                self.resolvers_label
            )
        })
    }
}

const ALLOW: &str = "PROTECT_POPULAR=false allows it";

/// The values of a list file: every line that is neither blank nor a `#` comment.
fn values(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// What a list file holds, from its `# list: NAME VERSION: title` lines, for result details.
fn label(text: &str) -> String {
    let lists: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# list: "))
        .filter_map(|l| l.split_once(':').map(|(name_version, _)| name_version))
        .collect();
    format!("MISP warning list {}", lists.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::Fqdn;

    #[test]
    fn the_names_the_issue_names_are_protected() {
        let p = popular();
        for name in ["google.com", "microsoft.com", "www.google.com"] {
            let rule = p.domain_rule(name, true).unwrap_or_default();
            assert!(rule.contains("tranco10k"), "{name}: {rule:?}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"] {
            let rule = p.address_rule(ip.parse().unwrap()).unwrap_or_default();
            assert!(rule.contains("public-dns-v"), "{ip}: {rule:?}");
        }
    }

    #[test]
    fn names_under_a_listed_domain_stay_exportable() {
        let p = popular();
        assert_eq!(p.domain_rule("evil.google.com", true), None);
        assert_eq!(p.domain_rule("c2.evil.example", true), None);
        assert_eq!(p.address_rule("198.51.100.7".parse().unwrap()), None);
    }

    #[test]
    fn a_parent_of_a_listed_name_is_protected_only_when_entries_match_subdomains() {
        let lists = Popular::parse("# list: t 1: test\nwww.gov.example\n", "# list: r 1: r\n");
        assert!(
            lists
                .domain_rule("gov.example", true)
                .unwrap()
                .contains("parent domain of very popular domain www.gov.example")
        );
        assert_eq!(lists.domain_rule("gov.example", false), None);
        assert_eq!(lists.label_of_domains(), "MISP warning list t 1");
    }

    #[test]
    fn every_shipped_name_is_in_the_form_screening_compares() {
        for name in values(DOMAINS) {
            let parsed = Fqdn::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.as_str(), name);
        }
        assert_eq!(
            popular().sizes().0,
            values(DOMAINS).count(),
            "no duplicates"
        );
    }

    #[test]
    fn the_shipped_files_say_where_they_come_from() {
        for text in [DOMAINS, RESOLVERS] {
            for key in [
                "# list: ",
                "# source: https://",
                "# licence: ",
                "# fetched: ",
            ] {
                assert!(text.lines().any(|l| l.starts_with(key)), "{key}");
            }
        }
    }

    impl Popular {
        fn label_of_domains(&self) -> &str {
            &self.domains_label
        }
    }
}
