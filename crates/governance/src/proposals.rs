//! Change proposals, reviews and the merge policy.
//!
//! States: `open` → `approved` → `merged`; `open` or `approved` → `rejected` or
//! `withdrawn`. A proposal is approved when its current revision has the required number
//! of approvals from distinct reviewers other than its author, each counted once, and no
//! reviewer's latest verdict on that revision asks for changes. A new revision (the
//! author's update) starts the count again.
//!
//! The rules are pure functions; [`ProposalStore`] persists proposals and reviews. The
//! merge itself (the git commit) belongs to the registry's publisher.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ontology_core::Bump;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Database, parse_column};
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    Open,
    Approved,
    Merged,
    Rejected,
    Withdrawn,
}

impl ProposalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Open => "open",
            ProposalState::Approved => "approved",
            ProposalState::Merged => "merged",
            ProposalState::Rejected => "rejected",
            ProposalState::Withdrawn => "withdrawn",
        }
    }

    /// Whether the proposal can still change: reviewed, updated, withdrawn or merged.
    pub fn is_active(self) -> bool {
        matches!(self, ProposalState::Open | ProposalState::Approved)
    }
}

impl fmt::Display for ProposalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProposalState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "open" => Ok(ProposalState::Open),
            "approved" => Ok(ProposalState::Approved),
            "merged" => Ok(ProposalState::Merged),
            "rejected" => Ok(ProposalState::Rejected),
            "withdrawn" => Ok(ProposalState::Withdrawn),
            other => Err(format!("invalid state `{other}`: use open, approved, merged, rejected or withdrawn")),
        }
    }
}

/// What a proposal does to the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// A new version of an existing KPI, deprecation included.
    Change,
    /// A new KPI, starting at 1.0.0.
    Creation,
    /// Back-attribution of an editorial KPI to a third-party standard.
    Promotion,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Change => "change",
            ProposalKind::Creation => "creation",
            ProposalKind::Promotion => "promotion",
        }
    }
}

impl FromStr for ProposalKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "change" => Ok(ProposalKind::Change),
            "creation" => Ok(ProposalKind::Creation),
            "promotion" => Ok(ProposalKind::Promotion),
            other => Err(format!("invalid proposal kind `{other}`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    RequestChanges,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::RequestChanges => "request_changes",
            Verdict::Reject => "reject",
        }
    }
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "approve" => Ok(Verdict::Approve),
            "request_changes" => Ok(Verdict::RequestChanges),
            "reject" => Ok(Verdict::Reject),
            other => Err(format!("invalid verdict `{other}`: use approve, request_changes or reject")),
        }
    }
}

/// Where a merged proposal landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeInfo {
    pub version: String,
    pub ontology_version: String,
    pub commit: String,
    pub merged_at: String,
    pub merged_by: Option<String>,
}

/// A stored proposal. `record` is the proposed KPI record as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: i64,
    pub kind: ProposalKind,
    pub kpi_id: String,
    pub base_version: Option<String>,
    pub record: String,
    pub new_domain: Option<(String, String)>,
    pub title: String,
    pub rationale: String,
    pub bump: Option<Bump>,
    pub dispute: Option<String>,
    pub back_attributed_to: Option<String>,
    pub state: ProposalState,
    pub revision: i64,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
    pub merged: Option<MergeInfo>,
}

/// A reviewer's verdict on one revision of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Review {
    pub id: i64,
    pub revision: i64,
    pub reviewer: String,
    pub verdict: Verdict,
    pub comment: String,
    pub created_at: String,
}

/// The approval policy evaluated on a proposal's current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyStatus {
    pub required_approvals: u32,
    /// Reviewers whose latest verdict on the current revision approves, in review order.
    pub approvals: Vec<String>,
    /// Reviewers whose latest verdict on the current revision asks for changes.
    pub changes_requested: Vec<String>,
    pub met: bool,
}

