//! The container and Kubernetes files: they parse, and hold what running the service safely
//! needs (probes on the right routes, limits, non-root, read-only root, tokens from a
//! Secret, settings the binary knows).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use darktrace_export::cli::Cli;
use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of every manifest, by kind.
fn manifests() -> Vec<(PathBuf, Value)> {
    let dir = root().join("deploy/kubernetes");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for document in serde_norway::Deserializer::from_str(&text) {
                let value = Value::deserialize(document)
                    .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
                found.push((path.clone(), value));
            }
        }
    }
    found
}

fn one(kind: &str) -> Value {
    let mut of_kind: Vec<Value> = manifests()
        .into_iter()
        .filter(|(_, m)| m["kind"] == kind)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(of_kind.len(), 1, "one {kind}");
    of_kind.remove(0)
}

#[test]
fn every_manifest_parses_and_kustomization_lists_all_but_the_example_secret() {
    let all = manifests();
    assert!(all.len() >= 6);
    for (path, m) in &all {
        for field in ["apiVersion", "kind"] {
            assert!(m[field].is_string(), "{} has no {field}", path.display());
        }
    }
    let listed: BTreeSet<String> = one("Kustomization")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let files: BTreeSet<String> = all
        .iter()
        .filter(|(_, m)| m["kind"] != "Kustomization" && m["kind"] != "Secret")
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, files);
}

#[test]
fn the_deployment_runs_two_hardened_replicas_probed_on_healthz_and_readyz() {
    let deployment = one("Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][bound][resource].is_string(),
                "{bound}.{resource}"
            );
        }
    }

    let env: Vec<(String, Value)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].clone()))
        .collect();
    let known: BTreeSet<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(["RUST_LOG".to_owned()])
        .collect();
    for (name, _) in &env {
        assert!(
            known.contains(name),
            "{name} is not a setting of the service"
        );
    }
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str().unwrap().to_owned())
    };
    for secret in [
        "DARKTRACE_PUBLIC_TOKEN",
        "DARKTRACE_PRIVATE_TOKEN",
        "API_TOKENS",
    ] {
        assert!(
            value(secret).is_none(),
            "{secret} is not written in the manifest"
        );
        let file = value(&format!("{secret}_FILE")).expect("read from a file");
        let mount = &c["volumeMounts"][0];
        assert!(
            file.starts_with(mount["mountPath"].as_str().unwrap()),
            "{file}"
        );
    }
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "darktrace-export"
    );
    let grace: u64 = value("SHUTDOWN_GRACE_SECS").unwrap().parse().unwrap();
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > grace);
}

#[test]
fn service_budget_and_autoscaler_select_the_deployment() {
    let deployment = one("Deployment");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selects = |selector: &Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| &labels[k] == v)
    };
    let service = one("Service");
    assert!(selects(&service["spec"]["selector"]));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let budget = one("PodDisruptionBudget");
    assert!(selects(&budget["spec"]["selector"]["matchLabels"]));
    assert!(budget["spec"]["minAvailable"].as_u64().unwrap() < 2);
    let hpa = one("HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
}

#[test]
fn the_dockerfile_builds_locked_and_runs_unprivileged_with_a_healthcheck() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(text.contains("cargo build --release --locked"));
    assert!(
        instructions
            .iter()
            .filter(|l| l.starts_with("FROM "))
            .count()
            >= 2
    );
    let user = instructions
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"));
    assert!(instructions.contains(&"EXPOSE 8080"));
    assert!(text.contains(r#"CMD ["/usr/local/bin/darktrace-export", "healthcheck"]"#));
    // What the build copies must exist and not be excluded by .dockerignore.
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for copied in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "src",
        "openapi.yaml",
        "data",
    ] {
        assert!(Path::new(&root().join(copied)).exists(), "{copied}");
        assert!(
            !ignored.lines().any(|l| l.trim_end_matches('/') == copied),
            "{copied} is ignored"
        );
    }
}

