//! Which measure predicts the damage removing a weight does, on this agent (docs/validate.md):
//! a stratified sample of weights, each changed alone over the clean inputs, its measured damage
//! against every measure's value (Spearman's correlation with a bootstrap interval, and the
//! top-decile hit rate), and `validation.json`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::ablation::draw::{distinct, SplitMix64};
use crate::ablation::{single_damages, DamageSums, Mode};
use crate::pipeline::average::Averages;
use crate::pipeline::inputs::InputReader;
use crate::pipeline::measures::{Measure, MeasureSet};
use crate::pipeline::output::{write_err, JsonOutput};
use crate::pipeline::{self, PassOptions, PipelineError, Progress, RawFormat};
use crate::stats;
use crate::target::Target;

use super::model::Loaded;
use super::run::{Events, RunEvent};
use super::{Result, StudyError};

pub const VALIDATION: &str = "validation.json";

/// At least this many elements of each parameter tensor are sampled (or all of a smaller one).
pub const MIN_PER_TENSOR: usize = 4;
/// Most weights sampled (each is a forward pass over the inputs).
pub const MAX_SAMPLE: usize = 100_000;
/// Most bootstrap replicates.
pub const MAX_BOOTSTRAP: usize = 100_000;

/// How the validation samples, ablates and resamples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidateSettings {
    /// Weights sampled (N).
    pub sample: usize,
    /// Only the first M inputs (None: all).
    pub inputs_sample: Option<usize>,
    pub mode: Mode,
    pub bootstrap: usize,
    pub seed: u64,
}

impl Default for ValidateSettings {
    fn default() -> Self {
        ValidateSettings { sample: 512, inputs_sample: None, mode: Mode::Zero, bootstrap: 2000, seed: 0 }
    }
}

impl ValidateSettings {
    pub fn check(&self) -> Result<()> {
        let refuse = |what: String| Err(StudyError::Refused(what));
        if self.sample == 0 || self.sample > MAX_SAMPLE {
            return refuse(format!("--sample {}: expected 1 to {MAX_SAMPLE} weights", self.sample));
        }
        if self.inputs_sample == Some(0) {
            return refuse("--inputs-sample 0: at least one input is needed".into());
        }
        if self.bootstrap > MAX_BOOTSTRAP {
            return refuse(format!("--bootstrap {}: at most {MAX_BOOTSTRAP} replicates", self.bootstrap));
        }
        Ok(())
    }
}

/// The measures a validation scores: every measure but the signed mean (a sign says which way
/// a weight pushes, not how much it matters).
pub fn scored_measures() -> Vec<Measure> {
    Measure::ALL.into_iter().filter(|&m| m != Measure::Mean).collect()
}

/// The stratified sample of `n` elements (docs/validate.md): per tensor t (n_t elements) a quota
/// max(4, round(n n_t / total)), at most n_t; its elements ordered by `mean_abs` (ascending, ties
/// by flat index) and cut into 10 deciles (decile d: sorted positions d n_t / 10 up to
/// (d + 1) n_t / 10); the quota dealt to the deciles round-robin from the top one down, skipping
/// full ones; each decile's count drawn by Floyd's algorithm with SplitMix64 seeded by `seed`
/// (one generator, tensors in order, deciles from the top down). Returns (tensor, flat index),
/// in that order.
pub fn sample(mean_abs: &Averages, n: usize, seed: u64) -> Vec<(usize, usize)> {
    let total: usize = mean_abs.params.iter().map(|p| p.data.len()).sum();
    let mut rng = SplitMix64::for_draw(seed, 0);
    let mut out = Vec::new();
    for (t, p) in mean_abs.params.iter().enumerate() {
        let size = p.data.len();
        let share = (n as f64 * size as f64 / total.max(1) as f64).round() as usize;
        let quota = share.max(MIN_PER_TENSOR).min(size);
        let mut order: Vec<usize> = (0..size).collect();
        order.sort_by(|&a, &b| p.data[a].total_cmp(&p.data[b]).then(a.cmp(&b)));
        let bounds: Vec<(usize, usize)> = (0..10).map(|d| (d * size / 10, (d + 1) * size / 10)).collect();
        let mut counts = [0usize; 10];
        let mut left = quota;
        while left > 0 {
            for d in (0..10).rev() {
                if left > 0 && counts[d] < bounds[d].1 - bounds[d].0 {
                    counts[d] += 1;
                    left -= 1;
                }
            }
        }
        for d in (0..10).rev() {
            let (lo, hi) = bounds[d];
            for pos in distinct(&mut rng, hi - lo, counts[d]) {
                out.push((t, order[lo + pos]));
            }
        }
    }
    out
}

