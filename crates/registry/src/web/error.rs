//! The HTML error page. Web pages report errors as a page, the API as problem JSON.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::markdown;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    /// Rendered HTML: the detail's `code` spans become code.
    detail: String,
}

/// Renders an error page with the given status. The detail is the problem's plain-text
/// detail, whose backtick spans are shown as code.
pub fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = ErrorPage { title: title.to_owned(), detail: markdown::render_inline(detail) };
    let mut response = (status, page).into_response();
    super::add_page_headers(&mut response);
    response
}

/// Returns whether a request path belongs to the web pages rather than the API or the
/// probes.
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/api" || path == "/healthz" || path == "/readyz")
}
