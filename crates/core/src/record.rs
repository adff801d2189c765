//! The KPI record: one structured, versioned definition.
//!
//! A [`KpiDraft`] is the record's shape as it arrives (from a file or a request body). A
//! [`KpiRecord`] can only be made from a draft by [`KpiDraft::validate`], so a record always
//! has normalised prose and honours the per-record rules, the tier/source invariant among
//! them. Rules that need the whole catalog (`related`, `replaced_by`) live in
//! [`crate::validate`].

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;

use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;
use time::macros::format_description;

use crate::id::KpiId;
use crate::prose;

pub const NAME_MAX_CHARS: usize = 120;
pub const UNIT_MAX_CHARS: usize = 32;
/// A summary is one paragraph that a board reads first.
pub const SUMMARY_MAX_CHARS: usize = 600;
/// The longer prose fields; the longest starter definition is under 1,000 characters.
pub const PROSE_MAX_CHARS: usize = 20_000;
pub const PITFALL_MAX_CHARS: usize = 1_000;
pub const PITFALLS_MAX: usize = 30;
/// The name, issuer and reference of a standard.
pub const STANDARD_FIELD_MAX_CHARS: usize = 200;
/// A domain's or the catalog's description: a paragraph or two.
pub const DESCRIPTION_MAX_CHARS: usize = 1_000;

/// The kind of value a KPI reports.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiType {
    /// Qualitative content. Its formula states what the content must contain.
    Text,
    Percentage,
    Currency,
    Count,
    Ratio,
    Duration,
    Score,
}

/// Whether a third-party standard anchors the definition.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Authored by the registry's editors because no public standard defines the KPI yet.
    Editorial,
    /// Anchored to a named third-party standard.
    Published,
}

/// A company stage, for stage relevance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Seed,
    SeriesA,
    SeriesB,
    SeriesCPlus,
    Public,
}

/// How much a KPI matters at a stage.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Required,
    Recommended,
    Optional,
    NotApplicable,
}

/// A function of the company that owns a KPI.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwningFunction {
    Sales,
    CustomerSuccess,
    Marketing,
    Product,
    Engineering,
    Finance,
    People,
    Operations,
    Executive,
}

/// Lifecycle of a KPI. KPIs are never deleted, only deprecated.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Deprecated,
}

/// A calendar date written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDate(pub Date);

impl IsoDate {
    pub fn parse(value: &str) -> Result<Self, String> {
        Date::parse(value, format_description!("[year]-[month]-[day]"))
            .map(IsoDate)
            .map_err(|_| format!("invalid date `{value}`: expected YYYY-MM-DD"))
    }
}

impl fmt::Display for IsoDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.format(format_description!("[year]-[month]-[day]")).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for IsoDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        IsoDate::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A bound of a KPI's value. It is written as an integer when it has no fractional part,
/// so `100` and `100.0` are one value with one canonical spelling in TOML and JSON.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct BoundValue(pub f64);

/// Integers up to 2^53 round-trip through an f64 exactly.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Serialize for BoundValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.fract() == 0.0 && value.abs() <= MAX_EXACT_INTEGER {
            serializer.serialize_i64(value as i64)
        } else {
            serializer.serialize_f64(value)
        }
    }
}

impl<'de> Deserialize<'de> for BoundValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;

        impl serde::de::Visitor<'_> for NumberVisitor {
            type Value = BoundValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<BoundValue, E> {
                Ok(BoundValue(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<BoundValue, E> {
                Ok(BoundValue(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<BoundValue, E> {
                Ok(BoundValue(v))
            }
        }

        deserializer.deserialize_any(NumberVisitor)
    }
}

/// The range a KPI's value can take, such as `max = 100` for gross revenue retention.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub min: Option<BoundValue>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max: Option<BoundValue>,
}

/// The third-party standard that anchors a published KPI.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standard {
    pub name: String,
    pub issuer: String,
    /// Edition, section or document id, such as "2024, 15th annual".
    pub reference: String,
    pub url: Option<String>,
}

/// The origin of a definition and the date it entered the registry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub first_published: IsoDate,
    pub standard: Option<Standard>,
    /// Date of back-attribution to a standard, if the KPI was ever promoted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub promoted_at: Option<IsoDate>,
}

