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
use std::io::{self, Write};
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

/// Bytes the caller fills before handing them to the writing thread.
const BACKGROUND_BUF: usize = 8 << 20;
/// Full buffers queued for the writing thread (besides the one it writes and the one being
/// filled): at most `(BACKGROUND_QUEUE + 2) * BACKGROUND_BUF` bytes in flight.
const BACKGROUND_QUEUE: usize = 4;

/// A file written on a thread of its own, so that formatting the next text and the kernel's
/// copying of the last overlap (for the raw gradients file, the two take about as long as each
/// other). The caller fills 8 MB buffers; each full one goes to the thread through a bounded
/// queue and comes back empty to be filled again. The thread starts with the first full buffer:
/// a small file is written by the caller at `flush`, with no thread. A write error stops the
/// thread and is returned by the next `write` or `flush`.
pub struct BackgroundWriter {
    buf: Vec<u8>,
    /// The file, until the thread takes it.
    file: Option<WritebackFile>,
    thread: Option<WriterThread>,
}

struct WriterThread {
    full: std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Buffers sent and not yet returned.
    in_flight: usize,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

impl WriterThread {
    fn start(mut file: WritebackFile) -> io::Result<WriterThread> {
        let (full, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(BACKGROUND_QUEUE);
        let (back, empty) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new().name("file writer".into()).spawn(move || {
            for mut buf in queue {
                file.write_all(&buf)?;
                buf.clear();
                let _ = back.send(buf);
            }
            file.flush()
        })?;
        Ok(WriterThread { full, empty, in_flight: 0, handle })
    }

    /// The thread's error, once it has stopped (its queue refused a buffer or returned none).
    fn failure(self) -> io::Error {
        drop(self.full);
        match self.handle.join() {
            Ok(Err(e)) => e,
            Ok(Ok(())) => io::Error::other("the file writer stopped early"),
            Err(_) => io::Error::other("the file writer panicked"),
        }
    }
}

impl BackgroundWriter {
    pub fn new(file: WritebackFile) -> BackgroundWriter {
        BackgroundWriter { buf: Vec::with_capacity(1 << 16), file: Some(file), thread: None }
    }

    /// Hands the filled buffer to the thread (started on the first call) and takes an empty one.
    fn send(&mut self) -> io::Result<()> {
        if self.thread.is_none() {
            let file = self.file.take().ok_or_else(|| io::Error::other("the file writer is gone"))?;
            self.thread = Some(WriterThread::start(file)?);
        }
        let Some(t) = self.thread.as_mut() else { unreachable!("started above") };
        let next = match t.empty.try_recv() {
            Ok(b) => {
                t.in_flight -= 1;
                b
            }
            Err(_) => Vec::with_capacity(BACKGROUND_BUF),
        };
        let full = std::mem::replace(&mut self.buf, next);
        if t.full.send(full).is_err() {
            return Err(self.stopped());
        }
        t.in_flight += 1;
        Ok(())
    }

    /// The error of a thread that stopped.
    fn stopped(&mut self) -> io::Error {
        self.thread.take().map_or_else(|| io::Error::other("the file writer is gone"), WriterThread::failure)
    }

    /// Waits until every buffer sent has been written.
    fn drain(&mut self) -> io::Result<()> {
        let Some(t) = self.thread.as_mut() else { return Ok(()) };
        while t.in_flight > 0 {
            match t.empty.recv() {
                Ok(_) => t.in_flight -= 1,
                Err(_) => return Err(self.stopped()),
            }
        }
        Ok(())
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = BACKGROUND_BUF.saturating_sub(self.buf.len());
            let n = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() >= BACKGROUND_BUF {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    /// Everything written so far reaches the file (the thread's queue is drained).
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => {
                file.write_all(&self.buf)?;
                self.buf.clear();
                file.flush()
            }
            None => {
                if !self.buf.is_empty() {
                    self.send()?;
                }
                self.drain()
            }
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        // Stop the thread and wait for it: nothing writes to the file after its writer is gone.
        if let Some(t) = self.thread.take() {
            drop(t.full);
            let _ = t.handle.join();
        }
    }
}

/// The writer of every JSON file the tool writes.
pub type JsonFileWriter = PyJsonWriter<BackgroundWriter>;

/// A JSON file in Python's layout, written atomically.
pub struct JsonOutput {
    writer: JsonFileWriter,
    file: AtomicFile,
}

impl JsonOutput {
    pub fn create(dest: &Path) -> Result<JsonOutput> {
        let mut file = AtomicFile::create(dest)?;
        let handle = file.file().try_clone().map_err(PipelineError::io("duplicate the file handle of", dest))?;
        Ok(JsonOutput { writer: PyJsonWriter::new(BackgroundWriter::new(WritebackFile::new(handle))), file })
    }

    pub fn json(&mut self) -> &mut JsonFileWriter {
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

    /// Bytes 0, 1, 2, ... in pieces of uneven sizes, `total` in all.
    fn pattern(total: usize) -> Vec<u8> {
        (0..total).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn the_background_writer_keeps_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // Under one buffer (written at flush, no thread), and over several (the thread).
        for total in [1000, 3 * BACKGROUND_BUF + 12345] {
            let path = dir.path().join(format!("f{total}"));
            let want = pattern(total);
            let mut w = BackgroundWriter::new(WritebackFile::new(File::create(&path).unwrap()));
            let mut at = 0;
            for size in [1usize, 7, 65536, 5 << 20, 9 << 20].iter().cycle() {
                let end = (at + size).min(total);
                w.write_all(&want[at..end]).unwrap();
                at = end;
                if at == total {
                    break;
                }
            }
            w.flush().unwrap();
            assert!(std::fs::read(&path).unwrap() == want, "{total} bytes differ");
            assert_eq!(w.thread.is_some(), total > BACKGROUND_BUF, "a thread only for big files");
        }
    }

    #[test]
    fn a_write_error_of_the_thread_reaches_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        // A handle that cannot write: every write fails (EBADF), as a full disk would.
        let mut small = BackgroundWriter::new(WritebackFile::new(File::open(&path).unwrap()));
        let mut big = BackgroundWriter::new(WritebackFile::new(File::open(&path).unwrap()));
        small.write_all(b"{}").unwrap();
        assert!(small.flush().is_err(), "the error of a write at flush");
        let data = pattern(BACKGROUND_BUF);
        let mut failed = false;
        for _ in 0..BACKGROUND_QUEUE + 4 {
            if big.write_all(&data).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed || big.flush().is_err(), "the thread's error surfaces at a write or at flush");
    }
}
