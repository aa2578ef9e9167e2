//! Output files are written to a temporary file beside the destination and renamed into place
//! only when complete, so an interrupted or failed run never leaves a half-written file where a
//! good one was (the previous file stays, or there is none).
//!
//! A temporary file or folder is named `.<name>.<6 random characters>.partial` and its writer
//! holds an exclusive `flock` on it for as long as it lives. Nothing runs when a process is
//! killed with SIGKILL, but the kernel drops its locks: every later write into the same folder
//! removes the partials whose lock it can take (their writers are gone) and leaves those still
//! locked (a writer at work).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::{PipelineError, Result};
use tempfile::NamedTempFile;

use crate::json::PyJsonWriter;

/// Creates `dir` (and parents) as the Python tool does, with a clear error when a file is in
/// the way.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(PipelineError::NotADirectory(dir.to_path_buf()));
    }
    fs::create_dir_all(dir).map_err(PipelineError::io("create output directory", dir))
}

#[cfg(unix)]
fn default_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o666)
}

#[cfg(not(unix))]
fn default_permissions() -> fs::Permissions {
    fs::metadata(".").map(|m| m.permissions()).unwrap_or_else(|_| unreachable!())
}

/// Whether `name` is one of our temporary names: `.<name>.<6 characters>.partial`.
fn is_partial_name(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".partial")) else { return false };
    match stem.rsplit_once('.') {
        Some((dest, random)) => {
            !dest.is_empty() && random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Takes an exclusive lock on `file` without waiting: true when it is ours now.
#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid open descriptor; the lock goes with the descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    false
}

/// Holds the writer's lock on a temporary file or folder (see the module comment).
pub fn lock_partial(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(PipelineError::io("open", path))?;
    if !try_lock(&file) && cfg!(unix) {
        return Err(PipelineError::Format(format!("{} is locked by another writer", path.display())));
    }
    Ok(file)
}

/// Removes the temporary files and folders in `dir` whose writers are gone (their lock is
/// free), sparing `keep`. Errors are ignored: this is tidying, never a reason to fail a write.
pub fn remove_stale_partials(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path == keep || !name.to_str().is_some_and(is_partial_name) {
            continue;
        }
        let Ok(file) = File::open(&path) else { continue };
        if !try_lock(&file) {
            continue; // a live writer
        }
        let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
    }
}

pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        ensure_dir(dir)?;
        if dest.is_dir() {
            return Err(PipelineError::Format(format!("cannot write {}: it is a directory", dest.display())));
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // 0o666 minus the umask, as a plain open() would give (tempfile's default is 0o600).
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .permissions(default_permissions())
            .tempfile_in(dir)
            .map_err(PipelineError::io("create a file in", dir))?;
        if !try_lock(tmp.as_file()) && cfg!(unix) {
            return Err(PipelineError::Format(format!("cannot lock the new file {}", tmp.path().display())));
        }
        remove_stale_partials(dir, tmp.path());
        Ok(AtomicFile { tmp, dest: dest.to_path_buf() })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes to disk and renames into place.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest.clone();
        self.tmp.as_file().sync_all().map_err(PipelineError::io("write (disk full?)", &dest))?;
        self.tmp
            .persist(&dest)
            .map_err(|e| PipelineError::io("move the finished file into place at", &dest)(e.error))?;
        Ok(())
    }
}

/// Bytes written between two hints to the kernel to start writing the file to disk.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// A file that asks the kernel to start writing each 32 MB to disk as soon as it is written
/// (Linux `sync_file_range`, a hint that does not wait), so the fsync at commit waits only for
/// the tail instead of the whole file: a durable file without a pause at the end. Elsewhere, a
/// plain file.
pub struct WritebackFile {
    file: File,
    written: u64,
    hinted: u64,
}

impl WritebackFile {
    pub fn new(file: File) -> WritebackFile {
        WritebackFile { file, written: 0, hinted: 0 }
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.hinted >= WRITEBACK_EVERY {
            #[cfg(target_os = "linux")]
            {
                use std::os::fd::AsRawFd;
                let (from, len) = (self.hinted as libc::off64_t, (self.written - self.hinted) as libc::off64_t);
                // SAFETY: a valid open descriptor; the call only schedules I/O. Its result is a
                // hint's: real write errors surface at the fsync in `commit`.
                unsafe { libc::sync_file_range(self.file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE) };
            }
            self.hinted = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A JSON file in Python's layout, written atomically.
pub struct JsonOutput {
    writer: PyJsonWriter<BufWriter<WritebackFile>>,
    file: AtomicFile,
}

impl JsonOutput {
    pub fn create(dest: &Path) -> Result<JsonOutput> {
        let mut file = AtomicFile::create(dest)?;
        let handle = file.file().try_clone().map_err(PipelineError::io("duplicate the file handle of", dest))?;
        Ok(JsonOutput {
            writer: PyJsonWriter::new(BufWriter::with_capacity(1 << 16, WritebackFile::new(handle))),
            file,
        })
    }

    pub fn json(&mut self) -> &mut PyJsonWriter<BufWriter<WritebackFile>> {
        &mut self.writer
    }

    pub fn dest(&self) -> &Path {
        self.file.dest()
    }

    /// Number of NaN / infinite floats written.
    pub fn non_finite(&self) -> u64 {
        self.writer.non_finite
    }

    pub fn commit(self) -> Result<()> {
        let dest = self.file.dest().to_path_buf();
        let mut inner = self.writer.finish().map_err(PipelineError::io("write (disk full?)", &dest))?;
        inner.flush().map_err(PipelineError::io("write", &dest))?;
        drop(inner);
        self.file.commit()
    }
}

/// Maps an I/O error while writing to an error naming the file.
pub fn write_err(dest: &Path) -> impl Fn(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io { action: "write".into(), path: dest.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_temporary_names_are_partials() {
        assert!(is_partial_name(".weight_gradients.json.aB3x9Z.partial"));
        assert!(is_partial_name(".weight_gradients.aB3x9Z.partial"));
        for other in [
            "weight_gradients.json.aB3x9Z.partial",
            ".x.partial",
            ".a.b.partial",
            ".a.abc-12.partial",
            "..abcdef.partial",
        ] {
            assert!(!is_partial_name(other), "{other}");
        }
    }

    #[test]
    fn stale_partials_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".a.json.Ab12Cd.partial");
        std::fs::write(&stale, b"left by a killed run").unwrap();
        let stale_dir = dir.path().join(".weight_gradients.Zz99Yy.partial");
        std::fs::create_dir(&stale_dir).unwrap();
        std::fs::write(stale_dir.join("x.npy"), b"...").unwrap();
        let user = dir.path().join(".notes.partial");
        std::fs::write(&user, b"the user's").unwrap();
        // A writer at work: its file is locked.
        let live = AtomicFile::create(&dir.path().join("b.json")).unwrap();
        let live_path = live.tmp.path().to_path_buf();
        assert!(!stale.exists() && !stale_dir.exists(), "stale partials removed");
        assert!(user.exists(), "a file that is not ours stays");
        let mut second = AtomicFile::create(&dir.path().join("c.json")).unwrap();
        assert!(live_path.exists(), "a live writer's partial stays");
        second.file().write_all(b"{}").unwrap();
        second.commit().unwrap();
        live.commit().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }
}
