//! Change proposals: create (or dry-run), list, show, update, review, merge and withdraw.
//!
//! Each handler authorises (by the route's minimum role, plus authorship where the
//! workflow requires it), parses the body into validated values, acts in one transaction
//! with its audit row, and responds. Merges go through the publisher, which re-checks the
//! proposal against the catalog as it is at that moment.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ontology_core::bump::{self, FieldChange};
use ontology_core::store::check_title;
use ontology_core::{Bump, DomainId, DomainInfo, FieldError, Identity, KpiDraft, KpiId, KpiRecord};
use ontology_governance::audit::{self, AuditEvent};
use ontology_governance::proposals::{
    self, MergeInfo, NewProposal, PolicyStatus, Proposal, ProposalFilter, ProposalKind, ProposalState, ProposalStore,
    Review, Verdict,
};
use ontology_governance::{Actor, Channel};
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::client::ClientAddress;
use crate::catalog::record_from_body;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};
use crate::publisher::{Assessment, BumpReason, Change, ChangeError, PublishMeta, Published};

const RATIONALE_MAX_CHARS: usize = 20_000;
const COMMENT_MAX_CHARS: usize = 20_000;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub mod actions {
    pub const PROPOSAL_CREATED: &str = "proposal.created";
    pub const PROPOSAL_UPDATED: &str = "proposal.updated";
    pub const PROPOSAL_REVIEWED: &str = "proposal.reviewed";
    pub const PROPOSAL_WITHDRAWN: &str = "proposal.withdrawn";
}

/// The name and description of a domain that a new KPI opens.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    pub name: String,
    pub description: String,
}

/// A proposal to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalRequest {
    /// The KPI the proposal changes or creates.
    kpi_id: String,
    /// The KPI's current version, or null for a new KPI.
    base_version: Option<String>,
    /// The full KPI record as the editor wants it. Its `version` is ignored (the merge sets
    /// it), and the read API's `released_in`, `links` and `open_disputes` are ignored.
    #[schema(value_type = Object)]
    record: Value,
    /// One line, shown in the commit message and the version history.
    title: String,
    /// Why the change is right.
    rationale: String,
    /// A bump above the minimum the change requires, or null for the minimum.
    bump: Option<String>,
    /// The dispute this proposal resolves, if any.
    dispute: Option<String>,
    /// For a new KPI in a domain that does not exist yet.
    domain: Option<DomainRequest>,
}

/// The author's update of a proposal: a new record and/or a new base version (rebase).
/// Absent members keep their stored value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalUpdate {
    /// The new record. Without it, a new `base_version` carries the fields this proposal
    /// changes over to that version (a rebase), and a field that both changed is a conflict.
    #[schema(value_type = Option<Object>)]
    record: Option<Value>,
    base_version: Option<String>,
    title: Option<String>,
    rationale: Option<String>,
    /// A requested bump, or null to go back to the minimum.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    bump: Option<Option<String>>,
    /// The new domain of a new KPI, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DomainRequest>)]
    domain: Option<Option<DomainRequest>>,
}

/// Reads a member that is present, so `null` (`Some(None)`) differs from absent (`None`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A reviewer's verdict.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve`, `request_changes` or `reject`.
    verdict: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// `true` validates and returns the diff and the minimum bump, storing nothing.
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only proposals in this state.
    state: Option<String>,
    /// Only proposals of this KPI id.
    kpi: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// Only proposals with an id below this one: the `next` link of the previous page.
    before: Option<i64>,
}

/// One field the proposal changes, with the bump its change needs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeDocument {
    field: String,
    #[schema(value_type = Object)]
    before: Value,
    #[schema(value_type = Object)]
    after: Value,
    bump: Bump,
}

impl From<&FieldChange> for ChangeDocument {
    fn from(change: &FieldChange) -> Self {
        ChangeDocument {
            field: change.field.to_owned(),
            before: change.before.clone(),
            after: change.after.clone(),
            bump: change.bump,
        }
    }
}

