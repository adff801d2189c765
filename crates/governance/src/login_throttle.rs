//! Failed sign-ins counted per account and per client address over a sliding window.
//! The counts live in the database, so every node of a PostgreSQL deployment reads the
//! same ones and a restart does not reset them.

use std::time::Duration;

use sqlx::Row;

use crate::audit::{self, Actor, AuditEvent, actions};
use crate::db::{Backend, Database};

/// How many failed sign-ins are allowed within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures for one username, from any address, before further attempts are rejected.
    pub max_failures_per_account: u32,
    /// Failures from one client address, for any username.
    pub max_failures_per_client: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    db: Database,
}

/// A sign-in attempt that counts as a failure until it is known to have succeeded. Counting
/// it before the password is checked means that parallel attempts see each other, so no
/// burst of them gets past the limits.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until `succeeded` or `failed` settles it"]
pub struct Attempt {
    id: i64,
}

/// The decision on a sign-in attempt: admitted, or rejected until a later time.
#[derive(Debug)]
pub enum Admission {
    Admitted(Attempt),
    /// The wait before the next attempt, because a limit is reached.
    RetryAfter(Duration),
}

impl LoginThrottle {
    pub fn new(db: Database) -> LoginThrottle {
        LoginThrottle { db }
    }

    /// Admits an attempt for this username from this client and counts it, or returns how
    /// long the caller must wait when either has reached its limit. `account_key` is the
    /// lower-cased username as typed, whether or not such an account exists.
    pub async fn admit(
        &self,
        policy: &LoginPolicy,
        account_key: &str,
        client: &str,
        now_ms: i64,
    ) -> Result<Admission, sqlx::Error> {
        let window_ms = window_ms(policy);
        let since = now_ms - window_ms;

        // The count and the insert form one step: SQLite's write transaction excludes other
        // writers, and on PostgreSQL the table lock serialises admissions across nodes.
        let mut tx = self.db.begin_write().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE login_failures IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at_ms <= $1").bind(since).execute(&mut *tx).await?;

        let by_account = sqlx::query(
            "SELECT at_ms FROM login_failures WHERE account_key = $1 AND at_ms > $2 ORDER BY at_ms DESC LIMIT $3",
        )
        .bind(account_key)
        .bind(since)
        .bind(i64::from(policy.max_failures_per_account))
        .fetch_all(&mut *tx)
        .await?;
        let by_client = sqlx::query(
            "SELECT at_ms FROM login_failures WHERE client = $1 AND at_ms > $2 ORDER BY at_ms DESC LIMIT $3",
        )
        .bind(client)
        .bind(since)
        .bind(i64::from(policy.max_failures_per_client))
        .fetch_all(&mut *tx)
        .await?;

        let times = |rows: Vec<sqlx::any::AnyRow>| -> Result<Vec<i64>, sqlx::Error> {
            rows.iter().map(|row| row.try_get("at_ms")).collect()
        };
        let waits = [
            wait_ms(&times(by_account)?, policy.max_failures_per_account, window_ms, now_ms),
            wait_ms(&times(by_client)?, policy.max_failures_per_client, window_ms, now_ms),
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            tx.commit().await?;
            return Ok(Admission::RetryAfter(Duration::from_millis(wait.max(0) as u64)));
        }

        let id: i64 =
            sqlx::query("INSERT INTO login_failures (at_ms, account_key, client) VALUES ($1, $2, $3) RETURNING id")
                .bind(now_ms)
                .bind(account_key)
                .bind(client)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
        tx.commit().await?;
        Ok(Admission::Admitted(Attempt { id }))
    }

    /// Settles an attempt whose password was right: it stops counting, and so do the
    /// account's earlier failures, so earlier typos do not count towards a later lockout.
    /// The client's failures for other usernames stay.
    pub async fn succeeded(&self, attempt: Attempt, account_key: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM login_failures WHERE id = $1").bind(attempt.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM login_failures WHERE account_key = $1").bind(account_key).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Settles an attempt that failed: it keeps counting, and the audit log records it.
    pub async fn failed(&self, attempt: Attempt, actor: &Actor, account_key: &str) -> Result<(), sqlx::Error> {
        let Attempt { id: _ } = attempt;
        let event = AuditEvent {
            action: actions::LOGIN_FAILED,
            target_kind: "account",
            target_id: account_key,
            before: None,
            after: None,
        };
        let mut tx = self.db.begin_write().await?;
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await
    }
}

fn window_ms(policy: &LoginPolicy) -> i64 {
    i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Milliseconds until fewer than `max` failures remain in the window, given the failure
/// times newest first (at most `max` of them), or `None` when fewer than `max` are there.
fn wait_ms(times_newest_first: &[i64], max: u32, window_ms: i64, now_ms: i64) -> Option<i64> {
    let max = usize::try_from(max).ok()?;
    if max == 0 || times_newest_first.len() < max {
        return None;
    }
    // The oldest of the `max` newest failures leaves the window first.
    let oldest = times_newest_first[max - 1];
    Some(oldest + window_ms - now_ms)
}

#[cfg(test)]
mod tests {
    use super::wait_ms;

    #[test]
    fn wait_none_under_limit() {
        assert_eq!(wait_ms(&[900, 800], 3, 1000, 1000), None);
    }

    #[test]
    fn wait_until_oldest_leaves_window() {
        assert_eq!(wait_ms(&[900, 800, 700], 3, 1000, 1000), Some(700));
    }

    #[test]
    fn wait_none_for_zero_limit() {
        assert_eq!(wait_ms(&[900], 0, 1000, 1000), None);
    }
}
