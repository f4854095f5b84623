//! Where the database lives: parsing what [`crate::SqliteStore::open`] accepts.

use std::path::{Path, PathBuf};

use lms_ports::{Context, RepoError};

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// What diesel opens, as given: diesel turns `sqlite://` into a `file:` URI, and SQLite
    /// reads a plain path literally.
    pub url: String,
    /// The database file; `None` for an in-memory database.
    pub file: Option<PathBuf>,
}

impl Target {
    /// Accepts `sqlite://path/to/file.db` (relative), `sqlite:///abs/file.db`, a `file:` URI,
    /// a plain path, or `:memory:` (also `sqlite://:memory:` and `mode=memory` URIs).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] for an empty location (SQLite would make a private temporary
    /// database of it, which is never what a deployment means).
    pub fn parse(raw: &str) -> Result<Self, RepoError> {
        let raw = raw.trim();
        let uri = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("file:").map(strip_authority));
        let (path, in_memory_mode) = match uri {
            Some(rest) => {
                let (path, query) = match rest.split_once('?') {
                    Some((path, query)) => (path, Some(query)),
                    None => (rest.split('#').next().unwrap_or(rest), None),
                };
                let memory =
                    query.is_some_and(|query| query.split('&').any(|pair| pair == "mode=memory"));
                (path, memory)
            }
            None => (raw, false),
        };
        if path.is_empty() && !in_memory_mode {
            return Err(RepoError::unexpected("the SQLite database path is empty"));
        }
        let file = if in_memory_mode || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        };
        Ok(Self {
            url: raw.to_owned(),
            file,
        })
    }

    pub fn in_memory(&self) -> bool {
        self.file.is_none()
    }

    /// For humans (the health check): the file, or `:memory:`.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => ":memory:".to_owned(),
        }
    }

    /// Creates the directory of the database file if it does not exist yet, so that a fresh
    /// machine needs no setup step.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the directory cannot be created.
    pub fn ensure_directory(&self) -> Result<(), RepoError> {
        let Some(parent) = self.file.as_deref().and_then(Path::parent) else {
            return Ok(());
        };
        if parent.as_os_str().is_empty() || parent.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(parent).map_err(|e| {
            RepoError::unavailable(Context::new(
                format!(
                    "cannot create the directory {} of the SQLite database",
                    parent.display()
                ),
                e,
            ))
        })
    }
}

/// `file://localhost/abs` and `file:///abs` are `/abs`; `file:rel` is `rel`.
fn strip_authority(rest: &str) -> &str {
    match rest.strip_prefix("//") {
        Some(after) => after.find('/').map_or("", |slash| &after[slash..]),
        None => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Option<PathBuf> {
        Target::parse(raw).unwrap().file
    }

    #[test]
    fn urls_paths_and_memory_are_understood() {
        assert_eq!(
            file("sqlite://data/lms.db"),
            Some(PathBuf::from("data/lms.db"))
        );
        assert_eq!(
            file("sqlite:///var/lib/lms.db"),
            Some(PathBuf::from("/var/lib/lms.db"))
        );
        assert_eq!(
            file("sqlite://data/lms.db?mode=rwc"),
            Some(PathBuf::from("data/lms.db"))
        );
        assert_eq!(file("data/lms.db"), Some(PathBuf::from("data/lms.db")));
        assert_eq!(file(" /tmp/x.db "), Some(PathBuf::from("/tmp/x.db")));
        assert_eq!(file("file:///abs/x.db"), Some(PathBuf::from("/abs/x.db")));
        assert_eq!(file("file:rel.db"), Some(PathBuf::from("rel.db")));
        assert_eq!(file(":memory:"), None);
        assert_eq!(file("sqlite://:memory:"), None);
        assert_eq!(file("file:shared?mode=memory&cache=shared"), None);
        assert_eq!(Target::parse("data/lms.db").unwrap().url, "data/lms.db");
    }

    #[test]
    fn an_empty_location_is_refused() {
        assert!(matches!(Target::parse(""), Err(RepoError::Unexpected(_))));
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(RepoError::Unexpected(_))
        ));
    }

    #[test]
    fn descriptions_name_the_file() {
        assert_eq!(
            Target::parse("sqlite://a/b.db").unwrap().describe(),
            "a/b.db"
        );
        assert_eq!(Target::parse(":memory:").unwrap().describe(), ":memory:");
    }
}
