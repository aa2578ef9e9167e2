//! `weight_gradients.json`: written as a stream by the gradient pass, and read as a stream by
//! `saliency average` (never held in memory whole).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::error::{PipelineError, Result};
use rayon::prelude::*;

use super::average::{Averages, AvgParam};
use super::output::{write_err, JsonOutput};
use crate::json::{ErrorKind, JsonReader, Kind, PyJsonWriter};
use crate::model::{BatchGrads, ParamSource};

/// Name and shape of each parameter, in `named_parameters()` order.
#[derive(Debug, Clone)]
pub struct ParamMeta {
    pub name: String,
    pub shape: Vec<usize>,
}

impl ParamMeta {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

pub struct GradJsonWriter {
    out: JsonOutput,
    /// Text buffers reused from batch to batch (no page faults for fresh allocations).
    pool: Vec<Vec<u8>>,
}

impl GradJsonWriter {
    pub fn create(dest: &Path) -> Result<GradJsonWriter> {
        let mut out = JsonOutput::create(dest)?;
        out.json().begin_object().map_err(write_err(dest))?;
        Ok(GradJsonWriter { out, pool: Vec::new() })
    }

    /// Writes a batch's inputs in order. Their text is formatted on all cores, a bounded
    /// number of inputs at a time, then appended in order.
    pub fn write_batch(
        &mut self,
        ids: &[String],
        batch: &BatchGrads,
        params: &[ParamMeta],
        sources: &[ParamSource],
    ) -> Result<()> {
        let dest = self.out.dest().to_path_buf();
        let numel: usize = params.iter().map(ParamMeta::numel).sum();
        // About 30 bytes of text per value: keep the text formatted at a time near 32 MB (the
        // file writer holds as much again while this wave is formatted).
        let chunk = ((32usize << 20) / (30 * numel.max(1))).clamp(1, 256);
        // One input's text, at depth 1 of the file.
        fn entry<W: std::io::Write>(
            w: &mut PyJsonWriter<W>,
            id: &str,
            n: usize,
            batch: &BatchGrads,
            params: &[ParamMeta],
            sources: &[ParamSource],
        ) -> std::io::Result<()> {
            w.key(id)?;
            w.begin_object()?;
            w.key_int("max_logit_action", batch.actions[n])?;
            w.key_float("max_logit_value", batch.values[n])?;
            w.key("gradients")?;
            w.begin_object()?;
            let mut values = Vec::new();
            for (p, src) in params.iter().zip(sources) {
                w.key(&p.name)?;
                batch.fill(*src, n, &mut values);
                w.nested_f32(&p.shape, &values)?;
            }
            w.end_object()?;
            w.end_object()
        }
        if chunk == 1 {
            // Big inputs (tens of MB of text each): straight into the file, each large
            // parameter formatted on all cores by `nested_f32`.
            for (n, id) in ids.iter().enumerate() {
                entry(self.out.json(), id, n, batch, params, sources).map_err(write_err(&dest))?;
            }
            return Ok(());
        }
        let format = |n: usize, buf: Vec<u8>| -> std::io::Result<(Vec<u8>, u64)> {
            let mut w = PyJsonWriter::fragment(buf, 1);
            entry(&mut w, &ids[n], n, batch, params, sources)?;
            let non_finite = w.non_finite;
            Ok((w.finish()?, non_finite))
        };
        for start in (0..ids.len()).step_by(chunk) {
            let end = (start + chunk).min(ids.len());
            let bufs: Vec<Vec<u8>> = (start..end)
                .map(|_| {
                    let mut b = self.pool.pop().unwrap_or_default();
                    b.clear();
                    b
                })
                .collect();
            let texts: Vec<std::io::Result<(Vec<u8>, u64)>> =
                (start..end).into_par_iter().zip(bufs).map(|(n, b)| format(n, b)).collect();
            for t in texts {
                let (text, non_finite) = t.map_err(write_err(&dest))?;
                self.out.json().append_fragment(&text, non_finite).map_err(write_err(&dest))?;
                self.pool.push(text);
            }
        }
        Ok(())
    }

    pub fn non_finite(&self) -> u64 {
        self.out.non_finite()
    }

