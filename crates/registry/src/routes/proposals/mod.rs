//! Change proposals: create (or dry-run), list, show, update, review, merge and withdraw.
//!
//! Each handler authorises (by the route's minimum role, plus authorship where the
//! workflow requires it), parses the body into validated values, acts in one transaction
//! with its audit row, and responds. Merges go through the publisher, which re-checks the
//! proposal against the catalog as it is at that moment.

mod documents;
mod input;
pub mod merge;
mod rebase;
pub mod review;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ontology_core::{FieldError, KpiId};
use ontology_governance::audit::{self, AuditEvent};
use ontology_governance::proposals::{
    self, NewProposal, PolicyStatus, Proposal, ProposalFilter, ProposalKind, ProposalState, ProposalStore, Review,
};
use ontology_governance::{Channel, Role, Username};
use semver::Version;
use serde::Serialize;
use serde_json::Value;

use documents::add_changes;
pub use documents::*;
use input::{check_commit_title, check_rationale, domain_info, parse_bump, parse_record, parse_version, stored_record};
use rebase::rebase;

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};
use crate::publisher::{Change, ChangeError};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub mod actions {
    pub const PROPOSAL_CREATED: &str = "proposal.created";
    pub const PROPOSAL_UPDATED: &str = "proposal.updated";
    pub const PROPOSAL_REVIEWED: &str = "proposal.reviewed";
    pub const PROPOSAL_WITHDRAWN: &str = "proposal.withdrawn";
}

fn created(location: String, body: impl Serialize) -> ApiResult<Response> {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::try_from(location).map_err(anyhow::Error::from)?);
    Ok(response)
}

fn change_error(error: ChangeError) -> ApiError {
    match error {
        ChangeError::Invalid(errors) => ApiError::validation_failed("the proposal breaks rules of the catalog", errors),
        ChangeError::BaseOutdated { .. } => ApiError::base_version_outdated(format!(
            "{error}; update the proposal with base_version set to the current version"
        )),
        error @ ChangeError::Contended => ApiError::unavailable(error.to_string(), 1),
        ChangeError::Internal(error) => ApiError::Internal(error),
    }
}

/// Evaluates the review policy with only the approvals whose reviewers may still review: a
/// demotion or a disabled account withdraws an approval, as it would any other permission.
async fn current_policy(app: &AppState, proposal: &Proposal, reviews: &[Review]) -> ApiResult<PolicyStatus> {
    let mut policy =
        proposals::evaluate_policy(&proposal.author, proposal.revision, reviews, app.config.required_approvals);
    let mut still_valid = Vec::with_capacity(policy.approvals.len());
    for reviewer in &policy.approvals {
        let Ok(username) = Username::parse(reviewer) else { continue };
        let account = app.auth.accounts.find(&username).await?;
        if account.is_some_and(|a| !a.is_disabled() && a.role >= Role::Reviewer) {
            still_valid.push(reviewer.clone());
        }
    }
    if still_valid.len() < policy.approvals.len() {
        policy.approvals = still_valid;
        policy.met = policy.approvals.len() as u32 >= policy.required_approvals && policy.changes_requested.is_empty();
    }
    Ok(policy)
}

async fn load(app: &AppState, id: i64) -> ApiResult<Proposal> {
    ProposalStore::new(app.db.clone()).get(id).await?.ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))
}

