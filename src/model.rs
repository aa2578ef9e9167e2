//! The agent's network in libtorch (a Q-network, quantile network, policy or critic), and
//! per-input gradients for a whole batch at once. Every libtorch call is the fallible one: a
//! device or shape error is a `ModelError`, never a panic.
//!
//! One batched forward pass records every parameterised layer's input `a` and output `z`;
//! one backward pass of `sum_n q[n, a*_n]` gives `d = dq[a*]/dz` per input (rows of a batch
//! are independent). The per-input parameter gradients follow without a backward pass per
//! input: for a Linear layer, weight = outer(d, a) and bias = d; for a Conv layer,
//! weight = d (O x L) @ unfold(a) (L x C*k*k) and bias = sum over positions of d.

use tch::{Device, Kind, Tensor};

use crate::agent::arch::{Op, Preprocess};
use crate::agent::{Activation, Agent};
use crate::target::{greedy, Target};

mod single;
pub use single::ElementChange;

/// What can go wrong choosing a device or running the network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown device '{0}': expected cpu, cuda or cuda:N")]
    UnknownDevice(String),
    #[error(
        "device '{0}' requested, but CUDA is not available (no GPU, or saliency was built without the `cuda` \
         feature: see docs/install.md, 'GPU')"
    )]
    NoCuda(String),
    #[error("device '{text}' requested, but only {count} CUDA device(s) exist")]
    NoSuchDevice { text: String, count: usize },
    #[error("parameter {0} belongs to no layer")]
    Orphan(String),
    #[error("the single changes of one pass must all be in one layer")]
    ChangesAcrossLayers,
    #[error("{0} failed")]
    Torch(&'static str, #[source] tch::TchError),
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// A target that does not apply to the agent.
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(text: &str) -> Result<Device> {
    let t = text.trim().to_ascii_lowercase();
    let device = match t.as_str() {
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        _ => match t.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(ModelError::UnknownDevice(text.to_string())),
        },
    };
    if let Device::Cuda(n) = device {
        if !tch::Cuda::is_available() {
            return Err(ModelError::NoCuda(text.to_string()));
        }
        let count = tch::Cuda::device_count() as usize;
        if n >= count {
            return Err(ModelError::NoSuchDevice { text: text.to_string(), count });
        }
    }
    Ok(device)
}

/// Loads an agent for `target` (None: the family's default): the head the target is computed
/// on, its network on `device` (for the critic's `value`, with the policy for the greedy
/// actions), and the target as it applies to the family.
pub fn load_for_target(
    path: &std::path::Path,
    overrides: &crate::agent::ArchOverrides,
    limits: &crate::agent::AgentLimits,
    device: Device,
    target: Option<Target>,
) -> Result<(Agent, Net, Target)> {
    let mut file = crate::agent::AgentFile::open(path, overrides, limits)?;
    let agent = file.agent(None)?;
    let target = target
        .unwrap_or_else(|| Target::default_for(agent.family))
        .for_family(agent.family, agent.arch.n_actions)
        .map_err(ModelError::Target)?;
    if target.head() == Some(crate::agent::Head::Critic) {
        let critic = file.agent(Some(crate::agent::Head::Critic))?;
        let net = Net::new(&critic, device)?.with_actor(Net::new(&agent, device)?);
        return Ok((critic, net, target));
    }
    let net = Net::new(&agent, device)?;
    Ok((agent, net, target))
}

/// A parameterised layer, in forward order.
#[derive(Debug, Clone, Copy)]
pub struct Layer {
    pub weight: usize,
    pub bias: Option<usize>,
    /// None for Linear; the stride for Conv.
    pub conv_stride: Option<usize>,
}

/// Per-input gradients of one layer for a batch, on the CPU.
pub enum LayerGrads {
    /// Linear: weight[n] = outer(d[n], a[n]) (formed on demand), bias[n] = d[n].
    Outer { d: Vec<f32>, a: Vec<f32>, rows: usize, cols: usize },
    /// Conv: per-input weight gradients (B x numel) and bias gradients (B x out).
    Dense { w: Vec<f32>, b: Vec<f32>, numel: usize, out: usize },
}

