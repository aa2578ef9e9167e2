//! Many single-element changes in one forward pass: the network with each change alone, its
//! rows side by side. Used to measure, weight by weight, what removing one weight does.
//!
//! All changes of one pass are in one parameterised layer. The layers before it run once; its
//! output `z` is repeated once per change and corrected there by what the change removes: for a
//! Linear weight (i, j), `delta * a[:, j]` from `z[:, i]`; for a Conv weight (o, c, u, v) with
//! stride s, `delta * a[:, c, u + s*y, v + s*x]` from `z[:, o, y, x]` (the input window that
//! weight sees at each output position); for a bias element, `delta` from its output. The layers
//! after it run on all the rows together. Rows are independent in these networks, so this is
//! the network with the changed parameter, up to float32 rounding in the corrected layer.

use tch::Tensor;

use super::{to_vec, ModelError, Net, Pass, Result};

/// One element of a parameter changed: its value less the new value is `delta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElementChange {
    pub param: usize,
    /// Row-major index inside the parameter.
    pub index: usize,
    pub delta: f64,
}

impl Net {
    /// The value of one parameter element, as stored (float32).
    pub fn element(&self, param: usize, index: usize) -> Result<f64> {
        Ok(self.weights[param].f_reshape([-1])?.f_double_value(&[index as i64])?)
    }

    /// The parameterised layer (forward order) `changes` are in; an error unless it is one.
    fn layer_of(&self, changes: &[ElementChange]) -> Result<usize> {
        let layer = |c: &ElementChange| self.sources.get(c.param).map(|s| s.layer);
        let first = changes.first().and_then(layer);
        match first {
            Some(l) if changes.iter().all(|c| layer(c) == Some(l)) => Ok(l),
            _ => Err(ModelError::ChangesAcrossLayers),
        }
    }

    /// The outputs with each change alone (len(changes) x B x outputs, change after change).
    pub fn outputs_with_single_changes(&self, x: &Tensor, changes: &[ElementChange]) -> Result<Vec<f32>> {
        let _guard = tch::no_grad_guard();
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let layer = self.layer_of(changes)?;
        let stride = self.layers[layer].conv_stride;
        let correct = |a: &Tensor, z: &Tensor| corrected(self, a, z, changes, stride);
        to_vec(&self.forward(&self.weights, x, &mut Pass::hooked(layer, &correct))?)
    }

    /// For a critic: its policy's outputs under the same changes, when the changed parameter is
    /// one the two share (a shared feature extractor); None when the policy does not change (or
    /// there is none).
    pub fn actor_outputs_with_single_changes(
        &self,
        x: &Tensor,
        changes: &[ElementChange],
    ) -> Result<Option<(Vec<f32>, usize)>> {
        let Some((actor, shared)) = self.actor.as_ref() else { return Ok(None) };
        let Some(param) = changes.first().map(|c| c.param) else { return Ok(None) };
        let Some(own) = shared.iter().position(|&j| j == Some(param)) else { return Ok(None) };
        let mapped: Vec<ElementChange> = changes.iter().map(|c| ElementChange { param: own, ..*c }).collect();
        Ok(Some((actor.outputs_with_single_changes(x, &mapped)?, actor.arch.outputs)))
    }
}

/// The layer's output `z` (of input `a`) once per change, corrected by it: (G*B, ...).
fn corrected(net: &Net, a: &Tensor, z: &Tensor, changes: &[ElementChange], stride: Option<usize>) -> Result<Tensor> {
    let g = changes.len() as i64;
    let mut shape = z.size();
    let rows = shape[0];
    let mut repeat = vec![1i64; shape.len() + 1];
    repeat[0] = g;
    let out = z.f_unsqueeze(0)?.f_repeat(&repeat)?;
    for (k, c) in changes.iter().enumerate() {
        let source = net.sources[c.param];
        let wshape = net.weights[c.param].size();
        // The output channel (or unit) the element feeds, and what it removes from it.
        let (unit, removed) = if source.bias {
            (c.index as i64, None)
        } else {
            let per_unit: i64 = wshape[1..].iter().product();
            let (unit, rest) = (c.index as i64 / per_unit, c.index as i64 % per_unit);
            let seen = match stride {
                None => a.f_select(1, rest)?,
                Some(s) => window(a, &wshape, rest, s as i64, &shape)?,
            };
            (unit, Some(seen))
        };
        let mut target = out.f_select(0, k as i64)?.f_select(1, unit)?;
        // In place, through the view: `out` itself changes.
        let _ = match removed {
            Some(seen) => target.f_sub_(&seen.f_mul_scalar(c.delta)?)?,
            None => target.f_sub_scalar_(c.delta)?,
        };
    }
    shape[0] = rows * g;
    Ok(out.f_reshape(&shape)?)
}

/// The input values a Conv weight (flat index `rest` inside its output channel) multiplies at
/// each output position: (B, OH, OW).
fn window(a: &Tensor, wshape: &[i64], rest: i64, s: i64, zshape: &[i64]) -> Result<Tensor> {
    let (kh, kw) = (wshape[2], wshape[3]);
    let (c, u, v) = (rest / (kh * kw), (rest / kw) % kh, rest % kw);
    let (oh, ow) = (zshape[2], zshape[3]);
    Ok(a.f_select(1, c)?.f_slice(1, Some(u), Some(u + s * (oh - 1) + 1), s)?.f_slice(
        2,
        Some(v),
        Some(v + s * (ow - 1) + 1),
        s,
    )?)
}
