//! `ArtifactPath`: a validated, relative artifact path. Every path that reaches the object store
//! goes through [`ArtifactPath::parse`], so traversal (`..`), absolute paths and control
//! characters cannot reach a backend.

use std::fmt;

use crate::error::ArtifactError;

/// The longest accepted path, in bytes (S3's limit for a whole key).
pub const MAX_PATH_BYTES: usize = 1024;

/// A relative artifact path such as `model/MLmodel`: one or more `/`-separated segments.
///
/// Invariants: not empty; no leading or trailing `/`; no empty, `.` or `..` segment; no
/// backslash and no control character (NUL included); at most [`MAX_PATH_BYTES`] bytes; no
/// segment ending in `#` followed only by digits (the local backend reserves those names for
/// uploads in progress, and every backend accepts the same paths).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// Parses and validates `input`. One trailing `/` is trimmed (`dir/` means `dir`); nothing
    /// else is normalised. Any invalid input yields [`ArtifactError::InvalidPath`], whose kind
    /// is `InvalidArgument` and whose message is MLflow's "Invalid path".
    pub fn parse(input: &str) -> Result<Self, ArtifactError> {
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        if is_valid(trimmed) {
            return Ok(Self(trimmed.to_owned()));
        }
        Err(ArtifactError::invalid_path(input))
    }

    /// Returns `self/child`. Both sides are valid, so the result is valid unless it grows
    /// past [`MAX_PATH_BYTES`].
    pub fn join(&self, child: &ArtifactPath) -> Result<ArtifactPath, ArtifactError> {
        let joined = format!("{}/{}", self.0, child.0);
        if joined.len() > MAX_PATH_BYTES {
            return Err(ArtifactError::invalid_path(&joined));
        }
        Ok(Self(joined))
    }

    /// Returns the path as text, segments separated by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the last segment: the file or directory name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Returns the path without its last segment, or `None` for a single-segment path.
    pub fn parent(&self) -> Option<ArtifactPath> {
        self.0.rsplit_once('/').map(|(parent, _)| Self(parent.to_owned()))
    }

    /// Returns the same location as an `object_store` path, without re-encoding anything.
    pub(crate) fn to_object_path(&self) -> object_store::path::Path {
        // Every segment already satisfies `Path::parse`'s rules, which are weaker than ours.
        object_store::path::Path::parse(&self.0).unwrap_or_else(|_| {
            debug_assert!(false, "a valid artifact path is a valid object path");
            object_store::path::Path::from(self.0.as_str())
        })
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl AsRef<str> for ArtifactPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `path` (already trimmed of one trailing `/`) satisfies every invariant.
fn is_valid(path: &str) -> bool {
    if path.is_empty() || path.len() > MAX_PATH_BYTES || path.starts_with('/') {
        return false;
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return false;
    }
    path.split('/').all(is_valid_segment)
}

/// Whether one segment is neither empty, `.`, `..`, nor a reserved upload name.
fn is_valid_segment(segment: &str) -> bool {
    if segment.is_empty() || segment == "." || segment == ".." {
        return false;
    }
    match segment.rsplit_once('#') {
        Some((_, suffix)) => suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArtifactErrorKind;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_paths() {
        for input in ["model", "model/MLmodel", "a/b/c.txt", "with space/ünï.txt", "a%20b", "x#y"]
        {
            let path = ArtifactPath::parse(input).expect("valid path");
            assert_eq!(path.as_str(), input);
        }
    }

    #[test]
    fn trims_one_trailing_slash() {
        let path = ArtifactPath::parse("dir/sub/").expect("valid path");
        assert_eq!(path.as_str(), "dir/sub");
    }

    #[test]
    fn rejects_invalid_paths() {
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        let invalid = [
            "",
            "/",
            "//",
            "/abs",
            "a//b",
            "a/b//",
            "..",
            "../x",
            "a/../b",
            "a/..",
            ".",
            "./a",
            "a/./b",
            "a\\b",
            "..\\x",
            "nul\0byte",
            "new\nline",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "upload#1",
            "dir/file#42",
            long.as_str(),
        ];
        for input in invalid {
            let error = ArtifactPath::parse(input).expect_err(input);
            assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument, "{input:?}");
            assert_eq!(error.to_string(), "Invalid path");
        }
    }

    #[test]
    fn joins_parents_and_names() {
        let root = ArtifactPath::parse("1/abc/artifacts").expect("valid");
        let child = ArtifactPath::parse("model/MLmodel").expect("valid");
        let joined = root.join(&child).expect("short enough");
        assert_eq!(joined.as_str(), "1/abc/artifacts/model/MLmodel");
        assert_eq!(joined.file_name(), "MLmodel");
        assert_eq!(
            joined.parent().map(|p| p.to_string()).as_deref(),
            Some("1/abc/artifacts/model")
        );
        assert_eq!(child.parent().and_then(|p| p.parent()), None);
    }

    #[test]
    fn join_refuses_overlong_results() {
        let half = ArtifactPath::parse(&"a".repeat(MAX_PATH_BYTES / 2 + 1)).expect("valid");
        assert!(half.join(&half).is_err());
    }

    /// The invariants every parsed path keeps, whatever it was parsed from.
    fn check_invariants(path: &ArtifactPath) -> Result<(), TestCaseError> {
        let text = path.as_str();
        prop_assert!(!text.is_empty() && !text.starts_with('/') && !text.ends_with('/'));
        prop_assert!(text.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
        prop_assert!(!text.contains('\\') && !text.chars().any(char::is_control));
        prop_assert!(text.len() <= MAX_PATH_BYTES);
        let object_path = path.to_object_path();
        prop_assert_eq!(object_path.as_ref(), text);
        prop_assert_eq!(
            ArtifactPath::parse(text).ok(),
            Some(path.clone()),
            "parsing is idempotent"
        );
        Ok(())
    }

    /// Traversal pieces, encodings of them, separators and odd characters, for path soup.
    const PIECES: &[&str] = &[
        "..",
        ".",
        "",
        "a",
        "b.txt",
        "%2e%2e",
        "%2E%2E",
        "%252e",
        "..%2f",
        "%2f",
        "%5c",
        "\\",
        "..\\",
        "C:",
        "c:\\",
        "~",
        "\0",
        "\u{7f}",
        "\u{85}",
        "\u{202e}",
        "é",
        "#1",
        "#",
        "x#12",
        " ",
        "...",
        "\u{2024}\u{2024}",
        "\u{ff0e}\u{ff0e}",
        "//",
        "/",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parsed_paths_keep_their_invariants(input in "\\PC{0,40}") {
            if let Ok(path) = ArtifactPath::parse(&input) {
                check_invariants(&path)?;
            }
        }

        /// Any string at all, control characters and long ones included.
        #[test]
        fn arbitrary_strings_are_refused_or_keep_the_invariants(
            input in prop_oneof![any::<String>(), "[a/.]{0,1100}"],
        ) {
            match ArtifactPath::parse(&input) {
                Ok(path) => check_invariants(&path)?,
                Err(error) => prop_assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument),
            }
        }

        /// Traversal soup: pieces joined by `/` or `\\`, never a `..` segment or an absolute path.
        #[test]
        fn traversal_soup_never_escapes(
            pieces in proptest::collection::vec(
                (prop::sample::select(PIECES), prop::sample::select(&["/", "\\", ""][..])),
                1..8,
            ),
        ) {
            let input: String = pieces.iter().map(|(piece, separator)| format!("{piece}{separator}")).collect();
            if let Ok(path) = ArtifactPath::parse(&input) {
                check_invariants(&path)?;
                prop_assert_eq!(path.as_str(), input.strip_suffix('/').unwrap_or(&input));
            }
        }

        /// Joining valid paths keeps the invariants; a path is its parent joined with its name.
        #[test]
        fn joins_and_parents_keep_the_invariants(
            left in "[a-z.#0-9]{1,6}(/[a-z.#0-9]{1,6}){0,3}",
            right in "[a-z.#0-9]{1,6}(/[a-z.#0-9]{1,6}){0,3}",
        ) {
            let (Ok(left), Ok(right)) = (ArtifactPath::parse(&left), ArtifactPath::parse(&right)) else {
                return Ok(());
            };
            let joined = left.join(&right).expect("short paths join");
            check_invariants(&joined)?;
            prop_assert_eq!(joined.as_str(), format!("{left}/{right}"));
            let parent = joined.parent().expect("a joined path has a parent");
            let name = ArtifactPath::parse(joined.file_name()).expect("a name is a path");
            prop_assert_eq!(parent.join(&name).expect("short"), joined);
        }

        #[test]
        fn segment_soup_is_either_rejected_or_kept_verbatim(
            segments in proptest::collection::vec("(\\.|\\.\\.|[a-z]{1,3}|\\\\|#1|)", 1..6),
        ) {
            let input = segments.join("/");
            match ArtifactPath::parse(&input) {
                Ok(path) => prop_assert_eq!(path.as_str(), input.strip_suffix('/').unwrap_or(&input)),
                Err(error) => prop_assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument),
            }
        }
    }
}
