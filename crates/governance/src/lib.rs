//! Governance and persistence of the registry: the database, the read index rebuilt from
//! git, and (as they grow) accounts, proposals, reviews and merge policy.

pub mod accounts;
pub mod audit;
pub mod db;
pub mod index;
pub mod login_throttle;
pub mod proposals;
pub mod timestamp;
pub mod tokens;

pub use accounts::{Account, AccountError, AccountStore, Role, Username};
pub use audit::{Actor, AuditEvent, AuditLog, Channel};
pub use db::{Backend, Database, DbError};
pub use index::Index;
pub use login_throttle::{Admission, Attempt, LoginPolicy, LoginThrottle};
pub use tokens::{TokenKind, TokenRecord, TokenStore};
