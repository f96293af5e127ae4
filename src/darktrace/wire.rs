//! The bytes of Darktrace's `/intelfeed` requests and the shapes of its answers.
//!
//! Bodies are compact, ASCII-only JSON with keys in a fixed order, written once into one
//! buffer: the same buffer is signed and sent, so the signature always covers what goes out.

use serde::Deserialize;

use crate::screen::WireValue;

/// One add call: entries that share source, expiry, description, strength and the
/// hostname and Autonomous Response flags.
/// Entries are [`WireValue`]s, which only screening makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCall<'a> {
    pub entries: Vec<&'a WireValue>,
    pub source: &'a str,
    /// UTC `YYYY-MM-DDTHH:MM:SS`; `None` sends no expiry.
    pub expiry: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Treat every entry as an exact hostname; applies to the whole call.
    pub hostname: bool,
    /// Darktrace's `iagn`: Autonomous Response may act when an entry is seen; whole call.
    pub iagn: bool,
    /// Darktrace's strength (0 to 100) of every entry of the call; `None` leaves it out.
    pub strength: Option<u8>,
}

impl<'a> AddCall<'a> {
    /// A call of `entries` to `source` with nothing else set: no expiry, description or flag.
    pub fn plain(entries: Vec<&'a WireValue>, source: &'a str) -> Self {
        AddCall {
            entries,
            source,
            expiry: None,
            description: None,
            hostname: false,
            iagn: false,
            strength: None,
        }
    }

    /// `{"addlist":"a,b","description":"…","expiry":"…","hostname":true,"iagn":true,"source":"…","strength":70}`,
    /// leaving out what is not set (a flag is left out rather than sent as `false`).
    pub fn to_body(&self) -> Vec<u8> {
        let list_len: usize = self.entries.iter().map(|e| e.as_str().len() + 1).sum();
        let mut out = Vec::with_capacity(list_len + 128);
        out.extend_from_slice(b"{\"addlist\":\"");
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            escape_into(&mut out, entry.as_str());
        }
        out.push(b'"');
        if let Some(description) = self.description {
            push_field(&mut out, "description", description);
        }
        if let Some(expiry) = self.expiry {
            push_field(&mut out, "expiry", expiry);
        }
        if self.hostname {
            out.extend_from_slice(b",\"hostname\":true");
        }
        if self.iagn {
            out.extend_from_slice(b",\"iagn\":true");
        }
        push_field(&mut out, "source", self.source);
        if let Some(strength) = self.strength {
            out.extend_from_slice(format!(",\"strength\":{strength}").as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// An entry as Darktrace itself lists it under a source. Only Darktrace's answers make one
/// (the field is private to this module), and removals name only these: the service takes
/// out what Darktrace holds, in its own spelling, never a value of its own making.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct HeldName(String);

impl HeldName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name taken as listed by Darktrace, for unit tests of the code that uses the list.
    #[cfg(test)]
    pub(crate) fn listed(name: &str) -> HeldName {
        HeldName(name.to_owned())
    }
}

/// `{"removeentry":"…","source":"…"}`: one entry, under one source only.
pub fn remove_body(entry: &HeldName, source: &str) -> Vec<u8> {
    let entry = entry.as_str();
    let mut out = Vec::with_capacity(entry.len() + source.len() + 32);
    out.extend_from_slice(b"{\"removeentry\":\"");
    escape_into(&mut out, entry);
    out.push(b'"');
    push_field(&mut out, "source", source);
    out.push(b'}');
    out
}

fn push_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":\"");
    escape_into(out, value);
    out.push(b'"');
}

/// Writes `s` as the inside of a JSON string, ASCII only: non-ASCII as `\uXXXX` (surrogate
/// pairs above the BMP), control characters escaped.
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[((*unit >> shift) & 0xf) as usize]);
                    }
                }
            }
        }
    }
}

/// Darktrace's answer to an add (or remove) call. Older appliances leave out the lists, or
/// everything but `response`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AddAnswer {
    pub response: Option<String>,
    pub added: Option<u64>,
    pub updated: Option<u64>,
    #[serde(rename = "addedList")]
    pub added_list: Option<Vec<String>>,
    #[serde(rename = "updatedList")]
    pub updated_list: Option<Vec<String>>,
}

impl AddAnswer {
    pub fn is_success(&self) -> bool {
        self.response
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case("success"))
    }
}

/// One entry of `GET /intelfeed?fulldetails=true`. Field types vary between versions, so
/// only the name is relied upon; the rest is read leniently (`pipeline::changes`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EntryDetails {
    pub name: HeldName,
    #[serde(default)]
    pub description: Option<serde_json::Value>,
    #[serde(default)]
    pub expiry: Option<serde_json::Value>,
    #[serde(default)]
    pub hostname: Option<serde_json::Value>,
    #[serde(default)]
    pub strength: Option<serde_json::Value>,
    #[serde(default)]
    pub iagn: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_body_is_the_documented_compact_form() {
        let (evil, ip) = (
            WireValue::unchecked("evil.example"),
            WireValue::unchecked("198.51.100.7"),
        );
        let call = AddCall {
            entries: vec![&evil, &ip],
            source: "ThreatQ",
            expiry: Some("2025-02-14T12:30:00"),
            description: None,
            hostname: false,
            iagn: false,
            strength: None,
        };
        assert_eq!(
            String::from_utf8(call.to_body()).unwrap(),
            r#"{"addlist":"evil.example,198.51.100.7","expiry":"2025-02-14T12:30:00","source":"ThreatQ"}"#
        );
    }

    #[test]
    fn add_body_leaves_out_unset_fields_and_escapes_to_ascii() {
        let a = WireValue::unchecked("a.example");
        let call = AddCall {
            entries: vec![&a],
            source: "Intel \"Ü\" 🦀",
            expiry: None,
            description: Some("line\none"),
            hostname: true,
            iagn: true,
            strength: Some(70),
        };
        let body = String::from_utf8(call.to_body()).unwrap();
        assert!(body.is_ascii());
        assert_eq!(
            body,
            r#"{"addlist":"a.example","description":"line\none","hostname":true,"iagn":true,"source":"Intel \"\u00dc\" \ud83e\udd80","strength":70}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["source"], "Intel \"Ü\" 🦀");
    }

    #[test]
    fn remove_body_names_entry_and_source() {
        assert_eq!(
            String::from_utf8(remove_body(&HeldName::listed("a.example"), "ThreatQ")).unwrap(),
            r#"{"removeentry":"a.example","source":"ThreatQ"}"#
        );
    }

    #[test]
    fn answers_with_and_without_lists_parse() {
        let full: AddAnswer = serde_json::from_str(
            r#"{"response":"SUCCESS","added":2,"updated":1,"addedList":["a","b"],"updatedList":["a"]}"#,
        )
        .unwrap();
        assert!(full.is_success());
        assert_eq!(full.updated_list.unwrap(), vec!["a"]);
        let bare: AddAnswer = serde_json::from_str(r#"{"response":"SUCCESS"}"#).unwrap();
        assert!(bare.is_success() && bare.added_list.is_none());
    }
}
