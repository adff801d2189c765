//! The read index in the database: releases, KPI versions with their rendered JSON, domain
//! versions and the search table. Git is the source of truth; this index can be dropped
//! and rebuilt from it at any time.

use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor, AuditEvent};
use crate::db::{Backend, Database};
use crate::proposals::{MergeInfo, ProposalStore};

/// Audit action of a merge.
pub const PROPOSAL_MERGED: &str = "proposal.merged";

/// An ontology version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// Position of the release's commit on main, 0 for the first commit.
    pub seq: i64,
    pub version: String,
    pub commit_id: String,
    /// RFC 3339 UTC committer time of the release's commit.
    pub released_at: String,
    /// `None` for the first release.
    pub bump: Option<String>,
    pub title: String,
}

/// A version of one KPI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiVersionRow {
    pub kpi_id: String,
    pub version: String,
    pub release_seq: i64,
    /// `None` for a KPI's first version.
    pub bump: Option<String>,
    pub tier: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub title: String,
    pub proposal: Option<String>,
    /// The rendered JSON of the exact pin. Loading rows may leave it out.
    pub body: Option<String>,
}

/// A domain's name and description as of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainVersionRow {
    pub domain_id: String,
    pub release_seq: i64,
    pub name: String,
    pub description: String,
}

/// The searchable text of a KPI's latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRow {
    pub kpi_id: String,
    pub name: String,
    pub summary: String,
    pub definition: String,
}

/// A proposal that a commit merged, named by the commit's `Proposal:` trailer.
#[derive(Debug, Clone)]
pub struct MergedProposal {
    pub id: i64,
    pub merge: MergeInfo,
    /// Who merged it: the reviewer when the merge is indexed as it happens, the registry
    /// itself when a later start finds the commit unindexed.
    pub actor: Actor,
}

/// Everything one commit adds to the index.
#[derive(Debug, Clone)]
pub struct IndexedCommit {
    pub release: ReleaseRow,
    pub kpis: Vec<KpiVersionRow>,
    pub domains: Vec<DomainVersionRow>,
    pub search: Vec<SearchRow>,
    pub merged_proposal: Option<MergedProposal>,
}

/// A search hit, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub kpi_id: String,
    pub summary: String,
    pub score: f64,
}

#[derive(Debug, Clone)]
pub struct Index {
    db: Database,
}

