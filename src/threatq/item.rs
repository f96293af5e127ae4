//! One ThreatQ indicator object, read leniently: only what the service reads, borrowed from
//! the body.
//!
//! ThreatQ returns `type` and `status` as objects, strings or bare ids depending on the
//! endpoint, and indicators carry many fields we never use. Items are read straight into the
//! few fields we need (everything else is skipped with `IgnoredAny`), and an item that is not
//! an object never fails the batch: it becomes [`Item::NotAnObject`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use chrono::NaiveDateTime;

use super::score::{Score, ScoreField};

/// A string borrowed from the body when it has no escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// An indicator's id, echoed back as given (`id` or `indicator_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ItemId {
    Number(serde_json::Number),
    Text(String),
}

/// A field that may be a name, an object with a `name`, or only a number (an install-specific id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Named<'a> {
    #[default]
    Absent,
    Name(Cow<'a, str>),
    /// Given only as an id (or an object without a name): cannot be judged by name.
    IdOnly,
    /// Something else (a list, a boolean, ...).
    Malformed,
}

impl<'a> Named<'a> {
    pub fn name(&self) -> Option<&str> {
        match self {
            Named::Name(n) => Some(n),
            _ => None,
        }
    }

    fn or(self, other: Named<'a>) -> Named<'a> {
        match self {
            Named::Absent => other,
            _ => self,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Named<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NamedSeed(KeyReading::Checked).deserialize(deserializer)
    }
}

/// Reads a [`Named`] field, its object's keys read as the item's are.
#[derive(Debug, Clone, Copy)]
struct NamedSeed(KeyReading);

impl<'de> DeserializeSeed<'de> for NamedSeed {
    type Value = Named<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(NamedVisitor(self.0))
    }
}

struct NamedVisitor(KeyReading);

impl<'de> Visitor<'de> for NamedVisitor {
    type Value = Named<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name, an object with a name, or an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Named::Name(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Named::Name(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Named::IdOnly)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Named::IdOnly)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Named::Malformed)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Named::Malformed)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Named::Absent)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Named::Malformed)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        let mut has_id = false;
        let mut names = 0;
        while let Some(key) = next_key(&mut map, self.0)? {
            match key.as_ref() {
                b"name" => {
                    names += 1;
                    if let Named::Name(n) = map.next_value_seed(NamedSeed(self.0))? {
                        name = Some(n);
                    }
                }
                b"id" => {
                    map.next_value::<IgnoredAny>()?;
                    has_id = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Two names: which was meant is unclear, so neither is taken (a status that cannot
        // be read is then kept back while any status is excluded).
        if names > 1 {
            return Ok(Named::Malformed);
        }
        Ok(match (name, has_id) {
            (Some(n), _) => Named::Name(n),
            (None, true) => Named::IdOnly,
            (None, false) => Named::Malformed,
        })
    }
}

/// The `value` field: present as a string, present as something else, or missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RawValue<'a> {
    #[default]
    Missing,
    Text(Cow<'a, str>),
    NotAString,
}

/// One indicator object as ThreatQ sends it, reduced to the fields the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Indicator<'a> {
    pub id: Option<ItemId>,
    pub value: RawValue<'a>,
    pub kind: Named<'a>,
    pub status: Named<'a>,
    /// ThreatQ's score; `None` when missing or not a score.
    pub score: Option<Score>,
    /// ThreatQ's own expiry, UTC: `expires_at`, else `expires_calculated_at`; `None` when
    /// neither is a `YYYY-MM-DD HH:MM:SS` time.
    pub expires: Option<NaiveDateTime>,
    /// A key the screening reads (`value`, `type`, `status`, `type_id`, `status_id`) that
    /// the object gives more than once: the item is then invalid, as neither can be trusted.
    pub duplicate_key: Option<&'static str>,
}

/// One element of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Indicator(Indicator<'a>),
    NotAnObject,
}

/// ThreatQ's own type and status names, which nearly every item repeats: an owned item
/// refers to these rather than holding a copy.
const COMMON_NAMES: [&str; 8] = [
    "FQDN",
    "IP Address",
    "IPv6 Address",
    "Active",
    "Expired",
    "Indirect",
    "Review",
    "Whitelisted",
];

impl Item<'_> {
    /// The same item holding its own text, so it can outlive the body it was read from
    /// (a pull screens each page and drops it).
    pub fn into_owned(self) -> Item<'static> {
        fn own(text: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(text.into_owned())
        }
        fn named(n: Named<'_>) -> Named<'static> {
            match n {
                Named::Absent => Named::Absent,
                Named::Name(name) => Named::Name(
                    COMMON_NAMES
                        .iter()
                        .find(|common| **common == name)
                        .map_or_else(|| own(name), |common| Cow::Borrowed(*common)),
                ),
                Named::IdOnly => Named::IdOnly,
                Named::Malformed => Named::Malformed,
            }
        }
        match self {
            Item::NotAnObject => Item::NotAnObject,
            Item::Indicator(i) => Item::Indicator(Indicator {
                id: i.id,
                value: match i.value {
                    RawValue::Missing => RawValue::Missing,
                    RawValue::Text(text) => RawValue::Text(own(text)),
                    RawValue::NotAString => RawValue::NotAString,
                },
                kind: named(i.kind),
                status: named(i.status),
                score: i.score,
                expires: i.expires,
                duplicate_key: i.duplicate_key,
            }),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ItemSeed(KeyReading::Checked).deserialize(deserializer)
    }
}

