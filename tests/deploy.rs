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
    for copied in ["Cargo.toml", "Cargo.lock", "src", "openapi.yaml"] {
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
