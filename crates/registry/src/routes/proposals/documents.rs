//! The request and response bodies of the proposal routes, and the document of a stored
//! proposal.

use ontology_core::bump::{self, FieldChange};
use ontology_core::{Bump, FieldError, KpiRecord};
use ontology_governance::proposals::{MergeInfo, PolicyStatus, Proposal, ProposalKind, ProposalState, Review};
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::current_policy;
use super::rebase::record_at;
use crate::app::AppState;
use crate::problem::{ApiError, ApiResult};
use crate::publisher::{Assessment, BumpReason, Change, ChangeError};

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
    pub(super) kpi_id: String,
    /// The KPI's current version, or null for a new KPI.
    pub(super) base_version: Option<String>,
    /// The full KPI record as the editor wants it. Its `version` is ignored (the merge sets
    /// it), and the read API's `released_in`, `links` and `open_disputes` are ignored.
    #[schema(value_type = Object)]
    pub(super) record: Value,
    /// One line, shown in the commit message and the version history.
    pub(super) title: String,
    /// The reason for the change.
    pub(super) rationale: String,
    /// A bump above the minimum the change requires, or null for the minimum.
    pub(super) bump: Option<String>,
    /// The dispute this proposal resolves, if any.
    pub(super) dispute: Option<String>,
    /// For a new KPI in a domain that does not exist yet.
    pub(super) domain: Option<DomainRequest>,
}

/// The author's update of a proposal: a new record and/or a new base version (rebase).
/// Absent members keep their stored value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalUpdate {
    /// The new record. Without it, a new `base_version` carries the fields this proposal
    /// changes over to that version (a rebase), and a field that both changed is a conflict.
    #[schema(value_type = Option<Object>)]
    pub(super) record: Option<Value>,
    pub(super) base_version: Option<String>,
    pub(super) title: Option<String>,
    pub(super) rationale: Option<String>,
    /// A requested bump, or null to go back to the minimum.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(super) bump: Option<Option<String>>,
    /// The new domain of a new KPI, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DomainRequest>)]
    pub(super) domain: Option<Option<DomainRequest>>,
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
    pub(super) verdict: String,
    #[serde(default)]
    pub(super) comment: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// `true` validates and returns the diff and the minimum bump, storing nothing.
    pub(super) dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only proposals in this state.
    pub(super) state: Option<String>,
    /// Only proposals of this KPI id.
    pub(super) kpi: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub(super) limit: Option<i64>,
    /// Only proposals with an id below this one: the `next` link of the previous page.
    pub(super) before: Option<i64>,
}

/// One field the proposal changes, with the bump its change needs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeDocument {
    pub(super) field: String,
    #[schema(value_type = Object)]
    pub(super) before: Value,
    #[schema(value_type = Object)]
    pub(super) after: Value,
    pub(super) bump: Bump,
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
    pub(super) id: i64,
    pub(super) kind: ProposalKind,
    pub(super) kpi_id: String,
    pub(super) base_version: Option<String>,
    pub(super) state: ProposalState,
    /// Increases with each update by the author; approvals count for the current one.
    pub(super) revision: i64,
    pub(super) author: String,
    pub(super) title: String,
    pub(super) rationale: String,
    /// The requested bump, null for the minimum.
    pub(super) bump: Option<Bump>,
    pub(super) dispute: Option<String>,
    pub(super) domain: Option<DomainRequest>,
    #[schema(value_type = Object)]
    pub(super) record: Value,
    /// The smallest bump the changes require, relative to the base version.
    pub(super) minimum_bump: Option<Bump>,
    pub(super) reasons: Vec<BumpReason>,
    pub(super) changes: Vec<ChangeDocument>,
    pub(super) policy: PolicyStatus,
    pub(super) reviews: Vec<Review>,
    pub(super) merged: Option<MergeInfo>,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) links: ProposalLinks,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalLinks {
    #[serde(rename = "self")]
    pub(super) this: String,
    pub(super) kpi: String,
    pub(super) reviews: String,
}

/// A page of proposals, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalList {
    pub(super) proposals: Vec<ProposalSummary>,
    /// The next page, when there may be one.
    pub(super) next: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalSummary {
    pub(super) id: i64,
    pub(super) kind: ProposalKind,
    pub(super) kpi_id: String,
    pub(super) base_version: Option<String>,
    pub(super) state: ProposalState,
    pub(super) revision: i64,
    pub(super) author: String,
    pub(super) title: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) url: String,
}

/// Findings of a dry run: the validation result, the diff and the minimum bump.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunDocument {
    pub(super) valid: bool,
    pub(super) errors: Vec<FieldError>,
    pub(super) minimum_bump: Option<Bump>,
    /// The bump a merge would apply now.
    pub(super) bump: Option<Bump>,
    pub(super) reasons: Vec<BumpReason>,
    pub(super) changes: Vec<ChangeDocument>,
    /// The KPI version and ontology version a merge would create now.
    pub(super) version: Option<String>,
    pub(super) ontology_version: Option<String>,
}

/// A review as returned when created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewDocument {
    #[serde(flatten)]
    pub(super) review: Review,
    /// The proposal's state after the verdict.
    pub(super) proposal_state: ProposalState,
    pub(super) policy: PolicyStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewList {
    pub(super) reviews: Vec<Review>,
}

/// The diff of a stored proposal relative to its base version, which never changes.
pub(super) async fn diff_against_base(
    app: &AppState,
    proposal: &Proposal,
    record: &KpiRecord,
) -> ApiResult<(Vec<FieldChange>, Option<Bump>, Vec<BumpReason>)> {
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

pub(super) async fn document(app: &AppState, proposal: Proposal, reviews: Vec<Review>) -> ApiResult<ProposalDocument> {
    let record_value: Value = serde_json::from_str(&proposal.record).map_err(anyhow::Error::from)?;
    let record: KpiRecord = serde_json::from_value(record_value.clone()).map_err(anyhow::Error::from)?;
    let (changes, minimum_bump, reasons) = diff_against_base(app, &proposal, &record).await?;
    let policy = current_policy(app, &proposal, &reviews).await?;
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

pub(super) fn dry_run_document(result: Result<Assessment, ChangeError>) -> ApiResult<DryRunDocument> {
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
        Err(error @ ChangeError::BaseOutdated { .. }) => {
            invalid_dry_run(vec![FieldError::new("base_version", error.to_string())])
        }
        Err(error @ ChangeError::Contended) => return Err(ApiError::unavailable(error.to_string(), 1)),
        Err(ChangeError::Internal(error)) => return Err(ApiError::Internal(error)),
    })
}

/// Adds to an invalid dry run what the record changes and the bump that needs, when the
/// record itself is valid. So an editor who requested too small a bump, or whose change
/// breaks a rule of the catalog, still gets the minimum.
pub(super) async fn add_changes(app: &AppState, change: &Change, document: &mut DryRunDocument) -> ApiResult<()> {
    let Some(base) = &change.base_version else { return Ok(()) };
    let mut draft = change.draft.clone();
    draft.version = base.clone();
    let Ok(record) = draft.validate() else { return Ok(()) };
    let Some(base_record) = record_at(app, &record.id, base).await? else { return Ok(()) };

    let changes = bump::diff(&base_record, &record);
    document.minimum_bump = bump::minimum_bump(&changes);
    document.reasons = changes.iter().map(|c| BumpReason { field: c.field.to_owned(), bump: c.bump }).collect();
    document.changes = changes.iter().map(ChangeDocument::from).collect();
    Ok(())
}

pub(super) fn invalid_dry_run(errors: Vec<FieldError>) -> DryRunDocument {
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
