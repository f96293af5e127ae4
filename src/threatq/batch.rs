//! A whole request body in any of its three forms: an array, a ThreatQ list page (`data`),
//! or `indicators` with overrides. Its items go one by one to an [`ItemSink`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::item::{Item, ItemSeed, KeyReading, Text};
use super::overrides::{
    BodyOverrides, OVERRIDE_KEYS, OverrideDays, OverrideFlag, OverrideText, StrayKey, near_override,
};

/// A request body in any of its three forms: an array, a ThreatQ list page (`data`), or
/// `indicators` with overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch<'a> {
    pub items: Vec<Item<'a>>,
    pub overrides: BodyOverrides,
}

impl<'de: 'a, 'a> Deserialize<'de> for Batch<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut items = Vec::new();
        let read = BatchSeed {
            max_items: usize::MAX,
            keys: KeyReading::Checked,
            sink: &mut items,
        }
        .deserialize(deserializer)?;
        Ok(Batch {
            items,
            overrides: read.overrides,
        })
    }
}

/// Where the items of a batch go, one by one, as they are read: a list, or screening
/// itself, which judges each item while its bytes are still in the CPU cache.
pub trait ItemSink<'de> {
    fn take(&mut self, item: Item<'de>);
}

impl<'de> ItemSink<'de> for Vec<Item<'de>> {
    fn take(&mut self, item: Item<'de>) {
        self.push(item);
    }
}

/// What reading a batch leaves besides its items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchRead {
    pub overrides: BodyOverrides,
    /// The first top-level key the body may not hold (see [`StrayKey`]).
    pub stray_key: Option<StrayKey>,
    /// How many items the batch holds, those past `max_items` included.
    pub total: usize,
}

/// Reads a batch, handing at most `max_items` of its items to `sink`. Items past that are
/// read only to check the JSON and count them, never built, so an oversized batch costs no
/// memory before it is refused.
pub struct BatchSeed<'s, S> {
    pub max_items: usize,
    pub keys: KeyReading,
    pub sink: &'s mut S,
}

impl<'de, 's, S: ItemSink<'de>> DeserializeSeed<'de> for BatchSeed<'s, S> {
    type Value = BatchRead;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(BatchVisitor(self))
    }
}

struct BatchVisitor<'s, S>(BatchSeed<'s, S>);

