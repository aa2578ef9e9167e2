//! VecNormalize statistics (`vec_normalize.pkl`), read without running the pickle
//! (docs/agent-format.md, "VecNormalize"). When the save normalises observations, each raw
//! observation x becomes clip((x - mean) / sqrt(var + epsilon), -clip_obs, clip_obs) in float64,
//! then float32, before the policy's own preprocessing.

use std::path::{Path, PathBuf};

use super::error::{AgentError, Result};
use super::pickle::{self, AllowList, Pickle, Pickled};

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

/// The globals a VecNormalize save uses (stable-baselines3 2.x, gymnasium, numpy 1.x and 2.x).
fn vec_normalize_global(module: &str, name: &str) -> bool {
    let numpy_core = matches!(module, "numpy._core.multiarray" | "numpy.core.multiarray");
    match (module, name) {
        ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize")
        | ("stable_baselines3.common.running_mean_std", "RunningMeanStd")
        | ("numpy", "dtype")
        | ("numpy", "ndarray")
        | ("numpy.random._pickle", "__generator_ctor")
        | ("numpy.random._pickle", "__bit_generator_ctor")
        | ("numpy.random._pcg64", "PCG64")
        | ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")
        | ("numpy.random.bit_generator", "SeedSequence")
        // (a Dict space's sub-spaces; built as a plain dict by the pickle reader)
        | ("collections", "OrderedDict") => true,
        (_, "_reconstruct" | "scalar") if numpy_core => true,
        (m, n) if m.starts_with("gymnasium.spaces.") => {
            matches!(n, "Box" | "Discrete" | "Dict" | "MultiDiscrete" | "MultiBinary" | "Tuple")
        }
        _ => false,
    }
}

/// What a VecNormalize save may name.
pub const VEC_NORMALIZE: AllowList = AllowList {
    allows: vec_normalize_global,
    why: "not one a VecNormalize save uses (its classes, numpy arrays and gymnasium spaces)",
};

/// A numpy array recorded as `_reconstruct(ndarray, (0,), b'b')` + BUILD
/// `(1, shape, dtype, is_fortran, raw bytes)`: its values as f64 (float64 or float32 data).
fn ndarray_f64(p: &Pickle, i: usize) -> std::result::Result<(Vec<usize>, Vec<f64>), pickle::PickleError> {
    let no = |detail: String| pickle::PickleError::data(detail);
    let (class, state) = p.object(i).ok_or_else(|| no("not a numpy array".into()))?;
    if !class.ends_with("._reconstruct") {
        return Err(no(format!("{class}, not a numpy array")));
    }
    let state = state.ok_or_else(|| no("a numpy array without its data".into()))?;
    let Pickled::Tuple(items) = p.get(state) else { return Err(no("a numpy array's state is not a tuple".into())) };
    if items.len() != 5 {
        return Err(no(format!("a numpy array's state has {} items, expected 5", items.len())));
    }
    let shape: Vec<usize> = match p.get(items[1]) {
        Pickled::Tuple(dims) => dims
            .iter()
            .map(|&d| match p.get(d) {
                Pickled::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(no("a numpy array's shape holds a non-integer".into())),
            })
            .collect::<std::result::Result<_, _>>()?,
        _ => return Err(no("a numpy array's shape is not a tuple".into())),
    };
    if matches!(p.get(items[3]), Pickled::Bool(true)) {
        return Err(no("a Fortran-ordered numpy array".into()));
    }
    let (code, order) = dtype(p, items[2]).map_err(no)?;
    let Pickled::Bytes(raw) = p.get(items[4]) else { return Err(no("a numpy array's data is not bytes".into())) };
    let n: usize = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| no("a numpy array's shape overflows".into()))?;
    if order == ">" {
        return Err(no("a big-endian numpy array".into()));
    }
    let values: Vec<f64> = match code.as_str() {
        "f8" if raw.len() == 8 * n => {
            raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()
        }
        "f4" if raw.len() == 4 * n => {
            raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64).collect()
        }
        "f8" | "f4" => {
            return Err(no(format!("a numpy array of shape {shape:?} with {} bytes of {code} data", raw.len())))
        }
        other => return Err(no(format!("a numpy array of dtype {other}, expected float64 or float32"))),
    };
    Ok((shape, values))
}

/// A recorded `numpy.dtype(code, ...)` with its BUILD state: (code, byte order).
fn dtype(p: &Pickle, i: usize) -> std::result::Result<(String, String), String> {
    let Some(("numpy", "dtype", args)) = p.call(i) else { return Err("a dtype that is not numpy.dtype(...)".into()) };
    let code = match args.first().map(|&x| p.get(x)) {
        Some(Pickled::Str(s)) => s.clone(),
        _ => return Err("numpy.dtype without a type code".into()),
    };
    let state = match p.get(i) {
        Pickled::Call { state, .. } => *state,
        _ => None,
    };
    let order = match state.map(|s| p.get(s)) {
        Some(Pickled::Tuple(st)) => match st.get(1).map(|&x| p.get(x)) {
            Some(Pickled::Str(o)) => o.clone(),
            _ => "<".into(),
        },
        _ => "<".into(),
    };
    Ok((code, order))
}

/// Reads a VecNormalize save already in memory; `path` names it in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<VecNormalize> {
    let p = pickle::read(bytes, &pickle::Limits::default(), &VEC_NORMALIZE).map_err(|source| AgentError::Pickle {
        what: format!("{} (a VecNormalize save is read as data; nothing in it is run)", path.display()),
        source,
    })?;
    from_pickle(&p, path)
}

fn float(p: &Pickle, i: Option<usize>) -> Option<f64> {
    match i.map(|i| p.get(i)) {
        Some(Pickled::Float(v)) => Some(*v),
        Some(Pickled::Int(v)) => Some(*v as f64),
        // numpy scalars: numpy._core.multiarray.scalar(dtype, bytes)
        Some(Pickled::Call { args, .. }) => match p.get(*args) {
            Pickled::Tuple(a) if a.len() == 2 => match p.get(a[1]) {
                Pickled::Bytes(b) if b.len() == 8 => Some(f64::from_le_bytes(b.as_slice().try_into().ok()?)),
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
    let norm_obs = !matches!(field("norm_obs").map(|i| p.get(i)), Some(Pickled::Bool(false)));
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
            ndarray_f64(p, i).map(|(_, v)| v).map_err(|e| bad(path, format!("{what}.{k}: {}", e.detail)))
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
            Pickled::Dict(items) => {
                let wanted: Option<Vec<String>> = match field("norm_obs_keys").map(|i| p.get(i)) {
                    Some(Pickled::List(l)) => Some(
                        l.iter()
                            .filter_map(|&i| if let Pickled::Str(s) = p.get(i) { Some(s.clone()) } else { None })
                            .collect(),
                    ),
                    _ => None,
                };
                for (k, v) in items {
                    let Pickled::Str(key) = p.get(*k) else {
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