/// Evaluates the approval policy. The author's own verdicts never count.
pub fn evaluate_policy(author: &str, revision: i64, reviews: &[Review], required: u32) -> PolicyStatus {
    // The latest verdict of each reviewer on the current revision, in order of first review.
    let mut latest: BTreeMap<&str, (usize, Verdict)> = BTreeMap::new();
    for (order, review) in reviews.iter().enumerate() {
        if review.revision != revision || review.reviewer == author {
            continue;
        }
        let first = latest.get(review.reviewer.as_str()).map_or(order, |(first, _)| *first);
        latest.insert(&review.reviewer, (first, review.verdict));
    }
    let mut ordered: Vec<(usize, &str, Verdict)> =
        latest.into_iter().map(|(reviewer, (order, verdict))| (order, reviewer, verdict)).collect();
    ordered.sort_by_key(|(order, _, _)| *order);

    let approvals: Vec<String> =
        ordered.iter().filter(|(_, _, v)| *v == Verdict::Approve).map(|(_, r, _)| (*r).to_owned()).collect();
    let changes_requested: Vec<String> =
        ordered.iter().filter(|(_, _, v)| *v == Verdict::RequestChanges).map(|(_, r, _)| (*r).to_owned()).collect();
    let met = approvals.len() as u32 >= required && changes_requested.is_empty();
    PolicyStatus { required_approvals: required, approvals, changes_requested, met }
}

/// A state change the workflow does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a proposal in state `{from}` cannot {action}")]
pub struct TransitionError {
    pub from: ProposalState,
    pub action: &'static str,
}

/// The state after a verdict, given whether the policy is met once it is counted.
pub fn state_after_review(
    state: ProposalState,
    verdict: Verdict,
    policy_met: bool,
) -> Result<ProposalState, TransitionError> {
    if !state.is_active() {
        return Err(TransitionError { from: state, action: "be reviewed" });
    }
    Ok(match verdict {
        Verdict::Reject => ProposalState::Rejected,
        Verdict::Approve | Verdict::RequestChanges if policy_met => ProposalState::Approved,
        Verdict::Approve | Verdict::RequestChanges => ProposalState::Open,
    })
}

/// Checks that a proposal can still be updated, withdrawn or merged.
pub fn check_active(state: ProposalState, action: &'static str) -> Result<(), TransitionError> {
    if state.is_active() { Ok(()) } else { Err(TransitionError { from: state, action }) }
}

/// The fields of a proposal to create.
#[derive(Debug, Clone)]
pub struct NewProposal {
    pub kind: ProposalKind,
    pub kpi_id: String,
    pub base_version: Option<String>,
    pub record: String,
    pub new_domain: Option<(String, String)>,
    pub title: String,
    pub rationale: String,
    pub bump: Option<Bump>,
    pub dispute: Option<String>,
    pub back_attributed_to: Option<String>,
    pub author: String,
}

/// Filters of the proposal list.
#[derive(Debug, Clone, Default)]
pub struct ProposalFilter {
    pub state: Option<ProposalState>,
    pub kpi_id: Option<String>,
    pub limit: i64,
    /// Only proposals with an id below this one, for paging newest first.
    pub before: Option<i64>,
}

const COLUMNS: &str = "id, kind, kpi_id, base_version, record, domain_name, domain_description, title, rationale, \
    bump, dispute, back_attributed_to, state, revision, author, created_at, updated_at, merged_version, \
    merged_ontology_version, merged_commit, merged_at, merged_by";

fn proposal_from_row(row: &AnyRow) -> Result<Proposal, sqlx::Error> {
    let text = |name: &str| row.try_get::<String, _>(name);
    let optional = |name: &str| row.try_get::<Option<String>, _>(name);
    let domain = match (optional("domain_name")?, optional("domain_description")?) {
        (Some(name), Some(description)) => Some((name, description)),
        _ => None,
    };
    let merged = match (optional("merged_version")?, optional("merged_ontology_version")?, optional("merged_commit")?) {
        (Some(version), Some(ontology_version), Some(commit)) => Some(MergeInfo {
            version,
            ontology_version,
            commit,
            merged_at: optional("merged_at")?.unwrap_or_default(),
            merged_by: optional("merged_by")?,
        }),
        _ => None,
    };
    Ok(Proposal {
        id: row.try_get("id")?,
        kind: parse_column("kind", &text("kind")?)?,
        kpi_id: text("kpi_id")?,
        base_version: optional("base_version")?,
        record: text("record")?,
        new_domain: domain,
        title: text("title")?,
        rationale: text("rationale")?,
        bump: optional("bump")?.map(|b| parse_column("bump", &b)).transpose()?,
        dispute: optional("dispute")?,
        back_attributed_to: optional("back_attributed_to")?,
        state: parse_column("state", &text("state")?)?,
        revision: row.try_get("revision")?,
        author: text("author")?,
        created_at: text("created_at")?,
        updated_at: text("updated_at")?,
        merged,
    })
}

