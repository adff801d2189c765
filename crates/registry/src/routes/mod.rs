//! HTTP routes. The module tree mirrors the URL tree; every route is registered with its
//! OpenAPI description, so the API document cannot miss one.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod diff;
pub mod health;
pub mod ontology;
pub mod proposals;
pub mod releases;
pub mod search;
pub mod tokens;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use ontology_governance::Role;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::layer::restricted;
use crate::problem::{ApiError, name_body_limit};

/// Largest body of the sign-in and account routes, which take a few short strings. A
/// smaller configured limit applies instead.
const ACCOUNT_BODY_LIMIT: usize = 16 * 1024;

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

/// Signing in, accounts, tokens and the audit log. Every route other than signing in
/// requires a role, checked by [`restricted`].
pub fn account_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let signed_in = OpenApiRouter::new().routes(routes!(auth::current_account));
    let admin = OpenApiRouter::new()
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::update))
        .routes(routes!(tokens::issue, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::audit_log));

    let routes = OpenApiRouter::new()
        .routes(routes!(auth::create_token))
        .merge(restricted(Role::Viewer, state, signed_in))
        .merge(restricted(Role::Admin, state, admin));
    private_routes(routes, ACCOUNT_BODY_LIMIT.min(state.config.body_limit))
}

/// Change proposals: editors propose, update and withdraw their own; reviewers review and
/// merge. Their bodies, full KPI records, may be as large as the configured body limit.
pub fn proposal_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let editor = OpenApiRouter::new()
        .routes(routes!(proposals::create, proposals::list))
        .routes(routes!(proposals::show, proposals::update))
        .routes(routes!(proposals::withdraw))
        .routes(routes!(proposals::review::reviews))
        .routes(routes!(proposals::review::show_review));
    let reviewer =
        OpenApiRouter::new().routes(routes!(proposals::review::review)).routes(routes!(proposals::merge::merge));

    let routes = OpenApiRouter::new().merge(restricted(Role::Editor, state, editor)).merge(restricted(
        Role::Reviewer,
        state,
        reviewer,
    ));
    private_routes(routes, state.config.body_limit)
}

/// Caps the routes' request bodies at `limit` bytes and names the limit in the 413 response,
/// and keeps their responses out of caches, because each concerns one account.
fn private_routes(routes: OpenApiRouter<AppState>, limit: usize) -> OpenApiRouter<AppState> {
    routes
        .layer(middleware::map_response_with_state(limit, name_body_limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("this path does not accept this method")
}
