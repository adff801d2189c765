//! Moving a proposal onto a newer version of its KPI.

use ontology_core::bump;
use ontology_core::{FieldError, KpiId, KpiRecord};
use semver::Version;
use serde_json::Value;

use crate::app::AppState;
use crate::catalog::record_from_body;
use crate::problem::ApiResult;

/// The record of a KPI version as the catalog contains it, `None` if there is no such version.
pub(super) async fn record_at(app: &AppState, id: &KpiId, version: &Version) -> ApiResult<Option<KpiRecord>> {
    let found = {
        let history = app.catalog.read();
        history.kpis.get(id).and_then(|kpi| kpi.versions.iter().find(|v| &v.version == version).cloned())
    };
    let Some(found) = found else { return Ok(None) };
    Ok(Some(record_from_body(app.catalog.kpi_body(id, &found).await?.bytes())?))
}

/// Carries the fields that a proposal changes relative to its old base over to a new base
/// version, keeping whatever else that version changed. A field that the new version also
/// changed, to another value, is a conflict the author resolves by sending the record.
pub(super) async fn rebase(
    app: &AppState,
    proposed: &Value,
    old_base: &Version,
    new_base: &Version,
    errors: &mut Vec<FieldError>,
) -> ApiResult<Option<Value>> {
    let proposed: KpiRecord = serde_json::from_value(proposed.clone()).map_err(anyhow::Error::from)?;
    let id = proposed.id.clone();
    let Some(old_record) = record_at(app, &id, old_base).await? else {
        return Err(anyhow::anyhow!("proposal base {id} {old_base} is not in the catalog").into());
    };
    let Some(new_record) = record_at(app, &id, new_base).await? else {
        errors.push(FieldError::new("base_version", format!("`{id}` has no version {new_base}")));
        return Ok(None);
    };

    let upstream = bump::diff(&old_record, &new_record);
    let mut rebased = serde_json::to_value(&new_record).map_err(anyhow::Error::from)?;
    let mut conflicts = Vec::new();
    for change in bump::diff(&old_record, &proposed) {
        let clash = upstream.iter().find(|other| other.field == change.field && other.after != change.after);
        if clash.is_some() {
            conflicts.push(FieldError::new(
                format!("record.{}", change.field),
                format!(
                    "version {new_base} changed this field too: send the record with both changes resolved, or drop \
                     this proposal's change"
                ),
            ));
            continue;
        }
        rebased[change.field] = change.after;
    }
    if conflicts.is_empty() {
        Ok(Some(rebased))
    } else {
        errors.extend(conflicts);
        Ok(None)
    }
}
