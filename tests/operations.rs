//! Git as the source of truth and the operations around it: rebuilding the index, recovery
//! of commits a crash left unindexed, export, diffs, releases and their Atom feed, search,
//! the OpenAPI document and the server's logs.

mod common;

use std::collections::BTreeMap;

use common::catalog_edits::publish_edit;
use common::history::registry_with_history;
use common::{Backend, TestRegistry, assert_problem, git};
use ontology_core::{Bump, Catalog};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Paths whose responses must survive a reindex byte for byte.
const STABLE_PATHS: [&str; 16] = [
    "/api/ontology/index.json",
    "/api/ontology/index.json?ontology=1.0.0",
    "/api/ontology/index.json?ontology=^1",
    "/api/ontology/customers.json",
    "/api/ontology/customers.json?ontology=1.1.0",
    "/api/ontology/revenue.json",
    "/api/ontology/customers/gross_revenue_retention.json",
    "/api/ontology/customers/gross_revenue_retention.json?version=1.0.0",
    "/api/ontology/customers/gross_revenue_retention.json?version=^1",
    "/api/ontology/customers/net_revenue_retention.json?ontology=2.1.0",
    "/api/ontology/customers/gross_revenue_retention/versions.json",
    "/api/ontology/customers/gross_revenue_retention/diff.json?from=1.0.0&to=2.0.0",
    "/api/ontology/releases.json",
    "/api/ontology/releases.atom",
    "/api/ontology/search.json?q=retention",
    "/api/openapi.json",
];

async fn snapshot(server: &common::TestServer) -> BTreeMap<&'static str, (Vec<u8>, String)> {
    let mut answers = BTreeMap::new();
    for path in STABLE_PATHS {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        answers.insert(path, (response.bytes().await.unwrap().to_vec(), etag));
    }
    answers
}

async fn reindex_gives_identical_answers(backend: Backend) {
    let (registry, server, _) = registry_with_history(backend).await;
    let before = snapshot(&server).await;
    assert!(server.stop().success());

    if backend == Backend::Sqlite {
        for suffix in ["", "-wal", "-shm"] {
            let path = format!("{}{suffix}", registry.sqlite_file().display());
            let _ = std::fs::remove_file(path);
        }
    }
    // Packing the repository first changes how git stores objects, never their content.
    let (ok, stdout, stderr) = registry.run(&["gc"]);
    assert!(ok, "gc failed: {stderr}");
    assert!(stdout.contains("packed"), "{stdout}");
    let counts = git(&registry.repository(), &["count-objects", "-v"]);
    assert!(counts.lines().any(|l| l == "count: 0"), "no loose objects left:\n{counts}");
    git(&registry.repository(), &["fsck", "--full", "--no-dangling"]);

    let (ok, stdout, stderr) = registry.run(&["reindex"]);
    assert!(ok, "reindex failed: {stderr}");
    assert!(stdout.contains("reindexed 5 commits and"), "summary line: {stdout}");

    let server = registry.start().await;
    let after = snapshot(&server).await;
    for path in STABLE_PATHS {
        assert_eq!(
            String::from_utf8_lossy(&after[path].0),
            String::from_utf8_lossy(&before[path].0),
            "{path} changed after reindex"
        );
        assert_eq!(after[path].1, before[path].1, "ETag of {path} changed after reindex");
    }
}

async fn unindexed_commit_indexed_on_start(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;
    assert!(server.stop().success());

    // A merge that committed to git and crashed before the index update, and before it
    // could even tag the commit.
    let published =
        publish_edit(&registry.repository(), "customers.nps_score", Bump::Patch, "Clarify the survey window", |d| {
            d.how_to_interpret = format!("{}\n\nState the survey window next to the score.", d.how_to_interpret);
        });
    git(&registry.repository(), &["tag", "-d", "v1.0.1"]);

    let server = registry.start().await;
    let (status, record) = server.get_json("/api/ontology/customers/nps_score.json").await;
    assert_eq!(status, 200);
    assert_eq!(record["version"], "1.0.1");
    assert_eq!(record["released_in"], "1.0.1");
    let (_, index) = server.get_json("/api/ontology/index.json").await;
    assert_eq!(index["ontology_version"], "1.0.1");
    assert_eq!(index["commit"], published.commit.as_str());

    let tags = git(&registry.repository(), &["tag", "--list"]);
    assert_eq!(tags.split_whitespace().collect::<Vec<_>>(), ["v1.0.0", "v1.0.1"], "the missing tag is restored");
    let (_, releases) = server.get_json("/api/ontology/releases.json").await;
    assert_eq!(releases["releases"][0]["ontology_version"], "1.0.1");
    assert_eq!(releases["releases"][0]["bump"], "patch");
    assert_eq!(releases["releases"][0]["changes"][0]["id"], "customers.nps_score");
    assert_eq!(releases["releases"][0]["changes"][0]["from"], "1.0.0");
    assert_eq!(releases["releases"][0]["changes"][0]["to"], "1.0.1");
}

