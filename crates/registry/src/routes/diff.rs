//! `diff.json`: the field-by-field difference between two versions of a KPI, with the bump
//! the version rules require for it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ontology_core::{Bump, KpiId, bump};
use semver::Version;
use serde::{Deserialize, Serialize};

use super::ontology::{parse_kpi, pin_is_exact, resolve_kpi_pin};
use crate::app::AppState;
use crate::catalog::history::KpiVersion;
use crate::catalog::{Body, record_from_body};
use crate::openapi::Problem;
use crate::problem::{ApiError, ApiResult};
use crate::representation::{Caching, Conditional, JSON, Representation};

/// The two versions to compare.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older version: exact or a range, resolved to its highest match.
    from: Option<String>,
    /// The newer version: exact or a range, resolved to its highest match.
    to: Option<String>,
}

/// One field that differs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Change<'a> {
    field: &'a str,
    #[schema(value_type = Object)]
    before: &'a serde_json::Value,
    #[schema(value_type = Object)]
    after: &'a serde_json::Value,
}

/// The difference between two versions of a KPI with the bump the version rules require.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DiffDocument<'a> {
    #[schema(value_type = String)]
    id: &'a KpiId,
    #[schema(value_type = String)]
    from: &'a Version,
    #[schema(value_type = String)]
    to: &'a Version,
    bump: Option<Bump>,
    changes: Vec<Change<'a>>,
}

/// Field-by-field difference between two versions of a KPI.
#[utoipa::path(
    get,
    path = "/api/ontology/{domain}/{key}/diff.json",
    tag = "ontology",
    params(
        ("domain" = String, Path, description = "Domain id"),
        ("key" = String, Path, description = "KPI key"),
        DiffQuery,
    ),
    responses(
        (status = 200, description = "The changed fields and the minimum bump they require", body = DiffDocument),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_id`, `invalid_version_requirement`, or `malformed_request` when `from` or `to` is missing or `from` is newer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` or `version_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn diff(
    State(app): State<AppState>,
    Path((domain, key)): Path<(String, String)>,
    Query(params): Query<DiffQuery>,
    headers: Conditional,
) -> ApiResult<Response> {
    let id = &parse_kpi(&domain, &key)?;
    let (Some(from_text), Some(to_text)) = (&params.from, &params.to) else {
        return Err(ApiError::malformed_request(
            "diff.json needs both `from` and `to`, each a version or a range, such as ?from=1.0.0&to=2.0.0",
        ));
    };
    let (from, to): (Arc<KpiVersion>, Arc<KpiVersion>) = {
        let history = app.catalog.read();
        (resolve_kpi_pin(&history, id, "from", from_text)?, resolve_kpi_pin(&history, id, "to", to_text)?)
    };
    if from.version > to.version {
        return Err(ApiError::malformed_request(format!(
            "`from` ({}) is newer than `to` ({}): give the older version as `from`",
            from.version, to.version
        )));
    }

    let before = record_from_body(app.catalog.kpi_body(id, &from).await?.bytes())?;
    let after = record_from_body(app.catalog.kpi_body(id, &to).await?.bytes())?;
    let changes = bump::diff(&before, &after);
    let document = DiffDocument {
        id,
        from: &from.version,
        to: &to.version,
        bump: bump::minimum_bump(&changes),
        changes: changes
            .iter()
            .map(|change| Change { field: change.field, before: &change.before, after: &change.after })
            .collect(),
    };
    let body = Arc::new(Body::new(serde_json::to_vec(&document).map_err(anyhow::Error::from)?));

    let exact = pin_is_exact(from_text) && pin_is_exact(to_text);
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: if exact { Caching::Immutable } else { Caching::Short },
        ontology_version: None,
        kpi_version: None,
    }
    .respond(&headers))
}
