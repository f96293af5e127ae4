//! A deterministic, realistic ThreatQ collection for the benchmarks: full indicator objects
//! (type, status, score, hash, timestamps, attributes, sources, tags) as the ThreatQ API
//! returns them, with the mix a real feed has: mostly FQDNs and IP addresses, some other
//! types, whitelisted and expired entries, names in odd case or with a trailing dot,
//! internationalised names, private addresses, duplicates and a few malformed values.

use std::fmt::Write;

/// A `{"total": N, "data": [...]}` list page of `count` indicators; `seed` varies the values.
pub fn threatq_collection(count: usize, seed: u64) -> Vec<u8> {
    let mut out = String::with_capacity(count * 700 + 64);
    write!(
        out,
        "{{\"total\":{count},\"offset\":0,\"limit\":{count},\"data\":["
    )
    .unwrap();
    let mut values: Vec<String> = Vec::with_capacity(count);
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        let mut rng = SplitMix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64);
        let (type_id, type_name, mut value) = pick_value(&mut rng, i as u64 + seed * 1_000_000);
        // About 2% repeat an earlier value, as overlapping feeds do.
        if i > 10 && rng.below(100) < 2 {
            value = values[rng.below(i as u64) as usize].clone();
        }
        let (status_id, status, status_text) = match rng.below(100) {
            0..=89 => (
                1,
                "Active",
                "Poses a threat and is being exported to detection tools.",
            ),
            90..=94 => (
                3,
                "Whitelisted",
                "Poses NO risk and should never be deployed.",
            ),
            95..=97 => (4, "Review", "Needs an analyst to look at it."),
            _ => (2, "Expired", "No longer poses a serious threat."),
        };
        let day = 1 + rng.below(28);
        let hour = rng.below(24);
        write!(
            out,
            concat!(
                "{{\"id\":{id},\"value\":{value},\"class\":\"network\",\"score\":{score},",
                "\"type_id\":{type_id},\"type\":{{\"name\":\"{type_name}\",\"id\":{type_id},\"class\":\"network\"}},",
                "\"status_id\":{status_id},\"status\":{{\"name\":\"{status}\",\"id\":{status_id},\"description\":\"{status_text}\"}},",
                "\"hash\":\"{hash:032x}\",\"description\":null,",
                "\"created_at\":\"2026-10-{day:02} {hour:02}:00:11\",\"updated_at\":\"2026-11-{day:02} {hour:02}:17:03\",",
                "\"touched_at\":\"2026-11-26 18:00:03\",\"expires_at\":null,\"expires_calculated_at\":null,\"expired_at\":null,",
                "\"attributes\":[{{\"id\":{attr_id},\"name\":\"Confidence\",\"value\":\"{confidence}\",\"attribute_id\":4}},",
                "{{\"id\":{attr_id2},\"name\":\"First Seen\",\"value\":\"2026-10-{day:02}\",\"attribute_id\":9}}],",
                "\"sources\":[{{\"id\":{source_id},\"name\":\"{source}\",\"source_type\":\"connectors\",\"tlp\":{{\"name\":\"AMBER\"}}}}],",
                "\"tags\":[{{\"id\":7,\"name\":\"campaign-{campaign}\"}}]}}"
            ),
            id = 100_000 + i,
            value = serde_json::to_string(&value).unwrap(),
            score = rng.below(11),
            hash = u128::from(rng.next()) << 64 | u128::from(rng.next()),
            confidence = ["Low", "Medium", "High"][rng.below(3) as usize],
            attr_id = 500_000 + 2 * i,
            attr_id2 = 500_001 + 2 * i,
            source_id = 1 + rng.below(12),
            source = SOURCES[rng.below(SOURCES.len() as u64) as usize],
            campaign = rng.below(40),
            type_id = type_id,
            type_name = type_name,
            status_id = status_id,
            status = status,
            status_text = status_text,
            day = day,
            hour = hour,
        )
        .unwrap();
        values.push(value);
    }
    out.push_str("]}");
    out.into_bytes()
}

const SOURCES: [&str; 6] = [
    "Abuse.ch URLhaus",
    "AlienVault OTX",
    "Emerging Threats",
    "Analyst",
    "Spamhaus DROP",
    "CrowdStrike Falcon Intelligence",
];

const WORDS: [&str; 16] = [
    "update", "login", "secure", "cdn", "mail", "portal", "account", "verify", "static", "billing",
    "support", "api", "files", "track", "auth", "cloud",
];

const SUFFIXES: [&str; 10] = [
    "com", "net", "org", "ru", "xyz", "top", "info", "co.uk", "online", "com.br",
];

/// `(type_id, type name, value)` for indicator `n`.
fn pick_value(rng: &mut SplitMix, n: u64) -> (u32, &'static str, String) {
    match rng.below(100) {
        0..=54 => (11, "FQDN", fqdn(rng, n)),
        55..=84 => {
            let ip = rng.next() as u32;
            let v = format!(
                "{}.{}.{}.{}",
                ip >> 24,
                (ip >> 16) & 0xff,
                (ip >> 8) & 0xff,
                ip & 0xff
            );
            (15, "IP Address", v)
        }
        85..=87 => {
            let v = format!(
                "2a0{}:{:x}:{:x}::{:x}",
                rng.below(10),
                n,
                rng.below(65_536),
                n % 4096
            );
            (16, "IPv6 Address", v)
        }
        88..=92 => (
            8,
            "MD5",
            format!("{:032x}", u128::from(rng.next()) << 64 | u128::from(n)),
        ),
        93..=95 => (
            14,
            "URL",
            format!("http://{}/gate.php?id={n}", fqdn(rng, n)),
        ),
        96..=98 => (3, "Email Address", format!("billing{n}@{}", fqdn(rng, n))),
        // Malformed values a feed does carry: defanged, a port, a bad address.
        _ => match rng.below(3) {
            0 => (11, "FQDN", format!("evil{n}[.]com")),
            1 => (11, "FQDN", format!("c2-{n}.example.net:8443")),
            _ => (15, "IP Address", format!("203.0.113.{}", 256 + n % 100)),
        },
    }
}

fn fqdn(rng: &mut SplitMix, n: u64) -> String {
    let a = WORDS[rng.below(WORDS.len() as u64) as usize];
    let b = WORDS[rng.below(WORDS.len() as u64) as usize];
    let suffix = SUFFIXES[rng.below(SUFFIXES.len() as u64) as usize];
    match rng.below(100) {
        0..=79 => format!("{a}.{b}-{n:x}.{suffix}"),
        80..=89 => format!("{}.{}-{n:x}.{}", a.to_uppercase(), b, suffix.to_uppercase()),
        90..=95 => format!("{a}-{n:x}.{b}.{suffix}."),
        96..=98 => format!("{a}.bücher-{n:x}.{suffix}"),
        _ => format!("{a}.{n:x}.internal"),
    }
}

/// SplitMix64: a tiny, fixed generator, so every run benchmarks the same bytes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
