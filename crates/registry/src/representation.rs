//! Conditional, cacheable responses for rendered bodies: content negotiation between the
//! identity and gzip forms, strong ETags, `If-None-Match` and `304`, and the version and
//! cache headers of the read API.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::catalog::Body;

pub const ONTOLOGY_VERSION: &str = "ontology-version";
pub const KPI_VERSION: &str = "kpi-version";

/// Exact pins never change, so caches may keep them for a year.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Unpinned and range answers move with each release.
const SHORT: HeaderValue = HeaderValue::from_static("public, max-age=30");
const ACCEPT_ENCODING_VARY: HeaderValue = HeaderValue::from_static("accept-encoding");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const ATOM: HeaderValue = HeaderValue::from_static("application/atom+xml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// An exact pin: the same bytes forever.
    Immutable,
    /// Unpinned or a range: may change with the next release.
    Short,
}

/// The request headers that choose a representation, read without copying the whole
/// header map.
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    if_none_match: Option<HeaderValue>,
    accepts_gzip: bool,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Conditional {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Conditional::from_headers(&parts.headers))
    }
}

impl Conditional {
    pub fn from_headers(headers: &HeaderMap) -> Conditional {
        Conditional { if_none_match: headers.get(header::IF_NONE_MATCH).cloned(), accepts_gzip: accepts_gzip(headers) }
    }
}

/// A rendered body with the headers that describe it.
pub struct Representation<'a> {
    pub body: &'a Arc<Body>,
    pub content_type: HeaderValue,
    pub caching: Caching,
    pub ontology_version: Option<&'a HeaderValue>,
    pub kpi_version: Option<&'a HeaderValue>,
}

impl Representation<'_> {
    /// Answers the request: `304` when `If-None-Match` matches the chosen form's tag,
    /// otherwise `200` with the chosen form.
    pub fn respond(&self, request: &Conditional) -> Response {
        let gzip = request.accepts_gzip.then(|| self.body.gzip()).flatten();
        let (bytes, etag) = match gzip {
            Some(encoded) => (&encoded.bytes, &encoded.etag),
            None => (self.body.bytes(), self.body.etag()),
        };

        let not_modified = request
            .if_none_match
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| if_none_match(value, etag));

        let mut response = if not_modified {
            let mut response = Response::new(HttpBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            Response::new(HttpBody::from(bytes.clone()))
        };

        // Sized for the headers set here and the few the middleware adds, so the map is
        // allocated once.
        *response.headers_mut() = HeaderMap::with_capacity(12);
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            match self.caching {
                Caching::Immutable => IMMUTABLE,
                Caching::Short => SHORT,
            },
        );
        headers.insert(header::VARY, ACCEPT_ENCODING_VARY);
        if let Some(version) = self.ontology_version {
            headers.insert(ONTOLOGY_VERSION, version.clone());
        }
        if let Some(version) = self.kpi_version {
            headers.insert(KPI_VERSION, version.clone());
        }
        if !not_modified {
            headers.insert(header::CONTENT_TYPE, self.content_type.clone());
            if gzip.is_some() {
                headers.insert(header::CONTENT_ENCODING, GZIP);
            }
        }
        response
    }
}

/// Whether `Accept-Encoding` accepts gzip with a non-zero quality.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            if !(coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) {
                return false;
            }
            parts.all(|param| {
                let param = param.trim();
                match param.strip_prefix("q=").or_else(|| param.strip_prefix("Q=")) {
                    Some(q) => q.trim().parse::<f32>().map(|q| q > 0.0).unwrap_or(false),
                    None => true,
                }
            })
        })
}

/// Evaluates `If-None-Match` against a strong tag with the weak comparison that RFC 9110
/// prescribes for this header: `W/` prefixes are ignored, `*` matches any tag.
fn if_none_match(header_value: &str, etag: &HeaderValue) -> bool {
    let Ok(current) = etag.to_str() else { return false };
    header_value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip, deflate, br")));
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "br;q=1.0, gzip;q=0.5")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_forms() {
        let tag = HeaderValue::from_static("\"abc\"");
        assert!(if_none_match("\"abc\"", &tag));
        assert!(if_none_match("W/\"abc\"", &tag));
        assert!(if_none_match("\"x\", \"abc\"", &tag));
        assert!(if_none_match("*", &tag));
        assert!(!if_none_match("\"abd\"", &tag));
        assert!(!if_none_match("abc", &tag));
    }
}
