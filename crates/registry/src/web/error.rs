//! The HTML error page. Web pages report errors as a page, the API as problem JSON.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    /// Plain text, escaped by the template. It quotes request values, so it must never
    /// be read as markup or Markdown.
    detail: String,
}

/// Renders an error page with the given status and the problem's plain-text detail.
pub fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = ErrorPage { title: title.to_owned(), detail: detail.to_owned() };
    let mut response = (status, page).into_response();
    super::add_page_headers(&mut response);
    response
}

/// Returns whether a request path belongs to the web pages rather than the API or the
/// probes.
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/api" || path == "/healthz" || path == "/readyz")
}