/// One sampled weight: where it is, the damage changing it alone does, and every scored
/// measure's value there (in `Validation::measures` order).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub param: usize,
    pub flat: usize,
    pub damage: f64,
    pub flip_rate: f64,
    pub measures: Vec<f64>,
}

/// How well one measure predicts the damage.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub measure: Measure,
    /// None when either side is constant over the sample.
    pub spearman: Option<f64>,
    pub interval: Option<[f64; 2]>,
    pub top_decile_hit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub agent: String,
    pub target: Target,
    pub settings: ValidateSettings,
    pub inputs: usize,
    /// Names and shapes of the agent's parameters.
    pub params: Vec<(String, Vec<usize>)>,
    pub measures: Vec<Measure>,
    pub sample: Vec<Sampled>,
    /// Best predictor first (by Spearman, undefined last; ties by name).
    pub scores: Vec<Score>,
}

impl Validation {
    pub fn best(&self) -> Option<&Score> {
        self.scores.first().filter(|s| s.spearman.is_some())
    }
}

/// `top_decile_hit`: |top 10% by `a` ∩ top 10% by `b`| / the size of the top 10%
/// (ceil(n / 10); ties by sample order).
pub fn top_decile_hit(a: &[f64], b: &[f64]) -> f64 {
    stats::top_overlap(a, b, a.len().div_ceil(10))
}

/// Every scored measure against the damage, best first (the measures on all cores: each one's
/// bootstrap is most of a validation's own time).
pub fn scores(sample: &[Sampled], measures: &[Measure], settings: &ValidateSettings) -> Vec<Score> {
    let damage: Vec<f64> = sample.iter().map(|s| s.damage).collect();
    let mut out: Vec<Score> = measures
        .par_iter()
        .enumerate()
        .map(|(k, &m)| {
            let values: Vec<f64> = sample.iter().map(|s| s.measures[k]).collect();
            Score {
                measure: m,
                spearman: stats::spearman(&values, &damage),
                interval: stats::spearman_interval(&values, &damage, settings.bootstrap, settings.seed),
                top_decile_hit: top_decile_hit(&values, &damage),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let key = |s: &Score| s.spearman.unwrap_or(f64::NEG_INFINITY);
        key(b).total_cmp(&key(a)).then(a.measure.name().cmp(b.measure.name()))
    });
    out
}

/// The damage of each sampled element over the first `settings.inputs_sample` inputs.
fn damages(
    loaded: &Loaded,
    inputs: &Path,
    elements: &[(usize, usize)],
    settings: &ValidateSettings,
    batch_size: Option<usize>,
    events: &mut Events,
    cancel: &AtomicBool,
) -> Result<Vec<DamageSums>> {
    let (agent, net) = (&loaded.agent, &loaded.net);
    let mut reader = InputReader::open(inputs, &agent.arch)?.with_limit(settings.inputs_sample);
    let batch = batch_size.unwrap_or_else(|| pipeline::batch_size_for(net, agent)).max(1);
    let mut sums = vec![DamageSums::default(); elements.len()];
    let start = std::time::Instant::now();
    let mut done = 0;
    loop {
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        let n = reader.next_batch(batch, &mut ids, &mut values)?;
        if n == 0 {
            break;
        }
        let prepared = crate::ablation::prepare(net, &values, n, loaded.target).map_err(PipelineError::from)?;
        let stop = || cancel.load(Ordering::Relaxed);
        // (in inputs: this batch's share of the weights done)
        let finished = reader.finished();
        let mut report = |at: usize| {
            events(RunEvent::Progress(Progress {
                done: done + n * at / elements.len().max(1),
                total: settings.inputs_sample.unwrap_or(done + n).max(done + n),
                total_exact: finished,
                elapsed_s: start.elapsed().as_secs_f64(),
            }))
        };
        let (mode, target) = (settings.mode, loaded.target);
        if !single_damages(net, &prepared, elements, mode, target, &mut sums, &stop, &mut report)
            .map_err(PipelineError::from)?
        {
            return Err(PipelineError::Cancelled.into());
        }
        done += n;
    }
    Ok(sums)
}

/// The whole validation of `loaded` on `inputs`.
pub fn validate(
    loaded: &Loaded,
    inputs: &Path,
    settings: &ValidateSettings,
    batch_size: Option<usize>,
    events: &mut Events,
    cancel: &AtomicBool,
) -> Result<Validation> {
    settings.check()?;
    crate::paths::must_exist(inputs, "inputs file")?;
    let measures = scored_measures();
    let opts = PassOptions {
        raw: RawFormat::None,
        out_dir: std::env::temp_dir(),
        batch_size,
        target: loaded.target,
        measures: measures.clone(),
        input_saliency: false,
        max_inputs: settings.inputs_sample,
    };
    events(RunEvent::Note("gradient pass: the measures".into()));
    let pass = pipeline::gradient_pass(
        &loaded.agent,
        &loaded.net,
        inputs,
        &opts,
        &mut |p, _| events(RunEvent::Progress(p)),
        cancel,
    )?;
    let set: MeasureSet = pass.measures.ok_or(StudyError::Refused("the gradient pass kept no measures".into()))?;
    let elements = sample(&pass.averages, settings.sample, settings.seed);
    events(RunEvent::Note(format!("ablating {} weights one at a time over {} inputs", elements.len(), pass.inputs)));
    let sums = damages(loaded, inputs, &elements, settings, batch_size, events, cancel)?;
    let sample: Vec<Sampled> = elements
        .iter()
        .zip(&sums)
        .map(|(&(p, i), s)| Sampled {
            param: p,
            flat: i,
            damage: s.damage(),
            flip_rate: s.flip_rate(),
            measures: measures.iter().map(|&m| set.get(m).map(|v| v[p].data[i]).unwrap_or(f64::NAN)).collect(),
        })
        .collect();
    let scores = scores(&sample, &measures, settings);
    Ok(Validation {
        agent: loaded.zip_name(),
        target: loaded.target,
        settings: *settings,
        inputs: pass.inputs,
        params: loaded.agent.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect(),
        measures,
        sample,
        scores,
    })
}

/// A validation the explorer runs in the background: the agent and inputs of its evidence
/// engine, and the settings (`--validate-sample`, `--validate-inputs`, the ablation's mode and
/// seed).
#[derive(Debug, Clone)]
pub struct ValidateJob {
    pub engine: super::evidence::EngineSpec,
    pub settings: ValidateSettings,
}

/// Runs `job`: loads the agent, validates; `progress` gets the phase and the fraction done.
pub fn run_job(job: &ValidateJob, progress: &(dyn Fn(&str, f64) + Sync), cancel: &AtomicBool) -> Result<Validation> {
    let loaded = job.engine.spec.load()?;
    let mut phase = "measures";
    let mut events = |e: RunEvent| match e {
        RunEvent::Note(n) if n.starts_with("ablating") => phase = "ablating",
        RunEvent::Progress(p) => progress(phase, p.done as f64 / p.total.max(1) as f64),
        _ => {}
    };
    validate(&loaded, &job.engine.inputs, &job.settings, job.engine.spec.batch_size, &mut events, cancel)
}

/// A flat index as the full index in `shape` (row-major).
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &size) in shape.iter().enumerate().rev() {
        let size = size.max(1);
        index[d] = flat % size;
        flat /= size;
    }
    index
}