/// A proposal with its diff, minimum bump, reviews and policy status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalDocument {
    id: i64,
    kind: ProposalKind,
    kpi_id: String,
    base_version: Option<String>,
    state: ProposalState,
    /// Increases with each update by the author; approvals count for the current one.
    revision: i64,
    author: String,
    title: String,
    rationale: String,
    /// The requested bump, null for the minimum.
    bump: Option<Bump>,
    dispute: Option<String>,
    domain: Option<DomainRequest>,
    #[schema(value_type = Object)]
    record: Value,
    /// The smallest bump the changes require, relative to the base version.
    minimum_bump: Option<Bump>,
    reasons: Vec<BumpReason>,
    changes: Vec<ChangeDocument>,
    policy: PolicyStatus,
    reviews: Vec<Review>,
    merged: Option<MergeInfo>,
    created_at: String,
    updated_at: String,
    links: ProposalLinks,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalLinks {
    #[serde(rename = "self")]
    this: String,
    kpi: String,
    reviews: String,
}

/// A page of proposals, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalList {
    proposals: Vec<ProposalSummary>,
    /// The next page, when there may be one.
    next: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalSummary {
    id: i64,
    kind: ProposalKind,
    kpi_id: String,
    base_version: Option<String>,
    state: ProposalState,
    revision: i64,
    author: String,
    title: String,
    created_at: String,
    updated_at: String,
    url: String,
}

/// Findings of a dry run: the validation result, the diff and the minimum bump.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunDocument {
    valid: bool,
    errors: Vec<FieldError>,
    minimum_bump: Option<Bump>,
    /// The bump a merge would apply now.
    bump: Option<Bump>,
    reasons: Vec<BumpReason>,
    changes: Vec<ChangeDocument>,
    /// The KPI version and ontology version a merge would create now.
    version: Option<String>,
    ontology_version: Option<String>,
}

/// A review as returned when created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewDocument {
    #[serde(flatten)]
    review: Review,
    /// The proposal's state after the verdict.
    proposal_state: ProposalState,
    policy: PolicyStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewList {
    reviews: Vec<Review>,
}

fn actor(principal: &Principal, client: std::net::IpAddr) -> Actor {
    Actor { username: Some(principal.account.username.to_string()), channel: Channel::Api, client: Some(client.to_string()) }
}

/// The identity a merge commit names as author: the proposer.
fn author_identity(username: &str) -> Identity {
    Identity { name: username.to_owned(), email: format!("{username}@users.ontology-registry.invalid") }
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
        ChangeError::Internal(error) => ApiError::Internal(error),
    }
}

fn parse_bump(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Bump> {
    value.and_then(|text| text.parse::<Bump>().map_err(|message| errors.push(FieldError::new("bump", message))).ok())
}

fn parse_version(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Version> {
    let text = value?;
    match Version::parse(text) {
        Ok(version) => Some(version),
        Err(error) => {
            errors.push(FieldError::new(field, format!("invalid version `{text}`: {error}")));
            None
        }
    }
}

fn check_commit_title(title: &str, errors: &mut Vec<FieldError>) {
    if let Err(reason) = check_title(title) {
        errors.push(FieldError::new("title", reason));
    }
}

fn check_rationale(rationale: &str, errors: &mut Vec<FieldError>) {
    let chars = rationale.trim().chars().count();
    if chars == 0 || chars > RATIONALE_MAX_CHARS {
        errors.push(FieldError::new("rationale", format!("give a rationale of 1 to {RATIONALE_MAX_CHARS} characters")));
    }
}

/// Reads the posted record into a draft, dropping what the read API adds and the version.
fn parse_record(kpi_id: Option<&KpiId>, record: &Value, errors: &mut Vec<FieldError>) -> Option<KpiDraft> {
    let mut value = record.clone();
    let Some(object) = value.as_object_mut() else {
        errors.push(FieldError::new("record", "the record must be a JSON object with the KPI's fields"));
        return None;
    };
    for ignored in ["released_in", "links", "open_disputes"] {
        object.remove(ignored);
    }
    // The merge sets the version; any placeholder satisfies the record's shape.
    object.insert("version".into(), Value::from("0.0.0"));
    let draft: KpiDraft = match serde_path_to_error::deserialize(value) {
        Ok(draft) => draft,
        Err(error) => {
            errors.push(shape_error(&error));
            return None;
        }
    };
    if let Some(kpi_id) = kpi_id {
        if &draft.id != kpi_id {
            errors.push(FieldError::new("record.id", format!("`{}` must equal kpi_id `{kpi_id}`", draft.id)));
        }
    }
    Some(draft)
}

/// Names the record member that failed to deserialise, such as `record.type` for an
/// unknown variant or `record.formula` for a missing field.
fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let message = error.inner().to_string();
    let mut field = String::from("record");
    let path = error.path().to_string();
    if path != "." {
        field.push('.');
        field.push_str(&path);
    }
    // serde reports a missing field at the object that lacks it.
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
        field.push('.');
        field.push_str(missing);
    }
    FieldError::new(field, message)
}

