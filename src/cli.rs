//! The command line. Every flag of the Python tool is accepted in both spellings
//! (`--agent-path` and `--agent_path`).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ablation::Mode;
use crate::agent::{Activation, AgentLimits, ArchOverrides};
use crate::colormap::{ColorChoice, Colormap};
use crate::pipeline::measures::{Measure, MeasureList};
use crate::study::ablate::AblationSettings;
use crate::study::candidates::parse_saliency_choice;
use crate::study::model::ModelSpec;
use crate::target::Target;

#[derive(Debug, Parser)]
#[command(
    name = "saliency",
    version,
    about = "Gradient saliency for Stable-Baselines3 agents (DQN, QR-DQN, PPO, A2C, MaskablePPO): a terminal \
             explorer and drop-in replacements for the Python SaliencyTooling scripts",
    after_help = "With no command, opens the explorer (on the bundled demo when no --agent-path is given)."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub explore: ExploreArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The interactive explorer (the default when no command is given).
    Explore(ExploreArgs),
    /// The whole pipeline (the Python tool's initial_test.py): gradients, averages, candidates.
    Run(RunArgs),
    /// Step 1: per-input gradients of the target (the greedy action's Q-value by default) (weight_gradients.json).
    Gradients(GradientsArgs),
    /// Step 2: mean gradient magnitude per weight (average_gradients.json).
    Average(AverageArgs),
    /// Step 3: top k weights per candidate neuron plus m more globally (candidate_weights.json).
    Extract(ExtractArgs),
    /// Evidence: change the selected weights and measure what it does to the agent's decisions,
    /// against the same number of random weights (ablation.json).
    Ablate(AblateArgs),
    /// Which measure predicts the damage removing a weight does: a stratified sample of weights,
    /// each ablated alone, correlated with every measure (validation.json).
    Validate(ValidateArgs),
    /// Many agents: every agent under the paths (research-layout folders, zips, RL Zoo logs),
    /// each analysed as `run` does, summarised across seeds and checkpoints (sweep.json).
    Sweep(SweepArgs),
    /// Print a shell completion script (e.g. `saliency completions bash > ~/.local/share/bash-completion/completions/saliency`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write one page per command into DIR.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Largest k, m or batch size accepted (far beyond any layer; keeps the numbers exact in JSON).
pub const MAX_COUNT: i128 = 1_000_000_000_000;

/// A flag's value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("must be 0 or more, found {0}")]
    Negative(i128),
    #[error("{0} is too large (at most {MAX_COUNT})")]
    TooLarge(String),
    #[error("expected a whole number, found '{0}'")]
    NotANumber(String),
    #[error("{flag} {name}: unknown activation (known: {known})", known = Activation::names())]
    UnknownActivation { flag: &'static str, name: String },
}

/// A count flag (k, m, batch size): a non-negative integer, with a clear message otherwise.
pub fn count(text: &str) -> Result<usize, FlagError> {
    match text.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(FlagError::Negative(v)),
        Ok(v) if v > MAX_COUNT => Err(FlagError::TooLarge(v.to_string())),
        Ok(v) => Ok(v as usize),
        Err(_)
            if text.trim().trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) && !text.trim().is_empty() =>
        {
            Err(FlagError::TooLarge(text.trim().to_string()))
        }
        Err(_) => Err(FlagError::NotANumber(text.to_string())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RawGradients {
    /// weight_gradients.json, as the Python tool writes it
    Json,
    /// weight_gradients/<parameter>.npy (float32, shape (inputs, *parameter)) plus index.json
    Npy,
    /// skip the per-input file (the averages and the selection are the same)
    None,
}

/// How to load and run the model (shared by the headless commands and the explorer).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The policy's activation, when the zip's is unknown or wrong (ReLU, Tanh, LeakyReLU, ELU, GELU, SiLU, Sigmoid, ...)
    #[arg(long, value_name = "NAME")]
    pub activation: Option<String>,
    /// The activation after each Linear of a custom `features_extractor.mlp` (default: the policy's)
    #[arg(long = "extractor-activation", alias = "extractor_activation", value_name = "NAME")]
    pub extractor_activation: Option<String>,
    /// Largest policy.pth accepted, in MiB
    #[arg(long = "max-agent-mb", alias = "max_agent_mb", default_value_t = 4096, value_name = "MIB")]
    pub max_agent_mb: u64,
    /// Inputs per batch (default: chosen from the network's size)
    #[arg(long = "batch-size", alias = "batch_size", value_parser = count, value_name = "N")]
    pub batch_size: Option<usize>,
    /// VecNormalize statistics to apply to the raw inputs (default: vec_normalize.pkl or
    /// vecnormalize.pkl beside the zip, or the RL Zoo's <zip name>/vecnormalize.pkl, when present)
    #[arg(long = "vec-normalize", alias = "vec_normalize", value_name = "FILE", conflicts_with = "no_vec_normalize")]
    pub vec_normalize: Option<PathBuf>,
    /// Do not apply VecNormalize statistics found beside the agent
    #[arg(long = "no-vec-normalize", alias = "no_vec_normalize")]
    pub no_vec_normalize: bool,
}

