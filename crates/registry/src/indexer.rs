//! Builds the read index from git: each commit on main becomes a release row, a row per KPI
//! version it introduces (with the rendered body) and the search rows.
//!
//! The index head records the last commit indexed. On start, commits after it are indexed,
//! so a crash between a git commit and its index update never loses a release; `reindex`
//! clears the index and indexes the whole history.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, bail};
use git2::Oid;
use ontology_core::catalog::DOMAIN_FILE;
use ontology_core::store::{CommitDetails, StoreReader, kpi_of_path};
use ontology_core::{Bump, GitStore, format};
use ontology_governance::Index;
use ontology_governance::index::{
    DomainVersionRow, IndexedCommit, KpiVersionRow, MergedProposal, ReleaseRow, SearchRow,
};
use ontology_governance::proposals::MergeInfo;
use ontology_governance::{Actor, Channel};
use semver::Version;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::catalog::render;
use crate::progress::Progress;

/// Commits per database transaction during a catch-up or a reindex.
const BATCH: usize = 500;

/// The position of the index: what it already contains, needed to index the next commit.
#[derive(Debug, Default)]
pub struct IndexCursor {
    pub head: Option<Oid>,
    pub next_seq: i64,
    pub last_version: Option<Version>,
    pub latest: HashMap<String, Version>,
    /// The proposal being merged by this process and who merges it, so the merge's audit
    /// row names the reviewer. Commits found later (after a crash) name the registry.
    pub merging: Option<(i64, Actor)>,
    /// Set when a write failed after the position advanced: reload before the next use.
    pub stale: bool,
}

impl IndexCursor {
    pub async fn load(index: &Index) -> anyhow::Result<IndexCursor> {
        let head = index
            .head()
            .await?
            .map(|text| Oid::from_str(&text))
            .transpose()
            .context("the index head is not a commit id")?;
        let releases = index.releases().await?;
        let mut latest = HashMap::new();
        for row in index.kpi_versions().await? {
            let version = Version::parse(&row.version).with_context(|| format!("stored version of {}", row.kpi_id))?;
            latest.insert(row.kpi_id, version);
        }
        Ok(IndexCursor {
            head,
            next_seq: releases.len() as i64,
            last_version: releases
                .last()
                .map(|r| Version::parse(&r.version))
                .transpose()
                .context("stored release version")?,
            latest,
            merging: None,
            stale: false,
        })
    }
}

/// Summary of an indexing run.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexSummary {
    pub commits: usize,
    pub kpi_versions: usize,
}

/// Indexes every commit of main after the cursor's head, calling `on_batch` with each
/// batch once it is in the database.
///
/// Reading git for the next batch overlaps writing the current one to the database. If
/// anything fails, the cursor is left stale and reloaded from the database on the next
/// call, so commits that were read but not written are indexed again.
pub async fn catch_up(
    store: &GitStore,
    index: &Index,
    cursor: &mut IndexCursor,
    progress: &Progress,
    mut on_batch: impl FnMut(&[IndexedCommit]) -> anyhow::Result<()>,
) -> anyhow::Result<IndexSummary> {
    if cursor.stale {
        let merging = cursor.merging.take();
        *cursor = IndexCursor::load(index).await.context("failed to reload the index position")?;
        cursor.merging = merging;
    }
    let started = Instant::now();
    let pending = {
        let store = store.clone();
        let head = cursor.head;
        tokio::task::spawn_blocking(move || store.history_after(head))
            .await?
            .context("failed to list the commits to index; if the index is from another repository, run `ontology-registry reindex`")?
    };
    let mut summary = IndexSummary::default();
    if pending.is_empty() {
        return Ok(summary);
    }
    progress.start(pending.len() as u64, "indexing commits");
    // A long run writes only the last version's search rows, once at the end: the rows of
    // earlier versions would be replaced anyway.
    let bulk = pending.len() > BATCH;

    let mut chunks = pending.chunks(BATCH).map(<[Oid]>::to_vec);
    let read = |chunk: Vec<Oid>, mut state: IndexCursor| {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let batch = store.reader().map_err(anyhow::Error::from).and_then(|reader| {
                chunk.iter().map(|oid| index_commit(&reader, *oid, &mut state)).collect::<anyhow::Result<Vec<_>>>()
            });
            (state, batch)
        })
    };
    // Until the last batch is written, the cursor reads as stale: any early return leaves
    // it to be reloaded from the database.
    let merging = cursor.merging.clone();
    let started_from = std::mem::replace(cursor, IndexCursor { stale: true, merging, ..IndexCursor::default() });
    let mut reading = chunks.next().map(|chunk| read(chunk, started_from));
    while let Some(task) = reading.take() {
        let (state, batch) = task.await?;
        let mut batch = batch?;
        if bulk {
            for commit in &mut batch {
                commit.search.clear();
            }
        }

        // Reading the next batch starts from the state after this one.
        let last = chunks.len() == 0;
        let finished = if last {
            Some(state)
        } else {
            reading = chunks.next().map(|chunk| read(chunk, state));
            None
        };

        let written = index.apply(&batch).await.context("failed to write the index");
        if written.is_err() {
            if let Some(task) = reading.take() {
                let _ = task.await;
            }
        }
        written?;
        on_batch(&batch)?;
        summary.commits += batch.len();
        summary.kpi_versions += batch.iter().map(|c| c.kpis.len()).sum::<usize>();
        progress.advance(batch.len() as u64);

        if let Some(state) = finished {
            *cursor = state;
        }
    }

    if bulk {
        index.rebuild_search().await.context("failed to rebuild the search rows")?;
    }
    progress.finish();
    tracing::info!(
        commits = summary.commits,
        kpi_versions = summary.kpi_versions,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "index caught up with git"
    );
    Ok(summary)
}