type W = crate::pipeline::output::JsonFileWriter;

fn write_metadata(w: &mut W, v: &Validation) -> std::io::Result<()> {
    w.key("metadata")?;
    w.begin_object()?;
    w.key_string("agent", &v.agent)?;
    w.key_string("target", &v.target.to_string())?;
    w.key_string("mode", &v.settings.mode.to_string())?;
    w.key_int("sample", v.sample.len() as i64)?;
    w.key_int("inputs", v.inputs as i64)?;
    w.key_int("seed", v.settings.seed as i64)?;
    w.key_int("bootstrap", v.settings.bootstrap as i64)?;
    w.end_object()
}

fn write_sampled(w: &mut W, v: &Validation, s: &Sampled) -> std::io::Result<()> {
    let (name, shape) = &v.params[s.param];
    w.begin_object()?;
    w.key_string("layer_name", name)?;
    w.key("index")?;
    w.begin_array()?;
    for i in unravel(s.flat, shape) {
        w.int(i as i64)?;
    }
    w.end_array()?;
    w.key_float("damage", s.damage)?;
    w.key_float("flip_rate", s.flip_rate)?;
    w.key("measures")?;
    w.begin_object()?;
    for (m, &x) in v.measures.iter().zip(&s.measures) {
        w.key_opt_float(m.name(), Some(x))?;
    }
    w.end_object()?;
    w.end_object()
}

fn write_score(w: &mut W, s: &Score) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_string("measure", s.measure.name())?;
    w.key_opt_float("spearman", s.spearman)?;
    w.key_opt_pair("interval", s.interval)?;
    w.key_float("top_decile_hit", s.top_decile_hit)?;
    w.end_object()
}

/// Writes `validation.json` into `out_dir` (atomically); returns its path.
pub fn write(out_dir: &Path, v: &Validation) -> Result<PathBuf> {
    let dest = out_dir.join(VALIDATION);
    let mut out = JsonOutput::create(&dest)?;
    let w = out.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        write_metadata(w, v)?;
        w.key("sample")?;
        w.begin_array()?;
        for s in &v.sample {
            write_sampled(w, v, s)?;
        }
        w.end_array()?;
        w.key("measures")?;
        w.begin_array()?;
        for s in &v.scores {
            write_score(w, s)?;
        }
        w.end_array()?;
        w.end_object()
    })();
    res.map_err(write_err(&dest))?;
    out.commit()?;
    Ok(dest)
}

