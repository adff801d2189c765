//! The git-backed versioned store: the source of truth of every catalog version.
//!
//! The store is a bare repository. Each commit on `main` is one ontology version, tagged
//! `v<version>`: the first contains the starter catalog, each later one changes one KPI.
//! Commits are built without a work tree (tree builders on the parent's trees) and the
//! branch moves by compare-and-swap on the expected old commit, so two writers can never
//! lose one another's commit.
//!
//! Every call is blocking; async callers run them on a blocking thread.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, TreeBuilder};
use semver::Version;

use crate::bump::Bump;
use crate::catalog::{Catalog, CatalogFile, DOMAIN_FILE, LoadedCatalog};
use crate::format::{self, DomainInfo};
use crate::id::KpiId;
use crate::record::KpiRecord;

pub const BRANCH: &str = "refs/heads/main";
pub const INITIAL_VERSION: Version = Version::new(1, 0, 0);

/// Trailer keys the registry writes, and only the registry: titles are checked to be one
/// line, so no input can add a trailer of its own.
pub mod trailer {
    pub const PROPOSAL: &str = "Proposal";
    pub const REVIEWED_BY: &str = "Reviewed-by";
    pub const BUMP: &str = "Bump";
    pub const DISPUTE: &str = "Dispute";
    pub const BACK_ATTRIBUTED_TO: &str = "Back-attributed-to";
    pub const ONTOLOGY_VERSION: &str = "Ontology-Version";
}

const FILE_MODE: i32 = 0o100644;
const TREE_MODE: i32 = 0o040000;
const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the branch moved: expected commit {expected}, found {actual}")]
    HeadMoved { expected: Oid, actual: Oid },
    #[error("ontology version {0} is already tagged")]
    VersionExists(Version),
    #[error("invalid commit title: {0}")]
    InvalidTitle(String),
    #[error("invalid trailer value for {key}: {reason}")]
    InvalidTrailer { key: &'static str, reason: String },
    #[error("no git repository at {0}")]
    Missing(PathBuf),
    #[error("a git repository already exists at {0}")]
    AlreadyExists(PathBuf),
    #[error("commit {0} is not on the first-parent history of main")]
    NotOnMain(Oid),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// A person or program named in commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    fn signature(&self) -> Result<Signature<'static>, git2::Error> {
        Signature::now(&self.name, &self.email)
    }
}

/// A new version of one KPI, ready to commit as the next ontology version.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The record with its new version already set.
    pub record: KpiRecord,
    /// The domain file to add, when the KPI opens a new domain.
    pub new_domain: Option<DomainInfo>,
    pub title: String,
    pub author: Identity,
    pub bump: Bump,
    pub ontology_version: Version,
    pub proposal: Option<String>,
    pub reviewed_by: Vec<String>,
    pub dispute: Option<String>,
    pub back_attributed_to: Option<String>,
}

/// A commit on `main` as the indexer needs it.
#[derive(Debug, Clone)]
pub struct CommitDetails {
    pub id: Oid,
    pub parent: Option<Oid>,
    /// Committer time, seconds since the Unix epoch.
    pub time: i64,
    pub author: String,
    pub title: String,
    pub trailers: Vec<(String, String)>,
    /// Files the commit adds or changes relative to its parent, or every file for the
    /// first commit. Removed files are not listed: the store never removes a KPI.
    pub changed: Vec<CatalogFile>,
}

impl CommitDetails {
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    pub fn trailer_values(&self, key: &str) -> Vec<&str> {
        self.trailers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str()).collect()
    }

    pub fn ontology_version(&self) -> Option<Version> {
        self.trailer(trailer::ONTOLOGY_VERSION).and_then(|v| Version::parse(v).ok())
    }
}

/// Handle on the registry's bare repository. Cheap to clone; each call opens the
/// repository, because `git2::Repository` cannot be shared between threads.
#[derive(Debug, Clone)]
pub struct GitStore {
    path: PathBuf,
}