fn domain_info(kpi_id: &KpiId, domain: Option<&DomainRequest>, errors: &mut Vec<FieldError>) -> Option<DomainInfo> {
    let domain = domain?;
    let info = DomainInfo { id: kpi_id.domain(), name: domain.name.clone(), description: domain.description.clone() };
    match info.validate() {
        Ok(info) => Some(info),
        Err(found) => {
            errors.extend(found.into_iter().map(|e| FieldError::new(format!("domain.{}", e.field), e.message)));
            None
        }
    }
}

/// The record of a KPI version as the catalog contains it, `None` if there is no such version.
async fn record_at(app: &AppState, id: &KpiId, version: &Version) -> ApiResult<Option<KpiRecord>> {
    let found = {
        let history = app.catalog.read();
        history.kpis.get(id).and_then(|kpi| kpi.versions.iter().find(|v| &v.version == version).cloned())
    };
    let Some(found) = found else { return Ok(None) };
    Ok(Some(record_from_body(app.catalog.kpi_body(id, &found).await?.bytes())?))
}

/// The diff of a stored proposal relative to its base version, which never changes.
async fn diff_against_base(app: &AppState, proposal: &Proposal, record: &KpiRecord) -> ApiResult<(Vec<FieldChange>, Option<Bump>, Vec<BumpReason>)> {
    let Some(base) = &proposal.base_version else {
        return Ok((Vec::new(), Some(Bump::Minor), vec![BumpReason { field: "kpi_id".into(), bump: Bump::Minor }]));
    };
    let Ok(base) = Version::parse(base) else { return Ok((Vec::new(), None, Vec::new())) };
    let Some(base_record) = record_at(app, &record.id, &base).await? else {
        return Ok((Vec::new(), None, Vec::new()));
    };
    let changes = bump::diff(&base_record, record);
    let minimum = bump::minimum_bump(&changes);
    let reasons = changes.iter().map(|c| BumpReason { field: c.field.to_owned(), bump: c.bump }).collect();
    Ok((changes, minimum, reasons))
}

/// Carries the fields that a proposal changes relative to its old base over to a new base
/// version, keeping whatever else that version changed. A field that the new version also
/// changed, to another value, is a conflict the author resolves by sending the record.
async fn rebase(
    app: &AppState,
    proposed: &Value,
    old_base: &Version,
    new_base: &Version,
    errors: &mut Vec<FieldError>,
) -> ApiResult<Option<Value>> {
    let proposed: KpiRecord = serde_json::from_value(proposed.clone()).map_err(anyhow::Error::from)?;
    let id = proposed.id.clone();
    let Some(old_record) = record_at(app, &id, old_base).await? else {
        return Err(anyhow::anyhow!("proposal base {id} {old_base} is not in the catalog").into());
    };
    let Some(new_record) = record_at(app, &id, new_base).await? else {
        errors.push(FieldError::new("base_version", format!("`{id}` has no version {new_base}")));
        return Ok(None);
    };

    let upstream = bump::diff(&old_record, &new_record);
    let mut rebased = serde_json::to_value(&new_record).map_err(anyhow::Error::from)?;
    let mut conflicts = Vec::new();
    for change in bump::diff(&old_record, &proposed) {
        let clash = upstream.iter().find(|other| other.field == change.field && other.after != change.after);
        if clash.is_some() {
            conflicts.push(FieldError::new(
                format!("record.{}", change.field),
                format!(
                    "version {new_base} changed this field too: send the record with both changes resolved, or drop \
                     this proposal's change"
                ),
            ));
            continue;
        }
        rebased[change.field] = change.after;
    }
    if conflicts.is_empty() {
        Ok(Some(rebased))
    } else {
        errors.extend(conflicts);
        Ok(None)
    }
}