/// Persistence of proposals and reviews. Writes take a connection so that callers can put
/// them in one transaction with their audit row.
#[derive(Debug, Clone)]
pub struct ProposalStore {
    db: Database,
}

impl ProposalStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn create(connection: &mut AnyConnection, proposal: &NewProposal) -> Result<Proposal, sqlx::Error> {
        let now = timestamp::now();
        let (domain_name, domain_description) = match &proposal.new_domain {
            Some((name, description)) => (Some(name.as_str()), Some(description.as_str())),
            None => (None, None),
        };
        let row = sqlx::query(
            "INSERT INTO proposals (kind, kpi_id, base_version, record, domain_name, domain_description, title, \
             rationale, bump, dispute, back_attributed_to, state, revision, author, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', 1, $12, $13, $13) \
             RETURNING id",
        )
        .bind(proposal.kind.as_str())
        .bind(&proposal.kpi_id)
        .bind(&proposal.base_version)
        .bind(&proposal.record)
        .bind(domain_name)
        .bind(domain_description)
        .bind(&proposal.title)
        .bind(&proposal.rationale)
        .bind(proposal.bump.map(Bump::as_str))
        .bind(&proposal.dispute)
        .bind(&proposal.back_attributed_to)
        .bind(&proposal.author)
        .bind(&now)
        .fetch_one(&mut *connection)
        .await?;
        let id: i64 = row.try_get("id")?;
        Self::get_in(connection, id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    pub async fn get(&self, id: i64) -> Result<Option<Proposal>, sqlx::Error> {
        let mut connection = self.db.pool().acquire().await?;
        Self::get_in(&mut connection, id).await
    }

    pub async fn get_in(connection: &mut AnyConnection, id: i64) -> Result<Option<Proposal>, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM proposals WHERE id = $1"));
        let row = sqlx::query(sql).bind(id).fetch_optional(&mut *connection).await?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    /// Proposals newest first.
    pub async fn list(&self, filter: &ProposalFilter) -> Result<Vec<Proposal>, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM proposals \
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kpi_id = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(filter.state.map(ProposalState::as_str))
            .bind(&filter.kpi_id)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(proposal_from_row).collect()
    }

    pub async fn reviews(&self, proposal: i64) -> Result<Vec<Review>, sqlx::Error> {
        let mut connection = self.db.pool().acquire().await?;
        Self::reviews_in(&mut connection, proposal).await
    }