/// Turns off libgit2's re-hashing of every object it reads. Only this store writes the
/// repository, and the check cost indexing a long history a fifth of its time in SHA-1.
/// `git fsck` checks integrity instead.
fn configure_libgit2() {
    static CONFIGURE: std::sync::Once = std::sync::Once::new();
    CONFIGURE.call_once(|| git2::opts::strict_hash_verification(false));
}

impl GitStore {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(path: &Path) -> bool {
        Repository::open_bare(path).is_ok()
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Repository::open_bare(path).map_err(|error| match error.code() {
            ErrorCode::NotFound => StoreError::Missing(path.to_owned()),
            _ => StoreError::Git(error),
        })?;
        Ok(Self { path: path.to_owned() })
    }

    fn repo(&self) -> Result<Repository, StoreError> {
        configure_libgit2();
        Ok(Repository::open_bare(&self.path)?)
    }

    /// Creates the repository with the catalog as its first commit, tagged `v1.0.0`.
    pub fn create(path: &Path, catalog: &Catalog, committer: &Identity) -> Result<Self, StoreError> {
        if Repository::open_bare(path).is_ok() {
            return Err(StoreError::AlreadyExists(path.to_owned()));
        }
        let mut options = RepositoryInitOptions::new();
        options.bare(true).initial_head("main").mkpath(true);
        let repo = Repository::init_opts(path, &options)?;

        let tree = write_catalog_tree(&repo, catalog)?;
        let message = format!(
            "Ontology {INITIAL_VERSION}: Starter catalog\n\n{}: {INITIAL_VERSION}\n",
            trailer::ONTOLOGY_VERSION
        );
        let signature = committer.signature()?;
        let tree = repo.find_tree(tree)?;
        let commit = repo.commit(None, &signature, &signature, &message, &tree, &[])?;
        repo.reference(BRANCH, commit, false, "create main")?;
        tag(&repo, &INITIAL_VERSION, commit)?;

        Ok(Self { path: path.to_owned() })
    }

    pub fn head(&self) -> Result<Oid, StoreError> {
        let repo = self.repo()?;
        let reference = repo.find_reference(BRANCH)?;
        Ok(reference.target().expect("main is a direct reference"))
    }

    /// Commits a new version of one KPI on top of `expected_head` and tags the ontology
    /// version. Fails with [`StoreError::HeadMoved`] if `main` is no longer at
    /// `expected_head`, writing nothing visible.
    pub fn publish(
        &self,
        expected_head: Oid,
        publication: &Publication,
        committer: &Identity,
    ) -> Result<Oid, StoreError> {
        publish_in(&self.repo()?, expected_head, publication, committer)
    }

    /// Runs `work` with a [`Batch`] that publishes many versions in a row, keeping the new
    /// objects in memory and writing them as one pack file every `flush_every` commits and
    /// at the end. Long generated histories then never create loose object files.
    ///
    /// Branch and tags move on disk as each commit is made, so an interruption between two
    /// flushes leaves refs pointing at objects that were never written: use it only to
    /// build repositories that are discarded when the work fails.
    pub fn batch<T>(
        &self,
        flush_every: usize,
        work: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let repo = self.repo()?;
        let odb = repo.odb()?;
        // Above the loose and pack backends, so every new object goes to memory first.
        let mempack = odb.add_new_mempack_backend(1000)?;
        let mut batch =
            Batch { repo: &repo, odb: &odb, mempack: &mempack, pending: 0, flush_every: flush_every.max(1) };
        let result = work(&mut batch)?;
        batch.flush()?;
        Ok(result)
    }

    /// Reads the whole catalog as it is at a commit.
    pub fn catalog_at(&self, commit: Oid) -> Result<LoadedCatalog, StoreError> {
        let repo = self.repo()?;
        let tree = repo.find_commit(commit)?.tree()?;
        let mut files = Vec::new();
        collect_tree(&repo, &tree, "", &mut files)?;
        Ok(Catalog::from_files(files))
    }

