//! The public read API under `/api/ontology/`.
//!
//! axum cannot route a parameter that is only part of a segment (`/{domain}.json`), so the
//! domain and KPI handlers take the whole segment, strip the `.json` suffix and parse the
//! id. Fixed names (`index.json`, `releases.json`, ...) are static routes, which the router
//! prefers over a parameter, and the id grammar reserves those names.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ontology_core::pin::VersionPin;
use ontology_core::{DomainId, KpiId, KpiKey};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::catalog::history::{History, KpiVersion, Release};
use crate::openapi::{Problem, docs};
use crate::problem::{ApiError, ApiResult};
use crate::representation::{Caching, Conditional, JSON, Representation};

/// Pin of the whole catalog.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Ontology version: exact (`1.2.0`, `=1.2.0`) or a Cargo-style range (`^1`, `~1.2`,
    /// `>=1.1, <2`), resolved to the highest match.
    ontology: Option<String>,
    /// Rejected with a clear error: `version` pins KPIs and belongs on KPI endpoints.
    #[param(ignore)]
    version: Option<String>,
}

/// Pins of a KPI request.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// Ontology version, exact or a range: the KPI as it was in that catalog version.
    ontology: Option<String>,
    /// KPI version, exact or a range. With `ontology`, the KPI in that catalog version
    /// must also match this.
    version: Option<String>,
}

pub struct Pins {
    pub ontology: Option<VersionPin>,
    pub version: Option<VersionPin>,
}

impl Pins {
    pub fn parse(ontology: &Option<String>, version: &Option<String>) -> ApiResult<Pins> {
        let parse = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    VersionPin::parse(text)
                        .map_err(|error| ApiError::invalid_version_requirement(format!("`{name}`: {error}")))
                })
                .transpose()
        };
        Ok(Pins { ontology: parse("ontology", ontology)?, version: parse("version", version)? })
    }

    pub fn catalog(query: &CatalogQuery) -> ApiResult<Pins> {
        if query.version.is_some() {
            return Err(ApiError::malformed_request(
                "`version` pins a KPI version and applies only to KPI endpoints; pin the catalog with `ontology`",
            ));
        }
        Pins::parse(&query.ontology, &None)
    }

    fn kpi(query: &KpiQuery) -> ApiResult<Pins> {
        Pins::parse(&query.ontology, &query.version)
    }

    /// Whether the response is fixed forever: an exact ontology pin fixes everything, and an
    /// exact KPI version pin fixes the response when no ontology range can move.
    fn immutable(&self) -> bool {
        match (&self.ontology, &self.version) {
            (Some(ontology), _) => ontology.is_exact(),
            (None, Some(version)) => version.is_exact(),
            (None, None) => false,
        }
    }

    pub fn caching(&self) -> Caching {
        if self.immutable() { Caching::Immutable } else { Caching::Short }
    }
}

/// Resolves the release that serves a catalog-level request.
pub fn resolve_release(history: &History, pin: Option<&VersionPin>) -> ApiResult<Arc<Release>> {
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

pub fn parse_kpi(domain: &str, key: &str) -> ApiResult<KpiId> {
    let domain = parse_domain(domain)?;
    let key = KpiKey::parse(key).map_err(|error| ApiError::invalid_id(error.to_string()))?;
    Ok(KpiId::new(&domain, &key))
}

fn strip_json<'a>(segment: &'a str, what: &str) -> ApiResult<&'a str> {
    segment
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(format!("no such path: {what} paths end in `.json`")))
}

