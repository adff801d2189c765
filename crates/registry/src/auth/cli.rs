//! `user` and `token` commands: account and machine-token administration for operators
//! with access to the registry's database, with or without a running server.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use ontology_governance::accounts::NewPassword;
use ontology_governance::{AccountStore, Actor, Channel, Database, Role, TokenKind, Username};

use super::keys::ServerKey;
use super::{AuthConfig, AuthService};
use crate::registry::Location;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read as one line from standard input.
    Add {
        /// Username: 1 to 64 of a-z, 0-9, `_`, `.`, `-` (upper case is lower-cased).
        name: String,
        /// Role: viewer, editor, reviewer or admin.
        #[arg(long)]
        role: Role,
    },
    /// List every account with its role and state.
    List,
    /// Change an account's role; it applies to the account's next request.
    SetRole {
        name: String,
        /// Role: viewer, editor, reviewer or admin.
        role: Role,
    },
    /// Disable an account: it can no longer sign in and its tokens stop working at once.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
    /// Replace an account's password with one line read from standard input.
    SetPassword { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a machine token for an account and print it on standard output, once.
    Issue {
        /// The account the token acts as.
        #[arg(long)]
        user: String,
        /// A label saying what uses the token.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in days.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
}

async fn connect(location: &Location) -> anyhow::Result<Database> {
    if location.database_url.is_none() {
        std::fs::create_dir_all(&location.data_dir)
            .with_context(|| format!("failed to create the data directory {}", location.data_dir.display()))?;
    }
    let db = Database::connect(&location.database_url()).await?;
    // An account added before the first start must not keep the first admin from being
    // created, so the command line creates it the same way `serve` does.
    super::ensure_first_admin(&AccountStore::new(db.clone()))
        .await
        .context("failed to create the first admin account")?;
    Ok(db)
}

fn parse_username(name: &str) -> anyhow::Result<Username> {
    Username::parse(name).with_context(|| format!("invalid username `{name}`"))
}

pub async fn run_user(location: &Location, command: UserCommand) -> anyhow::Result<ExitCode> {
    let db = connect(location).await?;
    let accounts = AccountStore::new(db.clone());
    let actor = Actor::system(Channel::Cli);

    match command {
        UserCommand::Add { name, role } => {
            let username = parse_username(&name)?;
            let password = read_password(&username)?;
            let hash = tokio::task::spawn_blocking(move || password.hash()).await?;
            let account = accounts.create(&actor, &username, &hash, role).await?;
            println!("created the account {} with the role {}", account.username, account.role);
        }
        UserCommand::List => {
            let listed = accounts.list().await?;
            // The username column is as wide as the longest name, up to the 64 allowed.
            let width = listed.iter().map(|a| a.username.as_str().len()).max().unwrap_or(0).max("USERNAME".len());
            println!("{:<width$} {:<9} {:<9} CREATED", "USERNAME", "ROLE", "STATE");
            for account in listed {
                let state = if account.is_disabled() { "disabled" } else { "enabled" };
                println!(
                    "{:<width$} {:<9} {:<9} {}",
                    account.username.as_str(),
                    account.role.as_str(),
                    state,
                    account.created_at
                );
            }
        }
        UserCommand::SetRole { name, role } => {
            let username = parse_username(&name)?;
            let before = accounts.find(&username).await?.map(|account| account.role);
            let account = accounts.set_role(&actor, &username, role).await?;
            match before {
                Some(before) if before != account.role => {
                    println!("{}: role {before} -> {}", account.username, account.role)
                }
                _ => println!("{} already has the role {}", account.username, account.role),
            }
        }
        UserCommand::Disable { name } => {
            let account = accounts.set_disabled(&actor, &parse_username(&name)?, true).await?;
            println!("disabled the account {}; its tokens stop working at once", account.username);
        }
        UserCommand::Enable { name } => {
            let account = accounts.set_disabled(&actor, &parse_username(&name)?, false).await?;
            println!("enabled the account {}", account.username);
        }
        UserCommand::SetPassword { name } => {
            let username = parse_username(&name)?;
            let password = read_password(&username)?;
            let hash = tokio::task::spawn_blocking(move || password.hash()).await?;
            accounts.set_password(&actor, &username, &hash).await?;
            println!("changed the password of {username}");
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn run_token(location: &Location, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Issue { user, name, days } = command;
    let db = connect(location).await?;
    let key = ServerKey::load(&location.data_dir)?;
    let auth = AuthService::new(&db, key, AuthConfig::for_command_line());

    let username = parse_username(&user)?;
    let Some(account) = auth.accounts.find(&username).await? else {
        bail!("no account named `{username}`: create it first with `ontology-registry user add`");
    };
    if account.is_disabled() {
        bail!("the account `{username}` is disabled: enable it first with `ontology-registry user enable`");
    }
    let lifetime = Duration::from_secs(u64::from(days) * 24 * 3600);
    let issued = auth
        .issue_token(&Actor::system(Channel::Cli), None, &account, TokenKind::Api, name.as_deref(), lifetime)
        .await?;

    eprintln!(
        "issued the token {} for {} (role {}), valid until {}",
        issued.record.jti, account.username, account.role, issued.record.expires_at
    );
    println!("{}", issued.token);
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Reads one line from standard input as the new password.
fn read_password(username: &Username) -> anyhow::Result<NewPassword> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for {username} (one line; it is shown as you type): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("failed to read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    NewPassword::parse(password).context("invalid password")
}
