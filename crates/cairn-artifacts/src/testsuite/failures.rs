//! Conformance: uploads are atomic. A body that fails, or an upload whose future is dropped,
//! leaves no object (not even an empty directory in a listing) and never clobbers an existing
//! object — both below one part (a single put) and past it (a multipart upload).

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;

use super::support::{
    assert_absent, failing_body, generated_body, listing, path, put_bytes, read_all,
};
use crate::{ArtifactErrorKind, ArtifactStore, PART_SIZE};

/// Body sizes at which the failure tests break off: within the first part, and after one
/// whole part has been sent.
fn break_points() -> [u64; 2] {
    [3 * 256 * 1024, (PART_SIZE + 2 * 1024 * 1024) as u64]
}

/// A body that fails midway yields an `InvalidArgument` error and stores nothing.
pub async fn failed_upload_leaves_nothing(store: &ArtifactStore) {
    for (index, break_after) in break_points().into_iter().enumerate() {
        let at = format!("failed/new-{index}/object.bin");
        let error = store
            .put_stream(&path(&at), failing_body(10, break_after))
            .await
            .err()
            .unwrap_or_else(|| panic!("upload of {at} must fail"));
        assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument, "{error}");
        assert_absent(store, &at).await;
        assert_eq!(listing(store, Some(&format!("failed/new-{index}"))).await, vec![]);
    }
    assert_eq!(listing(store, Some("failed")).await, vec![], "no empty directories remain");
}

/// A failed upload over an existing object leaves that object as it was.
pub async fn failed_upload_keeps_existing_object(store: &ArtifactStore) {
    let at = "keep/existing.txt";
    put_bytes(store, at, b"the original").await;
    for break_after in break_points() {
        let outcome = store.put_stream(&path(at), failing_body(11, break_after)).await;
        assert!(outcome.is_err(), "upload breaking after {break_after} bytes must fail");
        assert_eq!(read_all(store, at).await, b"the original");
    }
    assert_eq!(
        listing(store, Some("keep")).await,
        vec![("keep/existing.txt".to_owned(), false, Some(12))]
    );
}

/// Dropping `put_stream`'s future halfway (a client disconnecting) aborts the upload: the
/// object never appears, an existing one survives, and no leftovers stay listed.
pub async fn dropped_upload_leaves_nothing(store: &ArtifactStore) {
    put_bytes(store, "dropped/existing.txt", b"still here").await;
    for (index, break_after) in break_points().into_iter().enumerate() {
        for at in [format!("dropped/new-{index}/object.bin"), "dropped/existing.txt".to_owned()] {
            drop_upload_midway(store, &at, break_after).await;
        }
    }
    assert_absent(store, "dropped/new-0/object.bin").await;
    assert_absent(store, "dropped/new-1/object.bin").await;
    assert_eq!(read_all(store, "dropped/existing.txt").await, b"still here");

    // The abort runs in the background after the drop: give it a moment to tidy up.
    let expected = vec![("dropped/existing.txt".to_owned(), false, Some(10))];
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = listing(store, Some("dropped")).await;
        if seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("leftovers after dropped uploads: {seen:?}");
}

/// Starts an upload of `break_after` bytes followed by a body that never ends, waits until the
/// store has consumed those bytes, then drops the upload (leaving `select!` drops it).
async fn drop_upload_midway(store: &ArtifactStore, at: &str, break_after: u64) {
    let reached_end = Arc::new(tokio::sync::Notify::new());
    let signal = Arc::clone(&reached_end);
    let stalled = futures::stream::poll_fn(move |_| {
        signal.notify_one();
        Poll::<Option<Result<bytes::Bytes, std::io::Error>>>::Pending
    });
    let body = generated_body(12, break_after, 256 * 1024).chain(stalled);
    let target = path(at);
    let upload = store.put_stream(&target, body);
    tokio::select! {
        outcome = upload => panic!("an endless upload of {at} finished: {outcome:?}"),
        () = reached_end.notified() => {}
    }
}
