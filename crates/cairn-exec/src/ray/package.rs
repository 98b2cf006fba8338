//! The job's working directory as a Ray package: a deterministic zip (sorted entries, fixed
//! timestamps, only the executable bit kept from file modes) named by its content hash, as the
//! Ray SDK does (`gcs://_ray_pkg_<hex>.zip`), so an unchanged directory is uploaded once.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::ExecError;

/// The largest working directory accepted (Ray's package store takes messages below 512 MiB).
pub const MAX_PACKAGE_SOURCE_BYTES: u64 = 400 << 20;

/// A zipped working directory ready to upload.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// `_ray_pkg_<32 hex>.zip`, from the SHA-256 of the zip.
    pub name: String,
    /// The zip itself.
    pub bytes: Vec<u8>,
}

impl Package {
    /// Returns the URI jobs name the package by in `runtime_env.working_dir`.
    pub fn uri(&self) -> String {
        format!("gcs://{}", self.name)
    }
}

/// Zips `dir` plus `extra` files (name, contents) at its root. Symlinks and special files are
/// left out; an `extra` file replaces a directory file of the same name.
pub(crate) fn build(dir: &Path, extra: &[(&str, &[u8])]) -> Result<Package, ExecError> {
    let failure = |error: &dyn std::fmt::Display| {
        ExecError::Internal(format!("zipping the working directory failed: {error}"))
    };
    let (dirs, files) = list(dir).map_err(|error| failure(&error))?;
    let total: u64 = files.iter().map(|(_, _, size)| size).sum();
    if total > MAX_PACKAGE_SOURCE_BYTES {
        return Err(ExecError::InvalidSpec(format!(
            "the working directory holds {total} bytes, more than the {MAX_PACKAGE_SOURCE_BYTES} \
             a Ray package may hold"
        )));
    }
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT);
    let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for relative in &dirs {
        writer
            .add_directory(zip_name(relative)?, base.unix_permissions(0o755))
            .map_err(|error| failure(&error))?;
    }
    for (relative, executable, _) in &files {
        let name = zip_name(relative)?;
        if extra.iter().any(|(extra_name, _)| *extra_name == name) {
            continue;
        }
        let mode = if *executable { 0o755 } else { 0o644 };
        writer.start_file(name, base.unix_permissions(mode)).map_err(|error| failure(&error))?;
        let mut source =
            std::fs::File::open(dir.join(relative)).map_err(|error| failure(&error))?;
        std::io::copy(&mut source, &mut writer).map_err(|error| failure(&error))?;
    }
    for (name, contents) in extra {
        writer.start_file(*name, base.unix_permissions(0o644)).map_err(|error| failure(&error))?;
        writer.write_all(contents).map_err(|error| failure(&error))?;
    }
    let bytes = writer.finish().map_err(|error| failure(&error))?.into_inner();
    let hash = hex::encode(Sha256::digest(&bytes));
    Ok(Package { name: format!("_ray_pkg_{}.zip", &hash[..32]), bytes })
}

/// A regular file to package: its path relative to the root, executable bit and size.
type FileEntry = (PathBuf, bool, u64);

/// Lists directories and regular files under `root`, relative to it, sorted.
fn list(root: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<FileEntry>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative_dir) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&relative_dir))? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let relative = relative_dir.join(entry.file_name());
            if file_type.is_dir() {
                dirs.push(relative.clone());
                pending.push(relative);
            } else if file_type.is_file() {
                let meta = entry.metadata()?;
                files.push((relative, meta.permissions().mode() & 0o111 != 0, meta.len()));
            }
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

fn zip_name(relative: &Path) -> Result<String, ExecError> {
    let name = relative.to_str().ok_or_else(|| {
        ExecError::InvalidSpec(format!(
            "the working directory holds a file name that is not UTF-8: {}",
            relative.display()
        ))
    })?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_deterministic_and_hold_every_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/empty")).unwrap();
        std::fs::write(dir.path().join("src/train.py"), "print('train')\n").unwrap();
        std::fs::write(dir.path().join("data.csv"), "a,b\n1,2\n").unwrap();
        let first = build(dir.path(), &[("wrapper.py", b"pass\n")]).unwrap();
        // Touching a file changes its mtime, not the package.
        std::fs::write(dir.path().join("data.csv"), "a,b\n1,2\n").unwrap();
        let second = build(dir.path(), &[("wrapper.py", b"pass\n")]).unwrap();
        assert_eq!(first.name, second.name);
        assert_eq!(first.bytes, second.bytes);
        assert!(first.uri().starts_with("gcs://_ray_pkg_") && first.uri().ends_with(".zip"));
        let archive = zip::ZipArchive::new(std::io::Cursor::new(first.bytes)).unwrap();
        let mut names: Vec<String> =
            archive.file_names().map(|name| name.unwrap().into_owned()).collect();
        names.sort_unstable();
        assert_eq!(names, ["data.csv", "src/", "src/empty/", "src/train.py", "wrapper.py"]);
        std::fs::write(dir.path().join("data.csv"), "changed\n").unwrap();
        let third = build(dir.path(), &[("wrapper.py", b"pass\n")]).unwrap();
        assert_ne!(first.name, third.name);
    }
}