/// How the keys of indicator objects are read.
///
/// An indicator object has some 25 keys, of which the service reads a handful, so reading
/// keys is most of the cost above merely skipping the JSON. `Raw` reads them as bytes and
/// checks them here, which is faster than having serde_json check each as text and refuses
/// the same keys, except one it cannot tell apart: a key whose escapes decode to a control
/// character (legal) from one holding that character raw (not JSON). `Raw` refuses both, so
/// a body it refuses is read again `Checked` before it is refused (see
/// [`super::read_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReading {
    Raw,
    Checked,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ItemSeed(pub(super) KeyReading);

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = Item<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ItemVisitor(self.0))
    }
}

/// A key read as raw bytes: refused when serde_json would refuse it as text (a raw control
/// character, invalid UTF-8), and also when its escapes decode to a control character.
struct RawKey<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for RawKey<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                check_key(v)?;
                Ok(RawKey(Cow::Borrowed(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                check_key(v)?;
                Ok(RawKey(Cow::Owned(v.to_vec())))
            }
        }
        deserializer.deserialize_bytes(V)
    }
}

/// Printable ASCII (nearly every key) passes at once; otherwise no control character and
/// valid UTF-8.
fn check_key<E: de::Error>(key: &[u8]) -> Result<(), E> {
    if key.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Ok(());
    }
    if key.iter().any(|b| *b < 0x20) {
        return Err(E::custom("control character in an object key"));
    }
    std::str::from_utf8(key)
        .map(drop)
        .map_err(|_| E::custom("object key is not valid UTF-8"))
}

/// The next key of an indicator object (or of its type or status), as bytes, read the
/// chosen way.
fn next_key<'de, A: MapAccess<'de>>(
    map: &mut A,
    reading: KeyReading,
) -> Result<Option<Cow<'de, [u8]>>, A::Error> {
    Ok(match reading {
        KeyReading::Raw => map.next_key::<RawKey<'de>>()?.map(|k| k.0),
        KeyReading::Checked => map.next_key::<Text<'de>>()?.map(|k| match k.0 {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        }),
    })
}

struct ItemVisitor(KeyReading);

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an indicator object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut item = Indicator::default();
        let mut type_id_seen = false;
        let mut status_id_seen = false;
        let mut indicator_id = None;
        let (mut expires_at, mut expires_calculated) = (None, None);
        let mut seen = SeenKeys::default();
        while let Some(key) = next_key(&mut map, self.0)? {
            seen.note(&key, &mut item.duplicate_key);
            match key.as_ref() {
                b"value" => item.value = map.next_value::<ValueField<'de>>()?.0,
                b"type" => item.kind = map.next_value_seed(NamedSeed(self.0))?,
                b"status" => item.status = map.next_value_seed(NamedSeed(self.0))?,
                b"score" => item.score = map.next_value::<ScoreField>()?.0,
                b"expires_at" => expires_at = map.next_value::<TimeField>()?.0,
                b"expires_calculated_at" => expires_calculated = map.next_value::<TimeField>()?.0,
                b"type_id" => {
                    map.next_value::<IgnoredAny>()?;
                    type_id_seen = true;
                }
                b"status_id" => {
                    map.next_value::<IgnoredAny>()?;
                    status_id_seen = true;
                }
                b"id" => item.id = map.next_value::<IdField>()?.0,
                b"indicator_id" => indicator_id = map.next_value::<IdField>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if item.id.is_none() {
            item.id = indicator_id;
        }
        item.expires = expires_at.or(expires_calculated);
        if type_id_seen {
            item.kind = item.kind.or(Named::IdOnly);
        }
        if status_id_seen {
            item.status = item.status.or(Named::IdOnly);
        }
        Ok(Item::Indicator(item))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Item::NotAnObject)
    }
}

/// Which of the keys the screening reads an object has given so far.
#[derive(Default)]
struct SeenKeys([bool; SCREENED_KEYS.len()]);

/// The keys a duplicate of makes an item invalid.
const SCREENED_KEYS: [&str; 5] = ["value", "type", "status", "type_id", "status_id"];

impl SeenKeys {
    /// Records `key`; the first screened key seen twice goes to `duplicate`.
    fn note(&mut self, key: &[u8], duplicate: &mut Option<&'static str>) {
        if let Some(at) = SCREENED_KEYS.iter().position(|k| k.as_bytes() == key) {
            if self.0[at] && duplicate.is_none() {
                *duplicate = Some(SCREENED_KEYS[at]);
            }
            self.0[at] = true;
        }
    }
}

struct ValueField<'a>(RawValue<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ValueField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::Text(Cow::Owned(v.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::Missing))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::NotAString))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::NotAString))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::NotAString))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ValueField(RawValue::NotAString))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ValueField(RawValue::NotAString))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ValueField(RawValue::NotAString))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A ThreatQ time, `YYYY-MM-DD HH:MM:SS` in UTC; anything else (null, another form) is none.
struct TimeField(Option<NaiveDateTime>);

impl<'de> Deserialize<'de> for TimeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TimeField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a time")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TimeField(
                    NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%d %H:%M:%S").ok(),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TimeField(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TimeField(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

struct IdField(Option<ItemId>);

impl<'de> Deserialize<'de> for IdField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(IdField(Some(ItemId::Number(v.into()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(IdField(Some(ItemId::Number(v.into()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(IdField(serde_json::Number::from_f64(v).map(ItemId::Number)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IdField(Some(ItemId::Text(v.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IdField(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IdField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdField(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdField(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}
