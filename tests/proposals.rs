//! Change proposals, reviews and merges through a real server process on each database
//! backend: the workflow's states, the approval policy, validation on create and on merge,
//! version bumps, the git commits a merge writes, concurrent merges and the audit log.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::auth::{USER_PASSWORD, admin_token, call, get_as, registry, token_for};
use common::{Backend, TestRegistry, TestServer, assert_problem, git};
use reqwest::Method;
use serde_json::{Value, json};

const GRR: &str = "customers.gross_revenue_retention";
const NRR: &str = "customers.net_revenue_retention";
const LOGO_CHURN: &str = "customers.logo_churn_rate";
const NEW_FORMULA: &str = "Recurring revenue at period end from the starting cohort, excluding expansion, over that cohort's recurring revenue at period start, both at list price. Capped at 100 %.";

/// A running registry with one account per role and a second editor and reviewer.
struct Team {
    registry: TestRegistry,
    server: TestServer,
    admin: String,
    /// `edna`, the author of most proposals.
    editor: String,
    /// `eddie`, an editor who did not write them.
    other_editor: String,
    /// `rita`, who reviews most proposals.
    reviewer: String,
    /// `rob`, a second reviewer.
    other_reviewer: String,
    viewer: String,
}

impl Team {
    async fn start(backend: Backend) -> Team {
        Team::start_with(backend, &[]).await
    }

    async fn start_with(backend: Backend, args: &[&str]) -> Team {
        let registry = registry(backend).await;
        let server = registry.start_with(args).await;
        let admin = admin_token(&server).await;
        let mut tokens = BTreeMap::new();
        for (username, role) in
            [("edna", "editor"), ("eddie", "editor"), ("rita", "reviewer"), ("rob", "reviewer"), ("vic", "viewer")]
        {
            let body = json!({ "username": username, "password": USER_PASSWORD, "role": role });
            let response = call(&server, Method::POST, "/api/accounts", Some(&admin), Some(body)).await;
            assert_eq!(response.status(), 201, "create {username}: {}", response.text().await.unwrap());
            tokens.insert(username, token_for(&server, username, USER_PASSWORD).await);
        }
        Team {
            admin,
            editor: tokens["edna"].clone(),
            other_editor: tokens["eddie"].clone(),
            reviewer: tokens["rita"].clone(),
            other_reviewer: tokens["rob"].clone(),
            viewer: tokens["vic"].clone(),
            registry,
            server,
        }
    }

    fn repository(&self) -> std::path::PathBuf {
        self.registry.repository()
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        call(&self.server, Method::POST, path, Some(token), Some(body)).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        call(&self.server, Method::PUT, path, Some(token), Some(body)).await
    }

    /// Creates a proposal and returns its document, failing the test unless the status is 201.
    async fn propose(&self, token: &str, request: Value) -> Value {
        let response = self.post("/api/proposals", token, request).await;
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "create proposal: {body}");
        assert_eq!(location, Some(format!("/api/proposals/{}", body["id"])), "Location of {body}");
        body
    }

    async fn review(&self, token: &str, id: i64, verdict: &str) -> reqwest::Response {
        let body = json!({ "verdict": verdict, "comment": format!("{verdict} from the test") });
        self.post(&format!("/api/proposals/{id}/reviews"), token, body).await
    }

    /// Records a verdict and returns the review document, failing unless the status is 201.
    async fn verdict(&self, token: &str, id: i64, verdict: &str) -> Value {
        let response = self.review(token, id, verdict).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{verdict} of proposal {id}: {body}");
        body
    }

    async fn merge(&self, token: &str, id: i64) -> reqwest::Response {
        call(&self.server, Method::POST, &format!("/api/proposals/{id}/merge"), Some(token), None).await
    }

    /// Merges and returns the response body, failing the test unless the status is 200.
    async fn merged(&self, token: &str, id: i64) -> Value {
        let response = self.merge(token, id).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "merge of proposal {id}: {body}");
        body
    }

    async fn withdraw(&self, token: &str, id: i64) -> reqwest::Response {
        call(&self.server, Method::POST, &format!("/api/proposals/{id}/withdraw"), Some(token), None).await
    }

    async fn proposal(&self, id: i64) -> Value {
        let response = get_as(&self.server, &format!("/api/proposals/{id}"), &self.editor).await;
        assert_eq!(response.status(), 200, "GET proposal {id}");
        response.json().await.unwrap()
    }

    async fn list(&self, query: &str) -> Value {
        let response = get_as(&self.server, &format!("/api/proposals{query}"), &self.editor).await;
        assert_eq!(response.status(), 200, "GET /api/proposals{query}");
        response.json().await.unwrap()
    }

    /// Proposes `edit` of the KPI's current record as edna and approves it as rita.
    async fn approved_change(&self, kpi: &str, title: &str, edit: impl FnOnce(&mut Value)) -> i64 {
        let record = current_record(&self.server, kpi).await;
        let proposal = self.propose(&self.editor, change_request(&record, title, edit)).await;
        let id = proposal["id"].as_i64().unwrap();
        let review = self.verdict(&self.reviewer, id, "approve").await;
        assert_eq!(review["proposal_state"], "approved", "{review}");
        id
    }
}

fn kpi_path(kpi: &str) -> String {
    let (domain, key) = kpi.split_once('.').unwrap();
    format!("/api/ontology/{domain}/{key}.json")
}

/// Fetches the KPI's latest record as the read API serves it.
async fn current_record(server: &TestServer, kpi: &str) -> Value {
    let (status, body) = server.get_json(&kpi_path(kpi)).await;
    assert_eq!(status, 200, "GET {kpi}");
    body
}

/// Builds a proposal request that changes a KPI from its current version.
fn change_request(record: &Value, title: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut edited = record.clone();
    edit(&mut edited);
    json!({
        "kpi_id": record["id"],
        "base_version": record["version"],
        "record": edited,
        "title": title,
        "rationale": "The test needs this change.",
        "bump": null,
    })
}

/// Builds a proposal request that creates `id` from a copy of another KPI's record.
fn creation_request(template: &Value, id: &str, name: &str, domain: Option<Value>) -> Value {
    let mut record = template.clone();
    record["id"] = json!(id);
    record["name"] = json!(name);
    record["related"] = json!([]);
    record["replaced_by"] = Value::Null;
    record["version"] = json!("9.9.9");
    let mut request = json!({
        "kpi_id": id,
        "base_version": null,
        "record": record,
        "title": format!("Add {name}"),
        "rationale": "Boards ask for it.",
        "bump": null,
    });
    if let Some(domain) = domain {
        request["domain"] = domain;
    }
    request
}

fn set(field: &'static str, value: Value) -> impl FnOnce(&mut Value) {
    move |record: &mut Value| record[field] = value
}

fn id_of(proposal: &Value) -> i64 {
    proposal["id"].as_i64().unwrap_or_else(|| panic!("no id in {proposal}"))
}

