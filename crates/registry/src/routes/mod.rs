//! HTTP routes. The module tree mirrors the URL tree; every route is registered with its
//! OpenAPI description, so the API document cannot miss one.

pub mod diff;
pub mod health;
pub mod ontology;
pub mod releases;
pub mod search;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::problem::ApiError;

/// The public read API and the health checks.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(ontology::index))
        .routes(routes!(releases::releases_json))
        .routes(routes!(releases::releases_atom))
        .routes(routes!(search::search))
        .routes(routes!(ontology::domain))
        .routes(routes!(ontology::kpi))
        .routes(routes!(ontology::versions))
        .routes(routes!(diff::diff))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("this path does not accept this method")
}
