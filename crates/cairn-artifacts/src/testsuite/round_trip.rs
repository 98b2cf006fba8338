//! Conformance: what goes in comes back out, byte for byte, with the right size and SHA-256,
//! from an empty file to a 64 MiB body that is never held in memory whole.

use super::support::sha256_hex;
use super::support::{generated_body, generated_sha256, hash_download, path, put_bytes, read_all};
use crate::{ArtifactStore, PART_SIZE};

/// The SHA-256 of the empty string.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Small and empty files round-trip, and a second upload replaces the first.
pub async fn round_trip_small(store: &ArtifactStore) {
    let outcome = put_bytes(store, "small/hello.txt", b"hello world").await;
    assert_eq!(outcome.size, 11);
    assert_eq!(outcome.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    assert_eq!(read_all(store, "small/hello.txt").await, b"hello world");
    assert!(store.exists(&path("small/hello.txt")).await.expect("exists"));

    let replaced = put_bytes(store, "small/hello.txt", b"goodbye").await;
    assert_eq!(replaced.sha256, sha256_hex(b"goodbye"));
    assert_eq!(read_all(store, "small/hello.txt").await, b"goodbye");

    let empty = store
        .put_stream(
            &path("small/empty"),
            futures::stream::iter(Vec::<Result<bytes::Bytes, std::io::Error>>::new()),
        )
        .await
        .expect("empty upload");
    assert_eq!((empty.size, empty.sha256.as_str()), (0, EMPTY_SHA256));
    assert_eq!(read_all(store, "small/empty").await, b"");

    let top_level = put_bytes(store, "top-level-file", b"at the root").await;
    assert_eq!(top_level.size, 11);
    assert_eq!(read_all(store, "top-level-file").await, b"at the root");
}

/// A body larger than one part (here 12 MiB plus an odd tail, in odd-sized chunks) goes
/// through the multipart path and comes back intact.
pub async fn round_trip_multipart(store: &ArtifactStore) {
    let size = (PART_SIZE + 4 * 1024 * 1024 + 12_345) as u64;
    assert!(size > 10 * 1024 * 1024);
    let body = generated_body(1, size, 1_000_003);
    let outcome = store.put_stream(&path("multipart/blob.bin"), body).await.expect("upload");
    let expected = generated_sha256(1, size);
    assert_eq!(outcome.size, size);
    assert_eq!(outcome.sha256, expected);
    assert_eq!(hash_download(store, "multipart/blob.bin").await, (size, expected));

    let listed = store.list(Some(&path("multipart"))).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].size, Some(size));
}

/// A 64 MiB body produced by a generator streams up and down without being buffered whole.
pub async fn streams_large_generated_body(store: &ArtifactStore) {
    let size: u64 = 64 * 1024 * 1024;
    let body = generated_body(64, size, 256 * 1024);
    let outcome = store.put_stream(&path("large/64mib.bin"), body).await.expect("upload");
    let expected = generated_sha256(64, size);
    assert_eq!(outcome.size, size);
    assert_eq!(outcome.sha256, expected);
    assert_eq!(hash_download(store, "large/64mib.bin").await, (size, expected));
}
