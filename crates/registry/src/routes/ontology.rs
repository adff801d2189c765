//! The public read API under `/api/ontology/`.
//!
//! axum cannot route a parameter that is only part of a segment (`/{domain}.json`), so each
//! handler takes the whole segment, strips the `.json` suffix and parses the id. Fixed
//! names (`index.json`, `releases.json`, ...) are matched before a segment is read as a
//! domain, and the id grammar reserves those names.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ontology_core::pin::VersionPin;
use ontology_core::{DomainId, KpiId, KpiKey};
use serde::Deserialize;

use crate::app::AppState;
use crate::catalog::history::{History, KpiVersion, Release};
use crate::problem::{ApiError, ApiResult};
use crate::representation::{Caching, JSON, Representation};

/// The pins a request may carry.
#[derive(Debug, Default, Deserialize)]
pub struct PinParams {
    ontology: Option<String>,
    version: Option<String>,
}

struct Pins {
    ontology: Option<VersionPin>,
    version: Option<VersionPin>,
}

impl Pins {
    fn parse(params: &PinParams) -> ApiResult<Pins> {
        let parse = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    VersionPin::parse(text)
                        .map_err(|error| ApiError::invalid_version_requirement(format!("`{name}`: {error}")))
                })
                .transpose()
        };
        Ok(Pins {
            ontology: parse("ontology", &params.ontology)?,
            version: parse("version", &params.version)?,
        })
    }

    /// For catalog and domain endpoints, which only take `ontology`.
    fn parse_catalog(params: &PinParams) -> ApiResult<Pins> {
        if params.version.is_some() {
            return Err(ApiError::malformed_request(
                "`version` pins a KPI version and applies only to KPI endpoints; pin the catalog with `ontology`",
            ));
        }
        Pins::parse(params)
    }

    /// Whether the answer is fixed forever: an exact ontology pin fixes everything, and an
    /// exact KPI version pin fixes the answer when no ontology range can move.
    fn immutable(&self) -> bool {
        match (&self.ontology, &self.version) {
            (Some(ontology), _) => ontology.is_exact(),
            (None, Some(version)) => version.is_exact(),
            (None, None) => false,
        }
    }

    fn caching(&self) -> Caching {
        if self.immutable() { Caching::Immutable } else { Caching::Short }
    }
}

/// Resolves the release that answers a catalog-level request.
fn resolve_release(history: &History, pin: Option<&VersionPin>) -> ApiResult<Arc<Release>> {
    match pin {
        Some(pin) => history
            .select_release(pin)
            .cloned()
            .ok_or_else(|| ApiError::version_not_found(format!("no ontology version matches `{pin}`"))),
        None => history
            .latest_release()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the index holds no release"))),
    }
}

fn parse_domain(segment: &str) -> ApiResult<DomainId> {
    DomainId::parse(segment).map_err(|error| ApiError::invalid_id(error.to_string()))
}

fn strip_json<'a>(segment: &'a str, what: &str) -> ApiResult<&'a str> {
    segment
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(format!("no such path: {what} paths end in `.json`")))
}

/// Query parameters of the top-level documents.
#[derive(Debug, Default, Deserialize)]
pub struct SegmentParams {
    #[serde(flatten)]
    pins: PinParams,
    q: Option<String>,
    limit: Option<String>,
}

/// `GET /api/ontology/{segment}`: the catalog, a domain, or a fixed document.
pub async fn catalog_segment(
    State(app): State<AppState>,
    Path(segment): Path<String>,
    Query(params): Query<SegmentParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    match segment.as_str() {
        "index.json" => index(&app, &params.pins, &headers),
        "releases.json" => super::releases::releases_json(&app, &headers),
        "releases.atom" => super::releases::releases_atom(&app, &headers),
        "search.json" => {
            let limit = params
                .limit
                .as_deref()
                .map(|text| {
                    text.parse::<i64>()
                        .map_err(|_| ApiError::malformed_request(format!("`limit` must be a whole number, not `{text}`")))
                })
                .transpose()?;
            super::search::search(&app, params.q.as_deref(), limit, &headers).await
        }
        _ => domain(&app, strip_json(&segment, "domain")?, &params.pins, &headers).await,
    }
}

fn index(app: &AppState, params: &PinParams, headers: &HeaderMap) -> ApiResult<Response> {
    let pins = Pins::parse_catalog(params)?;
    let release = resolve_release(&app.catalog.read(), pins.ontology.as_ref())?;

    let body = app.catalog.index_body(&release, pins.ontology.is_some());
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(headers))
}

