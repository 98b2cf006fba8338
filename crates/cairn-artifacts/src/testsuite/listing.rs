//! Conformance: one-level listings of nested directories, missing files and directories, and
//! `delete_prefix` on files, trees and look-alike siblings. After a deletion, directories that
//! hold no file may linger in S3-compatible listings for a while (SeaweedFS), never locally.

use super::support::{assert_absent, listing, path, put_bytes, read_all, visible_listing};
use crate::{ArtifactErrorKind, ArtifactStore};

/// Listing shows one level, directories and files, sorted, with sizes for files only.
pub async fn lists_nested_directories(store: &ArtifactStore) {
    for (at, content) in [
        ("tree/a.txt", &b"a"[..]),
        ("tree/b/c.txt", b"cc"),
        ("tree/b/d/e.txt", b"eee"),
        ("tree/b-sibling.txt", b"sibling"),
        ("tree/z.bin", b"zzzz"),
    ] {
        put_bytes(store, at, content).await;
    }

    let top = listing(store, Some("tree")).await;
    let expected_top = vec![
        ("tree/a.txt".to_owned(), false, Some(1)),
        ("tree/b".to_owned(), true, None),
        ("tree/b-sibling.txt".to_owned(), false, Some(7)),
        ("tree/z.bin".to_owned(), false, Some(4)),
    ];
    assert_eq!(top, expected_top);

    let nested =
        vec![("tree/b/c.txt".to_owned(), false, Some(2)), ("tree/b/d".to_owned(), true, None)];
    assert_eq!(listing(store, Some("tree/b")).await, nested);
    assert_eq!(listing(store, Some("tree/b/")).await, nested, "a trailing slash is the same dir");
    assert_eq!(
        listing(store, Some("tree/b/d")).await,
        vec![("tree/b/d/e.txt".to_owned(), false, Some(3))]
    );

    let root = listing(store, None).await;
    assert!(root.contains(&("tree".to_owned(), true, None)), "root listing: {root:?}");
    let sorted = root.windows(2).all(|pair| pair[0].0 < pair[1].0);
    assert!(sorted, "root listing is sorted: {root:?}");
}

/// A missing file is `NotFound` for `get`, `false` for `exists`; a directory is not a file.
pub async fn missing_file_is_not_found(store: &ArtifactStore) {
    let missing = path("missing/nothing-here.txt");
    let error = store.get(&missing).await.expect_err("get of a missing file fails");
    assert_eq!(error.kind(), ArtifactErrorKind::NotFound, "{error}");
    assert!(!store.exists(&missing).await.expect("exists"));

    put_bytes(store, "missing-dir-probe/inner/file.txt", b"x").await;
    let directory = path("missing-dir-probe/inner");
    let error = store.get(&directory).await.expect_err("get of a directory fails");
    assert_eq!(error.kind(), ArtifactErrorKind::NotFound, "{error}");
    assert!(!store.exists(&directory).await.expect("exists"));
}

/// Listing a directory that does not exist, or a file as if it were one, is empty.
pub async fn missing_directory_lists_empty(store: &ArtifactStore) {
    assert_eq!(listing(store, Some("no-such-dir")).await, vec![]);
    assert_eq!(listing(store, Some("no-such-dir/deeper")).await, vec![]);
    put_bytes(store, "lonely/file.txt", b"x").await;
    assert_eq!(listing(store, Some("lonely/file.txt")).await, vec![]);
    assert_eq!(listing(store, Some("lonely/fil")).await, vec![], "prefixes match whole segments");
}

/// `delete_prefix` removes a single file, or a whole tree, and nothing that merely shares a
/// string prefix; deleting what does not exist succeeds.
pub async fn delete_prefix_removes_files_and_trees(store: &ArtifactStore) {
    for at in [
        "del/run/a.txt",
        "del/run/sub/b.txt",
        "del/run/sub/deep/c.txt",
        "del/runner.txt",
        "del/run-2/d.txt",
        "del/single.txt",
    ] {
        put_bytes(store, at, at.as_bytes()).await;
    }

    store.delete_prefix(&path("del/single.txt")).await.expect("delete a file");
    assert_absent(store, "del/single.txt").await;

    store.delete_prefix(&path("del/run")).await.expect("delete a tree");
    assert_eq!(visible_listing(store, Some("del/run")).await, vec![]);
    assert_absent(store, "del/run/sub/deep/c.txt").await;
    let remaining = visible_listing(store, Some("del")).await;
    let expected =
        vec![("del/run-2".to_owned(), true, None), ("del/runner.txt".to_owned(), false, Some(14))];
    assert_eq!(remaining, expected);
    assert_eq!(read_all(store, "del/run-2/d.txt").await, b"del/run-2/d.txt");

    store.delete_prefix(&path("del/never-existed")).await.expect("deleting nothing succeeds");
    store.delete_prefix(&path("del")).await.expect("delete the rest");
    assert_eq!(visible_listing(store, Some("del")).await, vec![]);
    let root = visible_listing(store, None).await;
    assert!(root.iter().all(|entry| entry.0 != "del"), "root still lists del: {root:?}");
}
