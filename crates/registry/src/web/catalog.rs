//! The public catalog pages: the catalog with search at `/`, and one page per KPI at
//! `/ontology/{domain}/{key}`, pinned like the JSON API with `?version=` and `?ontology=`.
//! They read the same in-memory catalog and pinned bodies as the JSON API.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ontology_core::record::BoundValue;
use ontology_core::{KpiId, KpiRecord};
use serde::{Deserialize, Serialize};

use super::{error, markdown};
use crate::app::AppState;
use crate::catalog::history::{History, KpiVersion};
use crate::catalog::record_from_body;
use crate::catalog::render::links;
use crate::problem::{ApiError, ApiResult};
use crate::routes::ontology::{Pins, parse_kpi, resolve_kpi, resolve_release};
use crate::routes::search::terms;

/// Largest number of search results on one page.
const SEARCH_RESULTS: i64 = 50;

#[derive(Deserialize)]
pub struct CatalogParams {
    q: Option<String>,
    ontology: Option<String>,
}

#[derive(Deserialize)]
pub struct KpiParams {
    ontology: Option<String>,
    version: Option<String>,
}

/// A KPI in a list: the catalog, a domain or search results.
struct KpiLine {
    name: String,
    url: String,
    tier: String,
    deprecated: bool,
    version: String,
    summary: Option<String>,
}

struct DomainSection {
    id: String,
    name: String,
    description: String,
    kpis: Vec<KpiLine>,
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog.html")]
struct CatalogPage {
    ontology_version: String,
    /// Whether the page shows an older ontology version than the latest.
    pinned: bool,
    query: String,
    results: Option<Vec<KpiLine>>,
    domains: Vec<DomainSection>,
}

struct Link {
    label: String,
    url: String,
}

struct Standard {
    name: String,
    issuer: String,
    reference: String,
    url: Option<String>,
}

struct Stage {
    stage: String,
    priority: String,
}

/// A version in the KPI's history, newest first.
struct HistoryLine {
    version: String,
    url: String,
    ontology_version: String,
    bump: String,
    title: String,
    current: bool,
    diff_url: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "kpi.html")]
struct KpiPage {
    id: String,
    name: String,
    version: String,
    released_in: String,
    latest: Option<Link>,
    /// Whether the latest version, when this page shows an older one, is deprecated.
    latest_deprecated: bool,
    kind: String,
    unit: Option<String>,
    bounds: Option<String>,
    tier: String,
    deprecated: bool,
    replaced_by: Option<Link>,
    summary: String,
    definition: String,
    formula: String,
    why_it_matters: String,
    how_to_interpret: String,
    pitfalls: Vec<String>,
    related: Vec<Link>,
    standard: Option<Standard>,
    first_published: String,
    promoted_at: Option<String>,
    stages: Vec<Stage>,
    functions: Vec<String>,
    json_url: String,
    versions_url: String,
    history: Vec<HistoryLine>,
}

/// Renders an error of the catalog pages as a page with the same status as the API's.
fn error_page(error: ApiError) -> Response {
    match error {
        ApiError::Client { status, title, detail, .. } => error::page(status, title, &detail),
        ApiError::Internal(error) => {
            tracing::error!(error = format!("{error:#}"), "failed to render a catalog page");
            error::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "The page could not be rendered. The server log has the details.",
            )
        }
    }
}

