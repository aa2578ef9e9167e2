//! Does the selection matter? Change the selected weights, run the clean inputs through the
//! changed network, and compare with the same number of weights chosen at random
//! (docs/ablation.md). Batched: one forward pass per changed network and batch of inputs.

pub mod draw;
pub mod report;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Kind, Tensor};

use crate::agent::Agent;
use crate::json::pyfloat;
use crate::model::{ElementChange, ModelError, Net, Signals};
use crate::pipeline::inputs::InputReader;
use crate::pipeline::{PipelineError, Progress};
use crate::target::{greedy, kl_softmax, Target};

/// Default number of random draws, and the most accepted without `--max-random`.
pub const DEFAULT_DRAWS: usize = 20;
pub const MAX_DRAWS: usize = 10_000;

/// Why a mode or a selection cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}")]
    Mode(String),
    #[error("{what}: weight_targets[{i}]: layer_name \"{name}\" is not a parameter of this agent (it has {known})")]
    UnknownLayer { what: String, i: usize, name: String, known: String },
    #[error("{0}")]
    OutOfRange(Box<OutOfRange>),
}

/// A selected element outside its parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what}: weight_targets[{i}]: {field} {index} is out of range for {name} (shape {shape:?}: {range})")]
pub struct OutOfRange {
    pub what: String,
    pub i: usize,
    pub field: &'static str,
    pub index: i64,
    pub name: String,
    pub shape: Vec<usize>,
    pub range: String,
}

/// How the selected weights are changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Set to 0.
    Zero,
    /// Multiplied by F (in float32, as `w[idx] *= F` in PyTorch).
    Scale(f64),
}

impl Mode {
    /// `zero` or `scale:F` (F a finite number).
    pub fn parse(text: &str) -> Result<Mode, ChangeError> {
        let t = text.trim();
        let bad = |m: String| Err(ChangeError::Mode(m));
        if t.eq_ignore_ascii_case("zero") {
            return Ok(Mode::Zero);
        }
        if let Some(f) = t.strip_prefix("scale:") {
            return match f.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Mode::Scale(v)),
                Ok(v) => bad(format!("mode '{text}': the factor must be a finite number, found {v}")),
                Err(_) if f.trim().is_empty() => bad(format!("mode '{text}': scale needs a factor, e.g. scale:0.5")),
                Err(_) => bad(format!("mode '{text}': '{f}' is not a number (e.g. scale:0.5)")),
            };
        }
        bad(format!("unknown mode '{text}': expected zero or scale:F (e.g. scale:0.5)"))
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Zero => f.write_str("zero"),
            Mode::Scale(v) => write!(f, "scale:{}", pyfloat::to_string(*v)),
        }
    }
}

/// The elements to change: per parameter (index into the agent's parameters, ascending), its
/// flat element indices, sorted and distinct.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub per_param: Vec<(usize, Vec<usize>)>,
}

/// One `weight_targets` entry, as named in a candidate file.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedWeight {
    pub layer_name: String,
    pub neuron_index: i64,
    pub weight_index: i64,
}

