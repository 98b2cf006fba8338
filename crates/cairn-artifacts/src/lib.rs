//! Cairn's artifact storage: run artifacts, model files, datasets and prediction logs, kept in a
//! local directory or an S3-compatible bucket through one concrete [`ArtifactStore`] over
//! `Arc<dyn object_store::ObjectStore>`.
//!
//! - Paths are [`ArtifactPath`]s, validated once by [`ArtifactPath::parse`]; nothing else
//!   reaches a backend.
//! - Uploads stream in bounded memory, record a SHA-256, and are atomic
//!   ([`ArtifactStore::put_stream`]); downloads stream ([`ArtifactStore::get`]).
//! - Errors carry an [`ArtifactErrorKind`] that the service layer maps onto its own kinds.
//! - With the `testsuite` feature, [`testsuite`] holds the conformance suite every backend
//!   passes (`tests/conformance.rs` runs it on a temporary directory and on SeaweedFS).

mod error;
mod local;
mod open;
mod path;
mod store;
mod upload;
mod walk;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use error::{ArtifactError, ArtifactErrorKind, BoxError};
pub use open::S3Options;
pub use path::{ArtifactPath, MAX_PATH_BYTES};
pub use store::{ArtifactEntry, ArtifactStore, CHECK_TIMEOUT, GetOutcome};
pub use upload::{MAX_PARTS_IN_FLIGHT, PART_SIZE, PutOutcome};
pub use walk::StoredObject;
