//! The screening rules, case by case, through the public `Screener`: for every case the
//! result's outcome, reason and exported value, and a word of the detail that says why.
//!
//! An expectation is either `=value` (valid: would be sent as exactly `value`) or
//! `reason: words` (not sent: `reason`, with `words` somewhere in the detail).

use darktrace_export::config::ScreenConfig;
use darktrace_export::indicator::{Fqdn, IndicatorType};
use darktrace_export::outcome::{Reason, Verdict};
use darktrace_export::screen::Screener;
use darktrace_export::threatq::Batch;
use serde_json::{Value, json};

/// The settings the cases are judged under, and the Darktrace host.
struct Setup {
    config: ScreenConfig,
    darktrace_host: Option<&'static str>,
}

/// All three types exported, the default excluded statuses, one protected domain, two
/// protected networks, and a Darktrace host given by name.
fn standard() -> Setup {
    Setup {
        config: ScreenConfig {
            export_types: IndicatorType::ALL.to_vec(),
            protected_domains: vec![Fqdn::parse("corp.example").unwrap()],
            protected_networks: vec![
                "203.0.113.128/25".parse().unwrap(),
                "2001:db8:ffff::/48".parse().unwrap(),
            ],
            ..ScreenConfig::default()
        },
        darktrace_host: Some("dt.soc.example"),
    }
}

fn with(change: impl FnOnce(&mut Setup)) -> Setup {
    let mut setup = standard();
    change(&mut setup);
    setup
}

/// Judges one item alone and returns its result as the API would show it.
fn judge(setup: &Setup, item: &Value) -> Value {
    judge_batch(setup, std::slice::from_ref(item)).remove(0)
}

fn judge_batch(setup: &Setup, items: &[Value]) -> Vec<Value> {
    let body = Value::Array(items.to_vec()).to_string();
    let batch: Batch = serde_json::from_str(&body).unwrap();
    let screener = Screener::new(&setup.config, setup.darktrace_host);
    let pending = Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace");
    let screened = screener.screen(batch.items, &pending);
    assert_eq!(screened.results.len(), items.len());
    screened
        .results
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// The outcome each reason must come with, written out here so a wrong pairing fails.
fn outcome_of(reason: &str) -> &'static str {
    match reason {
        "dry_run" => "would_export",
        "unsupported_type" | "unknown_type" | "excluded_status" | "protected" | "duplicate" => {
            "skipped"
        }
        "missing_value" | "not_an_object" | "invalid_fqdn" | "invalid_ipv4" | "invalid_ipv6" => {
            "invalid"
        }
        other => panic!("no screening reason {other}"),
    }
}

/// Compares a result with an expectation; the mismatch, if any, as a line for the report.
fn mismatch(result: &Value, expected: &str) -> Option<String> {
    let (reason, exported, words) = match expected.strip_prefix('=') {
        Some(value) => ("dry_run", json!(value), ""),
        None => {
            let (reason, words) = expected.split_once(':').unwrap_or((expected, ""));
            (reason, Value::Null, words.trim())
        }
    };
    let detail = result["detail"].as_str().unwrap_or("");
    let ok = result["outcome"] == outcome_of(reason)
        && result["reason"] == reason
        && result.get("exported_value").unwrap_or(&Value::Null) == &exported
        && !detail.is_empty()
        && detail.to_lowercase().contains(&words.to_lowercase());
    (!ok).then(|| {
        format!(
            "expected {expected:?}, got {} / {} / {} / {detail:?}",
            result["outcome"],
            result["reason"],
            result.get("exported_value").unwrap_or(&Value::Null)
        )
    })
}

