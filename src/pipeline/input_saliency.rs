//! Input saliency (docs/measures.md, "Input saliency"): the gradient of the target with respect
//! to each observation key's input as written in `clean_inputs.json`, accumulated like the
//! measures, and `input_saliency.safetensors`.
//!
//! The file's per-input tensors (`per_input/<key>`, N x shape) are streamed to temporary spill
//! files as the pass goes (memory stays flat in N), and assembled behind the header at the end.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::error::{PipelineError, Result};
use super::output::{write_err, AtomicFile};
use crate::agent::arch::{Arch, Preprocess};
use crate::json::writer::push_json_string;
use crate::model::BatchGrads;

pub const INPUT_SALIENCY: &str = "input_saliency.safetensors";

/// One observation key: its name (`obs` for a non-Dict space) and the shape of its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct InputKey {
    pub name: String,
    pub shape: Vec<usize>,
}

impl InputKey {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys of an architecture, in branch order: a Discrete key's gradient is with respect to
/// its one-hot vector.
pub fn keys(arch: &Arch) -> Vec<InputKey> {
    arch.branches
        .iter()
        .map(|b| InputKey {
            name: b.key.clone().unwrap_or_else(|| "obs".to_string()),
            shape: match &b.preprocess {
                Preprocess::OneHot(n) => vec![*n],
                Preprocess::MultiOneHot(nvec) => vec![nvec.iter().sum()],
                _ => b.obs_shape.clone(),
            },
        })
        .collect()
}

/// The input saliency's means per key (what the explorer's input view draws).
#[derive(Debug, Clone, PartialEq)]
pub struct InputMeans {
    pub keys: Vec<InputKey>,
    pub mean_abs: Vec<Vec<f64>>,
    pub mean: Vec<Vec<f64>>,
    pub count: u64,
}

/// Running sums of |g| and g per key (float64, input order), and the per-input gradients.
pub struct InputSaliency {
    pub keys: Vec<InputKey>,
    pub abs: Vec<Vec<f64>>,
    pub sum: Vec<Vec<f64>>,
    pub count: u64,
    pub ids: Vec<String>,
    spill: Option<Vec<BufWriter<File>>>,
}

impl InputSaliency {
    /// With `per_input`, each input's gradients are kept (in temporary files in `dir`).
    pub fn new(keys: Vec<InputKey>, per_input: bool, dir: &Path) -> Result<InputSaliency> {
        let spill = if per_input {
            super::output::ensure_dir(dir)?;
            Some(
                keys.iter()
                    .map(|_| {
                        tempfile::tempfile_in(dir)
                            .map(|f| BufWriter::with_capacity(1 << 20, f))
                            .map_err(PipelineError::io("create a temporary file in", dir))
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        Ok(InputSaliency {
            abs: keys.iter().map(|k| vec![0.0; k.len()]).collect(),
            sum: keys.iter().map(|k| vec![0.0; k.len()]).collect(),
            keys,
            count: 0,
            ids: Vec::new(),
            spill,
        })
    }

    pub fn add_batch(&mut self, ids: &[String], batch: &BatchGrads, dir: &Path) -> Result<()> {
        for (k, g) in batch.inputs.iter().enumerate() {
            let width = self.keys[k].len();
            for row in g.chunks_exact(width) {
                for ((a, s), &v) in self.abs[k].iter_mut().zip(self.sum[k].iter_mut()).zip(row) {
                    *a += f64::from(v).abs();
                    *s += f64::from(v);
                }
            }
            if let Some(sp) = self.spill.as_mut() {
                let bytes: Vec<u8> = g.iter().flat_map(|v| v.to_le_bytes()).collect();
                sp[k].write_all(&bytes).map_err(PipelineError::io("write a temporary file in", dir))?;
            }
        }
        self.count += batch.n as u64;
        self.ids.extend_from_slice(ids);
        Ok(())
    }

    /// The means so far.
    pub fn means(&self) -> InputMeans {
        let n = self.count.max(1) as f64;
        let div = |v: &Vec<Vec<f64>>| v.iter().map(|k| k.iter().map(|x| x / n).collect()).collect();
        InputMeans { keys: self.keys.clone(), mean_abs: div(&self.abs), mean: div(&self.sum), count: self.count }
    }

    /// Writes `input_saliency.safetensors` atomically: `mean-abs/<key>` and `mean/<key>`
    /// (float64), `per_input/<key>` (float32, N x shape) when kept; metadata as for the
    /// measures plus `input_ids` (a JSON list).
    pub fn write(mut self, dest: &Path, agent: &str, target: &str) -> Result<()> {
        let n = self.count as f64;
        let mut small: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, key) in self.keys.iter().enumerate() {
            let mean_abs: Vec<u8> = self.abs[k].iter().flat_map(|v| (v / n).to_le_bytes()).collect();
            let mean: Vec<u8> = self.sum[k].iter().flat_map(|v| (v / n).to_le_bytes()).collect();
            small.push((format!("mean-abs/{}", key.name), key.shape.clone(), mean_abs));
            small.push((format!("mean/{}", key.name), key.shape.clone(), mean));
        }
        // Header: every tensor with its offsets (small ones first, then the per-input spills).
        let mut entries: Vec<HeaderEntry> = small
            .iter()
            .map(|(name, shape, b)| HeaderEntry {
                name: name.clone(),
                dtype: "F64",
                shape: shape.clone(),
                bytes: b.len() as u64,
            })
            .collect();
        let mut spills = Vec::new();
        if let Some(sp) = self.spill.take() {
            for (key, w) in self.keys.iter().zip(sp) {
                let mut f = w
                    .into_inner()
                    .map_err(|e| PipelineError::io("write a temporary file for", dest)(e.into_error()))?;
                let len = f.stream_position().map_err(PipelineError::io("read a temporary file for", dest))?;
                f.seek(SeekFrom::Start(0)).map_err(PipelineError::io("read a temporary file for", dest))?;
                let mut shape = vec![self.count as usize];
                shape.extend_from_slice(&key.shape);
                entries.push(HeaderEntry { name: format!("per_input/{}", key.name), dtype: "F32", shape, bytes: len });
                spills.push(f);
            }
        }
        let mut ids = Vec::new();
        ids.push(b'[');
        for (i, id) in self.ids.iter().enumerate() {
            if i > 0 {
                ids.extend_from_slice(b", ");
            }
            push_json_string(&mut ids, id);
        }
        ids.push(b']');
        let meta = [
            ("agent", agent.to_string()),
            ("input_ids", String::from_utf8_lossy(&ids).into_owned()),
            ("num_examples", self.count.to_string()),
            ("target", target.to_string()),
            ("tool", format!("saliency {}", env!("CARGO_PKG_VERSION"))),
        ];
        let header = header_json(&entries, &meta);
        let mut out = AtomicFile::create(dest)?;
        let res: std::io::Result<()> = (|| {
            let mut w = BufWriter::with_capacity(1 << 20, out.file());
            w.write_all(&(header.len() as u64).to_le_bytes())?;
            w.write_all(&header)?;
            for (_, _, b) in &small {
                w.write_all(b)?;
            }
            for mut f in spills {
                std::io::copy(&mut f, &mut w)?;
            }
            w.flush()
        })();
        res.map_err(write_err(dest))?;
        out.commit()
    }
}

/// One tensor of a safetensors header.
pub struct HeaderEntry {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub bytes: u64,
}

/// A safetensors header: `{"__metadata__": {...}, "<name>": {"dtype", "shape", "data_offsets"}}`,
/// data in the order given, padded with spaces to a multiple of 8 bytes.
pub fn header_json(entries: &[HeaderEntry], meta: &[(&str, String)]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"{\"__metadata__\":{");
    for (i, (k, v)) in meta.iter().enumerate() {
        if i > 0 {
            h.push(b',');
        }
        push_json_string(&mut h, k);
        h.push(b':');
        push_json_string(&mut h, v);
    }
    h.push(b'}');
    let mut offset = 0u64;
    for HeaderEntry { name, dtype, shape, bytes: len } in entries {
        h.push(b',');
        push_json_string(&mut h, name);
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        h.extend_from_slice(
            format!(
                ":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
                dims.join(","),
                offset + len
            )
            .as_bytes(),
        );
        offset += len;
    }
    h.push(b'}');
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    h
}
