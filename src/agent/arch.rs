//! The network of an SB3 DQN agent, worked out from its parameter names and shapes plus the
//! settings in `data` (docs/agent-format.md, "The network"). Pure description; `crate::model` runs it.

use std::collections::HashMap;

use super::data::{Activation, AgentInfo, Space};
use super::family::{Family, Head};
use super::torchzip::Param;
use super::vecnorm::{Choice, ObsNorm};

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
    Linear {
        weight: usize,
        bias: Option<usize>,
    },
    Conv {
        weight: usize,
        bias: Option<usize>,
        stride: usize,
    },
    Act(Activation),
    Flatten,
    /// QR-DQN: outputs (quantiles x actions, quantile-major) averaged over the quantiles.
    QuantileMean {
        n_quantiles: usize,
        n_actions: usize,
    },
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
    /// VecNormalize statistics applied to this key's raw values first, if any.
    pub normalize: Option<ObsNorm>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub branches: Vec<Branch>,
    /// After the branches are concatenated: custom extractor layers, then `q_net`.
    pub trunk: Vec<Op>,
    /// Values per input in `clean_inputs.json`.
    pub input_len: usize,
    pub n_actions: usize,
    /// Outputs of the network: one per action (Q-values, quantile-mean Q-values or logits), or
    /// one for a value function.
    pub outputs: usize,
    /// e.g. "custom mlp extractor (Linear 106->64, ReLU) + q_net 64->64->64->5 (ReLU)".
    pub summary: String,
    /// Assumptions the user should know about (printed as notes).
    pub notes: Vec<String>,
}

impl Arch {
    /// Applies VecNormalize statistics to the observation keys they name (checked: a key of
    /// the observation, with as many values as statistics, not a Discrete or image key).
    pub fn apply_vec_normalize(&mut self, vn: &super::vecnorm::VecNormalize) -> Result<(), String> {
        let shown = vn.path.display();
        for (key, stats) in &vn.keys {
            let b = match key {
                None if self.branches.len() == 1 => &mut self.branches[0],
                None => return Err(format!("{shown}: statistics for a single observation, but the agent's is a Dict")),
                Some(k) => {
                    self.branches.iter_mut().find(|b| b.key.as_deref() == Some(k.as_str())).ok_or_else(|| {
                        format!("{shown}: statistics for key '{k}', which the observation space lacks")
                    })?
                }
            };
            let name = b.key.clone().unwrap_or_else(|| "observation".into());
            if stats.mean.len() != b.len {
                return Err(format!(
                    "{shown}: {} statistics for the {name}, which has {} values (another environment's file?)",
                    stats.mean.len(),
                    b.len
                ));
            }
            if !matches!(b.preprocess, Preprocess::Float) {
                return Err(format!("{shown}: statistics for the {name}, which is not a plain Box of numbers"));
            }
            b.normalize = Some(stats.clone());
        }
        Ok(())
    }

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
                normalize: None,
            }],
            trunk: vec![],
            input_len: len,
            n_actions: 2,
            outputs: 2,
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
    /// Where the VecNormalize statistics are (found beside the zip by default).
    pub vec_normalize: Choice,
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
            Op::QuantileMean { n_quantiles, .. } => parts.push(format!("mean of {n_quantiles} quantiles")),
        }
    }
    parts.join(", ")
}

/// One Linear layer named `<name>.weight` / `<name>.bias` (SB3's `action_net`, `value_net`).
fn single_linear(p: &mut Params, name: &str, in_dim: usize, ops: &mut Vec<Op>) -> Result<usize, String> {
    let wname = format!("{name}.weight");
    let w = p.get(&wname).ok_or_else(|| format!("missing {wname}"))?;
    let b = p.get(&format!("{name}.bias"));
    let shape = p.shape(w).to_vec();
    if shape.len() != 2 || shape[1] != in_dim {
        return Err(format!("{wname} has shape {shape:?}, expected (out, {in_dim})"));
    }
    if let Some(b) = b {
        if p.shape(b) != [shape[0]] {
            return Err(format!("{name}.bias has shape {:?}, expected [{}]", p.shape(b), shape[0]));
        }
    }
    ops.push(Op::Linear { weight: w, bias: b });
    Ok(shape[0])
}

