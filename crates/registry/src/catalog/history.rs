//! The in-memory version index: every release, every KPI version and every domain version,
//! sorted so that resolving a pin is a binary search and never a database round trip.
//!
//! Releases are numbered by `seq`, their position on main. Ontology versions only grow
//! along main, so the list sorted by `seq` is also sorted by version. A KPI "as of"
//! release `seq` is its last version with `release_seq <= seq`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use http::HeaderValue;
use ontology_core::pin::VersionPin;
use ontology_core::{Bump, DomainId, KpiId};
use ontology_governance::index::{DomainVersionRow, KpiVersionRow, ReleaseRow};
use semver::Version;

use super::body::Body;

/// An ontology version.
#[derive(Debug)]
pub struct Release {
    pub seq: u32,
    pub version: Version,
    pub version_header: HeaderValue,
    pub commit: String,
    pub released_at: String,
    pub bump: Option<Bump>,
    pub title: String,
}

/// A version of one KPI, without its body.
#[derive(Debug)]
pub struct KpiVersion {
    pub version: Version,
    pub version_header: HeaderValue,
    pub release_seq: u32,
    pub bump: Option<Bump>,
    pub tier: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub title: String,
    pub proposal: Option<String>,
}

/// All versions of one KPI, oldest first, with the body of the latest kept in memory.
#[derive(Debug)]
pub struct KpiHistory {
    pub versions: Vec<Arc<KpiVersion>>,
    pub latest_body: Arc<Body>,
    /// The unpinned form of the latest body, made on first demand.
    pub latest_live_body: OnceLock<Arc<Body>>,
}

impl KpiHistory {
    pub fn latest(&self) -> &Arc<KpiVersion> {
        self.versions.last().expect("a KPI history has at least one version")
    }

    /// The version current in release `seq`, `None` if the KPI did not exist yet.
    pub fn at_release(&self, seq: u32) -> Option<&Arc<KpiVersion>> {
        let count = self.versions.partition_point(|v| v.release_seq <= seq);
        count.checked_sub(1).map(|index| &self.versions[index])
    }

    pub fn select(&self, pin: &VersionPin) -> Option<&Arc<KpiVersion>> {
        pin.select(&self.versions, |v| &v.version)
    }

    pub fn is_latest(&self, version: &KpiVersion) -> bool {
        self.latest().version == version.version
    }
}

/// A domain's name and description as of a release.
#[derive(Debug)]
pub struct DomainVersion {
    pub release_seq: u32,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Default)]
pub struct DomainHistory {
    pub versions: Vec<DomainVersion>,
}

impl DomainHistory {
    pub fn at_release(&self, seq: u32) -> Option<&DomainVersion> {
        let count = self.versions.partition_point(|v| v.release_seq <= seq);
        count.checked_sub(1).map(|index| &self.versions[index])
    }
}

/// Bodies that depend on the latest release, rendered on first demand and dropped when a
/// release is added.
#[derive(Debug, Default)]
pub struct LiveBodies {
    pub index: OnceLock<Arc<Body>>,
    pub releases: OnceLock<Arc<Body>>,
    pub atom: OnceLock<Arc<Body>>,
}

#[derive(Debug, Default)]
pub struct History {
    pub releases: Vec<Arc<Release>>,
    pub kpis: BTreeMap<KpiId, KpiHistory>,
    pub domains: BTreeMap<DomainId, DomainHistory>,
    pub live: LiveBodies,
}

impl History {
    pub fn latest_release(&self) -> Option<&Arc<Release>> {
        self.releases.last()
    }

    pub fn release(&self, seq: u32) -> Option<&Arc<Release>> {
        self.releases.get(seq as usize)
    }

    pub fn select_release(&self, pin: &VersionPin) -> Option<&Arc<Release>> {
        pin.select(&self.releases, |r| &r.version)
    }

