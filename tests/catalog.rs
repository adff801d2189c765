//! The starter catalog and the `validate` command: every starter file is canonical and
//! valid, the fixed facts of the customers domain hold, and `validate` reports each broken
//! rule with its file and field.

mod common;

use std::path::Path;
use std::process::Command;

use ontology_core::{Catalog, KpiId, Tier, format};

fn validate(dir: &Path) -> (bool, String) {
    let output = Command::new(common::binary()).arg("validate").arg(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn starter_catalog_validates() {
    let (ok, output) = validate(&common::starter_catalog());
    assert!(ok, "{output}");
    assert!(output.contains("no problems"), "{output}");
}

#[test]
fn starter_files_round_trip_canonically() {
    let root = common::starter_catalog();
    let mut checked = 0;
    for entry in walk(&root) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let name = entry.file_name().unwrap().to_str().unwrap();
        let rewritten = if name == "ontology.toml" {
            format::ontology_to_toml(&format::ontology_from_toml(&text).unwrap())
        } else if name == "domain.toml" {
            format::domain_to_toml(&format::domain_from_toml(&text).unwrap())
        } else {
            let record = format::kpi_from_toml(&text).unwrap_or_else(|e| panic!("{}: {e:?}", entry.display()));
            let written = format::kpi_to_toml(&record);
            assert_eq!(format::kpi_from_toml(&written).unwrap(), record, "{} reads back equal", entry.display());
            written
        };
        assert_eq!(rewritten, text, "{} is not in canonical form", entry.display());
        checked += 1;
    }
    assert!(checked > 40, "{checked} files checked");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn starter() -> Catalog {
    let loaded = Catalog::read_dir(&common::starter_catalog()).unwrap();
    assert!(loaded.problems.is_empty());
    loaded.catalog
}

fn kpi<'a>(catalog: &'a Catalog, id: &str) -> &'a ontology_core::KpiRecord {
    catalog.kpis.get(&KpiId::parse(id).unwrap()).unwrap_or_else(|| panic!("{id} is missing"))
}

#[test]
fn starter_catalog_has_breadth() {
    let catalog = starter();
    assert!(catalog.kpis.len() >= 40, "{} KPIs", catalog.kpis.len());
    assert!(catalog.domains.len() >= 5, "{} domains", catalog.domains.len());
    for id in [
        "customers.key_initiatives",
        "customers.gross_revenue_retention",
        "customers.logo_churn_rate",
        "customers.net_revenue_retention",
        "customers.nps_score",
        "customers.retention_insights",
        "customers.expansion_opportunities",
        "customers.churn_risks",
    ] {
        kpi(&catalog, id);
    }
    for (id, record) in &catalog.kpis {
        assert!(record.pitfalls.len() >= 2, "{id} names its pitfalls");
        assert!(!record.related.is_empty(), "{id} relates to other KPIs");
        assert!(record.formula.len() >= 100, "{id} has a formula of substance");
    }
}

#[test]
fn customers_fixed_facts() {
    let catalog = starter();

    let grr = kpi(&catalog, "customers.gross_revenue_retention");
    assert_eq!(grr.tier, Tier::Published);
    let standard = grr.source.standard.as_ref().unwrap();
    assert!(standard.issuer.contains("SaaS Metrics Standards Board"), "{}", standard.issuer);
    assert_eq!(grr.bounds.as_ref().unwrap().max.unwrap().0, 100.0);
    assert!(grr.how_to_interpret.contains("customers.net_revenue_retention"));
    assert!(grr.pitfalls.iter().any(|p| p.contains("GRR and NRR as substitutes")));
    assert!(grr.formula.to_lowercase().contains("expansion"));

    let churn = kpi(&catalog, "customers.logo_churn_rate");
    assert_eq!(churn.tier, Tier::Published);
    let standard = churn.source.standard.as_ref().unwrap();
    assert!(standard.issuer.contains("KeyBanc") && standard.issuer.contains("Sapphire"), "{}", standard.issuer);
    assert_eq!(standard.reference, "2024, 15th annual");
    assert!(churn.pitfalls.iter().any(|p| p.contains("12")), "the annualisation pitfall");

    let initiatives = kpi(&catalog, "customers.key_initiatives");
    assert_eq!(initiatives.tier, Tier::Editorial);
    assert_eq!(initiatives.source.first_published.to_string(), "2026-04-01");
    assert!(initiatives.pitfalls.iter().any(|p| p.contains("owners") && p.contains("checkpoint")));
}

