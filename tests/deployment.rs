//! The deployment files, checked by reading them and by starting what they start: no
//! container engine runs here, so the registry service of `docker-compose.yml` is started
//! directly with the environment the compose file gives it.

mod common;

use std::collections::BTreeMap;

use common::{Backend, TestRegistry};
use serde_norway::Value as Yaml;

fn compose() -> Yaml {
    let text = std::fs::read_to_string(common::workspace_root().join("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is valid YAML")
}

/// Expands `${VAR:-default}` and `${VAR}` the way compose does, with no variable set.
fn expand_defaults(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${...}") + start;
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn registry_environment(compose: &Yaml) -> BTreeMap<String, String> {
    let environment = compose["services"]["registry"]["environment"].as_mapping().expect("environment is a mapping");
    environment
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Yaml::String(text) => text.clone(),
                Yaml::Number(number) => number.to_string(),
                other => panic!("unexpected value {other:?}"),
            };
            (key.as_str().unwrap().to_owned(), expand_defaults(&value))
        })
        .collect()
}

#[test]
fn compose_file_wires_registry_to_postgres() {
    let compose = compose();
    let services = &compose["services"];
    let registry = &services["registry"];
    let postgres = &services["postgres"];

    assert!(postgres["image"].as_str().unwrap().starts_with("postgres:"));
    assert_eq!(registry["depends_on"]["postgres"]["condition"], "service_healthy");
    assert!(postgres["healthcheck"]["test"][1].as_str().unwrap().contains("pg_isready"));

    let environment = registry_environment(&compose);
    let url = &environment["DATABASE_URL"];
    let user = postgres["environment"]["POSTGRES_USER"].as_str().unwrap();
    let database = postgres["environment"]["POSTGRES_DB"].as_str().unwrap();
    assert!(url.starts_with(&format!("postgres://{user}:")), "{url}");
    assert!(url.ends_with(&format!("@postgres:5432/{database}")), "{url}");

    // The data directory lives on the named volume and the port is published.
    let data_dir = &environment["REGISTRY_DATA_DIR"];
    let volumes: Vec<&str> = registry["volumes"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(volumes.contains(&format!("registry-data:{data_dir}").as_str()), "{volumes:?}");
    assert!(compose["volumes"].get("registry-data").is_some());
    let bind_port = environment["REGISTRY_BIND"].rsplit(':').next().unwrap().to_owned();
    let ports: Vec<&str> = registry["ports"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ports.iter().any(|p| p.ends_with(&format!(":{bind_port}"))), "{ports:?}");

    // The health check probes readiness on the bound port.
    let check: Vec<&str> =
        registry["healthcheck"]["test"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(check.iter().any(|part| part.ends_with(&format!(":{bind_port}/readyz"))), "{check:?}");
}

#[test]
fn compose_variables_are_options_of_the_binary() {
    let output = std::process::Command::new(common::binary()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for name in registry_environment(&compose()).keys() {
        if name == "RUST_LOG" || name.starts_with("REGISTRY_ADMIN") || name == "REGISTRY_JWT_SECRET" {
            continue;
        }
        assert!(help.contains(&format!("[env: {name}=")), "`serve` has no option read from {name}:\n{help}");
    }
}

#[test]
fn dockerfile_runs_the_registry() {
    let dockerfile = std::fs::read_to_string(common::workspace_root().join("Dockerfile")).unwrap();
    let stages = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(dockerfile.contains("cargo build --release --locked -p ontology-registry"));
    assert!(dockerfile.contains("COPY ontology-repo /usr/share/ontology-registry/ontology-repo"));
    assert!(dockerfile.contains("REGISTRY_CATALOG_DIR=/usr/share/ontology-registry/ontology-repo"));
    assert!(dockerfile.contains("ENTRYPOINT [\"ontology-registry\"]"));
    assert!(dockerfile.contains("CMD [\"serve\"]"));
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(dockerfile.contains("USER registry"), "the container does not run as root");

    // Every folder the build copies exists in the repository.
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(common::workspace_root().join(source).exists(), "{line}: {source} is missing");
        }
    }
}

/// Starts the registry with the compose file's environment, the database host pointed at
/// this machine's PostgreSQL (or SQLite without one), and checks it serves, reports ready
/// and stops cleanly on SIGTERM.
async fn registry_starts_with_compose_environment(backend: Backend) {
    let mut registry = TestRegistry::new(backend).await;
    let environment = registry_environment(&compose());
    for (name, value) in &environment {
        match name.as_str() {
            // The test harness sets these to its own database, data directory and port.
            "DATABASE_URL" | "REGISTRY_DATA_DIR" | "REGISTRY_BIND" | "REGISTRY_CATALOG_DIR" => {}
            _ => registry.extra_env.push((name.clone(), value.clone())),
        }
    }
    let server = registry.start().await;

    let (status, ready) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready");
    let (status, index) = server.get_json("/api/ontology/index.json").await;
    assert_eq!(status, 200);
    assert_eq!(index["ontology_version"], "1.0.0");
    for line in server.logs().lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with('{'), "REGISTRY_LOG_FORMAT=json gives JSON lines: {line}");
    }

    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
}

on_each_backend!(registry_starts_with_compose_environment);
