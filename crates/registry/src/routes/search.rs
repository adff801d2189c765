//! `search.json`: full-text search over the latest KPI versions, ranked by the database.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use ontology_core::KpiId;
use semver::Version;
use serde::Serialize;

use crate::app::AppState;
use crate::catalog::Body;
use crate::catalog::render::links;
use crate::problem::{ApiError, ApiResult};
use crate::representation::{Caching, JSON, Representation};

const MAX_TERMS: usize = 16;
const MAX_TERM_CHARS: usize = 64;
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

#[derive(Serialize)]
struct Hit<'a> {
    id: &'a KpiId,
    name: &'a str,
    summary: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    tier: &'a str,
    status: &'a str,
    version: &'a Version,
    url: String,
    score: f64,
}

#[derive(Serialize)]
struct SearchDocument<'a> {
    query: &'a str,
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

pub async fn search(app: &AppState, query: Option<&str>, limit: Option<i64>, headers: &HeaderMap) -> ApiResult<Response> {
    let query = query.unwrap_or_default();
    let words = terms(query);
    if words.is_empty() {
        return Err(ApiError::malformed_request(
            "`q` must contain at least one word, such as ?q=retention",
        ));
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
    let document = SearchDocument {
        query,
        ontology_version: release.as_ref().map(|r| &r.version),
        results,
    };
    let body = Arc::new(Body::new(serde_json::to_vec(&document).map_err(anyhow::Error::from)?));
    drop(history);

    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: Caching::Short,
        ontology_version: release.as_ref().map(|r| &r.version_header),
        kpi_version: None,
    }
    .respond(headers))
}
