//! Environment variables that look like settings but are none. A misspelt name
//! (`DARKTRACE_CONCURENCY=4`) would otherwise leave the default in force without a word, so
//! the start names each one, with the setting it is nearest to.
//!
//! Only warned about, never refused: a host's environment holds variables of its own, and
//! Kubernetes adds `DARKTRACE_EXPORT_*` service links to every pod of a namespace.

use clap::CommandFactory;

use crate::cli::Cli;

/// Prefixes only this service's settings use: any other name under them is a mistake.
const OWN_PREFIXES: [&str; 2] = ["DARKTRACE_", "THREATQ_"];

/// Kubernetes' service links for a Service named `darktrace-export`.
const SERVICE_LINKS: &str = "DARKTRACE_EXPORT_";

/// Read outside the command line, so not in clap's list (the proxy variables in both the
/// cases they are read in).
const READ_ELSEWHERE: [&str; 10] = [
    "RUST_LOG",
    "NO_COLOR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// At most this many edits away from a setting, a name outside [`OWN_PREFIXES`] counts as
/// a misspelling of it (`DAYS_TO_EXPIRATON`); names this short are left alone.
const NEAR_EDITS: usize = 2;
const NEAR_FROM_LEN: usize = 8;

/// A variable that is not a setting, and the setting it most likely means.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnknownSetting {
    name: String,
    meant: Option<String>,
}

/// The settings' environment names, as the command line declares them.
fn known_settings() -> Vec<String> {
    let cli = Cli::command();
    let mut names: Vec<String> = std::iter::once(&cli)
        .chain(cli.get_subcommands())
        .flat_map(|command| command.get_arguments())
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .chain(READ_ELSEWHERE.map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The names among `vars` that look like a setting but are none.
fn unknown_settings<'a>(
    known: &[String],
    vars: impl IntoIterator<Item = &'a str>,
) -> Vec<UnknownSetting> {
    let mut unknown: Vec<UnknownSetting> = vars
        .into_iter()
        .filter(|name| !known.iter().any(|k| k == name) && !name.starts_with(SERVICE_LINKS))
        .filter_map(|name| {
            let nearest = nearest(known, name);
            let own = OWN_PREFIXES.iter().any(|p| name.starts_with(p));
            let near = nearest
                .as_ref()
                .is_some_and(|(_, edits)| name.len() >= NEAR_FROM_LEN && *edits <= NEAR_EDITS);
            (own || near).then(|| UnknownSetting {
                name: name.to_owned(),
                // Named only when plausible: as near as a misspelling, or (under the own
                // prefixes, where any name is reported) within a quarter of its letters.
                meant: nearest
                    .filter(|(_, edits)| *edits <= NEAR_EDITS.max(name.len() / 4))
                    .map(|(k, _)| k.to_owned()),
            })
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// The known name fewest edits away, compared in upper case (`source_name` is one edit
/// from nothing, but it is `SOURCE_NAME` misspelt).
fn nearest<'k>(known: &'k [String], name: &str) -> Option<(&'k str, usize)> {
    let upper = name.to_ascii_uppercase();
    known
        .iter()
        .map(|k| {
            let edits = strsim::levenshtein(k, &upper);
            // A case slip alone is one edit, never none: the name is still not the setting.
            (k.as_str(), if edits == 0 { 1 } else { edits })
        })
        .min_by_key(|(_, edits)| *edits)
}

/// Logs a warning for each variable of this process's environment that looks like a
/// setting but is none.
pub fn warn_about_unknown_settings() {
    let vars: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    for unknown in unknown_settings(&known_settings(), vars.iter().map(String::as_str)) {
        match &unknown.meant {
            Some(meant) => tracing::warn!(
                variable = %unknown.name,
                "{} is not a setting and is ignored; did you mean {meant}?",
                unknown.name
            ),
            None => tracing::warn!(
                variable = %unknown.name,
                "{} is not a setting and is ignored",
                unknown.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(vars: &[&str]) -> Vec<(String, Option<String>)> {
        unknown_settings(&known_settings(), vars.iter().copied())
            .into_iter()
            .map(|u| (u.name, u.meant))
            .collect()
    }

    #[test]
    fn the_known_names_are_the_command_lines_own() {
        let known = known_settings();
        for name in [
            "DARKTRACE_HOST",
            "DARKTRACE_CONCURRENCY",
            "SOURCE_NAME",
            "THREATQ_PASSWORD_FILE",
            "PULL_INTERVAL_SECS",
            "LISTEN_ADDR",
            "RUST_LOG",
        ] {
            assert!(known.iter().any(|k| k == name), "{name}");
        }
    }

    #[test]
    fn a_misspelt_setting_is_named_with_the_one_it_means() {
        assert_eq!(
            check(&["DARKTRACE_CONCURENCY", "DAYS_TO_EXPIRATON", "source_name"]),
            [
                (
                    "DARKTRACE_CONCURENCY".into(),
                    Some("DARKTRACE_CONCURRENCY".into())
                ),
                (
                    "DAYS_TO_EXPIRATON".into(),
                    Some("DAYS_TO_EXPIRATION".into())
                ),
                ("source_name".into(), Some("SOURCE_NAME".into())),
            ]
        );
        // Under the service's own prefixes, any unknown name, even far from every setting.
        assert_eq!(
            check(&["THREATQ_TENANT"]),
            [("THREATQ_TENANT".into(), None)]
        );
    }

    #[test]
    fn settings_the_hosts_variables_and_service_links_are_left_alone() {
        assert!(
            check(&[
                "DARKTRACE_HOST",
                "THREATQ_URL",
                "PATH",
                "HOSTNAME",
                "HOME",
                "KUBERNETES_SERVICE_HOST",
                "DARKTRACE_EXPORT_SERVICE_HOST",
                "DARKTRACE_EXPORT_PORT_8080_TCP_ADDR",
                "HTTPS_PROXY",
                "https_proxy",
                "no_proxy",
                "SSL_CERT_FILE",
                "_RJEM_MALLOC_CONF",
            ])
            .is_empty()
        );
    }
}
