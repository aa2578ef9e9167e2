//! The network of an SB3 DQN agent, worked out from its parameter names and shapes plus the
//! settings in `data` (docs/agent-format.md, "The network"). Pure description; `crate::model` runs it.

use std::collections::HashMap;

use super::data::{Activation, AgentInfo, Space};
use super::torchzip::Param;

/// SB3's `preprocess_obs` for one observation (sub-)space.
#[derive(Debug, Clone, PartialEq)]
pub enum Preprocess {
    /// Box / MultiBinary: as float32.
    Float,
    /// An image Box with `normalize_images`: float32 / 255.
    Image,
    /// Discrete(n): one-hot of the single value.
    OneHot(usize),
    /// MultiDiscrete: one-hot per entry, concatenated.
    MultiOneHot(Vec<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Linear { weight: usize, bias: Option<usize> },
    Conv { weight: usize, bias: Option<usize>, stride: usize },
    Act(Activation),
    Flatten,
}

/// One observation key's path: a slice of the flat input, preprocessed, through its layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub key: Option<String>,
    /// Where this key's values sit in an input's flat list.
    pub offset: usize,
    pub len: usize,
    /// Shape of one observation of this key (as the network sees it, before preprocessing).
    pub obs_shape: Vec<usize>,
    pub preprocess: Preprocess,
    pub ops: Vec<Op>,
    /// Features this branch contributes.
    pub out_dim: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub branches: Vec<Branch>,
    /// After the branches are concatenated: custom extractor layers, then `q_net`.
    pub trunk: Vec<Op>,
    /// Values per input in `clean_inputs.json`.
    pub input_len: usize,
    pub n_actions: usize,
    /// e.g. "custom mlp extractor (Linear 106->64, ReLU) + q_net 64->64->64->5 (ReLU)".
    pub summary: String,
    /// Assumptions the user should know about (printed as notes).
    pub notes: Vec<String>,
}

impl Arch {
    /// One unkeyed observation of `obs_shape` and no layers: all that the inputs reader looks
    /// at (for tests and fuzzing of the readers).
    pub fn input_only(obs_shape: Vec<usize>, preprocess: Preprocess) -> Arch {
        let len = obs_shape.iter().product();
        Arch {
            branches: vec![Branch {
                key: None,
                offset: 0,
                len,
                obs_shape,
                preprocess,
                ops: vec![Op::Flatten],
                out_dim: len,
            }],
            trunk: vec![],
            input_len: len,
            n_actions: 2,
            summary: String::new(),
            notes: vec![],
        }
    }
}

/// What the user can state when the zip cannot tell.
#[derive(Debug, Clone, Default)]
pub struct ArchOverrides {
    /// The policy's activation (`policy_kwargs["activation_fn"]`).
    pub activation: Option<Activation>,
    /// The activation after each Linear of a custom `features_extractor.mlp`.
    pub extractor_activation: Option<Activation>,
}

const HOW_TO_STATE: &str =
    "state it with --activation NAME (and --extractor-activation NAME for a custom `mlp` extractor)";

struct Params<'a> {
    by_name: HashMap<&'a str, usize>,
    params: &'a [Param],
    used: Vec<bool>,
}

impl<'a> Params<'a> {
    fn get(&mut self, name: &str) -> Option<usize> {
        let i = *self.by_name.get(name)?;
        self.used[i] = true;
        Some(i)
    }

    fn shape(&self, i: usize) -> &[usize] {
        &self.params[i].shape
    }

