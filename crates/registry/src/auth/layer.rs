//! The one place where protected routes are authorised.
//!
//! [`restricted`] wraps a group of routes with a minimum role. Its route layer
//! authenticates the bearer token and compares the account's current role before any
//! handler or body extractor runs. The same role is written into each operation of the
//! OpenAPI document (`security` and `x-minimum-role`), so the document and the check
//! cannot disagree. Handlers read the caller with the [`Principal`] extractor, which fails
//! closed with 401 on a route outside a restricted group.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ontology_governance::{Account, Actor, Channel, Role, TokenKind};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::problem::ApiError;

/// Name of the bearer scheme in the OpenAPI document.
pub const BEARER_SCHEME: &str = "bearer";
/// OpenAPI extension that records an operation's minimum role.
pub const MINIMUM_ROLE_EXTENSION: &str = "x-minimum-role";

/// The authenticated caller of a request, with the account as stored now.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    /// The id of the token the request carried.
    pub jti: String,
    pub kind: TokenKind,
}

impl Principal {
    /// Returns the actor that audit rows name for this account acting from `client`.
    pub fn actor(&self, channel: Channel, client: std::net::IpAddr) -> Actor {
        Actor { username: Some(self.account.username.to_string()), channel, client: Some(client.to_string()) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Principal, ApiError> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler reads the signed-in account on a route outside `restricted`");
            ApiError::unauthenticated("this operation requires a token")
        })
    }
}

/// Requires `minimum` (or a higher role) on every route of `router`, and records it in
/// the router's OpenAPI operations.
pub fn restricted(minimum: Role, state: &AppState, mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    document_minimum_role(router.get_openapi_mut(), minimum);
    router.route_layer(middleware::from_fn_with_state((state.clone(), minimum), require_role))
}

async fn require_role(State((app, minimum)): State<(AppState, Role)>, mut request: Request, next: Next) -> Response {
    let token = match bearer_token(request.headers()) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    let principal = match app.auth.authenticate(token).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    if principal.account.role < minimum {
        return ApiError::forbidden(format!(
            "this operation requires the role {minimum} or higher; the account `{}` has the role {}",
            principal.account.username, principal.account.role
        ))
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Reads `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "this operation requires a token: send `Authorization: Bearer <token>` with a token from POST /api/auth/token",
        ));
    };
    let value = value.to_str().map_err(|_| ApiError::unauthenticated("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthenticated("the Authorization header must be `Bearer <token>`"));
    }
    Ok(token.trim())
}

fn document_minimum_role(document: &mut utoipa::openapi::OpenApi, minimum: Role) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );

    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for operation in operations.into_iter().flatten() {
            require_in_operation(operation, minimum);
        }
    }
}

fn require_in_operation(operation: &mut Operation, minimum: Role) {
    operation.security = Some(vec![SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new())]);
    operation
        .extensions
        .get_or_insert_with(Default::default)
        .insert(MINIMUM_ROLE_EXTENSION.to_owned(), serde_json::Value::from(minimum.as_str()));

    let problem = || ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name("Problem")))).build();
    let responses = &mut operation.responses.responses;
    responses.entry("401".to_owned()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(
                    "`unauthenticated`: the token is missing, invalid, expired or revoked, or the account is disabled",
                )
                .content("application/problem+json", problem())
                .build(),
        )
    });
    responses.entry("403".to_owned()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(format!("`forbidden`: the account's role is below {minimum}"))
                .content("application/problem+json", problem())
                .build(),
        )
    });
}
