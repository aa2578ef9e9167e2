//! An agent of a sweep opened in the single-agent explorer: its saved averages, its
//! candidates as the sweep chose them, k and m as the sweep ran them, and, when its zip and
//! inputs are still where the sweep read them, the live evidence. Exports go to
//! `OUT/explorer/<agent id>/`, never over the sweep's own files.

use crate::agent::vecnorm::Choice;
use crate::agent::{AgentLimits, ArchOverrides};
use crate::pipeline::AVERAGE_GRADIENTS;
use crate::study::browse;
use crate::study::candidates::{CandidateChoice, Candidates};
use crate::study::evidence::EngineSpec;
use crate::study::model::ModelSpec;
use crate::study::sweep::agent::{Analysis, CandidateSource};
use crate::study::sweep::results::SweepResults;
use crate::study::validate::ValidateSettings;
use crate::target::Target;

use super::super::app::Setup;
use super::super::color::{ColorMode, Colormap};
use super::super::Explorer;

fn engine(a: &Analysis, notes: &mut Vec<String>) -> Option<EngineSpec> {
    let missing = [&a.agent, &a.inputs].into_iter().find(|p| !p.is_file());
    if let Some(p) = missing {
        notes.push(format!("{} is no longer there: the saved averages are shown, without live evidence", p.display()));
        return None;
    }
    let vec_normalize = match &a.vec_normalize {
        Some(p) => Choice::File(p.clone()),
        None => Choice::Off,
    };
    let spec = ModelSpec {
        agent_path: a.agent.clone(),
        device: a.device.clone(),
        overrides: ArchOverrides {
            activation: a.activation,
            extractor_activation: a.extractor_activation,
            vec_normalize,
        },
        limits: AgentLimits::default(),
        batch_size: None,
        target: a.target,
    };
    Some(EngineSpec { spec, inputs: a.inputs.clone(), settings: a.ablation })
}

/// The single-agent explorer on the agent of manifest position `pos`.
pub fn agent_explorer(
    results: &SweepResults,
    pos: usize,
    colormap: Colormap,
    color_mode: ColorMode,
) -> Result<Explorer, String> {
    let row = results.rows.get(pos).ok_or("no such agent")?;
    let id = &row.agent_id;
    let dir = results.agent_dir(id);
    let analysis = results
        .analysis(id)
        .map_err(|e| crate::error_text(&e))?
        .ok_or_else(|| format!("{} holds no record of the analysis (done.json): run the sweep again", dir.display()))?;
    let mut notes = Vec::new();
    let candidates = match analysis.candidates {
        CandidateSource::Saliency(n) => CandidateChoice::Saliency(n),
        CandidateSource::Patching => {
            let cross = analysis.cross_metric.clone().unwrap_or_default();
            let agent_dir = analysis.agent.parent().map(std::path::Path::to_path_buf);
            CandidateChoice::Patching(
                Candidates::read_or_note(&cross, analysis.useful_neurons.as_deref(), agent_dir.as_deref(), &mut notes)
                    .map_err(|e| crate::error_text(&e))?,
            )
        }
    };
    let engine = engine(&analysis, &mut notes);
    // (V validates as `saliency validate` does by default, with the sweep's mode and seed)
    let validate =
        ValidateSettings { mode: analysis.ablation.mode, seed: analysis.ablation.seed, ..Default::default() };
    let setup = Setup {
        source: format!("{} · {}", row.path, &id[..id.len().min(8)]),
        candidates,
        notes,
        out_dir: results.out.join("explorer").join(id),
        engine,
        validate,
        feature_names: None,
        k: analysis.k,
        m: analysis.m,
        target: analysis.target.unwrap_or(Target::Q),
        colormap,
        color_mode,
    };
    Ok(Explorer::new(setup, browse::Source::Averages(dir.join(AVERAGE_GRADIENTS))))
}
