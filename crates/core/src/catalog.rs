//! A whole catalog at one version: the ontology's name, its domains and its KPIs, read from
//! and written to its file tree (`ontology.toml`, `<domain>/domain.toml`,
//! `<domain>/<key>.toml`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::format::{self, DomainInfo, OntologyInfo, ReadError};
use crate::id::{DomainId, KpiId, KpiKey};
use crate::record::{FieldError, KpiRecord, Status};

pub const ONTOLOGY_FILE: &str = "ontology.toml";
pub const DOMAIN_FILE: &str = "domain.toml";

/// A catalog whose every file parsed and honours the per-record rules. Cross-record rules
/// are checked by [`Catalog::check_links`].
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub ontology: OntologyInfo,
    pub domains: BTreeMap<DomainId, DomainInfo>,
    pub kpis: BTreeMap<KpiId, KpiRecord>,
}

/// One broken rule of a catalog tree, located by file and, where it applies, field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    fn new(file: impl Into<String>, field: Option<String>, message: impl Into<String>) -> Self {
        Self { file: file.into(), field, message: message.into() }
    }

    fn from_read_error(file: &str, error: ReadError) -> Vec<Problem> {
        match error {
            ReadError::Syntax { field, message } => vec![Problem::new(file, field, message)],
            ReadError::Rules(errors) => {
                errors.into_iter().map(|e| Problem::new(file, Some(e.field), e.message)).collect()
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {}: {}", self.file, field, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A file of a catalog tree: its path with `/` separators, relative to the root, and bytes.
pub struct CatalogFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The result of reading a tree: the catalog of every file that parsed, and every problem.
pub struct LoadedCatalog {
    pub catalog: Catalog,
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// Reads a catalog from its files, collecting every problem (parse errors, broken
    /// rules, paths that do not match ids, files not in canonical form, broken links).
    pub fn from_files(files: impl IntoIterator<Item = CatalogFile>) -> LoadedCatalog {
        let mut problems = Vec::new();
        let mut ontology = None;
        let mut domains = BTreeMap::new();
        let mut kpis = BTreeMap::new();
        let mut domain_dirs = BTreeMap::new();
        let mut unreadable = BTreeSet::new();

        for file in files {
            let path = file.path.as_str();
            let Ok(text) = std::str::from_utf8(&file.bytes) else {
                problems.push(Problem::new(path, None, "file is not valid UTF-8"));
                continue;
            };
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                [ONTOLOGY_FILE] => match format::ontology_from_toml(text) {
                    Ok(info) => {
                        check_canonical(path, text, &format::ontology_to_toml(&info), &mut problems);
                        ontology = Some(info);
                    }
                    Err(error) => problems.extend(Problem::from_read_error(path, error)),
                },
                [_] => {}
                [dir, name] => {
                    let domain = match DomainId::parse(dir) {
                        Ok(domain) => domain,
                        Err(error) => {
                            problems.push(Problem::new(path, None, format!("folder name: {error}")));
                            continue;
                        }
                    };
                    domain_dirs.entry(domain.clone()).or_insert_with(|| path.to_owned());

                    if *name == DOMAIN_FILE {
                        read_domain_file(path, text, &domain, &mut domains, &mut problems);
                    } else if let Some(key) = name.strip_suffix(".toml") {
                        read_kpi_file(path, text, &domain, key, &mut kpis, &mut problems);
                        if let Ok(key) = KpiKey::parse(key) {
                            let id = KpiId::new(&domain, &key);
                            if !kpis.contains_key(&id) {
                                unreadable.insert(id);
                            }
                        }
                    } else {
                        problems.push(Problem::new(
                            path,
                            None,
                            "unexpected file: a domain folder holds only `domain.toml` and `<key>.toml` files",
                        ));
                    }
                }
                _ => problems.push(Problem::new(
                    path,
                    None,
                    "unexpected nesting: KPI files live at `<domain>/<key>.toml`",
                )),
            }
        }

        let ontology = ontology.unwrap_or_else(|| {
            problems.push(Problem::new(
                ONTOLOGY_FILE,
                None,
                "missing: the catalog root needs an `ontology.toml` with `name` and `description`",
            ));
            OntologyInfo { name: String::new(), description: String::new() }
        });
        for (domain, first_path) in &domain_dirs {
            if !domains.contains_key(domain) {
                problems.push(Problem::new(
                    format!("{domain}/{DOMAIN_FILE}"),
                    None,
                    format!("missing: folder `{domain}` (holding {first_path}) needs a `domain.toml` with `id`, `name` and `description`"),
                ));
            }
        }

        let catalog = Catalog { ontology, domains, kpis };
        problems.extend(catalog.check_links_with(&unreadable));
        LoadedCatalog { catalog, problems }
    }

    /// Reads a catalog tree from a directory on disk.
    pub fn read_dir(root: &Path) -> std::io::Result<LoadedCatalog> {
        let mut files = Vec::new();
        collect_files(root, root, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Catalog::from_files(files))
    }

    /// Returns every file of the catalog in canonical form, sorted by path.
    pub fn to_files(&self) -> Vec<CatalogFile> {
        let mut files = vec![CatalogFile {
            path: ONTOLOGY_FILE.to_owned(),
            bytes: format::ontology_to_toml(&self.ontology).into_bytes(),
        }];
        for (id, info) in &self.domains {
            files.push(CatalogFile {
                path: format!("{id}/{DOMAIN_FILE}"),
                bytes: format::domain_to_toml(info).into_bytes(),
            });
        }
        for (id, record) in &self.kpis {
            files.push(CatalogFile { path: id.file_path(), bytes: format::kpi_to_toml(record).into_bytes() });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    /// Writes the catalog as a file tree under `root`, which must not hold another catalog.
    pub fn write_dir(&self, root: &Path) -> std::io::Result<()> {
        for file in self.to_files() {
            let path = root.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &file.bytes)?;
        }
        Ok(())
    }

    /// Checks the rules that span records: `related` and `replaced_by` name KPIs of this
    /// catalog, a replacement is active, and every KPI's domain has a `domain.toml`.
    pub fn check_links(&self) -> Vec<Problem> {
        self.check_links_with(&BTreeSet::new())
    }

    /// Checks links, counting KPIs whose file exists but did not read as present, so one
    /// broken file is reported once rather than again by every KPI that links to it.
    fn check_links_with(&self, unreadable: &BTreeSet<KpiId>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let status_of = |other: &KpiId| {
            self.kpis.get(other).map(|r| r.status).or_else(|| unreadable.contains(other).then_some(Status::Active))
        };
        for (id, record) in &self.kpis {
            let file = id.file_path();
            for error in check_record_links(record, status_of) {
                problems.push(Problem::new(&file, Some(error.field), error.message));
            }
            if !self.domains.contains_key(&id.domain()) {
                problems.push(Problem::new(&file, None, format!("domain `{}` has no `domain.toml`", id.domain_str())));
            }
        }
        problems
    }
}

/// Checks one record's links against a catalog, given a lookup of each KPI's status.
pub fn check_record_links(record: &KpiRecord, status_of: impl Fn(&KpiId) -> Option<Status>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (index, related) in record.related.iter().enumerate() {
        if related != &record.id && status_of(related).is_none() {
            errors.push(FieldError::new(
                format!("related[{index}]"),
                format!("`{related}` is not a KPI of this catalog"),
            ));
        }
    }
    if let Some(replacement) = &record.replaced_by {
        match status_of(replacement) {
            None => {
                errors.push(FieldError::new("replaced_by", format!("`{replacement}` is not a KPI of this catalog")))
            }
            Some(Status::Deprecated) => errors
                .push(FieldError::new("replaced_by", format!("`{replacement}` is deprecated: name an active KPI"))),
            Some(Status::Active) => {}
        }
    }
    errors
}

fn check_canonical(path: &str, text: &str, canonical: &str, problems: &mut Vec<Problem>) {
    if text != canonical {
        problems.push(Problem::new(
            path,
            None,
            "file is not in canonical form: run `ontology-registry fmt DIR` to rewrite it",
        ));
    }
}

fn read_domain_file(
    path: &str,
    text: &str,
    domain: &DomainId,
    domains: &mut BTreeMap<DomainId, DomainInfo>,
    problems: &mut Vec<Problem>,
) {
    match format::domain_from_toml(text) {
        Ok(info) if &info.id != domain => problems.push(Problem::new(
            path,
            Some("id".into()),
            format!("`{}` does not match the folder name `{domain}`", info.id),
        )),
        Ok(info) => {
            check_canonical(path, text, &format::domain_to_toml(&info), problems);
            domains.insert(domain.clone(), info);
        }
        Err(error) => problems.extend(Problem::from_read_error(path, error)),
    }
}

fn read_kpi_file(
    path: &str,
    text: &str,
    domain: &DomainId,
    key: &str,
    kpis: &mut BTreeMap<KpiId, KpiRecord>,
    problems: &mut Vec<Problem>,
) {
    let key = match KpiKey::parse(key) {
        Ok(key) => key,
        Err(error) => {
            problems.push(Problem::new(path, None, format!("file name: {error}")));
            return;
        }
    };
    let expected_id = KpiId::new(domain, &key);
    match format::kpi_from_toml(text) {
        Ok(record) if record.id != expected_id => problems.push(Problem::new(
            path,
            Some("id".into()),
            format!("`{}` does not match the file path, which gives `{expected_id}`", record.id),
        )),
        Ok(record) => {
            check_canonical(path, text, &format::kpi_to_toml(&record), problems);
            kpis.insert(expected_id, record);
        }
        Err(error) => problems.extend(Problem::from_read_error(path, error)),
    }
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<CatalogFile>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(root, &path, files)?;
        } else if file_type.is_file() && (name.ends_with(".toml") || dir != root) {
            let relative = path
                .strip_prefix(root)
                .expect("walked paths stay under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push(CatalogFile { path: relative, bytes: std::fs::read(&path)? });
        }
    }
    Ok(())
}
