//! VecNormalize statistics (`vec_normalize.pkl`), read without running the pickle
//! (docs/agent-format.md, "VecNormalize"). When the save normalises observations, each raw
//! observation x becomes clip((x - mean) / sqrt(var + epsilon), -clip_obs, clip_obs) in float64,
//! then float32, before the policy's own preprocessing.

use std::path::{Path, PathBuf};

use super::error::{AgentError, Result};
use super::pypickle::{self, ndarray_f64, Pickle, Value};

/// Largest VecNormalize file read.
pub const MAX_BYTES: u64 = 64 << 20;

/// One observation key's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsNorm {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub epsilon: f64,
    pub clip: f64,
}

/// What a VecNormalize save says about observations.
#[derive(Debug, Clone, PartialEq)]
pub struct VecNormalize {
    pub path: PathBuf,
    pub norm_obs: bool,
    /// Per normalised key (None: the whole observation of a non-Dict space).
    pub keys: Vec<(Option<String>, ObsNorm)>,
    pub clip: f64,
}

/// Where the user says the statistics are.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Choice {
    /// `vec_normalize.pkl` or `vecnormalize.pkl` beside the zip, or in the RL Zoo's
    /// `<zip name>/vecnormalize.pkl`.
    #[default]
    Auto,
    File(PathBuf),
    Off,
}

/// The statistics file for an agent zip under `choice`, if any.
pub fn find(zip: &Path, choice: &Choice) -> Option<PathBuf> {
    match choice {
        Choice::Off => None,
        Choice::File(p) => Some(p.clone()),
        Choice::Auto => {
            let dir = zip.parent().unwrap_or(Path::new("."));
            let stem = zip.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            [dir.join("vec_normalize.pkl"), dir.join("vecnormalize.pkl"), dir.join(stem).join("vecnormalize.pkl")]
                .into_iter()
                .find(|p| p.is_file())
        }
    }
}

fn bad(path: &Path, what: impl std::fmt::Display) -> AgentError {
    AgentError::Malformed(format!("{}: {what}", path.display()))
}

/// Reads a VecNormalize save.
pub fn read(path: &Path) -> Result<VecNormalize> {
    crate::paths::must_exist(path, "VecNormalize file")?;
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_BYTES {
        return Err(AgentError::Limit(format!(
            "VecNormalize file {} is {len} bytes, over the limit of {MAX_BYTES}",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|source| AgentError::Io {
        action: "read VecNormalize file",
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes, path)
}

/// Reads a VecNormalize save already in memory; `path` names it in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<VecNormalize> {
    let p = pypickle::read(bytes, &pypickle::Limits::default(), &pypickle::vec_normalize_global).map_err(|source| {
        AgentError::Pickle {
            what: format!("{} (a VecNormalize save is read as data; nothing in it is run)", path.display()),
            source: super::pickle::PickleError(source.0),
        }
    })?;
    from_pickle(&p, path)
}

fn float(p: &Pickle, i: Option<usize>) -> Option<f64> {
    match i.map(|i| p.get(i)) {
        Some(Value::Float(v)) => Some(*v),
        Some(Value::Int(v)) => Some(*v as f64),
        // numpy scalars: numpy._core.multiarray.scalar(dtype, bytes)
        Some(Value::Call { args, .. }) => match p.get(*args) {
            Value::Tuple(a) if a.len() == 2 => match p.get(a[1]) {
                Value::Bytes(b) if b.len() == 8 => Some(f64::from_le_bytes(b.as_slice().try_into().ok()?)),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn from_pickle(p: &Pickle, path: &Path) -> Result<VecNormalize> {
    let (class, state) = p.object(p.root).ok_or_else(|| bad(path, "not a saved VecNormalize object"))?;
    if !class.ends_with(".VecNormalize") {
        return Err(bad(path, format!("a saved {class}, not a VecNormalize")));
    }
    let state = state.ok_or_else(|| bad(path, "a VecNormalize without its attributes"))?;
    let field = |k: &str| p.dict_get(state, k);
    let norm_obs = !matches!(field("norm_obs").map(|i| p.get(i)), Some(Value::Bool(false)));
    let epsilon = float(p, field("epsilon")).ok_or_else(|| bad(path, "no readable epsilon"))?;
    let clip = float(p, field("clip_obs")).ok_or_else(|| bad(path, "no readable clip_obs"))?;
    let rms_stats = |i: usize, what: &str| -> Result<ObsNorm> {
        let (c, st) = p.object(i).ok_or_else(|| bad(path, format!("{what} is not a RunningMeanStd")))?;
        if !c.ends_with(".RunningMeanStd") {
            return Err(bad(path, format!("{what} is a {c}, not a RunningMeanStd")));
        }
        let st = st.ok_or_else(|| bad(path, format!("{what} without its attributes")))?;
        let arr = |k: &str| -> Result<Vec<f64>> {
            let i = p.dict_get(st, k).ok_or_else(|| bad(path, format!("{what} has no {k}")))?;
            ndarray_f64(p, i).map(|(_, v)| v).map_err(|e| bad(path, format!("{what}.{k}: {e}")))
        };
        let (mean, var) = (arr("mean")?, arr("var")?);
        if mean.len() != var.len() {
            return Err(bad(path, format!("{what}: {} means but {} variances", mean.len(), var.len())));
        }
        if var.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || mean.iter().any(|m| !m.is_finite()) {
            return Err(bad(path, format!("{what}: a mean or variance that is not a finite number (variances >= 0)")));
        }
        Ok(ObsNorm { mean, var, epsilon, clip })
    };
    let mut keys = Vec::new();
    if norm_obs {
        let rms = field("obs_rms").ok_or_else(|| bad(path, "no obs_rms"))?;
        match p.get(rms) {
            Value::Dict(items) => {
                let wanted: Option<Vec<String>> = match field("norm_obs_keys").map(|i| p.get(i)) {
                    Some(Value::List(l)) => Some(
                        l.iter()
                            .filter_map(|&i| if let Value::Str(s) = p.get(i) { Some(s.clone()) } else { None })
                            .collect(),
                    ),
                    _ => None,
                };
                for (k, v) in items {
                    let Value::Str(key) = p.get(*k) else {
                        return Err(bad(path, "obs_rms has a key that is not text"));
                    };
                    if wanted.as_ref().is_none_or(|w| w.contains(key)) {
                        keys.push((Some(key.clone()), rms_stats(*v, &format!("obs_rms['{key}']"))?));
                    }
                }
            }
            _ => keys.push((None, rms_stats(rms, "obs_rms")?)),
        }
    }
    Ok(VecNormalize { path: path.to_path_buf(), norm_obs, keys, clip })
}
