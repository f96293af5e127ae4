//! The appliance's request check: credentials, date window and signature over the exact
//! bytes received, answered with the appliance's own status codes and bodies.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Darktrace allows about this much clock skew either way.
pub const DATE_WINDOW_SECS: i64 = 30 * 60;

/// Why a request was refused before it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials: 302 to `/login`.
    NotLoggedIn,
    /// 400 `API SIGNATURE ERROR`.
    Signature,
    /// 400 `API DATE ERROR`.
    Date,
}

/// One API token pair the simulator accepts.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub public: String,
    pub private: String,
    /// Has the "Edit Domains" permission; without it, changes get 302 to `/403`.
    pub can_edit: bool,
}

/// The parts of a request the check needs.
pub struct SignedRequest<'a> {
    pub token: Option<&'a str>,
    pub date: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub path: &'a str,
    /// The query (GET) or body (POST) bytes, exactly as received.
    pub signed_part: &'a [u8],
}

/// Parses both documented date forms; `allow_compact` = also `YYYYMMDDTHHMMSS`.
pub fn parse_date(text: &str, allow_compact: bool) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            allow_compact
                .then(|| NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S").ok())
                .flatten()
        })
}

/// Checks a request; returns the token pair that signed it.
pub fn verify<'t>(
    request: &SignedRequest<'_>,
    tokens: &'t [TokenPair],
    now: DateTime<Utc>,
    allow_compact_date: bool,
) -> Result<&'t TokenPair, Refusal> {
    let (Some(token), Some(date), Some(signature)) =
        (request.token, request.date, request.signature)
    else {
        return Err(Refusal::NotLoggedIn);
    };
    let pair = tokens
        .iter()
        .find(|p| p.public.as_bytes().ct_eq(token.as_bytes()).into())
        .ok_or(Refusal::Signature)?;
    let when = parse_date(date, allow_compact_date).ok_or(Refusal::Date)?;
    let skew = (now.naive_utc() - when).num_seconds().abs();
    if skew > DATE_WINDOW_SECS {
        return Err(Refusal::Date);
    }
    let expected = expected_signature(
        pair.private.as_bytes(),
        &pair.public,
        request.path,
        request.signed_part,
        date,
    );
    if expected.as_bytes().ct_eq(signature.as_bytes()).into() {
        Ok(pair)
    } else {
        Err(Refusal::Signature)
    }
}

/// The signature the appliance expects, from the documented recipe: hex HMAC-SHA1, keyed with
/// the private token, of `path[?part]\npublic\ndate`. Written here on its own, not with the
/// client's signer, so that a signing bug in the client fails against the simulator.
fn expected_signature(private: &[u8], public: &str, path: &str, part: &[u8], date: &str) -> String {
    let mut message = path.as_bytes().to_vec();
    if !part.is_empty() {
        message.push(b'?');
        message.extend_from_slice(part);
    }
    message.extend_from_slice(format!("\n{public}\n{date}").as_bytes());
    let mut mac = Hmac::<Sha1>::new_from_slice(private).expect("HMAC takes a key of any length");
    mac.update(&message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tokens() -> Vec<TokenPair> {
        vec![TokenPair {
            public: "PUBTOKEN".into(),
            private: "PRIVTOKEN".into(),
            can_edit: true,
        }]
    }

    fn request<'a>(date: &'a str, signature: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            token: Some("PUBTOKEN"),
            date: Some(date),
            signature: Some(signature),
            path: "/intelfeed",
            signed_part: b"sources=true",
        }
    }

    #[test]
    fn accepts_the_reference_vector_within_the_window_only() {
        let at = Utc.with_ymd_and_hms(2025, 1, 15, 12, 30, 0).unwrap();
        let sig = "ed923a28ff1ebcd3b14991be4b3f2c89d8811083";
        let t = tokens();
        assert!(verify(&request("2025-01-15 12:30:00", sig), &t, at, true).is_ok());
        let late = at + chrono::Duration::minutes(31);
        assert_eq!(
            verify(&request("2025-01-15 12:30:00", sig), &t, late, true).unwrap_err(),
            Refusal::Date
        );
        assert_eq!(
            verify(&request("2025-01-15 12:30:00", "00"), &t, at, true).unwrap_err(),
            Refusal::Signature
        );
    }

    /// Known answers from REFERENCE.md, computed with darktrace-sdk's own signer.
    #[test]
    fn the_expected_signature_matches_the_reference_vectors() {
        let vectors: [(&str, &[u8], &str); 4] = [
            ("/intelfeed", b"", "6e4e5d53f781b9de498fe155274a875e5af4323b"),
            ("/intelfeed", b"sources=true", "ed923a28ff1ebcd3b14991be4b3f2c89d8811083"),
            (
                "/intelfeed",
                b"fulldetails=true&source=ThreatQ",
                "23c6a0ee871a18178f1d5cc89dbd5632bb50e194",
            ),
            (
                "/intelfeed",
                br#"{"addlist":"evil.example,198.51.100.7","expiry":"2025-02-14T12:30:00","source":"ThreatQ"}"#,
                "e5183dca2aabaa25b86412a338e179c4b69a1e5b",
            ),
        ];
        for (path, part, expected) in vectors {
            let got =
                expected_signature(b"PRIVTOKEN", "PUBTOKEN", path, part, "2025-01-15 12:30:00");
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(part));
        }
    }

    #[test]
    fn compact_date_can_be_refused() {
        assert!(parse_date("20250115T123000", true).is_some());
        assert!(parse_date("20250115T123000", false).is_none());
    }

    #[test]
    fn missing_credentials_are_not_logged_in() {
        let r = SignedRequest {
            token: None,
            date: None,
            signature: None,
            path: "/intelfeed",
            signed_part: b"",
        };
        assert_eq!(
            verify(&r, &tokens(), Utc::now(), true).unwrap_err(),
            Refusal::NotLoggedIn
        );
    }
}