/// How much a KPI matters at one company stage.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRelevance {
    pub stage: Stage,
    pub priority: Priority,
}

/// A KPI record as it arrives, before normalisation and the per-record rules.
///
/// Field order is the canonical order of the file format and of the JSON API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(as = KpiRecord))]
pub struct KpiDraft {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[a-z][a-z0-9_]{0,62}\\.[a-z][a-z0-9_]{0,62}$"))]
    pub id: KpiId,
    pub name: String,
    pub summary: String,
    #[serde(rename = "type")]
    pub kind: KpiType,
    pub unit: Option<String>,
    pub bounds: Option<Bounds>,
    pub definition: String,
    pub formula: String,
    pub why_it_matters: String,
    pub how_to_interpret: String,
    #[serde(default)]
    pub pitfalls: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub related: Vec<KpiId>,
    pub tier: Tier,
    pub source: Source,
    pub stage_relevance: Vec<StageRelevance>,
    pub owning_functions: Vec<OwningFunction>,
    pub status: Status,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub replaced_by: Option<KpiId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.0.0"))]
    pub version: Version,
}

/// A rule broken by a record, with the field it concerns (dotted path, such as
/// `source.standard.url`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl KpiDraft {
    /// Normalises the prose and checks every rule that concerns this record alone,
    /// reporting all broken rules at once.
    pub fn validate(mut self) -> Result<KpiRecord, Vec<FieldError>> {
        let mut errors = Vec::new();

        self.normalize();
        self.check_text_fields(&mut errors);
        self.check_bounds(&mut errors);
        self.check_attribution(&mut errors);
        self.check_lists(&mut errors);
        self.check_lifecycle(&mut errors);

        if !self.version.pre.is_empty() || !self.version.build.is_empty() {
            errors.push(FieldError::new("version", "pre-release and build metadata are not used for KPI versions"));
        }

        if errors.is_empty() { Ok(KpiRecord(self)) } else { Err(errors) }
    }

    fn normalize(&mut self) {
        self.name = prose::normalize_line(&self.name);
        self.unit = self.unit.as_deref().map(prose::normalize_line);
        for text in [
            &mut self.summary,
            &mut self.definition,
            &mut self.formula,
            &mut self.why_it_matters,
            &mut self.how_to_interpret,
        ] {
            *text = prose::normalize(text);
        }
        for pitfall in &mut self.pitfalls {
            *pitfall = prose::normalize(pitfall);
        }
        if let Some(standard) = &mut self.source.standard {
            standard.name = prose::normalize_line(&standard.name);
            standard.issuer = prose::normalize_line(&standard.issuer);
            standard.reference = prose::normalize_line(&standard.reference);
            standard.url = standard.url.as_deref().map(|url| url.trim().to_owned());
        }
    }

    fn check_text_fields(&self, errors: &mut Vec<FieldError>) {
        check_line("name", &self.name, NAME_MAX_CHARS, errors);
        if let Some(unit) = &self.unit {
            check_line("unit", unit, UNIT_MAX_CHARS, errors);
        }

        let prose_fields = [
            ("summary", &self.summary),
            ("definition", &self.definition),
            ("formula", &self.formula),
            ("why_it_matters", &self.why_it_matters),
            ("how_to_interpret", &self.how_to_interpret),
        ];
        for (field, text) in prose_fields {
            let max = if field == "summary" { SUMMARY_MAX_CHARS } else { PROSE_MAX_CHARS };
            check_prose(field, text, max, errors);
        }
        if self.summary.contains("\n\n") {
            errors.push(FieldError::new("summary", "must be one paragraph, without blank lines"));
        }
        if self.pitfalls.len() > PITFALLS_MAX {
            errors.push(FieldError::new("pitfalls", format!("must list at most {PITFALLS_MAX} pitfalls")));
        }
        for (index, pitfall) in self.pitfalls.iter().enumerate() {
            check_prose(&format!("pitfalls[{index}]"), pitfall, PITFALL_MAX_CHARS, errors);
        }
    }

    fn check_bounds(&self, errors: &mut Vec<FieldError>) {
        let Some(bounds) = &self.bounds else { return };

        for (field, value) in [("bounds.min", bounds.min), ("bounds.max", bounds.max)] {
            if value.is_some_and(|v| !v.0.is_finite()) {
                errors.push(FieldError::new(field, "must be a finite number"));
            }
        }
        match (bounds.min, bounds.max) {
            (None, None) => errors.push(FieldError::new(
                "bounds",
                "must give `min`, `max` or both; leave `bounds` out for an unbounded KPI",
            )),
            (Some(min), Some(max)) if min.0 > max.0 => {
                errors.push(FieldError::new("bounds", format!("`min` ({}) is greater than `max` ({})", min.0, max.0)))
            }
            _ => {}
        }
        if self.kind == KpiType::Text {
            errors.push(FieldError::new("bounds", "a `text` KPI has no numeric bounds"));
        }
    }

    fn check_attribution(&self, errors: &mut Vec<FieldError>) {
        let source = &self.source;
        match (self.tier, &source.standard) {
            (Tier::Published, None) => errors
                .push(FieldError::new("source.standard", "a `published` KPI must name the standard that anchors it")),
            (Tier::Editorial, Some(_)) => {
                errors.push(FieldError::new("tier", "a KPI anchored to a standard must have tier `published`"))
            }
            _ => {}
        }

        if let Some(standard) = &source.standard {
            for (field, value) in [
                ("source.standard.name", &standard.name),
                ("source.standard.issuer", &standard.issuer),
                ("source.standard.reference", &standard.reference),
            ] {
                check_line(field, value, STANDARD_FIELD_MAX_CHARS, errors);
            }
            if let Some(url) = &standard.url {
                if let Err(message) = check_http_url(url) {
                    errors.push(FieldError::new("source.standard.url", message));
                }
            }
        }

        if let Some(promoted_at) = source.promoted_at {
            if source.standard.is_none() {
                errors.push(FieldError::new(
                    "source.promoted_at",
                    "only a KPI anchored to a standard can have a promotion date",
                ));
            }
            if promoted_at < source.first_published {
                errors.push(FieldError::new("source.promoted_at", "is earlier than `source.first_published`"));
            }
        }
    }

    fn check_lists(&self, errors: &mut Vec<FieldError>) {
        if self.stage_relevance.is_empty() {
            errors.push(FieldError::new("stage_relevance", "must list at least one stage"));
        }
        let mut stages = HashSet::new();
        for (index, entry) in self.stage_relevance.iter().enumerate() {
            if !stages.insert(entry.stage) {
                errors.push(FieldError::new(
                    format!("stage_relevance[{index}].stage"),
                    format!("stage `{}` is listed more than once", enum_name(&entry.stage)),
                ));
            }
        }

        if self.owning_functions.is_empty() {
            errors.push(FieldError::new("owning_functions", "must list at least one function"));
        }
        let mut functions = HashSet::new();
        for (index, function) in self.owning_functions.iter().enumerate() {
            if !functions.insert(function) {
                errors.push(FieldError::new(
                    format!("owning_functions[{index}]"),
                    format!("function `{}` is listed more than once", enum_name(function)),
                ));
            }
        }

        let mut related = HashSet::new();
        for (index, id) in self.related.iter().enumerate() {
            if id == &self.id {
                errors.push(FieldError::new(format!("related[{index}]"), "a KPI cannot relate to itself"));
            }
            if !related.insert(id) {
                errors.push(FieldError::new(format!("related[{index}]"), format!("`{id}` is listed more than once")));
            }
        }
    }

    fn check_lifecycle(&self, errors: &mut Vec<FieldError>) {
        if let Some(replacement) = &self.replaced_by {
            if self.status != Status::Deprecated {
                errors.push(FieldError::new("replaced_by", "only a `deprecated` KPI can name a replacement"));
            }
            if replacement == &self.id {
                errors.push(FieldError::new("replaced_by", "a KPI cannot replace itself"));
            }
        }
    }
}

