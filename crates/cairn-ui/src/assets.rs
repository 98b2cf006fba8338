//! The UI's static files, compiled into the binary and served under `/ui/static/<name>`. Pages
//! link them with `?v=<content hash>`, so a file is cached for a year and a new build's file is
//! fetched at once; the hash is also the `ETag`.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "cairn.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../static/cairn.css"),
    },
    Asset {
        name: "cairn.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/cairn.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../static/favicon.svg"),
    },
];

/// The first 16 hex digits of each asset's SHA-256, computed once.
fn hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        ASSETS.iter().map(|asset| hex::encode(&Sha256::digest(asset.bytes)[..8])).collect()
    })
}

/// The URL of the asset `name` with its content hash (`/ui/static/cairn.css?v=…`).
pub fn url(name: &str) -> String {
    let index = ASSETS.iter().position(|asset| asset.name == name);
    debug_assert!(index.is_some(), "unknown asset {name}");
    match index {
        Some(index) => format!("/ui/static/{name}?v={}", hashes()[index]),
        None => format!("/ui/static/{name}"),
    }
}

/// `GET /ui/static/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let asset = &ASSETS[index];
    let etag = format!("\"{}\"", hashes()[index]);
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (header::CACHE_CONTROL, cache)])
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        asset.bytes,
    )
        .into_response()
}
