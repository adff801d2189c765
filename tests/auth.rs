//! Accounts, roles, tokens, web sign-in, rate limits and the audit log, through a real
//! server process on each database backend.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::auth::{
    ADMIN_PASSWORD, JWT_SECRET, USER_PASSWORD, add_user, admin_token, browser, call, claims_of, cookie_value, get_as,
    header_of, input_value, now_secs, registry, run_with_input, set_cookie, sign, sign_in, token_for, unsigned,
    with_payload,
};
use common::{Backend, TestRegistry, TestServer, assert_problem};
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

const ROLES: [&str; 4] = ["viewer", "editor", "reviewer", "admin"];

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap_or_else(|| panic!("unknown role {role}"))
}

/// Creates an account through the API as admin.
async fn create_account(server: &TestServer, admin: &str, username: &str, role: &str) {
    let body = json!({ "username": username, "password": USER_PASSWORD, "role": role });
    let response = call(server, Method::POST, "/api/accounts", Some(admin), Some(body)).await;
    assert_eq!(response.status(), 201, "create {username}: {}", response.text().await.unwrap());
}

async fn account_role(server: &TestServer, token: &str) -> String {
    let response = get_as(server, "/api/account", token).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["role"].as_str().unwrap().to_owned()
}

/// Reads the whole audit log, newest first, page by page with `limit`.
async fn audit_entries(server: &TestServer, admin: &str, limit: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut path = format!("/api/audit?limit={limit}");
    loop {
        let response = get_as(server, &path, admin).await;
        assert_eq!(response.status(), 200, "{path}");
        let page: Value = response.json().await.unwrap();
        let rows = page["entries"].as_array().unwrap();
        assert!(rows.len() <= limit, "{path} returned {} entries", rows.len());
        entries.extend(rows.iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    entries
}

// ---------------------------------------------------------------------------------------
// First admin

async fn first_admin_from_env(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;

    let response = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);

    let logs = server.logs();
    assert!(logs.contains("created the account `admin` with the password from REGISTRY_ADMIN_PASSWORD"), "{logs}");
    assert!(!logs.contains(ADMIN_PASSWORD), "the password appears in the log:\n{logs}");
}

async fn first_admin_random_password_logged_once(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let logs = server.logs();
    let marker = "generated password ";
    let rest = logs.split(marker).nth(1).unwrap_or_else(|| panic!("no generated password in the log:\n{logs}"));
    let password: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    assert_eq!(password.len(), 24, "{password}");
    assert_eq!(logs.matches(marker).count(), 1, "{logs}");

    let response = sign_in(&server, "admin", &password).await;
    assert_eq!(response.status(), 200);
    assert!(server.stop().success());

    let second = registry.start().await;
    let logs = second.logs();
    assert!(!logs.contains(marker), "the second start logged a password:\n{logs}");
    assert!(!logs.contains(&password), "{logs}");
    let response = sign_in(&second, "admin", &password).await;
    assert_eq!(response.status(), 200);
}

on_each_backend!(first_admin_from_env, first_admin_random_password_logged_once);

// ---------------------------------------------------------------------------------------
// Tokens

async fn session_token_claims(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_SESSION_LIFETIME_SECS".into(), "120".into()));
    let server = registry.start().await;

    let before = now_secs();
    let response = sign_in(&server, "ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();

    assert_eq!(header_of(token)["alg"], "HS256");
    let claims = claims_of(token);
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert!(iat >= before - 1, "iat {iat} is before the request");
    assert!(iat <= now_secs(), "iat {iat} is in the future");
    assert_eq!(exp - iat, 120);

    let expires_at = body["expires_at"].as_str().unwrap();
    let expected = time::OffsetDateTime::from_unix_timestamp(exp).unwrap();
    let parsed = time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(parsed, expected);
}

async fn rejected_tokens_unauthenticated(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let token = admin_token(&server).await;
    let claims = claims_of(&token);

    // A copy re-signed with the server's key and algorithm is accepted, so each rejection
    // below is caused by the one thing that case changes.
    let resigned = sign(&claims, Algorithm::HS256, JWT_SECRET);
    assert_eq!(get_as(&server, "/api/account", &resigned).await.status(), 200);

    let mut escalated = claims.clone();
    escalated["sub"] = json!("someone-else");
    let mut expired = claims.clone();
    expired["exp"] = json!(now_secs() - 10);
    let mut unknown_id = claims.clone();
    unknown_id["jti"] = json!("00000000000000000000000000000000");
    let mut role_raised = claims.clone();
    role_raised["role"] = json!("superuser");

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned(&claims), "invalid"),
        ("HS512 with the server key", sign(&claims, Algorithm::HS512, JWT_SECRET), "invalid"),
        ("HS384 with the server key", sign(&claims, Algorithm::HS384, JWT_SECRET), "invalid"),
        ("wrong key", sign(&claims, Algorithm::HS256, "another key that is also thirty-two bytes long"), "invalid"),
        ("tampered role claim", with_payload(&token, &role_raised), "invalid"),
        ("tampered subject", with_payload(&token, &escalated), "invalid"),
        ("expired beyond leeway", sign(&expired, Algorithm::HS256, JWT_SECRET), "expired"),
        ("unknown token id", sign(&unknown_id, Algorithm::HS256, JWT_SECRET), "invalid"),
        ("subject of another account", sign(&escalated, Algorithm::HS256, JWT_SECRET), "invalid"),
        ("garbage", "not-a-token".to_owned(), "invalid"),
        ("empty", String::new(), "Bearer"),
    ];
    for (case, bad, detail) in cases {
        let response = get_as(&server, "/api/account", &bad).await;
        let body = assert_problem(response, 401, "unauthenticated").await;
        assert!(body["detail"].as_str().unwrap().contains(detail), "{case}: {body}");
    }

    let response = call(&server, Method::GET, "/api/account", None, None).await;
    assert_problem(response, 401, "unauthenticated").await;

    let basic = server
        .client
        .get(server.url("/api/account"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthenticated").await;
}

async fn disabled_account_rejected(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "dana", "editor").await;
    let token = token_for(&server, "dana", USER_PASSWORD).await;
    assert_eq!(get_as(&server, "/api/account", &token).await.status(), 200);

    let disable = json!({ "disabled": true });
    let response = call(&server, Method::PATCH, "/api/accounts/dana", Some(&admin), Some(disable)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["disabled_at"].is_string(), "{body}");

    let body = assert_problem(get_as(&server, "/api/account", &token).await, 401, "unauthenticated").await;
    assert!(body["detail"].as_str().unwrap().contains("disabled"), "{body}");
    // Signing in responds as it does to a wrong password, so a guesser learns nothing.
    let right = assert_problem(sign_in(&server, "dana", USER_PASSWORD).await, 401, "unauthenticated").await;
    let wrong = assert_problem(sign_in(&server, "dana", "wrong password").await, 401, "unauthenticated").await;
    assert_eq!(right, wrong);

    let enable = json!({ "disabled": false });
    let response = call(&server, Method::PATCH, "/api/accounts/dana", Some(&admin), Some(enable)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(get_as(&server, "/api/account", &token).await.status(), 200);
}

async fn configured_body_limit_applies(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start_with(&["--body-limit", "4096"]).await;
    let admin = admin_token(&server).await;
    // A server that rejects a body closes the connection without reading it, so each
    // oversized request goes on a client of its own.
    let single_use = || reqwest::Client::builder().no_gzip().build().unwrap();

    let proposal = json!({ "kpi_id": "customers.nps_score", "rationale": "x".repeat(5000) });
    let url = server.url("/api/proposals");
    let response = single_use().post(&url).bearer_auth(&admin).json(&proposal).send().await.unwrap();
    let body = assert_problem(response, 413, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("4096"), "{body}");
    let credentials = json!({ "username": "admin", "password": "x".repeat(5000) });
    let response = single_use().post(server.url("/api/auth/token")).json(&credentials).send().await.unwrap();
    assert_problem(response, 413, "payload_too_large").await;

    // Under the limit, the same route reads the body and judges its content.
    let small = json!({ "kpi_id": "customers.nps_score", "rationale": "short" });
    let response = server.client.post(&url).bearer_auth(&admin).json(&small).send().await.unwrap();
    assert_problem(response, 400, "malformed_request").await;

    // A larger limit lets a proposal larger than the default of 1 MiB through to validation.
    drop(server);
    let server = registry.start_with(&["--body-limit", "4000000"]).await;
    let admin = admin_token(&server).await;
    let large = json!({ "kpi_id": "customers.nps_score", "rationale": "x".repeat(2_000_000) });
    let response =
        single_use().post(server.url("/api/proposals")).bearer_auth(&admin).json(&large).send().await.unwrap();
    assert_problem(response, 400, "malformed_request").await;
}

async fn machine_token_issued_and_revoked(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "etl", "viewer").await;

    let request = json!({ "username": "ETL", "name": "nightly export", "days": 30 });
    let response = call(&server, Method::POST, "/api/tokens", Some(&admin), Some(request)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let issued: Value = response.json().await.unwrap();
    let id = issued["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/tokens/{id}"));
    assert_eq!(issued["username"], "etl");
    assert_eq!(issued["kind"], "api");
    assert_eq!(issued["name"], "nightly export");
    assert_eq!(issued["issued_by"], "admin");
    assert!(issued["revoked_at"].is_null());
    let token = issued["token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["jti"], id);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 30 * 24 * 3600);

    let response = get_as(&server, "/api/account", token).await;
    assert_eq!(response.headers()["cache-control"], "no-store", "answers for one account are not cached");
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["username"], "etl");
    assert_eq!(account["token_kind"], "api");

    // A machine token is not a browser session, so in the session cookie it signs no one in.
    let response = browser()
        .get(server.url("/account"))
        .header("cookie", format!("registry_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?next=/account");

    let listed: Value = get_as(&server, "/api/tokens", &admin).await.json().await.unwrap();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{listed}");
    assert_eq!(tokens[0]["id"], id);
    assert!(tokens[0].get("token").is_none(), "the list shows a token: {listed}");

    let response = call(&server, Method::DELETE, &location, Some(&admin), None).await;
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");

    let body = assert_problem(get_as(&server, "/api/account", token).await, 401, "unauthenticated").await;
    assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");

    let again = call(&server, Method::DELETE, &location, Some(&admin), None).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);

    let missing = call(&server, Method::DELETE, "/api/tokens/no-such-token", Some(&admin), None).await;
    assert_problem(missing, 404, "not_found").await;
}

async fn machine_token_request_validated(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;

    let cases = [
        (json!({ "username": "nobody", "name": "x" }), "username"),
        (json!({ "username": "admin", "name": "" }), "name"),
        (json!({ "username": "admin", "name": "x", "days": 0 }), "days"),
        (json!({ "username": "admin", "name": "x", "days": 3651 }), "days"),
    ];
    for (request, field) in cases {
        let response = call(&server, Method::POST, "/api/tokens", Some(&admin), Some(request.clone())).await;
        let body = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], field, "{request}: {body}");
    }
}

