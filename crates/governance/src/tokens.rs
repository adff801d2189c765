//! Issued tokens by id (`jti`): web and API sessions from signing in, and long-lived
//! machine tokens that admins issue. A signed token is accepted only while its row exists
//! and is not revoked, so revoking the row ends the token at once.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::accounts::{Account, Username};
use crate::audit::{self, Actor, AuditEvent, actions};
use crate::db::{Database, parse_column};
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// From signing in, with the session lifetime.
    Session,
    /// A named machine token issued by an admin.
    Api,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;

    fn from_str(text: &str) -> Result<TokenKind, String> {
        match text {
            "session" => Ok(TokenKind::Session),
            "api" => Ok(TokenKind::Api),
            other => Err(format!("unknown token kind `{other}`")),
        }
    }
}

/// A token to record as issued.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub jti: &'a str,
    pub account: &'a Account,
    pub kind: TokenKind,
    /// A label for machine tokens, such as `nightly BI export`.
    pub name: Option<&'a str>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A stored token, without the token itself (which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub jti: String,
    pub username: Username,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub issued_at: String,
    pub expires_at: String,
    /// The admin who issued a machine token through the API; `None` for sessions and
    /// tokens issued at the command line.
    pub issued_by: Option<Username>,
    pub revoked_at: Option<String>,
}

impl TokenRecord {
    fn from_row(row: &AnyRow) -> Result<TokenRecord, sqlx::Error> {
        let issued_by: Option<String> = row.try_get("issued_by")?;
        Ok(TokenRecord {
            jti: row.try_get("jti")?,
            username: parse_column("username", &row.try_get::<String, _>("username")?)?,
            kind: parse_column("kind", &row.try_get::<String, _>("kind")?)?,
            name: row.try_get("name")?,
            issued_at: row.try_get("issued_at")?,
            expires_at: row.try_get("expires_at")?,
            issued_by: issued_by.map(|name| parse_column("issued_by", &name)).transpose()?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

/// A token's state and its account's current state, read on every authenticated request.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub kind: TokenKind,
    pub revoked: bool,
    pub account: Account,
}

/// The query of token records followed by the given clause, as one static string.
macro_rules! record_query {
    ($clause:literal) => {
        concat!(
            "SELECT t.jti, a.username, t.kind, t.name, t.issued_at, t.expires_at, ",
            "i.username AS issued_by, t.revoked_at ",
            "FROM tokens t JOIN accounts a ON a.id = t.account_id LEFT JOIN accounts i ON i.id = t.issued_by ",
            $clause
        )
    };
}

#[derive(Debug, Clone)]
pub struct TokenStore {
    db: Database,
}

impl TokenStore {
    pub fn new(db: Database) -> TokenStore {
        TokenStore { db }
    }

    /// Records a token as issued, with its audit row, and returns the stored record. For a
    /// session it also deletes the rows of sessions that have expired, which nothing can
    /// use any more.
    pub async fn issue(
        &self,
        actor: &Actor,
        issuer: Option<&Account>,
        token: &NewToken<'_>,
    ) -> Result<TokenRecord, sqlx::Error> {
        let issued_at = timestamp::format(token.issued_at);
        let expires_at = timestamp::format(token.expires_at);
        let mut tx = self.db.begin_write().await?;
        if token.kind == TokenKind::Session {
            sqlx::query("DELETE FROM tokens WHERE kind = 'session' AND expires_at < $1")
                .bind(&issued_at)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO tokens (jti, account_id, kind, name, issued_at, expires_at, issued_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.jti)
        .bind(token.account.id)
        .bind(token.kind.as_str())
        .bind(token.name)
        .bind(&issued_at)
        .bind(&expires_at)
        .bind(issuer.map(|account| account.id))
        .execute(&mut *tx)
        .await?;

        let event = match token.kind {
            TokenKind::Session => AuditEvent {
                action: actions::SESSION_STARTED,
                target_kind: "token",
                target_id: token.jti,
                before: None,
                after: Some(token.account.username.as_str()),
            },
            TokenKind::Api => AuditEvent {
                action: actions::TOKEN_ISSUED,
                target_kind: "token",
                target_id: token.jti,
                before: None,
                after: Some(token.account.username.as_str()),
            },
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;

        Ok(TokenRecord {
            jti: token.jti.to_owned(),
            username: token.account.username.clone(),
            kind: token.kind,
            name: token.name.map(str::to_owned),
            issued_at,
            expires_at,
            issued_by: issuer.map(|account| account.username.clone()),
            revoked_at: None,
        })
    }

    /// Returns the token's state and its account, or `None` for an unknown id.
    pub async fn holder(&self, jti: &str) -> Result<Option<TokenHolder>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT t.kind, t.revoked_at, a.id, a.username, a.role, a.created_at, a.disabled_at \
             FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.jti = $1",
        )
        .bind(jti)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(TokenHolder {
                kind: parse_column("kind", &row.try_get::<String, _>("kind")?)?,
                revoked: row.try_get::<Option<String>, _>("revoked_at")?.is_some(),
                account: Account::from_row(&row)?,
            })
        })
        .transpose()
    }

    pub async fn get(&self, jti: &str) -> Result<Option<TokenRecord>, sqlx::Error> {
        let row = sqlx::query(record_query!("WHERE t.jti = $1")).bind(jti).fetch_optional(self.db.pool()).await?;
        row.as_ref().map(TokenRecord::from_row).transpose()
    }

    /// Machine tokens, newest first, revoked and expired ones included.
    pub async fn list_api_tokens(&self) -> Result<Vec<TokenRecord>, sqlx::Error> {
        let rows = sqlx::query(record_query!("WHERE t.kind = 'api' ORDER BY t.issued_at DESC, t.jti"))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(TokenRecord::from_row).collect()
    }

    /// Lists the sessions that still work (neither revoked nor expired), newest first, at
    /// most `limit` of them.
    pub async fn list_active_sessions(&self, limit: i64) -> Result<Vec<TokenRecord>, sqlx::Error> {
        // Stored timestamps sort as text in time order, so the comparison runs in SQL.
        let rows = sqlx::query(record_query!(
            "WHERE t.kind = 'session' AND t.revoked_at IS NULL AND t.expires_at > $1 \
             ORDER BY t.issued_at DESC, t.jti LIMIT $2"
        ))
        .bind(timestamp::now())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(TokenRecord::from_row).collect()
    }

    /// Revokes a token and writes the audit row with `action`
    /// ([`actions::TOKEN_REVOKED`], or [`actions::SESSION_ENDED`] for signing out).
    /// Returns `None` for an unknown id. Revoking a revoked token changes nothing.
    pub async fn revoke(&self, actor: &Actor, jti: &str, action: &str) -> Result<Option<TokenRecord>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(record_query!("WHERE t.jti = $1")).bind(jti).fetch_optional(&mut *tx).await?;
        let Some(mut record) = row.as_ref().map(TokenRecord::from_row).transpose()? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(Some(record));
        }

        let revoked_at = timestamp::now();
        let updated = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL")
            .bind(&revoked_at)
            .bind(jti)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            // Another transaction revoked it between the read and the update.
            return Ok(self.get(jti).await?);
        }
        let event = AuditEvent {
            action,
            target_kind: "token",
            target_id: jti,
            before: None,
            after: Some(record.username.as_str()),
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await?;
        record.revoked_at = Some(revoked_at);
        Ok(Some(record))
    }
}