    /// Lists the first-parent history of `main` from oldest to newest, starting after
    /// `after` (or at the root when `after` is `None`). It follows parent links from the
    /// head, so its cost grows with the number of commits listed, not with the history.
    pub fn history_after(&self, after: Option<Oid>) -> Result<Vec<Oid>, StoreError> {
        let repo = self.repo()?;
        let mut commits = Vec::new();
        let mut current = Some(repo.find_commit(self.head()?)?);
        while let Some(commit) = current {
            if Some(commit.id()) == after {
                commits.reverse();
                return Ok(commits);
            }
            commits.push(commit.id());
            current = commit.parents().next();
        }
        match after {
            None => {
                commits.reverse();
                Ok(commits)
            }
            Some(missing) => Err(StoreError::NotOnMain(missing)),
        }
    }

    /// Reads a commit with its message trailers and the files it changed.
    pub fn describe(&self, commit: Oid) -> Result<CommitDetails, StoreError> {
        self.reader()?.describe(commit)
    }

    /// Opens the repository once for many reads, such as indexing a long history.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        Ok(StoreReader { repo: self.repo()? })
    }

    /// Every ontology version tagged in the repository with its commit.
    pub fn tagged_versions(&self) -> Result<Vec<(Version, Oid)>, StoreError> {
        let repo = self.repo()?;
        let mut versions = Vec::new();
        for reference in repo.references_glob("refs/tags/v*")? {
            let reference = reference?;
            let Some(name) = reference.name().ok().and_then(|n| n.strip_prefix("refs/tags/v")) else { continue };
            let (Ok(version), Some(target)) = (Version::parse(name), reference.target()) else { continue };
            versions.push((version, target));
        }
        versions.sort();
        Ok(versions)
    }

    /// Whether `version` is tagged.
    pub fn has_tag(&self, version: &Version) -> Result<bool, StoreError> {
        let repo = self.repo()?;
        Ok(repo.find_reference(&tag_ref(version)).is_ok())
    }

    /// Estimates the loose objects in the repository the way git does: the count in one
    /// of the 256 fan-out folders, times 256.
    pub fn loose_object_estimate(&self) -> usize {
        let sample = self.path.join("objects").join("17");
        std::fs::read_dir(sample).map(|entries| entries.count() * 256).unwrap_or(0)
    }

    /// Counts the loose objects exactly, reading all 256 fan-out folders.
    pub fn loose_object_count(&self) -> usize {
        list_loose_objects(&self.path.join("objects")).len()
    }

    /// Number of pack files.
    pub fn pack_count(&self) -> usize {
        list_packs(&self.path.join("objects").join("pack"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .count()
    }

    /// Moves loose objects into a pack file. Each merge writes a few loose objects, and a
    /// long history of them costs disk space and a file open per object read.
    ///
    /// With `full`, every object reachable from `main` goes into one new pack and the older
    /// packs are removed; otherwise only the loose objects are packed. Loose files are
    /// removed only once the pack holding them is written. Callers keep other writers out
    /// while it runs; readers are safe because every object stays readable throughout.
    pub fn pack(&self, full: bool) -> Result<PackSummary, StoreError> {
        let repo = self.repo()?;
        let objects = self.path.join("objects");
        let pack_dir = objects.join("pack");
        let old_packs = if full { list_packs(&pack_dir) } else { Vec::new() };
        let loose = list_loose_objects(&objects);

        let mut builder = repo.packbuilder()?;
        if full {
            let mut walk = repo.revwalk()?;
            walk.push(self.head()?)?;
            builder.insert_walk(&mut walk)?;
        } else {
            for (oid, _) in &loose {
                builder.insert_object(*oid, None)?;
            }
        }
        let packed = builder.object_count();
        if packed == 0 {
            return Ok(PackSummary::default());
        }
        builder.write(&pack_dir, 0)?;
        let new_pack = builder.name()?.map(|name| format!("pack-{name}"));

        // Remove only loose objects that the new pack contains.
        let in_new_pack: std::collections::HashSet<Oid> =
            if full { reachable_objects(&repo, self.head()?)? } else { loose.iter().map(|(oid, _)| *oid).collect() };
        let mut removed_loose = 0;
        let mut folders = std::collections::BTreeSet::new();
        for (oid, path) in &loose {
            if in_new_pack.contains(oid) && std::fs::remove_file(path).is_ok() {
                removed_loose += 1;
                folders.extend(path.parent().map(Path::to_path_buf));
            }
        }
        // As git's own pruning does, drop the fan-out folders left empty. `remove_dir` fails
        // on a folder that still contains an object, which then stays.
        for folder in folders {
            let _ = std::fs::remove_dir(folder);
        }
        let mut removed_packs = 0;
        for path in old_packs {
            let is_new = new_pack.as_deref().is_some_and(|name| path.file_stem().is_some_and(|stem| stem == name));
            if !is_new && std::fs::remove_file(&path).is_ok() {
                removed_packs += 1;
            }
        }
        repo.odb()?.refresh()?;
        Ok(PackSummary { objects: packed, removed_loose, removed_packs })
    }

    /// Tags a commit with an ontology version, for a commit whose tag a crash prevented.
    pub fn ensure_tag(&self, version: &Version, commit: Oid) -> Result<(), StoreError> {
        self.reader()?.ensure_tag(version, commit)
    }
}

/// Summary of a packing run of [`GitStore::pack`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackSummary {
    pub objects: usize,
    pub removed_loose: usize,
    /// Pack and index files of older packs that the new pack replaced.
    pub removed_packs: usize,
}