async fn session_revoked_by_admin(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "sam", "editor").await;
    let token = token_for(&server, "sam", USER_PASSWORD).await;

    // The admin finds the session among the active ones; machine tokens are listed apart.
    let (status, sessions) = json_of(get_as(&server, "/api/tokens?kind=session", &admin).await).await;
    assert_eq!(status, 200);
    let listed = sessions["tokens"].as_array().unwrap();
    let sam = listed.iter().find(|t| t["username"] == "sam").unwrap_or_else(|| panic!("{sessions}"));
    assert_eq!(sam["kind"], "session");
    let jti = sam["id"].as_str().unwrap().to_owned();
    assert_eq!(jti, claims_of(&token)["jti"].as_str().unwrap());
    let (_, machines) = json_of(get_as(&server, "/api/tokens", &admin).await).await;
    assert!(machines["tokens"].as_array().unwrap().iter().all(|t| t["kind"] == "api"), "{machines}");
    let response = get_as(&server, "/api/tokens?kind=everything", &admin).await;
    assert_problem(response, 400, "malformed_request").await;

    let response = call(&server, Method::DELETE, &format!("/api/tokens/{jti}"), Some(&admin), None).await;
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(revoked["kind"], "session");

    assert_problem(get_as(&server, "/api/account", &token).await, 401, "unauthenticated").await;
    let (_, sessions) = json_of(get_as(&server, "/api/tokens?kind=session", &admin).await).await;
    assert!(sessions["tokens"].as_array().unwrap().iter().all(|t| t["id"] != jti.as_str()), "{sessions}");
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

