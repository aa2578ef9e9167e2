//! The clean inputs, read as a stream in batches: `clean_inputs.json`
//! (`{"<id>": {"input": [...]}, ...}`), or numpy arrays (`.npy` of shape `(N, *observation
//! shape)`, or a `.npz` with one array per Dict key; ids `0`, `1`, ...). Every value is checked
//! against the observation space the same way whatever the format.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::arrays::{self, RowStream};
use super::error::{PipelineError, Result};

use crate::agent::arch::{Arch, Preprocess};
use crate::json::{ErrorKind, JsonError, JsonReader, Kind};

/// How each value of an input is checked, from the architecture.
#[derive(Debug, Clone)]
enum Check {
    Finite,
    Index(usize),
}

/// Where the inputs come from.
enum Source {
    Json(Box<JsonReader<Box<dyn Read + Send>>>),
    /// One array per observation key, in the branches' order; rows read so far and bytes per row.
    Arrays {
        streams: Vec<RowStream>,
        rows: usize,
        next: usize,
        row_bytes: u64,
    },
}

pub struct InputReader {
    source: Source,
    path: String,
    expected_len: usize,
    /// The observation shape a nested list may have (single-key spaces).
    obs_shape: Option<Vec<usize>>,
    checks: Vec<(usize, usize, Check)>,
    seen: HashSet<String>,
    count: usize,
    /// Inputs read at most (the rest of the file is not read).
    limit: usize,
    done: bool,
    scratch: Vec<f32>,
}

/// The shape one input of a key has as written (a Discrete key: one number).
fn written_shape(b: &crate::agent::arch::Branch) -> Vec<usize> {
    match &b.preprocess {
        Preprocess::OneHot(_) => Vec::new(),
        Preprocess::MultiOneHot(nvec) => vec![nvec.len()],
        _ => b.obs_shape.clone(),
    }
}

