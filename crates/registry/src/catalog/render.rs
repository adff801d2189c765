//! JSON representations of the read API, rendered once per version and cached as bytes.
//!
//! A pinned body contains only what its version fixes: no live counts, no request time,
//! links as paths with exact pins, numbers in their canonical form. The same inputs give
//! the same bytes after a restart or a reindex.

use std::collections::BTreeMap;

use ontology_core::{Bump, DomainId, KpiId, KpiRecord};
use semver::Version;
use serde::Serialize;

use super::history::{DomainVersion, History, KpiHistory, KpiVersion, Release};

/// Paths of the API and the web pages, built from validated ids only.
pub mod links {
    use ontology_core::{DomainId, KpiId};
    use semver::Version;

    pub fn catalog(ontology: Option<&Version>) -> String {
        match ontology {
            Some(version) => format!("/api/ontology/index.json?ontology={version}"),
            None => "/api/ontology/index.json".to_owned(),
        }
    }

    pub fn domain(domain: &DomainId, ontology: Option<&Version>) -> String {
        match ontology {
            Some(version) => format!("/api/ontology/{domain}.json?ontology={version}"),
            None => format!("/api/ontology/{domain}.json"),
        }
    }

    pub fn kpi(id: &KpiId, version: Option<&Version>) -> String {
        let (domain, key) = (id.domain_str(), id.key_str());
        match version {
            Some(version) => format!("/api/ontology/{domain}/{key}.json?version={version}"),
            None => format!("/api/ontology/{domain}/{key}.json"),
        }
    }

    pub fn kpi_versions(id: &KpiId) -> String {
        format!("/api/ontology/{}/{}/versions.json", id.domain_str(), id.key_str())
    }

    pub fn kpi_html(id: &KpiId, version: &Version) -> String {
        format!("/ontology/{}/{}?version={version}", id.domain_str(), id.key_str())
    }
}

/// Paths to the KPI version itself, its domain and catalog as of its release, its web
/// page and its version list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KpiLinks {
    #[serde(rename = "self")]
    this: String,
    domain: String,
    catalog: String,
    html: String,
    versions: String,
}

/// A KPI record with the ontology version that first contained it and its links.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KpiDocument<'a> {
    #[serde(flatten)]
    #[schema(value_type = ontology_core::KpiDraft)]
    record: &'a KpiRecord,
    /// The ontology version that first contained this KPI version.
    #[schema(value_type = String)]
    released_in: &'a Version,
    links: KpiLinks,
    /// Open disputes against the KPI; only in unpinned and range answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    open_disputes: Option<u64>,
}

/// Renders the exact-pin body of a KPI version: the record, `released_in` and links.
pub fn kpi_body(record: &KpiRecord, released_in: &Version) -> String {
    let id = &record.id;
    let domain = id.domain();
    let document = KpiDocument {
        record,
        released_in,
        links: KpiLinks {
            this: links::kpi(id, Some(&record.version)),
            domain: links::domain(&domain, Some(released_in)),
            catalog: links::catalog(Some(released_in)),
            html: links::kpi_html(id, &record.version),
            versions: links::kpi_versions(id),
        },
        open_disputes: None,
    };
    serde_json::to_string(&document).expect("KPI documents serialise to JSON")
}

/// Turns a pinned KPI body into the unpinned and range form, which adds live fields.
pub fn live_kpi_body(pinned: &[u8], open_disputes: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(pinned.len() + 24);
    // A pinned body is a JSON object, so dropping its closing brace leaves room for
    // more members.
    body.extend_from_slice(&pinned[..pinned.len() - 1]);
    body.extend_from_slice(format!(",\"open_disputes\":{open_disputes}}}").as_bytes());
    body
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IndexKpi<'a> {
    #[schema(value_type = String)]
    id: &'a KpiId,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    tier: &'a str,
    status: &'a str,
    #[schema(value_type = String)]
    version: &'a Version,
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IndexDomain<'a> {
    #[schema(value_type = String)]
    id: &'a DomainId,
    name: &'a str,
    description: &'a str,
    url: String,
    kpis: Vec<IndexKpi<'a>>,
}

/// The catalog at one ontology version.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IndexDocument<'a> {
    #[schema(value_type = String)]
    ontology_version: &'a Version,
    released_at: &'a str,
    commit: &'a str,
    domains: Vec<IndexDomain<'a>>,
}

