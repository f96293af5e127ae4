//! An indicator's ThreatQ score, read leniently: a number, a numeric string (some ThreatQ
//! answers quote it), or an object whose `manual_score` (set by an analyst) wins over its
//! `generated_score`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A ThreatQ score (0 to 10) in tenths, so `7.5` is `75`: whole numbers compare exactly,
/// and a score x 10 is Darktrace's strength as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(u16);

impl Score {
    /// The score of a whole number of points.
    pub fn points(points: u8) -> Score {
        Score(u16::from(points) * 10)
    }

    /// The score read from a number; `None` for a negative or non-finite one. Above 10 is
    /// taken as 10, the top of ThreatQ's scale.
    pub fn from_f64(value: f64) -> Option<Score> {
        (value.is_finite() && value >= 0.0).then(|| Score((value.min(10.0) * 10.0).round() as u16))
    }

    /// The score in tenths of a point, which is also Darktrace's strength (0 to 100).
    pub fn tenths(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(10) {
            write!(f, "{}", self.0 / 10)
        } else {
            write!(f, "{}.{}", self.0 / 10, self.0 % 10)
        }
    }
}

/// The `score` field: `None` when missing, `null`, or not a score at all.
pub(super) struct ScoreField(pub(super) Option<Score>);

impl<'de> Deserialize<'de> for ScoreField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScoreVisitor { nested: false })
    }
}

/// Reads a score; inside an object (`nested`) another object is not a score.
struct ScoreVisitor {
    nested: bool,
}

impl<'de> Visitor<'de> for ScoreVisitor {
    type Value = ScoreField;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a score")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(ScoreField(Score::from_f64(v as f64)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(ScoreField(Score::from_f64(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(ScoreField(Score::from_f64(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(ScoreField(
            v.trim().parse::<f64>().ok().and_then(Score::from_f64),
        ))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ScoreField(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ScoreField(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ScoreField(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut manual, mut generated) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "manual_score" if !self.nested => {
                    manual = map.next_value::<NestedScore>()?.0;
                }
                "generated_score" if !self.nested => {
                    generated = map.next_value::<NestedScore>()?.0;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ScoreField(manual.or(generated)))
    }
}

struct NestedScore(Option<Score>);

impl<'de> Deserialize<'de> for NestedScore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScoreVisitor { nested: true })
            .map(|s| NestedScore(s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Option<Score> {
        serde_json::from_str::<ScoreField>(json).unwrap().0
    }

    #[test]
    fn numbers_strings_and_objects_with_manual_winning() {
        assert_eq!(read("7"), Some(Score::points(7)));
        assert_eq!(read("\" 7 \""), Some(Score::points(7)));
        assert_eq!(read("7.5").map(Score::tenths), Some(75));
        assert_eq!(read("\"7.5\"").map(Score::tenths), Some(75));
        assert_eq!(
            read(r#"{"generated_score": 3, "manual_score": "9"}"#),
            Some(Score::points(9))
        );
        assert_eq!(
            read(r#"{"generated_score": "3", "manual_score": null}"#),
            Some(Score::points(3))
        );
        assert_eq!(read("25"), Some(Score::points(10)));
        for none in [
            "null",
            "-1",
            "\"high\"",
            "true",
            "[7]",
            "{}",
            r#"{"manual_score": {"x": 1}}"#,
        ] {
            assert_eq!(read(none), None, "{none}");
        }
    }

    #[test]
    fn shown_in_points() {
        assert_eq!(Score::points(7).to_string(), "7");
        assert_eq!(Score::from_f64(7.5).unwrap().to_string(), "7.5");
    }
}
