//! HTTP routes. The tree mirrors the URL tree.

pub mod diff;
pub mod health;
pub mod ontology;
pub mod releases;
pub mod search;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::problem::ApiError;

/// The public read API and the health checks.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/api/ontology/{segment}", get(ontology::catalog_segment))
        .route("/api/ontology/{domain}/{file}", get(ontology::kpi))
        .route("/api/ontology/{domain}/{key}/{document}", get(ontology::kpi_document))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("this path does not accept this method")
}
