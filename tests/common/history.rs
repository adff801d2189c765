//! A registry with a history of several ontology versions, shared by the tests of pinning,
//! diffs, releases and reindexing.

use std::collections::HashMap;

use ontology_core::Bump;

use super::catalog_edits::{Published, publish_edit};
use super::{Backend, TestRegistry, TestServer};

/// A registry with five ontology versions:
///
/// | ontology | change |
/// |---|---|
/// | 1.0.0 | starter catalog, GRR 1.0.0 |
/// | 1.1.0 | GRR 1.1.0 (name, minor) |
/// | 1.1.1 | GRR 1.1.1 (summary, patch) |
/// | 2.0.0 | GRR 2.0.0 (formula, major) |
/// | 2.1.0 | NRR 1.1.0 (related, minor) |
///
/// The server indexes 1.1.0 to 2.1.0 on its second start, as after a crash that left the
/// commits unindexed. Returns the bodies of exact pins read before those versions existed.
pub async fn registry_with_history(backend: Backend) -> (TestRegistry, TestServer, HashMap<&'static str, Vec<u8>>) {
    let registry = TestRegistry::new(backend).await;
    let first = registry.start().await;
    let mut before = HashMap::new();
    for path in [
        "/api/ontology/index.json?ontology=1.0.0",
        "/api/ontology/customers.json?ontology=1.0.0",
        "/api/ontology/customers/gross_revenue_retention.json?version=1.0.0",
    ] {
        let response = first.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        before.insert(path, response.bytes().await.unwrap().to_vec());
    }
    assert!(first.stop().success());

    let repository = registry.repository();
    let steps: Vec<Published> = vec![
        publish_edit(&repository, "customers.gross_revenue_retention", Bump::Minor, "Rename to GRR", |d| {
            d.name = "Gross revenue retention (GRR)".into();
        }),
        publish_edit(&repository, "customers.gross_revenue_retention", Bump::Patch, "Tighten the summary", |d| {
            d.summary = format!("{} Reported quarterly and annually.", d.summary);
        }),
        publish_edit(
            &repository,
            "customers.gross_revenue_retention",
            Bump::Major,
            "Measure on ARR at list price",
            |d| {
                d.formula = "Recurring revenue at period end from the starting cohort, excluding expansion, over that cohort's recurring revenue at period start, both at list price. Capped at 100 %.".into();
            },
        ),
        publish_edit(&repository, "customers.net_revenue_retention", Bump::Minor, "Relate NRR to logo churn", |d| {
            if !d.related.iter().any(|r| r.as_str() == "customers.logo_churn_rate") {
                d.related.push(ontology_core::KpiId::parse("customers.logo_churn_rate").unwrap());
            } else {
                d.related.retain(|r| r.as_str() != "customers.logo_churn_rate");
            }
        }),
    ];
    let versions: Vec<String> = steps.iter().map(|s| s.ontology_version.to_string()).collect();
    assert_eq!(versions, ["1.1.0", "1.1.1", "2.0.0", "2.1.0"]);

    let server = registry.start().await;
    (registry, server, before)
}
