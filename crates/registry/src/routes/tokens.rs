//! Machine tokens: admins issue, list and revoke long-lived API tokens.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ontology_core::FieldError;
use ontology_core::record::check_line;
use ontology_governance::audit::actions;
use ontology_governance::{Channel, TokenKind, TokenRecord, Username};
use serde::{Deserialize, Serialize};

use super::auth::no_store;
use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};

pub const DEFAULT_DAYS: u32 = 90;
pub const MAX_DAYS: u32 = 3650;
const NAME_MAX_CHARS: usize = 100;

/// A machine token to issue.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// The account the token acts as; requests with it have that account's current role.
    username: String,
    /// A label saying what uses the token, 1..=100 characters.
    name: String,
    /// Lifetime in days, 1..=3650; 90 when absent.
    days: Option<u32>,
}

/// A stored token. The token itself appears only in the response that issues it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenDocument {
    /// The token id (`jti`).
    id: String,
    username: String,
    /// `api` for machine tokens, `session` for tokens from signing in.
    kind: String,
    name: Option<String>,
    issued_at: String,
    expires_at: String,
    /// The admin who issued it over the API; null for the command line and sessions.
    issued_by: Option<String>,
    revoked_at: Option<String>,
    /// The JWT, only when the token is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl TokenDocument {
    fn from_record(record: TokenRecord, token: Option<String>) -> TokenDocument {
        TokenDocument {
            id: record.jti,
            username: record.username.to_string(),
            kind: record.kind.as_str().to_owned(),
            name: record.name,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            issued_by: record.issued_by.map(|name| name.to_string()),
            revoked_at: record.revoked_at,
            token,
        }
    }
}

/// Machine tokens, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenDocument>,
}

/// Issues a machine token for an account.
#[utoipa::path(
    post,
    path = "/api/tokens",
    operation_id = "issue_token",
    tag = "accounts",
    request_body = NewTokenRequest,
    responses(
        (status = 201, description = "Issued; the body carries the token once", body = TokenDocument,
         headers(("Location" = String, description = "The token's path"))),
        (status = 400, description = "`malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: unknown or disabled account, bad name or lifetime", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn issue(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    payload: Result<Json<NewTokenRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = payload?;
    let mut errors = Vec::new();
    let username = Username::parse(&request.username)
        .map_err(|error| errors.push(FieldError::new("username", error.to_string())))
        .ok();
    let name = request.name.trim();
    check_line("name", name, NAME_MAX_CHARS, &mut errors);
    let days = request.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        errors.push(FieldError::new("days", format!("give a lifetime of 1 to {MAX_DAYS} days")));
    }
    let account = match &username {
        Some(username) => match app.auth.accounts.find(username).await? {
            Some(account) if account.is_disabled() => {
                errors.push(FieldError::new("username", format!("the account `{username}` is disabled")));
                None
            }
            Some(account) => Some(account),
            None => {
                errors.push(FieldError::new("username", format!("no account named `{username}`")));
                None
            }
        },
        None => None,
    };
    let Some(account) = account.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_failed("the token request is invalid", errors));
    };

    let actor = principal.actor(Channel::Api, client);
    let lifetime = Duration::from_secs(u64::from(days) * 24 * 3600);
    let issued =
        app.auth.issue_token(&actor, Some(&principal.account), &account, TokenKind::Api, Some(name), lifetime).await?;
    tracing::info!(jti = %issued.record.jti, username = %account.username, issued_by = %principal.account.username, "issued a machine token");

    let location = format!("/api/tokens/{}", issued.record.jti);
    let body = TokenDocument::from_record(issued.record, Some(issued.token));
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::try_from(location).map_err(anyhow::Error::from)?);
    Ok(no_store(response))
}

/// The kind of tokens to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `api` (the default) for machine tokens, revoked and expired ones included, or
    /// `session` for the sign-in sessions that still work.
    kind: Option<String>,
}

/// Maximum number of sessions one listing returns, newest first.
const SESSIONS_LISTED: i64 = 500;

/// Lists machine tokens, or the active sessions, so that an admin can find a `jti` to revoke.
#[utoipa::path(
    get,
    path = "/api/tokens",
    operation_id = "list_tokens",
    tag = "accounts",
    params(ListQuery),
    responses(
        (status = 200, description = "The tokens, newest first", body = TokenList),
        (status = 400, description = "`malformed_request`: an unknown kind", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(State(app): State<AppState>, Query(query): Query<ListQuery>) -> ApiResult<Json<TokenList>> {
    let records = match query.kind.as_deref().unwrap_or("api") {
        "api" => app.auth.tokens.list_api_tokens().await?,
        "session" => app.auth.tokens.list_active_sessions(SESSIONS_LISTED).await?,
        other => {
            return Err(ApiError::malformed_request(format!("`kind` must be `api` or `session`, not `{other}`")));
        }
    };
    let tokens = records.into_iter().map(|record| TokenDocument::from_record(record, None)).collect();
    Ok(Json(TokenList { tokens }))
}

/// Revokes a token (a machine token or a session) at once.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    operation_id = "revoke_token",
    tag = "accounts",
    params(("id" = String, Path, description = "The token id (`jti`)")),
    responses(
        (status = 200, description = "Revoked; revoking a revoked token changes nothing", body = TokenDocument),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenDocument>> {
    let actor = principal.actor(Channel::Api, client);
    let Some(record) = app.auth.tokens.revoke(&actor, &id, actions::TOKEN_REVOKED).await? else {
        return Err(ApiError::not_found(format!("no token with id `{id}`")));
    };
    tracing::info!(jti = %record.jti, revoked_by = %principal.account.username, "revoked a token");
    Ok(Json(TokenDocument::from_record(record, None)))
}
