//! Writes new KPI versions straight into a registry's git repository through the store's
//! write API, the way a merge does, but without updating the index: the server indexes
//! them on its next start.

use std::path::Path;

use ontology_core::store::Publication;
use ontology_core::{Bump, GitStore, Identity, KpiDraft, KpiId};
use semver::Version;

pub struct Published {
    pub kpi_version: Version,
    pub ontology_version: Version,
    pub commit: String,
}

fn latest_ontology_version(store: &GitStore) -> Version {
    store
        .tagged_versions()
        .unwrap()
        .into_iter()
        .map(|(version, _)| version)
        .max()
        .expect("the repository has a tagged version")
}

/// Commits a new version of an existing KPI with `edit` applied and the given bump.
pub fn publish_edit(
    repository: &Path,
    kpi: &str,
    bump: Bump,
    title: &str,
    edit: impl FnOnce(&mut KpiDraft),
) -> Published {
    let store = GitStore::open(repository).unwrap();
    let head = store.head().unwrap();
    let catalog = store.catalog_at(head).unwrap().catalog;
    let id = KpiId::parse(kpi).unwrap();
    let current = catalog.kpis.get(&id).unwrap_or_else(|| panic!("no KPI {kpi}")).clone();

    let mut draft = current.clone().into_draft();
    edit(&mut draft);
    draft.version = bump.apply(&current.version);
    let record = draft.validate().unwrap();
    publish(&store, head, record, None, bump, title)
}

/// Commits a brand-new KPI at 1.0.0 as a minor ontology release.
pub fn publish_new(repository: &Path, draft: KpiDraft, title: &str) -> Published {
    let store = GitStore::open(repository).unwrap();
    let head = store.head().unwrap();
    let mut draft = draft;
    draft.version = Version::new(1, 0, 0);
    publish(&store, head, draft.validate().unwrap(), None, Bump::Minor, title)
}

fn publish(
    store: &GitStore,
    head: git2::Oid,
    record: ontology_core::KpiRecord,
    new_domain: Option<ontology_core::DomainInfo>,
    bump: Bump,
    title: &str,
) -> Published {
    let ontology_version = bump.apply(&latest_ontology_version(store));
    let publication = Publication {
        record,
        new_domain,
        title: title.to_owned(),
        author: Identity { name: "test-editor".into(), email: "test-editor@example.org".into() },
        bump,
        ontology_version: ontology_version.clone(),
        proposal: None,
        reviewed_by: vec!["test-reviewer".into()],
        dispute: None,
        back_attributed_to: None,
    };
    let kpi_version = publication.record.version.clone();
    let commit = store
        .publish(
            head,
            &publication,
            &Identity { name: "KPI Ontology Registry".into(), email: "registry@ontology-registry.invalid".into() },
        )
        .unwrap();
    Published { kpi_version, ontology_version, commit: commit.to_string() }
}