on_each_backend!(
    session_token_claims,
    rejected_tokens_unauthenticated,
    disabled_account_rejected,
    configured_body_limit_applies,
    machine_token_issued_and_revoked,
    machine_token_request_validated,
    session_revoked_by_admin,
);

// ---------------------------------------------------------------------------------------
// Roles

async fn role_change_applies_immediately(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "riley", "editor").await;
    let token = token_for(&server, "riley", USER_PASSWORD).await;
    assert_eq!(claims_of(&token)["role"], "editor");

    assert_eq!(account_role(&server, &token).await, "editor");
    assert_problem(get_as(&server, "/api/audit", &token).await, 403, "forbidden").await;

    // Promoted at the command line while the server runs: the same token gains admin.
    let (ok, stdout, stderr) = registry.run(&["user", "set-role", "riley", "admin"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("riley: role editor -> admin"), "{stdout}");
    assert_eq!(account_role(&server, &token).await, "admin");
    assert_eq!(get_as(&server, "/api/audit", &token).await.status(), 200);

    // Demoted over the API: the claim still reads editor, and the stored role decides.
    let demote = json!({ "role": "viewer" });
    let response = call(&server, Method::PATCH, "/api/accounts/riley", Some(&admin), Some(demote)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(account_role(&server, &token).await, "viewer");
    let body = assert_problem(get_as(&server, "/api/tokens", &token).await, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("admin"), "{body}");
}

/// Reads the OpenAPI document and calls every operation with no token, a garbage token
/// and a token of each role. Below the documented minimum role the status is 403, at or
/// above it neither 401 nor 403. Operations without a minimum role are public.
async fn every_operation_enforces_minimum_role(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let mut tokens = BTreeMap::new();
    let admin = admin_token(&server).await;
    for role in ["viewer", "editor", "reviewer"] {
        let username = format!("{role}-user");
        create_account(&server, &admin, &username, role).await;
        tokens.insert(role, token_for(&server, &username, USER_PASSWORD).await);
    }
    tokens.insert("admin", admin);

    let (status, document) = server.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    let mut minimum_roles = BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let url = concrete_path(path);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method != Method::GET).then(|| json!({}));
            let name = format!("{method} {path}");

            let Some(minimum) = operation.get("x-minimum-role").and_then(Value::as_str) else {
                assert!(operation.get("security").is_none(), "{name} has security but no minimum role");
                let response = call(&server, method.clone(), &url, None, body.clone()).await;
                let status = response.status().as_u16();
                assert_ne!(status, 401, "{name} is public but answered 401 without a token");
                assert_ne!(status, 403, "{name} is public but answered 403 without a token");
                continue;
            };
            minimum_roles.insert(name.clone(), minimum.to_owned());
            assert_eq!(operation["security"], json!([{ "bearer": [] }]), "{name}");
            assert!(operation["responses"]["401"].is_object(), "{name} documents no 401");
            assert!(operation["responses"]["403"].is_object(), "{name} documents no 403");

            let response = call(&server, method.clone(), &url, None, body.clone()).await;
            assert_problem(response, 401, "unauthenticated").await;
            let response = call(&server, method.clone(), &url, Some("garbage"), body.clone()).await;
            assert_problem(response, 401, "unauthenticated").await;

            for role in ROLES {
                let response = call(&server, method.clone(), &url, Some(&tokens[role]), body.clone()).await;
                if rank(role) < rank(minimum) {
                    let problem = assert_problem(response, 403, "forbidden").await;
                    assert!(problem["detail"].as_str().unwrap().contains(minimum), "{name} as {role}: {problem}");
                } else {
                    let status = response.status().as_u16();
                    assert_ne!(status, 401, "{name} as {role} (minimum {minimum})");
                    assert_ne!(status, 403, "{name} as {role} (minimum {minimum})");
                }
            }
        }
    }

    let expected = [
        ("GET /api/account", "viewer"),
        ("GET /api/accounts", "admin"),
        ("POST /api/accounts", "admin"),
        ("PATCH /api/accounts/{username}", "admin"),
        ("GET /api/tokens", "admin"),
        ("POST /api/tokens", "admin"),
        ("DELETE /api/tokens/{id}", "admin"),
        ("GET /api/audit", "admin"),
    ];
    for (operation, role) in expected {
        assert_eq!(minimum_roles.get(operation).map(String::as_str), Some(role), "{operation}: {minimum_roles:?}");
    }
}

