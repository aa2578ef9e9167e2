//! `average_gradients.json`: mean gradient magnitude per parameter element.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::error::{PipelineError, Result};

use super::output::{write_err, JsonOutput};
use crate::json::{JsonReader, Kind, Value};

/// Largest parameter read from an averages file (elements).
pub const MAX_PARAM_ELEMS: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct AvgParam {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl AvgParam {
    pub fn is_bias(&self) -> bool {
        self.name.ends_with(".bias") || self.shape.len() < 2
    }

    /// Neurons (rows) and the length of each row: conv weights (out, in, kh, kw) have rows of
    /// in*kh*kw (flattened in C order).
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.shape.len() {
            0 => (1, 1),
            1 => (1, self.shape[0]),
            _ => (self.shape[0], self.shape[1..].iter().product()),
        }
    }

    pub fn row(&self, neuron: usize) -> &[f64] {
        let (_, cols) = self.rows_cols();
        &self.data[neuron * cols..(neuron + 1) * cols]
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Averages {
    pub num_examples: Option<i64>,
    pub params: Vec<AvgParam>,
}

pub const DESCRIPTION: &str = "Average gradient magnitudes across all input examples";

impl Averages {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    pub fn get(&self, name: &str) -> Option<&AvgParam> {
        self.index_of(name).map(|i| &self.params[i])
    }

    /// Writes `average_gradients.json` (docs/pipeline.md, step 2) atomically.
    pub fn write(&self, dest: &Path) -> Result<u64> {
        let mut out = JsonOutput::create(dest)?;
        let w = out.json();
        let res: std::io::Result<()> = (|| {
            w.begin_object()?;
            w.key("metadata")?;
            w.begin_object()?;
            w.key_int("num_examples", self.num_examples.unwrap_or(0))?;
            w.key_string("description", DESCRIPTION)?;
            w.end_object()?;
            w.key("average_gradients")?;
            w.begin_object()?;
            for p in &self.params {
                w.key(&p.name)?;
                w.nested(&p.shape, |i| p.data[i])?;
            }
            w.end_object()?;
            w.end_object()
        })();
        res.map_err(write_err(dest))?;
        let non_finite = out.non_finite();
        out.commit()?;
        Ok(non_finite)
    }

    /// Reads an averages file (this tool's or the Python tool's).
    pub fn read(path: &Path) -> Result<Averages> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(PipelineError::io("open averages file", path))?;
        Averages::read_from(BufReader::with_capacity(1 << 20, file), &shown)
    }

    /// `read` on any reader (`shown` names it in messages).
    pub fn read_from(src: impl std::io::Read, shown: &str) -> Result<Averages> {
        let shown = shown.to_string();
        let mut r = JsonReader::new(src, shown.clone());
        let e = PipelineError::Json;
        r.begin_object().map_err(e)?;
        let mut out = Averages::default();
        let mut found = false;
        while let Some(key) = r.next_key().map_err(e)? {
            match key.as_str() {
                "metadata" => {
                    let meta = r.read_value().map_err(e)?;
                    out.num_examples = meta.get("num_examples").and_then(Value::as_i64);
                }
                "average_gradients" => {
                    found = true;
                    if r.peek_kind().map_err(e)? != Kind::Object {
                        return Err(PipelineError::Format(format!(
                            "{shown}: \"average_gradients\" must be an object of parameter name -> list"
                        )));
                    }
                    r.begin_object().map_err(e)?;
                    while let Some(name) = r.next_key().map_err(e)? {
                        let mut data = Vec::new();
                        let shape = r
                            .read_nested_numbers(MAX_PARAM_ELEMS, |x| data.push(x))
                            .map_err(PipelineError::json_in(format!("in parameter \"{name}\"")))?;
                        if shape.contains(&0) {
                            return Err(PipelineError::Format(format!(
                                "{shown}: parameter \"{name}\" has shape {shape:?}, with no values: every parameter \
                                 needs at least one (was the file made from an empty layer?)"
                            )));
                        }
                        let p = AvgParam { name: name.clone(), shape, data };
                        // Python dict semantics: a repeated name keeps its place, takes the new value.
                        match out.index_of(&name) {
                            Some(i) => out.params[i] = p,
                            None => out.params.push(p),
                        }
                    }
                }
                _ => r.skip_value().map_err(e)?,
            }
        }
        r.expect_end().map_err(e)?;
        if !found {
            return Err(PipelineError::Format(format!(
                "{shown}: no \"average_gradients\" object (is this an average_gradients.json?)"
            )));
        }
        Ok(out)
    }
}