async fn document(app: &AppState, proposal: Proposal, reviews: Vec<Review>) -> ApiResult<ProposalDocument> {
    let record_value: Value = serde_json::from_str(&proposal.record).map_err(anyhow::Error::from)?;
    let record: KpiRecord = serde_json::from_value(record_value.clone()).map_err(anyhow::Error::from)?;
    let (changes, minimum_bump, reasons) = diff_against_base(app, &proposal, &record).await?;
    let policy = proposals::evaluate_policy(&proposal.author, proposal.revision, &reviews, app.config.required_approvals);
    let (domain, key) = (record.id.domain_str().to_owned(), record.id.key_str().to_owned());
    Ok(ProposalDocument {
        links: ProposalLinks {
            this: format!("/api/proposals/{}", proposal.id),
            kpi: format!("/api/ontology/{domain}/{key}.json"),
            reviews: format!("/api/proposals/{}/reviews", proposal.id),
        },
        id: proposal.id,
        kind: proposal.kind,
        kpi_id: proposal.kpi_id,
        base_version: proposal.base_version,
        state: proposal.state,
        revision: proposal.revision,
        author: proposal.author,
        title: proposal.title,
        rationale: proposal.rationale,
        bump: proposal.bump,
        dispute: proposal.dispute,
        domain: proposal.new_domain.map(|(name, description)| DomainRequest { name, description }),
        record: record_value,
        minimum_bump,
        reasons,
        changes: changes.iter().map(ChangeDocument::from).collect(),
        policy,
        reviews,
        merged: proposal.merged,
        created_at: proposal.created_at,
        updated_at: proposal.updated_at,
    })
}

async fn load(app: &AppState, id: i64) -> ApiResult<Proposal> {
    ProposalStore::new(app.db.clone())
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))
}

/// Stored form of a validated record: normalised, with the base version (or 1.0.0).
fn stored_record(assessment: &Assessment, base_version: Option<&Version>) -> ApiResult<String> {
    let record = assessment.record.with_version(base_version.cloned().unwrap_or(Version::new(1, 0, 0)));
    Ok(serde_json::to_string(&record).map_err(anyhow::Error::from)?)
}

fn dry_run_document(result: Result<Assessment, ChangeError>) -> ApiResult<DryRunDocument> {
    Ok(match result {
        Ok(assessment) => DryRunDocument {
            valid: true,
            errors: Vec::new(),
            minimum_bump: Some(assessment.minimum_bump),
            bump: Some(assessment.bump),
            reasons: assessment.reasons,
            changes: assessment.changes.iter().map(ChangeDocument::from).collect(),
            version: Some(assessment.record.version.to_string()),
            ontology_version: Some(assessment.ontology_version.to_string()),
        },
        Err(ChangeError::Invalid(errors)) => invalid_dry_run(errors),
        Err(error @ ChangeError::BaseOutdated { .. }) => invalid_dry_run(vec![FieldError::new("base_version", error.to_string())]),
        Err(ChangeError::Internal(error)) => return Err(ApiError::Internal(error)),
    })
}

fn invalid_dry_run(errors: Vec<FieldError>) -> DryRunDocument {
    DryRunDocument {
        valid: false,
        errors,
        minimum_bump: None,
        bump: None,
        reasons: Vec::new(),
        changes: Vec::new(),
        version: None,
        ontology_version: None,
    }
}