async fn export_writes_valid_tree(backend: Backend) {
    let (registry, server, _) = registry_with_history(backend).await;
    drop(server);
    let out = tempfile::tempdir().unwrap();

    let first = out.path().join("v1.0.0");
    let (ok, stdout, stderr) = registry.run(&["export", "--ontology", "1.0.0", first.to_str().unwrap()]);
    assert!(ok, "export failed: {stderr}");
    assert!(stdout.contains("exported ontology 1.0.0"), "{stdout}");
    let (ok, stdout, _) = registry.run(&["validate", first.to_str().unwrap()]);
    assert!(ok, "validate rejected the export: {stdout}");
    let exported = Catalog::read_dir(&first).unwrap().catalog;
    let starter = Catalog::read_dir(&common::starter_catalog()).unwrap().catalog;
    assert_eq!(exported, starter, "ontology 1.0.0 is the starter catalog");

    let range = out.path().join("v1");
    let (ok, stdout, stderr) = registry.run(&["export", "--ontology", "^1", range.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("exported ontology 1.1.1"), "{stdout}");
    let catalog = Catalog::read_dir(&range).unwrap().catalog;
    let grr = &catalog.kpis[&ontology_core::KpiId::parse("customers.gross_revenue_retention").unwrap()];
    assert_eq!(grr.version.to_string(), "1.1.1");

    let (ok, _, stderr) = registry.run(&["export", "--ontology", "^9", out.path().join("none").to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("no ontology version matches"), "{stderr}");
    let (ok, _, stderr) = registry.run(&["export", "--ontology", "nonsense", out.path().join("bad").to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("invalid version requirement"), "{stderr}");
    let (ok, _, stderr) = registry.run(&["export", "--ontology", "1.0.0", first.to_str().unwrap()]);
    assert!(!ok, "export refuses a folder that is not empty");
    assert!(stderr.contains("not empty"), "{stderr}");
}

async fn diff_reports_fields_and_bump(backend: Backend) {
    let (_registry, server, _) = registry_with_history(backend).await;
    let base = "/api/ontology/customers/gross_revenue_retention/diff.json";

    let (status, diff) = server.get_json(&format!("{base}?from=1.0.0&to=2.0.0")).await;
    assert_eq!(status, 200);
    assert_eq!(diff["id"], "customers.gross_revenue_retention");
    assert_eq!(diff["bump"], "major");
    let fields: Vec<&str> = diff["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "summary", "formula"]);
    let formula = &diff["changes"][2];
    assert_ne!(formula["before"], formula["after"]);
    assert!(formula["after"].as_str().unwrap().contains("list price"));

    let (_, patch) = server.get_json(&format!("{base}?from=1.1.0&to=1.1.1")).await;
    assert_eq!(patch["bump"], "patch");
    assert_eq!(patch["changes"].as_array().unwrap().len(), 1);
    let (_, minor) = server.get_json(&format!("{base}?from=1.0.0&to=~1.1.0")).await;
    assert_eq!(minor["to"], "1.1.1");
    assert_eq!(minor["bump"], "minor");
    let (_, none) = server.get_json(&format!("{base}?from=2.0.0&to=2.0.0")).await;
    assert_eq!(none["bump"], Value::Null);
    assert_eq!(none["changes"], serde_json::json!([]));

    let immutable = server.get(&format!("{base}?from=1.0.0&to=2.0.0")).await;
    assert!(immutable.headers()["cache-control"].to_str().unwrap().contains("immutable"));

    assert_problem(server.get(&format!("{base}?from=2.0.0&to=1.0.0")).await, 400, "malformed_request").await;
    assert_problem(server.get(&format!("{base}?to=1.0.0")).await, 400, "malformed_request").await;
    assert_problem(server.get(&format!("{base}?from=1.0.0&to=^5")).await, 404, "version_not_found").await;
    assert_problem(server.get(&format!("{base}?from=what&to=1.0.0")).await, 400, "invalid_version_requirement").await;
}

async fn releases_and_atom_feed(backend: Backend) {
    let (registry, server, _) = registry_with_history(backend).await;

    let (status, releases) = server.get_json("/api/ontology/releases.json").await;
    assert_eq!(status, 200);
    let list = releases["releases"].as_array().unwrap();
    let versions: Vec<&str> = list.iter().map(|r| r["ontology_version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["2.1.0", "2.0.0", "1.1.1", "1.1.0", "1.0.0"]);
    let bumps: Vec<&Value> = list.iter().map(|r| &r["bump"]).collect();
    assert_eq!(
        bumps,
        [&Value::from("minor"), &Value::from("major"), &Value::from("patch"), &Value::from("minor"), &Value::Null]
    );
    assert_eq!(list[1]["changes"][0]["id"], "customers.gross_revenue_retention");
    assert_eq!(list[1]["changes"][0]["from"], "1.1.1");
    assert_eq!(list[1]["changes"][0]["to"], "2.0.0");
    assert_eq!(list[1]["changes"][0]["title"], "Measure on ARR at list price");
    let starter_changes = list[4]["changes"].as_array().unwrap().len();
    assert!(starter_changes >= 40, "the first release lists every starter KPI");
    for release in list {
        let commit = release["commit"].as_str().unwrap();
        assert_eq!(commit.len(), 40);
        assert!(release["released_at"].as_str().unwrap().ends_with('Z'));
    }

    let response = server.get("/api/ontology/releases.atom").await;
    assert_eq!(response.headers()["content-type"], "application/atom+xml");
    let xml = response.text().await.unwrap();
    let feed = atom_syndication::Feed::read_from(xml.as_bytes()).expect("the feed is valid Atom");
    assert_eq!(feed.entries().len(), 5);
    assert!(feed.entries()[0].title().as_str().starts_with("Ontology 2.1.0"));
    let ids: Vec<String> = feed.entries().iter().map(|e| e.id().to_owned()).collect();
    for id in &ids {
        assert!(id.starts_with("urn:uuid:"), "{id}");
    }
    assert!(!feed.authors().is_empty());
    assert!(feed.links().iter().any(|l| l.rel() == "self"));

    // Entry ids are stable: the same after a restart.
    drop(server);
    let server = registry.start().await;
    let again = server.get("/api/ontology/releases.atom").await.text().await.unwrap();
    let feed = atom_syndication::Feed::read_from(again.as_bytes()).unwrap();
    let again_ids: Vec<String> = feed.entries().iter().map(|e| e.id().to_owned()).collect();
    assert_eq!(again_ids, ids);
}

async fn search_ranks_matches(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let (status, found) = server.get_json("/api/ontology/search.json?q=revenue%20retention").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = found["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.len() >= 2, "{ids:?}");
    let top_two: Vec<&str> = ids.iter().take(2).copied().collect();
    assert!(top_two.contains(&"customers.gross_revenue_retention"), "{ids:?}");
    assert!(top_two.contains(&"customers.net_revenue_retention"), "{ids:?}");
    let scores: Vec<f64> = found["results"].as_array().unwrap().iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked best first: {scores:?}");
    let first = &found["results"][0];
    for member in ["name", "summary", "type", "tier", "status", "version", "url"] {
        assert!(!first[member].is_null(), "{member}");
    }

    // The last word matches as a prefix; operators of the search engines are plain text.
    let (_, prefix) = server.get_json("/api/ontology/search.json?q=promot").await;
    assert!(!prefix["results"].as_array().unwrap().is_empty(), "prefix search finds promoters");
    for hostile in ["retention%22%20OR%20*", "NEAR(a%20b)", "a%26%7C!b", "retention%27%3B--", "retention:*"] {
        let (status, _) = server.get_json(&format!("/api/ontology/search.json?q={hostile}")).await;
        assert_eq!(status, 200, "{hostile}");
    }

    let (_, limited) = server.get_json("/api/ontology/search.json?q=rate&limit=2").await;
    assert_eq!(limited["results"].as_array().unwrap().len(), 2);
    let (_, nothing) = server.get_json("/api/ontology/search.json?q=zzzzqqq").await;
    assert_eq!(nothing["results"], serde_json::json!([]));
    assert_problem(server.get("/api/ontology/search.json").await, 400, "malformed_request").await;
    assert_problem(server.get("/api/ontology/search.json?q=x&limit=0").await, 400, "malformed_request").await;
    assert_problem(server.get("/api/ontology/search.json?q=x&limit=ten").await, 400, "malformed_request").await;
}

/// Requests that reach every route of the public API, with the path template each
/// matches in the OpenAPI document.
const ROUTED: [(&str, &str, &str); 11] = [
    ("get", "/healthz", "/healthz"),
    ("get", "/readyz", "/readyz"),
    ("get", "/api/openapi.json", "/api/openapi.json"),
    ("get", "/api/ontology/index.json", "/api/ontology/index.json"),
    ("get", "/api/ontology/releases.json", "/api/ontology/releases.json"),
    ("get", "/api/ontology/releases.atom", "/api/ontology/releases.atom"),
    ("get", "/api/ontology/search.json?q=churn", "/api/ontology/search.json"),
    ("get", "/api/ontology/customers.json", "/api/ontology/{domain}.json"),
    ("get", "/api/ontology/customers/nps_score.json", "/api/ontology/{domain}/{key}.json"),
    ("get", "/api/ontology/customers/nps_score/versions.json", "/api/ontology/{domain}/{key}/versions.json"),
    (
        "get",
        "/api/ontology/customers/nps_score/diff.json?from=1.0.0&to=1.0.0",
        "/api/ontology/{domain}/{key}/diff.json",
    ),
];

async fn openapi_covers_every_route(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let (status, document) = server.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    assert!(document["components"]["schemas"]["Problem"].is_object());

    for (method, request, template) in ROUTED {
        let response =
            server.client.request(method.to_uppercase().parse().unwrap(), server.url(request)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{request} is routed");
        let operation = &paths.get(template).unwrap_or_else(|| panic!("{template} is not documented"))[method];
        assert!(operation.is_object(), "{method} {template} is not documented");
        assert!(operation["responses"]["200"].is_object(), "{template} documents its 200");
    }

    // Every documented path is routed: the documented operations, with sample values for
    // their parameters, never reach the router's fallback.
    for (template, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let path = template
                .replace("{domain}", "customers")
                .replace("{key}", "nps_score")
                .replace("{jti}", "x")
                .replace("{id}", "1");
            let response =
                server.client.request(method.to_uppercase().parse().unwrap(), server.url(&path)).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                !(status == 404 && body.contains("no such path")),
                "{method} {template} is documented but not routed"
            );
            assert_ne!(status, 405, "{method} {template} is documented but the method is not routed");
        }
    }
    // Client generators name their methods after operation ids, which OpenAPI requires to
    // be unique.
    let mut operation_ids = std::collections::BTreeMap::new();
    for (template, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else { continue };
            if let Some(other) = operation_ids.insert(id.to_owned(), format!("{method} {template}")) {
                panic!("operationId `{id}` names both {other} and {method} {template}");
            }
        }
    }

    // Every operation that reads a body documents the responses to a body it cannot read,
    // and every operation with a path parameter the response to one that does not parse.
    for (template, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let in_path = operation["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
            if in_path {
                assert!(operation["responses"]["400"].is_object(), "{method} {template} does not document 400");
            }
            if operation.get("requestBody").is_none() {
                continue;
            }
            for status in ["400", "413", "415"] {
                let response = &operation["responses"][status];
                assert!(response.is_object(), "{method} {template} does not document {status}");
            }
        }
    }

    // The documented count matches the routed requests above, which fails when a route is
    // added without a request here.
    let get_operations = paths.values().filter(|item| item.get("get").is_some()).count();
    assert!(get_operations >= ROUTED.len(), "{get_operations} documented GET operations");
}

async fn logs_are_json_with_request_ids(backend: Backend) {
    let mut registry = TestRegistry::new(backend).await;
    registry.extra_env.push(("REGISTRY_LOG_FORMAT".into(), "json".into()));
    let server = registry.start().await;

    let response = server.get_with("/api/ontology/customers/nope.json", &[("x-request-id", "test-request-42")]).await;
    assert_eq!(response.headers()["x-request-id"], "test-request-42");
    let response = server.get("/api/ontology/index.json").await;
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID when the client sends none");
    drop(response);

    // The log line is written after the response; give the writer a moment.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = server.logs();
        if logs.contains(&generated) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut request_lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        if entry["fields"]["message"] == "request finished" {
            request_lines += 1;
            assert!(entry["span"]["request_id"].is_string(), "{line}");
        }
    }
    assert!(request_lines >= 2, "one line per request:\n{logs}");
    assert!(logs.contains("test-request-42"));
    assert!(logs.contains(&generated));
}

async fn compression_of_untagged_documents(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    // Documents without an entity tag are compressed by the server's layer; rendered
    // documents carry their own gzip form with its own tag.
    let response = server.get_with("/api/openapi.json", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let response = server.get_with("/api/ontology/customers.json", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let identity = server.get("/api/ontology/customers.json").await;
    assert!(identity.headers().get("content-encoding").is_none());
}

/// A request in flight when SIGTERM arrives gets its full response before the process exits,
/// and no new connection is accepted meanwhile.
async fn sigterm_finishes_in_flight_request(backend: Backend) {
    let catalog_dir = tempfile::tempdir().unwrap();
    let tree = catalog_dir.path().join("catalog");
    let output = std::process::Command::new(common::binary())
        .args(["generate", "--kpis", "3000", "--domains", "1", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let registry = TestRegistry::with_catalog(backend, tree).await;
    let server = registry.start().await;

    // A small receive buffer and a slow reader keep the multi-megabyte response in flight.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.address.parse().unwrap()).await.unwrap();
    let request =
        format!("GET /api/ontology/domain_000.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.address);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = vec![0u8; 4096];
    let first = stream.read(&mut received).await.unwrap();
    received.truncate(first);

    server.terminate();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(&server.address).await.is_err(),
        "the server stops accepting connections on SIGTERM"
    );
    stream.read_to_end(&mut received).await.unwrap();

    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
        .expect("a content length");
    assert!(length > 5_000_000, "the answer is large enough to be in flight: {length} bytes");
    assert_eq!(body.len(), length, "the whole body arrived");
    let document: Value = serde_json::from_str(body).unwrap();
    assert_eq!(document["kpis"].as_array().unwrap().len(), 3000);
    assert!(server.wait().success(), "the server exits cleanly after the last answer");
}

/// A long history is indexed in bulk, writing search rows once at the end. Rows lost to an
/// interrupted run are rebuilt on the next start.
async fn bulk_index_keeps_search_complete(backend: Backend) {
    let data = tempfile::tempdir().unwrap();
    let tree = data.path().join("catalog");
    let registry = TestRegistry::with_catalog(backend, tree.clone()).await;
    let (ok, _, stderr) =
        registry.run(&["generate", "--kpis", "300", "--domains", "3", "--versions", "3", tree.to_str().unwrap()]);
    assert!(ok, "{stderr}");

    let server = registry.start().await;
    let (_, index) = server.get_json("/api/ontology/index.json").await;
    assert_eq!(index["ontology_version"], "301.0.0", "300 minor releases, then 300 major ones");
    let (status, found) = server.get_json("/api/ontology/search.json?q=synthetic%20kpi%2000007%20r1").await;
    assert_eq!(status, 200);
    assert_eq!(found["results"][0]["id"], "domain_001.kpi_00007", "{found}");
    assert_eq!(found["results"][0]["version"], "2.0.0");
    assert!(server.stop().success());

    // Lose the search rows, as a run interrupted before its last step would.
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", registry.sqlite_file().display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("DELETE FROM kpi_search").execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let url = &registry.database.as_ref().unwrap().url;
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query("DELETE FROM kpi_search").execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let server = registry.start().await;
    assert!(server.logs().contains("search rows are missing"));
    let (_, found) = server.get_json("/api/ontology/search.json?q=synthetic%20kpi%2000007%20r1").await;
    assert_eq!(found["results"][0]["id"], "domain_001.kpi_00007", "{found}");
}

on_each_backend!(
    bulk_index_keeps_search_complete,
    sigterm_finishes_in_flight_request,
    reindex_gives_identical_answers,
    unindexed_commit_indexed_on_start,
    export_writes_valid_tree,
    diff_reports_fields_and_bump,
    releases_and_atom_feed,
    search_ranks_matches,
    openapi_covers_every_route,
    logs_are_json_with_request_ids,
    compression_of_untagged_documents,
);
