//! Synthetic catalogs for benchmarks and scale tests: a valid TOML tree of N KPIs over M
//! domains with field sizes like the starter catalog's, `related` links, and optionally a
//! history of K versions per KPI written through the store's write API.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use ontology_core::record::{
    BoundValue, Bounds, IsoDate, KpiType, OwningFunction, Priority, Source, Stage, StageRelevance, Standard, Status,
    Tier,
};
use ontology_core::store::{Publication, StoreError};
use ontology_core::{Bump, Catalog, DomainId, DomainInfo, GitStore, KpiDraft, KpiId, KpiKey, OntologyInfo};
use semver::Version;

use crate::progress::Progress;
use crate::registry::registry_identity;

const WORDS: [&str; 48] = [
    "recurring",
    "revenue",
    "cohort",
    "period",
    "customer",
    "contract",
    "annual",
    "monthly",
    "pipeline",
    "margin",
    "retention",
    "expansion",
    "contraction",
    "churn",
    "segment",
    "quarter",
    "booking",
    "invoice",
    "forecast",
    "plan",
    "board",
    "target",
    "baseline",
    "variance",
    "trend",
    "ratio",
    "numerator",
    "denominator",
    "exclusion",
    "window",
    "account",
    "product",
    "usage",
    "seat",
    "renewal",
    "discount",
    "currency",
    "region",
    "channel",
    "team",
    "budget",
    "actual",
    "ledger",
    "audit",
    "policy",
    "threshold",
    "benchmark",
    "definition",
];

/// Size and shape of a synthetic catalog.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub kpis: usize,
    pub domains: usize,
    pub seed: u64,
}

struct Writer {
    rng: fastrand::Rng,
}

impl Writer {
    fn sentence(&mut self, words: usize) -> String {
        let mut text = String::new();
        for index in 0..words {
            if index > 0 {
                text.push(' ');
            }
            text.push_str(WORDS[self.rng.usize(..WORDS.len())]);
        }
        let mut chars = text.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
        format!("{first}{}.", chars.as_str())
    }

    /// Prose of roughly `chars` characters, in paragraphs of a few sentences.
    fn prose(&mut self, chars: usize) -> String {
        let mut text = String::new();
        let mut paragraph_sentences = 0;
        while text.len() < chars {
            if paragraph_sentences == 4 {
                text.push_str("\n\n");
                paragraph_sentences = 0;
            } else if !text.is_empty() {
                text.push(' ');
            }
            let words = self.rng.usize(8..16);
            text.push_str(&self.sentence(words));
            paragraph_sentences += 1;
        }
        text
    }
}

fn domain_id(index: usize) -> DomainId {
    DomainId::parse(&format!("domain_{index:03}")).expect("generated domain ids are valid")
}

fn kpi_id(shape: &Shape, index: usize) -> KpiId {
    let domain = domain_id(index % shape.domains);
    let key = KpiKey::parse(&format!("kpi_{index:05}")).expect("generated keys are valid");
    KpiId::new(&domain, &key)
}

/// Builds the catalog in memory.
pub fn catalog(shape: Shape) -> anyhow::Result<Catalog> {
    if shape.kpis == 0 || shape.domains == 0 || shape.domains > shape.kpis {
        bail!("a synthetic catalog needs at least one KPI per domain and one domain");
    }
    let mut writer = Writer { rng: fastrand::Rng::with_seed(shape.seed) };
    let first_published = IsoDate::parse("2026-04-01").map_err(anyhow::Error::msg)?;

    let mut domains = BTreeMap::new();
    for index in 0..shape.domains {
        let id = domain_id(index);
        domains.insert(id.clone(), DomainInfo { id, name: format!("Domain {index}"), description: writer.prose(160) });
    }

    let types = [KpiType::Percentage, KpiType::Currency, KpiType::Count, KpiType::Ratio, KpiType::Duration];
    let functions = [OwningFunction::Finance, OwningFunction::Sales, OwningFunction::Product, OwningFunction::People];
    let mut kpis = BTreeMap::new();
    for index in 0..shape.kpis {
        let id = kpi_id(&shape, index);
        let related = (1..=3)
            .map(|step| kpi_id(&shape, (index + step * 7919) % shape.kpis))
            .filter(|other| other != &id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let published = index % 10 == 0;
        let kind = types[index % types.len()];
        let draft = KpiDraft {
            id: id.clone(),
            name: format!("Synthetic KPI {index}"),
            summary: writer.prose(220),
            kind,
            unit: (kind == KpiType::Percentage).then(|| "%".to_owned()),
            bounds: (kind == KpiType::Percentage)
                .then_some(Bounds { min: Some(BoundValue(0.0)), max: Some(BoundValue(100.0)) }),
            definition: writer.prose(650),
            formula: writer.prose(450),
            why_it_matters: writer.prose(320),
            how_to_interpret: writer.prose(420),
            pitfalls: (0..3).map(|_| writer.prose(110)).collect(),
            related,
            tier: if published { Tier::Published } else { Tier::Editorial },
            source: Source {
                first_published,
                standard: published.then(|| Standard {
                    name: "Synthetic Standard".into(),
                    issuer: "Synthetic Standards Body".into(),
                    reference: format!("Section {index}"),
                    url: None,
                }),
                promoted_at: None,
            },
            stage_relevance: [Stage::Seed, Stage::SeriesA, Stage::SeriesB, Stage::SeriesCPlus, Stage::Public]
                .into_iter()
                .map(|stage| StageRelevance { stage, priority: Priority::Recommended })
                .collect(),
            owning_functions: vec![functions[index % functions.len()]],
            status: Status::Active,
            replaced_by: None,
            version: Version::new(1, 0, 0),
        };
        let record = draft.validate().map_err(|errors| anyhow::anyhow!("generated record is invalid: {errors:?}"))?;
        kpis.insert(id, record);
    }

    Ok(Catalog {
        ontology: OntologyInfo {
            name: "Synthetic catalog".into(),
            description: format!("{} generated KPIs over {} domains, for benchmarks.", shape.kpis, shape.domains),
        },
        domains,
        kpis,
    })
}

/// Writes a synthetic catalog tree to `dir`, which must not exist or be empty.
pub fn write_tree(shape: Shape, dir: &Path) -> anyhow::Result<Catalog> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty: write the synthetic catalog into a new or empty folder", dir.display());
    }
    let catalog = catalog(shape)?;
    catalog.write_dir(dir).with_context(|| format!("failed to write {}", dir.display()))?;
    Ok(catalog)
}