fn list_packs(pack_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(pack_dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
                name.starts_with("pack-") && [".pack", ".idx", ".rev"].iter().any(|ext| name.ends_with(ext))
            })
        })
        .collect()
}

/// Loose objects with their file paths, from the 256 fan-out folders.
fn list_loose_objects(objects: &Path) -> Vec<(Oid, PathBuf)> {
    let mut found = Vec::new();
    let Ok(folders) = std::fs::read_dir(objects) else { return found };
    for folder in folders.filter_map(Result::ok) {
        let prefix = folder.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(folder.path()) else { continue };
        for file in files.filter_map(Result::ok) {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Ok(oid) = Oid::from_str(&format!("{prefix}{name}")) {
                found.push((oid, file.path()));
            }
        }
    }
    found
}

/// Every commit, tree and blob reachable from `head`, visiting each tree once.
fn reachable_objects(repo: &Repository, head: Oid) -> Result<std::collections::HashSet<Oid>, git2::Error> {
    let mut seen = std::collections::HashSet::new();
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    let mut trees = Vec::new();
    for commit in walk {
        let commit = repo.find_commit(commit?)?;
        seen.insert(commit.id());
        trees.push(commit.tree_id());
    }
    while let Some(tree_id) = trees.pop() {
        if !seen.insert(tree_id) {
            continue;
        }
        for entry in repo.find_tree(tree_id)?.iter() {
            match entry.kind() {
                Some(ObjectType::Tree) => trees.push(entry.id()),
                _ => {
                    seen.insert(entry.id());
                }
            }
        }
    }
    Ok(seen)
}

/// An open repository for a run of reads on one thread.
pub struct StoreReader {
    repo: Repository,
}

impl StoreReader {
    /// Reads a commit with its message trailers and the files it changed.
    pub fn describe(&self, commit: Oid) -> Result<CommitDetails, StoreError> {
        let repo = &self.repo;
        let commit = repo.find_commit(commit)?;
        let message = commit.message().unwrap_or_default().to_owned();
        let title = message_title(&message);
        let trailers = match git2::message_trailers_strs(&message) {
            Ok(found) => found.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            Err(_) => Vec::new(),
        };

        let tree = commit.tree()?;
        let parent = commit.parents().next();
        let mut changed = Vec::new();
        match &parent {
            None => collect_tree(repo, &tree, "", &mut changed)?,
            Some(parent) => collect_changes(repo, &parent.tree()?, &tree, "", &mut changed)?,
        }

        Ok(CommitDetails {
            id: commit.id(),
            parent: parent.map(|p| p.id()),
            time: commit.committer().when().seconds(),
            author: commit.author().name().unwrap_or_default().to_owned(),
            title,
            trailers,
            changed,
        })
    }