impl Change {
    /// The elements a selection names. A 2-D (or conv) weight's element is
    /// `[neuron_index, weight_index]` of its rows (conv rows are the flattened kernels); a 1-D
    /// parameter's is `weight_index` with neuron 0. An element named twice is changed once.
    /// A name or index the agent lacks is an error that names it (`what` says where).
    pub fn from_named(params: &[(&str, &[usize])], named: &[NamedWeight], what: &str) -> Result<Change, ChangeError> {
        let mut map: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, t) in named.iter().enumerate() {
            let Some(p) = params.iter().position(|(name, _)| *name == t.layer_name) else {
                let names: Vec<&str> = params.iter().map(|(name, _)| *name).take(12).collect();
                return Err(ChangeError::UnknownLayer {
                    what: what.to_string(),
                    i,
                    name: t.layer_name.clone(),
                    known: names.join(", "),
                });
            };
            let shape = params[p].1.to_vec();
            let (rows, cols) = match shape.len() {
                0 => (1, 1),
                1 => (1, shape[0]),
                _ => (shape[0], shape[1..].iter().product()),
            };
            let out_of_range = |field, index, range| {
                ChangeError::OutOfRange(Box::new(OutOfRange {
                    what: what.to_string(),
                    i,
                    field,
                    index,
                    name: t.layer_name.clone(),
                    shape: shape.clone(),
                    range,
                }))
            };
            if t.neuron_index < 0 || t.neuron_index as usize >= rows {
                return Err(out_of_range("neuron_index", t.neuron_index, format!("0..{rows}")));
            }
            if t.weight_index < 0 || t.weight_index as usize >= cols {
                return Err(out_of_range("weight_index", t.weight_index, format!("rows of {cols} weights")));
            }
            map.entry(p).or_default().push(t.neuron_index as usize * cols + t.weight_index as usize);
        }
        let per_param = map
            .into_iter()
            .map(|(p, mut v)| {
                v.sort_unstable();
                v.dedup();
                (p, v)
            })
            .collect();
        Ok(Change { per_param })
    }

    /// Number of distinct elements changed.
    pub fn len(&self) -> usize {
        self.per_param.iter().map(|(_, v)| v.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (parameter, count, numel) per changed parameter: what a random draw must match.
    pub fn counts(&self, agent: &Agent) -> Vec<(usize, usize, usize)> {
        self.per_param.iter().map(|(p, v)| (*p, v.len(), agent.params[*p].numel())).collect()
    }

    /// Random draw `r` of `seed` with the same counts per parameter.
    pub fn random_like(&self, agent: &Agent, seed: u64, r: u64) -> Change {
        Change { per_param: draw::draw(seed, r, &self.counts(agent)) }
    }

    /// Only the elements of one neuron (row) of one parameter.
    pub fn row(&self, param: usize, row: usize, cols: usize) -> Change {
        let per_param = self
            .per_param
            .iter()
            .filter(|(p, _)| *p == param)
            .map(|(p, v)| (*p, v.iter().copied().filter(|&e| e / cols == row).collect::<Vec<_>>()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Change { per_param }
    }
}

/// The network's weights with a change applied, and the change as float64 tensors
/// (w - w', zero but at the changed elements) for the first-order estimate.
pub struct Modified {
    pub weights: Vec<Tensor>,
    pub delta: Vec<(usize, Tensor)>,
}

pub fn apply(net: &Net, change: &Change, mode: Mode) -> Result<Modified, ModelError> {
    let _guard = tch::no_grad_guard();
    let mut weights: Vec<Tensor> = net.weights().iter().map(Tensor::shallow_clone).collect();
    let mut delta = Vec::new();
    for (p, idx) in &change.per_param {
        let w = &net.weights()[*p];
        let shape = w.size();
        let original = w.f_reshape([-1])?;
        let mut flat = original.f_zeros_like()?;
        flat.f_copy_(&original)?;
        let index = Tensor::f_from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>())?.f_to(w.device())?;
        match mode {
            Mode::Zero => {
                let _ = flat.f_index_fill_(0, &index, 0.0)?;
            }
            Mode::Scale(f) => {
                let scaled = flat.f_index_select(0, &index)?.f_mul_scalar(f)?.f_totype(Kind::Float)?;
                let _ = flat.f_index_copy_(0, &index, &scaled)?;
            }
        }
        let changed = flat.f_reshape(&shape)?;
        delta.push((*p, w.f_totype(Kind::Double)?.f_sub(&changed.f_totype(Kind::Double)?)?));
        weights[*p] = changed;
    }
    Ok(Modified { weights, delta })
}

/// What a change does to one input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputEffect {
    pub action: usize,
    pub ablated_action: usize,
    /// T(w) - T(w'), with the greedy action fixed to the original one.
    pub target_drop: f64,
    /// KL(softmax(out) || softmax(out')), float64.
    pub kl: f64,
    /// Sum over the changed elements of (d T / d w) * (w - w'): the first-order estimate.
    pub predicted_drop: f64,
}

/// Running sums over inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub n: usize,
    pub flips: usize,
    pub target_drop: f64,
    pub kl: f64,
    pub predicted_drop: f64,
}