/// Fields named by a validation problem's `errors`.
fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {problem}");
            e["field"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn commit_count(team: &Team) -> usize {
    git(&team.repository(), &["rev-list", "--count", "main"]).trim().parse().unwrap()
}

fn tags(team: &Team) -> BTreeSet<String> {
    git(&team.repository(), &["tag", "--list"]).lines().map(str::to_owned).collect()
}

fn tag_commit(team: &Team, tag: &str) -> String {
    git(&team.repository(), &["rev-parse", &format!("{tag}^{{commit}}")]).trim().to_owned()
}

/// `(key, value)` pairs of a commit's trailers.
fn trailers(team: &Team, commit: &str) -> Vec<(String, String)> {
    git(&team.repository(), &["show", "-s", "--format=%(trailers:only,unfold)", commit])
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

async fn fetch_bytes(server: &TestServer, path: &str) -> Vec<u8> {
    let response = server.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------
// The whole story

async fn formula_change_end_to_end(backend: Backend) {
    let team = Team::start(backend).await;
    let pinned_paths = [
        "/api/ontology/customers/gross_revenue_retention.json?version=1.0.0",
        "/api/ontology/customers/gross_revenue_retention.json?ontology=1.0.0",
        "/api/ontology/customers.json?ontology=1.0.0",
        "/api/ontology/index.json?ontology=1.0.0",
    ];
    let mut pinned_before = Vec::new();
    for path in pinned_paths {
        pinned_before.push(fetch_bytes(&team.server, path).await);
    }
    let before = current_record(&team.server, GRR).await;
    assert_eq!(before["version"], "1.0.0");
    let old_formula = before["formula"].as_str().unwrap().to_owned();

    let title = "Measure GRR on ARR at list price";
    let proposal = team.propose(&team.editor, change_request(&before, title, set("formula", json!(NEW_FORMULA)))).await;
    let id = id_of(&proposal);
    assert_eq!(proposal["state"], "open");
    assert_eq!(proposal["revision"], 1);
    assert_eq!(proposal["author"], "edna");
    assert_eq!(proposal["kind"], "change");
    assert_eq!(proposal["base_version"], "1.0.0");
    assert_eq!(proposal["minimum_bump"], "major");
    assert_eq!(proposal["reasons"], json!([{ "field": "formula", "bump": "major" }]));
    let changes = proposal["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{proposal}");
    assert_eq!(changes[0]["field"], "formula");
    assert_eq!(changes[0]["before"], old_formula.as_str());
    assert_eq!(changes[0]["after"], NEW_FORMULA);

    let response = team.review(&team.reviewer, id, "approve").await;
    assert_eq!(response.status(), 201);
    let location = response.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let review: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/proposals/{id}/reviews/{}", review["id"]));
    assert_eq!(review["proposal_state"], "approved");
    assert_eq!(review["reviewer"], "rita");
    assert_eq!(review["verdict"], "approve");
    let (status, shown) = {
        let response = get_as(&team.server, &location, &team.editor).await;
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(shown["id"], review["id"]);

    let merged = team.merged(&team.reviewer, id).await;
    let commit = merged["commit"].as_str().unwrap().to_owned();
    assert_eq!(
        merged,
        json!({ "kpi_id": GRR, "version": "2.0.0", "ontology_version": "2.0.0", "commit": commit }),
        "merge answer"
    );

    // The commit: author the proposer, committer the registry, title and trailers.
    let repository = team.repository();
    assert_eq!(git(&repository, &["rev-parse", "main"]).trim(), commit);
    assert_eq!(git(&repository, &["show", "-s", "--format=%an", &commit]).trim(), "edna");
    let committer = git(&repository, &["show", "-s", "--format=%cn <%ce>", &commit]);
    let registry_identity = git(&repository, &["show", "-s", "--format=%cn <%ce>", "v1.0.0"]);
    assert_eq!(committer, registry_identity, "the registry commits merges");
    assert!(!committer.contains("edna"), "{committer}");
    assert_eq!(git(&repository, &["show", "-s", "--format=%s", &commit]).trim(), format!("{GRR} 2.0.0: {title}"));
    let found = trailers(&team, &commit);
    for expected in [("Proposal", id.to_string()), ("Reviewed-by", "rita".into()), ("Bump", "major".into())] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1.clone())),
            "trailer {expected:?} missing from {found:?}"
        );
    }
    assert_eq!(found.iter().filter(|(k, _)| k == "Reviewed-by").count(), 1, "{found:?}");
    assert_eq!(tag_commit(&team, "v2.0.0"), commit);
    assert_eq!(git(&repository, &["rev-parse", "main~1"]).trim(), tag_commit(&team, "v1.0.0"));

    // Ranges and the unpinned record.
    let (_, caret_one) = team.server.get_json(&format!("{}?version=^1", kpi_path(GRR))).await;
    assert_eq!(caret_one["version"], "1.0.0");
    assert_eq!(caret_one["formula"], old_formula.as_str());
    let (_, caret_two) = team.server.get_json(&format!("{}?version=^2", kpi_path(GRR))).await;
    assert_eq!(caret_two["version"], "2.0.0");
    assert_eq!(caret_two["formula"], NEW_FORMULA);
    assert_eq!(caret_two["released_in"], "2.0.0");
    let latest = current_record(&team.server, GRR).await;
    assert_eq!(latest["formula"], NEW_FORMULA);

    // Version history, releases, the feed and the diff.
    let (_, versions) = team.server.get_json("/api/ontology/customers/gross_revenue_retention/versions.json").await;
    let newest = &versions["versions"][0];
    assert_eq!(newest["version"], "2.0.0");
    assert_eq!(newest["bump"], "major");
    assert_eq!(newest["commit"], commit.as_str());
    assert_eq!(newest["ontology_version"], "2.0.0");
    assert_eq!(newest["title"], title);
    assert_eq!(newest["proposal"], id.to_string());
    assert_eq!(versions["versions"][1]["version"], "1.0.0");

    let (_, releases) = team.server.get_json("/api/ontology/releases.json").await;
    let release = &releases["releases"][0];
    assert_eq!(release["ontology_version"], "2.0.0");
    assert_eq!(release["commit"], commit.as_str());
    assert_eq!(release["bump"], "major");
    assert_eq!(
        release["changes"],
        json!([{ "id": GRR, "from": "1.0.0", "to": "2.0.0", "bump": "major", "title": title }])
    );

    let feed = String::from_utf8(fetch_bytes(&team.server, "/api/ontology/releases.atom").await).unwrap();
    assert!(feed.contains("Ontology 2.0.0"), "{feed}");
    assert!(feed.contains(title), "{feed}");

    let (status, diff) =
        team.server.get_json("/api/ontology/customers/gross_revenue_retention/diff.json?from=1.0.0&to=2.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(diff["bump"], "major");
    assert_eq!(diff["changes"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(diff["changes"][0]["field"], "formula");
    assert_eq!(diff["changes"][0]["after"], NEW_FORMULA);

    let (_, index) = team.server.get_json("/api/ontology/index.json").await;
    assert_eq!(index["ontology_version"], "2.0.0");
    assert_eq!(index["commit"], commit.as_str());

    // Exact pins of the old version return the same bytes.
    for (path, before) in pinned_paths.iter().zip(&pinned_before) {
        let after = fetch_bytes(&team.server, path).await;
        assert_eq!(String::from_utf8_lossy(&after), String::from_utf8_lossy(before), "{path} changed");
    }

    // The proposal records where it landed.
    let shown = team.proposal(id).await;
    assert_eq!(shown["state"], "merged");
    assert_eq!(shown["merged"]["version"], "2.0.0");
    assert_eq!(shown["merged"]["ontology_version"], "2.0.0");
    assert_eq!(shown["merged"]["commit"], commit.as_str());
    assert_eq!(shown["merged"]["merged_by"], "rita");
}

// ---------------------------------------------------------------------------------------
// The workflow's states

async fn review_verdicts_move_states(backend: Backend) {
    let team = Team::start(backend).await;

    // open -> approved -> open (request_changes) -> approved -> rejected.
    let id = team.approved_change(GRR, "Shorter summary", set("summary", json!("GRR, shortened."))).await;
    let requested = team.verdict(&team.other_reviewer, id, "request_changes").await;
    assert_eq!(requested["proposal_state"], "open");
    assert_eq!(requested["policy"]["changes_requested"], json!(["rob"]));
    assert_eq!(requested["policy"]["met"], false);
    assert_problem(team.merge(&team.reviewer, id).await, 409, "not_approved").await;
    let approved = team.verdict(&team.other_reviewer, id, "approve").await;
    assert_eq!(approved["proposal_state"], "approved", "a later verdict replaces the earlier one");
    assert_eq!(approved["policy"]["approvals"], json!(["rita", "rob"]));
    let rejected = team.verdict(&team.other_reviewer, id, "reject").await;
    assert_eq!(rejected["proposal_state"], "rejected");
    assert_eq!(team.proposal(id).await["state"], "rejected");
    assert_terminal(&team, id).await;

    // open -> rejected.
    let record = current_record(&team.server, NRR).await;
    let open = team.propose(&team.editor, change_request(&record, "NRR wording", set("summary", json!("NRR.")))).await;
    assert_eq!(team.verdict(&team.reviewer, id_of(&open), "reject").await["proposal_state"], "rejected");
    assert_terminal(&team, id_of(&open)).await;

    // request_changes on an open proposal keeps it open; the author's update clears it.
    let record = current_record(&team.server, LOGO_CHURN).await;
    let proposal = team
        .propose(&team.editor, change_request(&record, "Logo churn wording", set("summary", json!("Churn."))))
        .await;
    let id = id_of(&proposal);
    assert_eq!(team.verdict(&team.other_reviewer, id, "request_changes").await["proposal_state"], "open");
    assert_eq!(
        team.verdict(&team.reviewer, id, "approve").await["proposal_state"],
        "open",
        "rob still asks for changes"
    );
    let response =
        team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "rationale": "Answered rob." })).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["policy"]["changes_requested"], json!([]));
    assert_eq!(updated["policy"]["approvals"], json!([]));
    assert_eq!(team.verdict(&team.reviewer, id, "approve").await["proposal_state"], "approved");
    let merged = team.merged(&team.reviewer, id).await;
    assert_eq!(merged["version"], "1.0.1");

    // Every review of every revision is listed, oldest first.
    let response = get_as(&team.server, &format!("/api/proposals/{id}/reviews"), &team.reviewer).await;
    assert_eq!(response.status(), 200);
    let reviews: Value = response.json().await.unwrap();
    let summary: Vec<(i64, String, String)> = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["reviewer"].as_str().unwrap().into(),
                r["verdict"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "rob".to_owned(), "request_changes".to_owned()),
            (1, "rita".to_owned(), "approve".to_owned()),
            (2, "rita".to_owned(), "approve".to_owned()),
        ]
    );
    let response = get_as(&team.server, &format!("/api/proposals/{id}/reviews/999999"), &team.reviewer).await;
    assert_problem(response, 404, "not_found").await;

    // An unknown verdict is a validation failure.
    let problem = assert_problem(team.review(&team.reviewer, id, "maybe").await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["verdict"]);
    let body = json!({ "verdict": "approve", "comment": "Fine\u{0}" });
    let response = team.post(&format!("/api/proposals/{id}/reviews"), &team.reviewer, body).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["comment"]);
}

