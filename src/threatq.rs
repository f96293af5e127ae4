//! The lenient ThreatQ object model: only what the service reads, borrowed from the body.
//!
//! ThreatQ returns `type` and `status` as objects, strings or bare ids depending on the
//! endpoint, and indicators carry many fields we never use. Items are read straight into the
//! few fields we need (everything else is skipped with `IgnoredAny`), and an item that is not
//! an object never fails the batch: it becomes [`Item::NotAnObject`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

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
        while let Some(key) = next_key(&mut map, self.0)? {
            match key.as_ref() {
                b"name" => {
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
/// [`crate::http::request::read_items`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReading {
    Raw,
    Checked,
}

#[derive(Debug, Clone, Copy)]
struct ItemSeed(KeyReading);

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
        let mut seen = SeenKeys::default();
        while let Some(key) = next_key(&mut map, self.0)? {
            seen.note(&key, &mut item.duplicate_key);
            match key.as_ref() {
                b"value" => item.value = map.next_value::<ValueField<'de>>()?.0,
                b"type" => item.kind = map.next_value_seed(NamedSeed(self.0))?,
                b"status" => item.status = map.next_value_seed(NamedSeed(self.0))?,
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

/// The per-request overrides, by the name they have in a body and in the query.
pub const OVERRIDE_KEYS: [&str; 5] = [
    "source",
    "days_to_expiration",
    "description",
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

/// An override's value, refused in words a person reads (`true or false`), not in
/// Rust's type names.
macro_rules! override_field {
    ($name:ident, $ty:ty, $expecting:literal, $($visit:ident($arg:ty) => $conv:expr),+) => {
        struct $name(Option<$ty>);

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
        deserializer.deserialize_seq(self)
    }
}

impl<'de, 's, S: ItemSink<'de>> Visitor<'de> for ItemsVisitor<'s, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of indicators")
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
        for body in [r#"{"total": 3}"#, r#""text""#, "42", r#"{"data": 5}"#] {
            let err = serde_json::from_str::<Batch>(body).unwrap_err();
            assert!(err.is_data(), "{body}: {err}");
        }
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
