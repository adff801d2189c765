//! `releases.json` and the Atom feed of releases.

use std::sync::Arc;

use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Person, Text};
use axum::extract::State;
use axum::response::Response;

use crate::app::AppState;
use crate::catalog::Body;
use crate::catalog::render::{self, ReleaseEntry, ReleasesDocument, links};
use crate::problem::ApiResult;
use crate::representation::{ATOM, Caching, Conditional, JSON, Representation};

/// Releases listed in the feed; readers poll it and only need the recent ones.
const FEED_ENTRIES: usize = 50;

/// Every ontology version, newest first, with the KPI versions it introduced.
#[utoipa::path(
    get,
    path = "/api/ontology/releases.json",
    tag = "ontology",
    responses(
        (status = 200, description = "All releases, newest first", body = ReleasesDocument),
        (status = 304, description = "`If-None-Match` matched"),
    )
)]
pub async fn releases_json(State(app): State<AppState>, headers: Conditional) -> ApiResult<Response> {
    let body = app.catalog.releases_body();
    let latest = app.catalog.read().latest_release().cloned();
    Ok(Representation {
        body: &body,
        content_type: JSON,
        caching: Caching::Short,
        ontology_version: latest.as_ref().map(|r| &r.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}

/// Atom feed of the latest releases.
#[utoipa::path(
    get,
    path = "/api/ontology/releases.atom",
    tag = "ontology",
    responses(
        (status = 200, description = "Atom 1.0 feed of the latest releases", content_type = "application/atom+xml", body = String),
        (status = 304, description = "`If-None-Match` matched"),
    )
)]
pub async fn releases_atom(State(app): State<AppState>, headers: Conditional) -> ApiResult<Response> {
    let body = {
        let history = app.catalog.read();
        history
            .live
            .atom
            .get_or_init(|| {
                let entries = render::release_entries(&history);
                Arc::new(Body::new(atom_feed(&entries, app.config.public_url.as_deref())))
            })
            .clone()
    };
    let latest = app.catalog.read().latest_release().cloned();
    Ok(Representation {
        body: &body,
        content_type: ATOM,
        caching: Caching::Short,
        ontology_version: latest.as_ref().map(|r| &r.version_header),
        kpi_version: None,
    }
    .respond(&headers))
}

/// A stable entry id: the same release always gets the same UUID, derived from its version
/// and commit, so feed readers never see an entry twice.
fn entry_id(version: &str, commit: &str) -> String {
    let name = format!("ontology-registry:release:{version}:{commit}");
    format!("urn:uuid:{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()))
}

fn timestamp(text: &str) -> FixedDateTime {
    FixedDateTime::parse_from_rfc3339(text).unwrap_or_default()
}

fn absolute(base: Option<&str>, path: &str) -> String {
    match base {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path.to_owned(),
    }
}

fn atom_feed(releases: &[ReleaseEntry<'_>], public_url: Option<&str>) -> String {
    let entries: Vec<Entry> = releases
        .iter()
        .take(FEED_ENTRIES)
        .map(|release| {
            let version = release.ontology_version.to_string();
            let mut lines = Vec::new();
            for change in &release.changes {
                let from = change.from.map(|v| format!("{v} → ")).unwrap_or_default();
                lines.push(format!("{} {from}{}: {}", change.id, change.to, change.title));
            }
            let bump = release.bump.map(|b| format!(" ({b})")).unwrap_or_default();
            Entry {
                id: entry_id(&version, release.commit),
                title: Text::plain(format!("Ontology {version}{bump}: {}", release.title)),
                updated: timestamp(release.released_at),
                published: Some(timestamp(release.released_at)),
                links: vec![Link {
                    href: absolute(public_url, &links::catalog(Some(release.ontology_version))),
                    rel: "alternate".into(),
                    mime_type: Some("application/json".into()),
                    ..Default::default()
                }],
                content: Some(Content {
                    value: Some(lines.join("\n")),
                    content_type: Some("text".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();

    let updated = releases.first().map(|release| timestamp(release.released_at)).unwrap_or_default();
    let feed = Feed {
        id: format!("urn:uuid:{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"ontology-registry:releases")),
        title: Text::plain("KPI ontology releases"),
        updated,
        authors: vec![Person { name: "KPI ontology registry".into(), ..Default::default() }],
        links: vec![
            Link {
                href: absolute(public_url, "/api/ontology/releases.atom"),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            Link {
                href: absolute(public_url, "/api/ontology/releases.json"),
                rel: "alternate".into(),
                mime_type: Some("application/json".into()),
                ..Default::default()
            },
        ],
        entries,
        ..Default::default()
    };
    feed.to_string()
}