/// Checks that reviews, updates, withdrawals and merges of a finished proposal fail with 409.
async fn assert_terminal(team: &Team, id: i64) {
    for verdict in ["approve", "request_changes", "reject"] {
        assert_problem(team.review(&team.other_reviewer, id, verdict).await, 409, "invalid_transition").await;
    }
    let update = team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "title": "Another title" })).await;
    assert_problem(update, 409, "invalid_transition").await;
    assert_problem(team.withdraw(&team.editor, id).await, 409, "invalid_transition").await;
    assert_problem(team.merge(&team.reviewer, id).await, 409, "invalid_transition").await;
}

async fn withdraw_and_authorship(backend: Backend) {
    let team = Team::start(backend).await;
    let record = current_record(&team.server, GRR).await;

    // open -> withdrawn.
    let open = team.propose(&team.editor, change_request(&record, "GRR wording", set("summary", json!("GRR.")))).await;
    let id = id_of(&open);
    for token in [&team.other_editor, &team.reviewer, &team.admin] {
        assert_problem(team.withdraw(token, id).await, 403, "forbidden").await;
        let update = team.put(&format!("/api/proposals/{id}"), token, json!({ "title": "Hijacked" })).await;
        assert_problem(update, 403, "forbidden").await;
    }
    let response = team.withdraw(&team.editor, id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["state"], "withdrawn");
    assert_terminal(&team, id).await;

    // approved -> withdrawn.
    let id = team.approved_change(GRR, "GRR wording again", set("summary", json!("GRR, again."))).await;
    let response = team.withdraw(&team.editor, id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(team.proposal(id).await["state"], "withdrawn");
    assert_terminal(&team, id).await;

    // merged: nothing moves any more.
    let id = team.approved_change(GRR, "GRR wording, merged", set("summary", json!("GRR, merged."))).await;
    team.merged(&team.reviewer, id).await;
    assert_terminal(&team, id).await;

    // Authors cannot approve their own proposal, admins included.
    let record = current_record(&team.server, NRR).await;
    let own = team.propose(&team.reviewer, change_request(&record, "NRR wording", set("summary", json!("NRR.")))).await;
    assert_problem(team.review(&team.reviewer, id_of(&own), "approve").await, 403, "self_approval_forbidden").await;
    let admins = team.propose(&team.admin, change_request(&record, "NRR words", set("summary", json!("NRR!")))).await;
    assert_problem(team.review(&team.admin, id_of(&admins), "approve").await, 403, "self_approval_forbidden").await;
    assert_eq!(team.proposal(id_of(&admins)).await["reviews"], json!([]));

    // Merging needs approval and the reviewer role.
    assert_problem(team.merge(&team.reviewer, id_of(&own)).await, 409, "not_approved").await;
    team.verdict(&team.other_reviewer, id_of(&own), "approve").await;
    assert_problem(team.merge(&team.editor, id_of(&own)).await, 403, "forbidden").await;
    assert_problem(team.review(&team.editor, id_of(&own), "approve").await, 403, "forbidden").await;
    assert_problem(team.merge(&team.viewer, id_of(&own)).await, 403, "forbidden").await;

    // Viewers cannot propose or read proposals; anonymous callers are not signed in.
    let request = change_request(&record, "NRR by a viewer", set("summary", json!("NRR?")));
    assert_problem(team.post("/api/proposals", &team.viewer, request.clone()).await, 403, "forbidden").await;
    assert_problem(get_as(&team.server, "/api/proposals", &team.viewer).await, 403, "forbidden").await;
    let anonymous = call(&team.server, Method::POST, "/api/proposals", None, Some(request)).await;
    assert_problem(anonymous, 401, "unauthenticated").await;
    assert_problem(get_as(&team.server, "/api/proposals/999999", &team.editor).await, 404, "not_found").await;
}

async fn two_approvals_required(backend: Backend) {
    let team = Team::start_with(backend, &["--required-approvals", "2"]).await;
    let record = current_record(&team.server, GRR).await;
    let proposal = team
        .propose(&team.editor, change_request(&record, "Formula at list price", set("formula", json!(NEW_FORMULA))))
        .await;
    let id = id_of(&proposal);
    assert_eq!(proposal["policy"]["required_approvals"], 2);

    let first = team.verdict(&team.reviewer, id, "approve").await;
    assert_eq!(first["proposal_state"], "open");
    assert_eq!(first["policy"]["approvals"], json!(["rita"]));
    assert_problem(team.merge(&team.reviewer, id).await, 409, "not_approved").await;

    let again = team.verdict(&team.reviewer, id, "approve").await;
    assert_eq!(again["proposal_state"], "open", "the same reviewer counts once");
    assert_eq!(again["policy"]["approvals"], json!(["rita"]));

    let second = team.verdict(&team.other_reviewer, id, "approve").await;
    assert_eq!(second["proposal_state"], "approved");
    assert_eq!(second["policy"]["approvals"], json!(["rita", "rob"]));

    // An update starts a new revision: the approvals stop counting.
    let mut edited = record.clone();
    edited["formula"] = json!(format!("{NEW_FORMULA} Measured over twelve months."));
    let response = team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "record": edited })).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["state"], "open");
    assert_eq!(updated["policy"]["approvals"], json!([]));
    assert_eq!(updated["policy"]["met"], false);
    assert_problem(team.merge(&team.reviewer, id).await, 409, "not_approved").await;

    assert_eq!(team.verdict(&team.other_reviewer, id, "approve").await["proposal_state"], "open");
    assert_eq!(team.verdict(&team.reviewer, id, "approve").await["proposal_state"], "approved");
    let merged = team.merged(&team.admin, id).await;
    assert_eq!(merged["version"], "2.0.0");
    let reviewed_by: Vec<String> = trailers(&team, merged["commit"].as_str().unwrap())
        .into_iter()
        .filter(|(key, _)| key == "Reviewed-by")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(reviewed_by, ["rob", "rita"], "one trailer per approval of the merged revision");
}

