//! Failed sign-ins counted per account and per client address over a sliding window.
//! The counts live in the database, so every node of a PostgreSQL deployment reads the
//! same ones and a restart does not reset them.

use std::time::Duration;

use sqlx::Row;

use crate::audit::{self, Actor, AuditEvent, actions};
use crate::db::Database;

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

impl LoginThrottle {
    pub fn new(db: Database) -> LoginThrottle {
        LoginThrottle { db }
    }

    /// Returns how long the caller must wait before the next attempt for this username or
    /// from this client, or `None` when both are under their limits. `account_key` is the
    /// lower-cased username as typed, whether or not such an account exists.
    ///
    /// NOTE: this check and the later [`LoginThrottle::record_failure`] are separate
    /// statements, so attempts that run in parallel can each pass the check and exceed
    /// the limit by the number of concurrent requests.
    pub async fn retry_after(
        &self,
        policy: &LoginPolicy,
        account_key: &str,
        client: &str,
        now_ms: i64,
    ) -> Result<Option<Duration>, sqlx::Error> {
        let window_ms = window_ms(policy);
        let since = now_ms - window_ms;

        let by_account = sqlx::query(
            "SELECT at_ms FROM login_failures WHERE account_key = $1 AND at_ms > $2 ORDER BY at_ms DESC LIMIT $3",
        )
        .bind(account_key)
        .bind(since)
        .bind(i64::from(policy.max_failures_per_account))
        .fetch_all(self.db.pool())
        .await?;
        let by_client = sqlx::query(
            "SELECT at_ms FROM login_failures WHERE client = $1 AND at_ms > $2 ORDER BY at_ms DESC LIMIT $3",
        )
        .bind(client)
        .bind(since)
        .bind(i64::from(policy.max_failures_per_client))
        .fetch_all(self.db.pool())
        .await?;

        let times = |rows: Vec<sqlx::any::AnyRow>| -> Result<Vec<i64>, sqlx::Error> {
            rows.iter().map(|row| row.try_get("at_ms")).collect()
        };
        let waits = [
            wait_ms(&times(by_account)?, policy.max_failures_per_account, window_ms, now_ms),
            wait_ms(&times(by_client)?, policy.max_failures_per_client, window_ms, now_ms),
        ];
        Ok(waits.into_iter().flatten().max().map(|ms| Duration::from_millis(ms.max(0) as u64)))
    }

    /// Counts one failure with its audit row, and deletes failures that have left the
    /// window.
    pub async fn record_failure(
        &self,
        policy: &LoginPolicy,
        actor: &Actor,
        account_key: &str,
        client: &str,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM login_failures WHERE at_ms <= $1")
            .bind(now_ms - window_ms(policy))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO login_failures (at_ms, account_key, client) VALUES ($1, $2, $3)")
            .bind(now_ms)
            .bind(account_key)
            .bind(client)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent {
            action: actions::LOGIN_FAILED,
            target_kind: "account",
            target_id: account_key,
            before: None,
            after: None,
        };
        audit::append(&mut tx, actor, &event).await?;
        tx.commit().await
    }

    /// Forgets an account's failures after it signs in, so earlier typos do not count
    /// towards a later lockout. The client's failures stay.
    pub async fn clear_account(&self, account_key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_failures WHERE account_key = $1")
            .bind(account_key)
            .execute(self.db.pool())
            .await
            .map(|_| ())
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
