//! Server-rendered web pages (askama templates in `web/templates`). They work without
//! JavaScript and authenticate with the session cookie, never with bearer tokens.

pub mod session;
pub mod sign_in;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

use crate::app::AppState;
use crate::problem::name_body_limit;

/// Largest form body; the forms carry a few short fields. A smaller configured limit
/// applies instead.
const FORM_BODY_LIMIT: usize = 16 * 1024;

/// Routes the sign-in, sign-out and account pages.
pub fn routes(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/login", get(sign_in::login_form).post(sign_in::login))
        .route("/logout", get(sign_in::logout_form).post(sign_in::logout))
        .route("/account", get(sign_in::account_page))
        .layer(middleware::map_response_with_state(FORM_BODY_LIMIT.min(body_limit), name_body_limit))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT.min(body_limit)))
}
