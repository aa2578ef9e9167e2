//! Checks on the paths the user names, shared by every layer.

use std::path::Path;

use color_eyre::eyre::{bail, Result};

/// Fails unless `path` exists, before any work (as the Python master script checks). A symbolic
/// link that leads nowhere (missing target, loop) or a path that cannot be looked at
/// (permissions) is named as such rather than as missing.
pub fn must_exist(path: &Path, what: &str) -> Result<()> {
    let err = match std::fs::metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let shown = path.display();
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into());
        bail!("{what} {shown} is a symbolic link to {target}, which cannot be followed: {err}");
    }
    if err.kind() == std::io::ErrorKind::NotFound {
        bail!("{what} {shown} does not exist");
    }
    bail!("{what} {shown} cannot be accessed: {err}")
}