/// Published KPIs are anchored only to the standards and surveys known to define them.
#[test]
fn published_only_with_real_anchors() {
    let known = ["SaaS Metrics Standards Board", "KeyBanc", "Bain", "FASB", "ISO", "DORA"];
    for (id, record) in &starter().kpis {
        if let Some(standard) = &record.source.standard {
            assert!(known.iter().any(|k| standard.issuer.contains(k)), "{id} is anchored to {}", standard.issuer);
        }
    }
}

/// Writes a small valid tree, to break one rule at a time.
fn base_tree(dir: &Path) {
    let catalog = starter();
    let keep: Vec<KpiId> = [
        "customers.nps_score",
        "customers.logo_churn_rate",
        "customers.gross_revenue_retention",
        "customers.net_revenue_retention",
    ]
    .iter()
    .map(|id| KpiId::parse(id).unwrap())
    .collect();
    let mut small = catalog.clone();
    small.kpis.retain(|id, _| keep.contains(id));
    small.domains.retain(|id, _| id.as_str() == "customers");
    for record in small.kpis.values_mut() {
        let mut draft = record.clone().into_draft();
        draft.related.retain(|r| keep.contains(r));
        *record = draft.validate().unwrap();
    }
    small.write_dir(dir).unwrap();
    let (ok, output) = validate(dir);
    assert!(ok, "the base tree is valid: {output}");
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} contains `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn validate_reports_each_rule() {
    // (what breaks, the change, the file and field the report must name)
    type Breakage = fn(&Path);
    let cases: Vec<(&str, Breakage, &str)> = vec![
        ("TOML syntax", |d| edit(d, "customers/nps_score.toml", "name = ", "name = = "), "customers/nps_score.toml"),
        (
            "unknown field",
            |d| edit(d, "customers/nps_score.toml", "name = ", "colour = \"red\"\nname = "),
            "customers/nps_score.toml: colour",
        ),
        (
            "missing field",
            |d| edit(d, "customers/nps_score.toml", "why_it_matters = ", "why_it_matter = "),
            "customers/nps_score.toml",
        ),
        (
            "id and path",
            |d| edit(d, "customers/nps_score.toml", "id = \"customers.nps_score\"", "id = \"customers.other\""),
            "customers/nps_score.toml: id",
        ),
        (
            "published without standard",
            |d| {
                let path = d.join("customers/nps_score.toml");
                let text = std::fs::read_to_string(&path).unwrap();
                let cut = text.find("[source.standard]").unwrap();
                let rest = &text[cut..];
                let end = rest.find("\n\n").map(|i| cut + i).unwrap_or(text.len());
                std::fs::write(&path, format!("{}{}", &text[..cut], &text[end..].trim_start())).unwrap();
            },
            "customers/nps_score.toml: source.standard",
        ),
        (
            "editorial with standard",
            |d| edit(d, "customers/nps_score.toml", "tier = \"published\"", "tier = \"editorial\""),
            "customers/nps_score.toml: tier",
        ),
        (
            "related missing",
            |d| edit(d, "customers/nps_score.toml", "related = [", "related = [\n    \"customers.ghost\","),
            "customers/nps_score.toml: related[0]",
        ),
        (
            "replaced_by without deprecation",
            |d| {
                edit(
                    d,
                    "customers/nps_score.toml",
                    "status = \"active\"",
                    "status = \"active\"\nreplaced_by = \"customers.logo_churn_rate\"",
                )
            },
            "customers/nps_score.toml: replaced_by",
        ),
        (
            "replaced_by missing",
            |d| {
                edit(
                    d,
                    "customers/nps_score.toml",
                    "status = \"active\"",
                    "status = \"deprecated\"\nreplaced_by = \"customers.ghost\"",
                )
            },
            "customers/nps_score.toml: replaced_by",
        ),
        (
            "replaced_by deprecated",
            |d| {
                edit(
                    d,
                    "customers/nps_score.toml",
                    "status = \"active\"",
                    "status = \"deprecated\"\nreplaced_by = \"customers.logo_churn_rate\"",
                );
                edit(d, "customers/logo_churn_rate.toml", "status = \"active\"", "status = \"deprecated\"");
            },
            "customers/nps_score.toml: replaced_by",
        ),
        (
            "duplicate stage",
            |d| {
                edit(
                    d,
                    "customers/nps_score.toml",
                    "[[stage_relevance]]\nstage = \"seed\"",
                    "[[stage_relevance]]\nstage = \"public\"",
                )
            },
            "customers/nps_score.toml: stage_relevance",
        ),
        (
            "unsafe url",
            |d| edit(d, "customers/nps_score.toml", "url = \"https://", "url = \"javascript://"),
            "customers/nps_score.toml: source.standard.url",
        ),
        (
            "long name",
            |d| edit(d, "customers/nps_score.toml", "name = \"", &format!("name = \"{}", "x".repeat(130))),
            "customers/nps_score.toml: name",
        ),
        (
            "inverted bounds",
            |d| edit(d, "customers/nps_score.toml", "max = 100", "max = -200"),
            "customers/nps_score.toml: bounds",
        ),
        (
            "not canonical",
            |d| edit(d, "customers/nps_score.toml", "tier = ", "\ntier = "),
            "customers/nps_score.toml: file is not in canonical form",
        ),
        (
            "upper-case file name",
            |d| std::fs::rename(d.join("customers/nps_score.toml"), d.join("customers/NPS.toml")).unwrap(),
            "customers/NPS.toml: file name",
        ),
        (
            "reserved domain",
            |d| {
                std::fs::create_dir(d.join("index")).unwrap();
                std::fs::write(d.join("index/domain.toml"), "id = \"index\"\nname = \"x\"\ndescription = \"x\"\n")
                    .unwrap();
            },
            "index/domain.toml: folder name",
        ),
        (
            "missing domain file",
            |d| std::fs::remove_file(d.join("customers/domain.toml")).unwrap(),
            "customers/domain.toml: missing",
        ),
        (
            "domain id",
            |d| edit(d, "customers/domain.toml", "id = \"customers\"", "id = \"clients\""),
            "customers/domain.toml: id",
        ),
        ("missing ontology file", |d| std::fs::remove_file(d.join("ontology.toml")).unwrap(), "ontology.toml: missing"),
    ];

    for (rule, breakage, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        base_tree(dir.path());
        breakage(dir.path());
        let (ok, output) = validate(dir.path());
        assert!(!ok, "{rule}: validate exits non-zero");
        assert!(output.contains(expected), "{rule}: the report names `{expected}`:\n{output}");
    }
}

#[test]
fn validate_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    base_tree(dir.path());
    edit(dir.path(), "customers/nps_score.toml", "tier = \"published\"", "tier = \"editorial\"");
    edit(dir.path(), "customers/logo_churn_rate.toml", "related = [", "related = [\n    \"customers.ghost\",");
    edit(dir.path(), "customers/gross_revenue_retention.toml", "max = 100", "max = -5");
    let (ok, output) = validate(dir.path());
    assert!(!ok);
    assert!(output.contains("customers/nps_score.toml: tier"), "{output}");
    assert!(output.contains("customers/logo_churn_rate.toml: related[0]"), "{output}");
    assert!(output.contains("customers/gross_revenue_retention.toml: bounds"), "{output}");
    assert!(output.contains("3 problems"), "{output}");
}

#[test]
fn validate_missing_folder_fails() {
    let (ok, output) = validate(Path::new("/nonexistent/catalog"));
    assert!(!ok);
    assert!(output.contains("failed to read catalog tree"), "{output}");
}