impl<'de, 's, S: ItemSink<'de>> Visitor<'de> for BatchVisitor<'s, S> {
    type Value = BatchRead;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "an array of indicators, or an object with \"data\" or \"indicators\" (an array)",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let seed = self.0;
        Ok(BatchRead {
            total: ItemsVisitor {
                max_items: seed.max_items,
                keys: seed.keys,
                sink: seed.sink,
            }
            .visit_seq(seq)?,
            overrides: BodyOverrides::default(),
            stray_key: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let seed = self.0;
        let mut data: Option<usize> = None;
        let mut indicators: Option<usize> = None;
        let mut overrides = BodyOverrides::default();
        // A key given twice would drop the first list's items (or override) unseen.
        let mut seen: Vec<&'static str> = Vec::new();
        // Unknown keys and near-misses of an override, in the order read; which of them
        // counts depends on the form, known only once the whole object is read.
        let mut unknown: Option<String> = None;
        let mut near: Option<StrayKey> = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let known = ["data", "indicators"]
                .into_iter()
                .chain(OVERRIDE_KEYS)
                .find(|k| *k == key.0.as_ref());
            if let Some(known) = known {
                if seen.contains(&known) {
                    return Err(de::Error::custom(format!(
                        "\"{known}\" is given twice; give it once"
                    )));
                }
                seen.push(known);
            }
            match key.0.as_ref() {
                // Both lists go to the one sink; a body with both is refused below, once it
                // has been read through, so that a body broken further on is still a 400.
                "data" => {
                    data = Some(map.next_value_seed(ItemsVisitor {
                        max_items: seed.max_items,
                        keys: seed.keys,
                        sink: &mut *seed.sink,
                    })?);
                }
                "indicators" => {
                    indicators = Some(map.next_value_seed(ItemsVisitor {
                        max_items: seed.max_items,
                        keys: seed.keys,
                        sink: &mut *seed.sink,
                    })?);
                }
                "source" => overrides.source = map.next_value::<OverrideText>()?.0,
                "days_to_expiration" => {
                    overrides.days_to_expiration = map.next_value::<OverrideDays>()?.0
                }
                "description" => overrides.description = map.next_value::<OverrideText>()?.0,
                "autonomous_response" => {
                    overrides.autonomous_response = map.next_value::<OverrideFlag>()?.0
                }
                "dry_run" => overrides.dry_run = map.next_value::<OverrideFlag>()?.0,
                "force" => overrides.force = map.next_value::<OverrideFlag>()?.0,
                other => {
                    if near.is_none()
                        && let Some(meant) = near_override(other)
                    {
                        near = Some(StrayKey::NearOverride {
                            key: other.to_owned(),
                            meant,
                        });
                    }
                    if unknown.is_none() {
                        unknown = Some(other.to_owned());
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (indicators, data) {
            (Some(_), Some(_)) => Err(de::Error::custom(
                "give either \"data\" or \"indicators\", not both",
            )),
            (Some(total), None) => Ok(BatchRead {
                overrides,
                total,
                stray_key: unknown.map(StrayKey::Unknown),
            }),
            // A ThreatQ list page: its other top-level keys are ThreatQ's (`total`,
            // `nextCursorMark`, ...), so only a near-miss of an override is refused.
            (None, Some(total)) => Ok(BatchRead {
                overrides,
                total,
                stray_key: near,
            }),
            (None, None) => Err(de::Error::custom(
                "expected an array of indicators, or an object with \"data\" or \"indicators\"",
            )),
        }
    }
}

/// The list of items: each of the first `max_items` goes to the sink, all are counted.
struct ItemsVisitor<'s, S> {
    max_items: usize,
    keys: KeyReading,
    sink: &'s mut S,
}

impl<'de, 's, S: ItemSink<'de>> DeserializeSeed<'de> for ItemsVisitor<'s, S> {
    /// How many items the list holds.
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 's, S: ItemSink<'de>> Visitor<'de> for ItemsVisitor<'s, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of indicators")
    }

    /// ThreatQ answers a page without items with `"data": {}`; a workflow that posts that
    /// page as it is sends no items, not a wrong shape.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<IgnoredAny>()? {
            None => Ok(0),
            Some(_) => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut total = 0usize;
        // Each element consumes input, so the loop ends with the body.
        loop {
            let more = if total < self.max_items {
                seq.next_element_seed(ItemSeed(self.keys))?
                    .map(|item| self.sink.take(item))
            } else {
                seq.next_element::<IgnoredAny>()?.map(drop)
            };
            if more.is_none() {
                break;
            }
            total += 1;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threatq::item::{Indicator, ItemId, Named, RawValue};
    use std::borrow::Cow;

    fn parse(json: &str) -> Batch<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn indicator<'a>(batch: &'a Batch<'a>, i: usize) -> &'a Indicator<'a> {
        match &batch.items[i] {
            Item::Indicator(ind) => ind,
            Item::NotAnObject => panic!("item {i} is not an object"),
        }
    }

    #[test]
    fn reads_a_threatq_list_page_with_full_objects() {
        let batch = parse(
            r#"{"total": 1, "data": [{"id": 106767, "value": "107.189.1.90", "class": "network",
              "score": 0, "type_id": 15, "type": {"name": "IP Address", "id": 15, "class": "network"},
              "status_id": 1, "status": {"name": "Active", "id": 1, "description": "Poses a threat"},
              "attributes": [{"name": "Router Port", "value": "9000"}],
              "sources": [{"name": "Tor", "source_type": "connectors"}]}]}"#,
        );
        let ind = indicator(&batch, 0);
        assert_eq!(ind.id, Some(ItemId::Number(106767.into())));
        assert_eq!(ind.value, RawValue::Text("107.189.1.90".into()));
        assert_eq!(ind.kind.name(), Some("IP Address"));
        assert_eq!(ind.status.name(), Some("Active"));
    }

    #[test]
    fn a_screened_key_given_twice_is_noted_whichever_way_keys_are_read() {
        for keys in [KeyReading::Raw, KeyReading::Checked] {
            let items = read_with(
                keys,
                br#"[{"value": "a.example", "type": "FQDN", "status": "Whitelisted", "status": "Active"},
                     {"value": "a.example", "value": "b.example", "type": "FQDN", "type": "FQDN"},
                     {"type_id": 1, "type_id": 2, "value": "c.example"},
                     {"value": "d.example", "type": "FQDN", "id": 1, "id": 2, "other": 1, "other": 2}]"#,
            )
            .unwrap();
            let duplicates: Vec<_> = items
                .iter()
                .map(|item| match item {
                    Item::Indicator(ind) => ind.duplicate_key,
                    Item::NotAnObject => panic!("an object"),
                })
                .collect();
            assert_eq!(
                duplicates,
                [Some("status"), Some("value"), Some("type_id"), None],
                "{keys:?}"
            );
        }
    }

    #[test]
    fn reads_type_and_status_as_plain_strings_and_indicator_id() {
        let batch = parse(
            r#"[{"indicator_id": "x-1", "value": "a.example", "type": "FQDN", "status": "Whitelisted"}]"#,
        );
        let ind = indicator(&batch, 0);
        assert_eq!(ind.id, Some(ItemId::Text("x-1".into())));
        assert_eq!(ind.kind.name(), Some("FQDN"));
        assert_eq!(ind.status.name(), Some("Whitelisted"));
    }

    #[test]
    fn a_name_given_twice_in_a_type_or_status_object_is_neither() {
        let batch = parse(
            r#"[{"value": "a.example", "type": {"name": "FQDN", "name": "MD5"},
                 "status": {"name": "Whitelisted", "name": "Active"}}]"#,
        );
        let ind = indicator(&batch, 0);
        assert_eq!(ind.kind, Named::Malformed);
        assert_eq!(ind.status, Named::Malformed);
    }

    #[test]
    fn type_given_only_by_id_is_id_only() {
        let batch = parse(r#"[{"value": "a.example", "type_id": 11}, {"value": "b", "type": 11}]"#);
        assert_eq!(indicator(&batch, 0).kind, Named::IdOnly);
        assert_eq!(indicator(&batch, 1).kind, Named::IdOnly);
    }

    #[test]
    fn non_objects_and_non_string_values_never_fail_the_batch() {
        let batch = parse(r#"[1, "x", null, [1], {"value": 5}, {"type": "FQDN"}]"#);
        assert_eq!(batch.items.len(), 6);
        for i in 0..4 {
            assert_eq!(batch.items[i], Item::NotAnObject);
        }
        assert_eq!(indicator(&batch, 4).value, RawValue::NotAString);
        assert_eq!(indicator(&batch, 5).value, RawValue::Missing);
    }

    #[test]
    fn both_object_forms_carry_overrides() {
        let batch =
            parse(r#"{"indicators": [], "source": "S", "dry_run": true, "days_to_expiration": 7}"#);
        assert_eq!(batch.overrides.source.as_deref(), Some("S"));
        assert_eq!(batch.overrides.dry_run, Some(true));
        assert_eq!(batch.overrides.days_to_expiration, Some(7));
        let page = parse(r#"{"data": [], "source": "S", "dry_run": true, "total": 0}"#);
        assert_eq!(page.overrides.source.as_deref(), Some("S"));
        assert_eq!(page.overrides.dry_run, Some(true));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for body in [
            r#"{"total": 3}"#,
            r#""text""#,
            "42",
            r#"{"data": 5}"#,
            r#"{"data": {"value": "a.example"}}"#,
            r#"{"indicators": {"value": "a.example"}}"#,
        ] {
            let err = serde_json::from_str::<Batch>(body).unwrap_err();
            assert!(err.is_data(), "{body}: {err}");
        }
    }

    #[test]
    fn threatqs_page_without_items_is_an_empty_batch() {
        let page = parse(r#"{"data": {}, "limit": 10, "nextCursorMark": "AoJ0", "total": 0}"#);
        assert!(page.items.is_empty());
    }

    #[test]
    fn unescaped_values_are_borrowed_from_the_body() {
        let batch = parse(r#"[{"value": "a.example", "type": "FQDN"}]"#);
        assert!(matches!(
            indicator(&batch, 0).value,
            RawValue::Text(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn a_list_or_override_given_twice_is_refused_rather_than_half_read() {
        for body in [
            r#"{"indicators": [{"value": "a.example"}], "indicators": []}"#,
            r#"{"data": [], "data": [{"value": "a.example"}]}"#,
            r#"{"indicators": [], "dry_run": true, "dry_run": false}"#,
        ] {
            let err = serde_json::from_str::<Batch>(body).unwrap_err();
            assert!(
                err.is_data() && err.to_string().contains("twice"),
                "{body}: {err}"
            );
        }
    }

    pub(super) fn read_with(keys: KeyReading, body: &[u8]) -> Result<Vec<Item<'_>>, String> {
        let mut items = Vec::new();
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        BatchSeed {
            max_items: usize::MAX,
            keys,
            sink: &mut items,
        }
        .deserialize(&mut deserializer)
        .and_then(|_| deserializer.end())
        .map_err(|e| e.to_string())?;
        Ok(items)
    }

    #[test]
    fn raw_keys_refuse_what_checked_keys_refuse() {
        let raw_control = b"[{\"va\x01lue\": 1}]".as_slice();
        let bad_utf8 = b"[{\"va\xfflue\": 1}]".as_slice();
        let lone_surrogate = br#"[{"\ud800": 1}]"#.as_slice();
        for body in [raw_control, bad_utf8, lone_surrogate] {
            assert!(read_with(KeyReading::Checked, body).is_err());
            assert!(read_with(KeyReading::Raw, body).is_err());
        }
        // An escaped control character is legal JSON; only the checked read can tell.
        let escaped_control = br#"[{"a\nb": 1, "value": "a.example"}]"#.as_slice();
        assert!(read_with(KeyReading::Raw, escaped_control).is_err());
        let items = read_with(KeyReading::Checked, escaped_control).unwrap();
        assert_eq!(items.len(), 1);
    }
}

/// Raw keys never accept what checked keys refuse, and read the same items.
#[cfg(test)]
mod key_props {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"value".to_vec()),
            Just(b"type".to_vec()),
            Just(b"status".to_vec()),
            Just(b"id".to_vec()),
            Just(br"val\u0075e".to_vec()),
            Just(br"\n".to_vec()),
            Just(br"\ud83d\ude00".to_vec()),
            Just(br"\udc00".to_vec()),
            Just("ключ".as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..6)
                .prop_filter("no quote or backslash", |k| !k.contains(&b'"')
                    && !k.contains(&b'\\')),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn raw_keys_read_what_checked_keys_read(keys in proptest::collection::vec(key(), 0..6)) {
            // The keys in the indicator object and again in its type object.
            let mut pairs = Vec::new();
            for key in &keys {
                pairs.push(b'"');
                pairs.extend_from_slice(key);
                pairs.extend_from_slice(br#"": "a.example","#);
            }
            let mut body = b"[{".to_vec();
            body.extend_from_slice(&pairs);
            body.extend_from_slice(br#""type": {"#);
            body.extend_from_slice(&pairs);
            body.extend_from_slice(br#""id": 1}}]"#);
            let checked = tests::read_with(KeyReading::Checked, &body);
            if let Ok(items) = tests::read_with(KeyReading::Raw, &body) {
                prop_assert_eq!(Ok(items), checked);
            }
        }
    }
}
