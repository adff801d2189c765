//! Reading the members of a proposal request into validated values, collecting every
//! problem as a field error so that one response lists them all.

use ontology_core::prose;
use ontology_core::store::check_title;
use ontology_core::{Bump, DomainInfo, FieldError, KpiDraft, KpiId};
use semver::Version;
use serde_json::Value;

use super::documents::DomainRequest;
use crate::problem::ApiResult;
use crate::publisher::Assessment;

pub(super) const RATIONALE_MAX_CHARS: usize = 20_000;
pub(super) const COMMENT_MAX_CHARS: usize = 20_000;

pub(super) fn parse_bump(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Bump> {
    value.and_then(|text| text.parse::<Bump>().map_err(|message| errors.push(FieldError::new("bump", message))).ok())
}

pub(super) fn parse_version(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Version> {
    let text = value?;
    match Version::parse(text) {
        Ok(version) => Some(version),
        Err(error) => {
            errors.push(FieldError::new(field, format!("invalid version `{text}`: {error}")));
            None
        }
    }
}

pub(super) fn check_commit_title(title: &str, errors: &mut Vec<FieldError>) {
    if let Err(reason) = check_title(title) {
        errors.push(FieldError::new("title", reason));
    }
}

pub(super) fn check_rationale(rationale: &str, errors: &mut Vec<FieldError>) {
    let chars = rationale.trim().chars().count();
    if chars == 0 || chars > RATIONALE_MAX_CHARS {
        errors.push(FieldError::new("rationale", format!("give a rationale of 1 to {RATIONALE_MAX_CHARS} characters")));
    }
    check_free_text("rationale", rationale, errors);
}

/// Rejects control characters other than line breaks and tabs in free text, such as a
/// rationale or a review comment. PostgreSQL cannot store a NUL at all.
pub(super) fn check_free_text(field: &str, text: &str, errors: &mut Vec<FieldError>) {
    if prose::has_control_chars(text, true) {
        errors.push(FieldError::new(field, "must not contain control characters other than line breaks and tabs"));
    }
}

/// Reads the posted record into a draft, dropping what the read API adds and the version.
pub(super) fn parse_record(kpi_id: Option<&KpiId>, record: &Value, errors: &mut Vec<FieldError>) -> Option<KpiDraft> {
    let mut value = record.clone();
    let Some(object) = value.as_object_mut() else {
        errors.push(FieldError::new("record", "the record must be a JSON object with the KPI's fields"));
        return None;
    };
    for ignored in ["released_in", "links", "open_disputes"] {
        object.remove(ignored);
    }
    // The merge sets the version; any placeholder satisfies the record's shape.
    object.insert("version".into(), Value::from("0.0.0"));
    let draft: KpiDraft = match serde_path_to_error::deserialize(value) {
        Ok(draft) => draft,
        Err(error) => {
            errors.push(shape_error(&error));
            return None;
        }
    };
    if let Some(kpi_id) = kpi_id {
        if &draft.id != kpi_id {
            errors.push(FieldError::new("record.id", format!("`{}` must equal kpi_id `{kpi_id}`", draft.id)));
        }
    }
    Some(draft)
}

/// Names the record member that failed to deserialise, such as `record.type` for an
/// unknown variant or `record.formula` for a missing field.
pub(super) fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let message = error.inner().to_string();
    let mut field = String::from("record");
    let path = error.path().to_string();
    if path != "." {
        field.push('.');
        field.push_str(&path);
    }
    // serde reports a missing field at the object that lacks it.
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
        field.push('.');
        field.push_str(missing);
    }
    FieldError::new(field, message)
}

pub(super) fn domain_info(
    kpi_id: &KpiId,
    domain: Option<&DomainRequest>,
    errors: &mut Vec<FieldError>,
) -> Option<DomainInfo> {
    let domain = domain?;
    let info = DomainInfo { id: kpi_id.domain(), name: domain.name.clone(), description: domain.description.clone() };
    match info.validate() {
        Ok(info) => Some(info),
        Err(found) => {
            errors.extend(found.into_iter().map(|e| FieldError::new(format!("domain.{}", e.field), e.message)));
            None
        }
    }
}

/// Stored form of a validated record: normalised, with the base version (or 1.0.0).
pub(super) fn stored_record(assessment: &Assessment, base_version: Option<&Version>) -> ApiResult<String> {
    let record = assessment.record.with_version(base_version.cloned().unwrap_or(Version::new(1, 0, 0)));
    Ok(serde_json::to_string(&record).map_err(anyhow::Error::from)?)
}