async fn list_filters_and_pages(backend: Backend) {
    let team = Team::start(backend).await;
    assert_eq!(team.list("").await, json!({ "proposals": [], "next": null }));

    let mut ids = Vec::new();
    for (kpi, summary) in [(GRR, "One."), (NRR, "Two."), (GRR, "Three."), (LOGO_CHURN, "Four."), (GRR, "Five.")] {
        let record = current_record(&team.server, kpi).await;
        let proposal =
            team.propose(&team.editor, change_request(&record, summary, set("summary", json!(summary)))).await;
        ids.push(id_of(&proposal));
    }
    team.withdraw(&team.editor, ids[1]).await;

    let listed = |page: &Value| -> Vec<i64> {
        page["proposals"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect()
    };
    let all = team.list("").await;
    assert_eq!(listed(&all), [ids[4], ids[3], ids[2], ids[1], ids[0]], "newest first");
    assert_eq!(all["proposals"][0]["url"], format!("/api/proposals/{}", ids[4]));
    assert_eq!(listed(&team.list(&format!("?kpi={GRR}")).await), [ids[4], ids[2], ids[0]]);
    assert_eq!(listed(&team.list("?state=withdrawn").await), [ids[1]]);
    assert_eq!(listed(&team.list(&format!("?state=open&kpi={NRR}")).await), Vec::<i64>::new());

    let first = team.list(&format!("?kpi={GRR}&limit=2")).await;
    assert_eq!(listed(&first), [ids[4], ids[2]]);
    let next = first["next"].as_str().unwrap().to_owned();
    let response = get_as(&team.server, &next, &team.editor).await;
    let second: Value = response.json().await.unwrap();
    assert_eq!(listed(&second), [ids[0]]);

    for query in ["?state=lost", "?limit=0", "?limit=201"] {
        let response = get_as(&team.server, &format!("/api/proposals{query}"), &team.editor).await;
        assert_problem(response, 400, "malformed_request").await;
    }
}

// ---------------------------------------------------------------------------------------
// Stale bases

async fn stale_base_rejected_then_rebased(backend: Backend) {
    let team = Team::start(backend).await;
    let base = current_record(&team.server, GRR).await;
    let first = team
        .propose(&team.editor, change_request(&base, "Formula at list price", set("formula", json!(NEW_FORMULA))))
        .await;
    let new_summary = "The share of starting recurring revenue kept after churn and contraction.";
    let second =
        team.propose(&team.editor, change_request(&base, "Plainer summary", set("summary", json!(new_summary)))).await;
    let clashing = team
        .propose(
            &team.other_editor,
            change_request(&base, "Another formula", set("formula", json!("Kept revenue over starting revenue."))),
        )
        .await;
    for proposal in [&first, &second, &clashing] {
        team.verdict(&team.reviewer, id_of(proposal), "approve").await;
    }
    assert_eq!(team.merged(&team.reviewer, id_of(&first)).await["version"], "2.0.0");

    let commits = commit_count(&team);
    let tags_before = tags(&team);
    let head = git(&team.repository(), &["rev-parse", "main"]);
    let problem = assert_problem(team.merge(&team.reviewer, id_of(&second)).await, 409, "base_version_outdated").await;
    assert!(problem["detail"].as_str().unwrap().contains("2.0.0"), "{problem}");
    assert_eq!(commit_count(&team), commits, "a failed merge writes no commit");
    assert_eq!(tags(&team), tags_before, "a failed merge writes no tag");
    assert_eq!(git(&team.repository(), &["rev-parse", "main"]), head);
    assert_eq!(team.proposal(id_of(&second)).await["state"], "approved");

    // Rebasing keeps the proposal's own change and the change merged meanwhile.
    let id = id_of(&second);
    let response = team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "base_version": "2.0.0" })).await;
    let status = response.status();
    let rebased: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{rebased}");
    assert_eq!(rebased["base_version"], "2.0.0");
    assert_eq!(rebased["revision"], 2);
    assert_eq!(rebased["state"], "open");
    assert_eq!(rebased["record"]["formula"], NEW_FORMULA, "the rebase kept the merged formula");
    assert_eq!(rebased["record"]["summary"], new_summary);
    assert_eq!(rebased["minimum_bump"], "patch");
    assert_eq!(rebased["reasons"], json!([{ "field": "summary", "bump": "patch" }]));

    assert_problem(team.merge(&team.reviewer, id).await, 409, "not_approved").await;
    team.verdict(&team.reviewer, id, "approve").await;
    let merged = team.merged(&team.reviewer, id).await;
    assert_eq!(merged["version"], "2.0.1");
    assert_eq!(merged["ontology_version"], "2.0.1");
    let latest = current_record(&team.server, GRR).await;
    assert_eq!(latest["formula"], NEW_FORMULA);
    assert_eq!(latest["summary"], new_summary);

    // A rebase onto a version that changed the same field differently is a conflict the
    // author resolves by sending the record.
    let clash = id_of(&clashing);
    assert_problem(team.merge(&team.reviewer, clash).await, 409, "base_version_outdated").await;
    let response =
        team.put(&format!("/api/proposals/{clash}"), &team.other_editor, json!({ "base_version": "2.0.1" })).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["record.formula"]);
    let mut resolved = latest.clone();
    resolved["formula"] = json!("Kept revenue over starting revenue, at list price.");
    let response = team
        .put(
            &format!("/api/proposals/{clash}"),
            &team.other_editor,
            json!({ "base_version": "2.0.1", "record": resolved }),
        )
        .await;
    assert_eq!(response.status(), 200);
    team.verdict(&team.reviewer, clash, "approve").await;
    assert_eq!(team.merged(&team.reviewer, clash).await["version"], "3.0.0");

    // A base version the KPI never had is invalid, not outdated.
    let mut request = change_request(&latest, "From nowhere", set("summary", json!("Nowhere.")));
    request["base_version"] = json!("7.0.0");
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["base_version"]);
}

// ---------------------------------------------------------------------------------------
// Validation

