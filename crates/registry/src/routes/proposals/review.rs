//! Reviews: a reviewer's verdict on the current revision of a proposal.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use ontology_core::FieldError;
use ontology_governance::Channel;
use ontology_governance::audit::{self, AuditEvent};
use ontology_governance::proposals::{self, ProposalStore, Review, Verdict};

use super::documents::{ReviewDocument, ReviewList, ReviewRequest};
use super::input::{COMMENT_MAX_CHARS, check_free_text};
use super::{actions, change_error, created, load};
use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};

/// Records a reviewer's verdict on the proposal's current revision.
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/reviews",
    operation_id = "review_proposal",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The review, with the proposal's state after it", body = ReviewDocument,
         headers(("Location" = String, description = "The review's path"))),
        (status = 403, description = "`self_approval_forbidden`: the author cannot approve", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition`: the proposal is merged, rejected or withdrawn", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: unknown verdict or overlong comment", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn review(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
    payload: Result<Json<ReviewRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = payload?;
    let mut errors = Vec::new();
    let verdict =
        request.verdict.parse::<Verdict>().map_err(|message| errors.push(FieldError::new("verdict", message))).ok();
    if request.comment.chars().count() > COMMENT_MAX_CHARS {
        errors.push(FieldError::new("comment", format!("give at most {COMMENT_MAX_CHARS} characters")));
    }
    check_free_text("comment", &request.comment, &mut errors);
    let Some(verdict) = verdict.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_failed("the review is invalid", errors));
    };
    let reviewer = principal.account.username.to_string();

    // A verdict waits for a merge in progress, so a merged proposal is never rejected.
    let _publishing = app.publisher.lock().await.map_err(change_error)?;
    let mut tx = app.db.begin_write().await?;
    let proposal =
        ProposalStore::get_in(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
    if verdict == Verdict::Approve && proposal.author == reviewer {
        return Err(ApiError::self_approval_forbidden(format!(
            "`{reviewer}` wrote proposal {id} and cannot approve it"
        )));
    }
    proposals::check_active(proposal.state, "be reviewed").map_err(|e| ApiError::invalid_transition(e.to_string()))?;

    let stored =
        ProposalStore::add_review(&mut tx, id, proposal.revision, &reviewer, verdict, request.comment.trim()).await?;
    let reviews = ProposalStore::reviews_in(&mut tx, id).await?;
    let policy =
        proposals::evaluate_policy(&proposal.author, proposal.revision, &reviews, app.config.required_approvals);
    let state = proposals::state_after_review(proposal.state, verdict, policy.met)
        .map_err(|e| ApiError::invalid_transition(e.to_string()))?;
    if state != proposal.state && !ProposalStore::set_state(&mut tx, id, proposal.state, state).await? {
        return Err(ApiError::invalid_transition(format!(
            "proposal {id} changed during the review; reload it and try again"
        )));
    }
    let id_text = id.to_string();
    audit::append(
        &mut tx,
        &principal.actor(Channel::Api, client),
        &AuditEvent {
            action: actions::PROPOSAL_REVIEWED,
            target_kind: "proposal",
            target_id: &id_text,
            before: Some(proposal.state.as_str()),
            after: Some(&format!("{} -> {}", verdict.as_str(), state)),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(proposal = id, reviewer = %reviewer, verdict = verdict.as_str(), state = %state, "proposal reviewed");

    let location = format!("/api/proposals/{id}/reviews/{}", stored.id);
    created(location, ReviewDocument { review: stored, proposal_state: state, policy })
}

/// Lists the reviews of a proposal, oldest first.
#[utoipa::path(
    get,
    path = "/api/proposals/{id}/reviews",
    operation_id = "list_reviews",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "Every review of every revision", body = ReviewList),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reviews(State(app): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<ReviewList>> {
    load(&app, id).await?;
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    Ok(Json(ReviewList { reviews }))
}

/// One review.
#[utoipa::path(
    get,
    path = "/api/proposals/{id}/reviews/{review_id}",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id"), ("review_id" = i64, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review", body = Review),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show_review(
    State(app): State<AppState>,
    Path((id, review_id)): Path<(i64, i64)>,
) -> ApiResult<Json<Review>> {
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    reviews
        .into_iter()
        .find(|review| review.id == review_id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no review {review_id} of proposal {id}")))
}
