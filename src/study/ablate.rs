//! An ablation as a user asks for it: the settings (mode, random draws, seed) with their
//! limits, the run over every input, the file and the one-line summary. The same for `saliency
//! ablate`, `run --ablate` and the explorer's `A`.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::ablation::{self, report, Change, Mode, Options, Report, Stat};
use crate::format::num;
use crate::pipeline::Progress;

use super::model::Loaded;
use super::{Result, StudyError};

/// How weights are ablated and compared with random ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AblationSettings {
    pub mode: Mode,
    /// Random draws of as many weights per parameter (0: no baseline).
    pub random: usize,
    /// Most draws accepted (each is a forward pass over every input).
    pub max_random: usize,
    pub seed: u64,
}

impl Default for AblationSettings {
    fn default() -> Self {
        AblationSettings { mode: Mode::Zero, random: ablation::DEFAULT_DRAWS, max_random: ablation::MAX_DRAWS, seed: 0 }
    }
}

impl AblationSettings {
    /// The number of random draws is capped (each is a forward pass over every input).
    pub fn check(&self) -> Result<()> {
        if self.random > self.max_random {
            return Err(StudyError::Refused(format!(
                "--random {} is over the limit of {} draws (each is a forward pass over every input); raise it \
                 with --max-random",
                self.random, self.max_random
            )));
        }
        Ok(())
    }

    pub fn options(&self, loaded: &Loaded, batch_size: Option<usize>) -> Options {
        Options { mode: self.mode, target: loaded.target, random: self.random, seed: self.seed, batch_size }
    }
}

/// An ablation to run: which weights, over which inputs, how.
pub struct Ablation<'a> {
    pub inputs: &'a Path,
    pub change: &'a Change,
    /// Names the change in messages ("the selection of k=2 m=4", a file's path).
    pub what: &'a str,
    pub settings: &'a AblationSettings,
    pub batch_size: Option<usize>,
}

/// Ablates the change over every input.
pub fn run(loaded: &Loaded, a: &Ablation, progress: &mut dyn FnMut(Progress), cancel: &AtomicBool) -> Result<Report> {
    a.settings.check()?;
    if a.change.is_empty() {
        return Err(StudyError::Refused(format!("{} selects no weights: there is nothing to ablate", a.what)));
    }
    crate::paths::must_exist(a.inputs, "inputs file")?;
    let opts = a.settings.options(loaded, a.batch_size);
    Ok(ablation::run(&loaded.agent, &loaded.net, a.inputs, a.change, &opts, progress, cancel)?)
}

/// Writes `ablation.json` into `out_dir`; returns its path.
pub fn write(out_dir: &Path, report: &Report) -> Result<std::path::PathBuf> {
    let dest = out_dir.join(report::ABLATION);
    report::write(&dest, report)?;
    Ok(dest)
}

/// The headline numbers of a report: flip rate, the target's drop (named by the target: "Q
/// drop", "log-prob drop", ...) and KL, each against the random draws, and the first-order
/// prediction.
pub fn summary(report: &Report) -> String {
    let vs = |name: &str, sel: f64, st: Option<&Stat>| match st {
        Some(st) => {
            format!(
                "{name} {} (random {} ± {}, percentile {:.0})",
                num(sel),
                num(st.mean),
                num(st.std),
                100.0 * st.percentile
            )
        }
        None => format!("{name} {}", num(sel)),
    };
    let (s, r) = (&report.selection, report.random.as_ref());
    format!(
        "ablated {} weights ({}, target {}) on {} inputs: {}; {}; {}; predicted drop {}",
        report.num_weights,
        report.mode,
        report.target,
        report.per_input.len(),
        vs("flip rate", s.flip_rate, r.map(|b| &b.flip_rate)),
        vs(report.target.drop_name(), s.mean_target_drop, r.map(|b| &b.mean_target_drop)),
        vs("KL", s.mean_kl, r.map(|b| &b.mean_kl)),
        num(s.mean_predicted_drop),
    )
}
