//! Opening a registry: the data directory with its git repository, the database, and the
//! index caught up with git.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use ontology_core::{Catalog, GitStore, Identity};
use ontology_governance::{Database, Index};

use crate::catalog::CatalogService;
use crate::indexer::{self, IndexCursor};
use crate::progress::Progress;
use crate::publisher::Publisher;

pub const REPOSITORY_DIR: &str = "ontology.git";
pub const SQLITE_FILE: &str = "registry.db";

/// Locations of the registry's state and of the catalog a new registry starts from.
#[derive(Debug, Clone)]
pub struct Location {
    pub data_dir: PathBuf,
    /// `None` selects the SQLite file in the data directory.
    pub database_url: Option<String>,
    /// The catalog tree a new registry starts from.
    pub seed_catalog: PathBuf,
}

impl Location {
    pub fn repository(&self) -> PathBuf {
        self.data_dir.join(REPOSITORY_DIR)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join(SQLITE_FILE).display()),
        }
    }
}

/// The committer of every commit the registry writes.
pub fn registry_identity() -> Identity {
    Identity { name: "KPI Ontology Registry".into(), email: "registry@ontology-registry.invalid".into() }
}

/// An open registry.
pub struct Registry {
    pub store: GitStore,
    pub db: Database,
    pub catalog: Arc<CatalogService>,
    pub publisher: Arc<Publisher>,
}

/// Creates the git repository from the seed catalog if the data directory has none.
/// Returns whether it created one.
pub fn ensure_repository(location: &Location) -> anyhow::Result<bool> {
    let path = location.repository();
    if GitStore::exists(&path) {
        return Ok(false);
    }
    std::fs::create_dir_all(&location.data_dir)
        .with_context(|| format!("failed to create the data directory {}", location.data_dir.display()))?;

    let catalog = read_valid_catalog(&location.seed_catalog)?;
    GitStore::create(&path, &catalog, &registry_identity())
        .with_context(|| format!("failed to create the git repository {}", path.display()))?;
    tracing::info!(
        repository = %path.display(),
        kpis = catalog.kpis.len(),
        domains = catalog.domains.len(),
        "created the registry's git repository from {}; tagged v1.0.0",
        location.seed_catalog.display()
    );
    Ok(true)
}

/// Reads a catalog tree and fails with every problem listed if it is not valid.
pub fn read_valid_catalog(dir: &Path) -> anyhow::Result<Catalog> {
    let loaded = Catalog::read_dir(dir).with_context(|| {
        format!("failed to read the catalog tree {}; set --catalog to the folder holding ontology.toml", dir.display())
    })?;
    if !loaded.problems.is_empty() {
        let list: Vec<String> = loaded.problems.iter().map(|p| format!("  {p}")).collect();
        bail!("the catalog tree {} has {} problems:\n{}", dir.display(), loaded.problems.len(), list.join("\n"));
    }
    Ok(loaded.catalog)
}

/// Opens the registry: creates it on first start, connects the database, indexes any
/// commit that git has and the index lacks, and loads the version index into memory.
pub async fn open(location: &Location) -> anyhow::Result<Registry> {
    let seeded = {
        let location = location.clone();
        tokio::task::spawn_blocking(move || ensure_repository(&location)).await??
    };
    let store = GitStore::open(&location.repository())?;

    let db = Database::connect(&location.database_url()).await?;
    let index = Index::new(db.clone());
    let mut cursor = IndexCursor::load(&index).await?;
    let progress = if seeded { Progress::hidden() } else { Progress::visible() };
    indexer::catch_up(&store, &index, &mut cursor, &progress, |_| Ok(())).await?;
    if !index.search_is_complete().await? {
        tracing::warn!("search rows are missing, as after an interrupted bulk indexing run; rebuilding them");
        index.rebuild_search().await.context("failed to rebuild the search rows")?;
    }

    let catalog = Arc::new(CatalogService::load(index.clone()).await?);
    let publisher = Arc::new(Publisher::new(store.clone(), index, catalog.clone(), cursor, registry_identity()));
    Ok(Registry { store, db, catalog, publisher })
}

/// Drops the index and rebuilds it from git alone.
pub async fn reindex(location: &Location) -> anyhow::Result<indexer::IndexSummary> {
    let store = GitStore::open(&location.repository())
        .context("no registry to reindex: start it once (or run `init`) to create its git repository")?;
    let db = Database::connect(&location.database_url()).await?;
    let index = Index::new(db.clone());
    index.clear().await.context("failed to clear the index")?;

    let mut cursor = IndexCursor::default();
    let summary = indexer::catch_up(&store, &index, &mut cursor, &Progress::visible(), |_| Ok(())).await?;
    db.close().await;
    Ok(summary)
}
