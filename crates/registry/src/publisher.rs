//! The write side of the catalog: checks a proposed KPI record against the catalog as it
//! is now, computes its version bump, commits it to git as the next ontology version and
//! indexes the commit.
//!
//! One lock serialises every publication, so concurrent merges of different KPIs all land,
//! one commit each on a linear history, and of concurrent merges of one KPI exactly one
//! lands: the others find their base version outdated.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use ontology_core::bump::{self, FieldChange};
use ontology_core::catalog::check_record_links;
use ontology_core::record::Status;
use ontology_core::store::{Publication, StoreError, check_title};
use ontology_core::{Bump, DomainInfo, FieldError, GitStore, Identity, KpiDraft, KpiId, KpiRecord};
use ontology_governance::proposals::ProposalKind;
use ontology_governance::{Actor, Index};
use semver::Version;
use tokio::sync::Mutex;

use crate::catalog::{Body, CatalogService, record_from_body};
use crate::indexer::{self, IndexCursor};
use crate::progress::Progress;

/// A proposed new version of one KPI.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ProposalKind,
    /// The record as the editor wants it; its version is ignored.
    pub draft: KpiDraft,
    /// The version the change starts from, `None` for a new KPI.
    pub base_version: Option<Version>,
    /// The domain file to add when a new KPI opens a new domain.
    pub new_domain: Option<DomainInfo>,
    pub requested_bump: Option<Bump>,
    pub title: String,
}

/// The bump a field's change needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BumpReason {
    pub field: String,
    pub bump: Bump,
}

/// The effect of a change on the catalog as it is now.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The validated record with its new version.
    pub record: KpiRecord,
    pub changes: Vec<FieldChange>,
    pub reasons: Vec<BumpReason>,
    pub minimum_bump: Bump,
    /// The bump applied: the requested one, never below the minimum.
    pub bump: Bump,
    pub ontology_version: Version,
}

/// The author of a publication and the trailers that record its review.
#[derive(Debug, Clone)]
pub struct PublishMeta {
    pub author: Identity,
    pub proposal: Option<i64>,
    pub reviewed_by: Vec<String>,
    pub dispute: Option<String>,
    pub back_attributed_to: Option<String>,
    pub actor: Actor,
}

/// The versions and commit a publication created.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Published {
    pub kpi_id: String,
    pub version: String,
    pub ontology_version: String,
    pub commit: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the proposed record breaks rules of the catalog")]
    Invalid(Vec<FieldError>),
    #[error("`{kpi}` moved since base version {base}: it is at {current} now")]
    BaseOutdated { kpi: KpiId, base: Version, current: Version },
    /// Another process moved `main` during the merge. Nothing was written, and the catalog
    /// has caught up, so a retry is checked against the new head.
    #[error("another writer moved the catalog during the merge; nothing was written, retry the merge")]
    Contended,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Loose objects (estimated) above which a merge is followed by packing, by default; the
/// same threshold as git's `gc.auto`.
pub const LOOSE_OBJECT_LIMIT: usize = 6700;
/// Packs above which packing merges them all into one, like git's `gc.autoPackLimit`.
const PACK_LIMIT: usize = 50;
/// Limits from this one up are compared with a sampled estimate rather than a full count.
const SAMPLED_LIMIT: usize = 1024;

pub struct Publisher {
    store: GitStore,
    index: Index,
    catalog: Arc<CatalogService>,
    /// The index position, and the lock that serialises publications.
    cursor: Mutex<IndexCursor>,
    committer: Identity,
    /// Loose objects (estimated) above which a merge is followed by packing.
    loose_object_limit: AtomicUsize,
}

impl Publisher {
    pub fn new(
        store: GitStore,
        index: Index,
        catalog: Arc<CatalogService>,
        cursor: IndexCursor,
        committer: Identity,
    ) -> Self {
        Publisher {
            store,
            index,
            catalog,
            cursor: Mutex::new(cursor),
            committer,
            loose_object_limit: AtomicUsize::new(LOOSE_OBJECT_LIMIT),
        }
    }