/// Checks one prose field: present, at most `max` characters, no control characters other
/// than line breaks and tabs.
pub fn check_prose(field: &str, text: &str, max: usize, errors: &mut Vec<FieldError>) {
    let chars = text.chars().count();
    if chars == 0 {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if chars > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters, found {chars}")));
    }
    if prose::has_control_chars(text, true) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
}

/// Checks a one-line value such as a name: present, at most `max` characters, without
/// control characters or characters that hide or reorder text.
pub fn check_line(field: &str, text: &str, max: usize, errors: &mut Vec<FieldError>) {
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        errors.push(FieldError::new(field, format!("must be 1 to {max} characters, found {chars}")));
    }
    if prose::has_control_chars(text, false) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
    if prose::has_invisible_chars(text) {
        errors.push(FieldError::new(
            field,
            "must not contain invisible or direction-changing characters (such as U+200B or U+202E)",
        ));
    }
}

/// Checks that a URL parses and uses `http` or `https`.
pub fn check_http_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => Ok(()),
        Ok(parsed) => Err(format!("scheme `{}` is not allowed: use an http or https URL", parsed.scheme())),
        Err(error) => Err(format!("invalid URL: {error}")),
    }
}

/// The snake_case name that serde gives an enum value.
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::from("?"),
    }
}