/// Returns the label of an enum value as a reader sees it: `series_c_plus` becomes `Series C+`,
/// `customer_success` becomes `Customer success`.
fn label<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    match text.as_str() {
        "series_a" => "Series A".to_owned(),
        "series_b" => "Series B".to_owned(),
        "series_c_plus" => "Series C+".to_owned(),
        _ => {
            let spaced = text.replace('_', " ");
            let mut chars = spaced.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

/// The page of a KPI, as of an ontology version when the page that links it is pinned.
fn kpi_page_url(id: &KpiId, ontology: Option<&semver::Version>) -> String {
    match ontology {
        Some(version) => format!("/ontology/{}/{}?ontology={version}", id.domain_str(), id.key_str()),
        None => format!("/ontology/{}/{}", id.domain_str(), id.key_str()),
    }
}

fn line(id: &KpiId, version: &KpiVersion, ontology: Option<&semver::Version>, summary: Option<String>) -> KpiLine {
    KpiLine {
        name: version.name.clone(),
        url: kpi_page_url(id, ontology),
        tier: version.tier.clone(),
        deprecated: version.status == "deprecated",
        version: version.version.to_string(),
        summary,
    }
}

/// Shows the catalog at its latest version (or the pinned one), or the results of a search.
pub async fn catalog(State(app): State<AppState>, Query(params): Query<CatalogParams>) -> Response {
    match catalog_page(&app, params).await {
        Ok(page) => page.into_response(),
        Err(error) => error_page(error),
    }
}

async fn catalog_page(app: &AppState, params: CatalogParams) -> ApiResult<CatalogPage> {
    let pins = Pins::parse(&params.ontology, &None)?;
    let query = params.q.unwrap_or_default();
    let words = terms(&query);
    let hits = match words.is_empty() {
        true => None,
        false => Some(app.catalog.index().search(&words, SEARCH_RESULTS).await?),
    };

    let history = app.catalog.read();
    let release = resolve_release(&history, pins.ontology.as_ref())?;
    let pinned = history.latest_release().is_some_and(|latest| latest.seq != release.seq);
    let pin = pinned.then_some(&release.version);

    // Search covers the latest versions only, so its results link to those.
    let results = hits.map(|hits| {
        hits.into_iter()
            .filter_map(|hit| {
                let (id, kpi) = history.kpis.get_key_value(hit.kpi_id.as_str())?;
                Some(line(id, kpi.latest(), None, Some(markdown::render_inline(&hit.summary))))
            })
            .collect()
    });
    let domains = history
        .domains
        .iter()
        .filter_map(|(id, domain)| {
            let info = domain.at_release(release.seq)?;
            let mut kpis: Vec<KpiLine> =
                history.domain_kpis_at(id, release.seq).into_iter().map(|(id, v)| line(id, v, pin, None)).collect();
            kpis.sort_by_cached_key(|kpi| kpi.name.to_lowercase());
            Some(DomainSection {
                id: id.to_string(),
                name: info.name.clone(),
                description: info.description.clone(),
                kpis,
            })
        })
        .collect();
    Ok(CatalogPage { ontology_version: release.version.to_string(), pinned, query, results, domains })
}

/// Shows every section of a KPI version, its history and the links to its JSON.
pub async fn kpi(
    State(app): State<AppState>,
    Path((domain, key)): Path<(String, String)>,
    Query(params): Query<KpiParams>,
) -> Response {
    match kpi_page(&app, &domain, &key, &params).await {
        Ok(page) => page.into_response(),
        Err(error) => error_page(error),
    }
}

async fn kpi_page(app: &AppState, domain: &str, key: &str, params: &KpiParams) -> ApiResult<KpiPage> {
    let id = parse_kpi(domain, key)?;
    let pins = Pins::parse(&params.ontology, &params.version)?;
    let resolved = resolve_kpi(&app.catalog.read(), &id, &pins)?;
    let body = app.catalog.kpi_body(&id, &resolved.version).await?;
    let record = record_from_body(body.bytes())?;

    // Under an ontology pin, links to related KPIs stay in that ontology version.
    let ontology = params.ontology.is_some().then_some(&resolved.release.version);
    let history = app.catalog.read();
    Ok(page_of(&history, &record, &resolved.version, resolved.release.seq, ontology))
}

fn page_of(
    history: &History,
    record: &KpiRecord,
    version: &Arc<KpiVersion>,
    release_seq: u32,
    ontology: Option<&semver::Version>,
) -> KpiPage {
    let id = &record.id;
    let kpi = history.kpis.get(id);
    let name_at = |other: &KpiId| {
        history
            .kpis
            .get(other)
            .and_then(|k| k.at_release(release_seq).or(Some(k.latest())))
            .map_or_else(|| other.to_string(), |v| v.name.clone())
    };
    let link_to = |other: &KpiId| Link { label: name_at(other), url: kpi_page_url(other, ontology) };
    let release_version = |seq: u32| history.release(seq).map(|r| r.version.to_string()).unwrap_or_default();

    let latest = kpi.map(|k| k.latest()).filter(|latest| latest.version != record.version);
    let mut lines: Vec<HistoryLine> = Vec::new();
    if let Some(kpi) = kpi {
        let mut previous: Option<&semver::Version> = None;
        for entry in &kpi.versions {
            lines.push(HistoryLine {
                version: entry.version.to_string(),
                url: links::kpi_html(id, &entry.version),
                ontology_version: release_version(entry.release_seq),
                bump: entry.bump.map(|b| label(&b)).unwrap_or_else(|| "First version".to_owned()),
                title: entry.title.clone(),
                current: entry.version == record.version,
                diff_url: previous.map(|from| {
                    format!(
                        "/api/ontology/{}/{}/diff.json?from={from}&to={}",
                        id.domain_str(),
                        id.key_str(),
                        entry.version
                    )
                }),
            });
            previous = Some(&entry.version);
        }
    }
    // The history keeps versions in ascending order; the page lists the newest first.
    lines.reverse();

    // Numbers as the JSON writes them, so 1e308 stays short.
    let number = |value: BoundValue| serde_json::to_string(&value).unwrap_or_default();
    let bounds = record.bounds.as_ref().and_then(|bounds| match (bounds.min, bounds.max) {
        (Some(min), Some(max)) => Some(format!("{} to {}", number(min), number(max))),
        (Some(min), None) => Some(format!("at least {}", number(min))),
        (None, Some(max)) => Some(format!("at most {}", number(max))),
        (None, None) => None,
    });

    KpiPage {
        id: id.to_string(),
        name: record.name.clone(),
        version: record.version.to_string(),
        released_in: release_version(version.release_seq),
        latest: latest.map(|latest| Link { label: latest.version.to_string(), url: kpi_page_url(id, None) }),
        latest_deprecated: latest.is_some_and(|latest| latest.status == "deprecated"),
        kind: label(&record.kind),
        unit: record.unit.clone(),
        bounds,
        tier: label(&record.tier),
        deprecated: version.status == "deprecated",
        replaced_by: record.replaced_by.as_ref().map(link_to),
        summary: markdown::render(&record.summary),
        definition: markdown::render(&record.definition),
        formula: markdown::render(&record.formula),
        why_it_matters: markdown::render(&record.why_it_matters),
        how_to_interpret: markdown::render(&record.how_to_interpret),
        pitfalls: record.pitfalls.iter().map(|pitfall| markdown::render_inline(pitfall)).collect(),
        related: record.related.iter().map(link_to).collect(),
        standard: record.source.standard.as_ref().map(|standard| Standard {
            name: standard.name.clone(),
            issuer: standard.issuer.clone(),
            reference: standard.reference.clone(),
            url: standard.url.clone(),
        }),
        first_published: record.source.first_published.to_string(),
        promoted_at: record.source.promoted_at.as_ref().map(ToString::to_string),
        stages: record
            .stage_relevance
            .iter()
            .map(|relevance| Stage { stage: label(&relevance.stage), priority: label(&relevance.priority) })
            .collect(),
        functions: record.owning_functions.iter().map(label).collect(),
        json_url: links::kpi(id, Some(&record.version)),
        versions_url: links::kpi_versions(id),
        history: lines,
    }
}
