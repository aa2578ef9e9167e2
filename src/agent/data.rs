//! SB3's `data` member: the settings the network needs, read from plain JSON and readable text
//! only (the base64 cloudpickle blobs are never unpickled).

use std::fmt;

use super::error::{AgentError, Result};
use base64::Engine;

use crate::json::{reader::read_value_from, Value};

/// Activation functions of `torch.nn` that SB3 agents use, with PyTorch's default arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    ReLU,
    Tanh,
    LeakyReLU,
    ELU,
    GELU,
    SiLU,
    Sigmoid,
    ReLU6,
    SELU,
    CELU,
    Softplus,
    Mish,
    Hardswish,
    Hardsigmoid,
    Hardtanh,
    Identity,
}

impl Activation {
    pub const ALL: [Activation; 16] = [
        Activation::ReLU,
        Activation::Tanh,
        Activation::LeakyReLU,
        Activation::ELU,
        Activation::GELU,
        Activation::SiLU,
        Activation::Sigmoid,
        Activation::ReLU6,
        Activation::SELU,
        Activation::CELU,
        Activation::Softplus,
        Activation::Mish,
        Activation::Hardswish,
        Activation::Hardsigmoid,
        Activation::Hardtanh,
        Activation::Identity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::ReLU => "ReLU",
            Activation::Tanh => "Tanh",
            Activation::LeakyReLU => "LeakyReLU",
            Activation::ELU => "ELU",
            Activation::GELU => "GELU",
            Activation::SiLU => "SiLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::ReLU6 => "ReLU6",
            Activation::SELU => "SELU",
            Activation::CELU => "CELU",
            Activation::Softplus => "Softplus",
            Activation::Mish => "Mish",
            Activation::Hardswish => "Hardswish",
            Activation::Hardsigmoid => "Hardsigmoid",
            Activation::Hardtanh => "Hardtanh",
            Activation::Identity => "Identity",
        }
    }

    /// From a class name (`Tanh`) or its text in `data` (`<class 'torch.nn.modules.activation.Tanh'>`),
    /// case-insensitively.
    pub fn parse(text: &str) -> Option<Activation> {
        let inner = text.trim().trim_start_matches("<class '").trim_end_matches("'>");
        let name = inner.rsplit('.').next().unwrap_or(inner);
        Activation::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    pub fn names() -> String {
        Activation::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An observation space, as far as the network's input is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Space {
    Box {
        shape: Vec<usize>,
        dtype: String,
        /// Bounds known to be 0 and 255 (unknown bounds of an elided repr count as image bounds).
        image_bounds: bool,
    },
    Discrete {
        n: usize,
    },
    MultiDiscrete {
        nvec: Vec<usize>,
    },
    MultiBinary {
        shape: Vec<usize>,
    },
    Dict(Vec<(String, Space)>),
}

impl Space {
    /// SB3's `is_image_space` (without the channel check): uint8, 3 dims, bounds 0..255.
    pub fn is_image(&self) -> bool {
        matches!(self, Space::Box { shape, dtype, image_bounds } if shape.len() == 3 && dtype == "uint8" && *image_bounds)
    }

    /// Values of one observation as `clean_inputs.json` lists them.
    pub fn input_len(&self) -> usize {
        match self {
            Space::Box { shape, .. } | Space::MultiBinary { shape } => shape.iter().product(),
            Space::Discrete { .. } => 1,
            Space::MultiDiscrete { nvec } => nvec.len(),
            Space::Dict(spaces) => spaces.iter().map(|(_, s)| s.input_len()).sum(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Space::Box { shape, dtype, .. } => format!("Box{shape:?} {dtype}"),
            Space::Discrete { n } => format!("Discrete({n})"),
            Space::MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
            Space::MultiBinary { shape } => format!("MultiBinary({shape:?})"),
            Space::Dict(spaces) => {
                let inner: Vec<String> = spaces.iter().map(|(k, s)| format!("'{k}': {}", s.describe())).collect();
                format!("Dict({{{}}})", inner.join(", "))
            }
        }
    }
}

/// What the network needs from `data`.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// `MlpPolicy` (SB3's `DQNPolicy`), `CnnPolicy`, `MultiInputPolicy`, or another class name.
    pub policy_class: String,
    /// `policy_class["__module__"]` (`stable_baselines3.dqn.policies`, ...): tells the algorithm.
    pub policy_module: String,
    /// The class name as written (`ActorCriticPolicy`, `QRDQNPolicy`, ...).
    pub policy_class_raw: String,
    /// `policy_kwargs["n_quantiles"]` (QR-DQN), when given.
    pub n_quantiles: Option<usize>,
    /// `policy_kwargs["share_features_extractor"]` (actor-critic), when given.
    pub share_features_extractor: Option<bool>,
    /// Top-level keys of `data` (what else the save says about the algorithm, e.g. PPO's
    /// `clip_range`).
    pub data_keys: Vec<String>,
    /// `policy_kwargs["activation_fn"]` as written, if any.
    pub activation_text: Option<String>,
    /// The activation, or None when the text names one we do not know.
    pub activation: Option<Activation>,
    pub normalize_images: bool,
    pub net_arch: Option<Vec<i64>>,
    pub features_extractor_class: Option<String>,
    pub observation_space: Space,
    pub n_actions: usize,
}

fn class_text(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.trim().trim_start_matches("<class '").trim_end_matches("'>").to_string())
}