/// Fills path parameters with values that exist in the starter catalog or name nothing,
/// so no request changes state.
fn concrete_path(template: &str) -> String {
    let known = [("{domain}", "customers"), ("{key}", "gross_revenue_retention"), ("{username}", "nobody")];
    let mut path = template.to_owned();
    for (parameter, value) in known {
        path = path.replace(parameter, value);
    }
    while let Some(start) = path.find('{') {
        let end = path[start..].find('}').unwrap() + start;
        path.replace_range(start..=end, "does-not-exist");
    }
    path
}

async fn last_admin_kept(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;

    let demote = json!({ "role": "editor" });
    let response = call(&server, Method::PATCH, "/api/accounts/admin", Some(&admin), Some(demote.clone())).await;
    assert_problem(response, 409, "invalid_transition").await;
    let disable = json!({ "disabled": true });
    let response = call(&server, Method::PATCH, "/api/accounts/admin", Some(&admin), Some(disable)).await;
    assert_problem(response, 409, "invalid_transition").await;

    create_account(&server, &admin, "second-admin", "admin").await;
    let response = call(&server, Method::PATCH, "/api/accounts/admin", Some(&admin), Some(demote)).await;
    assert_eq!(response.status(), 200);
}

async fn mutual_demotion_keeps_an_admin(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;

    // Two admins demote each other at the same moment, several times over: exactly one
    // demotion lands each round, so an admin always remains.
    for round in 0..5 {
        let other = format!("admin-{round}");
        create_account(&server, &admin, &other, "admin").await;
        let other_token = token_for(&server, &other, USER_PASSWORD).await;
        let demote = json!({ "role": "viewer" });
        let other_path = format!("/api/accounts/{other}");
        let (first, second) = tokio::join!(
            call(&server, Method::PATCH, &other_path, Some(&admin), Some(demote.clone())),
            call(&server, Method::PATCH, "/api/accounts/admin", Some(&other_token), Some(demote.clone())),
        );
        let (first, second) = (first.status().as_u16(), second.status().as_u16());
        // The later request is either rejected as the last admin's demotion, or made by an
        // account that the earlier one already demoted.
        let mut statuses = [first, second];
        statuses.sort();
        assert!(statuses == [200, 403] || statuses == [200, 409], "round {round}: {first} and {second}");

        // When the other admin won, it restores `admin` and steps down, so each round
        // starts with `admin` as the only admin.
        if second == 200 {
            let promote = json!({ "role": "admin" });
            let response = call(&server, Method::PATCH, "/api/accounts/admin", Some(&other_token), Some(promote)).await;
            assert_eq!(response.status(), 200);
            let response = call(&server, Method::PATCH, &other_path, Some(&admin), Some(demote)).await;
            assert_eq!(response.status(), 200);
        }
    }
}

