//! The public catalog pages over HTTP: the catalog and search at `/`, and the KPI pages
//! that every record's `links.html` points to.

mod common;

use ontology_core::Bump;
use serde_json::Value;

use common::catalog_edits::publish_edit;
use common::history::registry_with_history;
use common::{Backend, TestRegistry, TestServer};

const GRR_PAGE: &str = "/ontology/customers/gross_revenue_retention";

/// Fetches a page, checks that it is HTML with the pages' security headers, and returns
/// its status and text.
async fn page(server: &TestServer, path: &str) -> (u16, String) {
    let response = server.get(path).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8", "{path}");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    (status, response.text().await.unwrap())
}

/// Returns the inside of the page's `<section>` with this id.
fn section<'a>(text: &'a str, id: &str) -> &'a str {
    let open = format!("<section id=\"{id}\">");
    let start = text.find(&open).unwrap_or_else(|| panic!("no section {id}")) + open.len();
    &text[start..start + text[start..].find("</section>").unwrap()]
}

async fn every_record_links_to_its_page(backend: Backend) {
    let (_registry, server, _) = registry_with_history(backend).await;

    let (_, index) = server.get_json("/api/ontology/index.json").await;
    let mut checked = 0;
    for domain in index["domains"].as_array().unwrap() {
        for kpi in domain["kpis"].as_array().unwrap() {
            let id = kpi["id"].as_str().unwrap();
            let (domain, key) = id.split_once('.').unwrap();
            let (_, record) = server.get_json(&format!("/api/ontology/{domain}/{key}.json")).await;
            let link = record["links"]["html"].as_str().unwrap();
            let (status, text) = page(&server, link).await;
            assert_eq!(status, 200, "{link}");
            let version = record["version"].as_str().unwrap();
            assert!(text.contains(&format!("id=\"version\">{version}</strong>")), "{link} shows another version");
            assert!(text.contains(&format!("<code>{id}</code>")), "{link} shows another KPI");
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} pages");
}

async fn kpi_pages_follow_pins(backend: Backend) {
    let (_registry, server, _) = registry_with_history(backend).await;

    // The latest version, with the whole history newest first and no notice.
    let (status, latest) = page(&server, GRR_PAGE).await;
    assert_eq!(status, 200);
    assert!(latest.contains("id=\"version\">2.0.0</strong>"));
    assert!(section(&latest, "formula").contains("at list price"), "the 2.0.0 formula");
    assert!(!latest.contains("id=\"not-latest\""));
    let positions: Vec<usize> = ["2.0.0", "1.1.1", "1.1.0", "1.0.0"]
        .iter()
        .map(|v| latest.find(&format!(">{v}</")).unwrap_or_else(|| panic!("history lacks {v}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "history not newest first: {positions:?}");
    assert!(latest.contains("diff.json?from=1.1.1&#38;to=2.0.0"), "a diff link to the previous version");
    assert!(latest.contains("<a href=\"/?ontology=2.0.0\">2.0.0</a>"), "a link to the catalog of that release");

    // An exact pin shows that version and points to the latest.
    let (status, old) = page(&server, &format!("{GRR_PAGE}?version=1.0.0")).await;
    assert_eq!(status, 200);
    assert!(old.contains("id=\"version\">1.0.0</strong>"));
    assert!(old.contains("id=\"not-latest\""));
    assert!(old.contains("Gross Revenue Retention (GRR)"), "the 1.0.0 name");
    assert!(!section(&old, "formula").contains("at list price"), "the 1.0.0 formula");

    // Ranges and ontology pins resolve as in the JSON API.
    let (_, range) = page(&server, &format!("{GRR_PAGE}?version=^1")).await;
    assert!(range.contains("id=\"version\">1.1.1</strong>"));
    let (_, as_of) = page(&server, &format!("{GRR_PAGE}?ontology=1.1.0")).await;
    assert!(as_of.contains("id=\"version\">1.1.0</strong>"));
    // Under an ontology pin, related KPIs open in the same ontology version.
    let related = section_list(&as_of, "related");
    assert!(related.contains("href=\"/ontology/customers/net_revenue_retention?ontology=1.1.0\""), "{related}");

    // The catalog pinned to an older version shows a notice and links KPIs as of that version.
    let (status, old_catalog) = page(&server, "/?ontology=1.1.0").await;
    assert_eq!(status, 200);
    assert!(old_catalog.contains("id=\"pinned\""));
    assert!(old_catalog.contains("Ontology version 1.1.0."));
    assert!(old_catalog.contains("href=\"/ontology/customers/gross_revenue_retention?ontology=1.1.0\""));
    let (_, latest_catalog) = page(&server, "/?ontology=^2").await;
    assert!(!latest_catalog.contains("id=\"pinned\""), "the latest version is not marked as pinned");
    let (status, _) = page(&server, "/?ontology=9").await;
    assert_eq!(status, 404);
}

/// Returns the inside of the page's `<ul>` with this id.
fn section_list<'a>(text: &'a str, id: &str) -> &'a str {
    let open = format!("<ul id=\"{id}\">");
    let start = text.find(&open).unwrap_or_else(|| panic!("no list {id}")) + open.len();
    &text[start..start + text[start..].find("</ul>").unwrap()]
}

async fn kpi_page_errors(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let cases = [
        ("/ontology/customers/no_such_kpi", 404, "no KPI `customers.no_such_kpi`"),
        ("/ontology/Customers/nps_score", 400, "Invalid id"),
        ("/ontology/customers/nps_score?version=banana", 400, "Invalid version requirement"),
        ("/ontology/customers/nps_score?version=9", 404, "no version of `customers.nps_score` matches"),
    ];
    for (path, expected, text) in cases {
        let (status, body) = page(&server, path).await;
        assert_eq!(status, expected, "{path}");
        assert!(body.contains(text), "{path}: {body}");
    }

    // A request value quoted in the detail stays text: a backtick cannot end a code span
    // and smuggle in a link or an image.
    let hostile = "/ontology/customers/nps_score?version=%60%20%5Bsign%20in%5D(http%3A%2F%2F127.0.0.1%3A9%2F)%20%21%5Bx%5D(http%3A%2F%2F127.0.0.1%3A9%2Fp.png)";
    let (status, body) = page(&server, hostile).await;
    assert_eq!(status, 400);
    let detail = &body[body.find("id=\"detail\"").unwrap()..];
    let detail = &detail[..detail.find("</p>").unwrap()];
    assert!(!detail.contains("<a"), "{detail}");
    assert!(!detail.contains("<img"), "{detail}");
    assert!(detail.contains("[sign in](http://127.0.0.1:9/)"), "{detail}");

    // Errors that the router or the framework raises are pages too, off the API.
    let framework = [
        ("/no/such/page", 404),
        ("/ontology/customers/nps_score/", 404),
        ("/ontology/customers", 404),
        ("/ontology/customers/nps_score?version=1.0.0&version=2.0.0", 400),
        ("/?q=a&q=b", 400),
    ];
    for (path, expected) in framework {
        let (status, body) = page(&server, path).await;
        assert_eq!(status, expected, "{path}");
        assert!(body.contains("<h1>"), "{path}: {body}");
    }
    let response = server.client.post(server.url("/ontology/customers/nps_score")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");

    // The body limit of the sign-in form is named on its page.
    let single_use = reqwest::Client::builder().no_gzip().build().unwrap();
    let large = [("username", "admin".to_owned()), ("password", "x".repeat(20 * 1024))];
    let response = single_use.post(server.url("/login")).form(&large).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let text = response.text().await.unwrap();
    assert!(text.contains("16384 bytes"), "{text}");

    // The API still responds with problem documents.
    let response = server.get("/api/no/such/route").await;
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

async fn catalog_lists_and_searches(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    let server = registry.start().await;

    let (status, catalog) = page(&server, "/").await;
    assert_eq!(status, 200);
    let (_, index) = server.get_json("/api/ontology/index.json").await;
    let mut kpis = 0;
    for domain in index["domains"].as_array().unwrap() {
        let id = domain["id"].as_str().unwrap();
        assert!(catalog.contains(&format!("id=\"domain-{id}\"")), "domain {id} is listed");
        kpis += domain["kpis"].as_array().unwrap().len();
    }
    assert_eq!(catalog.matches("href=\"/ontology/").count(), kpis, "one link per KPI");
    assert!(catalog.contains("badge published"));
    assert!(catalog.contains("badge editorial"));

    // A domain lists its KPIs by name, as a reader looks for them.
    let start = catalog.find("id=\"domain-customers\"").unwrap();
    let customers = &catalog[start..start + catalog[start..].find("</section>").unwrap()];
    let names: Vec<String> = customers
        .split("<a href=\"/ontology/")
        .skip(1)
        .map(|link| link.split('>').nth(1).unwrap().split('<').next().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.len() >= 8, "{names:?}");

    // Pages of a signed-in person are never cached.
    let response = server.get("/login").await;
    assert_eq!(response.headers()["cache-control"], "no-store");

    let (_, results) = page(&server, "/?q=logo+churn").await;
    assert!(results.contains("id=\"results\""));
    assert!(results.contains("href=\"/ontology/customers/logo_churn_rate\""));
    let (_, nothing) = page(&server, "/?q=zzzzqqq").await;
    assert!(nothing.contains("id=\"no-results\""));

    // The query comes back into the page as text, never as markup.
    let (_, hostile) = page(&server, "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!hostile.contains("<script>"), "{hostile}");
    assert!(hostile.contains("&#60;script&#62;alert(1)"), "{hostile}");
}

async fn prose_rendered_safely(backend: Backend) {
    let registry = TestRegistry::new(backend).await;
    assert!(registry.start().await.stop().success());
    let hostile = "Counts **logos**. <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n\
                   [click](javascript:alert(3)) [data](data:text/html,hi) ![pixel](data:image/png;base64,AAAA) \
                   [standard](https://example.org/grr)";
    publish_edit(&registry.repository(), "customers.gross_revenue_retention", Bump::Patch, "Hostile prose", |d| {
        d.definition = hostile.into();
    });
    let server = registry.start().await;

    let (status, text) = page(&server, GRR_PAGE).await;
    assert_eq!(status, 200);
    let definition = section(&text, "definition");
    assert!(definition.contains("<strong>logos</strong>"), "{definition}");
    assert!(definition.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{definition}");
    assert!(!definition.contains("<script"), "{definition}");
    assert!(!definition.contains("<img src=\"x\""), "{definition}");
    assert!(!definition.contains("href=\"javascript:"), "{definition}");
    assert!(!definition.contains("href=\"data:"), "{definition}");
    assert!(!definition.contains("src=\"data:"), "{definition}");
    assert!(definition.contains("href=\"https://example.org/grr\""), "{definition}");

    // The JSON keeps the text exactly as written.
    let (_, record): (u16, Value) = server.get_json("/api/ontology/customers/gross_revenue_retention.json").await;
    assert_eq!(record["definition"], hostile);
}

on_each_backend!(
    every_record_links_to_its_page,
    kpi_pages_follow_pins,
    kpi_page_errors,
    catalog_lists_and_searches,
    prose_rendered_safely,
);