/// Runs every case and reports all the ones that fail at once.
fn check(setup: &Setup, cases: impl IntoIterator<Item = (Value, &'static str)>) -> usize {
    let mut count = 0;
    let failures: Vec<String> = cases
        .into_iter()
        .inspect(|_| count += 1)
        .filter_map(|(item, expected)| {
            mismatch(&judge(setup, &item), expected).map(|m| format!("{item}: {m}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

/// Cases of one type with no status: `(value, expected)`.
fn typed(kind: &'static str, rows: &[(&'static str, &'static str)]) -> Vec<(Value, &'static str)> {
    rows.iter()
        .map(|(value, expected)| (json!({"type": kind, "value": value}), *expected))
        .collect()
}

/// Whole items written as JSON: `(item, expected)`.
fn raw(rows: &[(&'static str, &'static str)]) -> Vec<(Value, &'static str)> {
    rows.iter()
        .map(|(item, expected)| (serde_json::from_str(item).unwrap(), *expected))
        .collect()
}

#[rustfmt::skip]
const FQDN_VALID: &[(&str, &str)] = &[
    ("evil.example",            "=evil.example"),
    ("Evil.Example.",           "=evil.example"),
    ("  c2.darkstar.example  ", "=c2.darkstar.example"),
    ("\tTabbed.Example\n",      "=tabbed.example"),
    ("WWW.EVIL-SITE.EXAMPLE",   "=www.evil-site.example"),
    ("bücher.example",          "=xn--bcher-kva.example"),
    ("Bücher.Example.",         "=xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example",   "=xn--bcher-kva.example"),
    ("xn--80ak6aa92e.example",  "=xn--80ak6aa92e.example"),
    ("пример.example",          "=xn--e1afmkfd.example"),
    ("faß.de",                  "=xn--fa-hia.de"),
    ("ａｂｃ.example",             "=abc.example"),
    ("evil。example",            "=evil.example"),
    ("_dmarc.evil.example",     "=_dmarc.evil.example"),
    ("under_score.example",     "=under_score.example"),
    ("a-b.example",             "=a-b.example"),
    ("ab--cd.example",          "=ab--cd.example"),
    ("1password.example",       "=1password.example"),
    ("123.example",             "=123.example"),
    ("example.x1",              "=example.x1"),
    ("a.b.c.d.e.example",       "=a.b.c.d.e.example"),
    ("example.co.uk",           "=example.co.uk"),
    ("evil.github.io",          "=evil.github.io"),
    ("hxxphotos.example",       "=hxxphotos.example"),
    ("cdn.0xbad.example",       "=cdn.0xbad.example"),
    ("local.example",           "=local.example"),
    ("arpa.example",            "=arpa.example"),
    ("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk.example", "=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk.example"),
];

#[test]
fn fqdns_are_trimmed_lowercased_and_mapped_to_ascii() {
    check(&standard(), typed("FQDN", FQDN_VALID));
}

#[rustfmt::skip]
const FQDN_INVALID: &[(&str, &str)] = &[
    ("*.evil.example",                  "invalid_fqdn: wildcard"),
    ("evil.*",                          "invalid_fqdn: wildcard"),
    ("http://evil.example",             "invalid_fqdn: scheme"),
    ("https://evil.example/path",       "invalid_fqdn: scheme"),
    ("evil.example/path",               "invalid_fqdn: path"),
    ("evil.example\\share",             "invalid_fqdn: path"),
    ("evil.example:8080/x",             "invalid_fqdn: path"),
    ("evil.example:443",                "invalid_fqdn: port"),
    ("evil.example:",                   "invalid_fqdn: port"),
    ("user@evil.example",               "invalid_fqdn: user information"),
    ("evil.example?x=1",                "invalid_fqdn: query"),
    ("evil.example#top",                "invalid_fqdn: fragment"),
    ("evil .example",                   "invalid_fqdn: whitespace"),
    ("evil\u{a0}x.example",             "invalid_fqdn: whitespace"),
    ("evil\u{3000}x.example",           "invalid_fqdn: whitespace"),
    ("evil\u{0}.example",               "invalid_fqdn: control"),
    ("evil\u{7f}.example",              "invalid_fqdn: control"),
    ("evil.example,bad.example",        "invalid_fqdn: comma"),
    ("evil.example\nbad.example",       "invalid_fqdn: line break"),
    ("evil.example\rbad.example",       "invalid_fqdn: line break"),
    ("evil.example\u{2028}bad.example", "invalid_fqdn: line break"),
    ("evil.example;bad.example",        "invalid_fqdn: semicolon"),
    ("evil[.]example",                  "invalid_fqdn: defanged"),
    ("EVIL[.]EXAMPLE",                  "invalid_fqdn: defanged"),
    ("evil(.)example",                  "invalid_fqdn: defanged"),
    ("evil[dot]example",                "invalid_fqdn: defanged"),
    ("evil{.}example",                  "invalid_fqdn: defanged"),
    ("hxxp://evil.example",             "invalid_fqdn: hxxp"),
    ("hXXps://evil.example",            "invalid_fqdn: hxxp"),
    ("hxxp[:]//evil.example",           "invalid_fqdn: hxxp"),
    ("one-label",                       "invalid_fqdn: single label"),
    ("localhost",                       "invalid_fqdn: single label"),
    ("a..example",                      "invalid_fqdn: empty label"),
    (".evil.example",                   "invalid_fqdn: empty label"),
    ("evil.example..",                  "invalid_fqdn: empty label"),
    (".",                               "invalid_fqdn: only a dot"),
    ("-evil.example",                   "invalid_fqdn: hyphen"),
    ("evil-.example",                   "invalid_fqdn: hyphen"),
    ("evil.-example",                   "invalid_fqdn: hyphen"),
    ("evil.example-",                   "invalid_fqdn: hyphen"),
    ("-bücher.example",                 "invalid_fqdn: hyphen"),
    ("bücher-.example",                 "invalid_fqdn: hyphen"),
    ("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl.example", "invalid_fqdn: label of 64 characters"),
    ("xn--zz.example",                  "invalid_fqdn: IDNA"),
    ("xn--.example",                    "invalid_fqdn: IDNA"),
    ("evil.xn--a",                      "invalid_fqdn: IDNA"),
    ("XN--ZZ.EXAMPLE",                  "invalid_fqdn: IDNA"),
    ("\u{301}evil.example",             "invalid_fqdn: IDNA"),
    ("evil%2e.example",                 "invalid_fqdn: holds '%'"),
    ("evil$.example",                   "invalid_fqdn: holds '$'"),
    ("<evil.example>",                  "invalid_fqdn: holds '<'"),
    ("1.2.3.4",                         "invalid_fqdn: use type IP Address"),
    ("198.51.100.7.",                   "invalid_fqdn: use type IP Address"),
    ("１.２.３.４",                         "invalid_fqdn: use type IP Address"),
    ("2001:db8::1",                     "invalid_fqdn: use type IPv6 Address"),
    ("[2001:db8::1]",                   "invalid_fqdn: use type IPv6 Address"),
    ("1.2.3.0x4",                       "invalid_fqdn: numeric label"),
    ("evil.123",                        "invalid_fqdn: numeric label"),
    ("example.0x1f",                    "invalid_fqdn: numeric label"),
];

#[test]
fn fqdns_that_are_not_bare_names_are_invalid_and_say_why() {
    check(&standard(), typed("FQDN", FQDN_INVALID));
}

#[test]
fn fqdn_length_limits_are_253_characters_and_63_per_label() {
    let label = "a".repeat(63);
    let longest = format!("{label}.{label}.{label}.{}.example", "b".repeat(53));
    assert_eq!(longest.len(), 253);
    let too_long = format!("c{longest}");
    let setup = standard();
    let as_fqdn = |v: &str| json!({"type": "FQDN", "value": v});
    let longest_with_dot = format!("{longest}.");
    for (value, expected) in [
        (longest.as_str(), Some(longest.as_str())),
        (longest_with_dot.as_str(), Some(longest.as_str())),
        (too_long.as_str(), None),
    ] {
        let result = judge(&setup, &as_fqdn(value));
        match expected {
            Some(sent) => assert_eq!(result["exported_value"], sent),
            None => {
                assert_eq!(result["reason"], "invalid_fqdn");
                let detail = result["detail"].as_str().unwrap();
                assert!(detail.contains("254 characters"), "{detail}");
            }
        }
    }
}

#[rustfmt::skip]
const FQDN_PROTECTED: &[(&str, &str)] = &[
    ("co.uk",                     "protected: public suffix"),
    ("CO.UK.",                    "protected: public suffix"),
    ("github.io",                 "protected: public suffix"),
    ("s3.amazonaws.com",          "protected: public suffix"),
    ("com.au",                    "protected: public suffix"),
    ("公司.cn",                     "protected: public suffix"),
    ("printer.local",             "protected: special-use domain 'local'"),
    ("a.b.localhost",             "protected: special-use domain 'localhost'"),
    ("db.internal",               "protected: special-use domain 'internal'"),
    ("host.home.arpa",            "protected: special-use domain 'arpa'"),
    ("home.arpa",                 "protected: special-use domain 'arpa'"),
    ("in-addr.arpa",              "protected: special-use domain 'arpa'"),
    ("1.0.0.10.in-addr.arpa",     "protected: special-use domain 'arpa'"),
    ("corp.example",              "protected: protected domain corp.example"),
    ("mail.corp.example",         "protected: PROTECTED_DOMAINS"),
    ("Deep.Mail.Corp.Example.",   "protected: PROTECTED_DOMAINS"),
    ("evilcorp.example",          "=evilcorp.example"),
    ("corp.example.evil.example", "=corp.example.evil.example"),
    ("dt.soc.example",            "protected: is the Darktrace host"),
    ("DT.SOC.EXAMPLE.",           "protected: is the Darktrace host"),
    ("soc.example",               "protected: parent domain of the Darktrace host"),
    ("x.dt.soc.example",          "=x.dt.soc.example"),
    ("evil.co.uk",                "=evil.co.uk"),
];

#[test]
fn protected_names_are_skipped_naming_the_rule() {
    check(&standard(), typed("FQDN", FQDN_PROTECTED));
}

#[rustfmt::skip]
const IPV4: &[(&str, &str)] = &[
    ("198.51.100.7",        "=198.51.100.7"),
    ("  198.51.100.7\t",    "=198.51.100.7"),
    ("8.8.8.8",             "protected: well-known public DNS resolver (MISP warning list public-dns-v4"),
    ("192.0.2.1",           "=192.0.2.1"),
    ("203.0.113.9",         "=203.0.113.9"),
    ("185.220.101.4",       "=185.220.101.4"),
    ("100.63.255.255",      "=100.63.255.255"),
    ("100.128.0.0",         "=100.128.0.0"),
    ("172.15.255.255",      "=172.15.255.255"),
    ("172.32.0.0",          "=172.32.0.0"),
    ("198.17.255.255",      "=198.17.255.255"),
    ("198.20.0.0",          "=198.20.0.0"),
    ("192.0.1.255",         "=192.0.1.255"),
    ("223.255.255.255",     "=223.255.255.255"),
    ("169.253.255.255",     "=169.253.255.255"),
    ("198.51.100",          "invalid_ipv4: four"),
    ("198.51.100.7.1",      "invalid_ipv4: four"),
    ("198.51.100.7.",       "invalid_ipv4: four"),
    ("2130706433",          "invalid_ipv4: four"),
    ("evil.example",        "invalid_ipv4: four"),
    ("198.51.100.256",      "invalid_ipv4: above 255"),
    ("1.2.3.99999999999",   "invalid_ipv4: above 255"),
    ("198.51.100.07",       "invalid_ipv4: leading zero"),
    ("0198.51.100.7",       "invalid_ipv4: leading zero"),
    ("198.51.100.7/32",     "invalid_ipv4: CIDR"),
    ("198.51.100.0/24",     "invalid_ipv4: CIDR"),
    ("198.51.100.7:443",    "invalid_ipv4: port"),
    ("198.51.100.x",        "invalid_ipv4: decimal"),
    ("198.51.100.",         "invalid_ipv4: decimal"),
    ("0x7f.0.0.1",          "invalid_ipv4: decimal"),
    ("２.２.２.２",             "invalid_ipv4: decimal"),
    ("١٩٨.٥١.١٠٠.٧",        "invalid_ipv4: decimal"),
    ("+1.2.3.4",            "invalid_ipv4: decimal"),
    ("198.51.100.7 8",      "invalid_ipv4: decimal"),
    ("2001:db8::1",         "invalid_ipv4: use type IPv6 Address"),
    ("::ffff:198.51.100.7", "invalid_ipv4: use type IPv6 Address"),
    ("[2001:db8::1]",       "invalid_ipv4: use type IPv6 Address"),
    ("10.0.0.1",            "protected: private (10/8)"),
    ("172.16.5.4",          "protected: private (172.16/12)"),
    ("172.31.255.255",      "protected: private (172.16/12)"),
    ("192.168.1.1",         "protected: private (192.168/16)"),
    ("127.0.0.1",           "protected: loopback"),
    ("127.255.255.254",     "protected: loopback"),
    ("169.254.169.254",     "protected: link-local"),
    ("100.64.0.1",          "protected: CGNAT"),
    ("100.127.255.255",     "protected: CGNAT"),
    ("224.0.0.251",         "protected: multicast"),
    ("239.255.255.250",     "protected: multicast"),
    ("0.0.0.0",             "protected: unspecified"),
    ("0.1.2.3",             "protected: this network"),
    ("255.255.255.255",     "protected: broadcast"),
    ("240.0.0.1",           "protected: reserved (240/4)"),
    ("250.1.2.3",           "protected: reserved (240/4)"),
    ("198.18.0.1",          "protected: benchmarking"),
    ("198.19.255.255",      "protected: benchmarking"),
    ("192.0.0.8",           "protected: IETF protocol assignments"),
    ("203.0.113.200",       "protected: PROTECTED_NETWORKS"),
    ("203.0.113.128",       "protected: 203.0.113.128/25"),
];

#[test]
fn ip_addresses_are_four_plain_octets_and_globally_routable() {
    check(&standard(), typed("IP Address", IPV4));
}

#[rustfmt::skip]
const IPV6: &[(&str, &str)] = &[
    ("2001:db8::1",   "=2001:0db8:0000:0000:0000:0000:0000:0001"),
    ("2001:DB8::1",   "=2001:0db8:0000:0000:0000:0000:0000:0001"),
    (" 2001:db8::1 ", "=2001:0db8:0000:0000:0000:0000:0000:0001"),
    (
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "=2001:0db8:0000:0000:0000:0000:0000:0001",
    ),
    (
        "2001:db8:0:0:0:0:0:1",
        "=2001:0db8:0000:0000:0000:0000:0000:0001",
    ),
    ("2001:db8::", "=2001:0db8:0000:0000:0000:0000:0000:0000"),
    (
        "2606:4700:4700::1234",
        "=2606:4700:4700:0000:0000:0000:0000:1234",
    ),
    (
        "2a00:1450:4001:82b::200e",
        "=2a00:1450:4001:082b:0000:0000:0000:200e",
    ),
    (
        "::ffff:198.51.100.7",
        "=198.51.100.7",
    ),
    (
        "::ffff:c633:6407",
        "=198.51.100.7",
    ),
    (
        "64:ff9b::198.51.100.7",
        "=0064:ff9b:0000:0000:0000:0000:c633:6407",
    ),
    (
        "2001:db8:fffe::1",
        "=2001:0db8:fffe:0000:0000:0000:0000:0001",
    ),
    ("fe80::1%eth0",           "invalid_ipv6: zone"),
    ("[fe80::1%eth0]",         "invalid_ipv6: zone"),
    ("[2001:db8::1]",          "invalid_ipv6: brackets"),
    ("2001:db8::/32",          "invalid_ipv6: prefix"),
    ("2001:db8::1/128",        "invalid_ipv6: prefix"),
    ("2001:db8:::1",           "invalid_ipv6: not a valid IPv6"),
    ("2001:db8::1::2",         "invalid_ipv6: not a valid IPv6"),
    ("2001:db8:0:0:0:0:0:0:1", "invalid_ipv6: not a valid IPv6"),
    ("2001:db8::g",            "invalid_ipv6: not a valid IPv6"),
    ("12345::1",               "invalid_ipv6: not a valid IPv6"),
    ("2001:db8::1 2",          "invalid_ipv6: not a valid IPv6"),
    ("evil.example",           "invalid_ipv6: not a valid IPv6"),
    ("198.51.100.7",           "invalid_ipv6: use type IP Address"),
    ("::1",                    "protected: loopback"),
    ("0:0:0:0:0:0:0:1",        "protected: loopback"),
    ("::",                     "protected: unspecified"),
    ("fc00::1",                "protected: unique-local"),
    ("fd12:3456:789a::1",      "protected: unique-local"),
    ("fe80::1",                "protected: link-local"),
    ("febf::1",                "protected: link-local"),
    ("ff02::1",                "protected: multicast"),
    ("ff05::1:3",              "protected: multicast"),
    ("::ffff:10.0.0.1",        "protected: private (10/8)"),
    ("::ffff:127.0.0.1",       "protected: loopback"),
    ("::ffff:169.254.1.1",     "protected: link-local"),
    (
        "::ffff:100.64.0.1",
        "protected: shared address space",
    ),
    ("::ffff:0.0.0.0",         "protected: unspecified"),
    ("::ffff:255.255.255.255", "protected: broadcast"),
    ("::ffff:203.0.113.200",   "protected: PROTECTED_NETWORKS"),
    ("2001:db8:ffff::1",       "protected: 2001:db8:ffff::/48"),
];

#[test]
fn ipv6_addresses_are_sent_exploded_and_screened_like_ipv4() {
    check(&standard(), typed("IPv6 Address", IPV6));
}

#[rustfmt::skip]
const TYPES_AND_STATUSES: &[(&str, &str)] = &[
    (r#"{"type": " fqdn ", "value": "evil.example"}"#,                           "=evil.example"),
    (r#"{"type": "Fqdn", "value": "evil.example"}"#,                             "=evil.example"),
    (r#"{"type": {"name": "FQDN", "id": 11}, "value": "evil.example"}"#,         "=evil.example"),
    (r#"{"type": {"name": "ip address"}, "value": "198.51.100.7"}"#,             "=198.51.100.7"),
    (r#"{"type": "IPV6 ADDRESS", "value": "2001:db8::1"}"#,                      "=2001:0db8:0000:0000:0000:0000:0000:0001"),
    (r#"{"type": "FQDN", "type_id": 3, "value": "evil.example"}"#,               "=evil.example"),
    (r#"{"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"}"#,          "unsupported_type: type MD5 is not exported"),
    (r#"{"type": " MD5 ", "value": "x"}"#,                                       "unsupported_type: type MD5 is not exported (EXPORT_TYPES)"),
    (r#"{"type": "URL", "value": "http://evil.example/x"}"#,                     "unsupported_type: type URL"),
    (r#"{"type": "CIDR Block", "value": "198.51.100.0/24"}"#,                    "unsupported_type: CIDR Block"),
    (r#"{"type": "Email Address", "value": "ceo@evil.example"}"#,                "unsupported_type: Email Address"),
    (r#"{"type": "FQDNs", "value": "evil.example"}"#,                            "unsupported_type: FQDNs"),
    (r#"{"type": "IP", "value": "198.51.100.7"}"#,                               "unsupported_type: type IP is"),
    (r#"{"type": "MD5", "status": "Whitelisted", "value": "x"}"#,                "unsupported_type: MD5"),
    (r#"{"type": "MD5", "value": "a..b"}"#,                                      "unsupported_type: MD5"),
    (r#"{"type_id": 11, "value": "evil.example"}"#,                              "unknown_type: only by id"),
    (r#"{"type": 11, "value": "evil.example"}"#,                                 "unknown_type: only by id"),
    (r#"{"type": {"id": 11}, "value": "evil.example"}"#,                         "unknown_type: only by id"),
    (r#"{"value": "evil.example"}"#,                                             "unknown_type: no type"),
    (r#"{"type": null, "value": "evil.example"}"#,                               "unknown_type: no type"),
    (r#"{"type": "", "value": "evil.example"}"#,                                 "unknown_type: empty"),
    (r#"{"type": ["FQDN"], "value": "evil.example"}"#,                           "unknown_type: neither"),
    (r#"{"type": true, "value": "evil.example"}"#,                               "unknown_type: neither"),
    (r#"{"type": "FQDN", "status": "Active", "value": "evil.example"}"#,         "=evil.example"),
    (r#"{"type": "FQDN", "status": "Review", "value": "evil.example"}"#,         "=evil.example"),
    (r#"{"type": "FQDN", "status": "Indirect", "value": "evil.example"}"#,       "=evil.example"),
    (r#"{"type": "FQDN", "status": {"name": "Active", "id": 1}, "value": "evil.example"}"#, "=evil.example"),
    (r#"{"type": "FQDN", "status": null, "value": "evil.example"}"#,             "=evil.example"),
    (r#"{"type": "FQDN", "status": "", "value": "evil.example"}"#,               "=evil.example"),
    (r#"{"type": "FQDN", "status": "Whitelist", "value": "evil.example"}"#,      "=evil.example"),
    (r#"{"type": "FQDN", "status": "Whitelisted", "value": "evil.example"}"#,    "excluded_status: status Whitelisted is never exported (EXCLUDED_STATUSES)"),
    (r#"{"type": "FQDN", "status": "whitelisted", "value": "evil.example"}"#,    "excluded_status: whitelisted"),
    (r#"{"type": "FQDN", "status": "  WHITELISTED ", "value": "evil.example"}"#, "excluded_status: status WHITELISTED is"),
    (r#"{"type": "FQDN", "status": {"name": "Whitelisted", "id": 2}, "value": "evil.example"}"#, "excluded_status: Whitelisted"),
    (r#"{"type": "FQDN", "status": "Expired", "value": "evil.example"}"#,        "excluded_status: Expired"),
    (r#"{"type": "IP Address", "status": {"name": " expired "}, "value": "198.51.100.7"}"#, "excluded_status: expired"),
    (r#"{"type": "FQDN", "status_id": 2, "value": "evil.example"}"#,             "excluded_status: only by id"),
    (r#"{"type": "FQDN", "status": 2, "value": "evil.example"}"#,                "excluded_status: only by id"),
    (r#"{"type": "FQDN", "status": {"id": 2}, "value": "evil.example"}"#,        "excluded_status: only by id"),
    (r#"{"type": "FQDN", "status": ["Active"], "value": "evil.example"}"#,       "excluded_status: neither a name nor"),
    (r#"{"type": "FQDN", "status": "Whitelisted", "value": "a..example"}"#,      "excluded_status: Whitelisted"),
    (r#"{"type": "IP Address", "status": "Expired", "value": "10.0.0.1"}"#,      "excluded_status: Expired"),
];

#[test]
fn types_and_statuses_match_by_name_trimmed_and_case_insensitive() {
    check(&standard(), raw(TYPES_AND_STATUSES));
}

#[rustfmt::skip]
const SHAPES: &[(&str, &str)] = &[
    (r#""evil.example""#,                                      "not_an_object: not a JSON object"),
    ("42",                                                     "not_an_object: not a JSON object"),
    ("null",                                                   "not_an_object: not a JSON object"),
    ("true",                                                   "not_an_object: not a JSON object"),
    (r#"["FQDN", "evil.example"]"#,                            "not_an_object: not a JSON object"),
    ("{}",                                                     "missing_value: no value"),
    (r#"{"type": "FQDN"}"#,                                    "missing_value: no value"),
    (r#"{"type": "FQDN", "value": null}"#,                     "missing_value: no value"),
    (r#"{"type": "FQDN", "value": 42}"#,                       "missing_value: not a string"),
    (r#"{"type": "FQDN", "value": ["evil.example"]}"#,         "missing_value: not a string"),
    (r#"{"type": "FQDN", "value": {"name": "evil.example"}}"#, "missing_value: not a string"),
    (r#"{"type": "IP Address", "value": true}"#,               "missing_value: not a string"),
    (r#"{"type": "FQDN", "value": ""}"#,                       "missing_value: empty"),
    (r#"{"type": "FQDN", "value": " \t\n "}"#,                 "missing_value: blank"),
    (r#"{"type": "MD5"}"#,                                     "missing_value: no value"),
    (r#"{"type_id": 3, "value": ""}"#,                         "missing_value: empty"),
    (r#"{"type": "FQDN", "status": "Whitelisted"}"#,           "missing_value: no value"),
];

#[test]
fn items_without_a_usable_value_are_invalid_before_anything_else() {
    check(&standard(), raw(SHAPES));
}

#[rustfmt::skip]
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "value": "corp.example"}"#,                       "=corp.example"),
    (r#"{"type": "IP Address", "value": "203.0.113.200"}"#,                "=203.0.113.200"),
    (r#"{"type": "IPv6 Address", "value": "2001:db8::1"}"#,                "unsupported_type: type IPv6 Address is not exported (EXPORT_TYPES)"),
    (r#"{"type": "FQDN", "status": "Expired", "value": "evil.example"}"#,  "excluded_status: Expired"),
    (r#"{"type": "IP Address", "value": "10.0.0.1"}"#,                     "protected: EXPORT_NON_ROUTABLE=true allows it"),
];

#[test]
fn the_default_settings_export_fqdns_and_ipv4_only() {
    let defaults = Setup {
        config: ScreenConfig::default(),
        darktrace_host: None,
    };
    check(&defaults, raw(DEFAULT_SETTINGS));
}

/// Judged with EXPORT_NON_ROUTABLE=true and the Darktrace host at 10.1.1.1.
#[rustfmt::skip]
const NON_ROUTABLE_ALLOWED: &[(&str, &str)] = &[
    (r#"{"type": "IP Address", "value": "10.0.0.1"}"#,               "=10.0.0.1"),
    (r#"{"type": "IP Address", "value": "127.0.0.1"}"#,              "=127.0.0.1"),
    (r#"{"type": "IP Address", "value": "255.255.255.255"}"#,        "=255.255.255.255"),
    (r#"{"type": "IPv6 Address", "value": "::1"}"#,                  "=0000:0000:0000:0000:0000:0000:0000:0001"),
    (r#"{"type": "IPv6 Address", "value": "fd00::1"}"#,              "=fd00:0000:0000:0000:0000:0000:0000:0001"),
    (r#"{"type": "IPv6 Address", "value": "::ffff:10.0.0.1"}"#,      "=10.0.0.1"),
    (r#"{"type": "IP Address", "value": "10.1.1.1"}"#,               "protected: Darktrace host"),
    (r#"{"type": "IPv6 Address", "value": "::ffff:10.1.1.1"}"#,      "protected: Darktrace host"),
    (r#"{"type": "IP Address", "value": "203.0.113.200"}"#,          "protected: PROTECTED_NETWORKS"),
    (r#"{"type": "FQDN", "value": "co.uk"}"#,                        "protected: public suffix"),
    (r#"{"type": "FQDN", "value": "printer.local"}"#,                "protected: special-use"),
];

#[test]
fn export_non_routable_lifts_only_the_built_in_ranges() {
    let setup = with(|s| {
        s.config.export_non_routable = true;
        s.darktrace_host = Some("10.1.1.1");
    });
    check(&setup, raw(NON_ROUTABLE_ALLOWED));
}

#[rustfmt::skip]
const HOST_198_51_100_10: &[(&str, &str)] = &[
    (r#"{"type": "IP Address", "value": "198.51.100.10"}"#,          "protected: Darktrace host (198.51.100.10)"),
    (r#"{"type": "IPv6 Address", "value": "::ffff:198.51.100.10"}"#, "protected: Darktrace host"),
    (r#"{"type": "IP Address", "value": "198.51.100.11"}"#,          "=198.51.100.11"),
    (r#"{"type": "FQDN", "value": "soc.example"}"#,                  "=soc.example"),
];

#[rustfmt::skip]
const HOST_2001_DB8_5_10: &[(&str, &str)] = &[
    (r#"{"type": "IPv6 Address", "value": "2001:db8:5::10"}"#,              "protected: Darktrace host"),
    (r#"{"type": "IPv6 Address", "value": "2001:0DB8:0005:0:0:0:0:0010"}"#, "protected: Darktrace host"),
    (r#"{"type": "IPv6 Address", "value": "2001:db8:5::11"}"#,              "=2001:0db8:0005:0000:0000:0000:0000:0011"),
];

#[test]
fn a_darktrace_host_given_as_an_address_is_protected_in_every_form() {
    check(
        &with(|s| s.darktrace_host = Some("198.51.100.10")),
        raw(HOST_198_51_100_10),
    );
    check(
        &with(|s| s.darktrace_host = Some("[2001:db8:5::10]")),
        raw(HOST_2001_DB8_5_10),
    );
}

/// The shipped popular lists (PROTECT_POPULAR, on by default), and what they leave alone.
#[rustfmt::skip]
const POPULAR: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "value": "google.com"}"#,                   "protected: very popular domain (MISP warning list tranco10k"),
    (r#"{"type": "FQDN", "value": "Microsoft.COM."}"#,               "protected: very popular domain"),
    (r#"{"type": "FQDN", "value": "www.google.com"}"#,               "protected: www name of very popular domain google.com"),
    (r#"{"type": "FQDN", "value": "evil.google.com"}"#,              "=evil.google.com"),
    (r#"{"type": "FQDN", "value": "google.com.evil.example"}"#,      "=google.com.evil.example"),
    (r#"{"type": "IP Address", "value": "1.1.1.1"}"#,                "protected: public DNS resolver"),
    (r#"{"type": "IPv6 Address", "value": "2001:4860:4860::8888"}"#, "protected: public DNS resolver (MISP warning list public-dns-v4 20240615, public-dns-v6"),
    (r#"{"type": "IPv6 Address", "value": "::ffff:8.8.8.8"}"#,       "protected: public DNS resolver"),
    (r#"{"type": "IP Address", "value": "8.8.8.9"}"#,                "=8.8.8.9"),
];

/// The same with PROTECT_POPULAR=false: only the popular lists are lifted.
#[rustfmt::skip]
const POPULAR_ALLOWED: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "value": "google.com"}"#,                   "=google.com"),
    (r#"{"type": "FQDN", "value": "www.google.com"}"#,               "=www.google.com"),
    (r#"{"type": "IP Address", "value": "8.8.8.8"}"#,                "=8.8.8.8"),
    (r#"{"type": "FQDN", "value": "co.uk"}"#,                        "protected: public suffix"),
    (r#"{"type": "IP Address", "value": "10.0.0.1"}"#,               "protected: not globally routable"),
];

#[test]
fn popular_domains_and_public_resolvers_are_protected_unless_protect_popular_is_off() {
    check(&standard(), raw(POPULAR));
    check(
        &with(|s| s.config.protect_popular = false),
        raw(POPULAR_ALLOWED),
    );
}

#[rustfmt::skip]
const AS_HOSTNAMES: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "value": "soc.example"}"#,    "=soc.example"),
    (r#"{"type": "FQDN", "value": "dt.soc.example"}"#, "protected: is the Darktrace host"),
];

#[test]
fn as_hostnames_only_the_darktrace_host_itself_is_protected() {
    check(
        &with(|s| s.config.fqdn_as_hostname = true),
        raw(AS_HOSTNAMES),
    );
}

#[rustfmt::skip]
const NO_EXCLUDED_STATUSES: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "status": "Whitelisted", "value": "evil.example"}"#, "=evil.example"),
    (r#"{"type": "FQDN", "status_id": 2, "value": "evil.example"}"#,          "=evil.example"),
];

/// Judged with EXCLUDED_STATUSES=Review,Überprüft.
#[rustfmt::skip]
const CUSTOM_EXCLUDED_STATUSES: &[(&str, &str)] = &[
    (r#"{"type": "FQDN", "status": "review", "value": "evil.example"}"#,      "excluded_status: review"),
    (r#"{"type": "FQDN", "status": "ÜBERPRÜFT", "value": "evil.example"}"#,   "excluded_status: ÜBERPRÜFT"),
    (r#"{"type": "FQDN", "status": "Whitelisted", "value": "evil.example"}"#, "=evil.example"),
];

#[test]
fn excluded_statuses_follow_the_setting() {
    check(
        &with(|s| s.config.excluded_statuses.clear()),
        raw(NO_EXCLUDED_STATUSES),
    );
    let custom = with(|s| s.config.excluded_statuses = vec!["Review".into(), "Überprüft".into()]);
    check(&custom, raw(CUSTOM_EXCLUDED_STATUSES));
}

/// Batches whose items meet again after normalisation: `(type, value, expected)` per item.
#[rustfmt::skip]
const DUPLICATE_BATCHES: &[&[(&str, &str, &str)]] = &[
    &[
        ("FQDN", "Evil.Example.",         "=evil.example"),
        ("FQDN", "evil.example",          "duplicate: same value as item 0"),
        ("FQDN", " EVIL.example. ",       "duplicate: same value as item 0"),
        ("FQDN", "bücher.example",        "=xn--bcher-kva.example"),
        ("FQDN", "xn--bcher-kva.example", "duplicate: same value as item 3"),
        ("FQDN", "evil.example.",         "duplicate: same value as item 0"),
    ],
    &[
        ("IP Address",   " 198.51.100.7",         "=198.51.100.7"),
        ("IP Address",   "198.51.100.7",          "duplicate: same value as item 0"),
        ("IPv6 Address", "2001:db8::1",           "=2001:0db8:0000:0000:0000:0000:0000:0001"),
        ("IPv6 Address", "2001:0DB8:0:0:0:0:0:1", "duplicate: same value as item 2"),
    ],
    // Only an item that passed every other rule can be the first of its value.
    &[
        ("IP Address", "10.0.0.1",        "protected: private"),
        ("IP Address", "10.0.0.1",        "protected: private"),
        ("FQDN",       "evil.example:80", "invalid_fqdn: port"),
        ("FQDN",       "evil.example",    "=evil.example"),
        ("MD5",        "evil.example",    "unsupported_type: MD5"),
        ("FQDN",       "EVIL.EXAMPLE",    "duplicate: same value as item 3"),
    ],
];

#[test]
fn later_items_with_a_value_already_seen_are_duplicates_naming_the_first() {
    let setup = standard();
    let mut failures = Vec::new();
    for batch in DUPLICATE_BATCHES {
        let items: Vec<Value> = batch
            .iter()
            .map(|(kind, value, _)| json!({"type": kind, "value": value}))
            .collect();
        for (index, (result, (_, value, expected))) in judge_batch(&setup, &items)
            .iter()
            .zip(batch.iter())
            .enumerate()
        {
            assert_eq!(result["index"], index);
            if let Some(m) = mismatch(result, expected) {
                failures.push(format!("{value:?} at {index}: {m}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An excluded status says the value must never be deployed: another item holding the same
/// value (in any spelling, before or after it) is kept back too, not exported.
#[test]
fn an_excluded_item_keeps_back_every_other_item_with_its_value() {
    let items = [
        json!({"type": "FQDN", "status": "Whitelisted", "value": "evil.example"}),
        json!({"type": "FQDN", "status": "Active", "value": "Evil.Example."}),
        json!({"type": "FQDN", "status": "Active", "value": "other.example"}),
    ];
    let results = judge_batch(&standard(), &items);
    assert_eq!(mismatch(&results[0], "excluded_status: Whitelisted"), None);
    assert_eq!(
        mismatch(&results[1], "excluded_status: same value as item 0"),
        None
    );
    assert_eq!(mismatch(&results[2], "=other.example"), None);

    // Excluded after the value was accepted and repeated: all three are kept back.
    let items = [
        json!({"type": "FQDN", "status": "Active", "value": "evil.example"}),
        json!({"type": "FQDN", "status": "Active", "value": "EVIL.example"}),
        json!({"type": "FQDN", "status": "Whitelisted", "value": "evil.example."}),
    ];
    let results = judge_batch(&standard(), &items);
    for result in &results[..2] {
        assert_eq!(
            mismatch(result, "excluded_status: same value as item 2"),
            None
        );
        assert_eq!(result.get("exported_value"), None, "{result}");
    }
    assert_eq!(mismatch(&results[2], "excluded_status: Whitelisted"), None);
}