    /// KPIs of a domain that exist in release `seq`, with their version there, by key.
    pub fn domain_kpis_at(&self, domain: &DomainId, seq: u32) -> Vec<(&KpiId, &Arc<KpiVersion>)> {
        let prefix = format!("{domain}.");
        self.kpis
            .range::<str, _>((std::ops::Bound::Included(prefix.as_str()), std::ops::Bound::Unbounded))
            .take_while(|(id, _)| id.as_str().starts_with(&prefix))
            .filter_map(|(id, history)| history.at_release(seq).map(|v| (id, v)))
            .collect()
    }

    /// Adds the rows of one or more commits, in release order.
    pub fn apply(
        &mut self,
        releases: &[ReleaseRow],
        kpis: Vec<(KpiVersionRow, Arc<Body>)>,
        domains: &[DomainVersionRow],
    ) -> anyhow::Result<()> {
        for row in releases {
            let release = release_from_row(row)?;
            anyhow::ensure!(
                release.seq as usize == self.releases.len(),
                "release {} has seq {} but {} releases are loaded",
                release.version,
                release.seq,
                self.releases.len()
            );
            self.releases.push(Arc::new(release));
        }
        for (row, body) in kpis {
            let id = KpiId::parse(&row.kpi_id).with_context(|| format!("stored KPI id `{}`", row.kpi_id))?;
            let version = Arc::new(kpi_version_from_row(&row)?);
            match self.kpis.get_mut(&id) {
                Some(history) => {
                    history.versions.push(version);
                    history.latest_body = body;
                    history.latest_live_body = OnceLock::new();
                }
                None => {
                    self.kpis.insert(
                        id,
                        KpiHistory { versions: vec![version], latest_body: body, latest_live_body: OnceLock::new() },
                    );
                }
            }
        }
        for row in domains {
            let id =
                DomainId::parse(&row.domain_id).with_context(|| format!("stored domain id `{}`", row.domain_id))?;
            self.domains.entry(id).or_default().versions.push(DomainVersion {
                release_seq: to_seq(row.release_seq)?,
                name: row.name.clone(),
                description: row.description.clone(),
            });
        }
        self.live = LiveBodies::default();
        Ok(())
    }

    /// Builds the history from the index's rows (KPI rows ordered by KPI then release,
    /// with the body of each KPI's latest version).
    pub fn from_rows(
        releases: &[ReleaseRow],
        kpi_rows: Vec<KpiVersionRow>,
        domains: &[DomainVersionRow],
    ) -> anyhow::Result<History> {
        let mut history = History::default();
        let mut kpis = Vec::with_capacity(kpi_rows.len());
        let placeholder = Arc::new(Body::new(""));
        for mut row in kpi_rows {
            let body = match row.body.take() {
                Some(text) => Arc::new(Body::new(text)),
                None => placeholder.clone(),
            };
            kpis.push((row, body));
        }
        history.apply(releases, kpis, domains)?;
        Ok(history)
    }
}

fn to_seq(value: i64) -> anyhow::Result<u32> {
    u32::try_from(value).with_context(|| format!("stored release seq {value} is out of range"))
}

fn header(value: &Version) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).expect("a semver version is a valid header value")
}

fn parse_bump(value: &Option<String>) -> anyhow::Result<Option<Bump>> {
    value.as_deref().map(|b| b.parse::<Bump>().map_err(anyhow::Error::msg)).transpose()
}

fn release_from_row(row: &ReleaseRow) -> anyhow::Result<Release> {
    let version = Version::parse(&row.version).with_context(|| format!("stored release version `{}`", row.version))?;
    Ok(Release {
        seq: to_seq(row.seq)?,
        version_header: header(&version),
        version,
        commit: row.commit_id.clone(),
        released_at: row.released_at.clone(),
        bump: parse_bump(&row.bump)?,
        title: row.title.clone(),
    })
}

fn kpi_version_from_row(row: &KpiVersionRow) -> anyhow::Result<KpiVersion> {
    let version =
        Version::parse(&row.version).with_context(|| format!("stored version `{}` of {}", row.version, row.kpi_id))?;
    Ok(KpiVersion {
        version_header: header(&version),
        version,
        release_seq: to_seq(row.release_seq)?,
        bump: parse_bump(&row.bump)?,
        tier: row.tier.clone(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        status: row.status.clone(),
        title: row.title.clone(),
        proposal: row.proposal.clone(),
    })
}
