//! Signing in over the API, and the signed-in account.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ontology_governance::Channel;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::ApiResult;

/// Credentials of an account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Case-insensitive.
    username: String,
    password: String,
}

/// A session token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A JWT to send as `Authorization: Bearer <token>`.
    token: String,
    /// RFC 3339 UTC; sign in again after it.
    expires_at: String,
}

/// Signs in and returns a session token.
#[utoipa::path(
    post,
    path = "/api/auth/token",
    tag = "accounts",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "`malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: invalid username or password, or the account is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed sign-ins for this username or from this address; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    State(app): State<AppState>,
    ClientAddress(client): ClientAddress,
    payload: Result<Json<TokenRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = payload?;

    let issued = app.auth.sign_in(&request.username, &request.password, client, Channel::Api).await?;

    let body = TokenResponse { token: issued.token, expires_at: issued.record.expires_at };
    Ok(no_store(Json(body).into_response()))
}

/// Marks a response that carries a token as not to be cached anywhere.
pub fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The signed-in account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountDocument {
    username: String,
    role: String,
    created_at: String,
    /// The id (`jti`) of the token this request carried.
    token_id: String,
    /// `session` or `api`.
    token_kind: String,
}

/// The account of the token this request carries, with its role as stored now.
#[utoipa::path(
    get,
    path = "/api/account",
    tag = "accounts",
    responses((status = 200, description = "The signed-in account", body = AccountDocument))
)]
pub async fn current_account(principal: Principal) -> ApiResult<Json<AccountDocument>> {
    let account = principal.account;
    Ok(Json(AccountDocument {
        username: account.username.to_string(),
        role: account.role.to_string(),
        created_at: account.created_at,
        token_id: principal.jti,
        token_kind: principal.kind.as_str().to_owned(),
    }))
}
