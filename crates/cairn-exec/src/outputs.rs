//! Uploading the files a job left in `$CAIRN_OUTPUTS_DIR`: one `PUT {url}/{relative path}` per
//! regular file, with the bearer token, streamed from disk. (The Ray executor does the same from
//! inside the job, in Python: see `ray/wrapper.py`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::OutputsUpload;

/// Characters escaped in one path segment of an upload URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How often one file's upload is tried before the job fails.
const ATTEMPTS: u32 = 3;

/// Uploads every regular file under `dir` (symlinks and special files are skipped), in path
/// order. Returns how many were sent, or a lowercase message naming the file that failed.
pub(crate) async fn upload_dir(
    client: &reqwest::Client,
    dir: &Path,
    upload: &OutputsUpload,
) -> Result<usize, String> {
    let root = dir.to_path_buf();
    let files = tokio::task::spawn_blocking(move || list_files(&root))
        .await
        .map_err(|error| format!("listing outputs failed: {error}"))?
        .map_err(|error| format!("listing outputs failed: {error}"))?;
    let base = upload.url.trim_end_matches('/');
    for relative in &files {
        let url = format!("{base}/{}", encode_path(relative)?);
        put_file(client, &url, &dir.join(relative), &upload.token)
            .await
            .map_err(|error| format!("{}: {error}", relative.display()))?;
    }
    Ok(files.len())
}

/// Lists regular files under `root` as paths relative to it, sorted.
fn list_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative_dir) = pending.pop() {
        let entries = match std::fs::read_dir(root.join(&relative_dir)) {
            Ok(entries) => entries,
            // No outputs directory (the job removed it) means no outputs.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let relative = relative_dir.join(entry.file_name());
            if file_type.is_dir() {
                pending.push(relative);
            } else if file_type.is_file() {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn encode_path(relative: &Path) -> Result<String, String> {
    let mut segments = Vec::new();
    for component in relative.components() {
        let text = component.as_os_str().to_str().ok_or("the file name is not UTF-8")?;
        segments.push(utf8_percent_encode(text, SEGMENT).to_string());
    }
    Ok(segments.join("/"))
}

async fn put_file(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    token: &str,
) -> Result<(), String> {
    let mut last_error = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        let file = tokio::fs::File::open(path).await.map_err(|error| error.to_string())?;
        let length = file.metadata().await.map_err(|error| error.to_string())?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let mut request = client.put(url);
        // A server without authentication issues no token; an empty one is not sent.
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let request = request
            .header(reqwest::header::CONTENT_LENGTH, length)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                last_error = format!("the server answered {status}: {}", first_line(&text));
                if !status.is_server_error() {
                    break;
                }
            }
            Err(error) => last_error = format!("request failed: {error}"),
        }
    }
    Err(last_error)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_per_segment() {
        let path = Path::new("model dir/weights#1?.bin");
        assert_eq!(encode_path(path).unwrap(), "model%20dir/weights%231%3F.bin");
    }

    #[test]
    fn listing_skips_symlinks_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/d.txt"), "d").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let files = list_files(dir.path()).unwrap();
        assert_eq!(files, vec![PathBuf::from("a.txt"), PathBuf::from("b/c/d.txt")]);
    }
}
