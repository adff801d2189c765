//! Identifiers of domains and KPIs.
//!
//! Every identifier is parsed once at the edge. A value of these types always matches the
//! grammar `^[a-z][a-z0-9_]{0,62}$` per segment, so it is safe to use as a file name or a
//! URL segment: it can never hold `..`, `/`, upper case or non-ASCII look-alikes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Domain ids that name fixed paths under `/api/ontology/` and so cannot name a domain.
pub const RESERVED_DOMAINS: [&str; 4] = ["index", "search", "releases", "openapi"];

const MAX_SEGMENT_LEN: usize = 63;

/// Error for a string that is not a valid domain id, KPI key or KPI id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check_segment(kind: &'static str, value: &str) -> Result<(), IdError> {
    let error = |reason| IdError { kind, value: value.chars().take(80).collect(), reason };

    let mut bytes = value.bytes();
    match bytes.next() {
        None => return Err(error("it is empty")),
        Some(b'a'..=b'z') => {}
        Some(_) => return Err(error("it must start with a lower-case ASCII letter")),
    }
    if value.len() > MAX_SEGMENT_LEN {
        return Err(error("it is longer than 63 characters"));
    }
    if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')) {
        return Err(error("only lower-case ASCII letters, digits and `_` are allowed"));
    }
    Ok(())
}

/// A domain of the catalog, such as `customers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(String);

impl DomainId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check_segment("domain id", value)?;
        if RESERVED_DOMAINS.contains(&value) {
            return Err(IdError {
                kind: "domain id",
                value: value.to_owned(),
                reason: "it is reserved for a fixed path of the API",
            });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for DomainId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The part of a KPI id after its domain, such as `key_initiatives`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KpiKey(String);

impl KpiKey {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check_segment("KPI key", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A KPI id, `<domain>.<key>`. It never changes once published.
///
/// Equality, ordering and hashing use the full text only, so maps keyed by `KpiId` can be
/// searched with a `&str`.
#[derive(Debug, Clone)]
pub struct KpiId {
    full: String,
    dot: usize,
}

impl KpiId {
    pub fn new(domain: &DomainId, key: &KpiKey) -> Self {
        Self { full: format!("{}.{}", domain.0, key.0), dot: domain.0.len() }
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        let Some((domain, key)) = value.split_once('.') else {
            return Err(IdError {
                kind: "KPI id",
                value: value.chars().take(80).collect(),
                reason: "it must have the form `<domain>.<key>`",
            });
        };
        let domain = DomainId::parse(domain)?;
        let key = KpiKey::parse(key)?;
        Ok(Self::new(&domain, &key))
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn domain(&self) -> DomainId {
        DomainId(self.full[..self.dot].to_owned())
    }

    pub fn domain_str(&self) -> &str {
        &self.full[..self.dot]
    }

    pub fn key_str(&self) -> &str {
        &self.full[self.dot + 1..]
    }

    /// The record's path inside the catalog tree, `<domain>/<key>.toml`.
    pub fn file_path(&self) -> String {
        format!("{}/{}.toml", self.domain_str(), self.key_str())
    }
}

impl PartialEq for KpiId {
    fn eq(&self, other: &Self) -> bool {
        self.full == other.full
    }
}

impl Eq for KpiId {}

impl std::hash::Hash for KpiId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.full.hash(state);
    }
}

impl PartialOrd for KpiId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KpiId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.full.cmp(&other.full)
    }
}

impl std::borrow::Borrow<str> for KpiId {
    fn borrow(&self) -> &str {
        &self.full
    }
}

macro_rules! string_id_traits {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id_traits!(DomainId);
string_id_traits!(KpiKey);
string_id_traits!(KpiId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kpi_id_splits_into_domain_and_key() {
        let id = KpiId::parse("customers.key_initiatives").unwrap();
        assert_eq!(id.domain_str(), "customers");
        assert_eq!(id.key_str(), "key_initiatives");
        assert_eq!(id.file_path(), "customers/key_initiatives.toml");
    }

    #[test]
    fn segment_grammar_rejects_attacks() {
        let bad = [
            "",
            "..",
            "a/b",
            "Customers",
            "1abc",
            "_x",
            "a-b",
            "a.b",
            "caf\u{e9}",
            "\u{0441}ustomers", // Cyrillic es, looks like a Latin c
            "a%2Fb",
            "a b",
            "a\0",
        ];
        for value in bad {
            assert!(DomainId::parse(value).is_err(), "domain `{value}` was accepted");
            assert!(KpiKey::parse(value).is_err(), "key `{value}` was accepted");
        }
    }

    #[test]
    fn segment_length_limit() {
        let max = format!("a{}", "b".repeat(62));
        assert!(KpiKey::parse(&max).is_ok());
        assert!(KpiKey::parse(&format!("{max}c")).is_err());
    }

    #[test]
    fn reserved_domains_rejected() {
        for reserved in RESERVED_DOMAINS {
            assert!(DomainId::parse(reserved).is_err());
            assert!(KpiKey::parse(reserved).is_ok());
        }
    }

    #[test]
    fn kpi_id_requires_two_segments() {
        assert!(KpiId::parse("customers").is_err());
        assert!(KpiId::parse("customers.a.b").is_err());
        assert!(KpiId::parse(".a").is_err());
        assert!(KpiId::parse("index.a").is_err());
    }
}