async fn validation_on_create_and_merge(backend: Backend) {
    let team = Team::start(backend).await;
    let grr = current_record(&team.server, GRR).await;

    // Two proposals may create the same KPI; only the first merge can.
    let create = creation_request(&grr, "customers.expansion_rate", "Expansion rate", None);
    let first = team.propose(&team.editor, create.clone()).await;
    let second = team.propose(&team.other_editor, create).await;
    assert_eq!(first["kind"], "creation");
    assert_eq!(first["minimum_bump"], "minor");
    for proposal in [&first, &second] {
        team.verdict(&team.reviewer, id_of(proposal), "approve").await;
    }
    assert_eq!(team.merged(&team.reviewer, id_of(&first)).await["version"], "1.0.0");
    let commits = commit_count(&team);
    let problem = assert_problem(team.merge(&team.reviewer, id_of(&second)).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["kpi_id"]);
    assert_eq!(commit_count(&team), commits);
    assert_eq!(team.proposal(id_of(&second)).await["state"], "approved");

    // `related` must name KPIs of the catalog as it is now, not of unmerged proposals.
    team.propose(&team.editor, creation_request(&grr, "customers.pending_kpi", "Pending KPI", None)).await;
    let request = change_request(&grr, "Relate a pending KPI", |record| {
        record["related"].as_array_mut().unwrap().push(json!("customers.pending_kpi"));
    });
    let related_index = grr["related"].as_array().unwrap().len();
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), [format!("record.related[{related_index}]")]);

    let stored = team.list("").await["proposals"].as_array().unwrap().len();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("record id differs", change_request(&grr, "Other id", set("id", json!(NRR))), vec!["record.id"]),
        ("unknown enum", change_request(&grr, "Unknown type", set("type", json!("fraction"))), vec!["record.type"]),
        (
            "unknown stage",
            change_request(
                &grr,
                "Unknown stage",
                set("stage_relevance", json!([{ "stage": "ipo", "priority": "required" }])),
            ),
            vec!["record.stage_relevance[0].stage"],
        ),
        (
            "missing field",
            change_request(&grr, "No formula", |record| {
                record.as_object_mut().unwrap().remove("formula");
            }),
            vec!["record.formula"],
        ),
        ("empty name", change_request(&grr, "Empty name", set("name", json!(""))), vec!["record.name"]),
        (
            "title with a newline",
            change_request(&grr, "Formula\nReviewed-by: mallory", set("formula", json!(NEW_FORMULA))),
            vec!["title"],
        ),
        ("empty title", change_request(&grr, "   ", set("formula", json!(NEW_FORMULA))), vec!["title"]),
        (
            "only CRLF and trailing spaces differ",
            change_request(&grr, "Nothing", |record| {
                let definition = record["definition"].as_str().unwrap().replace('\n', "\r\n");
                record["definition"] = json!(definition);
                record["summary"] = json!(format!("{}   ", record["summary"].as_str().unwrap()));
            }),
            vec!["record"],
        ),
        (
            "record not an object",
            json!({ "kpi_id": GRR, "base_version": "1.0.0", "record": [1], "title": "x", "rationale": "x", "bump": null }),
            vec!["record"],
        ),
        (
            "invalid kpi id",
            {
                let mut r = change_request(&grr, "Bad id", set("summary", json!("x")));
                r["kpi_id"] = json!("Customers/../x");
                r
            },
            vec!["kpi_id"],
        ),
    ];
    for (case, request, fields) in cases {
        let response = team.post("/api/proposals", &team.editor, request).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), fields, "{case}: {problem}");
    }

    for rationale in ["", "  \n "] {
        let mut request = change_request(&grr, "No rationale", set("formula", json!(NEW_FORMULA)));
        request["rationale"] = json!(rationale);
        let problem =
            assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), ["rationale"]);
    }

    // Control characters, which PostgreSQL cannot store as text, and characters that
    // disguise a name are rejected as invalid, not as a server error.
    let mut request = change_request(&grr, "NUL in the rationale", set("formula", json!(NEW_FORMULA)));
    request["rationale"] = json!("Because\u{0}.");
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["rationale"]);
    let domain = json!({ "name": "Le\u{202E}gal", "description": "Contracts\u{0}." });
    let request = creation_request(&grr, "legal.hidden_text", "Hidden text", Some(domain));
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["domain.name", "domain.description"]);

    // Every broken rule of the request is listed at once.
    let mut request = change_request(&grr, "Two\nlines", set("formula", json!(NEW_FORMULA)));
    request["rationale"] = json!("");
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["title", "rationale"]);

    // Path and query values that do not parse are named in the detail.
    for (path, named) in [("/api/proposals/abc", "abc"), ("/api/proposals?before=zzz", "before")] {
        let response = team.server.client.get(team.server.url(path)).bearer_auth(&team.editor).send().await.unwrap();
        let problem = assert_problem(response, 400, "malformed_request").await;
        assert!(problem["detail"].as_str().unwrap().contains(named), "{path}: {problem}");
    }

    // Bodies that are not the JSON this endpoint takes.
    let url = team.server.url("/api/proposals");
    let response = team
        .server
        .client
        .post(&url)
        .bearer_auth(&team.editor)
        .header("content-type", "application/json")
        .body("{\"kpi_id\":")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "malformed_request").await;
    let response = team
        .server
        .client
        .post(&url)
        .bearer_auth(&team.editor)
        .header("content-type", "application/json")
        .body(json!({ "kpi_id": GRR, "surprise": true }).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "malformed_request").await;
    let response = team
        .server
        .client
        .post(&url)
        .bearer_auth(&team.editor)
        .body(json!({ "kpi_id": GRR }).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;
    let mut huge = change_request(&grr, "Huge", set("formula", json!(NEW_FORMULA)));
    huge["rationale"] = json!("x".repeat(2 * 1024 * 1024));
    // The server closes the connection without reading the body, so the request goes on a
    // client of its own, whose closed connection no later request reuses.
    let single_use = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = single_use.post(&url).bearer_auth(&team.editor).json(&huge).send().await.unwrap();
    assert_problem(response, 413, "payload_too_large").await;

    assert_eq!(team.list("").await["proposals"].as_array().unwrap().len(), stored, "rejected requests store nothing");
}

// ---------------------------------------------------------------------------------------
// Bumps