    pub fn set_loose_object_limit(&self, limit: usize) {
        self.loose_object_limit.store(limit, Ordering::Relaxed);
    }

    /// Checks a change against the catalog as it is now, collecting every broken rule.
    pub async fn assess(&self, change: &Change) -> Result<Assessment, ChangeError> {
        let id = change.draft.id.clone();
        let mut errors = Vec::new();
        if let Err(reason) = check_title(&change.title) {
            errors.push(FieldError::new("title", reason));
        }

        // What the catalog holds now, read under the lock of the in-memory index.
        let (current, domain_exists, latest_release) = {
            let history = self.catalog.read();
            let current = history.kpis.get(&id).map(|kpi| {
                let base_exists =
                    change.base_version.as_ref().is_some_and(|base| kpi.versions.iter().any(|v| &v.version == base));
                (kpi.latest().clone(), kpi.latest_body.clone(), base_exists)
            });
            let domain_exists = history.domains.contains_key(id.domain_str());
            let latest_release = history.latest_release().map(|r| r.version.clone()).context("no release")?;
            (current, domain_exists, latest_release)
        };

        let base_record = match (&change.base_version, &current) {
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "kpi_id",
                    format!("`{id}` already exists: propose a change to it with its current version as base_version"),
                ));
                None
            }
            (None, None) => None,
            (Some(_), None) => {
                errors.push(FieldError::new("kpi_id", format!("no KPI `{id}`: set base_version to null to create it")));
                None
            }
            (Some(base), Some((latest, _, false))) => {
                errors.push(FieldError::new(
                    "base_version",
                    format!("`{id}` has no version {base}: its current version is {}", latest.version),
                ));
                None
            }
            (Some(base), Some((latest, body, true))) => {
                if base != &latest.version {
                    return Err(ChangeError::BaseOutdated {
                        kpi: id,
                        base: base.clone(),
                        current: latest.version.clone(),
                    });
                }
                Some(record_from_body(body.bytes()).context("failed to read the base record")?)
            }
        };

        // Per-record rules; the version is set once the bump is known.
        let mut draft = change.draft.clone();
        draft.version = change.base_version.clone().unwrap_or(Version::new(1, 0, 0));
        let record = match draft.validate() {
            Ok(record) => Some(record),
            Err(found) => {
                errors.extend(found);
                None
            }
        };

        if let Some(record) = &record {
            let statuses = {
                let history = self.catalog.read();
                record
                    .related
                    .iter()
                    .chain(record.replaced_by.iter())
                    .filter_map(|other| {
                        history.kpis.get(other).map(|kpi| {
                            let status =
                                if kpi.latest().status == "deprecated" { Status::Deprecated } else { Status::Active };
                            (other.clone(), status)
                        })
                    })
                    .collect::<std::collections::HashMap<KpiId, Status>>()
            };
            errors.extend(check_record_links(record, |other| statuses.get(other).copied()));
            if change.kind == ProposalKind::Creation && record.status == Status::Deprecated {
                errors.push(FieldError::new("record.status", "a new KPI starts `active`"));
            }
            let deprecates = record.status == Status::Deprecated
                && base_record.as_ref().is_some_and(|base| base.status == Status::Active);
            if deprecates {
                errors.extend(self.replaced_kpis(&id)?);
            }
        }

        match (&change.new_domain, domain_exists) {
            (Some(_), true) => errors.push(FieldError::new(
                "domain",
                format!("domain `{}` already exists: leave `domain` out", id.domain_str()),
            )),
            (None, false) => errors.push(FieldError::new(
                "domain",
                format!("domain `{}` does not exist: give its `name` and `description` to create it", id.domain_str()),
            )),
            (Some(domain), false) if domain.id.as_str() != id.domain_str() => {
                errors.push(FieldError::new("domain", "the domain must be the KPI's own domain"))
            }
            _ => {}
        }

        let Some(record) = record else { return Err(ChangeError::Invalid(prefix_record(errors))) };
        let (changes, minimum) = match &base_record {
            Some(base) => {
                let changes = bump::diff(base, &record);
                match bump::minimum_bump(&changes) {
                    Some(minimum) => (changes, minimum),
                    None => {
                        errors.push(FieldError::new(
                            "record",
                            "the proposed record equals the current version once normalised: it changes nothing",
                        ));
                        (changes, Bump::Patch)
                    }
                }
            }
            None => (Vec::new(), Bump::Minor),
        };
        let reasons = match &base_record {
            Some(_) => changes.iter().map(|c| BumpReason { field: c.field.to_owned(), bump: c.bump }).collect(),
            None => vec![BumpReason { field: "kpi_id".into(), bump: Bump::Minor }],
        };

        let bump = change.requested_bump.unwrap_or(minimum);
        if bump < minimum {
            // The fields that set the minimum, not every field above the requested bump.
            let fields: Vec<&str> = reasons.iter().filter(|r| r.bump == minimum).map(|r| r.field.as_str()).collect();
            errors.push(FieldError::new(
                "bump",
                format!(
                    "`{bump}` is below the minimum bump `{minimum}` that the change of {} requires",
                    fields.join(", ")
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(ChangeError::Invalid(prefix_record(errors)));
        }

        let kpi_version = match &change.base_version {
            Some(base) => bump.apply(base),
            None => Version::new(1, 0, 0),
        };
        Ok(Assessment {
            record: record.with_version(kpi_version),
            changes,
            reasons,
            minimum_bump: minimum,
            bump,
            ontology_version: bump.apply(&latest_release),
        })
    }

    /// Lists, as errors, the deprecated KPIs whose `replaced_by` names `id`. Deprecating
    /// `id` would leave them replaced by a deprecated KPI, which the catalog rules forbid.
    fn replaced_kpis(&self, id: &KpiId) -> anyhow::Result<Vec<FieldError>> {
        let deprecated: Vec<(KpiId, Arc<Body>)> = {
            let history = self.catalog.read();
            history
                .kpis
                .iter()
                .filter(|(other, kpi)| *other != id && kpi.latest().status == "deprecated")
                .map(|(other, kpi)| (other.clone(), kpi.latest_body.clone()))
                .collect()
        };
        let mut errors = Vec::new();
        for (other, body) in deprecated {
            let record =
                record_from_body(body.bytes()).with_context(|| format!("failed to read the record of {other}"))?;
            if record.replaced_by.as_ref() == Some(id) {
                errors.push(FieldError::new(
                    "record.status",
                    format!("`{other}` is replaced by `{id}`: first propose another active KPI as its replaced_by"),
                ));
            }
        }
        Ok(errors)
    }

    /// Takes the publication lock, first indexing anything another process wrote to git,
    /// so the caller can re-check its preconditions against the catalog as it is now.
    pub async fn lock(&self) -> Result<PublishLock<'_>, ChangeError> {
        let mut cursor = self.cursor.lock().await;
        self.catch_up(&mut cursor).await?;
        Ok(PublishLock { cursor })
    }

    /// Commits a change as the next ontology version and indexes it. The change is checked
    /// again under the lock, against the catalog as it is at that moment.
    pub async fn publish(
        &self,
        lock: &mut PublishLock<'_>,
        change: &Change,
        meta: &PublishMeta,
    ) -> Result<(Assessment, Published), ChangeError> {
        let cursor = &mut *lock.cursor;
        let assessment = self.assess(change).await?;
        let expected_head = cursor.head.context("the index holds no commit")?;

        let publication = Publication {
            record: assessment.record.clone(),
            new_domain: change.new_domain.clone(),
            title: change.title.trim().to_owned(),
            author: meta.author.clone(),
            bump: assessment.bump,
            ontology_version: assessment.ontology_version.clone(),
            proposal: meta.proposal.map(|id| id.to_string()),
            reviewed_by: meta.reviewed_by.clone(),
            dispute: meta.dispute.clone(),
            back_attributed_to: meta.back_attributed_to.clone(),
        };
        let store = self.store.clone();
        let committer = self.committer.clone();
        let commit = tokio::task::spawn_blocking(move || store.publish(expected_head, &publication, &committer))
            .await
            .context("the git task failed")?;
        let commit = match commit {
            Ok(commit) => commit,
            Err(error @ StoreError::HeadMoved { .. }) => {
                // A writer outside this process moved main between the catch-up and the
                // commit; nothing was written, and the caller may retry.
                self.catch_up(cursor).await?;
                tracing::warn!(error = %error, "main moved during a merge; the merge was not written");
                return Err(ChangeError::Contended);
            }
            Err(error) => return Err(ChangeError::Internal(anyhow::Error::new(error).context("failed to commit"))),
        };

        cursor.merging = meta.proposal.map(|id| (id, meta.actor.clone()));
        let indexed = self.catch_up(cursor).await;
        cursor.merging = None;
        indexed.context("the commit is in git but indexing it failed; it is indexed on the next start")?;

        let published = Published {
            kpi_id: assessment.record.id.to_string(),
            version: assessment.record.version.to_string(),
            ontology_version: assessment.ontology_version.to_string(),
            commit: commit.to_string(),
        };
        tracing::info!(
            kpi = %published.kpi_id,
            version = %published.version,
            ontology_version = %published.ontology_version,
            commit = %published.commit,
            proposal = meta.proposal,
            "published"
        );
        Ok((assessment, published))
    }

    /// Packs loose git objects once there are many, as `git gc --auto` would; every few
    /// dozen incremental packs are merged into one. Runs under the publication lock, so no
    /// merge writes meanwhile; reads are served from memory and the database.
    pub async fn maintain(&self) -> anyhow::Result<()> {
        let limit = self.loose_object_limit.load(Ordering::Relaxed);
        let store = self.store.clone();
        // Sampling one fan-out folder is as precise as a large limit needs and costs one
        // directory read; only a small limit (as tests set) needs the exact count.
        let loose = tokio::task::spawn_blocking(move || {
            if limit < SAMPLED_LIMIT { store.loose_object_count() } else { store.loose_object_estimate() }
        })
        .await
        .context("the counting task failed")?;
        if loose < limit {
            return Ok(());
        }

        let _lock = self.cursor.lock().await;
        let store = self.store.clone();
        let (full, summary) = tokio::task::spawn_blocking(move || {
            let full = store.pack_count() >= PACK_LIMIT;
            store.pack(full).map(|summary| (full, summary))
        })
        .await
        .context("the packing task failed")??;
        tracing::info!(
            full,
            objects = summary.objects,
            removed_loose = summary.removed_loose,
            removed_packs = summary.removed_packs,
            "packed the git repository"
        );
        Ok(())
    }

    async fn catch_up(&self, cursor: &mut IndexCursor) -> anyhow::Result<()> {
        let catalog = self.catalog.clone();
        indexer::catch_up(&self.store, &self.index, cursor, &Progress::hidden(), |batch| catalog.apply(batch)).await?;
        Ok(())
    }
}

/// Proof that the caller holds the publication lock.
pub struct PublishLock<'a> {
    cursor: tokio::sync::MutexGuard<'a, IndexCursor>,
}

/// Names record fields as the request body does, under `record.`.
fn prefix_record(errors: Vec<FieldError>) -> Vec<FieldError> {
    const TOP_LEVEL: [&str; 6] = ["title", "kpi_id", "base_version", "domain", "bump", "record"];
    errors
        .into_iter()
        .map(|mut error| {
            if !TOP_LEVEL.iter().any(|top| error.field == *top || error.field.starts_with(&format!("{top}."))) {
                error.field = format!("record.{}", error.field);
            }
            error
        })
        .collect()
}
