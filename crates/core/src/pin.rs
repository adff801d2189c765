//! Version pins of API consumers: an exact version or a Cargo-style range.
//!
//! Unlike Cargo, where a bare `1.2.0` means `^1.2.0`, a bare full version is an exact pin
//! here, because a consumer who writes one means that version. `=1.2.0` is exact too.
//! Anything else in Cargo's requirement syntax (`^1.2`, `~1.2.3`, `>=1.1, <2`, `1`, `*`)
//! is a range that resolves to the highest matching version.

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};

/// Maximum length of a requirement, in bytes. Real ones are a few dozen characters.
const MAX_PIN_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPin {
    Exact(Version),
    Range(VersionReq),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version requirement `{value}`: {reason}")]
pub struct PinError {
    pub value: String,
    pub reason: String,
}

impl VersionPin {
    pub fn parse(value: &str) -> Result<Self, PinError> {
        let error = |reason: String| PinError { value: value.chars().take(80).collect(), reason };
        let text = value.trim();
        if text.is_empty() {
            return Err(error("it is empty; give a version such as 1.2.0 or a range such as ^1.2".into()));
        }
        if text.len() > MAX_PIN_LEN {
            return Err(error(format!("it is longer than {MAX_PIN_LEN} characters")));
        }

        if let Ok(version) = Version::parse(text) {
            return Ok(VersionPin::Exact(version));
        }
        if let Some(rest) = text.strip_prefix('=') {
            if let Ok(version) = Version::parse(rest.trim()) {
                return Ok(VersionPin::Exact(version));
            }
        }
        VersionReq::parse(text).map(VersionPin::Range).map_err(|e| error(e.to_string()))
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, VersionPin::Exact(_))
    }

    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionPin::Exact(exact) => exact == version,
            VersionPin::Range(range) => range.matches(version),
        }
    }

    /// Picks the highest of `versions` (sorted ascending) that the pin matches.
    pub fn select<'a, T>(&self, versions: &'a [T], version_of: impl Fn(&T) -> &Version) -> Option<&'a T> {
        match self {
            VersionPin::Exact(exact) => {
                versions.binary_search_by(|item| version_of(item).cmp(exact)).ok().map(|index| &versions[index])
            }
            VersionPin::Range(range) => versions.iter().rev().find(|item| range.matches(version_of(item))),
        }
    }
}

impl FromStr for VersionPin {
    type Err = PinError;

    fn from_str(value: &str) -> Result<Self, PinError> {
        VersionPin::parse(value)
    }
}

impl fmt::Display for VersionPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionPin::Exact(version) => write!(f, "={version}"),
            VersionPin::Range(range) => write!(f, "{range}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter().map(|v| Version::parse(v).unwrap()).collect()
    }

    fn pick(pin: &str, list: &[Version]) -> Option<String> {
        VersionPin::parse(pin).unwrap().select(list, |v| v).map(ToString::to_string)
    }

    #[test]
    fn bare_full_version_is_exact() {
        assert!(VersionPin::parse("1.2.0").unwrap().is_exact());
        assert!(VersionPin::parse("=1.2.0").unwrap().is_exact());
        assert!(!VersionPin::parse("1.2").unwrap().is_exact());
        assert!(!VersionPin::parse("=1.2").unwrap().is_exact());
    }

    #[test]
    fn ranges_pick_highest_match() {
        let list = versions(&["1.0.0", "1.1.0", "1.1.1", "2.0.0", "2.1.0"]);
        let cases = [
            ("1.1.0", Some("1.1.0")),
            ("=1.0.0", Some("1.0.0")),
            ("^1", Some("1.1.1")),
            ("^1.1", Some("1.1.1")),
            ("~1.1.0", Some("1.1.1")),
            ("1", Some("1.1.1")),
            ("1.1", Some("1.1.1")),
            (">=1.1, <2", Some("1.1.1")),
            ("*", Some("2.1.0")),
            ("^3", None),
            ("1.2.0", None),
            ("2.0.0-alpha", None),
        ];
        for (pin, expected) in cases {
            assert_eq!(pick(pin, &list).as_deref(), expected, "pin {pin}");
        }
    }

    #[test]
    fn garbage_rejected() {
        for bad in ["", "  ", "abc", "1.x.y.z", "^^1", ">= <", "1.0.0.0", &"9".repeat(300)] {
            assert!(VersionPin::parse(bad).is_err(), "`{bad}` was accepted");
        }
    }
}
