//! A run's artifact previews: text files (the first [`PREVIEW_BYTES`], escaped, in a `<pre>`),
//! CSV and TSV heads (the first [`CSV_ROWS`] rows as a table), raster images (an `<img>` of a
//! same-origin route that sends the image's own content type with `nosniff` and a sandboxing
//! content security policy), and a download link for everything. SVG images are offered as a
//! download only: an SVG can carry script, so it is never shown on Cairn's origin.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_service::Services;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::error::{PageError, PageResult};
use crate::extract::PagePath;
use crate::layout::{Layout, encode, render};
use crate::session::Visitor;

/// How much of a file a preview reads.
pub const PREVIEW_BYTES: usize = 64 * 1024;
/// Rows of a CSV head.
const CSV_ROWS: usize = 20;
/// The URI scheme of artifacts this server proxies.
pub const PROXY_SCHEME: &str = "mlflow-artifacts:/";
/// The policy of an image answer: nothing loads, nothing runs, even if opened on its own.
const IMAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// What kind of preview a file gets, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewKind {
    /// A raster image with this content type.
    Image(&'static str),
    /// An SVG: download only.
    Svg,
    /// A delimited table with this separator.
    Table(u8),
    /// Anything else: text if it reads as UTF-8.
    Text,
}

/// The preview kind of `path`.
pub fn preview_kind(path: &str) -> PreviewKind {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => PreviewKind::Image("image/png"),
        Some("jpg" | "jpeg") => PreviewKind::Image("image/jpeg"),
        Some("gif") => PreviewKind::Image("image/gif"),
        Some("webp") => PreviewKind::Image("image/webp"),
        Some("svg" | "svgz") => PreviewKind::Svg,
        Some("csv") => PreviewKind::Table(b','),
        Some("tsv") => PreviewKind::Table(b'\t'),
        _ => PreviewKind::Text,
    }
}

/// The store path under a proxied artifact URI, if the run's artifacts are proxied here.
pub fn proxied_root(uri: &str) -> Option<&str> {
    uri.strip_prefix(PROXY_SCHEME).map(|root| root.trim_matches('/'))
}

/// Reads at most `limit` bytes of `stream`; the flag says whether more followed.
pub async fn read_prefix<S, E>(mut stream: S, limit: usize) -> PageResult<(Vec<u8>, bool)>
where
    S: Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| PageError::internal(format!("reading a file: {error}")))?;
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
        if bytes.len() == limit {
            let more = stream.next().await.is_some();
            return Ok((bytes, more));
        }
    }
    Ok((bytes, false))
}

/// `bytes` as text, when they are UTF-8 without NUL bytes (a character cut by the read limit
/// at the end is dropped).
pub fn as_text(bytes: &[u8], truncated: bool) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.to_string()),
        Err(error) if truncated && error.error_len().is_none() => {
            std::str::from_utf8(&bytes[..error.valid_up_to()]).ok().map(str::to_string)
        }
        Err(_) => None,
    }
}

/// The first [`CSV_ROWS`] records after the header of a delimited file's head; a record cut by
/// the read limit is left out.
pub fn table_head(bytes: &[u8], separator: u8, truncated: bool) -> Option<TablePreview> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = reader.headers().ok()?.iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    let mut records = reader.records();
    for record in records.by_ref() {
        let record = record.ok()?;
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
        if rows.len() > CSV_ROWS {
            break;
        }
    }
    let more = rows.len() > CSV_ROWS || truncated;
    if rows.len() > CSV_ROWS {
        rows.truncate(CSV_ROWS);
    } else if truncated {
        rows.pop();
    }
    Some(TablePreview { header, rows, more })
}

/// A table's head.
pub struct TablePreview {
    /// Column names.
    pub header: Vec<String>,
    /// The first rows.
    pub rows: Vec<Vec<String>>,
    /// Whether the file has more.
    pub more: bool,
}

#[derive(Template)]
#[template(path = "artifact.html")]
struct PreviewPage {
    layout: Layout,
    project: String,
    run_id: String,
    run_name: String,
    path: String,
    parent: String,
    download_href: String,
    image_href: Option<String>,
    svg: bool,
    text: Option<String>,
    table: Option<TablePreview>,
    truncated: bool,
    binary: bool,
}