/// Creates a registry repository in `data_dir` from the catalog and commits `versions - 1`
/// further versions of every KPI, round after round, through the store's write API. Each
/// round cycles the bump (patch, minor, major) so every kind of release appears. The index
/// is not touched: `reindex` or the next start builds it.
pub fn write_history(
    catalog: &Catalog,
    data_dir: &Path,
    versions: usize,
    progress: &Progress,
) -> anyhow::Result<usize> {
    let repository = data_dir.join(crate::registry::REPOSITORY_DIR);
    if GitStore::exists(&repository) {
        bail!("{} already holds a registry repository", repository.display());
    }
    std::fs::create_dir_all(data_dir)?;
    let identity = registry_identity();
    let store = GitStore::create(&repository, catalog, &identity)?;

    let mut current: BTreeMap<KpiId, ontology_core::KpiRecord> = catalog.kpis.clone();
    let mut ontology_version = Version::new(1, 0, 0);
    let mut head = store.head()?;
    let total = catalog.kpis.len() * versions.saturating_sub(1);
    progress.start(total as u64, "committing synthetic history");
    let started = Instant::now();
    let author = ontology_core::Identity { name: "synthetic-editor".into(), email: "synthetic@example.org".into() };

    // Objects go to packs of a thousand commits, never to loose files: writing and then
    // deleting hundreds of thousands of loose files would leave the file system slow to
    // create the next ones for a while, and skew any benchmark run right after.
    store.batch(1000, |batch| {
        for round in 1..versions {
            let bump = [Bump::Patch, Bump::Minor, Bump::Major][round % 3];
            for (id, record) in current.iter_mut() {
                let mut draft = record.clone().into_draft();
                let note = format!("Revision {round}.");
                match bump {
                    Bump::Patch => draft.summary = format!("{} {note}", draft.summary),
                    Bump::Minor => draft.name = format!("Synthetic KPI {} r{round}", id.key_str()),
                    Bump::Major => draft.formula = format!("{} {note}", draft.formula),
                }
                draft.version = bump.apply(&record.version);
                let next = draft
                    .validate()
                    .map_err(|errors| StoreError::Git(git2::Error::from_str(&format!("{id}: {errors:?}"))))?;
                ontology_version = bump.apply(&ontology_version);

                let publication = Publication {
                    record: next.clone(),
                    new_domain: None,
                    title: format!("Synthetic revision {round}"),
                    author: author.clone(),
                    bump,
                    ontology_version: ontology_version.clone(),
                    proposal: None,
                    reviewed_by: vec!["synthetic-reviewer".into()],
                    dispute: None,
                    back_attributed_to: None,
                };
                head = batch.publish(head, &publication, &identity)?;
                *record = next;
                progress.advance(1);
            }
        }
        Ok(())
    })?;
    progress.finish();
    // A registry that has run this long would have packed its objects as it went.
    let packed = store.pack(true)?;
    tracing::info!(objects = packed.objects, "packed the synthetic history");
    tracing::info!(
        commits = total,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "synthetic history written"
    );
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_catalog_is_valid() {
        let catalog = catalog(Shape { kpis: 50, domains: 4, seed: 7 }).unwrap();
        let files = catalog.to_files();
        let loaded = Catalog::from_files(files);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.catalog.kpis.len(), 50);
        assert_eq!(loaded.catalog.domains.len(), 4);
    }

    #[test]
    fn generated_records_have_realistic_size() {
        let catalog = catalog(Shape { kpis: 20, domains: 2, seed: 1 }).unwrap();
        let sizes: Vec<usize> =
            catalog.kpis.values().map(|record| ontology_core::format::kpi_to_toml(record).len()).collect();
        let average = sizes.iter().sum::<usize>() / sizes.len();
        assert!((2_000..6_000).contains(&average), "average TOML size {average}");
    }

    #[test]
    fn same_seed_same_catalog() {
        let shape = Shape { kpis: 10, domains: 2, seed: 3 };
        assert_eq!(catalog(shape).unwrap(), catalog(shape).unwrap());
    }
}
