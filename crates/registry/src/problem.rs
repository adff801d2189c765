//! Errors as `application/problem+json` (RFC 9457) with the registry's fixed `code`s.
//!
//! Handlers return [`ApiError`]; this module is the only place that turns an error into a
//! response. Internal errors are logged with their whole cause chain and get a generic
//! body: a 5xx never carries SQL, paths or stack traces to the client.

use axum::extract::State;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ontology_core::FieldError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A client error with its fixed code, or an internal error.
#[derive(Debug)]
pub enum ApiError {
    Client {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: String,
        errors: Vec<FieldError>,
        retry_after: Option<u64>,
    },
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn client(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Client { status, code, title, detail: detail.into(), errors: Vec::new(), retry_after: None }
    }

    pub fn invalid_version_requirement(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::BAD_REQUEST, "invalid_version_requirement", "Invalid version requirement", detail)
    }

    pub fn invalid_id(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::BAD_REQUEST, "invalid_id", "Invalid id", detail)
    }

    pub fn malformed_request(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::BAD_REQUEST, "malformed_request", "Malformed request", detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn self_approval_forbidden(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::FORBIDDEN, "self_approval_forbidden", "Self-approval forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed", detail)
    }

    pub fn version_not_found(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::NOT_FOUND, "version_not_found", "Version not found", detail)
    }

    pub fn base_version_outdated(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::CONFLICT, "base_version_outdated", "Base version outdated", detail)
    }

    pub fn invalid_transition(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::CONFLICT, "invalid_transition", "Invalid transition", detail)
    }

    pub fn not_approved(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::CONFLICT, "not_approved", "Not approved", detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> ApiError {
        Self::client(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type", detail)
    }

    pub fn validation_failed(detail: impl Into<String>, errors: Vec<FieldError>) -> ApiError {
        ApiError::Client {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            title: "Validation failed",
            detail: detail.into(),
            errors,
            retry_after: None,
        }
    }

    /// Reports a request that the server cannot serve now but may in a moment, such as a
    /// merge that met a concurrent writer.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError::Client {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            title: "Service unavailable",
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: Some(retry_after_secs.max(1)),
        }
    }

    pub fn rate_limited(detail: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError::Client {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            title: "Too many requests",
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: Some(retry_after_secs.max(1)),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(error.into())
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

/// Builds a problem response. Exposed for the few places (middleware, fallbacks) that
/// respond without a handler.
/// The challenge of every 401: a bearer token, from `POST /api/auth/token` or an admin.
const BEARER_CHALLENGE: &str = "Bearer realm=\"ontology-registry\"";

pub fn problem_response(status: StatusCode, code: &str, title: &str, detail: &str, errors: &[FieldError]) -> Response {
    let body = ProblemBody { kind: format!("/problems/{code}"), title, status: status.as_u16(), detail, code, errors };
    let bytes = serde_json::to_vec(&body).expect("problem bodies serialise to JSON");
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    // HTTP requires a 401 to name the scheme that authenticates: a bearer token.
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client { status, code, title, detail, errors, retry_after } => {
                let mut response = problem_response(status, code, title, &detail, &errors);
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            ApiError::Internal(error) => {
                // The request id is on the span of the request, so this line carries it.
                tracing::error!(error = format!("{error:#}"), "internal error");
                problem_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error",
                    "The registry failed to handle this request. The error is logged with the request id of this response.",
                    &[],
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::unsupported_media_type(
                "this endpoint expects a JSON body with `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(inner) if inner.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::payload_too_large("the request body is larger than the limit")
            }
            other => ApiError::malformed_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::malformed_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid_id(rejection.body_text())
    }
}

/// Names the route's body limit in its 413 responses, which the framework's rejection
/// leaves out. Layered with the `DefaultBodyLimit` of the same `limit`.
pub async fn name_body_limit(State(limit): State<usize>, response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    ApiError::payload_too_large(format!("the request body is larger than the {limit} bytes this route accepts"))
        .into_response()
}
