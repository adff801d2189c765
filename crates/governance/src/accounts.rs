//! Accounts: usernames, roles, Argon2id password hashes and the enabled/disabled state.
//!
//! Every change to an account is written in one transaction together with its audit row.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, Actor, AuditEvent, actions};
use crate::db::{Backend, Database, parse_column};
use crate::timestamp;

/// The permission level of an account. Each role includes every role before it, so `Ord` compares
/// privilege: `Viewer < Editor < Reviewer < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads what requires signing in.
    Viewer,
    /// Proposes changes.
    Editor,
    /// Reviews and merges proposals, triages disputes.
    Reviewer,
    /// Manages accounts, tokens and settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Reviewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: use viewer, editor, reviewer or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|role| role.as_str() == text).ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

pub const USERNAME_MAX_CHARS: usize = 64;

/// A valid username: 1..=64 of `[a-z0-9_.-]`. Usernames are case-insensitive, so parsing
/// lower-cases ASCII letters first and rejects any other character.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the username is empty")]
    Empty,
    #[error("the username is longer than {USERNAME_MAX_CHARS} characters")]
    TooLong,
    #[error("the username contains {0:?}: use only letters a-z, digits, `_`, `.` and `-`")]
    InvalidCharacter(char),
}

impl Username {
    pub fn parse(text: &str) -> Result<Username, UsernameError> {
        // ASCII lower-casing only: Unicode case mapping would turn look-alikes such as the
        // Kelvin sign into `k` and let two spellings name one account.
        let lower = text.to_ascii_lowercase();
        if lower.is_empty() {
            return Err(UsernameError::Empty);
        }
        if let Some(invalid) = lower.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-')) {
            return Err(UsernameError::InvalidCharacter(invalid));
        }
        if lower.len() > USERNAME_MAX_CHARS {
            return Err(UsernameError::TooLong);
        }
        Ok(Username(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(text: &str) -> Result<Username, UsernameError> {
        Username::parse(text)
    }
}

pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longer input is rejected before hashing, so a huge body cannot buy minutes of Argon2.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// A password accepted for a new or changed account.
pub struct NewPassword(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is shorter than {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("the password is longer than {PASSWORD_MAX_BYTES} bytes")]
    TooLong,
    #[error("the password is only whitespace; choose one with letters, digits or symbols")]
    Blank,
}

impl NewPassword {
    pub fn parse(text: &str) -> Result<NewPassword, PasswordError> {
        if text.is_empty() {
            return Err(PasswordError::Empty);
        }
        if text.chars().count() < PASSWORD_MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if text.len() > PASSWORD_MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        if text.trim().is_empty() {
            return Err(PasswordError::Blank);
        }
        Ok(NewPassword(text.to_owned()))
    }

    /// Hashes with Argon2id at the `argon2` crate's default parameters (version 0x13,
    /// 19 MiB of memory, 2 passes, 1 lane) and a random salt, as a PHC string. CPU-bound
    /// for tens of milliseconds: call it off the async runtime.
    pub fn hash(&self) -> String {
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .expect("Argon2 hashes with its default parameters")
            .to_string()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

/// Checks a candidate password against a stored PHC hash, with the parameters stored in
/// the hash. CPU-bound: call it off the async runtime.
pub fn verify_password(stored_hash: &str, candidate: &str) -> bool {
    if candidate.len() > PASSWORD_MAX_BYTES {
        return false;
    }
    match PasswordHash::new(stored_hash) {
        Ok(hash) => Argon2::default().verify_password(candidate.as_bytes(), &hash).is_ok(),
        Err(error) => {
            tracing::error!(%error, "a stored password hash does not parse");
            false
        }
    }
}

/// Spends the time of one verification against a throw-away hash. Logins for unknown
/// usernames call it, so response times do not reveal which usernames exist.
pub fn verify_password_of_unknown_account(candidate: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| NewPassword("dummy password for timing".into()).hash());
    let _ = verify_password(hash, candidate);
}

/// A stored account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: Username,
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// When the account was disabled, or `None` while it may sign in.
    pub disabled_at: Option<String>,
}

impl Account {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
        Ok(Account {
            id: row.try_get("id")?,
            username: parse_column("username", &row.try_get::<String, _>("username")?)?,
            role: parse_column("role", &row.try_get::<String, _>("role")?)?,
            created_at: row.try_get("created_at")?,
            disabled_at: row.try_get("disabled_at")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account named `{0}` already exists")]
    UsernameTaken(Username),
    #[error("no account named `{0}`")]
    NotFound(Username),
    #[error("`{0}` is the last enabled admin: make another account admin first")]
    LastAdmin(Username),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// The outcome of creating the first admin at start-up.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstAdmin {
    Created,
    /// Some account exists already, so nothing was done.
    AccountsExist,
}

pub const FIRST_ADMIN: &str = "admin";

/// Reads and changes accounts.
#[derive(Debug, Clone)]
pub struct AccountStore {
    db: Database,
}

impl AccountStore {
    pub fn new(db: Database) -> AccountStore {
        AccountStore { db }
    }

    /// Creates the account `admin` with the given hash when the table has no account at
    /// all. Several nodes starting at once create it once: the insert skips an existing
    /// name.
    pub async fn create_first_admin(&self, password_hash: &str) -> Result<FirstAdmin, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM accounts").fetch_one(&mut *tx).await?.try_get("n")?;
        if count > 0 {
            return Ok(FirstAdmin::AccountsExist);
        }
        let inserted = sqlx::query(
            "INSERT INTO accounts (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(FIRST_ADMIN)
        .bind(password_hash)
        .bind(Role::Admin.as_str())
        .bind(timestamp::now())
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            return Ok(FirstAdmin::AccountsExist);
        }
        let event = AuditEvent {
            action: actions::ACCOUNT_CREATED,
            target_kind: "account",
            target_id: FIRST_ADMIN,
            before: None,
            after: Some(Role::Admin.as_str()),
        };
        audit::append(&mut tx, &Actor::system(audit::Channel::Startup), &event).await?;
        tx.commit().await?;
        Ok(FirstAdmin::Created)
    }

    pub async fn create(
        &self,
        actor: &Actor,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<Account, AccountError> {
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO accounts (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO NOTHING RETURNING id, username, role, created_at, disabled_at",
        )
        .bind(username.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(timestamp::now())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(AccountError::UsernameTaken(username.clone()));
        };
        let account = Account::from_row(&row)?;
        let event = AuditEvent {
            action: actions::ACCOUNT_CREATED,
            target_kind: "account",
            target_id: username.as_str(),
            before: None,
            after: Some(role.as_str()),
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Returns whether any account exists.
    pub async fn any_exist(&self) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts").fetch_one(self.db.pool()).await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Returns every account, ordered by username.
    pub async fn list(&self) -> Result<Vec<Account>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, username, role, created_at, disabled_at FROM accounts ORDER BY username")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(Account::from_row).collect()
    }

    pub async fn find(&self, username: &Username) -> Result<Option<Account>, sqlx::Error> {
        let row = sqlx::query("SELECT id, username, role, created_at, disabled_at FROM accounts WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(Account::from_row).transpose()
    }

    /// Returns the account with its stored password hash, for signing in.
    pub async fn credentials(&self, username: &Username) -> Result<Option<(Account, String)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, username, role, created_at, disabled_at, password_hash FROM accounts WHERE username = $1",
        )
        .bind(username.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| Ok((Account::from_row(&row)?, row.try_get("password_hash")?))).transpose()
    }

    /// Changes an account's role. Setting the role it has already changes nothing and
    /// writes no audit row.
    pub async fn set_role(&self, actor: &Actor, username: &Username, role: Role) -> Result<Account, AccountError> {
        let mut tx = self.db.begin_write().await?;
        let account = self.lock(&mut tx, username).await?;
        if account.role == role {
            return Ok(account);
        }
        if account.role == Role::Admin && !account.is_disabled() {
            ensure_other_admin(&mut tx, &account).await?;
        }
        sqlx::query("UPDATE accounts SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent {
            action: actions::ACCOUNT_ROLE_CHANGED,
            target_kind: "account",
            target_id: username.as_str(),
            before: Some(account.role.as_str()),
            after: Some(role.as_str()),
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;
        Ok(Account { role, ..account })
    }

    /// Disables or re-enables an account. A disabled account cannot sign in, and every
    /// token issued to it stops working at once because each request checks the account.
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        username: &Username,
        disabled: bool,
    ) -> Result<Account, AccountError> {
        let mut tx = self.db.begin_write().await?;
        let account = self.lock(&mut tx, username).await?;
        if account.is_disabled() == disabled {
            return Ok(account);
        }
        if disabled && account.role == Role::Admin {
            ensure_other_admin(&mut tx, &account).await?;
        }
        let disabled_at = disabled.then(timestamp::now);
        sqlx::query("UPDATE accounts SET disabled_at = $1 WHERE id = $2")
            .bind(disabled_at.as_deref())
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent {
            action: if disabled { actions::ACCOUNT_DISABLED } else { actions::ACCOUNT_ENABLED },
            target_kind: "account",
            target_id: username.as_str(),
            before: Some(if disabled { "enabled" } else { "disabled" }),
            after: Some(if disabled { "disabled" } else { "enabled" }),
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;
        Ok(Account { disabled_at, ..account })
    }

    pub async fn set_password(
        &self,
        actor: &Actor,
        username: &Username,
        password_hash: &str,
    ) -> Result<(), AccountError> {
        let mut tx = self.db.begin_write().await?;
        let account = self.lock(&mut tx, username).await?;
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent {
            action: actions::ACCOUNT_PASSWORD_CHANGED,
            target_kind: "account",
            target_id: username.as_str(),
            before: None,
            after: None,
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads an account inside a write transaction that changes accounts. On PostgreSQL it
    /// first locks the accounts table against other writers, so such transactions run one
    /// at a time. Two admins demoting each other at once then cannot both pass the check
    /// that another admin remains, and the audit row's `before` is the value this
    /// transaction replaces. SQLite's `BEGIN IMMEDIATE` already takes the write lock.
    async fn lock(&self, tx: &mut sqlx::AnyConnection, username: &Username) -> Result<Account, AccountError> {
        if self.db.backend() == Backend::Postgres {
            // Readers (sign-in, token checks) take a lock this mode does not block.
            sqlx::query("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        }
        let row = sqlx::query("SELECT id, username, role, created_at, disabled_at FROM accounts WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => Ok(Account::from_row(&row)?),
            None => Err(AccountError::NotFound(username.clone())),
        }
    }
}

/// Fails unless an enabled admin other than `account` exists, so the registry always keeps
/// one account that can manage the others.
async fn ensure_other_admin(tx: &mut sqlx::AnyConnection, account: &Account) -> Result<(), AccountError> {
    let others: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1")
            .bind(account.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
    if others == 0 { Err(AccountError::LastAdmin(account.username.clone())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_order_follows_privilege() {
        assert!(Role::Viewer < Role::Editor);
        assert!(Role::Editor < Role::Reviewer);
        assert!(Role::Reviewer < Role::Admin);
    }

    #[test]
    fn role_parses_its_own_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn username_lower_cased() {
        assert_eq!(Username::parse("Alice.B-2_x").unwrap().as_str(), "alice.b-2_x");
    }

    #[test]
    fn username_rejects_bad_input() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse("a b"), Err(UsernameError::InvalidCharacter(' ')));
        assert_eq!(Username::parse("a/b"), Err(UsernameError::InvalidCharacter('/')));
        assert_eq!(Username::parse("\u{212A}elvin"), Err(UsernameError::InvalidCharacter('\u{212A}')));
        assert_eq!(Username::parse("é"), Err(UsernameError::InvalidCharacter('é')));
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::TooLong));
    }

    #[test]
    fn password_rules() {
        assert!(matches!(NewPassword::parse(""), Err(PasswordError::Empty)));
        assert!(matches!(NewPassword::parse("short"), Err(PasswordError::TooShort)));
        assert!(matches!(NewPassword::parse(&"x".repeat(1025)), Err(PasswordError::TooLong)));
        assert!(matches!(NewPassword::parse("        "), Err(PasswordError::Blank)));
        assert!(NewPassword::parse("long enough").is_ok());
    }

    #[test]
    fn password_hash_verifies() {
        let hash = NewPassword::parse("correct horse").unwrap().hash();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
    }
}
