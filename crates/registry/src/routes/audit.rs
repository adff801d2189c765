//! The audit log for admins, newest first, paged by entry id.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use ontology_governance::audit::AuditEntry;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries per page, 1..=200; 50 when absent.
    limit: Option<i64>,
    /// Only entries older than this entry id: the `before` of the previous page's `next`.
    before: Option<i64>,
}

/// One audited action.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryDocument {
    id: i64,
    /// RFC 3339 UTC.
    at: String,
    /// The signed-in username, or null for the registry itself, the command line or an
    /// anonymous client.
    actor: Option<String>,
    /// `api`, `web`, `cli` or `startup`.
    channel: String,
    /// The client's address for HTTP requests.
    client: Option<String>,
    /// Such as `account.role_changed` or `token.revoked`.
    action: String,
    target_kind: String,
    target_id: String,
    before: Option<String>,
    after: Option<String>,
}

impl From<AuditEntry> for AuditEntryDocument {
    fn from(entry: AuditEntry) -> AuditEntryDocument {
        AuditEntryDocument {
            id: entry.id,
            at: entry.at,
            actor: entry.actor,
            channel: entry.channel.as_str().to_owned(),
            client: entry.client,
            action: entry.action,
            target_kind: entry.target_kind,
            target_id: entry.target_id,
            before: entry.before,
            after: entry.after,
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntryDocument>,
    /// The path of the next (older) page, or null on the last page.
    next: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "accounts",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit entries", body = AuditPage),
        (status = 400, description = "`malformed_request`: `limit` or `before` out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit_log(
    State(app): State<AppState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::malformed_request(format!("`limit` must be between 1 and {MAX_LIMIT}; got {limit}")));
    }
    if query.before.is_some_and(|before| before < 1) {
        return Err(ApiError::malformed_request("`before` must be an entry id, 1 or more"));
    }

    // Reading one row more than the page shows whether an older page exists.
    let mut entries = app.auth.audit.page(query.before, limit + 1).await?;
    let next = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|last| format!("/api/audit?limit={limit}&before={}", last.id))
    } else {
        None
    };
    Ok(Json(AuditPage { entries: entries.into_iter().map(AuditEntryDocument::from).collect(), next }))
}