/// The policy class name from `policy_class`: `__init__` text, else the cloudpickle bytes.
fn policy_class_name(pc: &Value) -> String {
    if let Some(init) = pc.get("__init__").and_then(Value::as_str) {
        // "<function CnnPolicy.__init__ at 0x...>"
        if let Some(rest) = init.strip_prefix("<function ") {
            if let Some(name) = rest.split(".__init__").next() {
                if !name.is_empty() {
                    return normalize_policy(name);
                }
            }
        }
    }
    if let Some(blob) = pc.get(":serialized:").and_then(Value::as_str) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(blob.trim()) {
            for name in ["MultiInputPolicy", "CnnPolicy", "MlpPolicy", "DQNPolicy"] {
                if bytes.windows(name.len()).any(|w| w == name.as_bytes()) {
                    return normalize_policy(name);
                }
            }
        }
    }
    "unknown".to_string()
}

fn normalize_policy(name: &str) -> String {
    if name == "DQNPolicy" {
        "MlpPolicy".to_string()
    } else {
        name.to_string()
    }
}

/// Numbers in numpy's print text (`[-4.8  -inf 0.4]`, `0`, `[[[0 0 ... 0]]]`); `...` is skipped.
fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ','))
        .filter(|t| !t.is_empty() && *t != "...")
        .filter_map(|t| t.parse::<f64>().ok())
        .collect()
}

fn parse_usize_list(text: &str) -> Option<Vec<usize>> {
    let nums = numbers_in(text);
    nums.iter().map(|&x| if x >= 0.0 && x.fract() == 0.0 && x < 1e12 { Some(x as usize) } else { None }).collect()
}

fn shape_of(v: Option<&Value>) -> Option<Vec<usize>> {
    v?.as_array()?.iter().map(|x| x.as_i64().filter(|&i| i >= 0).map(|i| i as usize)).collect()
}

fn bounds_ok(low: Option<&str>, high: Option<&str>) -> bool {
    let low_ok = low.map(|t| numbers_in(t).iter().all(|&x| x == 0.0)).unwrap_or(true);
    let high_ok = high.map(|t| numbers_in(t).iter().all(|&x| x == 255.0)).unwrap_or(true);
    low_ok && high_ok
}

