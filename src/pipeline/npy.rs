//! `--raw-gradients npy`: per-input gradients as float32 arrays numpy reads directly.
//!
//! Layout of `<output dir>/weight_gradients/` (written under a temporary name and renamed into
//! place when complete):
//! - `<parameter>.npy`: float32, C order, shape `(N, *parameter shape)`; row i is input i.
//! - `index.json`: `{"format": "saliency-npy-1", "inputs": [ids in file order],
//!   "max_logit_action": [...], "max_logit_value": [...],
//!   "parameters": [{"name": ..., "shape": [...], "file": "<parameter>.npy"}, ...]}`.
//!
//! ```python
//! import json, numpy as np
//! idx = json.load(open("weight_gradients/index.json"))
//! g = {p["name"]: np.load("weight_gradients/" + p["file"], mmap_mode="r") for p in idx["parameters"]}
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::{PipelineError, Result};

use super::gradfile::ParamMeta;
use super::output::ensure_dir;
use crate::json::PyJsonWriter;
use crate::model::{BatchGrads, ParamSource};

/// Bytes reserved for each .npy header, so it can be rewritten in place with the final count.
const HEADER_LEN: usize = 128;

fn npy_header(n: usize, shape: &[usize]) -> Vec<u8> {
    let mut dims = vec![n];
    dims.extend_from_slice(shape);
    let dims_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims_text}, }}");
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    let body_len = HEADER_LEN - 10;
    h.extend_from_slice(&(body_len as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

pub struct GradNpyWriter {
    dest: PathBuf,
    tmp: PathBuf,
    files: Vec<BufWriter<File>>,
    params: Vec<ParamMeta>,
    ids: Vec<String>,
    actions: Vec<i64>,
    values: Vec<f64>,
    committed: bool,
    /// The writer's lock on the temporary folder (see `output`).
    _lock: File,
}

fn file_name(param: &str) -> String {
    // Parameter names are dotted identifiers; anything else is replaced, so a name can never
    // leave the folder.
    let safe: String =
        param.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '_' }).collect();
    format!("{}.npy", safe.trim_start_matches('.'))
}

/// A new, empty folder named as a partial of `dest` (`.<name>.<random>.partial`) beside it.
fn partial_dir(dest: &Path) -> Result<PathBuf> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempdir_in(parent)
        .map_err(PipelineError::io("create a folder in", parent))?
        .keep())
}

impl GradNpyWriter {
    pub fn create(dest: &Path, params: &[ParamMeta]) -> Result<GradNpyWriter> {
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        ensure_dir(parent)?;
        let tmp = partial_dir(dest)?;
        let lock = super::output::lock_partial(&tmp)?;
        super::output::remove_stale_partials(parent, &tmp);
        let mut files = Vec::new();
        for p in params {
            let path = tmp.join(file_name(&p.name));
            let mut f =
                BufWriter::with_capacity(1 << 20, File::create(&path).map_err(PipelineError::io("create", &path))?);
            f.write_all(&npy_header(0, &p.shape)).map_err(PipelineError::io("write", &path))?;
            files.push(f);
        }
        Ok(GradNpyWriter {
            dest: dest.to_path_buf(),
            tmp,
            files,
            params: params.to_vec(),
            ids: Vec::new(),
            actions: Vec::new(),
            values: Vec::new(),
            committed: false,
            _lock: lock,
        })
    }

    pub fn write_batch(&mut self, ids: &[String], batch: &BatchGrads, sources: &[ParamSource]) -> Result<()> {
        let (mut values, mut bytes) = (Vec::new(), Vec::new());
        for (src, f) in sources.iter().zip(&mut self.files) {
            for n in 0..ids.len() {
                batch.fill(*src, n, &mut values);
                bytes.clear();
                bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                f.write_all(&bytes).map_err(PipelineError::io("write", &self.tmp))?;
            }
        }
        self.ids.extend_from_slice(ids);
        self.actions.extend_from_slice(&batch.actions);
        self.values.extend_from_slice(&batch.values);
        Ok(())
    }

    /// Rewrites the headers with the final count, writes index.json, and moves the folder into
    /// place (replacing an earlier one).
    pub fn commit(mut self) -> Result<()> {
        let n = self.ids.len();
        let tmp = self.tmp.clone();
        let err = |e: std::io::Error| PipelineError::io("write", &tmp)(e);
        for (p, f) in self.params.iter().zip(std::mem::take(&mut self.files)) {
            let mut file = f.into_inner().map_err(|e| err(e.into_error()))?;
            file.seek(SeekFrom::Start(0)).map_err(err)?;
            file.write_all(&npy_header(n, &p.shape)).map_err(err)?;
            file.sync_all().map_err(err)?;
        }
        let mut w = PyJsonWriter::new(BufWriter::new(File::create(self.tmp.join("index.json")).map_err(err)?));
        let io: std::io::Result<()> = (|| {
            w.begin_object()?;
            w.key_string("format", "saliency-npy-1")?;
            w.key("inputs")?;
            w.begin_array()?;
            for id in &self.ids {
                w.string(id)?;
            }
            w.end_array()?;
            w.key("max_logit_action")?;
            w.begin_array()?;
            for &a in &self.actions {
                w.int(a)?;
            }
            w.end_array()?;
            w.key("max_logit_value")?;
            w.nested(&[self.values.len()], |i| self.values[i])?;
            w.key("parameters")?;
            w.begin_array()?;
            for p in &self.params {
                w.begin_object()?;
                w.key_string("name", &p.name)?;
                w.key("shape")?;
                w.begin_array()?;
                for &d in &p.shape {
                    w.int(d as i64)?;
                }
                w.end_array()?;
                w.key_string("file", &file_name(&p.name))?;
                w.end_object()?;
            }
            w.end_array()?;
            w.end_object()?;
            w.finish()?.flush()
        })();
        io.map_err(err)?;
        // Replace an earlier folder: move it aside, move the new one in, then delete the old.
        let old = if self.dest.exists() {
            // Aside under a temporary name (an empty folder renamed over), so a kill right here
            // leaves a partial that the next write removes.
            let aside = partial_dir(&self.dest)?;
            fs::rename(&self.dest, &aside).map_err(PipelineError::io("replace", &self.dest))?;
            Some(aside)
        } else {
            None
        };
        fs::rename(&self.tmp, &self.dest).map_err(PipelineError::io("move the finished folder to", &self.dest))?;
        if let Some(old) = old {
            let _ = fs::remove_dir_all(old);
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for GradNpyWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}