fn encoded_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The run's artifact root and the file's full store path.
async fn locate(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    run_id: &str,
    path: &str,
) -> PageResult<(cairn_domain::entities::Run, String)> {
    let context = visitor.in_project(project);
    let run = services.tracking.get_run(&context, run_id).await?;
    let root = proxied_root(&run.info.artifact_uri).ok_or_else(|| {
        PageError::not_found("this run's artifacts are not stored on this server")
    })?;
    let full = format!("{root}/{}", path.trim_matches('/'));
    Ok((run, full))
}

/// `GET /projects/{project}/runs/{run_id}/preview/{*path}`.
pub async fn preview(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id, path)): PagePath<(String, String, String)>,
) -> PageResult {
    let (run, full) = locate(&services, &visitor, &project, &run_id, &path).await?;
    let base = format!("/projects/{}/runs/{}", encode(&project), encode(&run_id));
    let kind = preview_kind(&path);
    let mut page = PreviewPage {
        layout: Layout::new(&visitor, "projects", path.clone()),
        run_id: run.info.run_id.clone(),
        run_name: run.info.run_name.clone(),
        parent: path.rsplit_once('/').map(|(parent, _)| parent.to_string()).unwrap_or_default(),
        download_href: format!("{base}/artifacts/{}", encoded_path(&path)),
        image_href: None,
        svg: kind == PreviewKind::Svg,
        text: None,
        table: None,
        truncated: false,
        binary: false,
        path,
        project,
    };
    match kind {
        PreviewKind::Image(_) => {
            page.image_href = Some(format!("{base}/raw/{}", encoded_path(&page.path)));
        }
        PreviewKind::Svg => {}
        PreviewKind::Table(_) | PreviewKind::Text => {
            let context = visitor.in_project(&page.project);
            let outcome = services.artifacts.download(&context, &full).await?;
            let (bytes, truncated) = read_prefix(outcome.stream, PREVIEW_BYTES).await?;
            page.truncated = truncated;
            if let PreviewKind::Table(separator) = kind {
                page.table = table_head(&bytes, separator, truncated);
            }
            if page.table.is_none() {
                page.text = as_text(&bytes, truncated);
                page.binary = page.text.is_none();
            }
        }
    }
    render(&page)
}

/// `GET /projects/{project}/runs/{run_id}/raw/{*path}`: a raster image with its own content
/// type, for the preview's `<img>`; anything else is not served here.
pub async fn raw(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id, path)): PagePath<(String, String, String)>,
) -> PageResult {
    let PreviewKind::Image(content_type) = preview_kind(&path) else {
        return Err(PageError::not_found("only PNG, JPEG, GIF and WebP images are shown inline"));
    };
    let (_, full) = locate(&services, &visitor, &project, &run_id, &path).await?;
    let context = visitor.in_project(&project);
    let outcome = services.artifacts.download(&context, &full).await?;
    let stream = outcome.stream.map_err(std::io::Error::other);
    let mut response: Response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(IMAGE_CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    if let Ok(length) = HeaderValue::from_str(&outcome.size.to_string()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_extension() {
        assert_eq!(preview_kind("plots/loss.PNG"), PreviewKind::Image("image/png"));
        assert_eq!(preview_kind("a.jpeg"), PreviewKind::Image("image/jpeg"));
        assert_eq!(preview_kind("logo.svg"), PreviewKind::Svg);
        assert_eq!(preview_kind("data.csv"), PreviewKind::Table(b','));
        assert_eq!(preview_kind("MLmodel"), PreviewKind::Text);
    }

    #[test]
    fn text_keeps_whole_characters() {
        let bytes = "héllo".as_bytes();
        assert_eq!(as_text(&bytes[..2], true).as_deref(), Some("h"));
        assert_eq!(as_text(&bytes[..2], false), None);
        assert_eq!(as_text(b"a\0b", false), None);
    }

    #[test]
    fn csv_heads_stop_at_twenty_rows() {
        let mut csv = String::from("a,b\n");
        for row in 0..30 {
            csv.push_str(&format!("{row},\"x,{row}\"\n"));
        }
        let head = table_head(csv.as_bytes(), b',', false).unwrap();
        assert_eq!(head.header, ["a", "b"]);
        assert_eq!(head.rows.len(), 20);
        assert_eq!(head.rows[3], ["3", "x,3"]);
        assert!(head.more);
        let head = table_head(b"a,b\n1,2\n3,", b',', true).unwrap();
        assert_eq!(head.rows, [["1", "2"]], "the cut record is left out");
    }
}