impl Sums {
    pub fn add(&mut self, e: &InputEffect) {
        self.n += 1;
        self.flips += usize::from(e.ablated_action != e.action);
        self.target_drop += e.target_drop;
        self.kl += e.kl;
        self.predicted_drop += e.predicted_drop;
    }

    pub fn aggregates(&self) -> Aggregates {
        let n = self.n.max(1) as f64;
        Aggregates {
            flip_rate: self.flips as f64 / n,
            mean_target_drop: self.target_drop / n,
            mean_kl: self.kl / n,
            mean_predicted_drop: self.predicted_drop / n,
        }
    }
}

/// Means over the inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregates {
    pub flip_rate: f64,
    pub mean_target_drop: f64,
    pub mean_kl: f64,
    pub mean_predicted_drop: f64,
}

/// The effect of a change on a batch whose signals (at the original weights, for `target`)
/// are `sig`. With `predicted`, also the first-order estimate (one linear map per changed
/// layer; skipped for the random draws).
pub fn effects(
    net: &Net,
    x: &Tensor,
    sig: &Signals,
    modified: &Modified,
    target: Target,
    predicted: bool,
) -> Result<Vec<InputEffect>, ModelError> {
    let out2 = net.outputs_with(&modified.weights, x)?;
    let a_n = net.n_outputs();
    let pred = if predicted { predicted_drops(net, sig, modified)? } else { vec![0.0; sig.n] };
    // On a critic (`value`) the actions and the KL are the policy's, which changes only
    // through the parameters it shares with the critic (a shared feature extractor).
    let policy = sig.policy_out.as_ref().zip(net.actor_outputs_with(&modified.weights, x)?);
    Ok((0..sig.n)
        .map(|n| {
            let (o, o2) = (&sig.out[n * a_n..(n + 1) * a_n], &out2[n * a_n..(n + 1) * a_n]);
            let a = sig.actions[n];
            let (p, p2) = match &policy {
                Some((p, (p2, k))) => (&p[n * k..(n + 1) * k], &p2[n * k..(n + 1) * k]),
                None => (o, o2),
            };
            InputEffect {
                action: a,
                ablated_action: greedy(p2),
                target_drop: target.value(o, a) - target.value(o2, a),
                kl: kl_softmax(p, p2),
                predicted_drop: pred[n],
            }
        })
        .collect())
}

/// Per input, sum over the changed elements of g * (w - w'), computed in float64 without
/// forming per-input gradients: for a layer with input a and signal d, the sum over a weight
/// change D is <d, a D^T> (Linear) or <d, conv(a, D)> (Conv), and over a bias change <d, D>.
fn predicted_drops(net: &Net, sig: &Signals, modified: &Modified) -> Result<Vec<f64>, ModelError> {
    let _guard = tch::no_grad_guard();
    let sum = |t: Tensor, dims: &[i64]| t.f_sum_dim_intlist(dims, false, Kind::Double);
    let mut total = Tensor::f_zeros([sig.n as i64], (Kind::Double, net.device))?;
    for (p, delta) in &modified.delta {
        let src = net.sources[*p];
        let layer = net.layers[src.layer];
        let (a, d) = &sig.layers[src.layer];
        let d = d.f_totype(Kind::Double)?;
        let per_input = match (src.bias, layer.conv_stride) {
            (true, None) => sum(d.f_mul(&delta.f_unsqueeze(0)?)?, &[1])?,
            (true, Some(_)) => sum(sum(d, &[2, 3])?.f_mul(&delta.f_unsqueeze(0)?)?, &[1])?,
            (false, None) => sum(a.f_totype(Kind::Double)?.f_matmul(&delta.f_transpose(0, 1)?)?.f_mul(&d)?, &[1])?,
            (false, Some(stride)) => {
                let s = stride as i64;
                let z = a.f_totype(Kind::Double)?.f_conv2d::<Tensor>(delta, None, [s, s], [0, 0], [1, 1], 1)?;
                sum(z.f_mul(&d)?, &[1, 2, 3])?
            }
        };
        total = total.f_add(&per_input)?;
    }
    let total = total.f_to(tch::Device::Cpu)?.f_contiguous()?;
    let mut v = vec![0f64; sig.n];
    total.f_copy_data(&mut v, sig.n)?;
    Ok(v)
}

