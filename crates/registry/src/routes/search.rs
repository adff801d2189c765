//! `search.json`: full-text search over the latest KPI versions, ranked by the database.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use ontology_core::KpiId;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::catalog::Body;
use crate::catalog::render::links;
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};
use crate::representation::{Caching, Conditional, JSON, Representation};

const MAX_TERMS: usize = 16;
const MAX_TERM_CHARS: usize = 64;
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// The search words and the number of results.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to look for in names, summaries and definitions; the last one also matches as
    /// a prefix.
    q: Option<String>,
    /// Largest number of results, 1 to 100 (default 20).
    limit: Option<String>,
}

/// A KPI that matches, with its latest version.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Hit<'a> {
    #[schema(value_type = String)]
    id: &'a KpiId,
    name: &'a str,
    summary: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    tier: &'a str,
    status: &'a str,
    #[schema(value_type = String)]
    version: &'a Version,
    url: String,
    /// Relevance from the database's ranking function; higher is better.
    score: f64,
}

/// Search results, best first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchDocument<'a> {
    query: &'a str,
    #[schema(value_type = Option<String>)]
    ontology_version: Option<&'a Version>,
    results: Vec<Hit<'a>>,
}

/// Splits a query into words of letters and digits, lower-cased. Everything else is a
/// separator, so no operator of FTS5 or `tsquery` can reach the database.
pub fn terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().take(MAX_TERM_CHARS).collect::<String>().to_lowercase())
        .take(MAX_TERMS)
        .collect()
}

/// Full-text search over the names, summaries and definitions of the latest KPI versions.
#[utoipa::path(
    get,
    path = "/api/ontology/search.json",
    tag = "ontology",
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching KPIs, best first", body = SearchDocument),
        (status = 400, description = "`malformed_request`: no word in `q`, or a bad `limit`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(app): State<AppState>,
    Query(params): Query<SearchQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let query = params.q.as_deref().unwrap_or_default();
    let limit = params
        .limit
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::malformed_request(format!("`limit` must be a whole number, not `{text}`")))
        })
        .transpose()?;
    let words = terms(query);
    if words.is_empty() {
        return Err(ApiError::malformed_request("`q` must contain at least one word, such as ?q=retention"));
    }
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::malformed_request(format!("`limit` must be 1 to {MAX_LIMIT}")));
    }

    let hits = app.catalog.index().search(&words, limit).await?;

    let history = app.catalog.read();
    let release = history.latest_release().cloned();
    let results = hits
        .iter()
        .filter_map(|hit| {
            let (id, kpi) = history.kpis.get_key_value(hit.kpi_id.as_str())?;
            let latest = kpi.latest();
            Some(Hit {
                id,
                name: &latest.name,
                summary: &hit.summary,
                kind: &latest.kind,
                tier: &latest.tier,
                status: &latest.status,
                version: &latest.version,
                url: links::kpi(id, None),
                score: (hit.score * 1e6).round() / 1e6,
            })
        })
        .collect();
    let document = SearchDocument { query, ontology_version: release.as_ref().map(|r| &r.version), results };
    let body = Arc::new(Body::new(serde_json::to_vec(&document).map_err(anyhow::Error::from)?));
    drop(history);

    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: Caching::Short,
        ontology_version: release.as_ref().map(|r| &r.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}