async fn bumps_minimum_and_requested(backend: Backend) {
    let team = Team::start(backend).await;
    let grr = current_record(&team.server, GRR).await;
    let summary = "GRR: the share of starting recurring revenue still in place after churn and contraction.";

    // A dry run answers the assessment and stores nothing.
    let request = change_request(&grr, "Plainer summary", set("summary", json!(summary)));
    let response = team.post("/api/proposals?dry_run=true", &team.editor, request.clone()).await;
    assert_eq!(response.status(), 200);
    let dry: Value = response.json().await.unwrap();
    assert_eq!(dry["valid"], true, "{dry}");
    assert_eq!(dry["errors"], json!([]));
    assert_eq!(dry["minimum_bump"], "patch");
    assert_eq!(dry["reasons"], json!([{ "field": "summary", "bump": "patch" }]));
    assert_eq!(dry["changes"][0]["field"], "summary");
    assert_eq!(dry["changes"][0]["after"], summary);
    assert_eq!(dry["version"], "1.0.1");
    assert_eq!(dry["ontology_version"], "1.0.1");
    assert_eq!(team.list("").await["proposals"], json!([]), "a dry run stores nothing");

    let invalid = change_request(&grr, "Formula as a patch", set("formula", json!(NEW_FORMULA)));
    let mut invalid = invalid;
    invalid["bump"] = json!("patch");
    let response = team.post("/api/proposals?dry_run=true", &team.editor, invalid.clone()).await;
    assert_eq!(response.status(), 200);
    let dry: Value = response.json().await.unwrap();
    assert_eq!(dry["valid"], false);
    assert_eq!(error_fields(&dry), ["bump"]);
    // The findings still show the minimum and the reasons, so the editor can request it.
    assert_eq!(dry["minimum_bump"], "major");
    assert_eq!(dry["reasons"], json!([{ "field": "formula", "bump": "major" }]));
    assert_eq!(dry["changes"][0]["field"], "formula");
    assert_eq!(dry["version"], Value::Null, "an invalid change creates no version");
    assert_eq!(team.list("").await["proposals"], json!([]));

    // A bump below the minimum is rejected at create, naming the field that needs more.
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, invalid).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["bump"]);
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("formula"), "{problem}");
    let mut unknown = request.clone();
    unknown["bump"] = json!("huge");
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, unknown).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["bump"]);

    // Wording merges as a patch of the KPI and of the ontology.
    let proposal = team.propose(&team.editor, request).await;
    assert_eq!(proposal["minimum_bump"], "patch");
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    let merged = team.merged(&team.reviewer, id_of(&proposal)).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("1.0.1"), Some("1.0.1")));
    assert_eq!(
        trailers(&team, merged["commit"].as_str().unwrap()).iter().find(|(k, _)| k == "Bump").unwrap().1,
        "patch"
    );

    // A requested bump above the minimum is applied, to the KPI and to the ontology.
    let nrr = current_record(&team.server, NRR).await;
    let mut raised = change_request(&nrr, "Plainer NRR summary", set("summary", json!("NRR, plainly.")));
    raised["bump"] = json!("major");
    let proposal = team.propose(&team.editor, raised).await;
    assert_eq!(proposal["minimum_bump"], "patch");
    assert_eq!(proposal["bump"], "major");
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    let merged = team.merged(&team.reviewer, id_of(&proposal)).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("2.0.0"), Some("2.0.0")));
    assert_eq!(
        trailers(&team, merged["commit"].as_str().unwrap()).iter().find(|(k, _)| k == "Bump").unwrap().1,
        "major"
    );

    // A name change is minor; the author can raise the bump and clear it again.
    let logo = current_record(&team.server, LOGO_CHURN).await;
    let mut renamed = change_request(&logo, "Rename logo churn", set("name", json!("Logo churn")));
    renamed["bump"] = json!("major");
    let proposal = team.propose(&team.editor, renamed).await;
    let id = id_of(&proposal);
    let response = team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "bump": null })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["bump"], Value::Null, "null clears the requested bump");
    team.verdict(&team.reviewer, id, "approve").await;
    let merged = team.merged(&team.reviewer, id).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("1.1.0"), Some("2.1.0")));
}

// ---------------------------------------------------------------------------------------
// New KPIs, new domains and deprecation

async fn new_kpis_domains_and_deprecation(backend: Backend) {
    let team = Team::start(backend).await;
    let grr = current_record(&team.server, GRR).await;

    // A new KPI in an existing domain starts at 1.0.0 as a minor ontology release.
    let proposal =
        team.propose(&team.editor, creation_request(&grr, "customers.expansion_rate", "Expansion rate", None)).await;
    assert_eq!(proposal["base_version"], Value::Null);
    assert_eq!(proposal["reasons"], json!([{ "field": "kpi_id", "bump": "minor" }]));
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    let merged = team.merged(&team.reviewer, id_of(&proposal)).await;
    assert_eq!(merged["kpi_id"], "customers.expansion_rate");
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("1.0.0"), Some("1.1.0")));
    let created = current_record(&team.server, "customers.expansion_rate").await;
    assert_eq!(created["version"], "1.0.0");
    assert_eq!(created["released_in"], "1.1.0");
    assert_eq!(
        trailers(&team, merged["commit"].as_str().unwrap()).iter().find(|(k, _)| k == "Bump").unwrap().1,
        "minor"
    );

    // A new domain needs its name and description, and a known domain must not get them.
    let orphan = creation_request(&grr, "legal.contract_cycle_time", "Contract cycle time", None);
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, orphan).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["domain"]);
    let domain = json!({ "name": "Customers again", "description": "A second customers domain." });
    let twice = creation_request(&grr, "customers.another_rate", "Another rate", Some(domain));
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, twice).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["domain"]);

    let domain = json!({ "name": "Legal", "description": "Contracts, compliance and disputes." });
    let request = creation_request(&grr, "legal.contract_cycle_time", "Contract cycle time", Some(domain.clone()));
    let proposal = team.propose(&team.editor, request).await;
    assert_eq!(proposal["domain"], domain);
    let rival_domain = json!({ "name": "Law", "description": "Legal work." });
    let rival_request = creation_request(&grr, "legal.open_matters", "Open matters", Some(rival_domain));
    let rival = team.propose(&team.other_editor, rival_request).await;
    team.verdict(&team.reviewer, id_of(&rival), "approve").await;
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    let merged = team.merged(&team.reviewer, id_of(&proposal)).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("1.0.0"), Some("1.2.0")));
    let (status, legal) = team.server.get_json("/api/ontology/legal.json").await;
    assert_eq!(status, 200);
    assert_eq!(legal["name"], "Legal");
    assert_eq!(legal["description"], "Contracts, compliance and disputes.");
    assert_eq!(legal["kpis"][0]["id"], "legal.contract_cycle_time");
    let (_, index) = team.server.get_json("/api/ontology/index.json").await;
    let listed = index["domains"].as_array().unwrap().iter().find(|d| d["id"] == "legal").expect("legal in index.json");
    assert_eq!(listed["url"], "/api/ontology/legal.json");
    assert_eq!(listed["kpis"][0]["id"], "legal.contract_cycle_time");
    let (status, _) = team.server.get_json("/api/ontology/legal.json?ontology=1.1.0").await;
    assert_eq!(status, 404, "the domain did not exist in 1.1.0");
    let files = git(&team.repository(), &["ls-tree", "--name-only", "main", "legal/"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), ["legal/contract_cycle_time.toml", "legal/domain.toml"]);

    // A rival proposal that opened the same domain merges once its author drops the domain.
    let rival = id_of(&rival);
    let problem = assert_problem(team.merge(&team.reviewer, rival).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["domain"]);
    let response = team.put(&format!("/api/proposals/{rival}"), &team.other_editor, json!({ "domain": null })).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["domain"], Value::Null);
    assert_eq!(updated["revision"], 2);
    team.verdict(&team.reviewer, rival, "approve").await;
    let merged = team.merged(&team.reviewer, rival).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("1.0.0"), Some("1.3.0")));
    let (_, legal) = team.server.get_json("/api/ontology/legal.json").await;
    assert_eq!(legal["name"], "Legal", "the first merge named the domain");
    assert_eq!(legal["kpis"].as_array().unwrap().len(), 2);

    // Only a new KPI opens a domain.
    let nrr = current_record(&team.server, NRR).await;
    let change = team.propose(&team.editor, change_request(&nrr, "NRR wording", set("summary", json!("NRR.")))).await;
    let body = json!({ "domain": { "name": "Customers", "description": "Again." } });
    let response = team.put(&format!("/api/proposals/{}", id_of(&change)), &team.editor, body).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["domain"]);
    team.withdraw(&team.editor, id_of(&change)).await;

    // Deprecation with a replacement is a major bump.
    let logo = current_record(&team.server, LOGO_CHURN).await;
    let deprecate = change_request(&logo, "Deprecate logo churn", |record| {
        record["status"] = json!("deprecated");
        record["replaced_by"] = json!(GRR);
    });
    for (replacement, reason) in [("customers.no_such_kpi", "missing"), (LOGO_CHURN, "itself")] {
        let mut request = deprecate.clone();
        request["record"]["replaced_by"] = json!(replacement);
        let problem =
            assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
        assert!(error_fields(&problem).contains(&"record.replaced_by".to_owned()), "{reason}: {problem}");
    }
    let proposal = team.propose(&team.editor, deprecate).await;
    assert_eq!(proposal["minimum_bump"], "major");
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    let merged = team.merged(&team.reviewer, id_of(&proposal)).await;
    assert_eq!((merged["version"].as_str(), merged["ontology_version"].as_str()), (Some("2.0.0"), Some("2.0.0")));
    let deprecated = current_record(&team.server, LOGO_CHURN).await;
    assert_eq!(deprecated["status"], "deprecated");
    assert_eq!(deprecated["replaced_by"], GRR);
    let (_, old) = team.server.get_json(&format!("{}?version=1.0.0", kpi_path(LOGO_CHURN))).await;
    assert_eq!(old["status"], "active");
    let (_, index) = team.server.get_json("/api/ontology/index.json").await;
    let entry = index["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["kpis"].as_array().unwrap())
        .find(|k| k["id"] == LOGO_CHURN)
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "deprecated");

    // A deprecated KPI cannot replace another.
    let nrr = current_record(&team.server, NRR).await;
    let request = change_request(&nrr, "Deprecate NRR", |record| {
        record["status"] = json!("deprecated");
        record["replaced_by"] = json!(LOGO_CHURN);
    });
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["record.replaced_by"]);

    // GRR replaces logo churn, so it cannot be deprecated until logo churn names another
    // replacement: a replacement is always an active KPI.
    let grr = current_record(&team.server, GRR).await;
    let deprecate_grr = change_request(&grr, "Deprecate GRR", |record| {
        record["status"] = json!("deprecated");
        record["replaced_by"] = json!(NRR);
    });
    let response = team.post("/api/proposals", &team.editor, deprecate_grr.clone()).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["record.status"]);
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains(LOGO_CHURN), "{problem}");
    let repoint = change_request(&deprecated, "Point logo churn at NRR", set("replaced_by", json!(NRR)));
    let proposal = team.propose(&team.editor, repoint).await;
    assert_eq!(proposal["minimum_bump"], "minor");
    team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
    assert_eq!(team.merged(&team.reviewer, id_of(&proposal)).await["version"], "2.1.0");
    let response = team.post("/api/proposals?dry_run=true", &team.editor, deprecate_grr).await;
    let dry: Value = response.json().await.unwrap();
    assert_eq!(dry["valid"], true, "{dry}");

    // A new KPI cannot start deprecated.
    let mut request = creation_request(&grr, "customers.born_old", "Born old", None);
    request["record"]["status"] = json!("deprecated");
    request["record"]["replaced_by"] = json!(GRR);
    let problem =
        assert_problem(team.post("/api/proposals", &team.editor, request).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["record.status"]);
}

