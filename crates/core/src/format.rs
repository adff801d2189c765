//! The canonical TOML file format.
//!
//! Writing follows the field order of the record types, uses multi-line strings for prose
//! with line breaks and omits absent optional fields, so formatting a canonical file
//! changes nothing and a diff in git shows only what an editor changed.

use serde::{Deserialize, Serialize};

use crate::id::DomainId;
use crate::prose;
use crate::record::{DESCRIPTION_MAX_CHARS, FieldError, KpiDraft, KpiRecord, NAME_MAX_CHARS, check_line, check_prose};

/// Failure to read a file of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The TOML does not parse or does not have the record's shape.
    Syntax { field: Option<String>, message: String },
    /// The shape is right but rules of the record are broken.
    Rules(Vec<FieldError>),
}

/// The `ontology.toml` file at the root of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OntologyInfo {
    pub name: String,
    pub description: String,
}

/// A `<domain>/domain.toml` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainInfo {
    pub id: DomainId,
    pub name: String,
    pub description: String,
}

impl DomainInfo {
    /// Normalises the text fields and checks them.
    pub fn validate(mut self) -> Result<DomainInfo, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.name = prose::normalize_line(&self.name);
        self.description = prose::normalize(&self.description);

        check_line("name", &self.name, NAME_MAX_CHARS, &mut errors);
        check_prose("description", &self.description, DESCRIPTION_MAX_CHARS, &mut errors);
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }
}

impl OntologyInfo {
    pub fn validate(mut self) -> Result<OntologyInfo, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.name = prose::normalize_line(&self.name);
        self.description = prose::normalize(&self.description);
        check_line("name", &self.name, NAME_MAX_CHARS, &mut errors);
        check_prose("description", &self.description, DESCRIPTION_MAX_CHARS, &mut errors);
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }
}

fn syntax_error(text: &str, error: toml::de::Error) -> ReadError {
    // toml reports the offending key in its message; the first line is the summary.
    let message = error.message().trim().to_owned();
    let field = field_from_message(&message);
    let location = error.span().map(|span| format!(" (at {})", line_and_column(text, span.start))).unwrap_or_default();
    ReadError::Syntax { field, message: format!("{message}{location}") }
}

/// Names a byte offset as an editor shows it: `line 3, column 8`, both counted from 1, with
/// columns in characters.
fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("line {line}, column {column}")
}

/// Extracts a field name from serde messages such as "missing field `formula`" or
/// "unknown field `colour`, expected one of ...".
fn field_from_message(message: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(rest) = message.split(prefix).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

fn to_toml<T: Serialize>(value: &T) -> String {
    // Serialising these plain records cannot fail: every map key is a string and there are
    // no unsupported values (no bare None at the top level, no non-string map keys).
    toml::to_string_pretty(value).expect("records serialise to TOML")
}

pub fn kpi_from_toml(text: &str) -> Result<KpiRecord, ReadError> {
    let draft: KpiDraft = toml::from_str(text).map_err(|error| syntax_error(text, error))?;
    draft.validate().map_err(ReadError::Rules)
}

pub fn kpi_to_toml(record: &KpiRecord) -> String {
    to_toml(&**record)
}

pub fn domain_from_toml(text: &str) -> Result<DomainInfo, ReadError> {
    let info: DomainInfo = toml::from_str(text).map_err(|error| syntax_error(text, error))?;
    info.validate().map_err(ReadError::Rules)
}

pub fn domain_to_toml(info: &DomainInfo) -> String {
    to_toml(info)
}

pub fn ontology_from_toml(text: &str) -> Result<OntologyInfo, ReadError> {
    let info: OntologyInfo = toml::from_str(text).map_err(|error| syntax_error(text, error))?;
    info.validate().map_err(ReadError::Rules)
}

pub fn ontology_to_toml(info: &OntologyInfo) -> String {
    to_toml(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_draft;

    #[test]
    fn domain_text_checked() {
        let domain = |name: &str, description: &str| DomainInfo {
            id: DomainId::parse("customers").unwrap(),
            name: name.into(),
            description: description.into(),
        };
        let fields =
            |info: DomainInfo| -> Vec<String> { info.validate().unwrap_err().into_iter().map(|e| e.field).collect() };
        assert!(domain("Customers", "Who buys and stays.").validate().is_ok());
        assert_eq!(fields(domain("Cust\u{202E}omers", "Fine.")), ["name"]);
        assert_eq!(fields(domain("Customers\u{0}", "Fine.")), ["name"]);
        assert_eq!(fields(domain("Customers", "Bell\u{7}")), ["description"]);
        assert_eq!(fields(domain("Customers", &"x".repeat(DESCRIPTION_MAX_CHARS + 1))), ["description"]);
    }

    #[test]
    fn line_and_column_counted_from_one() {
        let text = "a = 1\nname = \"Ré\n";
        assert_eq!(line_and_column(text, 0), "line 1, column 1");
        assert_eq!(line_and_column(text, 6), "line 2, column 1");
        // The column counts characters, so the two-byte é counts once.
        assert_eq!(line_and_column(text, text.len() - 1), "line 2, column 11");
    }

    #[test]
    fn syntax_error_names_line() {
        let Err(ReadError::Syntax { message, .. }) = kpi_from_toml("id = \"customers.x\"\nname = \"unclosed\n") else {
            panic!("an unclosed string is a syntax error");
        };
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn write_then_read_gives_same_record() {
        let record = sample_draft().validate().unwrap();
        let text = kpi_to_toml(&record);
        let back = kpi_from_toml(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(kpi_to_toml(&back), text);
    }

    #[test]
    fn multi_line_prose_round_trips() {
        let mut draft = sample_draft();
        draft.definition = "First ''' and \"\"\" quotes.\n\n- a list\n- with `code`\\n".into();
        let record = draft.validate().unwrap();
        let text = kpi_to_toml(&record);
        assert_eq!(kpi_from_toml(&text).unwrap(), record);
    }

    #[test]
    fn unknown_field_reported_by_name() {
        let record = sample_draft().validate().unwrap();
        let text = format!("colour = \"red\"\n{}", kpi_to_toml(&record));
        match kpi_from_toml(&text) {
            Err(ReadError::Syntax { field, .. }) => assert_eq!(field.as_deref(), Some("colour")),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn missing_field_reported_by_name() {
        let record = sample_draft().validate().unwrap();
        let text: String = kpi_to_toml(&record)
            .lines()
            .filter(|line| !line.starts_with("why_it_matters"))
            .map(|line| format!("{line}\n"))
            .collect();
        match kpi_from_toml(&text) {
            Err(ReadError::Syntax { field, .. }) => {
                assert_eq!(field.as_deref(), Some("why_it_matters"))
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