    /// Sorted indices `i` of `<prefix><i>.weight`.
    fn indices(&self, prefix: &str) -> Vec<usize> {
        let mut v: Vec<usize> =
            self.by_name.keys().filter_map(|n| n.strip_prefix(prefix)?.strip_suffix(".weight")?.parse().ok()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Linear layers `<prefix><i>` (sorted by i), an activation wherever the Sequential has a
/// module between two of them, and after the last one when `act_after_last`.
fn linear_stack(
    p: &mut Params,
    prefix: &str,
    in_dim: usize,
    act: Activation,
    act_after_last: bool,
    ops: &mut Vec<Op>,
    dims: &mut Vec<usize>,
) -> Result<usize, String> {
    let idx = p.indices(prefix);
    if idx.is_empty() {
        return Err(format!("no '{prefix}<i>.weight' parameters"));
    }
    let mut dim = in_dim;
    for (n, &i) in idx.iter().enumerate() {
        let wname = format!("{prefix}{i}.weight");
        let w = p.get(&wname).ok_or_else(|| format!("missing {wname}"))?;
        let b = p.get(&format!("{prefix}{i}.bias"));
        let shape = p.shape(w).to_vec();
        if shape.len() != 2 {
            return Err(format!("{wname} has shape {shape:?}; a Linear weight is 2-D (out, in)"));
        }
        if shape[1] != dim {
            return Err(format!(
                "{wname} has shape {shape:?}: it takes {} inputs, but the layer before gives {dim}",
                shape[1]
            ));
        }
        if let Some(b) = b {
            if p.shape(b) != [shape[0]] {
                return Err(format!("{prefix}{i}.bias has shape {:?}, expected [{}]", p.shape(b), shape[0]));
            }
        }
        ops.push(Op::Linear { weight: w, bias: b });
        dim = shape[0];
        dims.push(dim);
        let last = n + 1 == idx.len();
        let gap = if last { act_after_last } else { idx[n + 1] > i + 1 };
        if gap {
            ops.push(Op::Act(act));
        }
    }
    Ok(dim)
}

/// NatureCNN (`<prefix>cnn.{0,2,4}`, `<prefix>linear.0`) on a (C, H, W) input.
fn nature_cnn(p: &mut Params, prefix: &str, shape: &[usize], ops: &mut Vec<Op>) -> Result<usize, String> {
    if shape.len() != 3 {
        return Err(format!("NatureCNN needs a (C, H, W) image observation, found shape {shape:?}"));
    }
    let (mut c, mut h, mut w) = (shape[0], shape[1], shape[2]);
    for (i, (k, stride)) in [(0usize, (8usize, 4usize)), (2, (4, 2)), (4, (3, 1))] {
        let wname = format!("{prefix}cnn.{i}.weight");
        let wi = p.get(&wname).ok_or_else(|| format!("missing {wname} (NatureCNN has cnn.0, cnn.2, cnn.4)"))?;
        let bi = p.get(&format!("{prefix}cnn.{i}.bias"));
        let s = p.shape(wi).to_vec();
        if s.len() != 4 || s[1] != c || s[2] != k || s[3] != k {
            return Err(format!(
                "{wname} has shape {s:?}; NatureCNN expects (out, {c}, {k}, {k}). A different CNN is not supported"
            ));
        }
        if h < k || w < k {
            return Err(format!(
                "{wname}: a {k}x{k} kernel does not fit the {h}x{w} input (image too small for NatureCNN)"
            ));
        }
        h = (h - k) / stride + 1;
        w = (w - k) / stride + 1;
        c = s[0];
        ops.push(Op::Conv { weight: wi, bias: bi, stride });
        ops.push(Op::Act(Activation::ReLU));
    }
    ops.push(Op::Flatten);
    let mut dims = Vec::new();
    let lin = format!("{prefix}linear.");
    let out = linear_stack(p, &lin, c * h * w, Activation::ReLU, true, ops, &mut dims)?;
    Ok(out)
}

fn preprocess_for(
    space: &Space,
    normalize_images: bool,
    what: &str,
) -> Result<(Preprocess, Vec<usize>, usize), String> {
    Ok(match space {
        Space::Box { shape, .. } => {
            let pre = if normalize_images && space.is_image() { Preprocess::Image } else { Preprocess::Float };
            (pre, shape.clone(), shape.iter().product())
        }
        Space::MultiBinary { shape } => (Preprocess::Float, shape.clone(), shape.iter().product()),
        Space::Discrete { n } => (Preprocess::OneHot(*n), vec![*n], *n),
        Space::MultiDiscrete { nvec } => {
            (Preprocess::MultiOneHot(nvec.clone()), vec![nvec.iter().sum()], nvec.iter().sum())
        }
        Space::Dict(_) => return Err(format!("{what}: a Dict inside a Dict is not supported")),
    })
}

fn describe_ops(ops: &[Op], params: &[Param]) -> String {
    let mut parts = Vec::new();
    for op in ops {
        match op {
            Op::Linear { weight, .. } => {
                let s = &params[*weight].shape;
                parts.push(format!("Linear {}->{}", s[1], s[0]));
            }
            Op::Conv { weight, stride, .. } => {
                let s = &params[*weight].shape;
                parts.push(format!("Conv {}->{} {}x{}/{}", s[1], s[0], s[2], s[3], stride));
            }
            Op::Act(a) => parts.push(a.name().to_string()),
            Op::Flatten => parts.push("Flatten".into()),
        }
    }
    parts.join(", ")
}

/// Works out the network. Errors say what was found and how to state what cannot be known.
pub fn infer(info: &AgentInfo, params: &[Param], overrides: &ArchOverrides) -> Result<Arch, String> {
    let act = match (overrides.activation, info.activation) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(format!(
                "policy_kwargs activation_fn is {}, which saliency does not know (known: {}); {HOW_TO_STATE}",
                info.activation_text.as_deref().unwrap_or("?"),
                Activation::names()
            ))
        }
    };
    let mut p = Params {
        by_name: params.iter().enumerate().map(|(i, x)| (x.name.as_str(), i)).collect(),
        params,
        used: vec![false; params.len()],
    };
    let keyed: Vec<(Option<String>, Space)> = match &info.observation_space {
        Space::Dict(spaces) => spaces.iter().map(|(k, s)| (Some(k.clone()), s.clone())).collect(),
        other => vec![(None, other.clone())],
    };
    let has = |prefix: &str| params.iter().any(|x| x.name.starts_with(prefix));
    let fe_class = info.features_extractor_class.clone().unwrap_or_default();

    let mut branches = Vec::new();
    let mut trunk = Vec::new();
    let mut notes = Vec::new();
    let mut offset = 0usize;
    let mut feature_dim = 0usize;
    let extractor;

    let flatten_branch = |key: Option<String>, space: &Space, offset: &mut usize| -> Result<Branch, String> {
        let what = key.clone().unwrap_or_else(|| "observation".into());
        let (pre, obs_shape, out) = preprocess_for(space, info.normalize_images, &what)?;
        let len = space.input_len();
        let b = Branch { key, offset: *offset, len, obs_shape, preprocess: pre, ops: vec![Op::Flatten], out_dim: out };
        *offset += len;
        Ok(b)
    };

    if has("features_extractor.mlp.") {
        extractor = format!(
            "custom mlp extractor{}",
            if fe_class.is_empty() { String::new() } else { format!(" ({fe_class})") }
        );
        for (key, space) in &keyed {
            let b = flatten_branch(key.clone(), space, &mut offset)?;
            feature_dim += b.out_dim;
            branches.push(b);
        }
        let ext_act = overrides.extractor_activation.unwrap_or(act);
        if overrides.extractor_activation.is_none() {
            notes.push(format!(
                "the custom feature extractor's code is not in the zip: assuming Linear + {ext_act} after each \
                 `features_extractor.mlp` layer (state another with --extractor-activation)"
            ));
        }
        if keyed.len() > 1 {
            notes.push("custom mlp extractor: assuming the observation keys are concatenated in key order".into());
        }
        let mut dims = Vec::new();
        feature_dim =
            linear_stack(&mut p, "features_extractor.mlp.", feature_dim, ext_act, true, &mut trunk, &mut dims)
                .map_err(|e| format!("custom feature extractor: {e}"))?;
    } else if has("features_extractor.cnn.") {
        extractor = "NatureCNN".to_string();
        let (key, space) = &keyed[0];
        if keyed.len() > 1 || key.is_some() {
            return Err("NatureCNN parameters with a Dict observation space: expected a Box image space".into());
        }
        let (pre, obs_shape, _) = preprocess_for(space, info.normalize_images, "observation")?;
        let mut ops = Vec::new();
        let out = nature_cnn(&mut p, "features_extractor.", &obs_shape, &mut ops)?;
        let len = space.input_len();
        branches.push(Branch { key: None, offset: 0, len, obs_shape, preprocess: pre, ops, out_dim: out });
        offset = len;
        feature_dim = out;
    } else if has("features_extractor.extractors.")
        || (matches!(info.observation_space, Space::Dict(_)) && !has("features_extractor."))
    {
        extractor = "CombinedExtractor".to_string();
        for (key, space) in &keyed {
            let k = key.clone().unwrap_or_default();
            let prefix = format!("features_extractor.extractors.{k}.");
            if has(&format!("{prefix}cnn.")) {
                let (pre, obs_shape, _) = preprocess_for(space, info.normalize_images, &k)?;
                let mut ops = Vec::new();
                let out = nature_cnn(&mut p, &prefix, &obs_shape, &mut ops).map_err(|e| format!("key '{k}': {e}"))?;
                let len = space.input_len();
                branches.push(Branch { key: key.clone(), offset, len, obs_shape, preprocess: pre, ops, out_dim: out });
                offset += len;
                feature_dim += out;
            } else {
                let b = flatten_branch(key.clone(), space, &mut offset)?;
                feature_dim += b.out_dim;
                branches.push(b);
            }
        }
    } else if !has("features_extractor.") {
        extractor = "FlattenExtractor".to_string();
        let (key, space) = &keyed[0];
        let b = flatten_branch(key.clone(), space, &mut offset)?;
        feature_dim = b.out_dim;
        branches.push(b);
    } else {
        let names: Vec<&str> =
            params.iter().map(|x| x.name.as_str()).filter(|n| n.starts_with("features_extractor.")).take(8).collect();
        return Err(format!(
            "unrecognised feature extractor{} with parameters [{}]; saliency knows FlattenExtractor, NatureCNN \
             (features_extractor.cnn/linear), CombinedExtractor (features_extractor.extractors.<key>) and a custom \
             Sequential of Linear layers (features_extractor.mlp.<i>)",
            if fe_class.is_empty() { String::new() } else { format!(" {fe_class}") },
            names.join(", ")
        ));
    }

    let mut dims = Vec::new();
    let q_start = trunk.len();
    let out = linear_stack(&mut p, "q_net.", feature_dim, act, false, &mut trunk, &mut dims)
        .map_err(|e| format!("q_net: {e}"))?;
    if out != info.n_actions {
        return Err(format!(
            "q_net's last layer has {out} outputs, but the action space has {} actions",
            info.n_actions
        ));
    }
    let unused: Vec<&str> =
        params.iter().zip(&p.used).filter(|(_, u)| !**u).map(|(x, _)| x.name.as_str()).take(8).collect();
    if !unused.is_empty() {
        return Err(format!(
            "parameters that fit no known layer: [{}] (the extractor was read as {extractor})",
            unused.join(", ")
        ));
    }
    let mut summary = String::new();
    for b in &branches {
        if !b.ops.is_empty() && b.ops != [Op::Flatten] {
            summary.push_str(&format!("[{}: {}] ", b.key.as_deref().unwrap_or("obs"), describe_ops(&b.ops, params)));
        }
    }
    if q_start > 0 {
        summary.push_str(&format!("[extractor: {}] ", describe_ops(&trunk[..q_start], params)));
    }
    summary.push_str(&format!("[q_net: {}]", describe_ops(&trunk[q_start..], params)));
    Ok(Arch {
        branches,
        trunk,
        input_len: offset,
        n_actions: info.n_actions,
        summary: format!("{extractor}, {act}: {summary}"),
        notes,
    })
}