/// The table printed at the end, best predictor first.
pub fn table(v: &Validation) -> Vec<String> {
    let f = |x: Option<f64>| x.map(|r| format!("{r:+.3}")).unwrap_or_else(|| "   -  ".into());
    let mut lines = vec![format!(
        "{} weights ablated alone over {} inputs ({}); Spearman with the damage [95% bootstrap interval], top-decile hit:",
        v.sample.len(),
        v.inputs,
        v.settings.mode
    )];
    for s in &v.scores {
        let iv = s.interval.map(|[lo, hi]| format!("[{lo:+.3}, {hi:+.3}]")).unwrap_or_else(|| "(none)".into());
        lines.push(format!("  {:<13} {}  {iv:<17} {:.2}", s.measure.name(), f(s.spearman), s.top_decile_hit));
    }
    match v.best() {
        Some(b) => lines.push(format!(
            "best predictor of the damage on this agent: {} (Spearman {})",
            b.measure.name(),
            f(b.spearman)
        )),
        None => lines.push("no measure's correlation is defined (the damage is the same for every weight)".into()),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::average::AvgParam;

    fn avgs(sizes: &[usize]) -> Averages {
        Averages {
            num_examples: Some(1),
            params: sizes
                .iter()
                .enumerate()
                .map(|(t, &n)| AvgParam {
                    name: format!("p{t}"),
                    shape: vec![n],
                    data: (0..n).map(|i| ((i * 7919 + t) % n) as f64).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_sample_is_stratified_by_tensor_and_decile() {
        let a = avgs(&[1000, 10, 3]);
        let s = sample(&a, 100, 7);
        let per: Vec<usize> = (0..3).map(|t| s.iter().filter(|x| x.0 == t).count()).collect();
        // round(100 * 1000 / 1013) = 99; round(0.99) = 1 -> 4; 3 elements: all 3
        assert_eq!(per, [99, 4, 3]);
        // every element once
        let mut seen = s.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), s.len());
        // p0: 99 over 10 deciles, round-robin from the top: 10 each, the lowest decile 9
        let p0 = &a.params[0].data;
        let mut sorted: Vec<usize> = (0..1000).collect();
        sorted.sort_by(|&x, &y| p0[x].total_cmp(&p0[y]).then(x.cmp(&y)));
        let rank: std::collections::HashMap<usize, usize> = sorted.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        let per_decile: Vec<usize> =
            (0..10).map(|d| s.iter().filter(|x| x.0 == 0 && rank[&x.1] / 100 == d).count()).collect();
        assert_eq!(per_decile, [9, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
        // p1 (10 elements, quota 4): the top four deciles, one element each
        let p1 = &a.params[1].data;
        let mut got: Vec<f64> = s.iter().filter(|x| x.0 == 1).map(|x| p1[x.1]).collect();
        got.sort_by(f64::total_cmp);
        assert_eq!(got, [6.0, 7.0, 8.0, 9.0]);
        // the same seed, the same sample; another seed, another
        assert_eq!(sample(&a, 100, 7), s);
        assert_ne!(sample(&a, 100, 8), s);
    }

    #[test]
    fn unravel_is_row_major() {
        assert_eq!(unravel(0, &[2, 3]), [0, 0]);
        assert_eq!(unravel(5, &[2, 3]), [1, 2]);
        assert_eq!(unravel(23, &[2, 3, 4]), [1, 2, 3]);
        assert_eq!(unravel(3, &[4]), [3]);
    }

    #[test]
    fn scores_rank_the_best_predictor_first() {
        let sample: Vec<Sampled> = (0..20)
            .map(|i| Sampled {
                param: 0,
                flat: i,
                damage: i as f64,
                flip_rate: 0.0,
                // a perfect predictor, an inverted one, a constant
                measures: vec![2.0 * i as f64, -(i as f64), 1.0],
            })
            .collect();
        let ms = [Measure::MeanAbs, Measure::MeanSq, Measure::MaxAbs];
        let s = scores(&sample, &ms, &ValidateSettings { bootstrap: 50, ..Default::default() });
        assert_eq!(s[0].measure, Measure::MeanAbs);
        assert_eq!(s[0].spearman, Some(1.0));
        assert_eq!(s[0].top_decile_hit, 1.0);
        assert_eq!(s[1].measure, Measure::MeanSq);
        assert_eq!(s[1].spearman, Some(-1.0));
        assert_eq!(s[1].top_decile_hit, 0.0);
        assert_eq!((s[2].measure, s[2].spearman), (Measure::MaxAbs, None), "a constant has no correlation, last");
        assert_eq!(s[0].interval, Some([1.0, 1.0]));
    }
}