/// Gradients of a batch of inputs: greedy actions, the target's values, and per-layer gradients.
pub struct BatchGrads {
    pub n: usize,
    pub actions: Vec<i64>,
    /// The target's value per input (for `q`, the float32 Q-value, exactly).
    pub values: Vec<f64>,
    pub layers: Vec<LayerGrads>,
    /// When asked for: per observation key, d target / d input (B x values, row after row).
    pub inputs: Vec<Vec<f32>>,
}

/// What one forward and backward pass of a batch gives (see `Net::signals`).
pub struct Signals {
    pub n: usize,
    /// Outputs, B x actions, row after row.
    pub out: Vec<f32>,
    pub actions: Vec<usize>,
    pub values: Vec<f64>,
    /// Per parameterised layer in forward order: (input a, signal d = d target / d output).
    pub layers: Vec<(Tensor, Tensor)>,
    /// When asked for: per observation key (branch), d target / d input, B x values.
    pub inputs: Vec<Tensor>,
    /// For a critic: its policy's outputs (B x actions), whose argmax is `actions`.
    pub policy_out: Option<Vec<f32>>,
}

/// Where a parameter's gradient comes from.
#[derive(Debug, Clone, Copy)]
pub struct ParamSource {
    pub layer: usize,
    pub bias: bool,
}

impl BatchGrads {
    /// Input `n`'s gradient of parameter `src`, row-major, into `out` (cleared first). Every file
    /// of per-input gradients is written through this.
    pub fn fill(&self, src: ParamSource, n: usize, out: &mut Vec<f32>) {
        out.clear();
        match &self.layers[src.layer] {
            LayerGrads::Outer { d, a, rows, cols } => {
                let d = &d[n * rows..(n + 1) * rows];
                if src.bias {
                    out.extend_from_slice(d);
                } else {
                    let a = &a[n * cols..(n + 1) * cols];
                    out.reserve(rows * cols);
                    for &di in d {
                        out.extend(a.iter().map(|&aj| di * aj));
                    }
                }
            }
            LayerGrads::Dense { w, b, numel, out: o } => {
                if src.bias {
                    out.extend_from_slice(&b[n * o..(n + 1) * o]);
                } else {
                    out.extend_from_slice(&w[n * numel..(n + 1) * numel]);
                }
            }
        }
    }
}

pub struct Net {
    pub device: Device,
    weights: Vec<Tensor>,
    /// For a critic: the policy, for the greedy actions, and for each of the policy's
    /// parameters the index of the critic's parameter of the same name (a shared extractor).
    actor: Option<(Box<Net>, Vec<Option<usize>>)>,
    pub layers: Vec<Layer>,
    /// For each parameter (file order): which layer, weight or bias.
    pub sources: Vec<ParamSource>,
    /// The parameters' names (file order).
    names: Vec<String>,
    arch: crate::agent::Arch,
}

/// A replacement for a layer's output `z`, given its input and `z`.
type LayerHook<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;

/// What a forward pass does at each parameterised layer besides computing it.
struct Pass<'a> {
    /// Record (input, grad-tracking output) of every layer, for a backward pass.
    grad: bool,
    record: Vec<(Tensor, Tensor)>,
    /// Parameterised layers passed so far (forward order, as `Net::layers`).
    seen: usize,
    /// (layer, f): that layer's output `z` becomes `f(input, z)`.
    hook: Option<(usize, LayerHook<'a>)>,
}

impl<'a> Pass<'a> {
    fn plain() -> Pass<'a> {
        Pass { grad: false, record: Vec::new(), seen: 0, hook: None }
    }

    fn recording() -> Pass<'a> {
        Pass { grad: true, ..Pass::plain() }
    }

    fn hooked(layer: usize, f: LayerHook<'a>) -> Pass<'a> {
        Pass { hook: Some((layer, f)), ..Pass::plain() }
    }

    /// A parameterised layer's output `z` of input `h`, as the rest of the pass sees it.
    fn layer_output(&mut self, h: Tensor, z: Tensor) -> Result<Tensor> {
        let layer = self.seen;
        self.seen += 1;
        if let Some((at, f)) = self.hook {
            if at == layer {
                return f(&h, &z);
            }
        }
        if !self.grad {
            return Ok(z);
        }
        // The first layer's output becomes a leaf, so nothing upstream is differentiated.
        let z = if z.requires_grad() { z } else { z.f_detach()?.f_set_requires_grad(true)? };
        self.record.push((h, z.shallow_clone()));
        Ok(z)
    }
}

