//! The explorer's run: the gradient pass over an agent's inputs keeping every measure and the
//! input saliency (so the measure and the input view switch without a re-run), with the
//! averages so far reported every 300 ms; or finished averages read from a file.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::average::Averages;
use crate::pipeline::input_saliency::{self, InputKey, InputMeans};
use crate::pipeline::measures::{Measure, MeasureSet};
use crate::pipeline::{self, PassOptions, Progress, RawFormat};
use crate::target::Target;

use super::model::ModelSpec;
use super::{Result, StudyError};

/// How often provisional averages are reported while the pass runs.
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(300);

/// What is browsed.
#[derive(Debug, Clone)]
pub enum Source {
    /// Run the model on an agent's clean inputs.
    Agent { spec: ModelSpec, inputs: PathBuf },
    /// A finished average_gradients.json (this tool's or the Python tool's).
    Averages(PathBuf),
}

/// The agent, once loaded: what the explorer shows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSummary {
    pub summary: String,
    pub notes: Vec<String>,
    pub n_actions: usize,
    pub keys: Vec<InputKey>,
    /// Values of each key in an input as written (a Discrete key: one).
    pub input_lens: Vec<usize>,
    /// The target differentiated, and those the agent's family offers.
    pub target: Target,
    pub offered: Vec<Target>,
}

#[derive(Debug)]
pub enum BrowseMsg {
    Loaded(Box<AgentSummary>),
    Progress(Progress),
    /// Averages over the inputs done so far.
    Snapshot(Arc<Averages>),
}

/// What a finished run adds to the averages.
#[derive(Debug)]
pub struct Extras {
    pub measures: MeasureSet,
    pub inputs: InputMeans,
}

/// The final averages, and (when a model ran) every measure and the input saliency means.
#[derive(Debug)]
pub struct Browsed {
    pub averages: Arc<Averages>,
    pub extras: Option<Arc<Extras>>,
}

pub fn browse(source: &Source, send: &(dyn Fn(BrowseMsg) + Sync), cancel: &AtomicBool) -> Result<Browsed> {
    match source {
        Source::Averages(path) => {
            let avgs = Averages::read(path)?;
            if avgs.params.is_empty() {
                return Err(StudyError::Refused(format!(
                    "{} holds no parameters (was it made from an empty input set?)",
                    path.display()
                )));
            }
            Ok(Browsed { averages: Arc::new(avgs), extras: None })
        }
        Source::Agent { spec, inputs } => run(spec, inputs, send, cancel),
    }
}

fn run(
    spec: &ModelSpec,
    inputs: &std::path::Path,
    send: &(dyn Fn(BrowseMsg) + Sync),
    cancel: &AtomicBool,
) -> Result<Browsed> {
    let loaded = spec.load()?;
    let (agent, target) = (&loaded.agent, loaded.target);
    send(BrowseMsg::Loaded(Box::new(AgentSummary {
        summary: agent.arch.summary.clone(),
        notes: agent.arch.notes.clone(),
        n_actions: agent.arch.n_actions,
        keys: input_saliency::keys(&agent.arch),
        input_lens: agent.arch.branches.iter().map(|b| b.len).collect(),
        target,
        offered: Target::offered(agent.family, agent.arch.n_actions),
    })));
    let params = pipeline::param_meta(agent);
    let mut last = Instant::now() - SNAPSHOT_EVERY;
    let opts = PassOptions {
        raw: RawFormat::None,
        out_dir: PathBuf::from("."),
        batch_size: spec.batch_size,
        target,
        measures: Measure::ALL.to_vec(),
        input_saliency: true,
        max_inputs: None,
    };
    let mut progress = |p: Progress, acc: &pipeline::Accumulator| {
        send(BrowseMsg::Progress(p));
        if p.done > 0 && p.done < p.total && last.elapsed() >= SNAPSHOT_EVERY {
            last = Instant::now();
            send(BrowseMsg::Snapshot(Arc::new(acc.averages(&params))));
        }
    };
    let outcome = pipeline::gradient_pass(agent, &loaded.net, inputs, &opts, &mut progress, cancel)?;
    let extras = match (outcome.measures, outcome.input_saliency) {
        (Some(measures), Some(ia)) => Some(Arc::new(Extras { measures, inputs: ia.means() })),
        _ => None,
    };
    Ok(Browsed { averages: Arc::new(outcome.averages), extras })
}
