//! Merging an approved proposal into the catalog.

use axum::Json;
use axum::extract::{Path, State};
use ontology_core::{DomainId, DomainInfo, Identity, KpiId};
use ontology_governance::Channel;
use ontology_governance::proposals::{self, ProposalStore};
use semver::Version;
use serde_json::Value;

use super::input::parse_record;
use super::{change_error, current_policy, load};
use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};
use crate::publisher::{Change, PublishMeta, Published};

/// Returns the identity a merge commit names as author: the proposer.
fn author_identity(username: &str) -> Identity {
    Identity { name: username.to_owned(), email: format!("{username}@users.ontology-registry.invalid") }
}

/// Merges an approved proposal: one commit on main with the new KPI version and ontology
/// version, tagged and indexed before the response.
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/merge",
    operation_id = "merge_proposal",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "Merged", body = Published),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not_approved`, `invalid_transition` or `base_version_outdated`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: the record breaks a rule of the catalog as it is now", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: another process moved the catalog during the merge; nothing was written, retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn merge(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
) -> ApiResult<Json<Published>> {
    let mut lock = app.publisher.lock().await.map_err(change_error)?;

    // Checked under the lock: a concurrent merge of this proposal has finished by now.
    let proposal = load(&app, id).await?;
    proposals::check_active(proposal.state, "be merged").map_err(|e| ApiError::invalid_transition(e.to_string()))?;
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    let policy = current_policy(&app, &proposal, &reviews).await?;
    if !policy.met {
        return Err(ApiError::not_approved(format!(
            "proposal {id} has {} of {} required approvals{}",
            policy.approvals.len(),
            policy.required_approvals,
            if policy.changes_requested.is_empty() {
                String::new()
            } else {
                format!(", and changes requested by {}", policy.changes_requested.join(", "))
            }
        )));
    }

    let kpi_id = KpiId::parse(&proposal.kpi_id).map_err(anyhow::Error::from)?;
    let mut errors = Vec::new();
    let record: Value = serde_json::from_str(&proposal.record).map_err(anyhow::Error::from)?;
    let draft = parse_record(Some(&kpi_id), &record, &mut errors)
        .ok_or_else(|| ApiError::validation_failed("the stored record is invalid", errors))?;
    let new_domain = proposal.new_domain.as_ref().map(|(name, description)| DomainInfo {
        id: DomainId::parse(kpi_id.domain_str()).expect("a KPI id's domain is valid"),
        name: name.clone(),
        description: description.clone(),
    });
    let change = Change {
        kind: proposal.kind,
        draft,
        base_version: proposal.base_version.as_deref().map(Version::parse).transpose().map_err(anyhow::Error::from)?,
        new_domain,
        requested_bump: proposal.bump,
        title: proposal.title.clone(),
    };
    let meta = PublishMeta {
        author: author_identity(&proposal.author),
        proposal: Some(id),
        reviewed_by: policy.approvals.clone(),
        dispute: proposal.dispute.clone(),
        back_attributed_to: proposal.back_attributed_to.clone(),
        actor: principal.actor(Channel::Api, client),
    };
    let (_, published) = app.publisher.publish(&mut lock, &change, &meta).await.map_err(change_error)?;
    drop(lock);

    let publisher = app.publisher.clone();
    tokio::spawn(async move {
        if let Err(error) = publisher.maintain().await {
            tracing::warn!(error = format!("{error:#}"), "failed to pack the git repository; merges go on unpacked");
        }
    });
    Ok(Json(published))
}