    pub fn commit(mut self) -> Result<()> {
        let dest = self.out.dest().to_path_buf();
        self.out.json().end_object().map_err(write_err(&dest))?;
        self.out.commit()
    }
}

fn input_err(file: &str, id: &str, detail: &str) -> PipelineError {
    PipelineError::Input { file: file.to_string(), id: id.to_string(), detail: detail.to_string() }
}

/// Step 2 (docs/pipeline.md) from a `weight_gradients.json`: mean |gradient| per element over all inputs, summed
/// in file order in float64. Every input must have the same parameters and shapes.
pub fn average_file(path: &Path, progress: impl FnMut(u64, usize)) -> Result<Averages> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(PipelineError::io("open gradients file", path))?;
    average_reader(BufReader::with_capacity(1 << 20, file), &shown, progress)
}

/// `average_file` on any reader (`shown` names it in messages).
pub fn average_reader(src: impl std::io::Read, shown: &str, mut progress: impl FnMut(u64, usize)) -> Result<Averages> {
    let shown = shown.to_string();
    let mut r = JsonReader::new(src, shown.clone());
    let e = PipelineError::Json;
    r.begin_object().map_err(PipelineError::json_in("weight_gradients.json is an object of input id -> entry"))?;
    let mut params: Vec<AvgParam> = Vec::new();
    let mut count = 0usize;
    let mut seen = vec![false; 0];
    while let Some(id) = r.next_key().map_err(e)? {
        if r.peek_kind().map_err(e)? != Kind::Object {
            return Err(input_err(&shown, &id, ": expected an object with \"gradients\""));
        }
        r.begin_object().map_err(e)?;
        let mut got = false;
        while let Some(key) = r.next_key().map_err(e)? {
            if key != "gradients" {
                r.skip_value().map_err(e)?;
                continue;
            }
            got = true;
            r.begin_object().map_err(PipelineError::json_in(format!(
                "in input \"{id}\": \"gradients\" must map parameter names to lists"
            )))?;
            seen.clear();
            seen.resize(params.len(), false);
            let first = count == 0;
            while let Some(name) = r.next_key().map_err(e)? {
                let index = match params.iter().position(|p| p.name == name) {
                    Some(i) => i,
                    None if first => {
                        params.push(AvgParam { name: name.clone(), shape: Vec::new(), data: Vec::new() });
                        seen.push(false);
                        params.len() - 1
                    }
                    None => {
                        return Err(input_err(
                            &shown,
                            &id,
                            &format!(" has parameter \"{name}\", which the first input does not have"),
                        ))
                    }
                };
                if seen[index] {
                    return Err(input_err(&shown, &id, &format!(" lists parameter \"{name}\" twice")));
                }
                seen[index] = true;
                let p = &mut params[index];
                let ctx = PipelineError::json_in(format!("in input \"{id}\", parameter \"{name}\""));
                let shape = if first {
                    let data = &mut p.data;
                    r.read_nested_numbers(1 << 31, |x| data.push(x.abs())).map_err(ctx)?
                } else {
                    let mut i = 0usize;
                    let data = &mut p.data;
                    let len = data.len();
                    let shape = r
                        .read_nested_numbers(len, |x| {
                            if i < len {
                                data[i] += x.abs();
                            }
                            i += 1;
                        })
                        .map_err(|err| match err.kind {
                            ErrorKind::TooManyNumbers { .. } => input_err(
                                &shown,
                                &id,
                                &format!(": parameter \"{name}\" has more values than in the first input ({len})"),
                            ),
                            _ => ctx(err),
                        })?;
                    if shape != p.shape {
                        return Err(input_err(
                            &shown,
                            &id,
                            &format!(
                                ": parameter \"{name}\" has shape {shape:?}, but {:?} in the first input",
                                p.shape
                            ),
                        ));
                    }
                    shape
                };
                p.shape = shape;
            }
            if let Some(i) = seen.iter().position(|s| !s) {
                return Err(input_err(&shown, &id, &format!(" lacks parameter \"{}\"", params[i].name)));
            }
        }
        if !got {
            return Err(input_err(&shown, &id, " has no \"gradients\""));
        }
        count += 1;
        progress(r.offset(), count);
    }
    r.expect_end().map_err(e)?;
    let n = count as f64;
    for p in &mut params {
        for v in &mut p.data {
            *v /= n;
        }
    }
    Ok(Averages { num_examples: Some(count as i64), params })
}
