//! Authentication and authorisation: signing in, session and machine tokens, the role
//! check in front of protected routes, and the first admin account.
//!
//! Every token is a JWT (HS256) whose `jti` has a row in the database. A request is
//! authenticated only when the signature and expiry hold, the row exists and is not
//! revoked, and the account is enabled. The account's role is read from the database on
//! every request, so a role change or a disabled account takes effect at once.

pub mod cli;
pub mod client;
pub mod config;
pub mod keys;
pub mod layer;

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use ontology_governance::accounts::{self, FirstAdmin, NewPassword};
use ontology_governance::tokens::NewToken;
use ontology_governance::{
    Account, AccountStore, Actor, Admission, AuditLog, Channel, Database, LoginThrottle, TokenKind, TokenRecord,
    TokenStore, Username,
};
use time::OffsetDateTime;

pub use config::AuthConfig;
use keys::{Claims, ServerKey, TokenRejection};
pub use layer::Principal;

use crate::problem::ApiError;

pub const ADMIN_PASSWORD_ENV: &str = "REGISTRY_ADMIN_PASSWORD";

/// Accounts, tokens and the server key, shared by the request handlers.
pub struct AuthService {
    pub accounts: AccountStore,
    pub tokens: TokenStore,
    pub audit: AuditLog,
    pub throttle: LoginThrottle,
    pub key: ServerKey,
    pub config: AuthConfig,
}

/// A token as issued: the JWT, shown once, and its stored record.
pub struct IssuedToken {
    pub token: String,
    pub record: TokenRecord,
}