/// Cargo reads every target the manifest declares, even for `--bin`: the build stage must
/// copy the folder of each declared bench, and the ignore file must not drop it.
#[test]
fn the_image_build_copies_every_folder_the_manifest_declares_targets_in() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for (section, folder) in [
        ("[[bench]]", "benches"),
        ("[[example]]", "examples"),
        ("[[test]]", "tests"),
    ] {
        if manifest.contains(section) {
            assert!(
                dockerfile
                    .lines()
                    .any(|l| l.trim() == format!("COPY {folder} ./{folder}")),
                "Cargo.toml declares {section} targets, so the Dockerfile must copy {folder}/"
            );
            assert!(
                !ignored
                    .lines()
                    .any(|l| l.trim().trim_end_matches('/') == folder),
                ".dockerignore drops {folder}/, which the build needs"
            );
        }
    }
}

/// A file that the source compiles in (`include_str!`) must reach the build stage: each one's
/// first folder (or the file itself, at the root) is copied by the Dockerfile.
#[test]
fn the_image_build_copies_every_file_the_source_compiles_in() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let mut included = Vec::new();
    let mut pending = vec![root().join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (_, rest) in text
                .match_indices("include_str!(\"")
                .map(|(i, m)| text.split_at(i + m.len()))
            {
                let relative = &rest[..rest.find('"').unwrap()];
                let file = path
                    .parent()
                    .unwrap()
                    .join(relative)
                    .canonicalize()
                    .unwrap();
                included.push(
                    file.strip_prefix(root().canonicalize().unwrap())
                        .unwrap()
                        .to_owned(),
                );
            }
        }
    }
    assert!(
        included.len() >= 3,
        "openapi.yaml and the popular lists: {included:?}"
    );
    for file in included {
        let top = file
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .to_owned();
        let copied = if file.components().count() == 1 {
            format!("COPY {top} ./")
        } else {
            format!("COPY {top} ./{top}")
        };
        assert!(
            dockerfile.lines().any(|l| l.trim() == copied),
            "src/ compiles in {}, so the Dockerfile must say `{copied}`",
            file.display()
        );
    }
}

// ---- the memory the Deployment's limit must hold ----------------------------------------

/// What one batch request can take at most, as measured with the release binary by
/// `cargo bench --bench hostile` (BENCHMARKS.md, "Hostile load", and README's "Memory"):
/// `REQUEST_BODY_FACTOR x MAX_BODY_BYTES + REQUEST_BYTES_PER_ITEM x OBJECTS_PER_RUN`. The
/// worst body measured at the defaults (32 MiB of items whose values are all escapes, each
/// decoded into a copy and echoed whole, through `/sync`, which reads its body whole) took
/// 118 MiB over the idle process, under the 133 MiB this gives (jemalloc keeps what a request
/// frees for up to a second, so a request's transient copies add up); 31 MiB of 1.3 million
/// tiny items (`OBJECTS_PER_RUN` raised) took 618 MiB through `/sync`, under its 4.9 GiB.
const REQUEST_BODY_FACTOR: u64 = 4;
const REQUEST_BYTES_PER_ITEM: u64 = 512;
/// The process besides its batch requests: about 10 MiB at rest, with room to spare...
const BASE_BYTES: u64 = 32 * MIB;
/// ...and each connection it may hold (`MAX_CONNECTIONS + HEALTH_CONNECTIONS`) with a head
/// buffer of up to `MAX_HEADER_BYTES`, counted twice for the allocator's rounding and
/// hyper's own state.
const CONNECTION_HEADER_FACTOR: u64 = 2;
const MIB: u64 = 1024 * 1024;

/// The numbers of the Deployment's one container that bound its memory; a setting the
/// manifest leaves out is the service's default.
#[derive(Debug, Clone)]
struct MemorySettings {
    limit: u64,
    max_concurrent_exports: u64,
    max_body_bytes: u64,
    objects_per_run: u64,
    connections: u64,
    max_header_bytes: u64,
}

