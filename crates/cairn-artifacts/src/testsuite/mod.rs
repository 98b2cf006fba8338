//! The conformance suite every artifact backend must pass (feature `testsuite`).
//!
//! Each test is an async function taking a fresh `&ArtifactStore` and panicking on a failed
//! assertion. [`artifact_store_test_suite!`](crate::artifact_store_test_suite) expands to one
//! `#[tokio::test]` per function for a given store factory, so a backend's test file is a few
//! lines; [`run_all`] runs them all against one store.

mod failures;
mod listing;
mod paths;
mod round_trip;
mod support;

use std::any::Any;

pub use failures::failed_upload_leaves_nothing;
pub use failures::{dropped_upload_leaves_nothing, failed_upload_keeps_existing_object};
pub use listing::{delete_prefix_removes_files_and_trees, lists_nested_directories};
pub use listing::{missing_directory_lists_empty, missing_file_is_not_found};
pub use paths::{check_reports_ready, file_and_directory_names_collide};
pub use paths::{rejects_invalid_paths, unusual_names_round_trip};
pub use round_trip::{round_trip_multipart, round_trip_small, streams_large_generated_body};
pub use support::{generated_body, generated_sha256, sha256_hex};

use crate::{ArtifactPath, ArtifactStore};

/// A store handed to one conformance test, with whatever must outlive the test (a temporary
/// directory) and what to delete afterwards (the test's S3 prefix).
pub struct TestStore {
    store: ArtifactStore,
    _guard: Option<Box<dyn Any + Send>>,
    cleanup: Option<(ArtifactStore, ArtifactPath)>,
}

impl TestStore {
    /// Wraps a store that needs no guard and no cleanup.
    pub fn new(store: ArtifactStore) -> Self {
        Self { store, _guard: None, cleanup: None }
    }

    /// Keeps `guard` (say, a `tempfile::TempDir`) alive as long as the store.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// Deletes `path` from `parent` once the test has passed.
    pub fn with_cleanup(mut self, parent: ArtifactStore, path: ArtifactPath) -> Self {
        self.cleanup = Some((parent, path));
        self
    }

    /// Returns the store under test.
    pub fn store(&self) -> &ArtifactStore {
        &self.store
    }

    /// Runs the cleanup, if any; a failure only warns, since the test itself passed.
    pub async fn finish(self) {
        if let Some((parent, path)) = &self.cleanup
            && let Err(error) = parent.delete_prefix(path).await
        {
            eprintln!("warning: could not delete test data under {path}: {error}");
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance test. `$make_store` is an async function
/// `fn(&'static str) -> Option<TestStore>` given the test's name; `None` skips the test (the
/// factory prints why).
///
/// Keep the list in step with [`run_all`].
#[macro_export]
macro_rules! artifact_store_test_suite {
    ($make_store:path) => {
        $crate::artifact_store_test_suite!(@tests $make_store;
            round_trip_small,
            round_trip_multipart,
            streams_large_generated_body,
            lists_nested_directories,
            missing_file_is_not_found,
            missing_directory_lists_empty,
            delete_prefix_removes_files_and_trees,
            failed_upload_leaves_nothing,
            failed_upload_keeps_existing_object,
            dropped_upload_leaves_nothing,
            rejects_invalid_paths,
            unusual_names_round_trip,
            file_and_directory_names_collide,
            check_reports_ready,
        );
    };
    (@tests $make_store:path; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let Some(test_store) = $make_store(stringify!($test)).await else {
                    return;
                };
                $crate::testsuite::$test(test_store.store()).await;
                test_store.finish().await;
            }
        )+
    };
}

/// Runs every conformance test, in turn, against one store. Keep in step with
/// [`artifact_store_test_suite!`](crate::artifact_store_test_suite).
pub async fn run_all(store: &ArtifactStore) {
    round_trip_small(store).await;
    round_trip_multipart(store).await;
    streams_large_generated_body(store).await;
    lists_nested_directories(store).await;
    missing_file_is_not_found(store).await;
    missing_directory_lists_empty(store).await;
    delete_prefix_removes_files_and_trees(store).await;
    failed_upload_leaves_nothing(store).await;
    failed_upload_keeps_existing_object(store).await;
    dropped_upload_leaves_nothing(store).await;
    rejects_invalid_paths(store).await;
    unusual_names_round_trip(store).await;
    file_and_directory_names_collide(store).await;
    check_reports_ready(store).await;
}
