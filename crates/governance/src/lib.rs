//! Governance and persistence of the registry: the database, the read index rebuilt from
//! git, and (as they grow) accounts, proposals, reviews and merge policy.

pub mod db;
pub mod index;

pub use db::{Backend, Database, DbError};
pub use index::Index;
