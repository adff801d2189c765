//! The OpenAPI 3.1 document of the whole API, generated from the route annotations.

use std::sync::Arc;

use axum::Extension;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use crate::catalog::Body;
use crate::problem::PROBLEM_JSON;
use crate::representation::{Caching, Conditional, JSON, Representation};

/// An error, as `application/problem+json` (RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type, `/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A fixed, machine-readable code such as `version_not_found`.
    pub code: String,
    /// For `validation_failed`: each broken rule with the field it concerns.
    pub errors: Option<Vec<ProblemField>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// Dotted path of the field, such as `source.standard.url`.
    pub field: String,
    pub message: String,
}

/// Schemas of documents that are assembled from bytes rather than serialised from one
/// struct, and re-exports of the others.
pub mod docs {
    pub use crate::catalog::render::{IndexDocument, KpiDocument, VersionsDocument};

    /// A domain at one ontology version with the full records of its KPIs.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct DomainDocument {
        pub ontology_version: String,
        pub id: String,
        pub name: String,
        pub description: String,
        pub kpis: Vec<KpiDocument<'static>>,
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "KPI ontology registry",
        description = "Structured, semver-versioned, git-backed definitions of board KPIs. \
            Pin the catalog with `ontology` and a KPI with `version`, exactly or by a Cargo-style range; \
            exact pins answer immutable, cacheable bytes.",
    ),
    tags(
        (name = "ontology", description = "The public read API"),
        (name = "operations", description = "Health checks and this document"),
    ),
    components(schemas(Problem, ProblemField, docs::DomainDocument))
)]
struct ApiDoc;

/// Routes whose parameter is a whole segment because the router cannot match `{id}.json`.
/// The document names them as clients call them.
const SEGMENT_ROUTES: [(&str, &str, &str, &str); 2] = [
    ("/api/ontology/{domain_file}", "/api/ontology/{domain}.json", "domain_file", "domain"),
    ("/api/ontology/{domain}/{key_file}", "/api/ontology/{domain}/{key}.json", "key_file", "key"),
];

/// Completes the document collected from the routes.
pub fn document(collected: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi().merge_from(collected);
    for (routed, documented, routed_param, documented_param) in SEGMENT_ROUTES {
        if let Some(mut item) = document.paths.paths.remove(routed) {
            rename_path_param(&mut item, routed_param, documented_param);
            document.paths.paths.insert(documented.to_owned(), item);
        }
    }
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            if operation.request_body.is_some() {
                document_body_rejections(operation);
            }
            if has_path_parameter(operation) {
                document_rejection(operation, "400", "`malformed_request`: a path parameter does not parse");
            }
        }
    }
    document
}

/// Adds the responses that every operation reading a body can give before its handler runs.
fn document_body_rejections(operation: &mut Operation) {
    document_rejection(operation, "400", "`malformed_request`: the body is not valid JSON or lacks a member");
    document_rejection(operation, "413", "`payload_too_large`: the body is larger than the route accepts");
    document_rejection(operation, "415", "`unsupported_media_type`: the body is not sent as `application/json`");
}

/// Adds a problem response for `status` unless the operation documents one already.
fn document_rejection(operation: &mut Operation, status: &str, description: &str) {
    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        let problem = ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name("Problem")))).build();
        RefOr::T(ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem).build())
    });
}

fn has_path_parameter(operation: &Operation) -> bool {
    operation.parameters.iter().flatten().any(|parameter| match parameter {
        RefOr::T(parameter) => parameter.parameter_in == utoipa::openapi::path::ParameterIn::Path,
        RefOr::Ref(_) => false,
    })
}

fn rename_path_param(item: &mut PathItem, from: &str, to: &str) {
    let operations: [&mut Option<Operation>; 4] = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
    for operation in operations.into_iter().flatten() {
        for parameter in operation.parameters.iter_mut().flatten() {
            let RefOr::T(parameter) = parameter else { continue };
            if parameter.name == from {
                parameter.name = to.to_owned();
                parameter.description = Some(match to {
                    "domain" => "Domain id, such as `customers`".to_owned(),
                    _ => "KPI key, such as `key_initiatives`".to_owned(),
                });
            }
        }
    }
}

/// The rendered document, shared with the handler and set once the routes are known.
#[derive(Clone, Default)]
pub struct OpenApiBody(Arc<std::sync::OnceLock<Arc<Body>>>);

impl OpenApiBody {
    pub fn set(&self, body: Arc<Body>) {
        let _ = self.0.set(body);
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of the whole API", content_type = "application/json"))
)]
pub async fn openapi_json(Extension(OpenApiBody(document)): Extension<OpenApiBody>, headers: Conditional) -> Response {
    let Some(body) = document.get() else {
        return crate::problem::ApiError::Internal(anyhow::anyhow!("the OpenAPI document is not rendered yet"))
            .into_response();
    };
    Representation { body, content_type: JSON, caching: Caching::Short, ontology_version: None, kpi_version: None }
        .respond(&headers)
}