    pub async fn reviews_in(connection: &mut AnyConnection, proposal: i64) -> Result<Vec<Review>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, revision, reviewer, verdict, comment, created_at FROM reviews \
             WHERE proposal_id = $1 ORDER BY id",
        )
        .bind(proposal)
        .fetch_all(&mut *connection)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Review {
                    id: row.try_get("id")?,
                    revision: row.try_get("revision")?,
                    reviewer: row.try_get("reviewer")?,
                    verdict: parse_column("verdict", &row.try_get::<String, _>("verdict")?)?,
                    comment: row.try_get("comment")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn add_review(
        connection: &mut AnyConnection,
        proposal: i64,
        revision: i64,
        reviewer: &str,
        verdict: Verdict,
        comment: &str,
    ) -> Result<Review, sqlx::Error> {
        let now = timestamp::now();
        let row = sqlx::query(
            "INSERT INTO reviews (proposal_id, revision, reviewer, verdict, comment, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(proposal)
        .bind(revision)
        .bind(reviewer)
        .bind(verdict.as_str())
        .bind(comment)
        .bind(&now)
        .fetch_one(&mut *connection)
        .await?;
        Ok(Review {
            id: row.try_get("id")?,
            revision,
            reviewer: reviewer.to_owned(),
            verdict,
            comment: comment.to_owned(),
            created_at: now,
        })
    }

    /// Moves a proposal to `to` if it is still in `from`; returns whether it moved, so a
    /// concurrent change is detected instead of overwritten.
    pub async fn set_state(
        connection: &mut AnyConnection,
        id: i64,
        from: ProposalState,
        to: ProposalState,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE proposals SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(to.as_str())
            .bind(timestamp::now())
            .bind(id)
            .bind(from.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores the author's new revision and sends the proposal back to `open`.
    #[allow(clippy::too_many_arguments)]
    pub async fn revise(
        connection: &mut AnyConnection,
        id: i64,
        expected_revision: i64,
        record: &str,
        base_version: Option<&str>,
        new_domain: Option<&(String, String)>,
        title: &str,
        rationale: &str,
        bump: Option<Bump>,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE proposals SET record = $1, base_version = $2, domain_name = $3, domain_description = $4, \
             title = $5, rationale = $6, bump = $7, revision = revision + 1, state = 'open', updated_at = $8 \
             WHERE id = $9 AND revision = $10 AND state IN ('open', 'approved')",
        )
        .bind(record)
        .bind(base_version)
        .bind(new_domain.map(|d| d.0.as_str()))
        .bind(new_domain.map(|d| d.1.as_str()))
        .bind(title)
        .bind(rationale)
        .bind(bump.map(Bump::as_str))
        .bind(timestamp::now())
        .bind(id)
        .bind(expected_revision)
        .execute(&mut *connection)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks a proposal merged. Idempotent: the indexer calls it for every commit that
    /// names a proposal, so a merge whose process crashed after the git commit is still
    /// recorded on the next start.
    pub async fn mark_merged(connection: &mut AnyConnection, id: i64, merge: &MergeInfo) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE proposals SET state = 'merged', merged_version = $1, merged_ontology_version = $2, \
             merged_commit = $3, merged_at = $4, merged_by = $5, updated_at = $4 \
             WHERE id = $6 AND state <> 'merged'",
        )
        .bind(&merge.version)
        .bind(&merge.ontology_version)
        .bind(&merge.commit)
        .bind(&merge.merged_at)
        .bind(&merge.merged_by)
        .bind(id)
        .execute(&mut *connection)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(revision: i64, reviewer: &str, verdict: Verdict) -> Review {
        Review {
            id: 0,
            revision,
            reviewer: reviewer.into(),
            verdict,
            comment: String::new(),
            created_at: String::new(),
        }
    }

    #[test]
    fn author_approval_never_counts() {
        let reviews = [review(1, "alice", Verdict::Approve)];
        let status = evaluate_policy("alice", 1, &reviews, 1);
        assert!(!status.met);
        assert!(status.approvals.is_empty());
    }

    #[test]
    fn approvals_counted_once_per_reviewer() {
        let reviews = [review(1, "bob", Verdict::Approve), review(1, "bob", Verdict::Approve)];
        assert!(!evaluate_policy("alice", 1, &reviews, 2).met);
        let reviews = [review(1, "bob", Verdict::Approve), review(1, "carol", Verdict::Approve)];
        assert!(evaluate_policy("alice", 1, &reviews, 2).met);
    }

    #[test]
    fn old_revisions_do_not_count() {
        let reviews = [review(1, "bob", Verdict::Approve)];
        assert!(!evaluate_policy("alice", 2, &reviews, 1).met);
    }

    #[test]
    fn outstanding_request_blocks() {
        let reviews = [review(1, "bob", Verdict::Approve), review(1, "carol", Verdict::RequestChanges)];
        let status = evaluate_policy("alice", 1, &reviews, 1);
        assert!(!status.met);
        assert_eq!(status.changes_requested, ["carol"]);
    }

    #[test]
    fn later_verdict_replaces_earlier() {
        let reviews = [review(1, "bob", Verdict::RequestChanges), review(1, "bob", Verdict::Approve)];
        let status = evaluate_policy("alice", 1, &reviews, 1);
        assert!(status.met);
        assert_eq!(status.approvals, ["bob"]);
    }

    #[test]
    fn review_transitions() {
        use ProposalState::*;
        assert_eq!(state_after_review(Open, Verdict::Approve, true), Ok(Approved));
        assert_eq!(state_after_review(Open, Verdict::Approve, false), Ok(Open));
        assert_eq!(state_after_review(Approved, Verdict::RequestChanges, false), Ok(Open));
        assert_eq!(state_after_review(Approved, Verdict::Reject, false), Ok(Rejected));
        for terminal in [Merged, Rejected, Withdrawn] {
            assert!(state_after_review(terminal, Verdict::Approve, true).is_err());
        }
    }
}