    /// Tags a commit with an ontology version, for a commit whose tag a crash prevented.
    pub fn ensure_tag(&self, version: &Version, commit: Oid) -> Result<(), StoreError> {
        let repo = &self.repo;
        match repo.find_reference(&tag_ref(version)) {
            Ok(existing) if existing.target() == Some(commit) => Ok(()),
            Ok(_) => Err(StoreError::VersionExists(version.clone())),
            Err(_) => tag(repo, version, commit),
        }
    }
}

/// Many publications in a row with their objects kept in memory; see [`GitStore::batch`].
pub struct Batch<'a> {
    repo: &'a Repository,
    odb: &'a git2::Odb<'a>,
    mempack: &'a git2::Mempack<'a>,
    pending: usize,
    flush_every: usize,
}

impl Batch<'_> {
    pub fn publish(
        &mut self,
        expected_head: Oid,
        publication: &Publication,
        committer: &Identity,
    ) -> Result<Oid, StoreError> {
        let commit = publish_in(self.repo, expected_head, publication, committer)?;
        self.pending += 1;
        if self.pending >= self.flush_every {
            self.flush()?;
        }
        Ok(commit)
    }

    /// Writes the objects held in memory as one pack file.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut buffer = git2::Buf::new();
        self.mempack.dump(self.repo, &mut buffer)?;
        let mut writer = self.odb.packwriter()?;
        std::io::Write::write_all(&mut writer, &buffer).map_err(|error| git2::Error::from_str(&error.to_string()))?;
        writer.commit()?;
        self.mempack.reset()?;
        self.odb.refresh()?;
        self.pending = 0;
        Ok(())
    }
}

/// Commits a new version of one KPI in `repo`; see [`GitStore::publish`].
fn publish_in(
    repo: &Repository,
    expected_head: Oid,
    publication: &Publication,
    committer: &Identity,
) -> Result<Oid, StoreError> {
    let message = commit_message(publication)?;
    let tag_name = tag_ref(&publication.ontology_version);
    if repo.find_reference(&tag_name).is_ok() {
        return Err(StoreError::VersionExists(publication.ontology_version.clone()));
    }

    let parent = repo.find_commit(expected_head)?;
    let root = parent.tree()?;
    let id = &publication.record.id;
    let domain_name = id.domain_str();

    let domain_tree = match root.get_name(domain_name) {
        Some(entry) if entry.kind() == Some(ObjectType::Tree) => Some(repo.find_tree(entry.id())?),
        _ => None,
    };
    let mut domain_builder: TreeBuilder = repo.treebuilder(domain_tree.as_ref())?;
    let kpi_blob = repo.blob(format::kpi_to_toml(&publication.record).as_bytes())?;
    domain_builder.insert(format!("{}.toml", id.key_str()), kpi_blob, FILE_MODE)?;
    if let Some(domain) = &publication.new_domain {
        let blob = repo.blob(format::domain_to_toml(domain).as_bytes())?;
        domain_builder.insert(DOMAIN_FILE, blob, FILE_MODE)?;
    }
    let domain_tree = domain_builder.write()?;

    let mut root_builder = repo.treebuilder(Some(&root))?;
    root_builder.insert(domain_name, domain_tree, TREE_MODE)?;
    let tree = repo.find_tree(root_builder.write()?)?;

    let author = publication.author.signature()?;
    let committer = committer.signature()?;
    let commit = repo.commit(None, &author, &committer, &message, &tree, &[&parent])?;

    // Compare-and-swap: the update succeeds only if main still points at the parent.
    match repo.reference_matching(BRANCH, commit, true, expected_head, &message_title(&message)) {
        Ok(_) => {}
        Err(error) if matches!(error.code(), ErrorCode::Modified | ErrorCode::Locked) => {
            let actual = repo.find_reference(BRANCH)?.target().expect("main is a direct reference");
            return Err(StoreError::HeadMoved { expected: expected_head, actual });
        }
        Err(error) => return Err(error.into()),
    }
    tag(repo, &publication.ontology_version, commit)?;
    Ok(commit)
}