/// The catalog: every domain with its KPIs' ids, names, tiers and versions.
#[utoipa::path(
    get,
    path = "/api/ontology/index.json",
    tag = "ontology",
    params(CatalogQuery),
    responses(
        (status = 200, description = "The catalog at the resolved ontology version", body = docs::IndexDocument,
         headers(("Ontology-Version" = String, description = "The ontology version that answered"),
                 ("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_version_requirement`, or `malformed_request` for a `version` pin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`version_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn index(
    State(app): State<AppState>,
    Query(query): Query<CatalogQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let pins = Pins::catalog(&query)?;
    let release = resolve_release(&app.catalog.read(), pins.ontology.as_ref())?;

    let body = app.catalog.index_body(&release, pins.ontology.is_some());
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}

/// A domain with the full records of its KPIs.
#[utoipa::path(
    get,
    path = "/api/ontology/{domain_file}",
    tag = "ontology",
    params(
        ("domain_file" = String, Path, description = "Domain id followed by `.json`, such as `customers.json`"),
        CatalogQuery,
    ),
    responses(
        (status = 200, description = "The domain at the resolved ontology version", body = docs::DomainDocument,
         headers(("Ontology-Version" = String), ("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_id`, `invalid_version_requirement` or `malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` (no such domain) or `version_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn domain(
    State(app): State<AppState>,
    Path(domain_file): Path<String>,
    Query(query): Query<CatalogQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let id = parse_domain(strip_json(&domain_file, "domain")?)?;
    let pins = Pins::catalog(&query)?;
    let release = {
        let history = app.catalog.read();
        if !history.domains.contains_key(&id) {
            return Err(ApiError::not_found(format!("no domain `{id}`")));
        }
        resolve_release(&history, pins.ontology.as_ref())?
    };

    let body =
        app.catalog.domain_body(&id, &release).await?.ok_or_else(|| {
            ApiError::version_not_found(format!("domain `{id}` is not in ontology {}", release.version))
        })?;
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}

/// A KPI version chosen by the pins, with the release whose version the response names.
pub struct ResolvedKpi {
    pub version: Arc<KpiVersion>,
    pub release: Arc<Release>,
}

pub fn resolve_kpi(history: &History, id: &KpiId, pins: &Pins) -> ApiResult<ResolvedKpi> {
    let kpi = history.kpis.get(id).ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;

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

/// A KPI record with `released_in` and links; unpinned and range responses add live fields.
#[utoipa::path(
    get,
    path = "/api/ontology/{domain}/{key_file}",
    tag = "ontology",
    params(
        ("domain" = String, Path, description = "Domain id, such as `customers`"),
        ("key_file" = String, Path, description = "KPI key followed by `.json`, such as `key_initiatives.json`"),
        KpiQuery,
    ),
    responses(
        (status = 200, description = "The KPI version the pins resolve to", body = docs::KpiDocument,
         headers(("Ontology-Version" = String, description = "The ontology version that answered; for a `version` pin alone, the KPI version's `released_in`"),
                 ("Kpi-Version" = String), ("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_id` or `invalid_version_requirement`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` (no such KPI) or `version_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn kpi(
    State(app): State<AppState>,
    Path((domain, key_file)): Path<(String, String)>,
    Query(query): Query<KpiQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let id = parse_kpi(&domain, strip_json(&key_file, "KPI")?)?;
    let pins = Pins::kpi(&query)?;
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

/// Every version of a KPI, newest first.
#[utoipa::path(
    get,
    path = "/api/ontology/{domain}/{key}/versions.json",
    tag = "ontology",
    params(
        ("domain" = String, Path, description = "Domain id"),
        ("key" = String, Path, description = "KPI key"),
        CatalogQuery,
    ),
    responses(
        (status = 200, description = "The versions released up to the resolved ontology version", body = docs::VersionsDocument,
         headers(("Ontology-Version" = String), ("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_id`, `invalid_version_requirement` or `malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` or `version_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn versions(
    State(app): State<AppState>,
    Path((domain, key)): Path<(String, String)>,
    Query(query): Query<CatalogQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let id = parse_kpi(&domain, &key)?;
    let pins = Pins::catalog(&query)?;
    let release = {
        let history = app.catalog.read();
        if !history.kpis.contains_key(&id) {
            return Err(ApiError::not_found(format!("no KPI `{id}`")));
        }
        resolve_release(&history, pins.ontology.as_ref())?
    };
    let body = app.catalog.versions_body(&id, &release).ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: pins.caching(),
        ontology_version: Some(&release.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}

/// Resolves a KPI version for the diff endpoint: an exact or range pin on its versions.
pub fn resolve_kpi_pin(history: &History, id: &KpiId, name: &str, value: &str) -> ApiResult<Arc<KpiVersion>> {
    let pin = VersionPin::parse(value)
        .map_err(|error| ApiError::invalid_version_requirement(format!("`{name}`: {error}")))?;
    let kpi = history.kpis.get(id).ok_or_else(|| ApiError::not_found(format!("no KPI `{id}`")))?;
    kpi.select(&pin)
        .cloned()
        .ok_or_else(|| ApiError::version_not_found(format!("`{name}`: no version of `{id}` matches `{pin}`")))
}

pub fn pin_is_exact(value: &str) -> bool {
    VersionPin::parse(value).is_ok_and(|pin| pin.is_exact())
}
