//! One page of a ThreatQ collection, `{"total", "data": [...], "nextCursorMark", "limit"}`,
//! and when paging ends: `data` empty (`[]`, or `{}` as ThreatQ really sends it), or a
//! `nextCursorMark` missing or the same as the one sent.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::threatq::Item;

/// A page, its items borrowed from the answer's bytes.
#[derive(Debug, Default)]
pub struct Page<'a> {
    pub total: Option<u64>,
    pub items: Vec<Item<'a>>,
    pub next_cursor: Option<String>,
}

impl Page<'_> {
    /// The cursor of the next page, or `None` when this page is the last: it is empty, or
    /// the cursor did not move.
    pub fn next(&self, sent: &str) -> Option<&str> {
        if self.items.is_empty() {
            return None;
        }
        self.next_cursor.as_deref().filter(|next| *next != sent)
    }
}

/// Reads a page; the message says what is wrong with one that is not a page.
pub fn parse_page(bytes: &[u8]) -> Result<Page<'_>, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    PageSeed
        .deserialize(&mut deserializer)
        .and_then(|page| deserializer.end().map(|()| page))
        .map_err(|e| format!("ThreatQ's collection page is not a page of indicators ({e})"))?
}

struct PageSeed;

impl<'de> DeserializeSeed<'de> for PageSeed {
    type Value = Result<Page<'de>, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(PageVisitor)
    }
}

struct PageVisitor;

impl<'de> Visitor<'de> for PageVisitor {
    type Value = Result<Page<'de>, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with \"data\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut page = Page::default();
        let mut data = false;
        let mut errors = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "data" => {
                    page.items = map.next_value_seed(Data)?;
                    data = true;
                }
                "total" => page.total = map.next_value::<serde_json::Value>()?.as_u64(),
                "nextCursorMark" => page.next_cursor = map.next_value::<Option<String>>()?,
                "errors" => {
                    map.next_value::<IgnoredAny>()?;
                    errors = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(if errors {
            Err("ThreatQ's collection page holds \"errors\"".into())
        } else if !data {
            Err("ThreatQ's collection page has no \"data\"".into())
        } else {
            Ok(page)
        })
    }
}

/// `data`: a list of indicators, or an object standing for none.
struct Data;

impl<'de> DeserializeSeed<'de> for Data {
    type Value = Vec<Item<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Data {
    type Value = Vec<Item<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of indicators, or {} for none")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(10_000));
        while let Some(item) = seq.next_element::<Item<'de>>()? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "\"data\" is an object with keys, not a list of indicators",
            ));
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_ends_on_empty_data_in_either_form_or_an_unchanged_cursor() {
        let page = br#"{"total":3,"data":[{"value":"a.example","type":"FQDN"}],"nextCursorMark":"B","limit":1}"#;
        let page = parse_page(page).unwrap();
        assert_eq!(page.total, Some(3));
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next("A"), Some("B"));
        assert_eq!(page.next("B"), None, "unchanged cursor");

        for end in [
            &br#"{"total":3,"data":{},"nextCursorMark":"C"}"#[..],
            br#"{"total":3,"data":[],"nextCursorMark":"C"}"#,
        ] {
            let page = parse_page(end).unwrap();
            assert!(page.items.is_empty());
            assert_eq!(page.next("B"), None);
        }
        let no_cursor = parse_page(br#"{"data":[{"value":"a.example"}]}"#).unwrap();
        assert_eq!(no_cursor.next("*"), None);
    }

    #[test]
    fn a_page_with_errors_or_without_data_is_refused() {
        assert!(parse_page(br#"{"errors":["nope"],"data":[]}"#).is_err());
        assert!(parse_page(br#"{"total":1}"#).is_err());
        assert!(parse_page(br#"{"data":{"a":1}}"#).is_err());
        assert!(parse_page(b"[]").is_err());
        assert!(parse_page(b"not json").is_err());
    }
}