pub fn tag_ref(version: &Version) -> String {
    format!("refs/tags/v{version}")
}

fn tag(repo: &Repository, version: &Version, commit: Oid) -> Result<(), StoreError> {
    repo.reference(&tag_ref(version), commit, false, "tag ontology version").map(|_| ()).map_err(|error| {
        match error.code() {
            ErrorCode::Exists => StoreError::VersionExists(version.clone()),
            _ => StoreError::Git(error),
        }
    })
}

fn message_title(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

/// Checks a commit title: one line of printable text, 1 to 200 characters.
pub fn check_title(title: &str) -> Result<(), String> {
    let chars = title.chars().count();
    if title.trim().is_empty() {
        return Err("it is empty".into());
    }
    if chars > MAX_TITLE_CHARS {
        return Err(format!("it is {chars} characters long; the limit is {MAX_TITLE_CHARS}"));
    }
    if title.chars().any(char::is_control) {
        return Err("it must be one line without control characters".into());
    }
    if crate::prose::has_invisible_chars(title) {
        return Err("it must not contain invisible or direction-changing characters".into());
    }
    Ok(())
}

fn check_trailer_value(key: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(StoreError::InvalidTrailer {
            key,
            reason: "it must be one non-empty line without control characters".into(),
        });
    }
    Ok(())
}