impl Index {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The last commit the index holds, `None` for an empty index.
    pub async fn head(&self) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT commit_id FROM index_head WHERE id = 1").fetch_optional(self.db.pool()).await?;
        row.map(|r| r.try_get::<String, _>("commit_id")).transpose()
    }

    /// Adds commits to the index in one transaction and moves the index head to the last.
    /// A commit that merged a proposal also marks the proposal merged and writes the audit
    /// row, in the same transaction, so git, the index and the proposal always agree.
    pub async fn apply(&self, commits: &[IndexedCommit]) -> Result<(), sqlx::Error> {
        let Some(last) = commits.last() else { return Ok(()) };
        let mut tx = self.db.begin_write().await?;
        for commit in commits {
            insert_commit(&mut tx, self.db.backend(), commit).await?;
        }
        sqlx::query(
            "INSERT INTO index_head (id, commit_id) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET commit_id = excluded.commit_id",
        )
        .bind(&last.release.commit_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Empties the index, for a rebuild from git.
    pub async fn clear(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        for statement in [
            "DELETE FROM index_head",
            "DELETE FROM kpi_search",
            "DELETE FROM kpi_versions",
            "DELETE FROM domain_versions",
            "DELETE FROM releases",
        ] {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        if self.db.backend() == Backend::Sqlite {
            sqlx::query("DELETE FROM kpi_search_rows").execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Rebuilds every search row from the latest indexed version of each KPI, in one
    /// transaction. Bulk indexing skips the per-commit search rows, which later versions
    /// would replace anyway, and calls this once at the end.
    pub async fn rebuild_search(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM kpi_search").execute(&mut *tx).await?;
        match self.db.backend() {
            Backend::Sqlite => {
                sqlx::query(
                    "INSERT INTO kpi_search_rows (kpi_id) SELECT DISTINCT kpi_id FROM kpi_versions WHERE true \
                     ON CONFLICT (kpi_id) DO NOTHING",
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO kpi_search (rowid, kpi_id, name, summary, definition) \
                     SELECT r.row_id, v.kpi_id, v.name, json_extract(v.body, '$.summary'), \
                            json_extract(v.body, '$.definition') \
                     FROM kpi_versions v \
                     JOIN (SELECT kpi_id, MAX(release_seq) AS seq FROM kpi_versions GROUP BY kpi_id) latest \
                       ON latest.kpi_id = v.kpi_id AND latest.seq = v.release_seq \
                     JOIN kpi_search_rows r ON r.kpi_id = v.kpi_id",
                )
                .execute(&mut *tx)
                .await?;
            }
            Backend::Postgres => {
                sqlx::query(
                    "INSERT INTO kpi_search (kpi_id, name, summary, definition) \
                     SELECT DISTINCT ON (kpi_id) kpi_id, name, CAST(body AS JSON) ->> 'summary', \
                            CAST(body AS JSON) ->> 'definition' \
                     FROM kpi_versions ORDER BY kpi_id, release_seq DESC",
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    /// Whether every indexed KPI has its search row; false after a bulk indexing run was
    /// interrupted before its search rows were rebuilt.
    pub async fn search_is_complete(&self) -> Result<bool, sqlx::Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(DISTINCT kpi_id) FROM kpi_versions) AS kpis, \
                    (SELECT COUNT(*) FROM kpi_search) AS rows",
        )
        .fetch_one(self.db.pool())
        .await?;
        let kpis: i64 = row.try_get("kpis")?;
        let rows: i64 = row.try_get("rows")?;
        Ok(kpis == rows)
    }

    pub async fn releases(&self) -> Result<Vec<ReleaseRow>, sqlx::Error> {
        let rows = sqlx::query("SELECT seq, version, commit_id, released_at, bump, title FROM releases ORDER BY seq")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReleaseRow {
                    seq: row.try_get("seq")?,
                    version: row.try_get("version")?,
                    commit_id: row.try_get("commit_id")?,
                    released_at: row.try_get("released_at")?,
                    bump: row.try_get("bump")?,
                    title: row.try_get("title")?,
                })
            })
            .collect()
    }

    /// Every KPI version ordered by KPI and release, with the body of each KPI's latest
    /// version only; older bodies are read on demand with [`Index::kpi_body`].
    pub async fn kpi_versions(&self) -> Result<Vec<KpiVersionRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT v.kpi_id, v.version, v.release_seq, v.bump, v.tier, v.name, v.kind, v.status, \
                    v.title, v.proposal, \
                    CASE WHEN v.release_seq = latest.seq THEN v.body END AS body \
             FROM kpi_versions v \
             JOIN (SELECT kpi_id, MAX(release_seq) AS seq FROM kpi_versions GROUP BY kpi_id) latest \
               ON latest.kpi_id = v.kpi_id \
             ORDER BY v.kpi_id, v.release_seq",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KpiVersionRow {
                    kpi_id: row.try_get("kpi_id")?,
                    version: row.try_get("version")?,
                    release_seq: row.try_get("release_seq")?,
                    bump: row.try_get("bump")?,
                    tier: row.try_get("tier")?,
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    status: row.try_get("status")?,
                    title: row.try_get("title")?,
                    proposal: row.try_get("proposal")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    pub async fn domain_versions(&self) -> Result<Vec<DomainVersionRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT domain_id, release_seq, name, description FROM domain_versions \
             ORDER BY domain_id, release_seq",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DomainVersionRow {
                    domain_id: row.try_get("domain_id")?,
                    release_seq: row.try_get("release_seq")?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                })
            })
            .collect()
    }

    /// The rendered body of one KPI version.
    pub async fn kpi_body(&self, kpi_id: &str, version: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT body FROM kpi_versions WHERE kpi_id = $1 AND version = $2")
            .bind(kpi_id)
            .bind(version)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| r.try_get::<String, _>("body")).transpose()
    }

    /// Full-text search over the latest KPI versions with the database's own engine
    /// (FTS5 with BM25 on SQLite, `tsvector` with `ts_rank` on PostgreSQL).
    pub async fn search(&self, terms: &[String], limit: i64) -> Result<Vec<SearchHit>, sqlx::Error> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self.db.backend() {
            Backend::Sqlite => {
                // Each term is quoted, so FTS5 operators in the input are plain words; the
                // last term also matches as a prefix, for search-as-you-type. bm25 weights
                // the columns name > summary > definition and is lower for better hits.
                let mut query: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
                if let Some(last) = query.last_mut() {
                    last.push('*');
                }
                sqlx::query(
                    "SELECT kpi_id, summary, -bm25(kpi_search, 0.0, 10.0, 4.0, 1.0) AS score \
                     FROM kpi_search WHERE kpi_search MATCH $1 \
                     ORDER BY score DESC, kpi_id LIMIT $2",
                )
                .bind(query.join(" "))
                .bind(limit)
                .fetch_all(self.db.pool())
                .await?
            }
            Backend::Postgres => {
                // Terms joined with `&`, the last one as a prefix; each term is already
                // reduced to letters and digits, so the tsquery syntax cannot be abused.
                let mut query: Vec<String> = terms.to_vec();
                if let Some(last) = query.last_mut() {
                    last.push_str(":*");
                }
                sqlx::query(
                    "SELECT kpi_id, summary, CAST(ts_rank(document, to_tsquery('english', $1)) AS DOUBLE PRECISION) AS score \
                     FROM kpi_search WHERE document @@ to_tsquery('english', $1) \
                     ORDER BY score DESC, kpi_id LIMIT $2",
                )
                .bind(query.join(" & "))
                .bind(limit)
                .fetch_all(self.db.pool())
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(SearchHit {
                    kpi_id: row.try_get("kpi_id")?,
                    summary: row.try_get("summary")?,
                    score: row.try_get("score")?,
                })
            })
            .collect()
    }
}

