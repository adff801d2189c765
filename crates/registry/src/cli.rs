//! Command-line interface.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ontology_core::pin::VersionPin;
use ontology_core::{Catalog, GitStore};

use crate::app::{self, AppState, ServerConfig, Shared};
use crate::auth::cli::{TokenCommand, UserCommand};
use crate::auth::config::AuthArgs;
use crate::auth::keys::ServerKey;
use crate::auth::{self, AuthConfig, AuthService};
use crate::progress::Progress;
use crate::publisher;
use crate::registry::{self, Location};
use crate::synthetic;
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "ontology-registry", version, about = "A git-backed, versioned registry of KPI definitions")]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Folder holding the registry's git repository and, by default, its SQLite database.
    #[arg(long, global = true, env = "REGISTRY_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH, or postgres://USER:PASSWORD@HOST/DATABASE for PostgreSQL.
    /// Defaults to the SQLite file registry.db in the data directory.
    #[arg(long, global = true, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Catalog tree a new registry starts from (the folder holding ontology.toml).
    #[arg(long = "catalog", global = true, env = "REGISTRY_CATALOG_DIR", default_value = "ontology-repo")]
    seed_catalog: PathBuf,
    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "REGISTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the registry over HTTP, creating it on first start.
    Serve(ServeArgs),
    /// Create the registry (git repository, database, index) without serving it.
    Init,
    /// Drop the database index and rebuild it from git alone.
    Reindex,
    /// Check a catalog tree and print every problem with its file and field.
    Validate {
        /// Root of the catalog tree (the folder holding `ontology.toml`).
        dir: PathBuf,
    },
    /// Rewrite every file of a catalog tree in canonical form.
    Fmt {
        /// Root of the catalog tree.
        dir: PathBuf,
    },
    /// Write a synthetic catalog for benchmarks: N KPIs over M domains, and with
    /// `--versions K` above 1 a registry repository in --data-dir with K versions per KPI.
    Generate(GenerateArgs),
    /// Pack the git repository's objects into one pack file, as `git gc` does.
    Gc,
    /// Write the catalog at an ontology version as a TOML tree.
    Export {
        /// Ontology version or range, such as 1.2.0 or ^1.
        #[arg(long)]
        ontology: String,
        /// Folder to write; it must not exist or be empty.
        dir: PathBuf,
    },
    /// Manage accounts: add, list, set-role, disable, enable, set-password.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Issue machine tokens without a running server.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Number of KPIs.
    #[arg(long)]
    kpis: usize,
    /// Number of domains the KPIs are spread over.
    #[arg(long, default_value_t = 10)]
    domains: usize,
    /// Versions per KPI; above 1, the history is committed to a new repository in --data-dir.
    #[arg(long, default_value_t = 1)]
    versions: usize,
    /// Seed of the pseudo-random text, so runs are reproducible.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder to write the catalog tree to; it must not exist or be empty.
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "REGISTRY_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Public base URL, used for absolute links in the Atom feed.
    #[arg(long, env = "REGISTRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "REGISTRY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Approvals from reviewers other than the author that a proposal needs to merge.
    #[arg(long, env = "REGISTRY_REQUIRED_APPROVALS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    required_approvals: u32,
    /// Loose git objects (estimated as git does) above which a merge is followed by
    /// packing them.
    #[arg(long, env = "REGISTRY_PACK_LOOSE_OBJECTS", default_value_t = publisher::LOOSE_OBJECT_LIMIT)]
    pack_loose_objects: usize,
    /// Threads that serve HTTP, each with its own socket; defaults to the number of CPUs.
    #[arg(long, env = "REGISTRY_HTTP_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    http_threads: Option<u16>,
    #[command(flatten)]
    auth: AuthArgs,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    telemetry::init(cli.global.log_format);
    let location = Location {
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        seed_catalog: cli.global.seed_catalog,
    };

    match cli.command {
        Command::Validate { dir } => validate(&dir),
        Command::Fmt { dir } => format_tree(&dir),
        Command::Serve(args) => runtime()?.block_on(serve(location, args)),
        Command::Init => runtime()?.block_on(init(location)),
        Command::Reindex => runtime()?.block_on(reindex(location)),
        Command::Export { ontology, dir } => export(&location, &ontology, &dir),
        Command::Generate(args) => generate(&location, &args),
        Command::Gc => gc(&location),
        Command::User { command } => runtime()?.block_on(auth::cli::run_user(&location, command)),
        Command::Token { command } => runtime()?.block_on(auth::cli::run_token(&location, command)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start the async runtime")
}

async fn serve(location: Location, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let registry = registry::open(&location).await?;
    registry.publisher.set_loose_object_limit(args.pack_loose_objects);
    let auth_config = AuthConfig::from_args(&args.auth, args.public_url.as_deref())?;
    let key = ServerKey::load(&location.data_dir)?;
    let auth = AuthService::new(&registry.db, key, auth_config);
    auth::ensure_first_admin(&auth.accounts).await.context("failed to create the first admin account")?;
    let state = AppState::new(Shared {
        catalog: registry.catalog.clone(),
        store: registry.store.clone(),
        db: registry.db.clone(),
        config: Arc::new(ServerConfig {
            public_url: args.public_url,
            body_limit: args.body_limit,
            required_approvals: args.required_approvals,
        }),
        auth: Arc::new(auth),
        publisher: registry.publisher.clone(),
    });

    let shutdown = app::shutdown_signal().context("failed to listen for termination signals")?;
    let threads = match args.http_threads {
        Some(threads) => usize::from(threads),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let listeners =
        app::bind_listeners(args.bind, threads).with_context(|| format!("failed to listen on {}", args.bind))?;
    let address = listeners[0].local_addr()?;
    let release = registry.catalog.read().latest_release().map(|r| r.version.to_string());
    tracing::info!(
        ontology_version = release.as_deref().unwrap_or("none"),
        database = registry.db.backend().name(),
        startup_ms = started.elapsed().as_millis() as u64,
        http_threads = threads,
        "listening on http://{address}"
    );

    app::serve(listeners, app::router(state), shutdown).await?;
    registry.db.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn init(location: Location) -> anyhow::Result<ExitCode> {
    let registry = registry::open(&location).await?;
    let accounts = ontology_governance::AccountStore::new(registry.db.clone());
    auth::ensure_first_admin(&accounts).await.context("failed to create the first admin account")?;
    let history = registry.catalog.read();
    let release = history.latest_release().map(|r| r.version.to_string()).unwrap_or_default();
    println!(
        "registry ready in {}: ontology {release}, {} KPIs in {} domains, {} database",
        location.data_dir.display(),
        history.kpis.len(),
        history.domains.len(),
        registry.db.backend().name()
    );
    Ok(ExitCode::SUCCESS)
}

async fn reindex(location: Location) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let summary = registry::reindex(&location).await?;
    println!(
        "reindexed {} commits and {} KPI versions from git in {:.1} s",
        summary.commits,
        summary.kpi_versions,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn validate(dir: &Path) -> anyhow::Result<ExitCode> {
    let loaded = Catalog::read_dir(dir).with_context(|| format!("failed to read catalog tree {}", dir.display()))?;
    for problem in &loaded.problems {
        println!("{problem}");
    }

    let catalog = &loaded.catalog;
    if loaded.problems.is_empty() {
        println!("{}: {} KPIs in {} domains, no problems", dir.display(), catalog.kpis.len(), catalog.domains.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {}", dir.display(), count(loaded.problems.len(), "problem", "problems"));
        Ok(ExitCode::FAILURE)
    }
}

/// Writes a count with its noun in the right number: `1 problem`, `3 problems`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn format_tree(dir: &Path) -> anyhow::Result<ExitCode> {
    let loaded = Catalog::read_dir(dir).with_context(|| format!("failed to read catalog tree {}", dir.display()))?;
    let mut rewritten = 0;
    for file in loaded.catalog.to_files() {
        let path = dir.join(&file.path);
        let current = std::fs::read(&path).unwrap_or_default();
        if current != file.bytes {
            std::fs::write(&path, &file.bytes).with_context(|| format!("failed to write {}", path.display()))?;
            println!("rewrote {}", file.path);
            rewritten += 1;
        }
    }

    // Files that did not parse cannot be rewritten; their problems are what is left to fix.
    let unreadable: Vec<_> = loaded.problems.iter().filter(|p| !p.message.contains("canonical form")).collect();
    for problem in &unreadable {
        println!("{problem}");
    }
    println!("{} rewritten", count(rewritten, "file", "files"));
    Ok(if unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn generate(location: &Location, args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let shape = synthetic::Shape { kpis: args.kpis, domains: args.domains, seed: args.seed };
    let catalog = synthetic::write_tree(shape, &args.dir)?;
    println!("wrote {} KPIs in {} domains to {}", catalog.kpis.len(), catalog.domains.len(), args.dir.display());

    if args.versions > 1 {
        let commits = synthetic::write_history(&catalog, &location.data_dir, args.versions, &Progress::visible())?;
        println!(
            "committed {commits} versions to {} ({} versions per KPI)",
            location.repository().display(),
            args.versions
        );
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Packs offline; a running registry packs on its own after merges.
fn gc(location: &Location) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let store = GitStore::open(&location.repository())
        .context("no registry to pack: start it once (or run `init`) to create it")?;
    let summary = store.pack(true)?;
    println!(
        "packed {} objects; removed {} loose objects and {} old pack files in {:.1} s",
        summary.objects,
        summary.removed_loose,
        summary.removed_packs,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Exports from git, the source of truth, so it works without a database.
fn export(location: &Location, requirement: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    let pin = VersionPin::parse(requirement)?;
    let store = GitStore::open(&location.repository())
        .context("no registry to export from: start it once (or run `init`) to create it")?;
    let (version, commit) = store
        .tagged_versions()?
        .into_iter()
        .filter(|(version, _)| pin.matches(version))
        .max_by(|a, b| a.0.cmp(&b.0))
        .with_context(|| format!("no ontology version matches `{requirement}`"))?;

    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!("{} is not empty: export into a new or empty folder", dir.display());
    }
    let loaded = store.catalog_at(commit)?;
    loaded.catalog.write_dir(dir).with_context(|| format!("failed to write {}", dir.display()))?;
    println!(
        "exported ontology {version} ({} KPIs in {} domains) to {}",
        loaded.catalog.kpis.len(),
        loaded.catalog.domains.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