fn commit_message(publication: &Publication) -> Result<String, StoreError> {
    check_title(&publication.title).map_err(StoreError::InvalidTitle)?;

    let mut trailers: Vec<(&'static str, &str)> = Vec::new();
    if let Some(proposal) = &publication.proposal {
        trailers.push((trailer::PROPOSAL, proposal));
    }
    for reviewer in &publication.reviewed_by {
        trailers.push((trailer::REVIEWED_BY, reviewer));
    }
    trailers.push((trailer::BUMP, publication.bump.as_str()));
    if let Some(dispute) = &publication.dispute {
        trailers.push((trailer::DISPUTE, dispute));
    }
    if let Some(standard) = &publication.back_attributed_to {
        trailers.push((trailer::BACK_ATTRIBUTED_TO, standard));
    }
    let ontology_version = publication.ontology_version.to_string();
    trailers.push((trailer::ONTOLOGY_VERSION, &ontology_version));

    let mut message =
        format!("{} {}: {}\n\n", publication.record.id, publication.record.version, publication.title.trim());
    for (key, value) in trailers {
        check_trailer_value(key, value)?;
        message.push_str(&format!("{key}: {value}\n"));
    }
    Ok(message)
}

fn write_catalog_tree(repo: &Repository, catalog: &Catalog) -> Result<Oid, git2::Error> {
    let mut root = repo.treebuilder(None)?;
    let mut domains: std::collections::BTreeMap<String, TreeBuilder> = Default::default();
    for file in catalog.to_files() {
        let blob = repo.blob(&file.bytes)?;
        match file.path.split_once('/') {
            None => {
                root.insert(&file.path, blob, FILE_MODE)?;
            }
            Some((domain, name)) => {
                if !domains.contains_key(domain) {
                    domains.insert(domain.to_owned(), repo.treebuilder(None)?);
                }
                domains.get_mut(domain).expect("inserted above").insert(name, blob, FILE_MODE)?;
            }
        }
    }
    for (domain, builder) in domains {
        root.insert(&domain, builder.write()?, TREE_MODE)?;
    }
    root.write()
}

fn collect_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    prefix: &str,
    files: &mut Vec<CatalogFile>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
        match entry.kind() {
            Some(ObjectType::Tree) => collect_tree(repo, &repo.find_tree(entry.id())?, &path, files)?,
            Some(ObjectType::Blob) => {
                files.push(CatalogFile { path, bytes: repo.find_blob(entry.id())?.content().to_vec() })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Collects the files of `new` that `old` lacks or contains with other content, descending
/// only into subtrees whose ids differ. A commit changes one or two files, so this reads
/// a handful of objects however large the catalog is. Removed files are not reported:
/// the store never removes one.
fn collect_changes(
    repo: &Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
    prefix: &str,
    files: &mut Vec<CatalogFile>,
) -> Result<(), git2::Error> {
    for entry in new.iter() {
        let Ok(name) = entry.name() else { continue };
        let previous = old.get_name(name);
        if previous.as_ref().is_some_and(|p| p.id() == entry.id()) {
            continue;
        }
        let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
        match (entry.kind(), previous.as_ref().and_then(|p| p.kind())) {
            (Some(ObjectType::Tree), Some(ObjectType::Tree)) => {
                let old_subtree = repo.find_tree(previous.as_ref().expect("matched above").id())?;
                collect_changes(repo, &old_subtree, &repo.find_tree(entry.id())?, &path, files)?;
            }
            (Some(ObjectType::Tree), _) => collect_tree(repo, &repo.find_tree(entry.id())?, &path, files)?,
            (Some(ObjectType::Blob), _) => {
                files.push(CatalogFile { path, bytes: repo.find_blob(entry.id())?.content().to_vec() })
            }
            _ => {}
        }
    }
    Ok(())
}

/// The KPI id a changed file of a commit belongs to, if it is a KPI file.
pub fn kpi_of_path(path: &str) -> Option<KpiId> {
    let (domain, file) = path.split_once('/')?;
    let key = file.strip_suffix(".toml")?;
    if file == DOMAIN_FILE {
        return None;
    }
    KpiId::parse(&format!("{domain}.{key}")).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::format::OntologyInfo;
    use crate::id::DomainId;
    use crate::record::tests::sample_draft;

    fn identity() -> Identity {
        Identity { name: "Test".into(), email: "test@example.org".into() }
    }

    fn catalog() -> Catalog {
        let mut draft = sample_draft();
        draft.related.clear();
        let record = draft.validate().unwrap();
        let domain = DomainId::parse("customers").unwrap();
        Catalog {
            ontology: OntologyInfo { name: "Test".into(), description: "A test catalog.".into() },
            domains: BTreeMap::from([(
                domain.clone(),
                DomainInfo { id: domain, name: "Customers".into(), description: "Customers.".into() },
            )]),
            kpis: BTreeMap::from([(record.id.clone(), record)]),
        }
    }

    fn publication(catalog: &Catalog, version: Version, ontology: Version, summary: &str) -> Publication {
        let record = catalog.kpis.values().next().unwrap();
        let mut draft = record.clone().into_draft();
        draft.summary = summary.into();
        draft.version = version;
        Publication {
            record: draft.validate().unwrap(),
            new_domain: None,
            title: "Reword the summary".into(),
            author: Identity { name: "alice".into(), email: "alice@example.org".into() },
            bump: Bump::Patch,
            ontology_version: ontology,
            proposal: Some("7".into()),
            reviewed_by: vec!["bob".into()],
            dispute: None,
            back_attributed_to: None,
        }
    }

    #[test]
    fn create_tags_first_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = GitStore::create(&dir.path().join("repo.git"), &catalog(), &identity()).unwrap();
        let versions = store.tagged_versions().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].0, Version::new(1, 0, 0));
        assert_eq!(store.catalog_at(store.head().unwrap()).unwrap().catalog, catalog());
    }

    #[test]
    fn publish_commits_with_trailers() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog();
        let store = GitStore::create(&dir.path().join("repo.git"), &catalog, &identity()).unwrap();
        let head = store.head().unwrap();
        let commit = store
            .publish(
                head,
                &publication(&catalog, Version::new(1, 0, 1), Version::new(1, 0, 1), "New words."),
                &identity(),
            )
            .unwrap();

        let details = store.describe(commit).unwrap();
        assert_eq!(details.title, "customers.gross_revenue_retention 1.0.1: Reword the summary");
        assert_eq!(details.trailer("Proposal"), Some("7"));
        assert_eq!(details.trailer_values("Reviewed-by"), ["bob"]);
        assert_eq!(details.ontology_version(), Some(Version::new(1, 0, 1)));
        assert_eq!(details.author, "alice");
        let paths: Vec<&str> = details.changed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["customers/gross_revenue_retention.toml"]);
        assert_eq!(store.history_after(Some(head)).unwrap(), [commit]);
        assert_eq!(store.history_after(None).unwrap(), [head, commit]);
    }

    #[test]
    fn publish_on_stale_head_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog();
        let store = GitStore::create(&dir.path().join("repo.git"), &catalog, &identity()).unwrap();
        let base = store.head().unwrap();
        store
            .publish(base, &publication(&catalog, Version::new(1, 0, 1), Version::new(1, 0, 1), "One."), &identity())
            .unwrap();

        let stale = publication(&catalog, Version::new(1, 0, 1), Version::new(1, 0, 2), "Two.");
        match store.publish(base, &stale, &identity()) {
            Err(StoreError::HeadMoved { expected, .. }) => assert_eq!(expected, base),
            other => panic!("expected HeadMoved, got {other:?}"),
        }
        assert!(!store.has_tag(&Version::new(1, 0, 2)).unwrap());
        assert_eq!(store.history_after(None).unwrap().len(), 2);
    }

    #[test]
    fn title_cannot_forge_trailers() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog();
        let store = GitStore::create(&dir.path().join("repo.git"), &catalog, &identity()).unwrap();
        let mut forged = publication(&catalog, Version::new(1, 0, 1), Version::new(1, 0, 1), "New.");
        forged.title = "Fine\n\nReviewed-by: mallory".into();
        assert!(matches!(store.publish(store.head().unwrap(), &forged, &identity()), Err(StoreError::InvalidTitle(_))));
    }

    #[test]
    fn batch_writes_packs_not_loose_objects() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog();
        let path = dir.path().join("repo.git");
        let store = GitStore::create(&path, &catalog, &identity()).unwrap();
        store.pack(true).unwrap();
        let head = store
            .batch(2, |batch| {
                let mut head = store.head()?;
                for patch in 1..=5 {
                    let version = Version::new(1, 0, patch);
                    let text = format!("Words {patch}.");
                    head = batch.publish(head, &publication(&catalog, version.clone(), version, &text), &identity())?;
                }
                Ok(head)
            })
            .unwrap();

        assert_eq!(list_loose_objects(&path.join("objects")).len(), 0);
        assert_eq!(store.pack_count(), 4, "the first pack and one per flush of two, two and one commits");
        assert_eq!(store.head().unwrap(), head);
        let last = store.catalog_at(head).unwrap().catalog;
        assert_eq!(last.kpis.values().next().unwrap().summary, "Words 5.");
        assert_eq!(store.history_after(None).unwrap().len(), 6);
    }

    #[test]
    fn pack_keeps_every_object_readable() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog();
        let store = GitStore::create(&dir.path().join("repo.git"), &catalog, &identity()).unwrap();
        let mut head = store.head().unwrap();
        for patch in 1..=5 {
            let version = Version::new(1, 0, patch);
            let text = format!("Words {patch}.");
            head = store.publish(head, &publication(&catalog, version.clone(), version, &text), &identity()).unwrap();
        }

        let incremental = store.pack(false).unwrap();
        assert!(incremental.objects > 0);
        assert_eq!(incremental.removed_loose, incremental.objects);
        let fan_out: Vec<_> = std::fs::read_dir(store.path.join("objects"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.len() == 2)
            .collect();
        assert_eq!(fan_out, Vec::<String>::new(), "no empty fan-out folders stay");
        let full = store.pack(true).unwrap();
        assert!(full.removed_packs >= 2, "the incremental pack and its index are replaced");

        for commit in store.history_after(None).unwrap() {
            let loaded = store.catalog_at(commit).unwrap();
            assert!(loaded.problems.is_empty());
        }
        let last = store.catalog_at(head).unwrap().catalog;
        assert_eq!(last.kpis.values().next().unwrap().summary, "Words 5.");
    }
}
