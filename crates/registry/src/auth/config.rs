//! Settings of signing in, sessions and the login rate limits.

use std::time::Duration;

use clap::Args;
use ontology_governance::LoginPolicy;

use super::client::TrustedProxies;

/// Command-line options and environment variables of `serve` that concern accounts.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Lifetime of a session token from signing in (API or web), in seconds.
    #[arg(long, env = "REGISTRY_SESSION_LIFETIME_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=30 * 24 * 3600))]
    pub session_lifetime_secs: u64,
    /// Failed sign-ins for one username within the window before further attempts are
    /// rejected with 429.
    #[arg(long, env = "REGISTRY_LOGIN_MAX_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures: u32,
    /// Failed sign-ins from one client address, for any username, within the window.
    #[arg(long, env = "REGISTRY_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures_per_address: u32,
    /// Length of the sliding window that failed sign-ins are counted over, in seconds.
    #[arg(long, env = "REGISTRY_LOGIN_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub login_window_secs: u64,
    /// Comma-separated addresses or CIDR networks of reverse proxies whose
    /// X-Forwarded-For header is believed. Empty: the socket's peer is the client.
    #[arg(long, env = "REGISTRY_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_lifetime: Duration,
    pub login_policy: LoginPolicy,
    pub trusted_proxies: TrustedProxies,
    /// Whether cookies carry `Secure`: set when the public URL is `https`.
    pub secure_cookies: bool,
}

impl AuthConfig {
    pub fn from_args(args: &AuthArgs, public_url: Option<&str>) -> anyhow::Result<AuthConfig> {
        Ok(AuthConfig {
            session_lifetime: Duration::from_secs(args.session_lifetime_secs),
            login_policy: LoginPolicy {
                max_failures_per_account: args.login_max_failures,
                max_failures_per_client: args.login_max_failures_per_address,
                window: Duration::from_secs(args.login_window_secs),
            },
            trusted_proxies: TrustedProxies::parse(&args.trusted_proxies)?,
            secure_cookies: public_url.is_some_and(|url| url.to_ascii_lowercase().starts_with("https://")),
        })
    }
}

impl AuthConfig {
    /// Settings for commands that issue tokens without serving; the login and cookie
    /// settings do not apply there.
    pub fn for_command_line() -> AuthConfig {
        AuthConfig {
            session_lifetime: Duration::from_secs(3600),
            login_policy: LoginPolicy {
                max_failures_per_account: 5,
                max_failures_per_client: 20,
                window: Duration::from_secs(900),
            },
            trusted_proxies: TrustedProxies::default(),
            secure_cookies: false,
        }
    }
}