/// Creates a proposal, or with `?dry_run=true` returns what it would do and stores nothing.
#[utoipa::path(
    post,
    path = "/api/proposals",
    operation_id = "create_proposal",
    tag = "proposals",
    params(CreateQuery),
    request_body = ProposalRequest,
    responses(
        (status = 201, description = "Created, with its diff and minimum bump", body = ProposalDocument,
         headers(("Location" = String, description = "The proposal's path"))),
        (status = 200, description = "Dry run: the validation result, diff and minimum bump", body = DryRunDocument),
        (status = 400, description = "`malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`base_version_outdated`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, with `errors`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Query(query): Query<CreateQuery>,
    payload: Result<Json<ProposalRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = payload?;
    let dry_run = query.dry_run.unwrap_or(false);

    let mut errors = Vec::new();
    let kpi_id = KpiId::parse(&request.kpi_id).map_err(|e| errors.push(FieldError::new("kpi_id", e.to_string()))).ok();
    let base_version = parse_version("base_version", request.base_version.as_deref(), &mut errors);
    let draft = parse_record(kpi_id.as_ref(), &request.record, &mut errors);
    let requested_bump = parse_bump(request.bump.as_deref(), &mut errors);
    check_commit_title(&request.title, &mut errors);
    check_rationale(&request.rationale, &mut errors);
    if let Some(dispute) = &request.dispute {
        // NOTE: disputes are not built yet, so no dispute id can be valid.
        errors.push(FieldError::new("dispute", format!("no dispute `{dispute}`")));
    }
    let new_domain = kpi_id.as_ref().and_then(|id| domain_info(id, request.domain.as_ref(), &mut errors));
    if request.domain.is_some() && request.base_version.is_some() {
        errors.push(FieldError::new("domain", "only a new KPI (base_version null) can open a domain"));
    }
    let (Some(kpi_id), Some(draft)) = (kpi_id, draft.filter(|_| errors.is_empty())) else {
        return invalid_request(dry_run, errors);
    };

    let kind = if base_version.is_none() { ProposalKind::Creation } else { ProposalKind::Change };
    let change = Change {
        kind,
        draft,
        base_version: base_version.clone(),
        new_domain: new_domain.clone(),
        requested_bump,
        title: request.title.clone(),
    };
    let assessed = app.publisher.assess(&change).await;
    if dry_run {
        let mut document = dry_run_document(assessed)?;
        if !document.valid {
            add_changes(&app, &change, &mut document).await?;
        }
        return Ok(Json(document).into_response());
    }
    let assessment = assessed.map_err(change_error)?;

    let proposal = NewProposal {
        kind,
        kpi_id: kpi_id.to_string(),
        base_version: base_version.as_ref().map(ToString::to_string),
        record: stored_record(&assessment, base_version.as_ref())?,
        new_domain: new_domain.map(|d| (d.name, d.description)),
        title: change.title.trim().to_owned(),
        rationale: request.rationale.trim().to_owned(),
        bump: requested_bump,
        dispute: None,
        back_attributed_to: None,
        author: principal.account.username.to_string(),
    };
    let actor = principal.actor(Channel::Api, client);
    let mut tx = app.db.begin_write().await?;
    let stored = ProposalStore::create(&mut tx, &proposal).await?;
    let id = stored.id.to_string();
    audit::append(
        &mut tx,
        &actor,
        &AuditEvent {
            action: actions::PROPOSAL_CREATED,
            target_kind: "proposal",
            target_id: &id,
            before: None,
            after: Some(&proposal.kpi_id),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(proposal = stored.id, kpi = %kpi_id, author = %principal.account.username, "proposal created");

    let location = format!("/api/proposals/{}", stored.id);
    created(location, document(&app, stored, Vec::new()).await?)
}

/// Returns a dry run's findings with 200, or fails a real request with 422.
fn invalid_request(dry_run: bool, errors: Vec<FieldError>) -> ApiResult<Response> {
    if dry_run {
        Ok(Json(invalid_dry_run(errors)).into_response())
    } else {
        Err(ApiError::validation_failed("the proposal is invalid", errors))
    }
}

/// Lists proposals, newest first.
#[utoipa::path(
    get,
    path = "/api/proposals",
    operation_id = "list_proposals",
    tag = "proposals",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of proposals", body = ProposalList),
        (status = 400, description = "`malformed_request`: an unknown state or a bad page size", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(State(app): State<AppState>, Query(query): Query<ListQuery>) -> ApiResult<Json<ProposalList>> {
    let state =
        query.state.as_deref().map(str::parse::<ProposalState>).transpose().map_err(ApiError::malformed_request)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::malformed_request(format!("`limit` must be 1 to {MAX_PAGE}")));
    }
    let filter = ProposalFilter { state, kpi_id: query.kpi.clone(), limit, before: query.before };
    let found = ProposalStore::new(app.db.clone()).list(&filter).await?;

    let next = (found.len() as i64 == limit).then(|| {
        let mut link = format!("/api/proposals?limit={limit}&before={}", found.last().map_or(0, |p| p.id));
        if let Some(state) = state {
            link.push_str(&format!("&state={state}"));
        }
        if let Some(kpi) = KpiId::parse(query.kpi.as_deref().unwrap_or_default()).ok() {
            link.push_str(&format!("&kpi={kpi}"));
        }
        link
    });
    let proposals = found
        .into_iter()
        .map(|p| ProposalSummary {
            url: format!("/api/proposals/{}", p.id),
            id: p.id,
            kind: p.kind,
            kpi_id: p.kpi_id,
            base_version: p.base_version,
            state: p.state,
            revision: p.revision,
            author: p.author,
            title: p.title,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
        .collect();
    Ok(Json(ProposalList { proposals, next }))
}

/// Shows a proposal with its field diff, minimum bump, reviews and policy status.
#[utoipa::path(
    get,
    path = "/api/proposals/{id}",
    operation_id = "show_proposal",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The proposal", body = ProposalDocument),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(State(app): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<ProposalDocument>> {
    let proposal = load(&app, id).await?;
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    Ok(Json(document(&app, proposal, reviews).await?))
}

/// Updates a proposal (author only): a new record, a new base version, or both. Approvals
/// of earlier revisions stop counting.
#[utoipa::path(
    put,
    path = "/api/proposals/{id}",
    operation_id = "update_proposal",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    request_body = ProposalUpdate,
    responses(
        (status = 200, description = "The updated proposal, back in `open`", body = ProposalDocument),
        (status = 403, description = "`forbidden`: only the author updates a proposal", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition` or `base_version_outdated`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
    payload: Result<Json<ProposalUpdate>, JsonRejection>,
) -> ApiResult<Json<ProposalDocument>> {
    let Json(request) = payload?;
    // Held until the update is stored, so that no merge of this proposal runs meanwhile.
    // A merge would otherwise commit the old revision while this responds with the new one.
    let _publishing = app.publisher.lock().await.map_err(change_error)?;
    let proposal = load(&app, id).await?;
    if proposal.author != principal.account.username.as_str() {
        return Err(ApiError::forbidden(format!("only the author `{}` updates proposal {id}", proposal.author)));
    }
    proposals::check_active(proposal.state, "be updated").map_err(|e| ApiError::invalid_transition(e.to_string()))?;

    let mut errors = Vec::new();
    let kpi_id = KpiId::parse(&proposal.kpi_id).map_err(anyhow::Error::from)?;
    let old_base = proposal.base_version.as_deref().map(Version::parse).transpose().map_err(anyhow::Error::from)?;
    let base_version = match &request.base_version {
        Some(_) if proposal.kind == ProposalKind::Creation => {
            errors.push(FieldError::new("base_version", "a proposal that creates a KPI has no base version"));
            None
        }
        Some(text) => parse_version("base_version", Some(text), &mut errors),
        None => old_base.clone(),
    };
    let proposed: Value = serde_json::from_str(&proposal.record).map_err(anyhow::Error::from)?;
    let record = match (&request.record, &old_base, &base_version) {
        (Some(record), _, _) => Some(record.clone()),
        (None, Some(old), Some(new)) if old != new => rebase(&app, &proposed, old, new, &mut errors).await?,
        (None, _, _) => Some(proposed),
    };
    let draft = record.and_then(|record| parse_record(Some(&kpi_id), &record, &mut errors));
    let requested_bump = match &request.bump {
        Some(text) => parse_bump(text.as_deref(), &mut errors),
        None => proposal.bump,
    };
    let title = request.title.clone().unwrap_or(proposal.title.clone());
    check_commit_title(&title, &mut errors);
    let rationale = request.rationale.clone().unwrap_or(proposal.rationale.clone());
    check_rationale(&rationale, &mut errors);
    let domain_request = match &request.domain {
        Some(domain) => domain.clone(),
        None => proposal.new_domain.clone().map(|(name, description)| DomainRequest { name, description }),
    };
    if domain_request.is_some() && proposal.kind != ProposalKind::Creation {
        errors.push(FieldError::new("domain", "only a new KPI (base_version null) can open a domain"));
    }
    let new_domain = domain_info(&kpi_id, domain_request.as_ref(), &mut errors);
    let Some(draft) = draft.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_failed("the update is invalid", errors));
    };

    let change = Change {
        kind: proposal.kind,
        draft,
        base_version: base_version.clone(),
        new_domain: new_domain.clone(),
        requested_bump,
        title: title.clone(),
    };
    let assessment = app.publisher.assess(&change).await.map_err(change_error)?;
    let stored = stored_record(&assessment, base_version.as_ref())?;

    let mut tx = app.db.begin_write().await?;
    let base_text = base_version.as_ref().map(ToString::to_string);
    let domain_pair = new_domain.map(|d| (d.name, d.description));
    let revised = ProposalStore::revise(
        &mut tx,
        id,
        proposal.revision,
        &stored,
        base_text.as_deref(),
        domain_pair.as_ref(),
        title.trim(),
        rationale.trim(),
        requested_bump,
    )
    .await?;
    if !revised {
        return Err(ApiError::invalid_transition(format!(
            "proposal {id} changed while it was being updated; reload it and try again"
        )));
    }
    let revision = (proposal.revision + 1).to_string();
    let id_text = id.to_string();
    audit::append(
        &mut tx,
        &principal.actor(Channel::Api, client),
        &AuditEvent {
            action: actions::PROPOSAL_UPDATED,
            target_kind: "proposal",
            target_id: &id_text,
            before: proposal.base_version.as_deref(),
            after: Some(&revision),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(proposal = id, revision = proposal.revision + 1, "proposal updated");

    let updated = load(&app, id).await?;
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    Ok(Json(document(&app, updated, reviews).await?))
}

/// Withdraws a proposal (author only).
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/withdraw",
    operation_id = "withdraw_proposal",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The withdrawn proposal", body = ProposalDocument),
        (status = 403, description = "`forbidden`: only the author withdraws a proposal", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn withdraw(
    State(app): State<AppState>,
    principal: Principal,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProposalDocument>> {
    // A withdrawal waits for a merge in progress, so a merged proposal is never withdrawn.
    let _publishing = app.publisher.lock().await.map_err(change_error)?;
    let mut tx = app.db.begin_write().await?;
    let proposal =
        ProposalStore::get_in(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
    if proposal.author != principal.account.username.as_str() {
        return Err(ApiError::forbidden(format!("only the author `{}` withdraws proposal {id}", proposal.author)));
    }
    proposals::check_active(proposal.state, "be withdrawn").map_err(|e| ApiError::invalid_transition(e.to_string()))?;
    if !ProposalStore::set_state(&mut tx, id, proposal.state, ProposalState::Withdrawn).await? {
        return Err(ApiError::invalid_transition(format!("proposal {id} changed meanwhile; reload it and try again")));
    }
    let id_text = id.to_string();
    audit::append(
        &mut tx,
        &principal.actor(Channel::Api, client),
        &AuditEvent {
            action: actions::PROPOSAL_WITHDRAWN,
            target_kind: "proposal",
            target_id: &id_text,
            before: Some(proposal.state.as_str()),
            after: Some(ProposalState::Withdrawn.as_str()),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(proposal = id, "proposal withdrawn");

    let withdrawn = load(&app, id).await?;
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    Ok(Json(document(&app, withdrawn, reviews).await?))
}