/// A tensor's values as float32 on the CPU, in row-major order.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    let t = t.f_to(Device::Cpu)?.f_totype(Kind::Float)?.f_contiguous()?.f_reshape([-1])?;
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.f_copy_data(&mut v, n)?;
    Ok(v)
}

/// The patches a convolution sees, as (B, C*kh*kw, OH*OW): what `im2col` gives, but through a
/// strided view and one copy, about 7x faster than libtorch's CPU im2col for these shapes.
fn unfold(a: &Tensor, kh: i64, kw: i64, stride: i64) -> Result<Tensor> {
    let a = a.f_contiguous()?;
    let (b, c, h, w) = a.size4()?;
    let (oh, ow) = ((h - kh) / stride + 1, (w - kw) / stride + 1);
    Ok(a.f_as_strided([b, c, kh, kw, oh, ow], [c * h * w, h * w, w, 1, stride * w, stride], 0)?
        .f_contiguous()?
        .f_reshape([b, c * kh * kw, oh * ow])?)
}

fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    Ok(match act {
        Activation::ReLU => x.f_relu()?,
        Activation::Tanh => x.f_tanh()?,
        Activation::LeakyReLU => x.f_leaky_relu()?,
        Activation::ELU => x.f_elu()?,
        Activation::GELU => x.f_gelu("none")?,
        Activation::SiLU => x.f_silu()?,
        Activation::Sigmoid => x.f_sigmoid()?,
        Activation::ReLU6 => x.f_relu6()?,
        Activation::SELU => x.f_selu()?,
        Activation::CELU => x.f_celu()?,
        Activation::Softplus => x.f_softplus()?,
        Activation::Mish => x.f_mish()?,
        Activation::Hardswish => x.f_hardswish()?,
        Activation::Hardsigmoid => x.f_hardsigmoid()?,
        Activation::Hardtanh => x.f_hardtanh()?,
        Activation::Identity => x.shallow_clone(),
    })
}

impl Net {
    pub fn new(agent: &Agent, device: Device) -> Result<Net> {
        let weights: Vec<Tensor> = agent
            .params
            .iter()
            .map(|p| {
                let shape: Vec<i64> = p.shape.iter().map(|&s| s as i64).collect();
                Tensor::f_from_slice(&p.data)?.f_reshape(&shape)?.f_to(device)
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| ModelError::Torch("moving the weights to the device", e))?;
        let mut layers = Vec::new();
        let mut collect = |ops: &[Op]| {
            for op in ops {
                match *op {
                    Op::Linear { weight, bias } => layers.push(Layer { weight, bias, conv_stride: None }),
                    Op::Conv { weight, bias, stride } => layers.push(Layer { weight, bias, conv_stride: Some(stride) }),
                    _ => {}
                }
            }
        };
        for b in &agent.arch.branches {
            collect(&b.ops);
        }
        collect(&agent.arch.trunk);
        let mut sources = vec![None; agent.params.len()];
        for (l, layer) in layers.iter().enumerate() {
            sources[layer.weight] = Some(ParamSource { layer: l, bias: false });
            if let Some(b) = layer.bias {
                sources[b] = Some(ParamSource { layer: l, bias: true });
            }
        }
        let sources = sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.ok_or_else(|| ModelError::Orphan(agent.params[i].name.clone())))
            .collect::<Result<Vec<_>>>()?;
        let names = agent.params.iter().map(|p| p.name.clone()).collect();
        Ok(Net { device, weights, layers, sources, names, arch: agent.arch.clone(), actor: None })
    }

