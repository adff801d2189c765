//! The public read API through a real server process: pinning across several ontology
//! versions, cache headers, conditional requests and every error the read API returns.

mod common;

use std::collections::HashMap;

use common::history::registry_with_history;
use common::{Backend, TestRegistry, TestServer, assert_problem, git};
use serde_json::Value;

const GRR: &str = "/api/ontology/customers/gross_revenue_retention.json";

async fn kpi(server: &TestServer, query: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = server.get(&format!("{GRR}{query}")).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap();
    (status, body, headers)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap_or_else(|| panic!("missing header {name}")).to_str().unwrap()
}

async fn pinning_across_versions(backend: Backend) {
    let (_registry, server, _) = registry_with_history(backend).await;

    // (query, KPI version, Ontology-Version header)
    let cases = [
        ("", "2.0.0", "2.1.0"),
        ("?version=1.1.0", "1.1.0", "1.1.0"),
        ("?version==1.0.0", "1.0.0", "1.0.0"),
        ("?version=^1", "1.1.1", "1.1.1"),
        ("?version=^1.1", "1.1.1", "1.1.1"),
        ("?version=~1.1.0", "1.1.1", "1.1.1"),
        ("?version=~1.0", "1.0.0", "1.0.0"),
        ("?version=>=1.0.0,<1.1.1", "1.1.0", "1.1.0"),
        ("?version=<2", "1.1.1", "1.1.1"),
        ("?version=1", "1.1.1", "1.1.1"),
        ("?version=*", "2.0.0", "2.0.0"),
        ("?ontology=1.0.0", "1.0.0", "1.0.0"),
        ("?ontology=1.1.1", "1.1.1", "1.1.1"),
        ("?ontology=2.1.0", "2.0.0", "2.1.0"),
        ("?ontology=^1", "1.1.1", "1.1.1"),
        ("?ontology=~1.1", "1.1.1", "1.1.1"),
        ("?ontology=2.1.0&version=^2", "2.0.0", "2.1.0"),
        ("?ontology=^1&version=~1.1", "1.1.1", "1.1.1"),
        ("?ontology=1.1.0&version=1.1.0", "1.1.0", "1.1.0"),
    ];
    for (query, version, ontology) in cases {
        let (status, body, headers) = kpi(&server, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["version"], version, "{query}");
        assert_eq!(header(&headers, "kpi-version"), version, "{query}");
        assert_eq!(header(&headers, "ontology-version"), ontology, "{query}");
    }

    // The record follows the version: the formula changed in 2.0.0.
    let (_, old, _) = kpi(&server, "?version=^1").await;
    let (_, new, _) = kpi(&server, "?version=^2").await;
    assert_ne!(old["formula"], new["formula"]);
    assert!(new["formula"].as_str().unwrap().contains("list price"));
    assert_eq!(new["released_in"], "2.0.0");
    assert_eq!(old["released_in"], "1.1.1");

    // Pins that match nothing.
    for query in
        ["?version=^3", "?version=1.2.0", "?ontology=3.0.0", "?ontology=2.1.0&version=^1", "?version=1.0.0-beta"]
    {
        let response = server.get(&format!("{GRR}{query}")).await;
        assert_problem(response, 404, "version_not_found").await;
    }

    // Requirements that do not parse.
    for query in ["?version=1.x.y", "?version=", "?ontology=abc", "?ontology=^^1", "?version=>=", "?ontology=1.0.0.0"] {
        let response = server.get(&format!("{GRR}{query}")).await;
        assert_problem(response, 400, "invalid_version_requirement").await;
    }
}

