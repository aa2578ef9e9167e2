//! What the explorer shows: the averages (mean-abs) or another measure, whether they are
//! final, and per-layer statistics.

use std::sync::Arc;

use crate::pipeline::average::Averages;
use crate::pipeline::measures::{Measure, MeasureSet};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerStat {
    pub mean: f64,
    pub min: f64,
    /// Smallest positive value (the log scale's floor).
    pub min_pos: f64,
    pub max: f64,
    pub sum: f64,
}

impl LayerStat {
    fn of(data: &[f64]) -> LayerStat {
        let (mut sum, mut max, mut min, mut min_pos) = (0.0f64, f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY);
        for &v in data.iter().filter(|v| v.is_finite()) {
            sum += v;
            max = max.max(v);
            min = min.min(v);
            if v > 0.0 {
                min_pos = min_pos.min(v);
            }
        }
        let fin = |x: f64| if x.is_finite() { x } else { 0.0 };
        LayerStat {
            mean: sum / data.len().max(1) as f64,
            min: fin(min),
            min_pos: if min_pos.is_finite() { min_pos } else { fin(max) },
            max: fin(max),
            sum,
        }
    }
}

pub struct Data {
    /// What is shown: the averages, or the measure chosen with `v`.
    shown: Option<Arc<Averages>>,
    /// The averages themselves (mean-abs): what export writes, and what the selection ranks
    /// while the shown measure is not a magnitude.
    mean_abs: Option<Arc<Averages>>,
    /// Every measure, once a run in the explorer finished.
    measures: Option<Arc<MeasureSet>>,
    measure: Measure,
    /// Averages of a run still in progress (or cancelled).
    provisional: bool,
    /// Bumped whenever what is shown changes (caches key on it).
    generation: u64,
    stats: Vec<LayerStat>,
    /// Sum of every weight magnitude (biases excluded).
    total: f64,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            shown: None,
            mean_abs: None,
            measures: None,
            measure: Measure::MeanAbs,
            provisional: false,
            generation: 0,
            stats: Vec::new(),
            total: 0.0,
        }
    }
}

impl Data {
    pub fn shown(&self) -> Option<&Arc<Averages>> {
        self.shown.as_ref()
    }

    pub fn mean_abs(&self) -> Option<&Arc<Averages>> {
        self.mean_abs.as_ref()
    }

    pub fn measures(&self) -> Option<&Arc<MeasureSet>> {
        self.measures.as_ref()
    }

    pub fn measure(&self) -> Measure {
        self.measure
    }

    pub fn provisional(&self) -> bool {
        self.provisional
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn stats(&self) -> &[LayerStat] {
        &self.stats
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// What the selection ranks: the shown measure when it is a magnitude, else the averages.
    pub fn ranking(&self) -> Option<Arc<Averages>> {
        if self.measure.is_magnitude() {
            self.shown.clone()
        } else {
            self.mean_abs.clone()
        }
    }

    /// New averages (provisional or final). Returns whether the parameters (names, shapes)
    /// changed, so what depends on them must be rebuilt.
    pub fn set_averages(&mut self, avgs: Arc<Averages>, provisional: bool) -> bool {
        self.mean_abs = Some(avgs.clone());
        let shown = match (&self.measures, self.measure) {
            (Some(set), m) if m != Measure::MeanAbs && !provisional => set.as_averages(m).map(Arc::new).unwrap_or(avgs),
            _ => avgs,
        };
        self.show(shown, provisional)
    }

    /// Every measure of a finished run.
    pub fn set_measures(&mut self, set: Option<Arc<MeasureSet>>) {
        self.measures = set;
    }

    /// Shows another measure (no re-run: every measure is kept); false when there are none.
    pub fn set_measure(&mut self, m: Measure) -> bool {
        let Some(set) = self.measures.clone() else { return false };
        self.measure = m;
        let shown = if m == Measure::MeanAbs { self.mean_abs.clone() } else { set.as_averages(m).map(Arc::new) };
        if let Some(a) = shown {
            self.show(a, self.provisional);
        }
        true
    }

    /// A new target runs again from nothing: the measures go back to mean-abs.
    pub fn forget_measures(&mut self) {
        self.measures = None;
        self.measure = Measure::MeanAbs;
    }

    fn show(&mut self, avgs: Arc<Averages>, provisional: bool) -> bool {
        let changed = self.shown.as_ref().is_none_or(|a| {
            a.params.iter().map(|p| (&p.name, &p.shape)).ne(avgs.params.iter().map(|p| (&p.name, &p.shape)))
        });
        self.stats = avgs.params.iter().map(|p| LayerStat::of(&p.data)).collect();
        self.total = avgs.params.iter().zip(&self.stats).filter(|(p, _)| !p.is_bias()).map(|(_, s)| s.sum).sum();
        self.shown = Some(avgs);
        self.provisional = provisional;
        self.generation += 1;
        changed
    }
}
