//! Small validated values of a pod: paths, file modes, user and group ids.

use std::fmt;
use std::path::{Component, Path};

/// An absolute path inside a container (`mountPath`, `workingDir`,
/// `terminationMessagePath`), as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AbsPath(String);

impl AbsPath {
    pub fn parse(s: &str) -> Result<AbsPath, &'static str> {
        if s.starts_with('/') {
            Ok(AbsPath(s.to_string()))
        } else {
            Err("must be an absolute path")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Lexically cleaned, as Go's `path.Clean`: how Kubernetes compares mount points.
    pub fn clean(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for part in self.0.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                _ => parts.push(part),
            }
        }
        format!("/{}", parts.join("/"))
    }
}

/// A path below a directory (a `subPath`, a projected file's `path`): relative, not
/// empty, no `..` element (`validateLocalDescendingPath`), so that it cannot name
/// anything outside the directory lexically. Symlinks inside the directory are a
/// matter for whoever resolves it on disk (`bundle::subpath`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

impl RelPath {
    /// The Kubernetes messages, one per rule broken.
    pub fn parse(s: &str) -> Result<RelPath, Vec<&'static str>> {
        let mut why = Vec::new();
        if s.starts_with('/') {
            why.push("must be a relative path");
        }
        if s.split('/').any(|part| part == "..") {
            why.push("must not contain '..'");
        }
        if s.is_empty() {
            why.push("must not be empty");
        }
        let plain = Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if why.is_empty() && !plain {
            why.push("must be a relative path without '..'");
        }
        if why.is_empty() {
            Ok(RelPath(s.to_string()))
        } else {
            Err(why)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Its normal components (`.` and empty elements dropped).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|p| !p.is_empty() && *p != ".")
    }
}

impl TryFrom<String> for RelPath {
    type Error = String;
    fn try_from(s: String) -> Result<RelPath, String> {
        RelPath::parse(&s).map_err(|why| format!("{s:?}: {}", why.join("; ")))
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Permission bits of a projected file: 0..=0777 (`validateModeBits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode(u32);

impl FileMode {
    pub const MSG: &'static str = "must be a number between 0 and 0777 (octal), both inclusive";
    /// The default of configMap, secret and downwardAPI volumes.
    pub const DEFAULT: FileMode = FileMode(0o644);

    pub fn parse(mode: i32) -> Result<FileMode, &'static str> {
        if (0..=0o777).contains(&mode) {
            Ok(FileMode(mode as u32))
        } else {
            Err(Self::MSG)
        }
    }
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// A user or group id of a security context: 0..=2^31-1, as Kubernetes validates
/// them (`runAsUser`, `runAsGroup`, `supplementalGroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u32);

impl Id {
    pub const MSG: &'static str = "must be between 0 and 2147483647, inclusive";
    pub const ROOT: Id = Id(0);

    pub fn parse(id: i64) -> Result<Id, &'static str> {
        if (0..=i64::from(i32::MAX)).contains(&id) {
            Ok(Id(id as u32))
        } else {
            Err(Self::MSG)
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_cannot_climb_or_be_absolute() {
        for ok in ["a", "a/b", "./a", "a/./b", "a..b", "..a"] {
            assert!(RelPath::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            RelPath::parse("/a").unwrap_err(),
            ["must be a relative path"]
        );
        assert_eq!(
            RelPath::parse("a/../b").unwrap_err(),
            ["must not contain '..'"]
        );
        assert_eq!(
            RelPath::parse("/../x").unwrap_err(),
            ["must be a relative path", "must not contain '..'"]
        );
        assert!(RelPath::parse("").is_err());
        // `.` is the directory itself (a subPath of `.` mounts the whole volume).
        assert_eq!(RelPath::parse(".").unwrap().components().count(), 0);
        assert_eq!(
            RelPath::parse("./a//b")
                .unwrap()
                .components()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn absolute_paths_clean_like_go() {
        assert_eq!(AbsPath::parse("/data/").unwrap().clean(), "/data");
        assert_eq!(AbsPath::parse("/a/./b/../c").unwrap().clean(), "/a/c");
        assert!(AbsPath::parse("data").is_err());
    }

    #[test]
    fn modes_and_ids_have_kubernetes_ranges() {
        assert_eq!(FileMode::parse(0o400).unwrap().bits(), 0o400);
        assert!(FileMode::parse(0o1000).is_err());
        assert!(FileMode::parse(-1).is_err());
        assert_eq!(Id::parse(2147483647).unwrap().get(), i32::MAX as u32);
        assert!(Id::parse(2147483648).is_err());
        assert!(Id::parse(-1).is_err());
    }
}