/// The reason signing in failed.
#[derive(Debug)]
pub enum SignInError {
    /// Unknown username, wrong password or disabled account. The response does not
    /// distinguish them.
    InvalidCredentials,
    /// Too many failures for this username or from this client; retry after the delay.
    RateLimited(Duration),
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for SignInError {
    fn from(error: sqlx::Error) -> SignInError {
        SignInError::Internal(error.into())
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> ApiError {
        match error {
            SignInError::InvalidCredentials => ApiError::unauthenticated("invalid username or password"),
            SignInError::RateLimited(wait) => ApiError::rate_limited(
                "too many failed sign-ins for this username or from this address; retry after the delay in Retry-After",
                retry_after_secs(wait),
            ),
            SignInError::Internal(error) => ApiError::Internal(error),
        }
    }
}

/// Whole seconds to wait, rounded up so a client that waits exactly that long succeeds.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

impl AuthService {
    pub fn new(db: &Database, key: ServerKey, config: AuthConfig) -> AuthService {
        AuthService {
            accounts: AccountStore::new(db.clone()),
            tokens: TokenStore::new(db.clone()),
            audit: AuditLog::new(db.clone()),
            throttle: LoginThrottle::new(db.clone()),
            key,
            config,
        }
    }

    /// Checks a bearer token or session cookie value and loads its account as it is now.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self.key.verify(token).map_err(|rejection| match rejection {
            TokenRejection::Expired => ApiError::unauthenticated("the token has expired; sign in again"),
            TokenRejection::Invalid => ApiError::unauthenticated("the token is invalid"),
        })?;
        let Some(holder) = self.tokens.holder(&claims.jti).await? else {
            return Err(ApiError::unauthenticated("the token is invalid"));
        };
        if holder.account.username.as_str() != claims.sub {
            return Err(ApiError::unauthenticated("the token is invalid"));
        }
        if holder.revoked {
            return Err(ApiError::unauthenticated("the token has been revoked"));
        }
        if holder.account.is_disabled() {
            return Err(ApiError::unauthenticated("the account is disabled"));
        }
        Ok(Principal { account: holder.account, jti: claims.jti, kind: holder.kind })
    }

    /// Signs in with a username and password and issues a session token. Failures are
    /// counted for the rate limits and audited; the password is never logged or stored.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
        channel: Channel,
    ) -> Result<IssuedToken, SignInError> {
        let account_key: String = username.to_ascii_lowercase().chars().take(accounts::USERNAME_MAX_CHARS).collect();
        let client_text = client.to_string();
        let policy = &self.config.login_policy;

        let now_ms = now_millis();
        let attempt = match self.throttle.admit(policy, &account_key, &client_text, now_ms).await? {
            Admission::Admitted(attempt) => attempt,
            Admission::RetryAfter(wait) => {
                tracing::warn!(username = %account_key, client = %client_text, "sign-in rejected: rate limit reached");
                return Err(SignInError::RateLimited(wait));
            }
        };

        let credentials = match Username::parse(username) {
            Ok(username) => self.accounts.credentials(&username).await?,
            Err(_) => None,
        };
        let candidate = password.to_owned();
        let verified = match credentials {
            Some((account, hash)) => {
                let matches = tokio::task::spawn_blocking(move || accounts::verify_password(&hash, &candidate))
                    .await
                    .map_err(|error| SignInError::Internal(error.into()))?;
                matches.then_some(account)
            }
            None => {
                tokio::task::spawn_blocking(move || accounts::verify_password_of_unknown_account(&candidate))
                    .await
                    .map_err(|error| SignInError::Internal(error.into()))?;
                None
            }
        };

        // A disabled account gets the response of a wrong password, so that the response does
        // not tell a guesser that the password was right.
        let account = match verified {
            Some(account) if !account.is_disabled() => account,
            found => {
                let actor = Actor { username: None, channel, client: Some(client_text.clone()) };
                self.throttle.failed(attempt, &actor, &account_key).await?;
                match found {
                    Some(_) => {
                        tracing::info!(username = %account_key, client = %client_text, "sign-in rejected: the account is disabled")
                    }
                    None => {
                        tracing::info!(username = %account_key, client = %client_text, "sign-in failed: invalid username or password")
                    }
                }
                return Err(SignInError::InvalidCredentials);
            }
        };

        self.throttle.succeeded(attempt, &account_key).await?;
        let actor = Actor { username: Some(account.username.to_string()), channel, client: Some(client_text) };
        let issued = self
            .issue_token(&actor, None, &account, TokenKind::Session, None, self.config.session_lifetime)
            .await
            .map_err(SignInError::Internal)?;
        tracing::info!(username = %account.username, jti = %issued.record.jti, channel = channel.as_str(), "signed in");
        Ok(issued)
    }

    /// Signs and records a token for `account`. `issuer` is the admin issuing a machine
    /// token through the API.
    pub async fn issue_token(
        &self,
        actor: &Actor,
        issuer: Option<&Account>,
        account: &Account,
        kind: TokenKind,
        name: Option<&str>,
        lifetime: Duration,
    ) -> anyhow::Result<IssuedToken> {
        let issued_at = OffsetDateTime::now_utc().replace_nanosecond(0)?;
        let expires_at = issued_at + lifetime;
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let claims = Claims {
            sub: account.username.to_string(),
            role: account.role.to_string(),
            iat: issued_at.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            jti: jti.clone(),
        };
        let token = self.key.sign(&claims)?;
        let new = NewToken { jti: &jti, account, kind, name, issued_at, expires_at };
        let record = self.tokens.issue(actor, issuer, &new).await.context("failed to record an issued token")?;
        Ok(IssuedToken { token, record })
    }
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Creates the account `admin` when the database has no account yet, with the password
/// from `REGISTRY_ADMIN_PASSWORD` or a generated one that is logged this once.
pub async fn ensure_first_admin(accounts: &AccountStore) -> anyhow::Result<()> {
    if accounts.any_exist().await? {
        return Ok(());
    }
    let configured = std::env::var(ADMIN_PASSWORD_ENV).ok().filter(|value| !value.is_empty());
    let generated = configured.is_none();
    let password_text = configured.unwrap_or_else(generate_password);
    let password = NewPassword::parse(&password_text).with_context(|| format!("invalid {ADMIN_PASSWORD_ENV}"))?;
    let hash = tokio::task::spawn_blocking(move || password.hash()).await?;

    match accounts.create_first_admin(&hash).await? {
        FirstAdmin::AccountsExist => Ok(()),
        FirstAdmin::Created if generated => {
            // The one secret the registry ever logs, because no one could sign in otherwise.
            tracing::warn!(
                "created the account `admin` with the generated password {}; sign in and replace it with `ontology-registry user set-password admin`",
                password_text
            );
            Ok(())
        }
        FirstAdmin::Created => {
            tracing::info!("created the account `admin` with the password from {ADMIN_PASSWORD_ENV}");
            Ok(())
        }
    }
}

/// Generates a random password of 24 characters from an alphabet without look-alikes (no `0`/`O`,
/// `1`/`l`/`I`), about 140 bits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut password = String::with_capacity(24);
    while password.len() < 24 {
        for byte in keys::random_bytes::<32>() {
            // Rejection sampling keeps every character equally likely.
            let limit = 256 - 256 % ALPHABET.len();
            if usize::from(byte) < limit && password.len() < 24 {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    password
}
