//! The three steps of the Python tool (gradients, average, extract) and the one-pass `run`.

pub mod accumulate;
pub mod arrays;
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
    /// Only the first inputs of the file (None: all).
    pub max_inputs: Option<usize>,
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

/// The raw file's writer for `raw`, and where it goes.
fn open_raw(raw: RawFormat, out_dir: &Path, params: &[ParamMeta]) -> Result<(Option<PathBuf>, Option<RawWriter>)> {
    Ok(match raw {
        RawFormat::Json => {
            let p = out_dir.join(WEIGHT_GRADIENTS);
            let w = GradJsonWriter::create(&p)?;
            (Some(p), Some(RawWriter::Json(w)))
        }
        RawFormat::Npy => {
            let p = out_dir.join(WEIGHT_GRADIENTS_NPY);
            let w = npy::GradNpyWriter::create(&p, params)?;
            (Some(p), Some(RawWriter::Npy(w)))
        }
        RawFormat::None => (None, None),
    })
}

/// Where computed batches go, in input order: the raw file, the running sums, the input
/// saliency; and the progress reported after each.
struct Sink<'a> {
    raw: Option<RawWriter>,
    acc: Accumulator,
    inputs: Option<input_saliency::InputSaliency>,
    spill_dir: &'a Path,
    params: &'a [ParamMeta],
    sources: &'a [crate::model::ParamSource],
    /// Bytes of the inputs file (the total is estimated from the share read).
    file_size: u64,
    start: Instant,
    done: usize,
}

impl Sink<'_> {
    fn take(&mut self, c: Computed, progress: &mut ProgressFn) -> Result<()> {
        match self.raw.as_mut() {
            Some(RawWriter::Json(w)) => w.write_batch(&c.ids, &c.grads, self.params, self.sources)?,
            Some(RawWriter::Npy(w)) => w.write_batch(&c.ids, &c.grads, self.sources)?,
            None => {}
        }
        self.acc.add_batch(self.sources, &c.grads);
        if let Some(ia) = self.inputs.as_mut() {
            ia.add_batch(&c.ids, &c.grads, self.spill_dir)?;
        }
        self.done += c.ids.len();
        let done = self.done;
        let total = if c.finished || c.offset == 0 {
            done
        } else {
            ((done as f64 * self.file_size as f64 / c.offset as f64).round() as usize).max(done)
        };
        let elapsed_s = self.start.elapsed().as_secs_f64();
        progress(Progress { done, total, total_exact: c.finished, elapsed_s }, &self.acc);
        Ok(())
    }

    /// The last progress (exact), after the last batch.
    fn finish(&self, progress: &mut ProgressFn) {
        if self.done > 0 {
            let (done, elapsed_s) = (self.done, self.start.elapsed().as_secs_f64());
            progress(Progress { done, total: done, total_exact: true, elapsed_s }, &self.acc);
        }
    }

    /// Moves the raw file into place; the number of non-finite values it holds.
    fn commit_raw(&mut self) -> Result<u64> {
        match self.raw.take() {
            Some(RawWriter::Json(w)) => {
                let non_finite = w.non_finite();
                w.commit()?;
                Ok(non_finite)
            }
            Some(RawWriter::Npy(w)) => w.commit().map(|_| 0),
            None => Ok(0),
        }
    }
}

/// Three stages on three threads, each a batch or two ahead of the next: parsing the inputs,
/// the model (this thread), and the sink. Channels are bounded, so memory does not grow with
/// the number of inputs.
fn stream(
    mut reader: InputReader,
    net: &Net,
    opts: &PassOptions,
    batch: usize,
    sink: &mut Sink,
    progress: &mut ProgressFn,
    cancel: &AtomicBool,
) -> Result<()> {
    std::thread::scope(|scope| -> Result<()> {
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
        let sunk = scope.spawn(move || -> Result<()> {
            for c in rx_out.iter() {
                sink.take(c, progress)?;
            }
            sink.finish(progress);
            Ok(())
        });
        let model = (|| -> Result<()> {
            for item in rx_in.iter() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(PipelineError::Cancelled);
                }
                let (ids, values, offset, finished) = item?;
                let grads = net.batch_gradients(&values, ids.len(), opts.target, opts.input_saliency)?;
                if tx_out.send(Computed { ids, grads, offset, finished }).is_err() {
                    break; // the sink failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(tx_out);
        let sunk = sunk.join().map_err(|_| PipelineError::Panicked("output"))?;
        model?;
        sunk?;
        if cancel.load(Ordering::Relaxed) {
            return Err(PipelineError::Cancelled);
        }
        Ok(())
    })
}

/// Step 1 (and the accumulation of step 2 on the way): per-input gradients for every input of
/// `inputs`, streamed in batches; the raw file is written as it goes (atomically).
pub fn gradient_pass(
    agent: &Agent,
    net: &Net,
    inputs: &Path,
    opts: &PassOptions,
    progress: &mut ProgressFn,
    cancel: &AtomicBool,
) -> Result<GradientOutcome> {
    let file_size = std::fs::metadata(inputs).map(|m| m.len()).unwrap_or(0);
    let reader = InputReader::open(inputs, &agent.arch)?.with_limit(opts.max_inputs);
    let params = param_meta(agent);
    let (raw_path, raw) = open_raw(opts.raw, &opts.out_dir, &params)?;
    let numels: Vec<usize> = params.iter().map(ParamMeta::numel).collect();
    let acc = if opts.measures.is_empty() { Accumulator::new(&numels) } else { Accumulator::with_measures(&numels) };
    let keep_per_input = opts.raw != RawFormat::None;
    let inputs_acc = match opts.input_saliency {
        true => {
            Some(input_saliency::InputSaliency::new(input_saliency::keys(&agent.arch), keep_per_input, &opts.out_dir)?)
        }
        false => None,
    };
    let batch = opts.batch_size.unwrap_or_else(|| batch_size_for(net, agent)).max(1);
    let start = Instant::now();
    progress(Progress { done: 0, total: 0, total_exact: false, elapsed_s: 0.0 }, &acc);
    let mut sink = Sink {
        raw,
        acc,
        inputs: inputs_acc,
        spill_dir: &opts.out_dir,
        params: &params,
        sources: &net.sources,
        file_size,
        start,
        done: 0,
    };
    stream(reader, net, opts, batch, &mut sink, progress, cancel)?;
    if sink.done == 0 {
        return Err(PipelineError::NoInputs(inputs.to_path_buf()));
    }
    let non_finite = sink.commit_raw()?;
    let Sink { acc, inputs: input_saliency, done, .. } = sink;
    let averages = acc.averages(&params);
    let measures = match (&acc.extra, opts.measures.is_empty()) {
        (Some(extra), false) => {
            let weights: Vec<&[f32]> = agent.params.iter().map(|p| p.data.as_slice()).collect();
            Some(measures::MeasureSet::from_sums(&params, &weights, &acc.sums, extra, acc.count, &opts.measures))
        }
        _ => None,
    };
    Ok(GradientOutcome { averages, inputs: done, non_finite, raw_path, measures, input_saliency })
}
