//! Conformance: path validation, names that need escaping on the wire or on disk, and the
//! readiness check.

use super::support::{listing, path, put_bytes, read_all, visible_listing};
use crate::{ArtifactErrorKind, ArtifactPath, ArtifactStore};

/// Inputs that `ArtifactPath::parse` must refuse with MLflow's "Invalid path".
const INVALID_PATHS: &[&str] = &[
    "",
    "/",
    "/etc/passwd",
    "..",
    "../escape",
    "a/../../escape",
    "a/..",
    ".",
    "./a",
    "a/./b",
    "a//b",
    "a\\..\\b",
    "back\\slash",
    "nul\0byte",
    "line\nfeed",
    "carriage\rreturn",
    "escape\u{1b}[0m",
    "upload#1",
];

/// Invalid paths never become `ArtifactPath`s, and percent-encoded look-alikes of `..` are
/// stored as literal names rather than decoded into a traversal.
pub async fn rejects_invalid_paths(store: &ArtifactStore) {
    for input in INVALID_PATHS {
        let error = ArtifactPath::parse(input).expect_err(input);
        assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument, "{input:?}");
        assert_eq!(error.to_string(), "Invalid path", "{input:?}");
    }

    put_bytes(store, "paths/%2e%2e/literal.txt", b"literal").await;
    put_bytes(store, "paths/..%2fdots", b"dots").await;
    let expected = vec![
        ("paths/%2e%2e".to_owned(), true, None),
        ("paths/..%2fdots".to_owned(), false, Some(4)),
    ];
    assert_eq!(listing(store, Some("paths")).await, expected);
    assert_eq!(read_all(store, "paths/%2e%2e/literal.txt").await, b"literal");
    let root = listing(store, None).await;
    assert!(root.iter().all(|entry| entry.0 != ".." && entry.0 != "%2e%2e"), "{root:?}");
}

/// Names with spaces, Unicode and punctuation round-trip and list exactly as written.
pub async fn unusual_names_round_trip(store: &ArtifactStore) {
    let names = [
        "names/with space.txt",
        "names/ünïcødé-名前.txt",
        "names/plus+equals=amp&.txt",
        "names/percent%20literal.txt",
        "names/hash#tag.txt",
        "names/quote'paren(1).txt",
        "names/colon:semi;comma,.txt",
        "names/tilde~at@dollar$.txt",
        "names/.hidden",
        "names/...",
    ];
    for name in names {
        put_bytes(store, name, name.as_bytes()).await;
        assert_eq!(read_all(store, name).await, name.as_bytes(), "{name}");
    }
    let mut expected: Vec<_> =
        names.iter().map(|name| ((*name).to_owned(), false, Some(name.len() as u64))).collect();
    expected.sort();
    assert_eq!(listing(store, Some("names")).await, expected);

    let directory = "names/dir with space/ünï";
    put_bytes(store, &format!("{directory}/file"), b"nested").await;
    assert_eq!(
        listing(store, Some(directory)).await,
        vec![(format!("{directory}/file"), false, Some(6))]
    );
    store.delete_prefix(&path("names/dir with space")).await.expect("delete");
    assert_eq!(visible_listing(store, Some("names/dir with space")).await, vec![]);
    let names_after = visible_listing(store, Some("names")).await;
    assert_eq!(names_after, expected, "only the deleted directory went away");
}

/// A file below another file, or where a directory is: S3 stores both, a local store refuses
/// with `InvalidArgument`. Either way nothing stored before is harmed, and reading a path that
/// runs through a file is `NotFound`.
pub async fn file_and_directory_names_collide(store: &ArtifactStore) {
    put_bytes(store, "collide/file.txt", b"file").await;
    put_bytes(store, "collide/dir/inner.txt", b"inner").await;

    let through_file = path("collide/file.txt/below");
    let error = store.get(&through_file).await.expect_err("nothing lies below a file");
    assert_eq!(error.kind(), ArtifactErrorKind::NotFound, "{error}");
    assert!(!store.exists(&through_file).await.expect("exists"));

    for at in ["collide/file.txt/below", "collide/dir"] {
        let body =
            futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"new"))]);
        if let Err(error) = store.put_stream(&path(at), body).await {
            assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument, "{at}: {error}");
        }
    }
    assert_eq!(read_all(store, "collide/file.txt").await, b"file");
    assert_eq!(read_all(store, "collide/dir/inner.txt").await, b"inner");
    let listed = visible_listing(store, Some("collide/dir")).await;
    assert_eq!(listed, vec![("collide/dir/inner.txt".to_owned(), false, Some(5))]);
}

/// A working store reports ready.
pub async fn check_reports_ready(store: &ArtifactStore) {
    store.check().await.expect("a working store is ready");
    put_bytes(store, "ready/probe", b"x").await;
    store.check().await.expect("still ready with content");
}
