//! Account management for admins: list, create, change role, disable and re-enable.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ontology_core::FieldError;
use ontology_governance::accounts::NewPassword;
use ontology_governance::{Account, AccountError, Channel, Role, Username};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};

/// An account as admins see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountSummary {
    username: String,
    /// `viewer`, `editor`, `reviewer` or `admin`.
    role: String,
    created_at: String,
    /// When the account was disabled, or null while it may sign in.
    disabled_at: Option<String>,
}

impl From<Account> for AccountSummary {
    fn from(account: Account) -> AccountSummary {
        AccountSummary {
            username: account.username.to_string(),
            role: account.role.to_string(),
            created_at: account.created_at,
            disabled_at: account.disabled_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountList {
    accounts: Vec<AccountSummary>,
}

/// An account to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// 1..=64 of `a-z`, `0-9`, `_`, `.`, `-`; upper-case letters are lower-cased.
    username: String,
    /// At least 8 characters, at most 1024 bytes.
    password: String,
    /// `viewer`, `editor`, `reviewer` or `admin`.
    role: String,
}

/// Changes to an account; absent members stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    role: Option<String>,
    /// `true` disables the account, which ends every token issued to it at once.
    disabled: Option<bool>,
}

fn parse_role(text: &str, errors: &mut Vec<FieldError>) -> Option<Role> {
    text.parse::<Role>().map_err(|error| errors.push(FieldError::new("role", error.to_string()))).ok()
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> ApiError {
        match error {
            AccountError::UsernameTaken(_) => ApiError::validation_failed(
                "the account cannot be created",
                vec![FieldError::new("username", error.to_string())],
            ),
            AccountError::NotFound(_) => ApiError::not_found(error.to_string()),
            AccountError::LastAdmin(_) => ApiError::invalid_transition(error.to_string()),
            AccountError::Query(error) => error.into(),
        }
    }
}

/// Lists every account.
#[utoipa::path(
    get,
    path = "/api/accounts",
    operation_id = "list_accounts",
    tag = "accounts",
    responses((status = 200, description = "Every account, by username", body = AccountList))
)]
pub async fn list(State(app): State<AppState>) -> ApiResult<Json<AccountList>> {
    let accounts = app.auth.accounts.list().await?;
    Ok(Json(AccountList { accounts: accounts.into_iter().map(AccountSummary::from).collect() }))
}

/// Creates an account.
#[utoipa::path(
    post,
    path = "/api/accounts",
    operation_id = "create_account",
    tag = "accounts",
    request_body = NewAccountRequest,
    responses(
        (status = 201, description = "Created", body = AccountSummary, headers(("Location" = String))),
        (status = 400, description = "`malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: bad username, password or role, or the username is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    payload: Result<Json<NewAccountRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = payload?;
    let mut errors = Vec::new();
    let username = Username::parse(&request.username)
        .map_err(|error| errors.push(FieldError::new("username", error.to_string())))
        .ok();
    let password = NewPassword::parse(&request.password)
        .map_err(|error| errors.push(FieldError::new("password", error.to_string())))
        .ok();
    let role = parse_role(&request.role, &mut errors);
    let (Some(username), Some(password), Some(role)) = (username, password, role) else {
        return Err(ApiError::validation_failed("the account is invalid", errors));
    };

    let hash = tokio::task::spawn_blocking(move || password.hash()).await.map_err(anyhow::Error::from)?;
    let account = app.auth.accounts.create(&principal.actor(Channel::Api, client), &username, &hash, role).await?;
    tracing::info!(username = %account.username, role = %account.role, created_by = %principal.account.username, "created an account");

    let location = format!("/api/accounts/{}", account.username);
    let mut response = (StatusCode::CREATED, Json(AccountSummary::from(account))).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::try_from(location).map_err(anyhow::Error::from)?);
    Ok(response)
}

/// Changes an account's role or disables or re-enables it. The change applies to the
/// account's next request, whatever tokens were issued to it.
#[utoipa::path(
    patch,
    path = "/api/accounts/{username}",
    operation_id = "update_account",
    tag = "accounts",
    params(("username" = String, Path, description = "The account's username")),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The account as changed", body = AccountSummary),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition`: the change would leave no enabled admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: unknown role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(username): Path<String>,
    payload: Result<Json<AccountChange>, JsonRejection>,
) -> ApiResult<Json<AccountSummary>> {
    let Json(change) = payload?;
    let username =
        Username::parse(&username).map_err(|_| ApiError::not_found(format!("no account named `{username}`")))?;
    let mut errors = Vec::new();
    let role = change.role.as_deref().and_then(|text| parse_role(text, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::validation_failed("the change is invalid", errors));
    }

    let actor = principal.actor(Channel::Api, client);
    let mut account = match app.auth.accounts.find(&username).await? {
        Some(account) => account,
        None => return Err(ApiError::not_found(format!("no account named `{username}`"))),
    };
    if let Some(role) = role {
        account = app.auth.accounts.set_role(&actor, &username, role).await?;
    }
    if let Some(disabled) = change.disabled {
        account = app.auth.accounts.set_disabled(&actor, &username, disabled).await?;
    }
    tracing::info!(username = %account.username, role = %account.role, disabled = account.is_disabled(), changed_by = %principal.account.username, "changed an account");
    Ok(Json(AccountSummary::from(account)))
}