/// What changing one element alone does, summed over inputs: |T(w) - T(w')| (the greedy
/// action kept fixed, as for every ablation) and the inputs whose greedy action changes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DamageSums {
    pub n: usize,
    pub abs_drop: f64,
    pub flips: usize,
}

impl DamageSums {
    /// The mean |target drop| over the inputs.
    pub fn damage(&self) -> f64 {
        self.abs_drop / self.n.max(1) as f64
    }

    pub fn flip_rate(&self) -> f64 {
        self.flips as f64 / self.n.max(1) as f64
    }
}

/// Rows (changes x inputs) of one batched pass of single changes, at most.
const SINGLE_ROWS: usize = 1 << 14;
/// Float32 values of the changed layer's repeated output in one pass, at most (64 MB).
const SINGLE_VALUES: usize = 1 << 24;

impl Mode {
    /// The change of a weight whose value is `w`: w - w', with w' computed as the ablation
    /// computes it (float32).
    pub fn delta(self, w: f64) -> f64 {
        match self {
            Mode::Zero => w,
            Mode::Scale(f) => w - f64::from(w as f32 * f as f32),
        }
    }
}

/// Each element of `elements` (parameter, flat index) changed alone on the batch (its inputs
/// and their signals at the original weights), added to its sums. Elements of one layer share
/// forward passes: the layers before theirs run once, and each pass carries many elements'
/// networks side by side (`Net::outputs_with_single_changes`). After each pass, `progress` gets
/// how many elements are done. False when cancelled.
#[allow(clippy::too_many_arguments)]
pub fn single_damages(
    net: &Net,
    batch: &Prepared,
    elements: &[(usize, usize)],
    mode: Mode,
    target: Target,
    sums: &mut [DamageSums],
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize),
) -> Result<bool, ModelError> {
    let b = batch.sig.n;
    if b == 0 {
        return Ok(true);
    }
    let mut order: Vec<usize> = (0..elements.len()).collect();
    let mut done = 0;
    order.sort_by_key(|&k| net.sources[elements[k].0].layer);
    for layer in order.chunk_by(|&x, &y| net.sources[elements[x].0].layer == net.sources[elements[y].0].layer) {
        let per_row = single_output_values(batch, net.sources[elements[layer[0]].0].layer);
        let group = (SINGLE_ROWS / b).min(SINGLE_VALUES / (b * per_row).max(1)).max(1);
        for part in layer.chunks(group) {
            if cancel() {
                return Ok(false);
            }
            let changes = part
                .iter()
                .map(|&k| {
                    let (param, index) = elements[k];
                    Ok(ElementChange { param, index, delta: mode.delta(net.element(param, index)?) })
                })
                .collect::<Result<Vec<_>, ModelError>>()?;
            let out = net.outputs_with_single_changes(&batch.x, &changes)?;
            let policy = net.actor_outputs_with_single_changes(&batch.x, &changes)?;
            for (g, &k) in part.iter().enumerate() {
                add_single_damage(&batch.sig, target, &out, policy.as_ref(), g, &mut sums[k]);
            }
            done += part.len();
            progress(done);
        }
    }
    Ok(true)
}

/// Values per input of a parameterised layer's output (its signal has the output's shape).
fn single_output_values(batch: &Prepared, layer: usize) -> usize {
    batch.sig.layers.get(layer).map_or(1, |(_, d)| d.numel() / batch.sig.n.max(1))
}