/// A space from its JSON entry in `data`.
fn space_from_json(v: &Value, what: &str) -> Result<Space> {
    let ty = v.get(":type:").and_then(Value::as_str).unwrap_or("");
    let class = ty.trim_start_matches("<class '").trim_end_matches("'>");
    let class = class.rsplit('.').next().unwrap_or(class);
    match class {
        "Box" => {
            let shape = shape_of(v.get("_shape"))
                .ok_or_else(|| AgentError::Data(format!("{what}: Box without a readable '_shape'")))?;
            let dtype = v.get("dtype").and_then(Value::as_str).unwrap_or("float32").to_string();
            let low = v.get("low_repr").and_then(Value::as_str).or_else(|| v.get("low").and_then(Value::as_str));
            let high = v.get("high_repr").and_then(Value::as_str).or_else(|| v.get("high").and_then(Value::as_str));
            Ok(Space::Box { shape, dtype, image_bounds: bounds_ok(low, high) })
        }
        "Discrete" => {
            let n = v
                .get("n")
                .and_then(|n| {
                    n.as_str().and_then(|s| s.trim().parse::<usize>().ok()).or(n.as_i64().map(|i| i as usize))
                })
                .ok_or_else(|| AgentError::Data(format!("{what}: Discrete without a readable 'n'")))?;
            Ok(Space::Discrete { n })
        }
        "MultiDiscrete" => {
            let nvec = v
                .get("nvec")
                .and_then(|n| n.as_str().and_then(parse_usize_list))
                .ok_or_else(|| AgentError::Data(format!("{what}: MultiDiscrete without a readable 'nvec'")))?;
            Ok(Space::MultiDiscrete { nvec })
        }
        "MultiBinary" => {
            let shape = shape_of(v.get("_shape"))
                .or_else(|| v.get("n").and_then(|n| n.as_str().and_then(parse_usize_list)))
                .ok_or_else(|| AgentError::Data(format!("{what}: MultiBinary without a readable shape")))?;
            Ok(Space::MultiBinary { shape })
        }
        "Dict" => {
            let text = v
                .get("spaces")
                .and_then(Value::as_str)
                .ok_or_else(|| AgentError::Data(format!("{what}: Dict without a readable 'spaces' text")))?;
            let spaces = parse_dict_repr(text)
                .map_err(|e| AgentError::Data(format!("{what}: cannot read Dict spaces {text:?}: {e}")))?;
            Ok(Space::Dict(spaces))
        }
        "" => Err(AgentError::Data(format!("{what}: no ':type:'"))),
        other => Err(AgentError::Data(format!(
            "{what}: unsupported space type '{other}' (supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict)"
        ))),
    }
}

/// Splits `text` at top-level commas (outside brackets, parens, braces and quotes).
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

/// A sub-space from Python's repr: `Box(0, 255, (3, 64, 64), uint8)`, `Discrete(5)`,
/// `MultiDiscrete([3 4])`, `MultiBinary(4)`, `Dict('a': ..., ...)`.
fn parse_space_repr(text: &str) -> std::result::Result<Space, String> {
    let text = text.trim();
    let open = text.find('(').ok_or("no '('")?;
    if !text.ends_with(')') {
        return Err("no closing ')'".into());
    }
    let name = &text[..open];
    let args = split_top(&text[open + 1..text.len() - 1]);
    match name {
        "Box" => {
            if args.len() < 4 {
                return Err(format!("Box with {} arguments", args.len()));
            }
            let shape_text = args[2].trim_start_matches('(').trim_end_matches(')');
            let shape = shape_text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape '{}'", args[2])))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Space::Box { shape, dtype: args[3].to_string(), image_bounds: bounds_ok(Some(args[0]), Some(args[1])) })
        }
        "Discrete" => {
            let n = args.first().and_then(|a| a.parse::<usize>().ok()).ok_or("Discrete without n")?;
            Ok(Space::Discrete { n })
        }
        "MultiDiscrete" => {
            let nvec = args.first().and_then(|a| parse_usize_list(a)).ok_or("MultiDiscrete without nvec")?;
            Ok(Space::MultiDiscrete { nvec })
        }
        "MultiBinary" => {
            let shape = args.first().and_then(|a| parse_usize_list(a)).ok_or("MultiBinary without n")?;
            Ok(Space::MultiBinary { shape })
        }
        "Dict" => {
            let inner = &text[open + 1..text.len() - 1];
            Ok(Space::Dict(parse_dict_items(inner)?))
        }
        other => Err(format!("unsupported space '{other}'")),
    }
}

fn parse_dict_items(inner: &str) -> std::result::Result<Vec<(String, Space)>, String> {
    let mut out = Vec::new();
    for item in split_top(inner) {
        let (key, space) = item.split_once(':').ok_or_else(|| format!("no ':' in '{item}'"))?;
        let key = key.trim();
        let key = key
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            .ok_or_else(|| format!("key {key} is not quoted"))?;
        out.push((key.to_string(), parse_space_repr(space)?));
    }
    Ok(out)
}