async fn insert_commit(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    commit: &IndexedCommit,
) -> Result<(), sqlx::Error> {
    let release = &commit.release;
    sqlx::query(
        "INSERT INTO releases (seq, version, commit_id, released_at, bump, title) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(release.seq)
    .bind(&release.version)
    .bind(&release.commit_id)
    .bind(&release.released_at)
    .bind(&release.bump)
    .bind(&release.title)
    .execute(&mut **tx)
    .await?;

    for kpi in &commit.kpis {
        sqlx::query(
            "INSERT INTO kpi_versions \
             (kpi_id, version, release_seq, bump, tier, name, kind, status, title, proposal, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&kpi.kpi_id)
        .bind(&kpi.version)
        .bind(kpi.release_seq)
        .bind(&kpi.bump)
        .bind(&kpi.tier)
        .bind(&kpi.name)
        .bind(&kpi.kind)
        .bind(&kpi.status)
        .bind(&kpi.title)
        .bind(&kpi.proposal)
        .bind(kpi.body.as_deref().unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    }

    for domain in &commit.domains {
        sqlx::query(
            "INSERT INTO domain_versions (domain_id, release_seq, name, description) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&domain.domain_id)
        .bind(domain.release_seq)
        .bind(&domain.name)
        .bind(&domain.description)
        .execute(&mut **tx)
        .await?;
    }

    if let Some(merged) = &commit.merged_proposal {
        if ProposalStore::mark_merged(&mut **tx, merged.id, &merged.merge).await? {
            let id = merged.id.to_string();
            audit::append(
                &mut **tx,
                &merged.actor,
                &AuditEvent {
                    action: PROPOSAL_MERGED,
                    target_kind: "proposal",
                    target_id: &id,
                    before: None,
                    after: Some(&merged.merge.commit),
                },
            )
            .await?;
        }
    }

    for row in &commit.search {
        replace_search_row(tx, backend, row).await?;
    }
    Ok(())
}

/// Replaces a KPI's search row with the text of its latest version.
async fn replace_search_row(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    row: &SearchRow,
) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            sqlx::query("INSERT INTO kpi_search_rows (kpi_id) VALUES ($1) ON CONFLICT (kpi_id) DO NOTHING")
                .bind(&row.kpi_id)
                .execute(&mut **tx)
                .await?;
            let found = sqlx::query("SELECT row_id FROM kpi_search_rows WHERE kpi_id = $1")
                .bind(&row.kpi_id)
                .fetch_one(&mut **tx)
                .await?;
            let row_id: i64 = found.try_get("row_id")?;
            sqlx::query("DELETE FROM kpi_search WHERE rowid = $1").bind(row_id).execute(&mut **tx).await?;
            sqlx::query(
                "INSERT INTO kpi_search (rowid, kpi_id, name, summary, definition) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(row_id)
            .bind(&row.kpi_id)
            .bind(&row.name)
            .bind(&row.summary)
            .bind(&row.definition)
            .execute(&mut **tx)
            .await?;
        }
        Backend::Postgres => {
            sqlx::query(
                "INSERT INTO kpi_search (kpi_id, name, summary, definition) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kpi_id) DO UPDATE SET name = excluded.name, summary = excluded.summary, \
                 definition = excluded.definition",
            )
            .bind(&row.kpi_id)
            .bind(&row.name)
            .bind(&row.summary)
            .bind(&row.definition)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