/// A KPI record that honours every per-record rule. Read its fields through `Deref`; to
/// change it, take the draft back with [`KpiRecord::into_draft`] and validate again.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRecord(KpiDraft);

impl KpiRecord {
    pub fn into_draft(self) -> KpiDraft {
        self.0
    }

    /// Returns a copy of this record with another version, keeping every other field.
    pub fn with_version(&self, version: Version) -> KpiRecord {
        let mut draft = self.0.clone();
        draft.version = version;
        KpiRecord(draft)
    }
}

impl Deref for KpiRecord {
    type Target = KpiDraft;

    fn deref(&self) -> &KpiDraft {
        &self.0
    }
}

impl Serialize for KpiRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KpiRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let draft = KpiDraft::deserialize(deserializer)?;
        draft.validate().map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_draft() -> KpiDraft {
        KpiDraft {
            id: KpiId::parse("customers.gross_revenue_retention").unwrap(),
            name: "Gross Revenue Retention".into(),
            summary: "Share of recurring revenue kept.".into(),
            kind: KpiType::Percentage,
            unit: Some("%".into()),
            bounds: Some(Bounds { min: Some(BoundValue(0.0)), max: Some(BoundValue(100.0)) }),
            definition: "Definition.".into(),
            formula: "Kept over start.".into(),
            why_it_matters: "Why.".into(),
            how_to_interpret: "How.".into(),
            pitfalls: vec!["Counting expansion.".into()],
            related: vec![KpiId::parse("customers.net_revenue_retention").unwrap()],
            tier: Tier::Published,
            source: Source {
                first_published: IsoDate::parse("2026-04-01").unwrap(),
                standard: Some(Standard {
                    name: "GRR standard".into(),
                    issuer: "SaaS Metrics Standards Board".into(),
                    reference: "GRR".into(),
                    url: None,
                }),
                promoted_at: None,
            },
            stage_relevance: vec![StageRelevance { stage: Stage::SeriesA, priority: Priority::Required }],
            owning_functions: vec![OwningFunction::CustomerSuccess],
            status: Status::Active,
            replaced_by: None,
            version: Version::new(1, 0, 0),
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn sample_is_valid() {
        assert!(sample_draft().validate().is_ok());
    }

    #[test]
    fn published_without_standard_rejected() {
        let mut draft = sample_draft();
        draft.source.standard = None;
        let errors = draft.validate().unwrap_err();
        assert_eq!(fields(&errors), ["source.standard"]);
    }

    #[test]
    fn editorial_with_standard_rejected() {
        let mut draft = sample_draft();
        draft.tier = Tier::Editorial;
        let errors = draft.validate().unwrap_err();
        assert_eq!(fields(&errors), ["tier"]);
    }

    #[test]
    fn invisible_characters_in_name_rejected() {
        let mut draft = sample_draft();
        draft.name = "Net Promoter\u{202E}Score".into();
        assert_eq!(fields(&draft.validate().unwrap_err()), ["name"]);
    }

    #[test]
    fn overlong_summary_rejected() {
        let mut draft = sample_draft();
        draft.summary = "x".repeat(SUMMARY_MAX_CHARS + 1);
        assert_eq!(fields(&draft.validate().unwrap_err()), ["summary"]);
    }

    #[test]
    fn multi_paragraph_summary_rejected() {
        let mut draft = sample_draft();
        draft.summary = "First paragraph.\n\nSecond paragraph.".into();
        assert_eq!(fields(&draft.validate().unwrap_err()), ["summary"]);
    }

    #[test]
    fn overlong_definition_rejected() {
        let mut draft = sample_draft();
        draft.definition = "x".repeat(PROSE_MAX_CHARS + 1);
        assert_eq!(fields(&draft.validate().unwrap_err()), ["definition"]);
    }

    #[test]
    fn pitfall_control_character_rejected() {
        let mut draft = sample_draft();
        draft.pitfalls = vec!["Fine.".into(), "Rings a bell\u{7}".into()];
        assert_eq!(fields(&draft.validate().unwrap_err()), ["pitfalls[1]"]);
    }

    #[test]
    fn too_many_pitfalls_rejected() {
        let mut draft = sample_draft();
        draft.pitfalls = vec!["A pitfall.".into(); PITFALLS_MAX + 1];
        assert_eq!(fields(&draft.validate().unwrap_err()), ["pitfalls"]);
    }

    #[test]
    fn duplicate_stage_rejected() {
        let mut draft = sample_draft();
        draft.stage_relevance.push(StageRelevance { stage: Stage::SeriesA, priority: Priority::Optional });
        let errors = draft.validate().unwrap_err();
        assert_eq!(fields(&errors), ["stage_relevance[1].stage"]);
    }

    #[test]
    fn unsafe_url_schemes_rejected() {
        for url in ["javascript:alert(1)", "data:text/html,x", "ftp://example.org/x", "not a url"] {
            let mut draft = sample_draft();
            draft.source.standard.as_mut().unwrap().url = Some(url.into());
            let errors = draft.validate().unwrap_err();
            assert_eq!(fields(&errors), ["source.standard.url"], "{url}");
        }
    }

    #[test]
    fn replaced_by_requires_deprecated() {
        let mut draft = sample_draft();
        draft.replaced_by = Some(KpiId::parse("customers.other").unwrap());
        let errors = draft.validate().unwrap_err();
        assert_eq!(fields(&errors), ["replaced_by"]);
    }

    #[test]
    fn inverted_bounds_rejected() {
        let mut draft = sample_draft();
        draft.bounds = Some(Bounds { min: Some(BoundValue(5.0)), max: Some(BoundValue(1.0)) });
        assert_eq!(fields(&draft.validate().unwrap_err()), ["bounds"]);
    }

    #[test]
    fn long_name_rejected() {
        let mut draft = sample_draft();
        draft.name = "x".repeat(121);
        assert_eq!(fields(&draft.validate().unwrap_err()), ["name"]);
    }

    #[test]
    fn prose_normalized_on_validate() {
        let mut draft = sample_draft();
        draft.definition = "Line one.  \r\nLine two.\r\n".into();
        let record = draft.validate().unwrap();
        assert_eq!(record.definition, "Line one.\nLine two.");
    }

    #[test]
    fn bound_values_have_one_spelling() {
        let json = serde_json::to_string(&BoundValue(100.0)).unwrap();
        assert_eq!(json, "100");
        let json = serde_json::to_string(&BoundValue(0.5)).unwrap();
        assert_eq!(json, "0.5");
    }
}
