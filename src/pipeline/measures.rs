//! Measures: reductions over the inputs of each element's per-input gradient, accumulated in
//! the same pass as the averages (docs/measures.md), and `measures.safetensors`.

use std::io::Write;
use std::path::Path;

use super::average::{Averages, AvgParam};
use super::error::{PipelineError, Result};
use super::gradfile::ParamMeta;
use super::output::{write_err, AtomicFile};

pub const MEASURES_FILE: &str = "measures.safetensors";

/// Largest measures file read (`extract --select-by`).
pub const MAX_MEASURES_BYTES: u64 = 16 << 30;

/// A measure name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasureError {
    #[error("unknown measure '{0}' (known: {known})", known = Measure::ALL.map(Measure::name).join(", "))]
    Unknown(String),
    #[error("no measure named (give a comma-separated list, or all)")]
    Empty,
    #[error(
        "--select-by {0}: the selection ranks magnitudes, and {0} is not one (signed or a share); use one of {known}",
        known = Measure::ALL.into_iter().filter(|m| m.is_magnitude()).map(Measure::name).collect::<Vec<_>>().join(", ")
    )]
    NotAMagnitude(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// (1/N) sum |g|: the averages (`average_gradients.json`), bit for bit.
    MeanAbs,
    /// (1/N) sum g: which way the weight pushes on average.
    Mean,
    /// (1/N) sum g^2.
    MeanSq,
    /// max |g|.
    MaxAbs,
    /// (1/N) sum |g w|: per-input first-order effect of zeroing the weight.
    MeanAbsGxw,
    /// |(1/N) sum g w|: first-order estimate of zeroing, averaged first.
    AbsMeanGxw,
    /// (1/N) count(g != 0).
    Nonzero,
    /// w^2 (1/N) sum g^2: Optimal Brain Damage with the empirical Fisher diagonal.
    Fisher,
    /// max(0, (1/N) sum g^2 - ((1/N) sum g)^2): how much the gradient varies over inputs.
    Variance,
    /// |mean g| / sqrt(variance): 0 where both are 0, `SNR_INFINITE` where only the variance is.
    Snr,
}

/// The signal-to-noise ratio of a weight whose gradient never varies but is not zero: the
/// largest finite float32.
pub const SNR_INFINITE: f64 = f32::MAX as f64;

impl Measure {
    pub const ALL: [Measure; 10] = [
        Measure::MeanAbs,
        Measure::Mean,
        Measure::MeanSq,
        Measure::MaxAbs,
        Measure::MeanAbsGxw,
        Measure::AbsMeanGxw,
        Measure::Nonzero,
        Measure::Fisher,
        Measure::Variance,
        Measure::Snr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Measure::MeanAbs => "mean-abs",
            Measure::Mean => "mean",
            Measure::MeanSq => "mean-sq",
            Measure::MaxAbs => "max-abs",
            Measure::MeanAbsGxw => "mean-abs-gxw",
            Measure::AbsMeanGxw => "abs-mean-gxw",
            Measure::Nonzero => "nonzero",
            Measure::Fisher => "fisher",
            Measure::Variance => "variance",
            Measure::Snr => "snr",
        }
    }

    pub fn parse(text: &str) -> std::result::Result<Measure, MeasureError> {
        let t = text.trim();
        Measure::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| MeasureError::Unknown(t.to_string()))
    }

    /// `all`, or a comma-separated list (each measure once, in the canonical order).
    pub fn parse_list(text: &str) -> std::result::Result<Vec<Measure>, MeasureError> {
        if text.trim().eq_ignore_ascii_case("all") {
            return Ok(Measure::ALL.to_vec());
        }
        let mut v = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Measure::parse)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if v.is_empty() {
            return Err(MeasureError::Empty);
        }
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// Whether the selection can rank by it (a magnitude: large means important).
    pub fn is_magnitude(self) -> bool {
        !matches!(self, Measure::Mean | Measure::Nonzero)
    }

    /// `--select-by`: a magnitude measure.
    pub fn parse_select_by(text: &str) -> std::result::Result<Measure, MeasureError> {
        let m = Measure::parse(text)?;
        if !m.is_magnitude() {
            return Err(MeasureError::NotAMagnitude(m.name()));
        }
        Ok(m)
    }
}