/// Change `g`'s damage on each input (its rows of `out`, and of the policy's outputs when they
/// change too), added to `sums`.
fn add_single_damage(
    sig: &Signals,
    target: Target,
    out: &[f32],
    policy: Option<&(Vec<f32>, usize)>,
    g: usize,
    s: &mut DamageSums,
) {
    let b = sig.n;
    let a_n = sig.out.len() / b;
    for n in 0..b {
        let (o, o2) = (&sig.out[n * a_n..(n + 1) * a_n], &out[(g * b + n) * a_n..(g * b + n + 1) * a_n]);
        let a = sig.actions[n];
        let ablated = match (policy, &sig.policy_out) {
            (Some((p2, k)), _) => greedy(&p2[(g * b + n) * k..(g * b + n + 1) * k]),
            (None, Some(_)) => a, // the policy does not change: neither does its action
            (None, None) => greedy(o2),
        };
        s.n += 1;
        s.abs_drop += (target.value(o, a) - target.value(o2, a)).abs();
        s.flips += usize::from(ablated != a);
    }
}

/// Mean, standard deviation (population), min and max of a measure over the random draws, and
/// the selection's percentile among them (share of draws below it, ties counting half).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub percentile: f64,
}

impl Stat {
    pub fn of(draws: &[f64], selection: f64) -> Stat {
        let n = draws.len().max(1) as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let var = draws.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let below = draws.iter().filter(|&&v| v < selection).count() as f64;
        let ties = draws.iter().filter(|&&v| v == selection).count() as f64;
        Stat {
            mean,
            std: var.sqrt(),
            min: draws.iter().copied().fold(f64::INFINITY, f64::min),
            max: draws.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            percentile: (below + 0.5 * ties) / n,
        }
    }
}

/// The random baseline: per measure, its statistics over the draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub flip_rate: Stat,
    pub mean_target_drop: Stat,
    pub mean_kl: Stat,
}

impl Baseline {
    pub fn of(draws: &[Aggregates], selection: &Aggregates) -> Baseline {
        let col = |f: fn(&Aggregates) -> f64| draws.iter().map(f).collect::<Vec<_>>();
        Baseline {
            flip_rate: Stat::of(&col(|a| a.flip_rate), selection.flip_rate),
            mean_target_drop: Stat::of(&col(|a| a.mean_target_drop), selection.mean_target_drop),
            mean_kl: Stat::of(&col(|a| a.mean_kl), selection.mean_kl),
        }
    }
}

/// What `saliency ablate` computes.
#[derive(Debug, Clone)]
pub struct Report {
    pub agent: String,
    pub num_weights: usize,
    pub mode: Mode,
    pub target: Target,
    pub random_draws: usize,
    pub seed: u64,
    pub selection: Aggregates,
    pub random: Option<Baseline>,
    pub per_input: Vec<(String, InputEffect)>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub target: Target,
    pub random: usize,
    pub seed: u64,
    /// Inputs per batch; None picks one from the network's size.
    pub batch_size: Option<usize>,
}

/// The whole ablation over an inputs file, streamed in batches: per batch, one backward pass
/// at the original weights and one forward pass per changed network (the selection and each
/// random draw).
pub fn run(
    agent: &Agent,
    net: &Net,
    inputs: &Path,
    change: &Change,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Report, PipelineError> {
    let file_size = std::fs::metadata(inputs).map(|m| m.len()).unwrap_or(0);
    let mut reader = InputReader::open(inputs, &agent.arch)?;
    let batch = opts.batch_size.unwrap_or_else(|| crate::pipeline::batch_size_for(net, agent)).max(1);
    let draws: Vec<Change> = (0..opts.random).map(|r| change.random_like(agent, opts.seed, r as u64)).collect();
    let start = std::time::Instant::now();
    let mut per_input = Vec::new();
    let mut sel = Sums::default();
    let mut rand = vec![Sums::default(); opts.random];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(PipelineError::Cancelled);
        }
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        let n = reader.next_batch(batch, &mut ids, &mut values)?;
        if n == 0 {
            break;
        }
        let x = net.input_tensor(&values, n)?;
        let sig = net.signals(&x, opts.target)?;
        let effects_sel = effects(net, &x, &sig, &apply(net, change, opts.mode)?, opts.target, true)?;
        for (id, e) in ids.into_iter().zip(effects_sel) {
            sel.add(&e);
            per_input.push((id, e));
        }
        for (d, sums) in draws.iter().zip(&mut rand) {
            if cancel.load(Ordering::Relaxed) {
                return Err(PipelineError::Cancelled);
            }
            for e in effects(net, &x, &sig, &apply(net, d, opts.mode)?, opts.target, false)? {
                sums.add(&e);
            }
        }
        let done = per_input.len();
        let total = if reader.finished() || reader.offset() == 0 {
            done
        } else {
            ((done as f64 * file_size as f64 / reader.offset() as f64).round() as usize).max(done)
        };
        progress(Progress { done, total, total_exact: reader.finished(), elapsed_s: start.elapsed().as_secs_f64() });
    }
    if per_input.is_empty() {
        return Err(PipelineError::NoInputs(inputs.to_path_buf()));
    }
    let selection = sel.aggregates();
    let random = (opts.random > 0).then(|| {
        let aggs: Vec<Aggregates> = rand.iter().map(Sums::aggregates).collect();
        Baseline::of(&aggs, &selection)
    });
    Ok(Report {
        agent: agent.zip_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        num_weights: change.len(),
        mode: opts.mode,
        target: opts.target,
        random_draws: opts.random,
        seed: opts.seed,
        selection,
        random,
        per_input,
    })
}