impl InputReader {
    /// Opens the inputs by their file's extension: `.npy`, `.npz`, else the JSON format.
    pub fn open(path: &Path, arch: &Arch) -> Result<InputReader> {
        let shown = path.display().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let streams = match ext.as_deref() {
            Some("npy") => vec![(String::new(), RowStream::open_npy(path)?)],
            Some("npz") => arrays::open_npz(path)?,
            _ => {
                let file = File::open(path).map_err(PipelineError::io("open inputs file", path))?;
                return InputReader::from_reader(Box::new(BufReader::with_capacity(1 << 20, file)), shown, arch);
            }
        };
        let (streams, rows) = InputReader::fit_arrays(streams, arch, &shown)?;
        let row_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) / rows.max(1) as u64;
        Ok(InputReader::with_source(Source::Arrays { streams, rows, next: 0, row_bytes }, shown, arch))
    }

    /// The arrays for each observation key, in the branches' order, checked against the
    /// observation space; and their common number of rows.
    fn fit_arrays(mut named: Vec<(String, RowStream)>, arch: &Arch, shown: &str) -> Result<(Vec<RowStream>, usize)> {
        let names = named.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>().join(", ");
        let keys: Vec<String> = arch.branches.iter().map(|b| b.key.clone().unwrap_or_default()).collect();
        let mut streams = Vec::new();
        if arch.branches.len() == 1 && named.len() == 1 {
            streams.push(named.remove(0).1);
        } else if arch.branches.iter().all(|b| b.key.is_some()) {
            for key in &keys {
                let Some(i) = named.iter().position(|(n, _)| n == key) else {
                    return Err(PipelineError::Format(format!(
                        "{shown}: no array '{key}' (the observation is a Dict of {}; the file has {})",
                        keys.join(", "),
                        names
                    )));
                };
                streams.push(named.remove(i).1);
            }
        } else {
            return Err(PipelineError::Format(format!(
                "{shown}: {} arrays ({}), but the observation is one array: give a .npy, or a .npz with one array",
                named.len(),
                names
            )));
        }
        let rows = streams[0].rows();
        for ((b, s), key) in arch.branches.iter().zip(&streams).zip(&keys) {
            let expected = written_shape(b);
            let fits = s.row_len() == b.len && (s.row_shape() == expected || s.row_shape().len() <= 1);
            let label = if key.is_empty() { "the observation".to_string() } else { format!("key '{key}'") };
            if !fits {
                return Err(PipelineError::Format(format!(
                    "{shown}: an array of shape {:?} does not fit {label}: expected (N, {}) (N inputs)",
                    std::iter::once(s.rows()).chain(s.row_shape().iter().copied()).collect::<Vec<_>>(),
                    expected.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            if s.rows() != rows {
                return Err(PipelineError::Format(format!(
                    "{shown}: the arrays have different numbers of inputs ({rows} and {} for {label})",
                    s.rows()
                )));
            }
        }
        Ok((streams, rows))
    }

    /// From any reader of the JSON format (`name` is used in messages).
    pub fn from_reader(src: Box<dyn Read + Send>, name: String, arch: &Arch) -> Result<InputReader> {
        let mut reader = JsonReader::new(src, name.clone());
        reader
            .begin_object()
            .map_err(PipelineError::json_in("clean_inputs.json is an object of input id -> {\"input\": [...]}"))?;
        Ok(InputReader::with_source(Source::Json(Box::new(reader)), name, arch))
    }

    fn with_source(source: Source, shown: String, arch: &Arch) -> InputReader {
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
        InputReader {
            source,
            path: shown,
            expected_len: arch.input_len,
            obs_shape,
            checks,
            seen: HashSet::new(),
            count: 0,
            limit: usize::MAX,
            done: false,
            scratch: Vec::new(),
        }
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
        match &self.source {
            Source::Json(r) => r.offset(),
            Source::Arrays { next, row_bytes, .. } => *next as u64 * row_bytes,
        }
    }

    /// The next input's id, its values read into `self.scratch`; None at the end.
    fn next_entry(&mut self) -> Result<Option<String>> {
        if let Source::Arrays { streams, rows, next, .. } = &mut self.source {
            if *next == *rows {
                return Ok(None);
            }
            self.scratch.clear();
            for s in streams.iter_mut() {
                s.next_row(&mut self.scratch)?;
            }
            *next += 1;
            let id = (*next - 1).to_string();
            self.check_values(&id)?;
            return Ok(Some(id));
        }
        let Source::Json(reader) = &mut self.source else { return Ok(None) };
        match reader.next_key()? {
            Some(id) => {
                self.read_entry(&id)?;
                Ok(Some(id))
            }
            None => {
                reader.expect_end()?;
                Ok(None)
            }
        }
    }

    /// Reads at most the first `limit` inputs of the file (None: all of them).
    pub fn with_limit(mut self, limit: Option<usize>) -> InputReader {
        self.limit = limit.unwrap_or(usize::MAX);
        self
    }

    /// Appends up to `max` inputs (ids, and values row after row) and returns how many.
    pub fn next_batch(&mut self, max: usize, ids: &mut Vec<String>, values: &mut Vec<f32>) -> Result<usize> {
        let mut n = 0;
        while n < max && !self.done {
            if self.count >= self.limit {
                self.done = true;
                break;
            }
            let Some(id) = self.next_entry()? else {
                self.done = true;
                break;
            };
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

    /// Reads one JSON entry's values into `self.scratch`, checked.
    fn read_entry(&mut self, id: &str) -> Result<()> {
        let path = self.path.clone();
        let ctx = |e: JsonError| PipelineError::json_in(format!("in input \"{id}\""))(e);
        let input_err = |detail: String| PipelineError::Input { file: path.clone(), id: id.to_string(), detail };
        let Source::Json(reader) = &mut self.source else { return Ok(()) };
        if reader.peek_kind().map_err(ctx)? != Kind::Object {
            let found = reader.peek_kind().map(Kind::name).unwrap_or("something else");
            return Err(input_err(format!(": expected an object {{\"input\": [...]}}, found {found}")));
        }
        reader.begin_object().map_err(ctx)?;
        let mut got_input = false;
        while let Some(key) = reader.next_key().map_err(ctx)? {
            if key != "input" {
                reader.skip_value().map_err(ctx)?;
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
            let shape = reader.read_nested_numbers(limit, |x| scratch.push(x as f32)).map_err(|e| match e.kind {
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
        }
        if !got_input {
            return Err(input_err(" has no \"input\" list".into()));
        }
        self.check_values(id)
    }

    /// The values in `self.scratch` against the observation space: finite numbers, and
    /// integers in range for Discrete keys.
    fn check_values(&self, id: &str) -> Result<()> {
        let input_err = |detail: String| PipelineError::Input { file: self.path.clone(), id: id.to_string(), detail };
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
        Ok(())
    }
}