async fn accounts_api_validates(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;

    let request = json!({ "username": "Nora", "password": USER_PASSWORD, "role": "reviewer" });
    let response = call(&server, Method::POST, "/api/accounts", Some(&admin), Some(request.clone())).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/api/accounts/nora");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["username"], "nora");
    assert_eq!(created["role"], "reviewer");
    assert!(created.get("password").is_none(), "{created}");
    assert!(created.get("password_hash").is_none(), "{created}");

    let response = call(&server, Method::POST, "/api/accounts", Some(&admin), Some(request)).await;
    let body = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "username");

    let invalid = json!({ "username": "bad name", "password": "short", "role": "owner" });
    let response = call(&server, Method::POST, "/api/accounts", Some(&admin), Some(invalid)).await;
    let body = assert_problem(response, 422, "validation_failed").await;
    let fields: HashSet<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, HashSet::from(["username", "password", "role"]), "{body}");

    let listed: Value = get_as(&server, "/api/accounts", &admin).await.json().await.unwrap();
    let names: Vec<&str> =
        listed["accounts"].as_array().unwrap().iter().map(|a| a["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "nora"]);

    let response =
        call(&server, Method::PATCH, "/api/accounts/ghost", Some(&admin), Some(json!({ "role": "editor" }))).await;
    assert_problem(response, 404, "not_found").await;
}

on_each_backend!(
    role_change_applies_immediately,
    every_operation_enforces_minimum_role,
    last_admin_kept,
    mutual_demotion_keeps_an_admin,
    accounts_api_validates
);

// ---------------------------------------------------------------------------------------
// Sign-in requests

async fn sign_in_body_errors(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let url = server.url("/api/auth/token");

    let response = server.client.post(&url).body(r#"{"username":"admin","password":"x"}"#).send().await.unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;

    let malformed = server.client.post(&url).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_problem(malformed, 400, "malformed_request").await;

    let missing = server.client.post(&url).json(&json!({ "username": "admin" })).send().await.unwrap();
    assert_problem(missing, 400, "malformed_request").await;

    let large = json!({ "username": "admin", "password": "x".repeat(20 * 1024) });
    let response = server.client.post(&url).json(&large).send().await.unwrap();
    assert_problem(response, 413, "payload_too_large").await;

    let response = sign_in(&server, "admin", "wrong password").await;
    let body = assert_problem(response, 401, "unauthenticated").await;
    assert_eq!(body["detail"], "invalid username or password");
    let response = sign_in(&server, "nobody", "wrong password").await;
    let body = assert_problem(response, 401, "unauthenticated").await;
    assert_eq!(body["detail"], "invalid username or password");
}

async fn login_rate_limited_per_account(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_LOGIN_MAX_FAILURES".into(), "3".into()));
    registry.extra_env.push(("REGISTRY_LOGIN_WINDOW_SECS".into(), "60".into()));
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "carol", "editor").await;

    for attempt in 1..=3 {
        let response = sign_in(&server, "carol", &format!("wrong password {attempt}")).await;
        assert_problem(response, 401, "unauthenticated").await;
    }

    // The right password is rejected too while the limit holds.
    let response = sign_in(&server, "Carol", USER_PASSWORD).await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_problem(response, 429, "rate_limited").await;

    // Another account from the same address is not affected.
    assert_eq!(sign_in(&server, "admin", ADMIN_PASSWORD).await.status(), 200);

    let client = browser();
    let form = client.get(server.url("/login")).send().await.unwrap();
    let cookie = cookie_value(&set_cookie(&form, "registry_login").unwrap());
    let csrf = input_value(&form.text().await.unwrap(), "csrf_token").unwrap();
    let response = client
        .post(server.url("/login"))
        .header("cookie", format!("registry_login={cookie}"))
        .form(&[("username", "carol"), ("password", USER_PASSWORD), ("csrf_token", &csrf), ("next", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    assert!(page.contains(r#"value="carol""#), "the username was lost: {page}");
}

async fn login_limit_holds_under_parallel_attempts(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_LOGIN_MAX_FAILURES".into(), "3".into()));
    registry.extra_env.push(("REGISTRY_LOGIN_WINDOW_SECS".into(), "60".into()));
    let server = registry.start().await;

    // Attempts that arrive together each count before their password is checked, so no
    // more than the limit are checked at all.
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url) = (server.client.clone(), server.url("/api/auth/token"));
        attempts.spawn(async move {
            let body = json!({ "username": "admin", "password": "wrong" });
            client.post(url).json(&body).send().await.unwrap().status().as_u16()
        });
    }
    let statuses = attempts.join_all().await;
    assert_eq!(statuses.iter().filter(|&&status| status == 401).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&status| status == 429).count(), 9, "{statuses:?}");
    assert_eq!(sign_in(&server, "admin", ADMIN_PASSWORD).await.status(), 429);
}

async fn login_rate_limited_per_address(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_LOGIN_MAX_FAILURES_PER_ADDRESS".into(), "2".into()));
    registry.extra_env.push(("REGISTRY_TRUSTED_PROXIES".into(), "127.0.0.1, ::1".into()));
    let server = registry.start().await;

    let first = "203.0.113.10";
    let second = "203.0.113.11";

    assert_problem(sign_in_from(&server, first, "ghost-one", "wrong").await, 401, "unauthenticated").await;
    assert_problem(sign_in_from(&server, first, "ghost-two", "wrong").await, 401, "unauthenticated").await;
    let response = sign_in_from(&server, first, "admin", ADMIN_PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 429, "rate_limited").await;

    // Behind the trusted proxy, another client address is counted on its own.
    assert_eq!(sign_in_from(&server, second, "admin", ADMIN_PASSWORD).await.status(), 200);
    assert_eq!(sign_in(&server, "admin", ADMIN_PASSWORD).await.status(), 200);

    let admin = admin_token(&server).await;
    let entries = audit_entries(&server, &admin, 50).await;
    let failed: Vec<&Value> = entries.iter().filter(|e| e["action"] == "login.failed").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|e| e["client"] == "203.0.113.10"), "{failed:?}");
}

async fn forwarded_for_ignored_from_untrusted_peer(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_LOGIN_MAX_FAILURES_PER_ADDRESS".into(), "2".into()));
    let server = registry.start().await;

    for (address, username) in [("203.0.113.20", "ghost-one"), ("203.0.113.21", "ghost-two")] {
        let response = sign_in_from(&server, address, username, "wrong").await;
        assert_problem(response, 401, "unauthenticated").await;
    }
    let response = sign_in_from(&server, "203.0.113.22", "admin", ADMIN_PASSWORD).await;
    assert_problem(response, 429, "rate_limited").await;
}

/// Signs in with an `X-Forwarded-For` header naming `address`.
async fn sign_in_from(server: &TestServer, address: &str, username: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/auth/token"))
        .header("x-forwarded-for", address)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

on_each_backend!(
    sign_in_body_errors,
    login_rate_limited_per_account,
    login_limit_holds_under_parallel_attempts,
    login_rate_limited_per_address,
    forwarded_for_ignored_from_untrusted_peer,
);

// ---------------------------------------------------------------------------------------
// Web sign-in

/// GETs the sign-in form and returns (cookie value, CSRF token, page).
async fn login_form(client: &reqwest::Client, server: &TestServer, query: &str) -> (String, String, String) {
    let response = client.get(server.url(&format!("/login{query}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let cookie = set_cookie(&response, "registry_login").expect("the form sets the sign-in cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let page = response.text().await.unwrap();
    let csrf = input_value(&page, "csrf_token").expect("the form carries a CSRF token");
    (cookie_value(&cookie), csrf, page)
}

async fn post_login(
    client: &reqwest::Client,
    server: &TestServer,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client.post(server.url("/login")).form(fields);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("registry_login={cookie}"));
    }
    request.send().await.unwrap()
}

async fn web_sign_in_sets_session_cookie(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let client = browser();
    let (cookie, csrf, page) = login_form(&client, &server, "?next=/account").await;
    assert_eq!(input_value(&page, "next").as_deref(), Some("/account"));
    assert!(page.contains(r#"<label for="username">"#), "{page}");
    assert!(page.contains(r#"<label for="password">"#), "{page}");

    let wrong = [("username", "Admin"), ("password", "typed wrong"), ("csrf_token", &csrf), ("next", "/account")];
    let response = post_login(&client, &server, Some(&cookie), &wrong).await;
    assert_eq!(response.status(), 401);
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"id="password-error""#), "no error next to the password: {page}");
    assert!(page.contains(r#"aria-describedby="password-error""#), "{page}");
    assert_eq!(input_value(&page, "username").as_deref(), Some("Admin"), "the username was lost");
    assert!(!page.contains("typed wrong"), "the password was sent back");

    let right = [("username", "Admin"), ("password", ADMIN_PASSWORD), ("csrf_token", &csrf), ("next", "/account")];
    let response = post_login(&client, &server, Some(&cookie), &right).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/account");
    let session = set_cookie(&response, "registry_session").expect("signing in sets the session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(session.contains(attribute), "{attribute} missing from {session}");
    }
    assert!(!session.contains("Secure"), "Secure on plain http: {session}");
    let session_cookie = format!("registry_session={}", cookie_value(&session));

    let account = client.get(server.url("/account")).header("cookie", &session_cookie).send().await.unwrap();
    assert_eq!(account.status(), 200);
    let page = account.text().await.unwrap();
    assert!(page.contains("<dd>admin</dd>"), "{page}");

    // Sessions are cookies on pages and bearer tokens on the API, never the other way.
    let api = client.get(server.url("/api/account")).header("cookie", &session_cookie).send().await.unwrap();
    assert_problem(api, 401, "unauthenticated").await;
    let bearer = client.get(server.url("/account")).bearer_auth(cookie_value(&session)).send().await.unwrap();
    assert_eq!(bearer.status(), 303);
    assert_eq!(bearer.headers()["location"], "/login?next=/account");
}

async fn web_sign_in_redirects_only_locally(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let client = browser();
    for next in ["//other.invalid/page", "https://other.invalid/", "/\\other.invalid"] {
        let (cookie, csrf, _) = login_form(&client, &server, "").await;
        let fields = [("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf_token", &csrf), ("next", next)];
        let response = post_login(&client, &server, Some(&cookie), &fields).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/account", "next {next}");
    }
}

async fn web_forms_reject_bad_csrf(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let client = browser();
    let (cookie, csrf, _) = login_form(&client, &server, "").await;
    let (other_cookie, other_csrf, _) = login_form(&client, &server, "").await;
    assert_ne!(cookie, other_cookie);

    let cases: [(&str, Option<&str>, &str); 4] = [
        ("no cookie", None, &csrf),
        ("token of another cookie", Some(cookie.as_str()), &other_csrf),
        ("empty token", Some(cookie.as_str()), ""),
        ("forged token", Some(other_cookie.as_str()), "00"),
    ];
    for (case, cookie, token) in cases {
        let fields = [("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf_token", token), ("next", "/account")];
        let response = post_login(&client, &server, cookie, &fields).await;
        assert_eq!(response.status(), 403, "{case}");
        assert!(set_cookie(&response, "registry_session").is_none(), "{case} signed in");
        let page = response.text().await.unwrap();
        assert!(page.contains("did not come from this site"), "{case}: {page}");
        assert_eq!(input_value(&page, "username").as_deref(), Some("admin"), "{case}: the username was lost");
    }

    let fields = [("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf_token", &csrf), ("next", "/account")];
    let response = post_login(&client, &server, Some(&cookie), &fields).await;
    assert_eq!(response.status(), 303);
    let session = cookie_value(&set_cookie(&response, "registry_session").unwrap());
    let session_cookie = format!("registry_session={session}");

    // Signing out is a state change: it needs the CSRF token of the session.
    for token in ["", &csrf] {
        let response = client
            .post(server.url("/logout"))
            .header("cookie", &session_cookie)
            .form(&[("csrf_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "sign-out with token {token:?}");
    }
    let account = client.get(server.url("/account")).header("cookie", &session_cookie).send().await.unwrap();
    assert_eq!(account.status(), 200, "a rejected sign-out ended the session");
    let page = account.text().await.unwrap();
    let session_csrf = input_value(&page, "csrf_token").unwrap();

    let response = client
        .post(server.url("/logout"))
        .header("cookie", &session_cookie)
        .form(&[("csrf_token", session_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    let cleared = set_cookie(&response, "registry_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let account = client.get(server.url("/account")).header("cookie", &session_cookie).send().await.unwrap();
    assert_eq!(account.status(), 303);
    let body = assert_problem(get_as(&server, "/api/account", &session).await, 401, "unauthenticated").await;
    assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");
}

async fn secure_cookies_over_https(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("REGISTRY_PUBLIC_URL".into(), "https://registry.invalid".into()));
    let server = registry.start().await;
    let client = browser();

    let response = client.get(server.url("/login")).send().await.unwrap();
    let login_cookie = set_cookie(&response, "registry_login").unwrap();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let csrf = input_value(&response.text().await.unwrap(), "csrf_token").unwrap();

    let fields = [("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf_token", &csrf), ("next", "/account")];
    let response = post_login(&client, &server, Some(&cookie_value(&login_cookie)), &fields).await;
    assert_eq!(response.status(), 303);
    let session = set_cookie(&response, "registry_session").unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

on_each_backend!(
    web_sign_in_sets_session_cookie,
    web_sign_in_redirects_only_locally,
    web_forms_reject_bad_csrf,
    secure_cookies_over_https,
);

// ---------------------------------------------------------------------------------------
// Audit log

async fn audit_rows_written_and_paged(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    let admin = admin_token(&server).await;
    create_account(&server, &admin, "quinn", "editor").await;
    let change = json!({ "role": "reviewer" });
    assert_eq!(call(&server, Method::PATCH, "/api/accounts/quinn", Some(&admin), Some(change)).await.status(), 200);
    let disable = json!({ "disabled": true });
    assert_eq!(call(&server, Method::PATCH, "/api/accounts/quinn", Some(&admin), Some(disable)).await.status(), 200);
    let request = json!({ "username": "admin", "name": "audit test" });
    let issued: Value =
        call(&server, Method::POST, "/api/tokens", Some(&admin), Some(request)).await.json().await.unwrap();
    let token_id = issued["id"].as_str().unwrap();
    let path = format!("/api/tokens/{token_id}");
    assert_eq!(call(&server, Method::DELETE, &path, Some(&admin), None).await.status(), 200);
    assert_problem(sign_in(&server, "quinn", "wrong password").await, 401, "unauthenticated").await;

    let entries = audit_entries(&server, &admin, 2).await;
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "ids not strictly descending: {ids:?}");
    let actions: Vec<&str> = entries.iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "account.created",
            "session.started",
            "account.created",
            "account.role_changed",
            "account.disabled",
            "token.issued",
            "token.revoked",
            "login.failed",
        ]
    );

    let oldest = entries.last().unwrap();
    assert_eq!(oldest["channel"], "startup");
    assert!(oldest["actor"].is_null());
    assert_eq!(oldest["target_id"], "admin");

    let role_change = entries.iter().find(|e| e["action"] == "account.role_changed").unwrap();
    assert_eq!(role_change["actor"], "admin");
    assert_eq!(role_change["channel"], "api");
    assert_eq!(role_change["client"], "127.0.0.1");
    assert_eq!(role_change["target_kind"], "account");
    assert_eq!(role_change["target_id"], "quinn");
    assert_eq!(role_change["before"], "editor");
    assert_eq!(role_change["after"], "reviewer");
    assert!(
        time::OffsetDateTime::parse(
            role_change["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    let revoked = entries.iter().find(|e| e["action"] == "token.revoked").unwrap();
    assert_eq!(revoked["target_id"], token_id);
    let failed = entries.iter().find(|e| e["action"] == "login.failed").unwrap();
    assert!(failed["actor"].is_null());
    assert_eq!(failed["target_id"], "quinn");

    let page: Value = get_as(&server, "/api/audit?limit=3", &admin).await.json().await.unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    let third_id = page["entries"][2]["id"].as_i64().unwrap();
    assert_eq!(page["next"], format!("/api/audit?limit=3&before={third_id}"));

    for query in ["limit=0", "limit=201", "before=0", "before=abc", "limit=x"] {
        let response = get_as(&server, &format!("/api/audit?{query}"), &admin).await;
        assert_problem(response, 400, "malformed_request").await;
    }
}

on_each_backend!(audit_rows_written_and_paged);

// ---------------------------------------------------------------------------------------
// Command line

async fn cli_user_commands(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;

    add_user(&registry, "Dora", "editor");
    let (ok, _, stderr) = run_with_input(&registry, &["user", "add", "dora", "--role", "viewer"], "another password\n");
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = run_with_input(&registry, &["user", "add", "erin", "--role", "viewer"], "\n");
    assert!(!ok);
    assert!(stderr.contains("empty"), "{stderr}");
    let (ok, _, stderr) = run_with_input(&registry, &["user", "add", "erin", "--role", "viewer"], "");
    assert!(!ok);
    assert!(stderr.contains("empty"), "{stderr}");
    let (ok, _, stderr) = run_with_input(&registry, &["user", "add", "erin", "--role", "owner"], "long password\n");
    assert!(!ok);
    assert!(stderr.contains("unknown role"), "{stderr}");
    let (ok, _, stderr) =
        run_with_input(&registry, &["user", "add", "bad/name", "--role", "viewer"], "long password\n");
    assert!(!ok);
    assert!(stderr.contains("invalid username"), "{stderr}");
    let (ok, stdout, _) = run_with_input(&registry, &["user", "add", "crlf", "--role", "viewer"], "windows line\r\n");
    assert!(ok, "{stdout}");
    assert_eq!(sign_in(&server, "crlf", "windows line").await.status(), 200);

    let token = token_for(&server, "dora", USER_PASSWORD).await;
    assert_eq!(account_role(&server, &token).await, "editor");

    let (ok, stdout, stderr) = registry.run(&["user", "set-role", "dora", "reviewer"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("dora: role editor -> reviewer"), "{stdout}");
    assert_eq!(account_role(&server, &token).await, "reviewer");

    let (ok, stdout, stderr) = registry.run(&["user", "disable", "dora"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("disabled the account dora"), "{stdout}");
    assert_problem(get_as(&server, "/api/account", &token).await, 401, "unauthenticated").await;

    add_user(&registry, &"long_name_".repeat(4), "viewer");
    let (ok, stdout, _) = registry.run(&["user", "list"]);
    assert!(ok);
    // Columns line up whatever the length of the usernames.
    let role_at = stdout.lines().next().unwrap().find("ROLE").unwrap();
    for line in stdout.lines().skip(1) {
        let role = &line[role_at..];
        assert!(["viewer", "editor", "reviewer", "admin"].iter().any(|r| role.starts_with(r)), "{stdout}");
    }
    let dora = stdout.lines().find(|line| line.starts_with("dora ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(dora.contains("reviewer"), "{dora}");
    assert!(dora.contains("disabled"), "{dora}");
    assert!(stdout.lines().any(|line| line.starts_with("admin ") && line.contains("enabled")), "{stdout}");

    let (ok, _, stderr) = registry.run(&["user", "enable", "dora"]);
    assert!(ok, "{stderr}");
    assert_eq!(get_as(&server, "/api/account", &token).await.status(), 200);

    let (ok, _, stderr) = registry.run(&["user", "set-role", "admin", "viewer"]);
    assert!(!ok);
    assert!(stderr.contains("last enabled admin"), "{stderr}");
    let (ok, _, stderr) = registry.run(&["user", "disable", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("no account named `nobody`"), "{stderr}");

    let (ok, _, stderr) = run_with_input(&registry, &["user", "set-password", "dora"], "a brand new password\n");
    assert!(ok, "{stderr}");
    assert_problem(sign_in(&server, "dora", USER_PASSWORD).await, 401, "unauthenticated").await;
    assert_eq!(sign_in(&server, "dora", "a brand new password").await.status(), 200);

    let (ok, stdout, stderr) = registry.run(&["token", "issue", "--user", "dora", "--name", "ci", "--days", "2"]);
    assert!(ok, "{stderr}");
    let machine_token = stdout.trim();
    assert_eq!(machine_token.lines().count(), 1, "{stdout}");
    assert!(!stderr.contains(machine_token), "the token is on standard error");
    let claims = claims_of(machine_token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 2 * 24 * 3600);
    let account: Value = get_as(&server, "/api/account", machine_token).await.json().await.unwrap();
    assert_eq!(account["username"], "dora");
    assert_eq!(account["token_kind"], "api");

    let (ok, _, stderr) = registry.run(&["token", "issue", "--user", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("no account named `nobody`"), "{stderr}");

    let admin = admin_token(&server).await;
    let entries = audit_entries(&server, &admin, 100).await;
    let from_cli: Vec<&str> =
        entries.iter().filter(|e| e["channel"] == "cli").map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "account.created",
        "account.role_changed",
        "account.disabled",
        "account.enabled",
        "account.password_changed",
        "token.issued",
    ] {
        assert!(from_cli.contains(&action), "{action} missing from {from_cli:?}");
    }
}

on_each_backend!(cli_user_commands);

// ---------------------------------------------------------------------------------------
// Secrets

async fn secrets_absent_from_logs(backend: Backend) {
    let mut registry = registry(backend).await;
    registry.extra_env.push(("RUST_LOG".into(), "debug".into()));
    let server = registry.start().await;
    let wrong_password = "wrong password that must not be logged";

    let mut secrets =
        vec![ADMIN_PASSWORD.to_owned(), JWT_SECRET.to_owned(), wrong_password.to_owned(), USER_PASSWORD.to_owned()];

    let admin = admin_token(&server).await;
    secrets.push(admin.clone());
    assert_problem(sign_in(&server, "admin", wrong_password).await, 401, "unauthenticated").await;
    assert_problem(sign_in(&server, "nobody", wrong_password).await, 401, "unauthenticated").await;
    create_account(&server, &admin, "lee", "editor").await;
    secrets.push(token_for(&server, "lee", USER_PASSWORD).await);

    let request = json!({ "username": "lee", "name": "logged?" });
    let issued: Value =
        call(&server, Method::POST, "/api/tokens", Some(&admin), Some(request)).await.json().await.unwrap();
    secrets.push(issued["token"].as_str().unwrap().to_owned());

    let client = browser();
    let (cookie, csrf, _) = login_form(&client, &server, "").await;
    let fields = [("username", "lee"), ("password", wrong_password), ("csrf_token", &csrf), ("next", "/account")];
    assert_eq!(post_login(&client, &server, Some(&cookie), &fields).await.status(), 401);
    let fields = [("username", "lee"), ("password", USER_PASSWORD), ("csrf_token", &csrf), ("next", "/account")];
    let response = post_login(&client, &server, Some(&cookie), &fields).await;
    assert_eq!(response.status(), 303);
    secrets.push(cookie_value(&set_cookie(&response, "registry_session").unwrap()));

    let (ok, stdout, cli_log) = registry.run(&["token", "issue", "--user", "lee"]);
    assert!(ok, "{cli_log}");
    secrets.push(stdout.trim().to_owned());

    let logs = format!("{}\n{cli_log}", server.logs());
    assert!(logs.contains("signed in"), "the log has no sign-in lines:\n{logs}");
    assert!(logs.contains("sign-in failed"), "the log has no failed sign-in lines:\n{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret appears in the log: {secret}");
        // The signature alone would let a reader verify guesses of the key offline.
        if let Some(signature) = secret.split('.').nth(2) {
            assert!(!logs.contains(signature), "a token signature appears in the log: {secret}");
        }
    }
}

async fn server_key_file_private_and_kept(backend: Backend) {
    let mut registry = TestRegistry::new(backend).await;
    registry.extra_env.push(("REGISTRY_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    let server = registry.start().await;
    let token = admin_token(&server).await;
    assert!(server.stop().success());

    let path = registry.data_dir().join("jwt-secret");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 128, "64 random bytes in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let server = registry.start().await;
    assert_eq!(get_as(&server, "/api/account", &token).await.status(), 200, "the key changed across restarts");
    assert!(!server.logs().contains(text.trim()));
}

on_each_backend!(secrets_absent_from_logs, server_key_file_private_and_kept);

// ---------------------------------------------------------------------------------------
// Audit log storage

/// Checks that the database itself rejects changes to written audit rows, so no code path
/// can rewrite the log.
async fn audit_log_append_only_in_database(backend: Backend) {
    let registry = registry(backend).await;
    let server = registry.start().await;
    admin_token(&server).await;
    assert!(server.stop().success());

    let url = match &registry.database {
        Some(database) => database.url.clone(),
        None => format!("sqlite://{}", registry.sqlite_file().display()),
    };
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();

    let update = sqlx::query("UPDATE audit_log SET action = 'rewritten'").execute(&mut connection).await;
    let error = update.expect_err("an audit row was updated");
    assert!(error.to_string().contains("append-only"), "{error}");
    let delete = sqlx::query("DELETE FROM audit_log").execute(&mut connection).await;
    let error = delete.expect_err("audit rows were deleted");
    assert!(error.to_string().contains("append-only"), "{error}");

    let count: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM audit_log").fetch_one(&mut connection).await.unwrap(),
        "n",
    );
    assert_eq!(count, 2, "account.created and session.started");
}

on_each_backend!(audit_log_append_only_in_database);
