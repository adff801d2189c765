//! Server-rendered web pages (askama templates in `web/templates`). They work without
//! JavaScript and authenticate with the session cookie, never with bearer tokens.

pub mod catalog;
pub mod error;
pub mod markdown;
pub mod session;
pub mod sign_in;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::problem::name_body_limit;

/// Largest form body; the forms carry a few short fields. A smaller configured limit
/// applies instead.
const FORM_BODY_LIMIT: usize = 16 * 1024;

/// The content policy of every page: its own inline styles, images that definitions link
/// to, and nothing else. No script runs, no other site frames a page, and forms post only
/// here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' http: https:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The headers of every page, error pages included.
const PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// Adds the page headers to a page rendered outside the page routes, such as the error
/// page of a path that no route matches.
pub fn add_page_headers(response: &mut axum::response::Response) {
    for (name, value) in PAGE_HEADERS {
        response.headers_mut().entry(name).or_insert(HeaderValue::from_static(value));
    }
}

/// Routes the catalog, KPI, sign-in, sign-out and account pages.
pub fn routes(body_limit: usize) -> Router<AppState> {
    let form_limit = FORM_BODY_LIMIT.min(body_limit);

    // Pages of one signed-in person, with their CSRF tokens: never kept by a cache.
    let personal = Router::new()
        .route("/login", get(sign_in::login_form).post(sign_in::login))
        .route("/logout", get(sign_in::logout_form).post(sign_in::logout))
        .route("/account", get(sign_in::account_page))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));

    let mut router = Router::new()
        .route("/", get(catalog::catalog))
        .route("/ontology/{domain}/{key}", get(catalog::kpi))
        .merge(personal)
        .layer(middleware::map_response_with_state(form_limit, name_body_limit))
        .layer(DefaultBodyLimit::max(form_limit));
    for (name, value) in PAGE_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    router
}
