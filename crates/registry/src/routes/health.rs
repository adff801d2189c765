//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::problem::problem_response;

/// Liveness: the process runs and answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is alive")))]
pub async fn live() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Readiness: the database answers and the git repository opens.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve"),
        (status = 503, description = "The database or the git repository is unavailable", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(State(app): State<AppState>) -> Response {
    let database = app.db.ping().await;
    let store = app.store.clone();
    let git = tokio::task::spawn_blocking(move || store.head()).await;

    let git_ok = matches!(git, Ok(Ok(_)));
    match (&database, git_ok) {
        (Ok(()), true) => Json(json!({ "status": "ready", "database": "ok", "git": "ok" })).into_response(),
        _ => {
            if let Err(error) = &database {
                tracing::warn!(error = %error, "readiness: the database does not answer");
            }
            if !git_ok {
                tracing::warn!(error = ?git, "readiness: the git repository does not open");
            }
            problem_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Not ready",
                &format!(
                    "database: {}, git: {}",
                    if database.is_ok() { "ok" } else { "unavailable" },
                    if git_ok { "ok" } else { "unavailable" }
                ),
                &[],
            )
        }
    }
}
