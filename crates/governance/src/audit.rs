//! The audit log: one row per state-changing action, with who did it, through which
//! channel, when, on what, and the value before and after.
//!
//! The log is append-only. This module has no update or delete statement, and database
//! triggers reject `UPDATE`, `DELETE` (and on PostgreSQL `TRUNCATE`) on the table, so a
//! bug elsewhere cannot rewrite history either. Features that change state call [`append`]
//! inside their own write transaction, so the action and its audit row commit together.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::{Database, parse_column};
use crate::timestamp;

/// Action names written by the accounts and tokens code. Other features add their own, in
/// the same `noun.verb_past` form.
pub mod actions {
    pub const ACCOUNT_CREATED: &str = "account.created";
    pub const ACCOUNT_ROLE_CHANGED: &str = "account.role_changed";
    pub const ACCOUNT_DISABLED: &str = "account.disabled";
    pub const ACCOUNT_ENABLED: &str = "account.enabled";
    pub const ACCOUNT_PASSWORD_CHANGED: &str = "account.password_changed";
    pub const TOKEN_ISSUED: &str = "token.issued";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SESSION_STARTED: &str = "session.started";
    pub const SESSION_ENDED: &str = "session.ended";
    pub const LOGIN_FAILED: &str = "login.failed";
}

/// The interface through which an action reached the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The JSON API.
    Api,
    /// The web pages.
    Web,
    /// The `ontology-registry` command line, run by an operator with access to the database.
    Cli,
    /// The registry itself while it starts.
    Startup,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Web => "web",
            Channel::Cli => "cli",
            Channel::Startup => "startup",
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(text: &str) -> Result<Channel, String> {
        match text {
            "api" => Ok(Channel::Api),
            "web" => Ok(Channel::Web),
            "cli" => Ok(Channel::Cli),
            "startup" => Ok(Channel::Startup),
            other => Err(format!("unknown channel `{other}`")),
        }
    }
}

/// The account, channel and client address behind an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in account, `None` for the registry itself, the command line or an
    /// anonymous client.
    pub username: Option<String>,
    pub channel: Channel,
    /// The client's address as the registry determined it, for HTTP requests.
    pub client: Option<String>,
}

impl Actor {
    /// Returns the actor for the registry itself (first start) or an operator at the
    /// command line.
    pub fn system(channel: Channel) -> Actor {
        Actor { username: None, channel, client: None }
    }
}

/// The description of an action that a caller appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent<'a> {
    /// An action name such as `account.role_changed` (see [`actions`]).
    pub action: &'a str,
    /// The kind of the thing acted on, such as `account`, `token` or `proposal`.
    pub target_kind: &'a str,
    /// Its id: a username, a token id, a proposal id.
    pub target_id: &'a str,
    /// The relevant value before the action (a role, a version, a commit id), if any.
    pub before: Option<&'a str>,
    /// The relevant value after the action, if any.
    pub after: Option<&'a str>,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339 UTC, whole seconds.
    pub at: String,
    pub actor: Option<String>,
    pub channel: Channel,
    pub client: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Appends one row on the caller's connection, normally inside the transaction that makes
/// the change, and returns the row's id.
pub async fn append(connection: &mut AnyConnection, actor: &Actor, event: &AuditEvent<'_>) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audit_log \
         (at, actor, channel, client, action, target_kind, target_id, before_value, after_value) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(timestamp::now())
    .bind(actor.username.as_deref())
    .bind(actor.channel.as_str())
    .bind(actor.client.as_deref())
    .bind(event.action)
    .bind(event.target_kind)
    .bind(event.target_id)
    .bind(event.before)
    .bind(event.after)
    .fetch_one(connection)
    .await?;
    row.try_get("id")
}

/// Reads the audit log.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Database,
}

impl AuditLog {
    pub fn new(db: Database) -> AuditLog {
        AuditLog { db }
    }

    /// Returns up to `limit` entries, newest first, all older than the entry `before` when
    /// it is given. Ids only grow, so paging by id is stable while rows are appended.
    pub async fn page(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, at, actor, channel, client, action, target_kind, target_id, before_value, after_value \
             FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    channel: parse_column("channel", &row.try_get::<String, _>("channel")?)?,
                    client: row.try_get("client")?,
                    action: row.try_get("action")?,
                    target_kind: row.try_get("target_kind")?,
                    target_id: row.try_get("target_id")?,
                    before: row.try_get("before_value")?,
                    after: row.try_get("after_value")?,
                })
            })
            .collect()
    }
}