/// A list of measures as one command-line value (`mean,max-abs` or `all`).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureList(pub Vec<Measure>);

impl MeasureList {
    pub fn parse(text: &str) -> std::result::Result<MeasureList, MeasureError> {
        Measure::parse_list(text).map(MeasureList)
    }
}

/// Running sums besides sum |g| (kept by the accumulator), per element: sum g and sum g^2 in
/// float64; max |g| in float32 and the count of nonzero gradients as an integer (both exact).
#[derive(Debug, Clone)]
pub struct ExtraSums {
    pub sum: Vec<f64>,
    pub sq: Vec<f64>,
    pub max: Vec<f32>,
    pub nonzero: Vec<u32>,
}

impl ExtraSums {
    pub fn new(n: usize) -> ExtraSums {
        ExtraSums { sum: vec![0.0; n], sq: vec![0.0; n], max: vec![0.0; n], nonzero: vec![0; n] }
    }
}

/// (1/N) sum g^2 - ((1/N) sum g)^2 from the sums, never negative (rounding can make it so).
fn variance(sum: f64, sq: f64, n: f64) -> f64 {
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0)
}

/// |mean| / sqrt(variance), with 0/0 = 0 and x/0 = `SNR_INFINITE`.
fn snr(sum: f64, sq: f64, n: f64) -> f64 {
    let (mean, var) = ((sum / n).abs(), variance(sum, sq, n));
    match (mean == 0.0, var == 0.0) {
        (true, _) => 0.0,
        (false, true) => SNR_INFINITE,
        (false, false) => (mean / var.sqrt()).min(SNR_INFINITE),
    }
}

/// Every requested measure of every parameter, float64, shaped like the parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureSet {
    pub num_examples: u64,
    /// Measures in canonical order; per measure the parameters in order.
    pub measures: Vec<(Measure, Vec<AvgParam>)>,
}

impl MeasureSet {
    /// From the sums after N inputs: `abs` (sum |g|) and the extra sums per parameter, and the
    /// parameters' float32 values (for the g*w measures: sum |g w| = |w| sum |g| and
    /// sum g w = w sum g, exactly in real arithmetic; each is one float64 product here).
    pub fn from_sums(
        params: &[ParamMeta],
        weights: &[&[f32]],
        abs: &[Vec<f64>],
        extra: &[ExtraSums],
        count: u64,
        wanted: &[Measure],
    ) -> MeasureSet {
        let n = count as f64;
        let measures = wanted
            .iter()
            .map(|&m| {
                let per_param = params
                    .iter()
                    .enumerate()
                    .map(|(p, meta)| {
                        let (a, e, w) = (&abs[p], &extra[p], weights[p]);
                        let data: Vec<f64> = match m {
                            Measure::MeanAbs => a.iter().map(|&x| x / n).collect(),
                            Measure::Mean => e.sum.iter().map(|&x| x / n).collect(),
                            Measure::MeanSq => e.sq.iter().map(|&x| x / n).collect(),
                            Measure::MaxAbs => e.max.iter().map(|&x| f64::from(x)).collect(),
                            Measure::MeanAbsGxw => {
                                a.iter().zip(w).map(|(&x, &wj)| (x * f64::from(wj).abs()) / n).collect()
                            }
                            Measure::AbsMeanGxw => {
                                e.sum.iter().zip(w).map(|(&x, &wj)| ((x * f64::from(wj)) / n).abs()).collect()
                            }
                            Measure::Nonzero => e.nonzero.iter().map(|&x| f64::from(x) / n).collect(),
                            Measure::Fisher => {
                                e.sq.iter().zip(w).map(|(&x, &wj)| f64::from(wj) * f64::from(wj) * (x / n)).collect()
                            }
                            Measure::Variance => e.sum.iter().zip(&e.sq).map(|(&s, &q)| variance(s, q, n)).collect(),
                            Measure::Snr => e.sum.iter().zip(&e.sq).map(|(&s, &q)| snr(s, q, n)).collect(),
                        };
                        AvgParam { name: meta.name.clone(), shape: meta.shape.clone(), data }
                    })
                    .collect();
                (m, per_param)
            })
            .collect();
        MeasureSet { num_examples: count, measures }
    }