/// Creates a proposal, or with `?dry_run=true` returns what it would do and stores nothing.
#[utoipa::path(
    post,
    path = "/api/proposals",
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
        return Ok(Json(dry_run_document(assessed)?).into_response());
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
    let actor = actor(&principal, client);
    let mut tx = app.db.begin_write().await?;
    let stored = ProposalStore::create(&mut tx, &proposal).await?;
    let id = stored.id.to_string();
    audit::append(
        &mut tx,
        &actor,
        &AuditEvent { action: actions::PROPOSAL_CREATED, target_kind: "proposal", target_id: &id, before: None, after: Some(&proposal.kpi_id) },
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
    tag = "proposals",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of proposals", body = ProposalList),
        (status = 400, description = "`malformed_request`: an unknown state or a bad page size", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(State(app): State<AppState>, Query(query): Query<ListQuery>) -> ApiResult<Json<ProposalList>> {
    let state = query.state.as_deref().map(str::parse::<ProposalState>).transpose().map_err(ApiError::malformed_request)?;
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
    // Held until the update is stored, so that no merge of this proposal runs meanwhile:
    // a merge would otherwise commit the old revision while this answers with the new one.
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
        return Err(ApiError::invalid_transition(format!("proposal {id} changed while it was being updated; reload it and try again")));
    }
    let revision = (proposal.revision + 1).to_string();
    let id_text = id.to_string();
    audit::append(
        &mut tx,
        &actor(&principal, client),
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

/// Records a reviewer's verdict on the proposal's current revision.
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/reviews",
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
    let verdict = request
        .verdict
        .parse::<Verdict>()
        .map_err(|message| errors.push(FieldError::new("verdict", message)))
        .ok();
    if request.comment.chars().count() > COMMENT_MAX_CHARS {
        errors.push(FieldError::new("comment", format!("give at most {COMMENT_MAX_CHARS} characters")));
    }
    let Some(verdict) = verdict.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_failed("the review is invalid", errors));
    };
    let reviewer = principal.account.username.to_string();

    // A verdict waits for a merge in progress, so a merged proposal is never rejected.
    let _publishing = app.publisher.lock().await.map_err(change_error)?;
    let mut tx = app.db.begin_write().await?;
    let proposal = ProposalStore::get_in(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
    if verdict == Verdict::Approve && proposal.author == reviewer {
        return Err(ApiError::self_approval_forbidden(format!("`{reviewer}` wrote proposal {id} and cannot approve it")));
    }
    proposals::check_active(proposal.state, "be reviewed").map_err(|e| ApiError::invalid_transition(e.to_string()))?;

    let stored = ProposalStore::add_review(&mut tx, id, proposal.revision, &reviewer, verdict, request.comment.trim()).await?;
    let reviews = ProposalStore::reviews_in(&mut tx, id).await?;
    let policy = proposals::evaluate_policy(&proposal.author, proposal.revision, &reviews, app.config.required_approvals);
    let state = proposals::state_after_review(proposal.state, verdict, policy.met)
        .map_err(|e| ApiError::invalid_transition(e.to_string()))?;
    if state != proposal.state && !ProposalStore::set_state(&mut tx, id, proposal.state, state).await? {
        return Err(ApiError::invalid_transition(format!("proposal {id} changed during the review; reload it and try again")));
    }
    let id_text = id.to_string();
    audit::append(
        &mut tx,
        &actor(&principal, client),
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
pub async fn show_review(State(app): State<AppState>, Path((id, review_id)): Path<(i64, i64)>) -> ApiResult<Json<Review>> {
    let reviews = ProposalStore::new(app.db.clone()).reviews(id).await?;
    reviews
        .into_iter()
        .find(|review| review.id == review_id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no review {review_id} of proposal {id}")))
}

/// Merges an approved proposal: one commit on main with the new KPI version and ontology
/// version, tagged, indexed, and answered.
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/merge",
    tag = "proposals",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "Merged", body = Published),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not_approved`, `invalid_transition` or `base_version_outdated`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: the record breaks a rule of the catalog as it is now", body = Problem, content_type = "application/problem+json"),
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
    let mut policy = proposals::evaluate_policy(&proposal.author, proposal.revision, &reviews, app.config.required_approvals);
    // An approval counts only while its reviewer may still review: a demotion or a
    // disabled account withdraws it, as it would any other permission.
    let mut current = Vec::with_capacity(policy.approvals.len());
    for reviewer in &policy.approvals {
        let Ok(username) = ontology_governance::Username::parse(reviewer) else { continue };
        let account = app.auth.accounts.find(&username).await?;
        if account.is_some_and(|a| !a.is_disabled() && a.role >= ontology_governance::Role::Reviewer) {
            current.push(reviewer.clone());
        }
    }
    if current.len() < policy.approvals.len() {
        policy.approvals = current;
        policy.met = policy.approvals.len() as u32 >= policy.required_approvals && policy.changes_requested.is_empty();
    }
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
    let draft = parse_record(Some(&kpi_id), &record, &mut errors).ok_or_else(|| ApiError::validation_failed("the stored record is invalid", errors))?;
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
        actor: actor(&principal, client),
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

/// Withdraws a proposal (author only).
#[utoipa::path(
    post,
    path = "/api/proposals/{id}/withdraw",
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
    let proposal = ProposalStore::get_in(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
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
        &actor(&principal, client),
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