/// Renders `index.json` as of a release. `pinned` bodies link with exact pins; the live
/// body links to the unpinned paths, which follow the catalog as it moves.
pub fn index_body(history: &History, release: &Release, pinned: bool) -> String {
    let ontology = pinned.then_some(&release.version);
    let domains = history
        .domains
        .iter()
        .filter_map(|(id, domain)| domain.at_release(release.seq).map(|version| (id, version)))
        .map(|(id, domain): (&DomainId, &DomainVersion)| IndexDomain {
            id,
            name: &domain.name,
            description: &domain.description,
            url: links::domain(id, ontology),
            kpis: history
                .domain_kpis_at(id, release.seq)
                .into_iter()
                .map(|(kpi_id, version)| IndexKpi {
                    id: kpi_id,
                    name: &version.name,
                    kind: &version.kind,
                    tier: &version.tier,
                    status: &version.status,
                    version: &version.version,
                    url: links::kpi(kpi_id, pinned.then_some(&version.version)),
                })
                .collect(),
        })
        .collect();
    let document = IndexDocument {
        ontology_version: &release.version,
        released_at: &release.released_at,
        commit: &release.commit,
        domains,
    };
    serde_json::to_string(&document).expect("the index serialises to JSON")
}

/// Renders `{domain}.json` around the pinned bodies of its KPIs, given in key order.
pub fn domain_body(release: &Release, id: &DomainId, domain: &DomainVersion, kpi_bodies: &[&[u8]]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Head<'a> {
        ontology_version: &'a Version,
        id: &'a DomainId,
        name: &'a str,
        description: &'a str,
    }
    let head = serde_json::to_vec(&Head {
        ontology_version: &release.version,
        id,
        name: &domain.name,
        description: &domain.description,
    })
    .expect("the domain head serialises to JSON");

    let total: usize = kpi_bodies.iter().map(|b| b.len() + 1).sum();
    let mut body = Vec::with_capacity(head.len() + total + 16);
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(b",\"kpis\":[");
    for (index, kpi) in kpi_bodies.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(kpi);
    }
    body.extend_from_slice(b"]}");
    body
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionEntry<'a> {
    #[schema(value_type = String)]
    version: &'a Version,
    bump: Option<Bump>,
    tier: &'a str,
    commit: &'a str,
    #[schema(value_type = String)]
    ontology_version: &'a Version,
    merged_at: &'a str,
    title: &'a str,
    proposal: Option<&'a str>,
}

/// Renders `versions.json` of a KPI, newest first, with the versions up to release
/// `up_to` (inclusive).
/// The versions of one KPI, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionsDocument<'a> {
    #[schema(value_type = String)]
    id: &'a KpiId,
    versions: Vec<VersionEntry<'a>>,
}

pub fn versions_body(history: &History, id: &KpiId, kpi: &KpiHistory, up_to: u32) -> String {
    let versions = kpi
        .versions
        .iter()
        .rev()
        .filter(|v| v.release_seq <= up_to)
        .filter_map(|v: &std::sync::Arc<KpiVersion>| {
            let release = history.release(v.release_seq)?;
            Some(VersionEntry {
                version: &v.version,
                bump: v.bump,
                tier: &v.tier,
                commit: &release.commit,
                ontology_version: &release.version,
                merged_at: &release.released_at,
                title: &v.title,
                proposal: v.proposal.as_deref(),
            })
        })
        .collect();
    serde_json::to_string(&VersionsDocument { id, versions }).expect("versions serialise to JSON")
}

/// One KPI change of a release.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseChange<'a> {
    #[schema(value_type = String)]
    pub id: &'a KpiId,
    #[schema(value_type = Option<String>)]
    pub from: Option<&'a Version>,
    #[schema(value_type = String)]
    pub to: &'a Version,
    pub bump: Option<Bump>,
    pub title: &'a str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseEntry<'a> {
    #[schema(value_type = String)]
    pub ontology_version: &'a Version,
    pub commit: &'a str,
    pub released_at: &'a str,
    pub bump: Option<Bump>,
    pub title: &'a str,
    pub changes: Vec<ReleaseChange<'a>>,
}

/// Lists every release, newest first, with the KPI versions each one introduced.
pub fn release_entries(history: &History) -> Vec<ReleaseEntry<'_>> {
    let mut changes: BTreeMap<u32, Vec<ReleaseChange<'_>>> = BTreeMap::new();
    for (id, kpi) in &history.kpis {
        let mut previous: Option<&Version> = None;
        for version in &kpi.versions {
            changes.entry(version.release_seq).or_default().push(ReleaseChange {
                id,
                from: previous,
                to: &version.version,
                bump: version.bump,
                title: &version.title,
            });
            previous = Some(&version.version);
        }
    }
    history
        .releases
        .iter()
        .rev()
        .map(|release| ReleaseEntry {
            ontology_version: &release.version,
            commit: &release.commit,
            released_at: &release.released_at,
            bump: release.bump,
            title: &release.title,
            changes: changes.remove(&release.seq).unwrap_or_default(),
        })
        .collect()
}

/// Every release, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleasesDocument<'a> {
    releases: Vec<ReleaseEntry<'a>>,
}

pub fn releases_body(history: &History) -> String {
    serde_json::to_string(&ReleasesDocument { releases: release_entries(history) }).expect("releases serialise to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_body_appends_member() {
        let live = live_kpi_body(br#"{"id":"a.b"}"#, 3);
        assert_eq!(live, br#"{"id":"a.b","open_disputes":3}"#);
    }
}