/// Works out the network of `head` for an agent of `family` from `params` (the head's own,
/// see `Family::select`). Errors say what was found and how to state what cannot be known.
pub fn infer(
    info: &AgentInfo,
    params: &[Param],
    overrides: &ArchOverrides,
    family: Family,
    head: Head,
) -> Result<Arch, String> {
    // SB3's default activation: Tanh for actor-critic policies, ReLU for DQN and QR-DQN.
    let default_act = match family {
        Family::ActorCritic { .. } if info.activation_text.is_none() => Some(Activation::Tanh),
        _ => info.activation,
    };
    let act = match (overrides.activation, default_act) {
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
    // The critic's own extractor when the extractors are separate.
    let fx = if has("vf_features_extractor.") { "vf_features_extractor." } else { "features_extractor." };
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
        let b = Branch {
            key,
            offset: *offset,
            len,
            obs_shape,
            preprocess: pre,
            ops: vec![Op::Flatten],
            out_dim: out,
            normalize: None,
        };
        *offset += len;
        Ok(b)
    };
    // A NatureCNN under `prefix` on an image key (`label`: its name in errors) or on the whole
    // observation (None).
    let cnn_branch = |p: &mut Params,
                      prefix: &str,
                      (key, label): (Option<String>, Option<&str>),
                      space: &Space,
                      offset: &mut usize|
     -> Result<Branch, String> {
        let (pre, obs_shape, _) = preprocess_for(space, info.normalize_images, label.unwrap_or("observation"))?;
        let mut ops = Vec::new();
        let out = nature_cnn(p, prefix, &obs_shape, &mut ops).map_err(|e| match label {
            Some(k) => format!("key '{k}': {e}"),
            None => e,
        })?;
        let len = space.input_len();
        let b = Branch { key, offset: *offset, len, obs_shape, preprocess: pre, ops, out_dim: out, normalize: None };
        *offset += len;
        Ok(b)
    };

    if has(&format!("{fx}mlp.")) {
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
        feature_dim = linear_stack(&mut p, &format!("{fx}mlp."), feature_dim, ext_act, true, &mut trunk, &mut dims)
            .map_err(|e| format!("custom feature extractor: {e}"))?;
    } else if has(&format!("{fx}cnn.")) {
        extractor = "NatureCNN".to_string();
        let (key, space) = &keyed[0];
        if keyed.len() > 1 || key.is_some() {
            return Err("NatureCNN parameters with a Dict observation space: expected a Box image space".into());
        }
        let b = cnn_branch(&mut p, fx, (None, None), space, &mut offset)?;
        feature_dim = b.out_dim;
        branches.push(b);
    } else if has(&format!("{fx}extractors.")) || (matches!(info.observation_space, Space::Dict(_)) && !has(fx)) {
        extractor = "CombinedExtractor".to_string();
        for (key, space) in &keyed {
            let k = key.clone().unwrap_or_default();
            let prefix = format!("{fx}extractors.{k}.");
            if has(&format!("{prefix}cnn.")) {
                let b = cnn_branch(&mut p, &prefix, (key.clone(), Some(&k)), space, &mut offset)?;
                feature_dim += b.out_dim;
                branches.push(b);
            } else {
                let b = flatten_branch(key.clone(), space, &mut offset)?;
                feature_dim += b.out_dim;
                branches.push(b);
            }
        }
    } else if !has(fx) {
        extractor = "FlattenExtractor".to_string();
        let (key, space) = &keyed[0];
        let b = flatten_branch(key.clone(), space, &mut offset)?;
        feature_dim = b.out_dim;
        branches.push(b);
    } else {
        let names: Vec<&str> = params.iter().map(|x| x.name.as_str()).filter(|n| n.starts_with(fx)).take(8).collect();
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
    let n_actions = info.n_actions;
    let (outputs, head_name) = match (family, head) {
        (Family::Dqn, _) => {
            let out = linear_stack(&mut p, "q_net.", feature_dim, act, false, &mut trunk, &mut dims)
                .map_err(|e| format!("q_net: {e}"))?;
            if out != n_actions {
                return Err(format!(
                    "q_net's last layer has {out} outputs, but the action space has {n_actions} actions"
                ));
            }
            (n_actions, "q_net".to_string())
        }
        (Family::QrDqn, _) => {
            let out = linear_stack(&mut p, "quantile_net.", feature_dim, act, false, &mut trunk, &mut dims)
                .map_err(|e| format!("quantile_net: {e}"))?;
            if out == 0 || out % n_actions != 0 {
                return Err(format!(
                    "quantile_net's last layer has {out} outputs, not a multiple of the {n_actions} actions"
                ));
            }
            let n_quantiles = out / n_actions;
            if let Some(n) = info.n_quantiles.filter(|&n| n != n_quantiles) {
                return Err(format!(
                    "policy_kwargs says n_quantiles {n}, but quantile_net's last layer has {out} outputs for \
                     {n_actions} actions ({n_quantiles} quantiles)"
                ));
            }
            trunk.push(Op::QuantileMean { n_quantiles, n_actions });
            (n_actions, format!("quantile_net, mean of {n_quantiles} quantiles"))
        }
        (Family::ActorCritic { .. }, Head::Actor | Head::Q) => {
            let mut dim = feature_dim;
            if has("mlp_extractor.policy_net.") {
                dim = linear_stack(&mut p, "mlp_extractor.policy_net.", dim, act, true, &mut trunk, &mut dims)
                    .map_err(|e| format!("mlp_extractor.policy_net: {e}"))?;
            }
            let out = single_linear(&mut p, "action_net", dim, &mut trunk).map_err(|e| format!("action_net: {e}"))?;
            if out != n_actions {
                return Err(format!("action_net has {out} outputs, but the action space has {n_actions} actions"));
            }
            (n_actions, "policy: logits".to_string())
        }
        (Family::ActorCritic { .. }, Head::Critic) => {
            let mut dim = feature_dim;
            if has("mlp_extractor.value_net.") {
                dim = linear_stack(&mut p, "mlp_extractor.value_net.", dim, act, true, &mut trunk, &mut dims)
                    .map_err(|e| format!("mlp_extractor.value_net: {e}"))?;
            }
            let out = single_linear(&mut p, "value_net", dim, &mut trunk).map_err(|e| format!("value_net: {e}"))?;
            if out != 1 {
                return Err(format!("value_net has {out} outputs; a value function has one"));
            }
            (1, "value".to_string())
        }
    };
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
    summary.push_str(&format!("[{head_name}: {}]", describe_ops(&trunk[q_start..], params)));
    Ok(Arch {
        branches,
        trunk,
        input_len: offset,
        n_actions,
        outputs,
        summary: format!("{} {extractor}, {act}: {summary}", family.name()),
        notes,
    })
}
