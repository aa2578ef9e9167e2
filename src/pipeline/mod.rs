//! The three steps of the Python tool (gradients, average, extract) and the one-pass `run`.

pub mod accumulate;
pub mod average;
pub mod extract;
pub mod gradfile;
pub mod inputs;
pub mod output;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use color_eyre::eyre::{bail, Result};

use crate::agent::Agent;
use crate::model::Net;
pub use accumulate::Accumulator;
use average::Averages;
use gradfile::{GradJsonWriter, ParamMeta};
use inputs::InputReader;

pub const WEIGHT_GRADIENTS: &str = "weight_gradients.json";
pub const AVERAGE_GRADIENTS: &str = "average_gradients.json";
pub const CANDIDATE_WEIGHTS: &str = "candidate_weights.json";

/// The run was cancelled (Ctrl-C, or Esc in the explorer); no output was left half-written.
#[derive(Debug, Clone, Copy)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled; no output file was changed")
    }
}

impl std::error::Error for Cancelled {}

/// What happens to the per-input gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// `weight_gradients.json`, the Python tool's file.
    Json,
    /// Not written (the averages and selection do not need it).
    None,
}

/// The standard files of an agent directory (the research project's layout).
pub fn clean_inputs_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("activation_inputs").join("clean_inputs.json")
}

pub fn cross_metric_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("patching_results").join("cross_metric_summary.json")
}

/// Progress of the gradient pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub elapsed_s: f64,
}

pub struct GradientOutcome {
    pub averages: Averages,
    pub inputs: usize,
    /// NaN / infinite values in the raw file (a broken model).
    pub non_finite: u64,
    /// Where the raw gradients went, if anywhere.
    pub raw_path: Option<PathBuf>,
}

pub fn param_meta(agent: &Agent) -> Vec<ParamMeta> {
    agent.params.iter().map(|p| ParamMeta { name: p.name.clone(), shape: p.shape.clone() }).collect()
}

/// Inputs per batch: enough to amortise libtorch's overhead, few enough to keep memory bounded
/// (about 64 MB of per-batch tensors, whatever the number of inputs).
pub fn batch_size_for(net: &Net, agent: &Agent) -> usize {
    let mut per_input = agent.arch.input_len;
    for layer in &net.layers {
        let shape = &agent.params[layer.weight].shape;
        per_input += match layer.conv_stride {
            // activations and signals are a few times the weight's fan-in/out; the unfolded
            // input and the per-input weight gradient dominate
            Some(_) => 4 * shape.iter().product::<usize>() + 64 * shape[0] * 8,
            None => 4 * (shape[0] + shape[1]),
        };
    }
    ((16usize << 20) / per_input.max(1)).clamp(1, 1024)
}

/// Step 1 (and the accumulation of step 2 on the way): per-input gradients for every input of
/// `inputs`, streamed in batches; the raw file is written as it goes (atomically).
/// Where the gradient pass writes and how it batches.
#[derive(Debug, Clone)]
pub struct PassOptions {
    pub raw: RawFormat,
    pub out_dir: PathBuf,
    /// Inputs per batch; None picks one from the network's size.
    pub batch_size: Option<usize>,
}

pub fn gradient_pass(
    agent: &Agent,
    net: &Net,
    inputs: &Path,
    opts: &PassOptions,
    progress: &mut dyn FnMut(Progress, &Accumulator),
    cancel: &AtomicBool,
) -> Result<GradientOutcome> {
    let PassOptions { raw, out_dir, batch_size } = opts.clone();
    let total = inputs::count_inputs(inputs)?;
    if total == 0 {
        bail!("{} holds no inputs: there is nothing to analyse", inputs.display());
    }
    let mut reader = InputReader::open(inputs, &agent.arch)?;
    let params = param_meta(agent);
    let raw_path = out_dir.join(WEIGHT_GRADIENTS);
    let mut raw_writer = match raw {
        RawFormat::Json => Some(GradJsonWriter::create(&raw_path)?),
        RawFormat::None => None,
    };
    let numels: Vec<usize> = params.iter().map(ParamMeta::numel).collect();
    let mut acc = Accumulator::new(&numels);
    let batch = batch_size.unwrap_or_else(|| batch_size_for(net, agent)).max(1);
    let start = Instant::now();
    progress(Progress { done: 0, total, elapsed_s: 0.0 }, &acc);

    // Parsing runs on its own thread, a couple of batches ahead of the model.
    let done = std::thread::scope(|scope| -> Result<usize> {
        // The receiver lives in this closure: on an early return it is dropped before the
        // scope joins the reader, whose next send then fails and ends it (no deadlock).
        let (tx, rx) = mpsc::sync_channel::<Result<(Vec<String>, Vec<f32>)>>(2);
        scope.spawn(move || loop {
            let mut ids = Vec::with_capacity(batch);
            let mut values = Vec::with_capacity(batch * reader.expected_len());
            match reader.next_batch(batch, &mut ids, &mut values) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.send(Ok((ids, values))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        let mut done = 0usize;
        for item in rx.iter() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Cancelled.into());
            }
            let (ids, values) = item?;
            let grads = net.batch_gradients(&values, ids.len())?;
            if let Some(w) = raw_writer.as_mut() {
                w.write_batch(&ids, &grads, &params, &net.sources)?;
            }
            acc.add_batch(&net.sources, &grads);
            done += ids.len();
            progress(Progress { done, total: total.max(done), elapsed_s: start.elapsed().as_secs_f64() }, &acc);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Cancelled.into());
        }
        Ok(done)
    })?;
    let mut non_finite = 0;
    let raw_path = match raw_writer {
        Some(w) => {
            non_finite = w.non_finite();
            w.commit()?;
            Some(raw_path)
        }
        None => None,
    };
    let averages = acc.averages(&params);
    Ok(GradientOutcome { averages, inputs: done, non_finite, raw_path })
}