// ---------------------------------------------------------------------------------------
// Concurrency

const STABLE_PATHS: [&str; 9] = [
    "/api/ontology/index.json",
    "/api/ontology/index.json?ontology=1.0.0",
    "/api/ontology/customers.json",
    "/api/ontology/customers/gross_revenue_retention.json",
    "/api/ontology/customers/gross_revenue_retention.json?version=1.0.0",
    "/api/ontology/customers/gross_revenue_retention/versions.json",
    "/api/ontology/releases.json",
    "/api/ontology/releases.atom",
    "/api/ontology/search.json?q=retention",
];

async fn concurrent_merges(backend: Backend) {
    let team = Team::start(backend).await;
    let (_, index) = team.server.get_json("/api/ontology/index.json").await;
    let kpis: Vec<String> = index["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["kpis"].as_array().unwrap())
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .filter(|id| id != GRR)
        .take(20)
        .collect();
    assert_eq!(kpis.len(), 20);

    let mut ids = Vec::new();
    for kpi in &kpis {
        let id = team
            .approved_change(kpi, &format!("Sharpen {kpi}"), |record| {
                let summary = format!("{} Reviewed for the concurrent test.", record["summary"].as_str().unwrap());
                record["summary"] = json!(summary);
            })
            .await;
        ids.push(id);
    }
    let commits = commit_count(&team);

    let merges: Vec<_> = ids
        .iter()
        .map(|&id| {
            let client = team.server.client.clone();
            let url = team.server.url(&format!("/api/proposals/{id}/merge"));
            let token = team.reviewer.clone();
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                (id, response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut landed = BTreeMap::new();
    for merge in merges {
        let (id, status, body) = merge.await.unwrap();
        assert_eq!(status, 200, "merge of {id}: {body}");
        landed.insert(id, body);
    }

    assert_eq!(commit_count(&team), commits + 20, "one commit per merge");
    assert_eq!(git(&team.repository(), &["log", "--merges", "--oneline", "main"]), "", "history is linear");
    let ontology_versions: BTreeSet<&str> = landed.values().map(|b| b["ontology_version"].as_str().unwrap()).collect();
    assert_eq!(ontology_versions.len(), 20, "each merge cut its own ontology version");
    for (id, body) in &landed {
        assert_eq!(body["version"], "1.0.1");
        let commit = body["commit"].as_str().unwrap();
        assert_eq!(tag_commit(&team, &format!("v{}", body["ontology_version"].as_str().unwrap())), commit);
        let carrying = git(&team.repository(), &["log", "--format=%H", &format!("--grep=^Proposal: {id}$"), "main"]);
        assert_eq!(carrying.lines().collect::<Vec<_>>(), [commit], "commits of proposal {id}");
        assert_eq!(team.proposal(*id).await["state"], "merged");
    }

    // Concurrent merges of one KPI from one base: exactly one lands.
    let base = current_record(&team.server, GRR).await;
    let mut same = Vec::new();
    for n in 0..6 {
        let request =
            change_request(&base, &format!("Summary variant {n}"), set("summary", json!(format!("GRR variant {n}."))));
        let proposal = team.propose(&team.editor, request).await;
        team.verdict(&team.reviewer, id_of(&proposal), "approve").await;
        same.push(id_of(&proposal));
    }
    let commits = commit_count(&team);
    let merges: Vec<_> = same
        .iter()
        .map(|&id| {
            let client = team.server.client.clone();
            let url = team.server.url(&format!("/api/proposals/{id}/merge"));
            let token = team.other_reviewer.clone();
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for merge in merges {
        let (status, body) = merge.await.unwrap();
        if status == 409 {
            assert_eq!(body["code"], "base_version_outdated", "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    assert_eq!(commit_count(&team), commits + 1);
    assert_eq!(current_record(&team.server, GRR).await["version"], "1.0.1");

    // Git is sound and the index equals it.
    let fsck = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(team.repository())
        .args(["fsck", "--full", "--strict"])
        .output()
        .unwrap();
    assert!(fsck.status.success(), "git fsck: {}", String::from_utf8_lossy(&fsck.stderr));
    assert_eq!(String::from_utf8_lossy(&fsck.stdout), "", "git fsck output");

    let (_, releases) = team.server.get_json("/api/ontology/releases.json").await;
    let indexed: Vec<(String, String)> = releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["commit"].as_str().unwrap().to_owned(), r["ontology_version"].as_str().unwrap().to_owned()))
        .collect();
    let history: Vec<String> =
        git(&team.repository(), &["rev-list", "--first-parent", "main"]).lines().map(str::to_owned).collect();
    assert_eq!(indexed.iter().map(|(commit, _)| commit.clone()).collect::<Vec<_>>(), history);
    for (commit, version) in &indexed {
        assert_eq!(&tag_commit(&team, &format!("v{version}")), commit, "tag v{version}");
    }
    assert_eq!(tags(&team).len(), indexed.len(), "one tag per release");

    let mut before = BTreeMap::new();
    for path in STABLE_PATHS {
        before.insert(path, fetch_bytes(&team.server, path).await);
    }
    let Team { registry, server, .. } = team;
    assert!(server.stop().success());
    let (ok, stdout, stderr) = registry.run(&["reindex"]);
    assert!(ok, "reindex failed: {stdout}{stderr}");
    assert!(stdout.contains(&format!("reindexed {} commits", indexed.len())), "{stdout}");
    let server = registry.start().await;
    for path in STABLE_PATHS {
        let after = fetch_bytes(&server, path).await;
        assert_eq!(
            String::from_utf8_lossy(&after),
            String::from_utf8_lossy(&before[path]),
            "{path} changed after reindex"
        );
    }
    let admin = admin_token(&server).await;
    let response = get_as(&server, &format!("/api/proposals/{}", ids[0]), &admin).await;
    assert_eq!(response.json::<Value>().await.unwrap()["state"], "merged", "reindex keeps proposal states");
}

/// Checks that a withdrawal, update or rejection racing a merge either wins, so the merge
/// fails with 409, or loses with 409 itself. Both never succeed.
async fn state_changes_racing_merges(backend: Backend) {
    let team = Team::start(backend).await;
    let (_, index) = team.server.get_json("/api/ontology/index.json").await;
    let kpis: Vec<String> = index["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["kpis"].as_array().unwrap())
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .take(12)
        .collect();

    for (n, kpi) in kpis.iter().enumerate() {
        let id = team.approved_change(kpi, "Race", set("summary", json!(format!("Race {n}.")))).await;
        let merge = {
            let client = team.server.client.clone();
            let url = team.server.url(&format!("/api/proposals/{id}/merge"));
            let token = team.reviewer.clone();
            tokio::spawn(async move { client.post(url).bearer_auth(token).send().await.unwrap().status().as_u16() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5 * (n as u64 % 4))).await;
        let (action, other) = match n % 3 {
            0 => ("withdraw", team.withdraw(&team.editor, id).await),
            1 => (
                "update",
                team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "title": "Race, retitled" })).await,
            ),
            _ => ("reject", team.review(&team.other_reviewer, id, "reject").await),
        };
        let other = other.status().as_u16();
        let merge = merge.await.unwrap();
        let state = team.proposal(id).await["state"].as_str().unwrap().to_owned();
        match merge {
            200 => {
                assert_eq!(other, 409, "{action} of {id} succeeded although the merge did");
                assert_eq!(state, "merged");
            }
            409 => {
                assert!(other == 200 || other == 201, "{action} of {id} answered {other} and the merge 409");
                assert_ne!(state, "merged");
            }
            status => panic!("merge of {id} answered {status}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Audit

async fn audit_rows_for_proposals(backend: Backend) {
    let team = Team::start(backend).await;
    let id = team.approved_change(GRR, "Audited change", set("summary", json!("Audited."))).await;
    let response = team.put(&format!("/api/proposals/{id}"), &team.editor, json!({ "rationale": "Reworded." })).await;
    assert_eq!(response.status(), 200);
    team.verdict(&team.other_reviewer, id, "approve").await;
    team.merged(&team.reviewer, id).await;

    let record = current_record(&team.server, NRR).await;
    let withdrawn =
        team.propose(&team.other_editor, change_request(&record, "Withdrawn", set("summary", json!("W.")))).await;
    assert_eq!(team.withdraw(&team.other_editor, id_of(&withdrawn)).await.status(), 200);

    let response = get_as(&team.server, "/api/audit?limit=200", &team.admin).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    let rows: Vec<(String, String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_kind"] == "proposal")
        .map(|e| {
            assert_eq!(e["channel"], "api", "{e}");
            assert!(e["at"].as_str().is_some_and(|at| at.ends_with('Z')), "{e}");
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap_or("(none)").to_owned(),
                e["target_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (first, second) = (id.to_string(), id_of(&withdrawn).to_string());
    let expected: Vec<(String, String, String)> = [
        ("proposal.withdrawn", "eddie", &second),
        ("proposal.created", "eddie", &second),
        ("proposal.merged", "rita", &first),
        ("proposal.reviewed", "rob", &first),
        ("proposal.updated", "edna", &first),
        ("proposal.reviewed", "rita", &first),
        ("proposal.created", "edna", &first),
    ]
    .into_iter()
    .map(|(action, actor, target)| (action.to_owned(), actor.to_owned(), target.clone()))
    .collect();
    assert_eq!(rows, expected, "proposal audit rows, newest first");
}

/// An approval stops counting once its reviewer is demoted or disabled, and packing after
/// merges keeps every version readable.
async fn approvals_follow_reviewer_accounts(backend: Backend) {
    let team = Team::start_with(backend, &["--pack-loose-objects", "1"]).await;
    let id = team
        .approved_change(NRR, "Clarify the cohort", |record| {
            record["summary"] =
                json!(format!("{} Measured on the starting cohort.", record["summary"].as_str().unwrap()));
        })
        .await;

    let demote = json!({ "role": "editor" });
    let response = call(&team.server, Method::PATCH, "/api/accounts/rita", Some(&team.admin), Some(demote)).await;
    assert_eq!(response.status(), 200);
    let problem = assert_problem(team.merge(&team.other_reviewer, id).await, 409, "not_approved").await;
    assert!(problem["detail"].as_str().unwrap().contains("0 of 1"), "{problem}");

    team.verdict(&team.other_reviewer, id, "approve").await;
    let merged = team.merged(&team.other_reviewer, id).await;
    assert_eq!(merged["version"], "1.0.1");
    let log = git(&team.repository(), &["log", "-1", "--format=%B", "main"]);
    assert!(log.contains("Reviewed-by: rob"), "{log}");
    assert!(!log.contains("Reviewed-by: rita"), "a demoted reviewer is not named:\n{log}");

    // Packing runs after the merge in the background; every version stays readable.
    for _ in 0..100 {
        let counts = git(&team.repository(), &["count-objects", "-v"]);
        if counts.lines().any(|l| l == "count: 0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let counts = git(&team.repository(), &["count-objects", "-v"]);
    assert!(counts.lines().any(|l| l == "count: 0"), "the merge's objects are packed:\n{counts}");
    git(&team.repository(), &["fsck", "--full", "--no-dangling"]);
    for version in ["1.0.0", "1.0.1"] {
        let response =
            team.server.get(&format!("/api/ontology/customers/net_revenue_retention.json?version={version}")).await;
        assert_eq!(response.status(), 200, "{version}");
    }
}

on_each_backend!(
    approvals_follow_reviewer_accounts,
    formula_change_end_to_end,
    review_verdicts_move_states,
    withdraw_and_authorship,
    two_approvals_required,
    list_filters_and_pages,
    stale_base_rejected_then_rebased,
    validation_on_create_and_merge,
    bumps_minimum_and_requested,
    new_kpis_domains_and_deprecation,
    concurrent_merges,
    state_changes_racing_merges,
    audit_rows_for_proposals,
);
