//! Accounts, roles, tokens, web sign-in, rate limits and the audit log through a real
//! server process.

mod common;

use common::{Backend, TestRegistry};

async fn sign_in_returns_token(backend: Backend) {
    let mut registry = TestRegistry::new(backend).await;
    registry.extra_env.push(("REGISTRY_ADMIN_PASSWORD".into(), "first admin password".into()));
    let server = registry.start().await;
    let response = server
        .client
        .post(server.url("/api/auth/token"))
        .json(&serde_json::json!({ "username": "admin", "password": "first admin password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

on_each_backend!(sign_in_returns_token);
