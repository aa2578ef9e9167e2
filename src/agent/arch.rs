//! The network of an SB3 agent (any family: Q-network, quantile network, actor or critic),
//! worked out from its parameter names and shapes plus the settings in `data`
//! (docs/agent-format.md, "The network"). Pure description; `crate::model` runs it.

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
    /// After the branches are concatenated: custom extractor layers, then the head (`q_net`,
    /// `quantile_net`, a policy's or a critic's layers).
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
    pub fn apply_vec_normalize(&mut self, vn: &super::vecnorm::VecNormalize) -> Result<()> {
        let shown = vn.path.display();
        for (key, stats) in &vn.keys {
            let b = match key {
                None if self.branches.len() == 1 => &mut self.branches[0],
                None => {
                    return Err(ArchError::Statistics(format!(
                        "{shown}: statistics for a single observation, but the agent's is a Dict"
                    )))
                }
                Some(k) => {
                    self.branches.iter_mut().find(|b| b.key.as_deref() == Some(k.as_str())).ok_or_else(|| {
                        ArchError::Statistics(format!(
                            "{shown}: statistics for key '{k}', which the observation space lacks"
                        ))
                    })?
                }
            };
            let name = b.key.clone().unwrap_or_else(|| "observation".into());
            if stats.mean.len() != b.len {
                return Err(ArchError::Statistics(format!(
                    "{shown}: {} statistics for the {name}, which has {} values (another environment's file?)",
                    stats.mean.len(),
                    b.len
                )));
            }
            if !matches!(b.preprocess, Preprocess::Float) {
                return Err(ArchError::Statistics(format!(
                    "{shown}: statistics for the {name}, which is not a plain Box of numbers"
                )));
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

/// Why the parameters and settings make no network saliency can run. Messages say what was
/// found and what was expected (and how to state what the zip cannot tell).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArchError {
    /// Parameters whose names or shapes do not make the network the settings describe.
    #[error("{0}")]
    Shape(String),
    /// A network, space or setting saliency does not read.
    #[error("{0}")]
    Unsupported(String),
    /// VecNormalize statistics that do not fit the observation.
    #[error("{0}")]
    Statistics(String),
    /// An error inside a named part (a layer stack, an observation key).
    #[error("{part}: {source}")]
    In {
        part: String,
        #[source]
        source: Box<ArchError>,
    },
}

type Result<T> = std::result::Result<T, ArchError>;

/// Puts an error inside the part it happened in.
fn within(part: impl Into<String>) -> impl FnOnce(ArchError) -> ArchError {
    let part = part.into();
    move |e| ArchError::In { part, source: Box::new(e) }
}

fn shape_err<T>(text: String) -> Result<T> {
    Err(ArchError::Shape(text))
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
) -> Result<usize> {
    let idx = p.indices(prefix);
    if idx.is_empty() {
        return shape_err(format!("no '{prefix}<i>.weight' parameters"));
    }
    let mut dim = in_dim;
    for (n, &i) in idx.iter().enumerate() {
        let wname = format!("{prefix}{i}.weight");
        let w = p.get(&wname).ok_or_else(|| ArchError::Shape(format!("missing {wname}")))?;
        let b = p.get(&format!("{prefix}{i}.bias"));
        let shape = p.shape(w).to_vec();
        if shape.len() != 2 {
            return shape_err(format!("{wname} has shape {shape:?}; a Linear weight is 2-D (out, in)"));
        }
        if shape[1] != dim {
            return shape_err(format!(
                "{wname} has shape {shape:?}: it takes {} inputs, but the layer before gives {dim}",
                shape[1]
            ));
        }
        if let Some(b) = b {
            if p.shape(b) != [shape[0]] {
                return shape_err(format!("{prefix}{i}.bias has shape {:?}, expected [{}]", p.shape(b), shape[0]));
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
fn nature_cnn(p: &mut Params, prefix: &str, shape: &[usize], ops: &mut Vec<Op>) -> Result<usize> {
    if shape.len() != 3 {
        return Err(ArchError::Unsupported(format!(
            "NatureCNN needs a (C, H, W) image observation, found shape {shape:?}"
        )));
    }
    let (mut c, mut h, mut w) = (shape[0], shape[1], shape[2]);
    for (i, (k, stride)) in [(0usize, (8usize, 4usize)), (2, (4, 2)), (4, (3, 1))] {
        let wname = format!("{prefix}cnn.{i}.weight");
        let wi = p
            .get(&wname)
            .ok_or_else(|| ArchError::Shape(format!("missing {wname} (NatureCNN has cnn.0, cnn.2, cnn.4)")))?;
        let bi = p.get(&format!("{prefix}cnn.{i}.bias"));
        let s = p.shape(wi).to_vec();
        if s.len() != 4 || s[1] != c || s[2] != k || s[3] != k {
            return Err(ArchError::Unsupported(format!(
                "{wname} has shape {s:?}; NatureCNN expects (out, {c}, {k}, {k}). A different CNN is not supported"
            )));
        }
        if h < k || w < k {
            return shape_err(format!(
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

fn preprocess_for(space: &Space, normalize_images: bool, what: &str) -> Result<(Preprocess, Vec<usize>, usize)> {
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
        Space::Dict(_) => return Err(ArchError::Unsupported(format!("{what}: a Dict inside a Dict is not supported"))),
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
fn single_linear(p: &mut Params, name: &str, in_dim: usize, ops: &mut Vec<Op>) -> Result<usize> {
    let wname = format!("{name}.weight");
    let w = p.get(&wname).ok_or_else(|| ArchError::Shape(format!("missing {wname}")))?;
    let b = p.get(&format!("{name}.bias"));
    let shape = p.shape(w).to_vec();
    if shape.len() != 2 || shape[1] != in_dim {
        return shape_err(format!("{wname} has shape {shape:?}, expected (out, {in_dim})"));
    }
    if let Some(b) = b {
        if p.shape(b) != [shape[0]] {
            return shape_err(format!("{name}.bias has shape {:?}, expected [{}]", p.shape(b), shape[0]));
        }
    }
    ops.push(Op::Linear { weight: w, bias: b });
    Ok(shape[0])
}

/// SB3's activation for the family (Tanh for actor-critic policies, ReLU for DQN and QR-DQN),
/// unless `data` names one or the user states one.
fn activation_of(info: &AgentInfo, overrides: &ArchOverrides, family: Family) -> Result<Activation> {
    let default_act = match family {
        Family::ActorCritic { .. } if info.activation_text.is_none() => Some(Activation::Tanh),
        _ => info.activation,
    };
    match (overrides.activation, default_act) {
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(ArchError::Unsupported(format!(
            "policy_kwargs activation_fn is {}, which saliency does not know (known: {}); {HOW_TO_STATE}",
            info.activation_text.as_deref().unwrap_or("?"),
            Activation::names()
        ))),
    }
}

/// The network being worked out: parameters taken so far, branches and trunk built so far.
struct Builder<'a> {
    info: &'a AgentInfo,
    p: Params<'a>,
    /// The observation's keys (None for a non-Dict space) and spaces.
    keyed: Vec<(Option<String>, Space)>,
    /// The extractor's prefix: the critic's own when the extractors are separate.
    fx: &'static str,
    branches: Vec<Branch>,
    trunk: Vec<Op>,
    notes: Vec<String>,
    /// Values of an input taken by the branches so far.
    offset: usize,
}

impl<'a> Builder<'a> {
    fn new(info: &'a AgentInfo, params: &'a [Param]) -> Builder<'a> {
        let p = Params {
            by_name: params.iter().enumerate().map(|(i, x)| (x.name.as_str(), i)).collect(),
            params,
            used: vec![false; params.len()],
        };
        let keyed = match &info.observation_space {
            Space::Dict(spaces) => spaces.iter().map(|(k, s)| (Some(k.clone()), s.clone())).collect(),
            other => vec![(None, other.clone())],
        };
        let mut b =
            Builder { info, p, keyed, fx: "", branches: Vec::new(), trunk: Vec::new(), notes: Vec::new(), offset: 0 };
        b.fx = if b.has("vf_features_extractor.") { "vf_features_extractor." } else { "features_extractor." };
        b
    }

    fn has(&self, prefix: &str) -> bool {
        self.p.params.iter().any(|x| x.name.starts_with(prefix))
    }

    /// A key taken as it is (flattened, one-hot for discrete spaces).
    fn flatten_branch(&mut self, key: Option<String>, space: &Space) -> Result<usize> {
        let what = key.clone().unwrap_or_else(|| "observation".into());
        let (preprocess, obs_shape, out_dim) = preprocess_for(space, self.info.normalize_images, &what)?;
        self.push_branch(key, space, obs_shape, preprocess, vec![Op::Flatten], out_dim)
    }

    /// A NatureCNN under `prefix` on an image key, or on the whole observation (key None).
    fn cnn_branch(&mut self, prefix: &str, key: Option<String>, space: &Space) -> Result<usize> {
        let label = key.clone().unwrap_or_else(|| "observation".into());
        let (preprocess, obs_shape, _) = preprocess_for(space, self.info.normalize_images, &label)?;
        let mut ops = Vec::new();
        let out = nature_cnn(&mut self.p, prefix, &obs_shape, &mut ops);
        let out = if key.is_some() { out.map_err(within(format!("key '{label}'")))? } else { out? };
        self.push_branch(key, space, obs_shape, preprocess, ops, out)
    }

    fn push_branch(
        &mut self,
        key: Option<String>,
        space: &Space,
        obs_shape: Vec<usize>,
        preprocess: Preprocess,
        ops: Vec<Op>,
        out_dim: usize,
    ) -> Result<usize> {
        let len = space.input_len();
        self.branches.push(Branch {
            key,
            offset: self.offset,
            len,
            obs_shape,
            preprocess,
            ops,
            out_dim,
            normalize: None,
        });
        self.offset += len;
        Ok(out_dim)
    }

    /// The feature extractor: its name and the number of features it gives.
    fn extractor(&mut self, overrides: &ArchOverrides, act: Activation) -> Result<(String, usize)> {
        let fx = self.fx;
        let keyed = self.keyed.clone();
        let fe_class = self.info.features_extractor_class.clone().unwrap_or_default();
        if self.has(&format!("{fx}mlp.")) {
            let mut features = 0;
            for (key, space) in &keyed {
                features += self.flatten_branch(key.clone(), space)?;
            }
            let name = format!(
                "custom mlp extractor{}",
                if fe_class.is_empty() { String::new() } else { format!(" ({fe_class})") }
            );
            return Ok((name, self.custom_mlp(overrides, act, features)?));
        }
        if self.has(&format!("{fx}cnn.")) {
            let (key, space) = &keyed[0];
            if keyed.len() > 1 || key.is_some() {
                return Err(ArchError::Unsupported(
                    "NatureCNN parameters with a Dict observation space: expected a Box image space".into(),
                ));
            }
            return Ok(("NatureCNN".into(), self.cnn_branch(fx, None, space)?));
        }
        let dict = matches!(self.info.observation_space, Space::Dict(_));
        if self.has(&format!("{fx}extractors.")) || (dict && !self.has(fx)) {
            let mut features = 0;
            for (key, space) in &keyed {
                let prefix = format!("{fx}extractors.{}.", key.as_deref().unwrap_or_default());
                features += if self.has(&format!("{prefix}cnn.")) {
                    self.cnn_branch(&prefix, key.clone(), space)?
                } else {
                    self.flatten_branch(key.clone(), space)?
                };
            }
            return Ok(("CombinedExtractor".into(), features));
        }
        if !self.has(fx) {
            let (key, space) = &keyed[0];
            return Ok(("FlattenExtractor".into(), self.flatten_branch(key.clone(), space)?));
        }
        let names: Vec<&str> =
            self.p.params.iter().map(|x| x.name.as_str()).filter(|n| n.starts_with(fx)).take(8).collect();
        Err(ArchError::Unsupported(format!(
            "unrecognised feature extractor{} with parameters [{}]; saliency knows FlattenExtractor, NatureCNN \
             (features_extractor.cnn/linear), CombinedExtractor (features_extractor.extractors.<key>) and a custom \
             Sequential of Linear layers (features_extractor.mlp.<i>)",
            if fe_class.is_empty() { String::new() } else { format!(" {fe_class}") },
            names.join(", ")
        )))
    }

    /// The research project's custom extractor: Linear layers (`<fx>mlp.<i>`) on the
    /// concatenated keys, each followed by an activation the zip does not record.
    fn custom_mlp(&mut self, overrides: &ArchOverrides, act: Activation, features: usize) -> Result<usize> {
        let ext_act = overrides.extractor_activation.unwrap_or(act);
        if overrides.extractor_activation.is_none() {
            self.notes.push(format!(
                "the custom feature extractor's code is not in the zip: assuming Linear + {ext_act} after each \
                 `features_extractor.mlp` layer (state another with --extractor-activation)"
            ));
        }
        if self.keyed.len() > 1 {
            self.notes.push("custom mlp extractor: assuming the observation keys are concatenated in key order".into());
        }
        let prefix = format!("{}mlp.", self.fx);
        linear_stack(&mut self.p, &prefix, features, ext_act, true, &mut self.trunk, &mut Vec::new())
            .map_err(within("custom feature extractor"))
    }

    /// The head after the extractor: (outputs, name for the summary).
    fn head(&mut self, family: Family, head: Head, features: usize, act: Activation) -> Result<(usize, String)> {
        let n_actions = self.info.n_actions;
        let stack = |b: &mut Builder, prefix: &str, act_after_last: bool, dim: usize| {
            linear_stack(&mut b.p, prefix, dim, act, act_after_last, &mut b.trunk, &mut Vec::new())
                .map_err(within(prefix.trim_end_matches('.')))
        };
        match (family, head) {
            (Family::Dqn, _) => {
                let out = stack(self, "q_net.", false, features)?;
                if out != n_actions {
                    return shape_err(format!(
                        "q_net's last layer has {out} outputs, but the action space has {n_actions} actions"
                    ));
                }
                Ok((n_actions, "q_net".into()))
            }
            (Family::QrDqn, _) => {
                let out = stack(self, "quantile_net.", false, features)?;
                if out == 0 || out % n_actions != 0 {
                    return shape_err(format!(
                        "quantile_net's last layer has {out} outputs, not a multiple of the {n_actions} actions"
                    ));
                }
                let n_quantiles = out / n_actions;
                if let Some(n) = self.info.n_quantiles.filter(|&n| n != n_quantiles) {
                    return shape_err(format!(
                        "policy_kwargs says n_quantiles {n}, but quantile_net's last layer has {out} outputs for \
                         {n_actions} actions ({n_quantiles} quantiles)"
                    ));
                }
                self.trunk.push(Op::QuantileMean { n_quantiles, n_actions });
                Ok((n_actions, format!("quantile_net, mean of {n_quantiles} quantiles")))
            }
            (Family::ActorCritic { .. }, Head::Actor | Head::Q) => {
                let dim = match self.has("mlp_extractor.policy_net.") {
                    true => stack(self, "mlp_extractor.policy_net.", true, features)?,
                    false => features,
                };
                let out =
                    single_linear(&mut self.p, "action_net", dim, &mut self.trunk).map_err(within("action_net"))?;
                if out != n_actions {
                    return shape_err(format!(
                        "action_net has {out} outputs, but the action space has {n_actions} actions"
                    ));
                }
                Ok((n_actions, "policy: logits".into()))
            }
            (Family::ActorCritic { .. }, Head::Critic) => {
                let dim = match self.has("mlp_extractor.value_net.") {
                    true => stack(self, "mlp_extractor.value_net.", true, features)?,
                    false => features,
                };
                let out = single_linear(&mut self.p, "value_net", dim, &mut self.trunk).map_err(within("value_net"))?;
                if out != 1 {
                    return shape_err(format!("value_net has {out} outputs; a value function has one"));
                }
                Ok((1, "value".into()))
            }
        }
    }

    /// Every parameter must have found its layer.
    fn check_all_used(&self, extractor: &str) -> Result<()> {
        let unused: Vec<&str> = self
            .p
            .params
            .iter()
            .zip(&self.p.used)
            .filter(|(_, u)| !**u)
            .map(|(x, _)| x.name.as_str())
            .take(8)
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        shape_err(format!(
            "parameters that fit no known layer: [{}] (the extractor was read as {extractor})",
            unused.join(", ")
        ))
    }

    /// "[obs: ...] [extractor: ...] [q_net: ...]" (`head_start`: where the head's ops begin).
    fn summary(&self, head_start: usize, head_name: &str) -> String {
        let params = self.p.params;
        let mut summary = String::new();
        for b in &self.branches {
            if !b.ops.is_empty() && b.ops != [Op::Flatten] {
                summary.push_str(&format!(
                    "[{}: {}] ",
                    b.key.as_deref().unwrap_or("obs"),
                    describe_ops(&b.ops, params)
                ));
            }
        }
        if head_start > 0 {
            summary.push_str(&format!("[extractor: {}] ", describe_ops(&self.trunk[..head_start], params)));
        }
        summary.push_str(&format!("[{head_name}: {}]", describe_ops(&self.trunk[head_start..], params)));
        summary
    }
}

/// Works out the network of `head` for an agent of `family` from `params` (the head's own,
/// see `Family::select`). Errors say what was found and how to state what cannot be known.
pub fn infer(
    info: &AgentInfo,
    params: &[Param],
    overrides: &ArchOverrides,
    family: Family,
    head: Head,
) -> Result<Arch> {
    let act = activation_of(info, overrides, family)?;
    let mut b = Builder::new(info, params);
    let (extractor, features) = b.extractor(overrides, act)?;
    let head_start = b.trunk.len();
    let (outputs, head_name) = b.head(family, head, features, act)?;
    b.check_all_used(&extractor)?;
    let summary = format!("{} {extractor}, {act}: {}", family.name(), b.summary(head_start, &head_name));
    Ok(Arch {
        branches: b.branches,
        trunk: b.trunk,
        input_len: b.offset,
        n_actions: info.n_actions,
        outputs,
        summary,
        notes: b.notes,
    })
}
