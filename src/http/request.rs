//! What a batch request says besides its body: its content type, and its settings (the
//! configured defaults, the body's overrides, then the query's), each refusal a [`Problem`]
//! that says what to fix. The body itself is read by [`crate::threatq::read_batch`].

use axum::http::{HeaderMap, header};
use chrono::Utc;

use crate::config::{
    Config, MAX_DAYS_TO_EXPIRATION, check_description, check_source_name, parse_bool,
};
use crate::http::problem::Problem;
use crate::pipeline::{RequestSettings, expiry_after};
use crate::threatq::{BodyOverrides, OVERRIDE_KEYS, near_override};

/// Refuses bodies that are not declared JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else if declared.is_empty() {
        Err(Problem::unsupported_media_type(
            "no Content-Type; send Content-Type: application/json",
        ))
    } else {
        Err(Problem::unsupported_media_type(format!(
            "Content-Type is {declared}; send application/json"
        )))
    }
}

/// Refuses a bad query parameter before the body is read: a query parameter beats the
/// body, so one that is wrong is wrong whatever the body holds, and a typo should not cost a
/// large batch its whole reading first.
pub fn check_query(config: &Config, query: Option<&str>) -> Result<(), Problem> {
    settings(config, &BodyOverrides::default(), query).map(drop)
}

/// The request's settings: defaults, then body overrides, then query parameters.
pub fn settings(
    config: &Config,
    body: &BodyOverrides,
    query: Option<&str>,
) -> Result<RequestSettings, Problem> {
    let mut merged = body.clone();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let bad = |why: String| Problem::bad_parameter(format!("query parameter {key}: {why}"));
        // `dry_run=true&dry_run=false` has no meaning a caller can rely on.
        if seen.iter().any(|k| *k == key) {
            return Err(Problem::bad_parameter(format!(
                "query parameter {key} is given twice; give it once"
            )));
        }
        seen.push(key.to_string());
        match key.as_ref() {
            "source" => merged.source = Some(value.into_owned()),
            "description" => merged.description = Some(value.into_owned()),
            "days_to_expiration" => {
                merged.days_to_expiration = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("'{value}' is not a whole number of days")))?,
                )
            }
            "autonomous_response" => {
                merged.autonomous_response =
                    Some(parse_bool("autonomous_response", &value).map_err(|e| bad(e.problem))?)
            }
            "dry_run" => {
                merged.dry_run = Some(parse_bool("dry_run", &value).map_err(|e| bad(e.problem))?)
            }
            "force" => {
                merged.force = Some(parse_bool("force", &value).map_err(|e| bad(e.problem))?)
            }
            other => {
                let meant = near_override(other)
                    .map(|meant| format!("did you mean '{meant}'? "))
                    .unwrap_or_default();
                return Err(Problem::bad_parameter(format!(
                    "unknown query parameter '{other}'; {meant}known: {}",
                    OVERRIDE_KEYS.join(", ")
                )));
            }
        }
    }

    let source = match merged.source.as_deref() {
        Some(s) => {
            check_source_name(s).map_err(|p| Problem::bad_parameter(format!("source {p}")))?
        }
        None => config.defaults.source.clone(),
    };
    let days = match merged.days_to_expiration {
        Some(days) => u32::try_from(days)
            .ok()
            .filter(|d| *d <= MAX_DAYS_TO_EXPIRATION)
            .ok_or_else(|| {
                Problem::bad_parameter(format!(
                    "days_to_expiration {days} is out of range; give 0 to {MAX_DAYS_TO_EXPIRATION}"
                ))
            })?,
        None => config.defaults.days_to_expiration,
    };
    let description = match merged.description.as_deref() {
        Some(d) => Some(
            check_description(d).map_err(|p| Problem::bad_parameter(format!("description {p}")))?,
        ),
        None => config.defaults.description.clone(),
    };
    Ok(RequestSettings {
        source,
        expiry: expiry_after(days, Utc::now()),
        description,
        iagn: merged
            .autonomous_response
            .unwrap_or(config.defaults.autonomous_response),
        strength: config.defaults.strength,
        dry_run: merged.dry_run.unwrap_or(false),
        force: merged.force.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_beats_body_and_unknown_parameters_are_refused() {
        let config = Config::new(crate::config::DarktraceConfig::new(
            "https://dt.example".parse().unwrap(),
            "p",
            "s",
        ));
        let body = BodyOverrides {
            source: Some("FromBody".into()),
            dry_run: Some(false),
            ..BodyOverrides::default()
        };
        let s = settings(&config, &body, Some("dry_run=true&source=FromQuery")).unwrap();
        assert_eq!(s.source, "FromQuery");
        assert!(s.dry_run);
        assert_eq!(
            settings(&config, &body, Some("dryrun=true"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            settings(&config, &body, Some(&format!("source={}", "x".repeat(64))))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            settings(&config, &body, Some("days_to_expiration=99999"))
                .unwrap_err()
                .status,
            400
        );
        for days in ["-1", "3651"] {
            let p =
                settings(&config, &body, Some(&format!("days_to_expiration={days}"))).unwrap_err();
            assert_eq!(p.status, 400);
            assert!(p.detail.contains("give 0 to 3650"), "{}", p.detail);
        }
        let negative = BodyOverrides {
            days_to_expiration: Some(-5),
            ..BodyOverrides::default()
        };
        assert_eq!(settings(&config, &negative, None).unwrap_err().status, 400);
    }
}
