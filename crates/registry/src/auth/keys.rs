//! The server key: it signs session and API tokens (JWT, HS256 only) and the CSRF tokens
//! of the web forms.
//!
//! The key comes from `REGISTRY_JWT_SECRET`, or else from the file `jwt-secret` in the data
//! directory, which the first start creates with 64 random bytes and mode 0600. Every node
//! that serves one registry needs the same key, so a multi-node deployment sets the
//! variable.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SECRET_ENV: &str = "REGISTRY_JWT_SECRET";
pub const SECRET_FILE: &str = "jwt-secret";
/// Shorter secrets make HS256 guessable offline from any issued token.
const SECRET_MIN_BYTES: usize = 32;
/// Clock difference tolerated on `exp`. jsonwebtoken's default is 60 s.
const EXPIRY_LEEWAY_SECS: u64 = 5;

type HmacSha256 = Hmac<Sha256>;

/// The claims of every token the registry issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The account's role when the token was issued. Informational only: requests use the
    /// role stored now.
    pub role: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// The token id, which revocation names.
    pub jti: String,
}

/// The reason a token was rejected. Clients get only this short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Expired,
    Invalid,
}

pub struct ServerKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// A separate key for CSRF tokens, derived from the secret, so a CSRF token can never
    /// pass as a JWT signature or the other way round.
    csrf_key: Vec<u8>,
}

impl ServerKey {
    pub fn from_secret(secret: &[u8]) -> anyhow::Result<ServerKey> {
        if secret.len() < SECRET_MIN_BYTES {
            bail!("the JWT secret is {} bytes long; use at least {SECRET_MIN_BYTES}", secret.len());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXPIRY_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);

        let mut derive = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        derive.update(b"ontology-registry csrf key");
        Ok(ServerKey {
            encoding: EncodingKey::from_secret(secret).context("failed to build the JWT encoding key")?,
            decoding: DecodingKey::from_secret(secret).context("failed to build the JWT decoding key")?,
            validation,
            csrf_key: derive.finalize().into_bytes().to_vec(),
        })
    }

    /// Loads the key from `REGISTRY_JWT_SECRET`, or from the data directory's key file,
    /// creating that file on first use.
    pub fn load(data_dir: &Path) -> anyhow::Result<ServerKey> {
        if let Ok(secret) = std::env::var(SECRET_ENV)
            && !secret.is_empty()
        {
            return ServerKey::from_secret(secret.as_bytes()).with_context(|| format!("invalid {SECRET_ENV}"));
        }
        let secret = read_or_create_secret_file(&data_dir.join(SECRET_FILE))?;
        ServerKey::from_secret(&secret)
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).context("failed to sign a token")
    }

    /// Checks the signature (HS256 only), the shape of the claims and the expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenRejection> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(error) if *error.kind() == ErrorKind::ExpiredSignature => Err(TokenRejection::Expired),
            Err(_) => Err(TokenRejection::Invalid),
        }
    }

    /// Computes the CSRF token that binds a form to `value` (a session's token id, or the random
    /// value of the sign-in cookie) for one `purpose`, as lower-case hex.
    pub fn csrf_token(&self, purpose: &str, value: &str) -> String {
        hex::encode(self.csrf_mac(purpose, value).finalize().into_bytes())
    }

    /// Compares a submitted CSRF token with the expected one in constant time.
    pub fn csrf_matches(&self, purpose: &str, value: &str, submitted: &str) -> bool {
        let Ok(bytes) = hex::decode(submitted) else { return false };
        self.csrf_mac(purpose, value).verify_slice(&bytes).is_ok()
    }

    fn csrf_mac(&self, purpose: &str, value: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.csrf_key).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac
    }
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

fn read_or_create_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            restrict_permissions(path)?;
            return hex::decode(text.trim())
                .with_context(|| format!("{} is not hex; delete it to generate a new key", path.display()));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("failed to read {}", path.display())),
    }

    // Written under a temporary name and linked into place, so a concurrent start never
    // reads a half-written key and never replaces one that another process created.
    let secret = random_bytes::<64>();
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut file = create_private_file(&temporary)?;
        file.write_all(hex::encode(secret).as_bytes())?;
        file.sync_all()?;
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated the server key for signing tokens");
            Ok(secret.to_vec())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_or_create_secret_file(path),
        Err(error) => Err(error).with_context(|| format!("failed to create {}", path.display())),
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))
}

/// Narrows a key file that others can read to mode 0600, with a warning.
#[cfg(unix)]
fn restrict_permissions(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the key file was readable by others; changed its mode to 600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        ServerKey::from_secret(&[7u8; 32]).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims { sub: "alice".into(), role: "editor".into(), iat: 0, exp, jti: "id".into() }
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn short_secret_rejected() {
        assert!(ServerKey::from_secret(&[1u8; 31]).is_err());
    }

    #[test]
    fn signed_token_verifies() {
        let claims = claims(now() + 60);
        assert_eq!(key().verify(&key().sign(&claims).unwrap()), Ok(claims));
    }

    #[test]
    fn expired_beyond_leeway_rejected() {
        let token = key().sign(&claims(now() - 10)).unwrap();
        assert_eq!(key().verify(&token), Err(TokenRejection::Expired));
    }

    #[test]
    fn other_key_rejected() {
        let other = ServerKey::from_secret(&[8u8; 32]).unwrap();
        let token = other.sign(&claims(now() + 60)).unwrap();
        assert_eq!(key().verify(&token), Err(TokenRejection::Invalid));
    }

    #[test]
    fn csrf_token_bound_to_value_and_purpose() {
        let key = key();
        let token = key.csrf_token("session", "abc");
        assert!(key.csrf_matches("session", "abc", &token));
        assert!(!key.csrf_matches("session", "abd", &token));
        assert!(!key.csrf_matches("login", "abc", &token));
        assert!(!key.csrf_matches("session", "abc", "zz"));
    }

    #[test]
    fn secret_file_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE);
        let first = read_or_create_secret_file(&path).unwrap();
        let second = read_or_create_secret_file(&path).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
