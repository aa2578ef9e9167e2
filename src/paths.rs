//! Checks on the paths the user names, shared by every layer.

use std::path::{Path, PathBuf};

/// A path that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{what} {} does not exist", path.display())]
    Missing { what: &'static str, path: PathBuf },
    #[error("{what} {} is a symbolic link to {target}, which cannot be followed", path.display())]
    DanglingLink {
        what: &'static str,
        path: PathBuf,
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {} cannot be accessed", path.display())]
    Inaccessible {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Fails unless `path` exists, before any work (as the Python master script checks). A symbolic
/// link that leads nowhere (missing target, loop) or a path that cannot be looked at
/// (permissions) is named as such rather than as missing.
pub fn must_exist(path: &Path, what: &'static str) -> Result<(), PathError> {
    let source = match std::fs::metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let path = path.to_path_buf();
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = std::fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into());
        return Err(PathError::DanglingLink { what, path, target, source });
    }
    if source.kind() == std::io::ErrorKind::NotFound {
        return Err(PathError::Missing { what, path });
    }
    Err(PathError::Inaccessible { what, path, source })
}