impl MemorySettings {
    fn of(deployment: &Value) -> Self {
        let c = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env = c["env"].as_array().unwrap();
        let setting = |name: &str, default: usize| -> u64 {
            env.iter()
                .find(|e| e["name"] == name)
                .map(|e| {
                    let v = e["value"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: a string"));
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
                })
                .unwrap_or(default as u64)
        };
        let d = darktrace_export::config::Limits::default();
        MemorySettings {
            limit: quantity(
                c["resources"]["limits"]["memory"]
                    .as_str()
                    .expect("a memory limit"),
            ),
            max_concurrent_exports: setting("MAX_CONCURRENT_EXPORTS", d.max_concurrent_exports),
            max_body_bytes: setting("MAX_BODY_BYTES", d.max_body_bytes),
            objects_per_run: setting("OBJECTS_PER_RUN", d.objects_per_run),
            connections: setting("MAX_CONNECTIONS", d.max_connections)
                + setting("HEALTH_CONNECTIONS", d.health_connections),
            max_header_bytes: setting("MAX_HEADER_BYTES", d.max_header_bytes),
        }
    }

    fn per_request(&self) -> u64 {
        REQUEST_BODY_FACTOR * self.max_body_bytes + REQUEST_BYTES_PER_ITEM * self.objects_per_run
    }

    /// The most the process can hold: every permit taken by a worst-case request, every
    /// connection open with a full head buffer.
    fn worst_case(&self) -> u64 {
        self.max_concurrent_exports * self.per_request()
            + BASE_BYTES
            + CONNECTION_HEADER_FACTOR * self.connections * self.max_header_bytes
    }
}

/// A Kubernetes memory quantity in bytes: plain, or with a binary (Ki, Mi, Gi) or decimal
/// (k, M, G) suffix.
fn quantity(text: &str) -> u64 {
    let units: [(&str, u64); 6] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((text, 1));
    number
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("memory quantity {text}"))
        * unit
}

#[test]
fn memory_quantities_are_read_in_bytes() {
    assert_eq!(quantity("512Mi"), 512 * MIB);
    assert_eq!(quantity("1Gi"), 1024 * MIB);
    assert_eq!(quantity("500M"), 500_000_000);
    assert_eq!(quantity("1048576"), MIB);
}

/// `MAX_CONCURRENT_EXPORTS` worst-case requests, with every connection open, fit within the
/// container's memory limit, with the settings as the manifest sets them.
#[test]
fn the_memory_limit_holds_every_export_permit_at_its_worst() {
    let settings = MemorySettings::of(&one("Deployment"));
    let worst = settings.worst_case();
    assert!(
        worst <= settings.limit,
        "{} MiB at worst ({} x {} MiB per request + base) exceeds the limit of {} MiB: {settings:?}",
        worst / MIB,
        settings.max_concurrent_exports,
        settings.per_request() / MIB,
        settings.limit / MIB
    );
}

/// The check above is not vacuous: the service's default of 64 permits, or the 8 the
/// manifest once set, would not fit in the manifest's limit at the default body size.
#[test]
fn the_memory_check_refuses_more_permits_than_the_limit_holds() {
    let mut settings = MemorySettings::of(&one("Deployment"));
    settings.max_body_bytes = darktrace_export::config::Limits::default().max_body_bytes as u64;
    for permits in [8, 64] {
        settings.max_concurrent_exports = permits;
        assert!(
            settings.worst_case() > settings.limit,
            "{permits} permits: {settings:?}"
        );
    }
}

#[test]
fn the_cronjob_pulls_one_at_a_time_with_the_deployments_image_and_secret() {
    let cron = one("CronJob");
    let deployment = one("Deployment");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    let served = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], served["image"]);
    assert_eq!(c["args"], serde_json::json!(["pull"]));
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
    );
    let known: BTreeSet<String> = Cli::command()
        .get_subcommands()
        .find(|s| s.get_name() == "pull")
        .expect("a pull subcommand")
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(["RUST_LOG".to_owned()])
        .collect();
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    for (name, value) in &env {
        assert!(known.contains(name), "{name} is not a setting of pull");
        if name.ends_with("_FILE") {
            assert!(value.starts_with(mount), "{name}={value}");
        }
    }
    for secret in [
        "DARKTRACE_PUBLIC_TOKEN",
        "DARKTRACE_PRIVATE_TOKEN",
        "THREATQ_PASSWORD",
        "THREATQ_CLIENT_SECRET",
    ] {
        assert!(
            env.iter().all(|(n, _)| n != secret),
            "{secret} is not written in the manifest"
        );
    }
    for needed in ["THREATQ_URL", "THREATQ_CLIENT_ID", "THREATQ_COLLECTION"] {
        assert!(env.iter().any(|(n, _)| n == needed), "{needed}");
    }
}

