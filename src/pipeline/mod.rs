//! The three steps of the Python tool (gradients, average, extract) and the one-pass `run`.

pub mod accumulate;
pub mod average;
pub mod error;
pub mod extract;
pub mod gradfile;
pub mod input_saliency;
pub mod inputs;
pub mod measures;
pub mod npy;
pub mod output;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use crate::agent::Agent;
use crate::model::Net;
pub use accumulate::Accumulator;
use average::Averages;
pub use error::{is_cancelled, PipelineError, Result};
use gradfile::{GradJsonWriter, ParamMeta};
use inputs::InputReader;

pub const WEIGHT_GRADIENTS: &str = "weight_gradients.json";
pub const AVERAGE_GRADIENTS: &str = "average_gradients.json";
pub const CANDIDATE_WEIGHTS: &str = "candidate_weights.json";
/// The folder `--raw-gradients npy` writes.
pub const WEIGHT_GRADIENTS_NPY: &str = "weight_gradients";

enum RawWriter {
    Json(GradJsonWriter),
    Npy(npy::GradNpyWriter),
}

/// What happens to the per-input gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// `weight_gradients.json`, the Python tool's file.
    Json,
    /// `weight_gradients/`: one float32 .npy per parameter plus index.json (see `npy`).
    Npy,
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

/// Progress of the gradient pass. The inputs are not counted ahead (that would cost a pass
/// over a file that can be gigabytes): `total` is estimated from the share of the file read,
/// and exact once the file has been read to its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub total_exact: bool,
    pub elapsed_s: f64,
}

pub struct GradientOutcome {
    pub averages: Averages,
    pub inputs: usize,
    /// NaN / infinite values in the raw file (a broken model).
    pub non_finite: u64,
    /// Where the raw gradients went, if anywhere.
    pub raw_path: Option<PathBuf>,
    /// The measures asked for (`PassOptions::measures`).
    pub measures: Option<measures::MeasureSet>,
    /// The input saliency, when asked for (written by `InputSaliency::write`).
    pub input_saliency: Option<input_saliency::InputSaliency>,
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
    /// What is differentiated (`q`: the Python tool's files).
    pub target: crate::target::Target,
    /// Measures to keep besides the averages (docs/measures.md); empty: none.
    pub measures: Vec<measures::Measure>,
    /// Also the gradient with respect to the inputs (per input kept unless `raw` is None).
    pub input_saliency: bool,
}

/// One batch on its way from the model to the sink.
struct Computed {
    ids: Vec<String>,
    grads: crate::model::BatchGrads,
    offset: u64,
    finished: bool,
}

/// Progress callback: called from the sink thread after each batch, with the running sums.
pub type ProgressFn<'a> = dyn FnMut(Progress, &Accumulator) + Send + 'a;

