//! `clean_inputs.json`, read as a stream in batches: `{"<id>": {"input": [...]}, ...}`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::error::{PipelineError, Result};

use crate::agent::arch::{Arch, Preprocess};
use crate::json::{ErrorKind, JsonError, JsonReader, Kind};

/// How each value of an input is checked, from the architecture.
#[derive(Debug, Clone)]
enum Check {
    Finite,
    Index(usize),
}

pub struct InputReader {
    reader: JsonReader<Box<dyn Read + Send>>,
    path: String,
    expected_len: usize,
    /// The observation shape a nested list may have (single-key spaces).
    obs_shape: Option<Vec<usize>>,
    checks: Vec<(usize, usize, Check)>,
    seen: HashSet<String>,
    count: usize,
    done: bool,
    scratch: Vec<f32>,
}

impl InputReader {
    pub fn open(path: &Path, arch: &Arch) -> Result<InputReader> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(PipelineError::io("open inputs file", path))?;
        InputReader::from_reader(Box::new(BufReader::with_capacity(1 << 20, file)), shown, arch)
    }

    /// From any reader (`name` is used in messages).
    pub fn from_reader(src: Box<dyn Read + Send>, name: String, arch: &Arch) -> Result<InputReader> {
        let shown = name;
        let mut reader = JsonReader::new(src, shown.clone());
        reader
            .begin_object()
            .map_err(PipelineError::json_in("clean_inputs.json is an object of input id -> {\"input\": [...]}"))?;
        let mut checks = Vec::new();
        for b in &arch.branches {
            let check = match &b.preprocess {
                Preprocess::OneHot(n) => Check::Index(*n),
                _ => Check::Finite,
            };
            match &b.preprocess {
                Preprocess::MultiOneHot(nvec) => {
                    for (i, &n) in nvec.iter().enumerate() {
                        checks.push((b.offset + i, 1, Check::Index(n)));
                    }
                }
                _ => checks.push((b.offset, b.len, check)),
            }
        }
        let obs_shape = if arch.branches.len() == 1 && arch.branches[0].obs_shape.len() > 1 {
            Some(arch.branches[0].obs_shape.clone())
        } else {
            None
        };
        Ok(InputReader {
            reader,
            path: shown,
            expected_len: arch.input_len,
            obs_shape,
            checks,
            seen: HashSet::new(),
            count: 0,
            done: false,
            scratch: Vec::new(),
        })
    }

    /// Values per input.
    pub fn expected_len(&self) -> usize {
        self.expected_len
    }

    /// Whether the whole file has been read (the last batch was returned).
    pub fn finished(&self) -> bool {
        self.done
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// Appends up to `max` inputs (ids, and values row after row) and returns how many.
    pub fn next_batch(&mut self, max: usize, ids: &mut Vec<String>, values: &mut Vec<f32>) -> Result<usize> {
        let mut n = 0;
        while n < max && !self.done {
            let id = match self.reader.next_key()? {
                Some(id) => id,
                None => {
                    self.reader.expect_end()?;
                    self.done = true;
                    break;
                }
            };
            self.read_entry(&id)?;
            if !self.seen.insert(id.clone()) {
                return Err(PipelineError::Format(format!(
                    "{}: input id \"{id}\" appears twice (ids must be unique; Python would silently keep only the last \
                     one)",
                    self.path
                )));
            }
            // Only whole, valid entries reach the batch.
            values.extend_from_slice(&self.scratch);
            ids.push(id);
            self.count += 1;
            n += 1;
        }
        Ok(n)
    }

    /// Reads one entry's values into `self.scratch`, checked.
    fn read_entry(&mut self, id: &str) -> Result<()> {
        let path = self.path.clone();
        let ctx = |e: JsonError| PipelineError::json_in(format!("in input \"{id}\""))(e);
        let input_err = |detail: String| PipelineError::Input { file: path.clone(), id: id.to_string(), detail };
        if self.reader.peek_kind().map_err(ctx)? != Kind::Object {
            let found = self.reader.peek_kind().map(Kind::name).unwrap_or("something else");
            return Err(input_err(format!(": expected an object {{\"input\": [...]}}, found {found}")));
        }
        self.reader.begin_object().map_err(ctx)?;
        let mut got_input = false;
        while let Some(key) = self.reader.next_key().map_err(ctx)? {
            if key != "input" {
                self.reader.skip_value().map_err(ctx)?;
                continue;
            }
            if got_input {
                return Err(input_err(" has two \"input\" lists".into()));
            }
            got_input = true;
            self.scratch.clear();
            let limit = self.expected_len.saturating_mul(2).max(16);
            let scratch = &mut self.scratch;
            let expected = self.expected_len;
            let shape =
                self.reader.read_nested_numbers(limit, |x| scratch.push(x as f32)).map_err(|e| match e.kind {
                    ErrorKind::TooManyNumbers { .. } => {
                        input_err(format!(": expected {expected} values, found more than {limit}"))
                    }
                    _ => ctx(e),
                })?;
            let found = self.scratch.len();
            let flat_ok = shape.len() == 1 && found == self.expected_len;
            let nested_ok = self.obs_shape.as_deref() == Some(shape.as_slice());
            if !(flat_ok || nested_ok) {
                let want = match &self.obs_shape {
                    Some(s) => format!("a list of {} values (or nested with shape {s:?})", self.expected_len),
                    None => format!("a list of {} values", self.expected_len),
                };
                let got = if shape.len() <= 1 {
                    format!("{found} values")
                } else {
                    format!("shape {shape:?} ({found} values)")
                };
                return Err(input_err(format!(": expected {want}, found {got}")));
            }
            for (offset, len, check) in &self.checks {
                for (i, &v) in self.scratch[*offset..offset + len].iter().enumerate() {
                    let pos = offset + i;
                    match check {
                        Check::Finite if !v.is_finite() => {
                            return Err(input_err(format!(": value {pos} is {v}; inputs must be finite numbers")))
                        }
                        Check::Index(n) if !(v.fract() == 0.0 && v >= 0.0 && (v as usize) < *n) => {
                            return Err(input_err(format!(
                                ": value {pos} is {v}, but a Discrete({n}) observation must be an integer in 0..{n}"
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
        if !got_input {
            return Err(input_err(" has no \"input\" list".into()));
        }
        Ok(())
    }
}