/// Turns one commit into index rows and advances the cursor. Blocking (reads git).
fn index_commit(store: &StoreReader, oid: Oid, cursor: &mut IndexCursor) -> anyhow::Result<IndexedCommit> {
    let details = store.describe(oid)?;
    let version =
        details.ontology_version().with_context(|| format!("commit {oid} has no valid Ontology-Version trailer"))?;
    if let Some(last) = &cursor.last_version {
        if &version <= last {
            bail!("commit {oid} carries ontology version {version}, not above {last}");
        }
    }
    // A crash between moving the branch and tagging leaves a commit without its tag.
    store.ensure_tag(&version, oid).with_context(|| format!("failed to tag {version}"))?;

    let seq = cursor.next_seq;
    let title = release_title(&details);
    let release = ReleaseRow {
        seq,
        version: version.to_string(),
        commit_id: oid.to_string(),
        released_at: rfc3339(details.time)?,
        bump: release_bump(&details, cursor.last_version.as_ref(), &version),
        title: title.clone(),
    };

    let mut kpis = Vec::new();
    let mut domains = Vec::new();
    let mut search = Vec::new();
    for file in &details.changed {
        let text =
            std::str::from_utf8(&file.bytes).with_context(|| format!("{} in commit {oid} is not UTF-8", file.path))?;
        if let Some(id) = kpi_of_path(&file.path) {
            let record = format::kpi_from_toml(text)
                .map_err(|error| anyhow::anyhow!("{error:?}"))
                .with_context(|| format!("{} in commit {oid} is not a valid KPI record", file.path))?;
            let previous = cursor.latest.insert(id.to_string(), record.version.clone());
            kpis.push(KpiVersionRow {
                kpi_id: id.to_string(),
                version: record.version.to_string(),
                release_seq: seq,
                bump: previous.and_then(|p| Bump::between(&p, &record.version)).map(|b| b.to_string()),
                tier: ontology_core::record::enum_name(&record.tier),
                name: record.name.clone(),
                kind: ontology_core::record::enum_name(&record.kind),
                status: ontology_core::record::enum_name(&record.status),
                title: title.clone(),
                proposal: details.trailer(ontology_core::store::trailer::PROPOSAL).map(str::to_owned),
                body: Some(render::kpi_body(&record, &version)),
            });
            search.push(SearchRow {
                kpi_id: id.to_string(),
                name: record.name.clone(),
                summary: record.summary.clone(),
                definition: record.definition.clone(),
            });
        } else if let Some(domain) = file.path.strip_suffix(&format!("/{DOMAIN_FILE}")) {
            let info = format::domain_from_toml(text)
                .map_err(|error| anyhow::anyhow!("{error:?}"))
                .with_context(|| format!("{} in commit {oid} is not a valid domain file", file.path))?;
            domains.push(DomainVersionRow {
                domain_id: domain.to_owned(),
                release_seq: seq,
                name: info.name,
                description: info.description,
            });
        }
    }

    let merged_proposal = merged_proposal(&details, &kpis, &release, cursor);
    cursor.head = Some(oid);
    cursor.next_seq += 1;
    cursor.last_version = Some(version);
    Ok(IndexedCommit { release, kpis, domains, search, merged_proposal })
}

/// The proposal a commit merged, from its `Proposal:` trailer.
fn merged_proposal(
    details: &CommitDetails,
    kpis: &[KpiVersionRow],
    release: &ReleaseRow,
    cursor: &IndexCursor,
) -> Option<MergedProposal> {
    let id: i64 = details.trailer(ontology_core::store::trailer::PROPOSAL)?.parse().ok()?;
    let version = kpis.first()?.version.clone();
    let actor = match &cursor.merging {
        Some((merging, actor)) if *merging == id => actor.clone(),
        _ => Actor::system(Channel::Startup),
    };
    Some(MergedProposal {
        id,
        merge: MergeInfo {
            version,
            ontology_version: release.version.clone(),
            commit: release.commit_id.clone(),
            merged_at: release.released_at.clone(),
            merged_by: actor.username.clone(),
        },
        actor,
    })
}

/// The part of the commit title after `<kpi id> <version>: ` (or `Ontology <version>: `).
fn release_title(details: &CommitDetails) -> String {
    match details.title.split_once(": ") {
        Some((_, rest)) if !rest.trim().is_empty() => rest.trim().to_owned(),
        _ => details.title.trim().to_owned(),
    }
}

fn release_bump(details: &CommitDetails, previous: Option<&Version>, version: &Version) -> Option<String> {
    let previous = previous?;
    details
        .trailer(ontology_core::store::trailer::BUMP)
        .and_then(|b| b.parse::<Bump>().ok())
        .or_else(|| Bump::between(previous, version))
        .map(|b| b.to_string())
}

fn rfc3339(seconds: i64) -> anyhow::Result<String> {
    Ok(OffsetDateTime::from_unix_timestamp(seconds)?.format(&Rfc3339)?)
}