pub fn gradient_pass(
    agent: &Agent,
    net: &Net,
    inputs: &Path,
    opts: &PassOptions,
    progress: &mut ProgressFn,
    cancel: &AtomicBool,
) -> Result<GradientOutcome> {
    let PassOptions { raw, out_dir, batch_size, target, measures: wanted, input_saliency } = opts.clone();
    let file_size = std::fs::metadata(inputs).map(|m| m.len()).unwrap_or(0);
    let mut reader = InputReader::open(inputs, &agent.arch)?;
    let params = param_meta(agent);
    let (raw_path, mut raw_writer) = match raw {
        RawFormat::Json => {
            let p = out_dir.join(WEIGHT_GRADIENTS);
            let w = GradJsonWriter::create(&p)?;
            (Some(p), Some(RawWriter::Json(w)))
        }
        RawFormat::Npy => {
            let p = out_dir.join(WEIGHT_GRADIENTS_NPY);
            let w = npy::GradNpyWriter::create(&p, &params)?;
            (Some(p), Some(RawWriter::Npy(w)))
        }
        RawFormat::None => (None, None),
    };
    let numels: Vec<usize> = params.iter().map(ParamMeta::numel).collect();
    let mut acc = if wanted.is_empty() { Accumulator::new(&numels) } else { Accumulator::with_measures(&numels) };
    let mut inputs_acc = if input_saliency {
        Some(input_saliency::InputSaliency::new(input_saliency::keys(&agent.arch), raw != RawFormat::None, &out_dir)?)
    } else {
        None
    };
    let batch = batch_size.unwrap_or_else(|| batch_size_for(net, agent)).max(1);
    let start = Instant::now();
    progress(Progress { done: 0, total: 0, total_exact: false, elapsed_s: 0.0 }, &acc);
    let sources = &net.sources;
    let params_ref = &params;

    // Three stages on three threads, each a batch or two ahead of the next: parsing the inputs,
    // the model (this thread), and the sink (raw file, running sums, progress). Channels are
    // bounded, so memory does not grow with the number of inputs.
    let done = std::thread::scope(|scope| -> Result<usize> {
        // Receivers live in this closure: on an early return they are dropped before the scope
        // joins the other threads, whose next send then fails and ends them (no deadlock).
        let (tx_in, rx_in) = mpsc::sync_channel::<Result<(Vec<String>, Vec<f32>, u64, bool)>>(2);
        let (tx_out, rx_out) = mpsc::sync_channel::<Computed>(1);
        scope.spawn(move || loop {
            let mut ids = Vec::with_capacity(batch);
            let mut values = Vec::with_capacity(batch * reader.expected_len());
            match reader.next_batch(batch, &mut ids, &mut values) {
                Ok(0) => break,
                Ok(_) => {
                    if tx_in.send(Ok((ids, values, reader.offset(), reader.finished()))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx_in.send(Err(e));
                    break;
                }
            }
        });
        let acc = &mut acc;
        let raw_writer = &mut raw_writer;
        let inputs_acc = &mut inputs_acc;
        let spill_dir = &out_dir;
        let sink = scope.spawn(move || -> Result<usize> {
            let mut done = 0usize;
            for c in rx_out.iter() {
                match raw_writer.as_mut() {
                    Some(RawWriter::Json(w)) => w.write_batch(&c.ids, &c.grads, params_ref, sources)?,
                    Some(RawWriter::Npy(w)) => w.write_batch(&c.ids, &c.grads, sources)?,
                    None => {}
                }
                acc.add_batch(sources, &c.grads);
                if let Some(ia) = inputs_acc.as_mut() {
                    ia.add_batch(&c.ids, &c.grads, spill_dir)?;
                }
                done += c.ids.len();
                let total = if c.finished || c.offset == 0 {
                    done
                } else {
                    ((done as f64 * file_size as f64 / c.offset as f64).round() as usize).max(done)
                };
                let elapsed_s = start.elapsed().as_secs_f64();
                progress(Progress { done, total, total_exact: c.finished, elapsed_s }, acc);
            }
            if done > 0 {
                let elapsed_s = start.elapsed().as_secs_f64();
                progress(Progress { done, total: done, total_exact: true, elapsed_s }, acc);
            }
            Ok(done)
        });
        let model = (|| -> Result<()> {
            for item in rx_in.iter() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(PipelineError::Cancelled);
                }
                let (ids, values, offset, finished) = item?;
                let grads = net.batch_gradients(&values, ids.len(), target, input_saliency)?;
                if tx_out.send(Computed { ids, grads, offset, finished }).is_err() {
                    break; // the sink failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(tx_out);
        let sunk = sink.join().map_err(|_| PipelineError::Panicked("output"))?;
        model?;
        let done = sunk?;
        if cancel.load(Ordering::Relaxed) {
            return Err(PipelineError::Cancelled);
        }
        Ok(done)
    })?;
    if done == 0 {
        return Err(PipelineError::NoInputs(inputs.to_path_buf()));
    }
    let mut non_finite = 0;
    match raw_writer {
        Some(RawWriter::Json(w)) => {
            non_finite = w.non_finite();
            w.commit()?;
        }
        Some(RawWriter::Npy(w)) => w.commit()?,
        None => {}
    }
    let averages = acc.averages(&params);
    let measures = match (&acc.extra, wanted.is_empty()) {
        (Some(extra), false) => {
            let weights: Vec<&[f32]> = agent.params.iter().map(|p| p.data.as_slice()).collect();
            Some(measures::MeasureSet::from_sums(&params, &weights, &acc.sums, extra, acc.count, &wanted))
        }
        _ => None,
    };
    Ok(GradientOutcome { averages, inputs: done, non_finite, raw_path, measures, input_saliency: inputs_acc })
}
