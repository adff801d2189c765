//! The catalog as the read API serves it: the in-memory version index, the rendered bodies
//! and the caches around them.
//!
//! The latest body of every KPI is kept in memory. Older KPI bodies and bodies of older
//! releases are rendered or read from the database on first demand and kept in a cache
//! bounded by bytes, so memory does not grow with the length of the history. Pinned bodies
//! never change, so the cache never needs invalidation.

pub mod body;
pub mod history;
pub mod render;

use std::sync::Arc;

use anyhow::Context;
use ontology_core::{DomainId, KpiId};
use ontology_governance::Index;
use ontology_governance::index::IndexedCommit;
use parking_lot::{RwLock, RwLockReadGuard};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use semver::Version;

pub use body::Body;

/// Reads a record back from its pinned body, dropping the members the API adds.
pub fn record_from_body(body: &[u8]) -> anyhow::Result<ontology_core::KpiRecord> {
    let mut value: serde_json::Value = serde_json::from_slice(body)?;
    if let Some(object) = value.as_object_mut() {
        for added in ["released_in", "links", "open_disputes"] {
            object.remove(added);
        }
    }
    Ok(serde_json::from_value(value)?)
}
use history::{History, KpiVersion, Release};

/// Bytes of cold bodies kept in memory, beyond the latest KPI bodies that always are.
const COLD_CACHE_BYTES: u64 = 64 * 1024 * 1024;
const COLD_CACHE_ITEMS: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ColdKey {
    Kpi(KpiId, Version),
    LiveKpi(KpiId, Version, u64),
    Index(u32),
    Domain(DomainId, u32),
    Versions(KpiId, u32),
}

#[derive(Clone)]
struct BodyWeight;

impl Weighter<ColdKey, Arc<Body>> for BodyWeight {
    fn weight(&self, _key: &ColdKey, body: &Arc<Body>) -> u64 {
        body.len() as u64 + 64
    }
}

pub struct CatalogService {
    history: RwLock<History>,
    index: Index,
    cold: Cache<ColdKey, Arc<Body>, BodyWeight>,
}

