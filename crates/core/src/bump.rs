//! Semantic version rules: which change of a KPI record needs which version bump.
//!
//! | change | minimum bump |
//! |---|---|
//! | `formula`, `type`, `unit`, `bounds`, a change of `status`, demotion to `editorial` | major |
//! | a new KPI, `name`, `tier`, `source`, `related`, `stage_relevance`, `owning_functions`, `replaced_by` | minor |
//! | `summary`, `definition`, `why_it_matters`, `how_to_interpret`, `pitfalls` | patch |
//!
//! A proposer may raise the bump, never lower it. The ontology's bump is the largest bump
//! of the KPIs that a release changes.

use std::fmt;
use std::str::FromStr;

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::{KpiRecord, Status, Tier};

/// Size of a version step. Ordered: `Patch < Minor < Major`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl Bump {
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }

    /// Returns the version that follows `version` by this step.
    pub fn apply(self, version: &Version) -> Version {
        match self {
            Bump::Major => Version::new(version.major + 1, 0, 0),
            Bump::Minor => Version::new(version.major, version.minor + 1, 0),
            Bump::Patch => Version::new(version.major, version.minor, version.patch + 1),
        }
    }

    /// Returns the step from `from` to `to`, when `to` is exactly one step above `from`.
    pub fn between(from: &Version, to: &Version) -> Option<Bump> {
        [Bump::Major, Bump::Minor, Bump::Patch].into_iter().find(|bump| &bump.apply(from) == to)
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bump {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "patch" => Ok(Bump::Patch),
            "minor" => Ok(Bump::Minor),
            "major" => Ok(Bump::Major),
            other => Err(format!("invalid bump `{other}`: expected major, minor or patch")),
        }
    }
}

/// One field that differs between two versions of a record, with the bump it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: Value,
    pub after: Value,
    pub bump: Bump,
}

/// Fields in record order with the bump a change of each needs. `tier` and `status` have
/// direction-dependent rules applied in [`field_bump`]; `id` and `version` are not
/// compared: an id never changes and the version is what the bump computes.
const FIELD_RULES: [(&str, Bump); 17] = [
    ("name", Bump::Minor),
    ("summary", Bump::Patch),
    ("type", Bump::Major),
    ("unit", Bump::Major),
    ("bounds", Bump::Major),
    ("definition", Bump::Patch),
    ("formula", Bump::Major),
    ("why_it_matters", Bump::Patch),
    ("how_to_interpret", Bump::Patch),
    ("pitfalls", Bump::Patch),
    ("related", Bump::Minor),
    ("tier", Bump::Minor),
    ("source", Bump::Minor),
    ("stage_relevance", Bump::Minor),
    ("owning_functions", Bump::Minor),
    ("status", Bump::Major),
    ("replaced_by", Bump::Minor),
];

fn field_bump(field: &str, default: Bump, before: &KpiRecord) -> Bump {
    match field {
        // Promotion to a standard is minor; a demotion is major because consumers relied
        // on the anchor.
        "tier" if before.tier == Tier::Published => Bump::Major,
        // Deprecation ends a KPI's life; bringing one back changes what consumers rely on
        // just as much.
        "status" if before.status == Status::Active => Bump::Major,
        _ => default,
    }
}

/// Compares two versions of a record field by field, in record order.
pub fn diff(before: &KpiRecord, after: &KpiRecord) -> Vec<FieldChange> {
    let before_json = record_fields(before);
    let after_json = record_fields(after);

    FIELD_RULES
        .iter()
        .filter_map(|&(field, default)| {
            let old = before_json.get(field).cloned().unwrap_or(Value::Null);
            let new = after_json.get(field).cloned().unwrap_or(Value::Null);
            (old != new).then(|| FieldChange {
                field,
                before: old,
                after: new,
                bump: field_bump(field, default, before),
            })
        })
        .collect()
}

/// The smallest bump that the changes need, `None` when nothing changed.
pub fn minimum_bump(changes: &[FieldChange]) -> Option<Bump> {
    changes.iter().map(|change| change.bump).max()
}

fn record_fields(record: &KpiRecord) -> serde_json::Map<String, Value> {
    match serde_json::to_value(&**record) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("a KPI record serialises to a JSON object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_draft;
    use crate::record::{BoundValue, Bounds};

    fn changed(edit: impl FnOnce(&mut crate::record::KpiDraft)) -> (Vec<&'static str>, Option<Bump>) {
        let before = sample_draft().validate().unwrap();
        let mut draft = sample_draft();
        edit(&mut draft);
        let after = draft.validate().unwrap();
        let changes = diff(&before, &after);
        let bump = minimum_bump(&changes);
        (changes.iter().map(|c| c.field).collect(), bump)
    }

    #[test]
    fn formula_change_is_major() {
        assert_eq!(changed(|d| d.formula = "New formula.".into()), (vec!["formula"], Some(Bump::Major)));
    }

    #[test]
    fn bounds_change_is_major() {
        let edit = |d: &mut crate::record::KpiDraft| {
            d.bounds = Some(Bounds { min: Some(BoundValue(0.0)), max: Some(BoundValue(200.0)) })
        };
        assert_eq!(changed(edit), (vec!["bounds"], Some(Bump::Major)));
    }

    #[test]
    fn wording_change_is_patch() {
        assert_eq!(changed(|d| d.summary = "Better words.".into()), (vec!["summary"], Some(Bump::Patch)));
    }

    #[test]
    fn name_change_is_minor() {
        assert_eq!(changed(|d| d.name = "GRR".into()), (vec!["name"], Some(Bump::Minor)));
    }

    #[test]
    fn deprecation_is_major() {
        assert_eq!(changed(|d| d.status = Status::Deprecated), (vec!["status"], Some(Bump::Major)));
    }

    #[test]
    fn demotion_is_major_promotion_minor() {
        let demoted = changed(|d| {
            d.tier = Tier::Editorial;
            d.source.standard = None;
        });
        assert_eq!(demoted.1, Some(Bump::Major));

        let before = {
            let mut d = sample_draft();
            d.tier = Tier::Editorial;
            d.source.standard = None;
            d.validate().unwrap()
        };
        let after = sample_draft().validate().unwrap();
        let changes = diff(&before, &after);
        assert_eq!(minimum_bump(&changes), Some(Bump::Minor));
    }

    #[test]
    fn normalized_whitespace_changes_nothing() {
        assert_eq!(changed(|d| d.summary.push_str("  \r\n")), (vec![], None));
    }

    #[test]
    fn largest_bump_wins() {
        let (fields, bump) = changed(|d| {
            d.summary = "Other.".into();
            d.name = "Other".into();
            d.unit = Some("pct".into());
        });
        assert_eq!(fields, ["name", "summary", "unit"]);
        assert_eq!(bump, Some(Bump::Major));
    }

    #[test]
    fn apply_and_between() {
        let v = Version::new(1, 2, 3);
        assert_eq!(Bump::Major.apply(&v), Version::new(2, 0, 0));
        assert_eq!(Bump::Minor.apply(&v), Version::new(1, 3, 0));
        assert_eq!(Bump::Patch.apply(&v), Version::new(1, 2, 4));
        assert_eq!(Bump::between(&v, &Version::new(1, 3, 0)), Some(Bump::Minor));
        assert_eq!(Bump::between(&v, &Version::new(1, 5, 0)), None);
    }
}