async fn domain(app: &AppState, segment: &str, params: &PinParams, headers: &HeaderMap) -> ApiResult<Response> {
    let id = parse_domain(segment)?;
    let pins = Pins::parse_catalog(params)?;
    let release = {
        let history = app.catalog.read();
        if !history.domains.contains_key(&id) {
            return Err(ApiError::not_found(format!("no domain `{id}`")));
        }
        resolve_release(&history, pins.ontology.as_ref())?
    };

    let body = app
        .catalog
        .domain_body(&id, &release)
        .await?
        .ok_or_else(|| ApiError::version_not_found(format!("domain `{id}` is not in ontology {}", release.version)))?;
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(headers))
}

fn parse_kpi(domain: &str, key: &str) -> ApiResult<KpiId> {
    let domain = parse_domain(domain)?;
    let key = KpiKey::parse(key).map_err(|error| ApiError::invalid_id(error.to_string()))?;
    Ok(KpiId::new(&domain, &key))
}

/// A KPI version chosen by the pins, with the release whose version the response names.
struct ResolvedKpi {
    version: Arc<KpiVersion>,
    release: Arc<Release>,
}

fn resolve_kpi(history: &History, id: &KpiId, pins: &Pins) -> ApiResult<ResolvedKpi> {
    let kpi = history
        .kpis
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;

    let (version, release) = match (&pins.ontology, &pins.version) {
        (Some(ontology), version_pin) => {
            let release = resolve_release(history, Some(ontology))?;
            let version = kpi.at_release(release.seq).ok_or_else(|| {
                ApiError::version_not_found(format!("KPI `{id}` is not in ontology {}", release.version))
            })?;
            if let Some(pin) = version_pin {
                if !pin.matches(&version.version) {
                    return Err(ApiError::version_not_found(format!(
                        "in ontology {}, `{id}` is at version {}, which does not match `{pin}`",
                        release.version, version.version
                    )));
                }
            }
            (version.clone(), release)
        }
        (None, Some(pin)) => {
            let version = kpi
                .select(pin)
                .ok_or_else(|| ApiError::version_not_found(format!("no version of `{id}` matches `{pin}`")))?;
            let release = history
                .release(version.release_seq)
                .cloned()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("release {} is missing", version.release_seq)))?;
            (version.clone(), release)
        }
        (None, None) => (kpi.latest().clone(), resolve_release(history, None)?),
    };
    Ok(ResolvedKpi { version, release })
}

/// `GET /api/ontology/{domain}/{key}.json`
pub async fn kpi(
    State(app): State<AppState>,
    Path((domain, file)): Path<(String, String)>,
    Query(params): Query<PinParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_kpi(&domain, strip_json(&file, "KPI")?)?;
    let pins = Pins::parse(&params)?;
    let resolved = resolve_kpi(&app.catalog.read(), &id, &pins)?;

    let body = if pins.immutable() {
        app.catalog.kpi_body(&id, &resolved.version).await?
    } else {
        app.catalog.live_kpi_body(&id, &resolved.version).await?
    };
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&resolved.release.version_header),
        kpi_version: Some(&resolved.version.version_header),
    }
    .respond(&headers))
}

/// `GET /api/ontology/{domain}/{key}/{document}`: `versions.json` or `diff.json`.
pub async fn kpi_document(
    State(app): State<AppState>,
    Path((domain, key, document)): Path<(String, String, String)>,
    Query(params): Query<super::diff::DocumentParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_kpi(&domain, &key)?;
    match document.as_str() {
        "versions.json" => versions(&app, &id, &params.pins, &headers),
        "diff.json" => super::diff::diff(&app, &id, &params, &headers).await,
        _ => Err(ApiError::not_found(format!(
            "no document `{document}` for a KPI: use versions.json or diff.json"
        ))),
    }
}

fn versions(app: &AppState, id: &KpiId, params: &PinParams, headers: &HeaderMap) -> ApiResult<Response> {
    let pins = Pins::parse_catalog(params)?;
    let release = {
        let history = app.catalog.read();
        if !history.kpis.contains_key(id) {
            return Err(ApiError::not_found(format!("no KPI `{id}`")));
        }
        resolve_release(&history, pins.ontology.as_ref())?
    };
    let body = app
        .catalog
        .versions_body(id, &release)
        .ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(headers))
}

/// Resolves a KPI version for the diff endpoint: an exact or range pin on its versions.
pub(super) fn resolve_kpi_pin(history: &History, id: &KpiId, name: &str, value: &str) -> ApiResult<Arc<KpiVersion>> {
    let pin = VersionPin::parse(value)
        .map_err(|error| ApiError::invalid_version_requirement(format!("`{name}`: {error}")))?;
    let kpi = history
        .kpis
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;
    kpi.select(&pin)
        .cloned()
        .ok_or_else(|| ApiError::version_not_found(format!("`{name}`: no version of `{id}` matches `{pin}`")))
}

pub(super) fn pin_is_exact(value: &str) -> bool {
    VersionPin::parse(value).is_ok_and(|pin| pin.is_exact())
}