impl CatalogService {
    /// Loads the version index from the database.
    pub async fn load(index: Index) -> anyhow::Result<CatalogService> {
        let releases = index.releases().await.context("failed to load releases")?;
        let kpis = index.kpi_versions().await.context("failed to load KPI versions")?;
        let domains = index.domain_versions().await.context("failed to load domain versions")?;
        let history = History::from_rows(&releases, kpis, &domains)?;
        Ok(CatalogService {
            history: RwLock::new(history),
            index,
            cold: Cache::with_weighter(COLD_CACHE_ITEMS, COLD_CACHE_BYTES, BodyWeight),
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Read access to the version index. Hold it only briefly and never across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, History> {
        self.history.read()
    }

    /// Adds indexed commits to the in-memory index, once they are in the database.
    pub fn apply(&self, commits: &[IndexedCommit]) -> anyhow::Result<()> {
        let mut history = self.history.write();
        for commit in commits {
            let kpis = commit
                .kpis
                .iter()
                .map(|row| {
                    let body = Arc::new(Body::new(row.body.clone().unwrap_or_default()));
                    let mut row = row.clone();
                    row.body = None;
                    (row, body)
                })
                .collect();
            history.apply(std::slice::from_ref(&commit.release), kpis, &commit.domains)?;
        }
        Ok(())
    }

    /// The exact-pin body of a KPI version.
    pub async fn kpi_body(&self, id: &KpiId, version: &KpiVersion) -> anyhow::Result<Arc<Body>> {
        {
            let history = self.read();
            if let Some(kpi) = history.kpis.get(id) {
                if kpi.is_latest(version) {
                    return Ok(kpi.latest_body.clone());
                }
            }
        }

        let key = ColdKey::Kpi(id.clone(), version.version.clone());
        if let Some(body) = self.cold.get(&key) {
            return Ok(body);
        }
        let text = self
            .index
            .kpi_body(id.as_str(), &version.version.to_string())
            .await
            .context("failed to read a KPI body")?
            .with_context(|| format!("the index lacks the body of {id} {}", version.version))?;
        let body = Arc::new(Body::new(text));
        self.cold.insert(key, body.clone());
        Ok(body)
    }

    /// The unpinned and range body of a KPI version, with its live fields.
    pub async fn live_kpi_body(&self, id: &KpiId, version: &KpiVersion) -> anyhow::Result<Arc<Body>> {
        // NOTE: disputes are not built yet, so no KPI has an open one. The count is part of
        // the cache key, so filing a dispute will render a fresh body.
        let open_disputes = 0;
        {
            let history = self.read();
            if let Some(kpi) = history.kpis.get(id).filter(|kpi| kpi.is_latest(version)) {
                let live = kpi
                    .latest_live_body
                    .get_or_init(|| Arc::new(Body::new(render::live_kpi_body(kpi.latest_body.bytes(), open_disputes))));
                return Ok(live.clone());
            }
        }
        let key = ColdKey::LiveKpi(id.clone(), version.version.clone(), open_disputes);
        if let Some(body) = self.cold.get(&key) {
            return Ok(body);
        }
        let pinned = self.kpi_body(id, version).await?;
        let body = Arc::new(Body::new(render::live_kpi_body(pinned.bytes(), open_disputes)));
        self.cold.insert(key, body.clone());
        Ok(body)
    }

    /// `index.json` as of a release, pinned (exact links) or live (unpinned links, latest
    /// release only).
    pub fn index_body(&self, release: &Release, pinned: bool) -> Arc<Body> {
        let history = self.read();
        let is_latest = history.latest_release().is_some_and(|r| r.seq == release.seq);
        if !pinned && is_latest {
            return history
                .live
                .index
                .get_or_init(|| Arc::new(Body::new(render::index_body(&history, release, false))))
                .clone();
        }
        let key = ColdKey::Index(release.seq);
        if let Some(body) = self.cold.get(&key) {
            return body;
        }
        let body = Arc::new(Body::new(render::index_body(&history, release, true)));
        self.cold.insert(key, body.clone());
        body
    }

    /// `{domain}.json` as of a release, `None` when the domain did not exist then.
    pub async fn domain_body(&self, id: &DomainId, release: &Release) -> anyhow::Result<Option<Arc<Body>>> {
        let key = ColdKey::Domain(id.clone(), release.seq);
        if let Some(body) = self.cold.get(&key) {
            return Ok(Some(body));
        }

        let kpis: Vec<(KpiId, Arc<KpiVersion>)> = {
            let history = self.read();
            let Some(domain) = history.domains.get(id) else { return Ok(None) };
            if domain.at_release(release.seq).is_none() {
                return Ok(None);
            }
            history
                .domain_kpis_at(id, release.seq)
                .into_iter()
                .map(|(kpi_id, version)| (kpi_id.clone(), version.clone()))
                .collect()
        };
        let mut bodies = Vec::with_capacity(kpis.len());
        for (kpi_id, version) in &kpis {
            bodies.push(self.kpi_body(kpi_id, version).await?);
        }

        let body = {
            let history = self.read();
            let domain = history
                .domains
                .get(id)
                .and_then(|d| d.at_release(release.seq))
                .context("a domain vanished from the index")?;
            let slices: Vec<&[u8]> = bodies.iter().map(|b| b.bytes().as_ref()).collect();
            Arc::new(Body::new(render::domain_body(release, id, domain, &slices)))
        };
        self.cold.insert(key, body.clone());
        Ok(Some(body))
    }

    /// `versions.json` of a KPI with the versions up to a release.
    pub fn versions_body(&self, id: &KpiId, up_to: &Release) -> Option<Arc<Body>> {
        let key = ColdKey::Versions(id.clone(), up_to.seq);
        if let Some(body) = self.cold.get(&key) {
            return Some(body);
        }
        let history = self.read();
        let kpi = history.kpis.get(id)?;
        let body = Arc::new(Body::new(render::versions_body(&history, id, kpi, up_to.seq)));
        drop(history);
        self.cold.insert(key, body.clone());
        Some(body)
    }

    /// `releases.json`, all releases newest first.
    pub fn releases_body(&self) -> Arc<Body> {
        let history = self.read();
        history.live.releases.get_or_init(|| Arc::new(Body::new(render::releases_body(&history)))).clone()
    }
}