/// `{'MLP_input': Box(-inf, inf, (106,), float32)}`
pub fn parse_dict_repr(text: &str) -> std::result::Result<Vec<(String, Space)>, String> {
    let t = text.trim();
    let inner = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).ok_or("not a {...} dict text")?;
    let items = parse_dict_items(inner)?;
    if items.is_empty() {
        return Err("empty Dict space".into());
    }
    Ok(items)
}

/// Reads `data` (the JSON member of `agent.zip`).
pub fn parse_agent_data(bytes: &[u8], what: &str) -> Result<AgentInfo> {
    let data = read_value_from(bytes, what)?;
    if data.as_object().is_none() {
        return Err(AgentError::Data(format!("{what}: expected a JSON object, found {}", data.type_name())));
    }
    let policy_class = data.get("policy_class").map(policy_class_name).unwrap_or_else(|| "unknown".into());
    let policy_module =
        data.get("policy_class").and_then(|pc| pc.get("__module__")).and_then(Value::as_str).unwrap_or("").to_string();
    let policy_class_raw = data
        .get("policy_class")
        .and_then(|pc| pc.get("__init__"))
        .and_then(Value::as_str)
        .and_then(|t| t.strip_prefix("<function "))
        .and_then(|t| t.split(".__init__").next())
        .unwrap_or("")
        .to_string();
    let data_keys = data.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let kwargs = data.get("policy_kwargs");
    let kw = |k: &str| kwargs.and_then(|v| v.get(k));
    let activation_text = kw("activation_fn").and_then(Value::as_str).map(str::to_string);
    let activation = match &activation_text {
        Some(t) => Activation::parse(t),
        None => Some(Activation::ReLU),
    };
    let normalize_images = kw("normalize_images").and_then(Value::as_bool).unwrap_or(true);
    let n_quantiles = kw("n_quantiles").and_then(Value::as_i64).filter(|&n| n > 0).map(|n| n as usize);
    let share_features_extractor = kw("share_features_extractor").and_then(Value::as_bool);
    let net_arch = kw("net_arch").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_i64).collect());
    let features_extractor_class = kw("features_extractor_class").and_then(class_text);
    let obs =
        data.get("observation_space").ok_or_else(|| AgentError::Data(format!("{what}: no 'observation_space'")))?;
    let observation_space = space_from_json(obs, &format!("{what}: observation_space"))?;
    let act = data.get("action_space").ok_or_else(|| AgentError::Data(format!("{what}: no 'action_space'")))?;
    let n_actions = match space_from_json(act, &format!("{what}: action_space"))? {
        Space::Discrete { n } if n > 0 => n,
        other => {
            return Err(AgentError::Data(format!(
                "{what}: action_space is {}; saliency supports Discrete action spaces (DQN, QR-DQN, PPO, A2C, \
                 MaskablePPO), not continuous or multi-discrete actions",
                other.describe()
            )))
        }
    };
    Ok(AgentInfo {
        policy_class,
        policy_module,
        policy_class_raw,
        n_quantiles,
        share_features_extractor,
        data_keys,
        activation_text,
        activation,
        normalize_images,
        net_arch,
        features_extractor_class,
        observation_space,
        n_actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_space_reprs() {
        let s = parse_dict_repr("{'MLP_input': Box(-inf, inf, (106,), float32)}").unwrap();
        assert_eq!(s[0].0, "MLP_input");
        assert_eq!(s[0].1, Space::Box { shape: vec![106], dtype: "float32".into(), image_bounds: false });
        let s = parse_dict_repr(
            "{'image': Box(0, 255, (3, 64, 64), uint8), 'vec': Box(-1.0, 1.0, (8,), float32), 'd': Discrete(5), 'm': MultiDiscrete([3 4])}",
        )
        .unwrap();
        assert!(s[0].1.is_image());
        assert_eq!(s[2].1, Space::Discrete { n: 5 });
        assert_eq!(s[3].1, Space::MultiDiscrete { nvec: vec![3, 4] });
        assert!(parse_dict_repr("{'a': Foo(1)}").is_err());
        assert!(parse_dict_repr("nonsense").is_err());
    }

    #[test]
    fn activation_names() {
        assert_eq!(Activation::parse("<class 'torch.nn.modules.activation.Tanh'>"), Some(Activation::Tanh));
        assert_eq!(Activation::parse("leakyrelu"), Some(Activation::LeakyReLU));
        assert_eq!(Activation::parse("<class 'my.Custom'>"), None);
    }
}