impl ModelArgs {
    /// The architecture overrides the flags state (unknown names are errors).
    pub fn overrides(&self) -> Result<ArchOverrides, FlagError> {
        let parse = |text: &Option<String>, flag: &'static str| -> Result<Option<Activation>, FlagError> {
            match text {
                None => Ok(None),
                Some(t) => {
                    Activation::parse(t).map(Some).ok_or_else(|| FlagError::UnknownActivation { flag, name: t.clone() })
                }
            }
        };
        let vec_normalize = match (&self.vec_normalize, self.no_vec_normalize) {
            (_, true) => crate::agent::vecnorm::Choice::Off,
            (Some(f), false) => crate::agent::vecnorm::Choice::File(f.clone()),
            (None, false) => crate::agent::vecnorm::Choice::Auto,
        };
        Ok(ArchOverrides {
            activation: parse(&self.activation, "--activation")?,
            extractor_activation: parse(&self.extractor_activation, "--extractor-activation")?,
            vec_normalize,
        })
    }

    pub fn limits(&self) -> AgentLimits {
        AgentLimits { max_policy_bytes: self.max_agent_mb.saturating_mul(1 << 20), ..AgentLimits::default() }
    }

    /// The agent at `agent_path`, loaded as these flags say, for `target`.
    pub fn spec(&self, agent_path: &Path, target: Option<Target>) -> Result<ModelSpec, FlagError> {
        Ok(ModelSpec {
            agent_path: agent_path.to_path_buf(),
            device: self.device.clone(),
            overrides: self.overrides()?,
            limits: self.limits(),
            batch_size: self.batch_size,
            target,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Agent directory (agent.zip, activation_inputs/clean_inputs.json,
    /// patching_results/cross_metric_summary.json) or an agent .zip file
    #[arg(long = "agent-path", alias = "agent_path", value_name = "PATH")]
    pub agent_path: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Per-input gradients: json (weight_gradients.json), npy (weight_gradients/*.npy) or none
    #[arg(long = "raw-gradients", alias = "raw_gradients", value_enum, default_value = "json")]
    pub raw_gradients: RawGradients,
    /// The scalar differentiated per input: q (default; the Python tool's), margin, action:N or
    /// logsoftmax for DQN and QR-DQN; logprob (default), logit, margin, action:N or value for PPO and A2C
    #[arg(long, value_parser = Target::parse, value_name = "T")]
    pub target: Option<Target>,
    /// Also write measures.safetensors with these measures (comma-separated, or all): mean-abs,
    /// mean, mean-sq, max-abs, mean-abs-gxw, abs-mean-gxw, nonzero, fisher, variance, snr
    #[arg(long, value_parser = MeasureList::parse, value_name = "LIST")]
    pub measures: Option<MeasureList>,
    /// Also write input_saliency.safetensors: the gradient with respect to the observation
    #[arg(long = "input-saliency", alias = "input_saliency")]
    pub input_saliency: bool,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// Where the inputs and candidates come from when the agent folder does not have them.
#[derive(Debug, Clone, Args, Default)]
pub struct SourceArgs {
    /// Observations to use instead of <agent dir>/activation_inputs/clean_inputs.json: that
    /// JSON format, a .npy of shape (N, *observation shape), or a .npz with one array per Dict key
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,
    /// Without patching results (cross_metric_summary.json), take as candidates the N hidden
    /// neurons of largest mean |gradient|: saliency:N
    #[arg(long = "candidates-by", alias = "candidates_by", value_parser = parse_saliency_choice, value_name = "saliency:N")]
    pub candidates_by: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct Quiet {
    /// No progress bar and no summary lines (warnings and errors still go to stderr)
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Top k weights per candidate neuron
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = count)]
    pub k: usize,
    /// Additional weights selected globally
    #[arg(long, default_value_t = 4, allow_negative_numbers = true, value_parser = count)]
    pub m: usize,
    /// useful_neurons.json, needed for exp_<N>_<layer> candidate keys (default: the Python tool's
    /// path, else <agent dir>/useful_neurons.json)
    #[arg(long = "useful-neurons-path", alias = "useful_neurons_path", value_name = "FILE")]
    pub useful_neurons_path: Option<PathBuf>,
}

/// How weights are ablated and compared with random ones (`ablate`, `run --ablate`).
#[derive(Debug, Clone, Args)]
pub struct AblationArgs {
    /// zero, or scale:F to multiply the selected weights by F
    #[arg(long, default_value = "zero", value_parser = Mode::parse, value_name = "MODE")]
    pub mode: Mode,
    /// Random draws of as many weights per parameter, for the baseline (0: none)
    #[arg(long, default_value_t = crate::ablation::DEFAULT_DRAWS, value_parser = count, value_name = "R")]
    pub random: usize,
    /// Most random draws accepted (each is a forward pass over every input)
    #[arg(long = "max-random", alias = "max_random", default_value_t = crate::ablation::MAX_DRAWS, value_parser = count, value_name = "N")]
    pub max_random: usize,
    /// Seed of the random draws (the same seed gives the same draws)
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
}

impl AblationArgs {
    pub fn settings(&self) -> AblationSettings {
        AblationSettings { mode: self.mode, random: self.random, max_random: self.max_random, seed: self.seed }
    }
}

/// How big a validation is (the explorer's `V`, a sweep's --validate).
#[derive(Debug, Clone, Args)]
pub struct ValidationArgs {
    /// Weights sampled by the validation (V in the explorer; --validate in a sweep)
    #[arg(long = "validate-sample", default_value_t = 512, value_parser = count, value_name = "N")]
    pub validate_sample: usize,
    /// Only the first M inputs for the validation (default: all)
    #[arg(long = "validate-inputs", value_parser = count, value_name = "M")]
    pub validate_inputs: Option<usize>,
}

impl ValidationArgs {
    /// The validation's settings, with the ablation's mode and seed.
    pub fn settings(&self, ablation: &AblationArgs) -> crate::study::validate::ValidateSettings {
        crate::study::validate::ValidateSettings {
            sample: self.validate_sample,
            inputs_sample: self.validate_inputs,
            mode: ablation.mode,
            seed: ablation.seed,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct AblateArgs {
    /// Agent directory or .zip
    #[arg(long = "agent-path", alias = "agent_path", value_name = "PATH")]
    pub agent_path: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The selection to ablate (default: <output dir>/candidate_weights.json)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["k", "m"])]
    pub candidates: Option<PathBuf>,
    /// Select with this k instead of reading a candidate file (as `extract` would)
    #[arg(long, allow_negative_numbers = true, value_parser = count)]
    pub k: Option<usize>,
    /// Select with this m instead of reading a candidate file (as `extract` would)
    #[arg(long, allow_negative_numbers = true, value_parser = count)]
    pub m: Option<usize>,
    /// useful_neurons.json, for exp_<N>_<layer> candidate keys (with --k/--m)
    #[arg(long = "useful-neurons-path", alias = "useful_neurons_path", value_name = "FILE")]
    pub useful_neurons_path: Option<PathBuf>,
    #[command(flatten)]
    pub sources: SourceArgs,
    /// The scalar compared before and after (default: q, or logprob for a policy; see `run --help`)
    #[arg(long, value_parser = Target::parse, value_name = "T")]
    pub target: Option<Target>,
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Output directory (default: <agent dir>/gradient_analysis)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Agent directory or .zip
    #[arg(long = "agent-path", alias = "agent_path", value_name = "PATH")]
    pub agent_path: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Observations instead of <agent dir>/activation_inputs/clean_inputs.json: the clean-inputs
    /// JSON, a .npy or a .npz
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,
    /// The scalar whose damage is measured (default: q, or logprob for a policy; see `run --help`)
    #[arg(long, value_parser = Target::parse, value_name = "T")]
    pub target: Option<Target>,
    /// Weights sampled (stratified by tensor and by decile of mean |gradient|)
    #[arg(long, default_value_t = 512, value_parser = count, value_name = "N")]
    pub sample: usize,
    /// Only the first M inputs, for the measures and the damage (default: all)
    #[arg(long = "inputs-sample", alias = "inputs_sample", value_parser = count, value_name = "M")]
    pub inputs_sample: Option<usize>,
    /// zero, or scale:F to multiply each sampled weight by F
    #[arg(long, default_value = "zero", value_parser = Mode::parse, value_name = "MODE")]
    pub mode: Mode,
    /// Bootstrap replicates of each correlation's interval
    #[arg(long, default_value_t = 2000, value_parser = count, value_name = "REPS")]
    pub bootstrap: usize,
    /// Seed of the sample and the bootstrap
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Output directory (default: <agent dir>/gradient_analysis)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

impl ValidateArgs {
    pub fn settings(&self) -> crate::study::validate::ValidateSettings {
        crate::study::validate::ValidateSettings {
            sample: self.sample,
            inputs_sample: self.inputs_sample,
            mode: self.mode,
            bootstrap: self.bootstrap,
            seed: self.seed,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Rank the selection by this measure instead of mean-abs (gradient_magnitude then holds it)
    #[arg(long = "select-by", alias = "select_by", value_parser = Measure::parse_select_by, value_name = "MEASURE")]
    pub select_by: Option<Measure>,
    /// Also ablate the selection against random weights (writes ablation.json)
    #[arg(long)]
    pub ablate: bool,
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Output directory (default: <agent dir>/gradient_analysis)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Clone, Args)]
pub struct GradientsArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Output directory (default: <agent dir>/gradient_analysis)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Clone, Args)]
pub struct AverageArgs {
    /// weight_gradients.json
    #[arg(long = "gradients-path", alias = "gradients_path", value_name = "FILE")]
    pub gradients_path: PathBuf,
    /// Output directory (default: the gradients file's folder)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Clone, Args)]
pub struct ExtractArgs {
    /// cross_metric_summary.json (its common_neurons are the candidates)
    #[arg(long = "cross-metric-path", alias = "cross_metric_path", value_name = "FILE")]
    pub cross_metric_path: PathBuf,
    /// average_gradients.json
    #[arg(long = "average-gradients-path", alias = "average_gradients_path", value_name = "FILE")]
    pub average_gradients_path: PathBuf,
    /// Rank by this measure of measures.safetensors instead of the averages
    #[arg(long = "select-by", alias = "select_by", value_parser = Measure::parse_select_by, value_name = "MEASURE")]
    pub select_by: Option<Measure>,
    /// measures.safetensors for --select-by (default: beside the averages file)
    #[arg(long = "measures-path", alias = "measures_path", value_name = "FILE")]
    pub measures_path: Option<PathBuf>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Output directory (default: the averages file's folder)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: Quiet,
}

/// How the explorer draws.
#[derive(Debug, Clone, Args)]
pub struct DisplayArgs {
    /// Heatmap colormap
    #[arg(long, value_enum, ignore_case = true, default_value = "viridis")]
    pub colormap: Colormap,
    /// Colour output
    #[arg(long, value_enum, ignore_case = true, default_value = "auto")]
    pub color: ColorChoice,
    /// Capture the mouse (click to select, wheel to scroll); off by default so copy and paste work
    #[arg(long)]
    pub mouse: bool,
}

/// `saliency explore PATH... --sweep [FLAGS]` is `saliency sweep PATH... --explore [FLAGS]`
/// (and so is `saliency PATH... --sweep`): the sweep's flags all apply. Other command lines
/// are returned as they are.
pub fn rewrite_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if args.len() < 2 || !args.iter().skip(1).any(|a| a == "--sweep") {
        return args;
    }
    let first = args[1].to_string_lossy();
    let command_given = <Cli as clap::CommandFactory>::command().get_subcommands().any(|c| c.get_name() == first);
    if command_given && first != "explore" {
        return args;
    }
    let skip = if first == "explore" { 2 } else { 1 };
    let mut out = vec![args[0].clone(), "sweep".into()];
    out.extend(args.into_iter().skip(skip).filter(|a| a != "--sweep"));
    out.push("--explore".into());
    out
}

#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// A sweep's output folder (its agents table), or an agent folder or zip (as --agent-path);
    /// with --sweep, the paths to sweep and watch
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Agent directory or .zip to run (default: the bundled demo)
    #[arg(long = "agent-path", alias = "agent_path", value_name = "PATH")]
    pub agent_path: Option<PathBuf>,
    /// Open finished averages instead of running a model (this tool's or the Python tool's file)
    #[arg(long = "average-gradients", aliases = ["average_gradients", "average-gradients-path", "average_gradients_path"], value_name = "FILE")]
    pub average_gradients: Option<PathBuf>,
    /// cross_metric_summary.json (default: <agent dir>/patching_results/cross_metric_summary.json)
    #[arg(long = "cross-metric", aliases = ["cross_metric", "cross-metric-path", "cross_metric_path"], value_name = "FILE")]
    pub cross_metric: Option<PathBuf>,
    /// useful_neurons.json, for exp_<N>_<layer> candidate keys
    #[arg(long = "useful-neurons", aliases = ["useful_neurons", "useful-neurons-path", "useful_neurons_path"], value_name = "FILE")]
    pub useful_neurons: Option<PathBuf>,
    /// Where `e` exports (default: <agent dir>/gradient_analysis, or the averages file's folder)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Initial k (top weights per neuron)
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = count)]
    pub k: usize,
    /// Initial m (additional weights)
    #[arg(long, default_value_t = 4, allow_negative_numbers = true, value_parser = count)]
    pub m: usize,
    #[command(flatten)]
    pub display: DisplayArgs,
    /// The scalar differentiated (default: q, or logprob for a policy; `t` changes it)
    #[arg(long, value_parser = Target::parse, value_name = "T")]
    pub target: Option<Target>,
    /// Names of the observation's values for the input view: a JSON list, or an object from
    /// observation key to a list
    #[arg(long = "feature-names", alias = "feature_names", value_name = "FILE")]
    pub feature_names: Option<PathBuf>,
    /// How the evidence line and `A` ablate (as `saliency ablate`)
    #[command(flatten)]
    pub ablation: AblationArgs,
    #[command(flatten)]
    pub validation: ValidationArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// `saliency sweep PATH...` and `saliency sweep merge OUT`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub merge: Option<SweepCommand>,
    /// Agent folders, agent zips, RL Zoo log folders (any depth), folders of these, or @FILE
    /// listing paths one per line
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Where the sweep writes (agents/<id>/, manifest.jsonl, sweep.json, sweep.csv)
    #[arg(long = "output-dir", alias = "output_dir", value_name = "DIR", default_value = "sweep")]
    pub output_dir: PathBuf,
    /// Observations for agents without their own clean_inputs.json: FILE for all, or ENV_ID=FILE
    /// for one environment (repeatable); the clean-inputs JSON, a .npy or a .npz
    #[arg(long, value_name = "[ENV_ID=]FILE")]
    pub inputs: Vec<String>,
    /// Candidates for agents without patching results: the N hidden neurons of largest saliency
    #[arg(long = "candidates-by", alias = "candidates_by", value_parser = parse_saliency_choice, default_value = "saliency:10", value_name = "saliency:N")]
    pub candidates_by: usize,
    /// useful_neurons.json, for exp_<N>_<layer> candidate keys
    #[arg(long = "useful-neurons-path", alias = "useful_neurons_path", value_name = "FILE")]
    pub useful_neurons_path: Option<PathBuf>,
    /// Top k weights per candidate neuron
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = count)]
    pub k: usize,
    /// Additional weights selected globally
    #[arg(long, default_value_t = 4, allow_negative_numbers = true, value_parser = count)]
    pub m: usize,
    /// The scalar differentiated (see `run --help`)
    #[arg(long, value_parser = Target::parse, value_name = "T")]
    pub target: Option<Target>,
    /// Also write measures.safetensors with these measures (comma-separated, or all)
    #[arg(long, value_parser = MeasureList::parse, value_name = "LIST")]
    pub measures: Option<MeasureList>,
    /// Rank the selection, and summarise, by this measure instead of mean-abs
    #[arg(long = "select-by", alias = "select_by", value_parser = Measure::parse_select_by, value_name = "MEASURE")]
    pub select_by: Option<Measure>,
    /// Per-input gradients: json, npy or none
    #[arg(long = "raw-gradients", alias = "raw_gradients", value_enum, default_value = "json")]
    pub raw_gradients: RawGradients,
    /// Also ablate each agent's selection against random weights (ablation.json)
    #[arg(long)]
    pub ablate: bool,
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Also validate each agent's measures against the damage (validation.json, as `saliency
    /// validate` with --mode and --seed); sweep.json then holds the correlations and the
    /// groups' IQM of them
    #[arg(long)]
    pub validate: bool,
    #[command(flatten)]
    pub validation: ValidationArgs,
    /// Group agents by the first capture group of this regular expression on their path
    /// (default: by algorithm, environment and parameters)
    #[arg(long = "group-by", alias = "group_by", value_name = "REGEX")]
    pub group_by: Option<String>,
    /// Weights compared between a run's checkpoints and its final model (top-K overlap)
    #[arg(long, default_value_t = 100, value_parser = count, value_name = "K")]
    pub top: usize,
    /// Bootstrap replicates of each group's intervals
    #[arg(long, default_value_t = 2000, value_parser = count, value_name = "REPS")]
    pub bootstrap: usize,
    /// Keep every N-th checkpoint of a run (and the last)
    #[arg(long, value_parser = count, value_name = "N")]
    pub every: Option<usize>,
    /// Agents analysed at once (default: the number of cores)
    #[arg(long, value_parser = count, value_name = "J")]
    pub jobs: Option<usize>,
    /// Analyse again agents already done (their done.json matches)
    #[arg(long)]
    pub force: bool,
    /// Analyse only shard I of N (manifest positions p with p mod N = I - 1), or `slurm` to take
    /// it from the job-array variables; then `saliency sweep merge OUT`
    #[arg(long, value_name = "I/N|slurm")]
    pub shard: Option<String>,
    /// Write a Slurm job-array script for this sweep (one task per shard) and print how to
    /// submit it and its merge; nothing is analysed
    #[arg(long = "emit-sbatch", alias = "emit_sbatch", value_name = "FILE")]
    pub emit_sbatch: Option<PathBuf>,
    /// Slurm tasks (shards) of --emit-sbatch
    #[arg(long = "slurm-tasks", default_value_t = 4, value_parser = count, value_name = "N")]
    pub slurm_tasks: usize,
    /// CPUs per Slurm task
    #[arg(long = "slurm-cpus", default_value_t = 2, value_parser = count, value_name = "N")]
    pub slurm_cpus: usize,
    /// Memory per Slurm task (sbatch --mem)
    #[arg(long = "slurm-mem", default_value = "4G", value_name = "SIZE")]
    pub slurm_mem: String,
    /// Time limit per Slurm task (sbatch --time)
    #[arg(long = "slurm-time", default_value = "02:00:00", value_name = "TIME")]
    pub slurm_time: String,
    /// Slurm partition
    #[arg(long = "slurm-partition", value_name = "NAME")]
    pub slurm_partition: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Watch the sweep in the explorer while it runs (the agents table fills in as agents
    /// finish); the same as `saliency explore PATH... --sweep`
    #[arg(long)]
    pub explore: bool,
    #[command(flatten)]
    pub display: DisplayArgs,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SweepCommand {
    /// Put the shards of OUT together: manifest.jsonl, sweep.json and sweep.csv, the same bytes
    /// as one process would write
    Merge {
        /// The sweep's output folder (holding shards/)
        #[arg(value_name = "OUT")]
        out: PathBuf,
        #[command(flatten)]
        quiet: Quiet,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(Into::into).collect()
    }

    #[test]
    fn explore_with_sweep_is_the_sweep_watched() {
        let want = os(&["saliency", "sweep", "logs/", "--k", "3", "--explore"]);
        assert_eq!(rewrite_args(os(&["saliency", "explore", "logs/", "--sweep", "--k", "3"])), want);
        assert_eq!(rewrite_args(os(&["saliency", "logs/", "--k", "3", "--sweep"])), want);
        // anything else as it was
        for argv in [&["saliency", "explore", "out/"][..], &["saliency", "run", "--agent-path", "--sweep"]] {
            assert_eq!(rewrite_args(os(argv)), os(argv));
        }
    }
}