/// Ablation on inputs already in memory (the explorer's evidence line): the selection and
/// `random` draws, aggregates only.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub selection: Aggregates,
    pub random: Option<Baseline>,
    pub num_weights: usize,
    pub inputs: usize,
}

/// The inputs, their signals at the original weights, kept for repeated evidence requests.
pub struct Prepared {
    pub x: Tensor,
    pub sig: Signals,
}

pub fn prepare(net: &Net, values: &[f32], n: usize, target: Target) -> Result<Prepared, ModelError> {
    let x = net.input_tensor(values, n)?;
    let sig = net.signals(&x, target)?;
    Ok(Prepared { x, sig })
}

pub fn evidence(
    agent: &Agent,
    net: &Net,
    prepared: &Prepared,
    change: &Change,
    opts: &Options,
    cancel: &dyn Fn() -> bool,
) -> Result<Option<Evidence>, ModelError> {
    let mut sums = Sums::default();
    for e in effects(net, &prepared.x, &prepared.sig, &apply(net, change, opts.mode)?, opts.target, true)? {
        sums.add(&e);
    }
    let selection = sums.aggregates();
    let mut draws = Vec::with_capacity(opts.random);
    for r in 0..opts.random {
        if cancel() {
            return Ok(None);
        }
        let d = change.random_like(agent, opts.seed, r as u64);
        let mut s = Sums::default();
        for e in effects(net, &prepared.x, &prepared.sig, &apply(net, &d, opts.mode)?, opts.target, false)? {
            s.add(&e);
        }
        draws.push(s.aggregates());
    }
    let random = (opts.random > 0).then(|| Baseline::of(&draws, &selection));
    Ok(Some(Evidence { selection, random, num_weights: change.len(), inputs: prepared.sig.n }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_with_clear_errors() {
        assert_eq!(Mode::parse("zero"), Ok(Mode::Zero));
        assert_eq!(Mode::parse("scale:0.5"), Ok(Mode::Scale(0.5)));
        assert_eq!(Mode::Scale(0.5).to_string(), "scale:0.5");
        assert_eq!(Mode::Scale(2.0).to_string(), "scale:2.0");
        assert!(Mode::parse("scale:").unwrap_err().to_string().contains("needs a factor"));
        assert!(Mode::parse("scale:nan").unwrap_err().to_string().contains("finite"));
        assert!(Mode::parse("scale:x").unwrap_err().to_string().contains("not a number"));
        assert!(Mode::parse("half").unwrap_err().to_string().contains("expected zero or scale:F"));
    }

    #[test]
    fn percentile_counts_ties_half() {
        let s = Stat::of(&[1.0, 2.0, 2.0, 3.0], 2.0);
        assert_eq!(s.percentile, 0.5);
        assert_eq!((s.mean, s.min, s.max), (2.0, 1.0, 3.0));
        assert!((s.std - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(Stat::of(&[1.0, 2.0], 5.0).percentile, 1.0);
    }
}