    pub fn get(&self, m: Measure) -> Option<&[AvgParam]> {
        self.measures.iter().find(|(x, _)| *x == m).map(|(_, v)| v.as_slice())
    }

    /// A measure as an `Averages` (what the selection ranks).
    pub fn as_averages(&self, m: Measure) -> Option<Averages> {
        Some(Averages { num_examples: Some(self.num_examples as i64), params: self.get(m)?.to_vec() })
    }
}

/// File metadata: what the measures were computed from.
pub struct Provenance<'a> {
    pub agent: &'a str,
    pub target: &'a str,
}

/// Writes `measures.safetensors` atomically: one float64 tensor per (measure, parameter) named
/// `<measure>/<parameter>`; metadata `num_examples`, `target`, `agent`, `measures`, `tool`.
/// Streamed: the header, then each tensor's bytes (no copy of the whole file in memory).
pub fn write(dest: &Path, set: &MeasureSet, prov: &Provenance) -> Result<()> {
    let tensors: Vec<(String, &AvgParam)> = set
        .measures
        .iter()
        .flat_map(|(m, params)| params.iter().map(move |p| (format!("{}/{}", m.name(), p.name), p)))
        .collect();
    let entries: Vec<super::input_saliency::HeaderEntry> = tensors
        .iter()
        .map(|(name, p)| super::input_saliency::HeaderEntry {
            name: name.clone(),
            dtype: "F64",
            shape: p.shape.clone(),
            bytes: 8 * p.data.len() as u64,
        })
        .collect();
    let measures = set.measures.iter().map(|(m, _)| m.name()).collect::<Vec<_>>().join(",");
    let meta = [
        ("agent", prov.agent.to_string()),
        ("measures", measures),
        ("num_examples", set.num_examples.to_string()),
        ("target", prov.target.to_string()),
        ("tool", format!("saliency {}", env!("CARGO_PKG_VERSION"))),
    ];
    let header = super::input_saliency::header_json(&entries, &meta);
    let mut file = AtomicFile::create(dest)?;
    let res: std::io::Result<()> = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, p) in &tensors {
            for chunk in p.data.chunks(8192) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        w.flush()
    })();
    res.map_err(write_err(dest))?;
    file.commit()
}

/// One measure of a `measures.safetensors`, for the parameters of `like` (same names and
/// shapes, in that order), as an `Averages`.
pub fn read(path: &Path, m: Measure, like: &Averages) -> Result<Averages> {
    let shown = path.display();
    let len = std::fs::metadata(path).map_err(PipelineError::io("open measures file", path))?.len();
    if len > MAX_MEASURES_BYTES {
        return Err(PipelineError::Limit(format!(
            "measures file {shown} is {len} bytes, over the limit of {MAX_MEASURES_BYTES}"
        )));
    }
    let bytes = std::fs::read(path).map_err(PipelineError::io("read measures file", path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| PipelineError::Format(format!("{shown} is not a safetensors file: {e}")))?;
    let num_examples = safetensors::SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, md)| md.metadata().as_ref().and_then(|m| m.get("num_examples").and_then(|n| n.parse().ok())));
    let mut params = Vec::with_capacity(like.params.len());
    for p in &like.params {
        let name = format!("{}/{}", m.name(), p.name);
        let t = st.tensor(&name).map_err(|_| {
            PipelineError::Format(format!(
                "{shown} has no tensor {name} (was it written with --measures {} for this agent?)",
                m.name()
            ))
        })?;
        if t.dtype() != safetensors::Dtype::F64 {
            return Err(PipelineError::Format(format!("{shown}: {name} is {:?}, expected F64", t.dtype())));
        }
        if t.shape() != p.shape.as_slice() {
            return Err(PipelineError::Format(format!(
                "{shown}: {name} has shape {:?}, but the averages' {} has {:?} (measures of another agent?)",
                t.shape(),
                p.name,
                p.shape
            )));
        }
        let data = t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
        params.push(AvgParam { name: p.name.clone(), shape: p.shape.clone(), data });
    }
    Ok(Averages { num_examples: num_examples.or(like.num_examples), params })
}