async fn catalog_pinning(backend: Backend) {
    let (_registry, server, before) = registry_with_history(backend).await;

    // Exact pins return the bytes they returned before later versions existed.
    for (path, bytes) in &before {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(&response.bytes().await.unwrap().to_vec(), bytes, "{path} changed");
    }

    let (status, index) = server.get_json("/api/ontology/index.json").await;
    assert_eq!(status, 200);
    assert_eq!(index["ontology_version"], "2.1.0");
    let (_, pinned) = server.get_json("/api/ontology/index.json?ontology=~1.1").await;
    assert_eq!(pinned["ontology_version"], "1.1.1");
    let grr = pinned["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["kpis"].as_array().unwrap())
        .find(|k| k["id"] == "customers.gross_revenue_retention")
        .unwrap();
    assert_eq!(grr["version"], "1.1.1");
    assert_eq!(grr["url"], "/api/ontology/customers/gross_revenue_retention.json?version=1.1.1");

    let (_, domain) = server.get_json("/api/ontology/customers.json?ontology=1.1.0").await;
    assert_eq!(domain["ontology_version"], "1.1.0");
    let names: Vec<&str> = domain["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == "customers.gross_revenue_retention")
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Gross revenue retention (GRR)"]);

    let (status, versions) = server.get_json("/api/ontology/customers/gross_revenue_retention/versions.json").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> =
        versions["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(listed, ["2.0.0", "1.1.1", "1.1.0", "1.0.0"]);
    assert_eq!(versions["versions"][0]["bump"], "major");
    assert_eq!(versions["versions"][0]["title"], "Measure on ARR at list price");
    assert_eq!(versions["versions"][3]["bump"], Value::Null);

    // The catalog endpoints take `ontology`, not `version`.
    let response = server.get("/api/ontology/index.json?version=1.0.0").await;
    assert_problem(response, 400, "malformed_request").await;
    let response = server.get("/api/ontology/index.json?ontology=9").await;
    assert_problem(response, 404, "version_not_found").await;

    // A parameter the framework rejects is named in the detail.
    let response = server.get("/api/ontology/customers/nps_score.json?version=1.0.0&version=2.0.0").await;
    let problem = assert_problem(response, 400, "malformed_request").await;
    assert!(problem["detail"].as_str().unwrap().contains("`version`"), "{problem}");
}

async fn cache_headers_and_conditional_requests(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let immutable = "public, max-age=31536000, immutable";
    for (path, expected_immutable) in [
        ("/api/ontology/index.json?ontology=1.0.0", true),
        ("/api/ontology/index.json?ontology=^1", false),
        ("/api/ontology/index.json", false),
        ("/api/ontology/customers.json?ontology==1.0.0", true),
        ("/api/ontology/customers.json", false),
        ("/api/ontology/customers/key_initiatives.json?version=1.0.0", true),
        ("/api/ontology/customers/key_initiatives.json?ontology=1.0.0", true),
        ("/api/ontology/customers/key_initiatives.json?ontology=1.0.0&version=^1", true),
        ("/api/ontology/customers/key_initiatives.json?ontology=^1&version=1.0.0", false),
        ("/api/ontology/customers/key_initiatives.json?version=^1", false),
        ("/api/ontology/customers/key_initiatives.json", false),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let cache_control = header(headers, "cache-control");
        if expected_immutable {
            assert_eq!(cache_control, immutable, "{path}");
        } else {
            let max_age: u32 = cache_control.rsplit('=').next().unwrap().parse().unwrap();
            assert!(max_age <= 60 && !cache_control.contains("immutable"), "{path}: {cache_control}");
        }
        assert_eq!(header(headers, "vary").to_ascii_lowercase(), "accept-encoding", "{path}");
        assert_eq!(header(headers, "content-type"), "application/json", "{path}");
        assert_eq!(header(headers, "ontology-version"), "1.0.0", "{path}");
        let etag = header(headers, "etag");
        assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"), "{path}: {etag}");
    }

    // Live fields only in unpinned and range responses.
    let (_, pinned) = server.get_json("/api/ontology/customers/key_initiatives.json?version=1.0.0").await;
    let (_, live) = server.get_json("/api/ontology/customers/key_initiatives.json").await;
    let (_, range) = server.get_json("/api/ontology/customers/key_initiatives.json?version=^1").await;
    assert!(pinned.get("open_disputes").is_none());
    assert_eq!(live["open_disputes"], 0);
    assert_eq!(range["open_disputes"], 0);

    // If-None-Match: exact, weak, in a list, and `*` all return 304 with the 200's headers.
    let path = "/api/ontology/customers/key_initiatives.json?version=1.0.0";
    let full = server.get(path).await;
    let etag = header(full.headers(), "etag").to_owned();
    for candidate in [etag.clone(), format!("W/{etag}"), format!("\"nope\", {etag}"), "*".to_owned()] {
        let response = server.get_with(path, &[("if-none-match", &candidate)]).await;
        assert_eq!(response.status(), 304, "{candidate}");
        let headers = response.headers().clone();
        for name in ["etag", "cache-control", "vary", "ontology-version", "kpi-version"] {
            assert_eq!(headers.get(name), full.headers().get(name), "{name} on 304 for {candidate}");
        }
        assert!(response.bytes().await.unwrap().is_empty(), "a 304 has no body");
    }
    let response = server.get_with(path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(response.status(), 200);

    // The gzip form has its own tag, and conditional requests use the tag of the form sent.
    let gzip = server.get_with(path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(gzip.headers(), "content-encoding"), "gzip");
    let gzip_etag = header(gzip.headers(), "etag").to_owned();
    assert_ne!(gzip_etag, etag);
    let compressed = gzip.bytes().await.unwrap();
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut decoded).unwrap();
    assert_eq!(decoded, server.get(path).await.bytes().await.unwrap().to_vec());
    let response = server.get_with(path, &[("accept-encoding", "gzip"), ("if-none-match", &gzip_etag)]).await;
    assert_eq!(response.status(), 304);
    let response = server.get_with(path, &[("if-none-match", &gzip_etag)]).await;
    assert_eq!(response.status(), 200, "the identity form does not match the gzip tag");
}

async fn every_read_error_code(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let cases: [(&str, u16, &str); 14] = [
        ("/api/ontology/nosuchdomain.json", 404, "not_found"),
        ("/api/ontology/customers/no_such_kpi.json", 404, "not_found"),
        ("/api/ontology/customers/no_such_kpi/versions.json", 404, "not_found"),
        ("/api/ontology/customers/key_initiatives/nothing.json", 404, "not_found"),
        ("/api/ontology/customers/key_initiatives", 404, "not_found"),
        ("/api/no/such/route", 404, "not_found"),
        ("/api/ontology/customers/key_initiatives.json?version=^7", 404, "version_not_found"),
        ("/api/ontology/customers.json?ontology=7.0.0", 404, "version_not_found"),
        ("/api/ontology/customers/key_initiatives.json?version=abc", 400, "invalid_version_requirement"),
        ("/api/ontology/customers.json?ontology=v1", 400, "invalid_version_requirement"),
        ("/api/ontology/Customers.json", 400, "invalid_id"),
        ("/api/ontology/customers/Key.json", 400, "invalid_id"),
        ("/api/ontology/customers/key_initiatives/diff.json?from=1.0.0", 400, "malformed_request"),
        ("/api/ontology/search.json?q=%20%21", 400, "malformed_request"),
    ];
    for (path, status, code) in cases {
        let response = server.get(path).await;
        assert_problem(response, status, code).await;
    }

    let response = server.client.post(server.url("/api/ontology/index.json")).send().await.unwrap();
    assert!(response.headers().get("allow").is_some(), "405 names the allowed methods");
    assert_problem(response, 405, "method_not_allowed").await;
    let response = server.client.delete(server.url(GRR)).send().await.unwrap();
    assert_problem(response, 405, "method_not_allowed").await;
}

async fn id_grammar_attacks(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let invalid = [
        "/api/ontology/customers%2Fkey_initiatives.json",
        "/api/ontology/customers/..%2F..%2Fontology.json",
        "/api/ontology/customers/%2E%2E.json",
        "/api/ontology/CUSTOMERS/key_initiatives.json",
        "/api/ontology/customers/Key_Initiatives.json",
        "/api/ontology/customers/key-initiatives.json",
        "/api/ontology/%D1%81ustomers/key_initiatives.json",
        "/api/ontology/customers/k%C3%A9y.json",
        "/api/ontology/customers/key%00.json",
        "/api/ontology/customers/1key.json",
        "/api/ontology/customers/..json",
        "/api/ontology/index/key.json",
    ];
    for path in invalid {
        let (status, body) = server.raw_get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], "invalid_id", "{path}");
    }

    // Dot segments never reach a file: the router treats them as names and rejects them,
    // or they resolve to a path that does not exist.
    for path in [
        "/api/ontology/../../etc/passwd",
        "/api/ontology/customers/../../../ontology.git/config",
        "/api/ontology/..%2F..%2Fetc%2Fpasswd",
    ] {
        let (status, body) = server.raw_get(path).await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(!body.contains("root:"), "{path} leaked a file");
    }
}

async fn restart_keeps_everything(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;
    let before = server.get("/api/ontology/index.json").await.bytes().await.unwrap();
    assert!(server.stop().success(), "SIGTERM stops the server cleanly");

    let tags = git(&registry.repository(), &["tag", "--list"]);
    assert_eq!(tags.trim(), "v1.0.0");
    let log = git(&registry.repository(), &["log", "--format=%s", "main"]);
    assert_eq!(log.trim(), "Ontology 1.0.0: Starter catalog");

    let server = registry.start().await;
    let after = server.get("/api/ontology/index.json").await.bytes().await.unwrap();
    assert_eq!(before, after);
    let tags = git(&registry.repository(), &["tag", "--list"]);
    assert_eq!(tags.trim(), "v1.0.0", "a restart creates no version");
}

async fn starter_catalog_served(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let (status, index) = server.get_json("/api/ontology/index.json").await;
    assert_eq!(status, 200);
    assert_eq!(index["ontology_version"], "1.0.0");
    let domains = index["domains"].as_array().unwrap();
    let kpi_count: usize = domains.iter().map(|d| d["kpis"].as_array().unwrap().len()).sum();
    assert!(domains.len() >= 5, "{} domains", domains.len());
    assert!(kpi_count >= 40, "{kpi_count} KPIs");

    // Every KPI and domain the index links to answers.
    for domain in domains {
        let (status, _) = server.get_json(domain["url"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{}", domain["url"]);
        for kpi in domain["kpis"].as_array().unwrap() {
            let (status, record) = server.get_json(kpi["url"].as_str().unwrap()).await;
            assert_eq!(status, 200, "{}", kpi["url"]);
            assert_eq!(record["id"], kpi["id"]);
        }
    }

    let (status, initiatives) = server.get_json("/api/ontology/customers/key_initiatives.json").await;
    assert_eq!(status, 200);
    assert_eq!(initiatives["name"], "Customer Success Initiatives");
    assert_eq!(initiatives["type"], "text");
    assert_eq!(initiatives["tier"], "editorial");
    assert_eq!(initiatives["source"]["standard"], Value::Null);
    assert_eq!(initiatives["source"]["first_published"], "2026-04-01");
    assert_eq!(initiatives["owning_functions"], serde_json::json!(["sales"]));
    assert_eq!(initiatives["released_in"], "1.0.0");
    assert_eq!(initiatives["version"], "1.0.0");
    assert_eq!(initiatives["status"], "active");
    let stages: HashMap<&str, &str> = initiatives["stage_relevance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["priority"].as_str().unwrap()))
        .collect();
    for stage in ["series_a", "series_b", "series_c_plus", "public"] {
        assert_eq!(stages.get(stage), Some(&"recommended"), "{stage}");
    }
    let related: Vec<&str> = initiatives["related"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(
        related,
        [
            "customers.retention_insights",
            "customers.expansion_opportunities",
            "customers.churn_risks",
            "customers.net_revenue_retention",
            "customers.nps_score"
        ]
    );
    for id in related {
        let (domain, key) = id.split_once('.').unwrap();
        let (status, _) = server.get_json(&format!("/api/ontology/{domain}/{key}.json")).await;
        assert_eq!(status, 200, "related {id}");
    }
    for section in ["summary", "definition", "formula", "why_it_matters", "how_to_interpret"] {
        assert!(initiatives[section].as_str().unwrap().len() > 80, "{section} has substance");
    }
    let formula = initiatives["formula"].as_str().unwrap();
    for word in ["owner", "planned", "in progress", "launched", "measuring", "checkpoint"] {
        assert!(formula.contains(word), "the formula names `{word}`");
    }
    assert_eq!(initiatives["links"]["self"], "/api/ontology/customers/key_initiatives.json?version=1.0.0");

    let (_, grr) = server.get_json(GRR).await;
    assert_eq!(grr["tier"], "published");
    assert_eq!(grr["bounds"]["max"], 100);
    assert!(grr["source"]["standard"]["issuer"].as_str().unwrap().contains("SaaS Metrics Standards Board"));
    let (_, churn) = server.get_json("/api/ontology/customers/logo_churn_rate.json").await;
    assert_eq!(churn["tier"], "published");
    assert_eq!(churn["source"]["standard"]["reference"], "2024, 15th annual");
}

on_each_backend!(
    pinning_across_versions,
    catalog_pinning,
    cache_headers_and_conditional_requests,
    every_read_error_code,
    id_grammar_attacks,
    restart_keeps_everything,
    starter_catalog_served,
);
