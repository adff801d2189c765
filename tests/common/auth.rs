//! Helpers for tests of accounts and tokens: registries with a known admin password and
//! server key, signing in, accounts made at the command line, and hand-made tokens.

use std::io::Write;
use std::process::Stdio;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{Backend, TestRegistry, TestServer};

pub const ADMIN_PASSWORD: &str = "admin password for tests";
/// The server key of [`registry`]'s registries, so tests can sign tokens by hand.
pub const JWT_SECRET: &str = "a test server key that is at least thirty-two bytes long";
/// The password of accounts made with [`add_user`].
pub const USER_PASSWORD: &str = "user password for tests";

/// Creates a registry whose first start creates `admin` with [`ADMIN_PASSWORD`], signing tokens
/// with [`JWT_SECRET`].
pub async fn registry(backend: Backend) -> TestRegistry {
    let mut registry = TestRegistry::new(backend).await;
    registry.extra_env.push(("REGISTRY_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    registry.extra_env.push(("REGISTRY_JWT_SECRET".into(), JWT_SECRET.into()));
    registry
}

/// Runs a command with `input` on its standard input; returns (success, stdout, stderr).
pub fn run_with_input(registry: &TestRegistry, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = registry
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the registry binary runs");
    // A command that rejects its arguments exits before reading, closing the pipe, so a
    // failed write is expected there and the exit status tells the rest.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Creates an account at the command line with [`USER_PASSWORD`].
pub fn add_user(registry: &TestRegistry, name: &str, role: &str) {
    let (ok, stdout, stderr) =
        run_with_input(registry, &["user", "add", name, "--role", role], &format!("{USER_PASSWORD}\n"));
    assert!(ok, "user add {name} failed: {stdout}{stderr}");
}

/// POSTs credentials to /api/auth/token.
pub async fn sign_in(server: &TestServer, username: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/auth/token"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the session token, failing the test otherwise.
pub async fn token_for(server: &TestServer, username: &str, password: &str) -> String {
    let response = sign_in(server, username, password).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "sign-in of {username}: {body}");
    body["token"].as_str().unwrap().to_owned()
}

pub async fn admin_token(server: &TestServer) -> String {
    token_for(server, "admin", ADMIN_PASSWORD).await
}

/// Sends a request with a bearer token (or none) and an optional JSON body.
pub async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

pub async fn get_as(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    call(server, reqwest::Method::GET, path, Some(token), None).await
}

/// Decodes the claims of a JWT without checking the signature.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Decodes the header of a JWT.
pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Signs claims with an HMAC algorithm and secret of the test's choice.
pub fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap())
        .unwrap()
}

/// Builds an unsigned token with `"alg": "none"`.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// Replaces the payload of a signed token and keeps its signature.
pub fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Returns a response's `Set-Cookie` header for the named cookie.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Returns the value part of a `Set-Cookie` header (`name=value; attributes` to `value`).
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// Returns the value of a hidden or text input in a rendered page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Builds a client that does not follow redirects, so tests see the 303 and its cookies.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_gzip().build().unwrap()
}
