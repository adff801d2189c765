//! The KPI ontology's core: the record model and its rules, the canonical file format,
//! semantic version rules and the git-backed store. Nothing here depends on HTTP or
//! databases.

pub mod bump;
pub mod catalog;
pub mod format;
pub mod id;
pub mod pin;
pub mod prose;
pub mod record;
pub mod store;

pub use bump::{Bump, FieldChange};
pub use catalog::{Catalog, CatalogFile, LoadedCatalog, Problem};
pub use format::{DomainInfo, OntologyInfo};
pub use id::{DomainId, IdError, KpiId, KpiKey};
pub use pin::{PinError, VersionPin};
pub use record::{FieldError, KpiDraft, KpiRecord, Status, Tier};
pub use store::{GitStore, Identity, Publication, StoreError};