/// The metric names a PromQL expression mentions: label matchers, ranges, grouping labels,
/// functions, keywords and numbers taken out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const NOT_METRICS: &[&str] = &[
        "sum",
        "rate",
        "increase",
        "histogram_quantile",
        "time",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "bool",
        "abs",
        "absent",
        "irate",
        "delta",
        "offset",
        "le",
    ];
    let mut text = String::new();
    let mut depth = 0;
    for ch in expr.chars() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => text.push(ch),
            _ => {}
        }
    }
    // Grouping labels: `by (a, b)`.
    for keyword in ["by", "without"] {
        while let Some(at) = text.find(&format!("{keyword} (")) {
            let end = at + text[at..].find(')').unwrap();
            text.replace_range(at..=end, " ");
        }
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| !t.is_empty() && !t.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|t| !NOT_METRICS.contains(t))
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, route) (rate(x_seconds_bucket{status=~"5.."}[5m]))) / time() - y_total"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["x_seconds_bucket".to_owned(), "y_total".to_owned()])
    );
}

/// A service whose pulls have never succeeded still exports `pull_runs_total{result="ok"}`,
/// at zero: the alerts compare it, and PromQL drops a comparison with an absent series, so
/// a wrong ThreatQ password from the first day would never alert. The real binary, so no
/// other test's pulls are counted in it.
#[tokio::test]
async fn every_pull_result_is_exported_at_zero_before_the_first_pull() {
    let threatq = crate::helpers::ClosedPort::new();
    let threatq_url = threatq.url();
    let darktrace = crate::helpers::ClosedPort::new();
    let service = crate::helpers::process::Service::against(
        &darktrace.url(),
        &[
            ("THREATQ_URL", threatq_url.as_str()),
            ("THREATQ_CLIENT_ID", "c"),
            ("THREATQ_EMAIL", "e@example.org"),
            ("THREATQ_PASSWORD", "p"),
            ("THREATQ_COLLECTION", "h"),
        ],
    );
    let scrape = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(service.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for result in ["ok", "failed", "refused", "threatq_error"] {
        let line = format!("pull_runs_total{{result=\"{result}\"}} 0");
        assert!(scrape.lines().any(|l| l == line), "no {line}:\n{scrape}");
    }
    assert!(
        !scrape.contains("pull_last_success_timestamp_seconds "),
        "no pull has succeeded: {scrape}"
    );
}

/// Every metric the dashboard and the alerts mention is one the service exports: scraped
/// from `/metrics` of a running service after a pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_use_only_metrics_the_service_exports() {
    use darktrace_export::config::{PullMode, ThreatqAuth, ThreatqConfig};
    use darktrace_export::threatq_sim::{ThreatqSim, ThreatqSimConfig};

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            used.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    let alerts: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("deploy/prometheus/alerts.yaml")).unwrap(),
    )
    .unwrap();
    let mut alerted = BTreeSet::new();
    for group in alerts["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert!(
                rule["alert"].is_string() && rule["for"].is_string(),
                "{rule}"
            );
            alerted.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    for needed in [
        "pull_last_success_timestamp_seconds",
        "darktrace_calls_total",
        "http_requests_total",
    ] {
        assert!(alerted.contains(needed), "no alert on {needed}");
    }
    used.extend(alerted);

    let mut tq_config = ThreatqSimConfig::new("c", "e@example.org", "p");
    tq_config.collections.insert(
        "h".into(),
        vec![serde_json::json!({"type": "FQDN", "value": "evil.example"})],
    );
    let tq = ThreatqSim::start_local(tq_config).await.unwrap();
    let sim = crate::helpers::simulator().await;
    let mut config = crate::helpers::config_for(&sim);
    config.threatq = Some(ThreatqConfig {
        base_url: tq.url().parse().unwrap(),
        client_id: "c".into(),
        auth: ThreatqAuth::Password {
            email: "e@example.org".into(),
            password: secrecy::SecretString::from("p"),
        },
        collection: "h".into(),
        page_size: 10,
        trust: darktrace_export::config::TlsTrust::public_roots(
            darktrace_export::config::THREATQ_TRUST,
        ),
        mode: PullMode::Export,
        interval: None,
        timeout: std::time::Duration::from_secs(10),
        max_retries: 0,
    });
    let app = crate::helpers::spawn_with(sim, config).await;
    let pulled = app
        .http
        .post(app.url("/pull"))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let scrape = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    for name in &used {
        assert!(
            exported.contains(name),
            "{name} is not exported; /metrics has {exported:?}"
        );
    }
}