    fn preprocess(&self, x: &Tensor, pre: &Preprocess, obs_shape: &[usize]) -> Result<Tensor> {
        let b = x.size2()?.0;
        let one_hot = |x: &Tensor, n: usize| -> Result<Tensor> {
            Ok(x.f_totype(Kind::Int64)?.f_reshape([b])?.f_one_hot(n as i64)?.f_totype(Kind::Float)?)
        };
        let mut shape = vec![b];
        shape.extend(obs_shape.iter().map(|&s| s as i64));
        Ok(match pre {
            Preprocess::Float => x.f_reshape(&shape)?,
            Preprocess::Image => x.f_reshape(&shape)?.f_div_scalar(255.0)?,
            Preprocess::OneHot(n) => one_hot(x, *n)?,
            Preprocess::MultiOneHot(nvec) => {
                let parts: Vec<Tensor> = nvec
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| one_hot(&x.f_narrow(1, i as i64, 1)?, n))
                    .collect::<Result<_>>()?;
                Tensor::f_cat(&parts, 1)?
            }
        })
    }

    /// Runs ops with `weights`, recording each parameterised layer's input and (when `grad`,
    /// grad-tracking) output, or replacing the output of the layer `pass.hook` names.
    fn run_ops(&self, weights: &[Tensor], mut h: Tensor, ops: &[Op], pass: &mut Pass) -> Result<Tensor> {
        for op in ops {
            h = match *op {
                Op::Linear { weight, bias } | Op::Conv { weight, bias, .. } => {
                    let w = &weights[weight];
                    let b = bias.map(|b| &weights[b]);
                    let z = match *op {
                        Op::Conv { stride, .. } => {
                            h.f_conv2d(w, b, [stride as i64, stride as i64], [0, 0], [1, 1], 1)?
                        }
                        _ => h.f_linear(w, b)?,
                    };
                    pass.layer_output(h, z)?
                }
                Op::Act(a) => activate(&h, a)?,
                Op::Flatten => h.f_flatten(1, -1)?,
                Op::QuantileMean { n_quantiles, n_actions } => h
                    .f_reshape([-1, n_quantiles as i64, n_actions as i64])?
                    .f_mean_dim([1i64].as_slice(), false, Kind::Float)?,
            };
        }
        Ok(h)
    }

    fn forward(&self, weights: &[Tensor], x: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        self.forward_inputs(weights, x, pass, None)
    }

    /// `forward`; with `leaves`, each observation key's input becomes a leaf whose gradient the
    /// backward pass gives: the values as written in the inputs (so the chain rule runs through
    /// image scaling), or for Discrete keys the one-hot vector SB3 builds.
    fn forward_inputs(
        &self,
        weights: &[Tensor],
        x: &Tensor,
        pass: &mut Pass,
        mut leaves: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let mut feats = Vec::new();
        for b in &self.arch.branches {
            let mut xb = x.f_narrow(1, b.offset as i64, b.len as i64)?;
            let one_hot = matches!(b.preprocess, Preprocess::OneHot(_) | Preprocess::MultiOneHot(_));
            if let (Some(l), false) = (leaves.as_deref_mut(), one_hot) {
                xb = xb.f_detach()?.f_set_requires_grad(true)?;
                l.push(xb.shallow_clone());
            }
            if let Some(n) = &b.normalize {
                // VecNormalize, as SB3's numpy does it: float64, clip, then float32.
                let (mean, std) = self.norm_tensors(n)?;
                xb = xb
                    .f_totype(Kind::Double)?
                    .f_sub(&mean)?
                    .f_div(&std)?
                    .f_clamp(-n.clip, n.clip)?
                    .f_totype(Kind::Float)?;
            }
            let mut h = self.preprocess(&xb, &b.preprocess, &b.obs_shape)?;
            if let (Some(l), true) = (leaves.as_deref_mut(), one_hot) {
                h = h.f_detach()?.f_set_requires_grad(true)?;
                l.push(h.shallow_clone());
            }
            feats.push(self.run_ops(weights, h, &b.ops, pass)?);
        }
        let h = match feats.len() {
            1 => feats.remove(0),
            _ => {
                // A hook in one key's branch multiplies its rows: the others repeat to match.
                let rows = feats.iter().map(|f| f.size()[0]).max().unwrap_or(0);
                let feats = feats
                    .iter()
                    .map(|f| match f.size()[0] {
                        r if r == rows || r == 0 => Ok(f.shallow_clone()),
                        r => f.f_repeat([rows / r, 1]),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Tensor::f_cat(&feats, 1)?
            }
        };
        self.run_ops(weights, h, &self.arch.trunk, pass)
    }

    /// A key's VecNormalize mean and sqrt(var + epsilon), float64 on the device.
    fn norm_tensors(&self, n: &crate::agent::vecnorm::ObsNorm) -> Result<(Tensor, Tensor)> {
        let mean = Tensor::f_from_slice(&n.mean)?.f_to(self.device)?;
        let std: Vec<f64> = n.var.iter().map(|v| (v + n.epsilon).sqrt()).collect();
        Ok((mean, Tensor::f_from_slice(&std)?.f_to(self.device)?))
    }

    /// The agent's parameters as tensors on the device, in parameter order.
    pub fn weights(&self) -> &[Tensor] {
        &self.weights
    }

    /// Outputs per input (one per action, or one for a value function).
    pub fn n_outputs(&self) -> usize {
        self.arch.outputs
    }

    /// For a critic: the policy network whose greedy action is reported (and fixed) for each
    /// input.
    pub fn with_actor(mut self, actor: Net) -> Net {
        let shared = actor.names.iter().map(|name| self.names.iter().position(|n| n == name)).collect();
        self.actor = Some((Box::new(actor), shared));
        self
    }

    /// For a critic: its policy's outputs (B x actions, and the number of actions) with this
    /// network's `weights` in place of the parameters the two share by name (a shared feature
    /// extractor). None for a network without a policy.
    pub fn actor_outputs_with(&self, weights: &[Tensor], x: &Tensor) -> Result<Option<(Vec<f32>, usize)>> {
        let Some((actor, shared)) = self.actor.as_ref() else { return Ok(None) };
        let changed: Vec<Tensor> = shared
            .iter()
            .zip(&actor.weights)
            .map(|(j, own)| j.map_or_else(|| own.shallow_clone(), |j| weights[j].shallow_clone()))
            .collect();
        Ok(Some((actor.outputs_with(&changed, x)?, actor.arch.outputs)))
    }

    /// A batch of raw inputs (B x input_len float32, row after row) on the device.
    pub fn input_tensor(&self, x_cpu: &[f32], batch: usize) -> Result<Tensor> {
        Ok(Tensor::f_from_slice(x_cpu)?.f_reshape([batch as i64, self.arch.input_len as i64])?.f_to(self.device)?)
    }

    /// The network's outputs (B x actions, row after row) with `weights` in place of the
    /// agent's, without gradients.
    pub fn outputs_with(&self, weights: &[Tensor], x: &Tensor) -> Result<Vec<f32>> {
        let _guard = tch::no_grad_guard();
        to_vec(&self.forward(weights, x, &mut Pass::plain())?)
    }

    /// One forward and one backward pass for a batch: the outputs, each input's greedy action
    /// and target value, and per parameterised layer its input `a` and the signal
    /// `d = d target / d z` of its output `z` (every row an input of its own).
    pub fn signals(&self, x: &Tensor, target: Target) -> Result<Signals> {
        self.signals_with_inputs(x, target, false)
    }

    /// `signals`, and with `inputs` also the gradient of the target with respect to each
    /// observation key's input (`Signals::inputs`).
    pub fn signals_with_inputs(&self, x: &Tensor, target: Target, inputs: bool) -> Result<Signals> {
        let batch = x.size2()?.0 as usize;
        let mut pass = Pass::recording();
        let mut leaves = Vec::new();
        let out = self.forward_inputs(&self.weights, x, &mut pass, inputs.then_some(&mut leaves))?;
        let record = pass.record;
        let out_cpu = to_vec(&out.f_detach()?)?;
        let n_actions = self.arch.outputs;
        let mut actions = Vec::with_capacity(batch);
        let mut values = Vec::with_capacity(batch);
        let mut coef = vec![0f32; batch * n_actions];
        let mut row_coef = vec![0f64; n_actions];
        // A critic's greedy action is the policy's.
        let actor_out = match &self.actor {
            Some((actor, _)) => Some((actor.outputs_with(&actor.weights, x)?, actor.arch.outputs)),
            None => None,
        };
        for (n, row) in out_cpu.chunks_exact(n_actions).enumerate() {
            let a = match &actor_out {
                Some((logits, k)) => greedy(&logits[n * k..(n + 1) * k]),
                None => greedy(row),
            };
            actions.push(a);
            values.push(target.value(row, a));
            target.coefficients(row, a, &mut row_coef);
            for (c, &v) in coef[n * n_actions..(n + 1) * n_actions].iter_mut().zip(&row_coef) {
                *c = v as f32;
            }
        }
        // d objective / d out is exactly the coefficients: (out * C).sum() back-propagates them.
        let c = Tensor::f_from_slice(&coef)?.f_reshape([batch as i64, n_actions as i64])?.f_to(self.device)?;
        let objective = out.f_mul(&c)?.f_sum(Kind::Float)?;
        let mut zs: Vec<&Tensor> = record.iter().map(|(_, z)| z).collect();
        zs.extend(leaves.iter());
        let mut ds = Tensor::f_run_backward(&[&objective], &zs, false, false)
            .map_err(|e| ModelError::Torch("backward pass", e))?;
        let input_grads: Vec<Tensor> = ds
            .split_off(record.len())
            .into_iter()
            .map(|g| g.f_reshape([batch as i64, -1]))
            .collect::<std::result::Result<_, _>>()?;
        let layers =
            record.into_iter().zip(ds).map(|((a, _), d)| Ok((a.f_detach()?, d))).collect::<Result<Vec<_>>>()?;
        let policy_out = actor_out.map(|(logits, _)| logits);
        Ok(Signals { n: batch, out: out_cpu, actions, values, layers, inputs: input_grads, policy_out })
    }

    /// Per-input gradients of the target for a batch. `x_cpu` is B x input_len float32 (raw
    /// input values).
    pub fn batch_gradients(&self, x_cpu: &[f32], batch: usize, target: Target, inputs: bool) -> Result<BatchGrads> {
        let x = self.input_tensor(x_cpu, batch)?;
        let Signals { actions, values, layers: record, inputs: input_grads, .. } =
            self.signals_with_inputs(&x, target, inputs)?;
        let inputs = input_grads.iter().map(to_vec).collect::<Result<_>>()?;
        let actions = actions.into_iter().map(|a| a as i64).collect();
        let mut layers = Vec::with_capacity(self.layers.len());
        for (layer, (a, d)) in self.layers.iter().zip(&record) {
            let grads = match layer.conv_stride {
                None => {
                    let rows = d.size2()?.1 as usize;
                    let cols = a.size2()?.1 as usize;
                    LayerGrads::Outer { d: to_vec(d)?, a: to_vec(a)?, rows, cols }
                }
                Some(stride) => {
                    let _guard = tch::no_grad_guard();
                    let w = &self.weights[layer.weight];
                    let (out, _, k, kw) = w.size4()?;
                    let unfolded = unfold(a, k, kw, stride as i64)?; // B x C*k*k x L
                    let dflat = d.f_reshape([batch as i64, out, -1])?; // B x O x L
                    let gw = unfolded.f_bmm(&dflat.f_transpose(1, 2)?)?.f_transpose(1, 2)?; // B x O x C*k*k
                    let gb = dflat.f_sum_dim_intlist([2i64].as_slice(), false, Kind::Float)?;
                    let numel = w.numel();
                    LayerGrads::Dense { w: to_vec(&gw)?, b: to_vec(&gb)?, numel, out: out as usize }
                }
            };
            layers.push(grads);
        }
        Ok(BatchGrads { n: batch, actions, values, layers, inputs })
    }
}
