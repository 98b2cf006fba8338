//! Runs the artifact conformance suite against every real backend: a local directory in a
//! temporary folder, and an S3-compatible server (SeaweedFS in CI).
//!
//! The S3 run reads `CAIRN_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:8333`),
//! `CAIRN_TEST_S3_BUCKET` (the bucket must exist: `weed mini -bucket=NAME` creates it), and
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (dummy values are used when unset; SeaweedFS
//! without identities accepts any). Each test gets a fresh random key prefix under
//! `cairn-conformance/`, deleted when the test passes. Without the endpoint the S3 tests print
//! `SKIPPED: ...` to stderr and pass, unless `CAIRN_TEST_REQUIRE_SERVICES=1`, when they fail.

use cairn_artifacts::testsuite::TestStore;
use cairn_artifacts::{ArtifactErrorKind, ArtifactPath, ArtifactStore, S3Options};

mod local {
    use super::*;

    async fn local_store(_test: &'static str) -> Option<TestStore> {
        let temp = tempfile::tempdir().expect("create a temporary directory");
        let root = temp.path().join("artifacts");
        let url = root.to_str().expect("temporary paths are UTF-8");
        let store = ArtifactStore::open(url, &S3Options::default()).expect("open a local store");
        Some(TestStore::new(store).with_guard(temp))
    }

    cairn_artifacts::artifact_store_test_suite!(local_store);
}

mod s3 {
    use std::io::Write;

    use super::*;

    /// The key prefix under which every S3 test creates its own random prefix.
    const SUITE_PREFIX: &str = "cairn-conformance";

    async fn s3_store(test: &'static str) -> Option<TestStore> {
        let (Some(endpoint), Some(bucket)) =
            (setting("CAIRN_TEST_S3_ENDPOINT"), setting("CAIRN_TEST_S3_BUCKET"))
        else {
            return skip(test, "CAIRN_TEST_S3_ENDPOINT and CAIRN_TEST_S3_BUCKET are not both set");
        };
        let options = options(&endpoint);
        let unique = format!("{test}-{}", uuid::Uuid::new_v4().simple());
        let suite_url = format!("s3://{bucket}/{SUITE_PREFIX}");
        let suite = ArtifactStore::open(&suite_url, &options).expect("open the suite's s3 store");
        let store = ArtifactStore::open(&format!("{suite_url}/{unique}"), &options)
            .expect("open the test's s3 store");
        ensure_bucket(&store, &endpoint, &bucket).await;
        let own_prefix = ArtifactPath::parse(&unique).expect("a valid prefix");
        Some(TestStore::new(store).with_cleanup(suite, own_prefix))
    }

    /// Fails clearly when the bucket does not answer. SeaweedFS creates buckets on first PUT
    /// only for admin identities, so anonymous tests need `weed mini -bucket=NAME`.
    async fn ensure_bucket(store: &ArtifactStore, endpoint: &str, bucket: &str) {
        if let Err(error) = store.check().await {
            panic!(
                "cannot list bucket {bucket:?} at {endpoint}: {error}. Does the bucket exist \
                 (`weed mini ... -bucket={bucket}`), and if the server was started with \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, do the tests use the same ones?"
            );
        }
    }

    /// Options for the test server, with dummy credentials when none are set: without any,
    /// object_store would go looking for the EC2 metadata service.
    fn options(endpoint: &str) -> S3Options {
        S3Options {
            endpoint: Some(endpoint.to_owned()),
            access_key_id: setting("AWS_ACCESS_KEY_ID").or(Some("cairn-test".into())),
            secret_access_key: setting("AWS_SECRET_ACCESS_KEY").or(Some("cairn-test".into())),
            ..S3Options::default()
        }
    }

    /// Reads an environment variable, treating an empty value as unset.
    fn setting(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }

    /// Skips loudly, or fails when services are required (as in CI).
    fn skip(test: &str, reason: &str) -> Option<TestStore> {
        if setting("CAIRN_TEST_REQUIRE_SERVICES").as_deref() == Some("1") {
            panic!("CAIRN_TEST_REQUIRE_SERVICES=1 but {reason}: cannot run s3::{test}");
        }
        // Written to the stderr handle directly: libtest captures `eprintln!` of passing tests,
        // and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: s3::{test}: {reason} (set them to run against SeaweedFS)"
        );
        None
    }

    cairn_artifacts::artifact_store_test_suite!(s3_store);

    /// A bucket that does not exist makes the store unready, and its listings fail rather than
    /// look empty.
    #[tokio::test]
    async fn missing_bucket_is_unavailable() {
        let Some(endpoint) = setting("CAIRN_TEST_S3_ENDPOINT") else {
            skip("missing_bucket_is_unavailable", "CAIRN_TEST_S3_ENDPOINT is not set");
            return;
        };
        let options = options(&endpoint);
        let bucket = format!("cairn-missing-{}", uuid::Uuid::new_v4().simple());
        let store = ArtifactStore::open(&format!("s3://{bucket}/prefix"), &options).expect("open");
        let error = store.check().await.expect_err("a missing bucket is not ready");
        assert_eq!(error.kind(), ArtifactErrorKind::Unavailable, "{error}");
        let error = store.list(None).await.expect_err("a missing bucket does not list as empty");
        let kind = error.kind();
        assert!(
            matches!(kind, ArtifactErrorKind::Unavailable | ArtifactErrorKind::Internal),
            "{error}"
        );
    }
}

/// The whole suite, in order, against a single local store: catches tests that only pass
/// because each one starts from an empty store.
#[tokio::test]
async fn whole_suite_shares_one_local_store() {
    let temp = tempfile::tempdir().expect("create a temporary directory");
    let url = temp.path().to_str().expect("temporary paths are UTF-8");
    let store = ArtifactStore::open(url, &S3Options::default()).expect("open a local store");
    cairn_artifacts::testsuite::run_all(&store).await;
}
