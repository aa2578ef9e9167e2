//! The target: the scalar of the network's outputs that is differentiated (and, in an ablation,
//! compared before and after), and the greedy action. One definition for the gradients, the
//! ablation and the explorer (docs/targets.md).
//!
//! The outputs are Q-values (DQN; QR-DQN's quantile means) or an actor-critic policy's logits;
//! the greedy action a* is their argmax, the lowest index on ties (NaN counting as largest, as
//! `torch.argmax`). The `value` target is the critic's output, with a* from the policy.

use std::fmt;

/// What is differentiated, per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// out[a*]: the greedy action's Q-value (the Python tool's objective).
    #[default]
    Q,
    /// out[a*] - out[b], b the best other action (lowest index on ties).
    Margin,
    /// out[N] for a fixed action N (a* is still reported).
    Action(usize),
    /// log softmax(out)[a*], computed in float64.
    LogSoftmax,
    /// Actor-critic: the logit of a* (the same quantity as `q` on a Q-network).
    Logit,
    /// Actor-critic: log pi(a* | s), log softmax of the logits (the same as `logsoftmax`).
    LogProb,
    /// Actor-critic: log pi(N | s) for a fixed action N (`action:N` on a policy).
    ActionLogProb(usize),
    /// Actor-critic: the critic's V(s).
    Value,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Q => f.write_str("q"),
            Target::Margin => f.write_str("margin"),
            Target::Action(n) | Target::ActionLogProb(n) => write!(f, "action:{n}"),
            Target::LogSoftmax => f.write_str("logsoftmax"),
            Target::Logit => f.write_str("logit"),
            Target::LogProb => f.write_str("logprob"),
            Target::Value => f.write_str("value"),
        }
    }
}

/// Why a target cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target '{0}' (known: {TARGET_NAMES})")]
    Unknown(String),
    #[error("target '{text}': action:N needs a whole number N, found '{n}'")]
    NotANumber { text: String, n: String },
    #[error(
        "target {target} is for Q-networks; a {family} policy has logprob (default), logit, margin, action:N and value"
    )]
    QOnly { target: Target, family: &'static str },
    #[error(
        "target {target} is for actor-critic policies; a {family} agent has q (default), margin, action:N and logsoftmax"
    )]
    PolicyOnly { target: Target, family: &'static str },
    #[error("target action:{n} is out of range: the agent has {n_actions} actions (0..{n_actions})")]
    ActionOutOfRange { n: usize, n_actions: usize },
    #[error("target margin needs at least two actions; the agent has one")]
    MarginNeedsTwo,
}

/// The names `--target` accepts: for Q-networks, and for actor-critic policies.
pub const TARGET_NAMES: &str =
    "q, margin, action:N, logsoftmax (DQN, QR-DQN); logprob, logit, margin, action:N, value (PPO, A2C)";

impl Target {
    /// Parses `q`, `margin`, `action:N`, `logsoftmax`.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "q" => return Ok(Target::Q),
            "margin" => return Ok(Target::Margin),
            "logsoftmax" | "log-softmax" => return Ok(Target::LogSoftmax),
            "logprob" => return Ok(Target::LogProb),
            "logit" => return Ok(Target::Logit),
            "value" => return Ok(Target::Value),
            _ => {}
        }
        if let Some(n) = t.strip_prefix("action:") {
            return n
                .trim()
                .parse::<usize>()
                .map(Target::Action)
                .map_err(|_| TargetError::NotANumber { text: text.to_string(), n: n.to_string() });
        }
        Err(TargetError::Unknown(text.to_string()))
    }

    /// The target for an agent of `family` with `n_actions` actions (`action:N` on a policy
    /// is its log-probability), or why it does not apply.
    pub fn for_family(self, family: crate::agent::Family, n_actions: usize) -> Result<Target, TargetError> {
        use crate::agent::Family;
        let actor_critic = matches!(family, Family::ActorCritic { .. });
        let q_only = matches!(self, Target::Q | Target::LogSoftmax);
        let ac_only = matches!(self, Target::Logit | Target::LogProb | Target::Value);
        if actor_critic && q_only {
            return Err(TargetError::QOnly { target: self, family: family.name() });
        }
        if !actor_critic && ac_only {
            return Err(TargetError::PolicyOnly { target: self, family: family.name() });
        }
        self.check(n_actions)?;
        Ok(match self {
            Target::Action(n) if actor_critic => Target::ActionLogProb(n),
            t => t,
        })
    }

    /// The family's default target: q, or logprob for a policy.
    pub fn default_for(family: crate::agent::Family) -> Target {
        match family {
            crate::agent::Family::ActorCritic { .. } => Target::LogProb,
            _ => Target::Q,
        }
    }

    /// Whether the target is computed on the critic (the other targets use the Q-network or the
    /// policy).
    pub fn head(self) -> Option<crate::agent::Head> {
        match self {
            Target::Value => Some(crate::agent::Head::Critic),
            Target::Logit | Target::LogProb | Target::ActionLogProb(_) => Some(crate::agent::Head::Actor),
            _ => None,
        }
    }

    /// Whether the target makes sense for a network with `n_actions` actions.
    pub fn check(self, n_actions: usize) -> Result<(), TargetError> {
        match self {
            Target::Action(n) | Target::ActionLogProb(n) if n >= n_actions => {
                Err(TargetError::ActionOutOfRange { n, n_actions })
            }
            Target::Margin if n_actions < 2 => Err(TargetError::MarginNeedsTwo),
            _ => Ok(()),
        }
    }

    /// The targets an agent of `family` with `n_actions` actions offers, its default first (for
    /// a policy the critic's `value` second: actor or critic is the first question).
    pub fn offered(family: crate::agent::Family, n_actions: usize) -> Vec<Target> {
        use crate::agent::Family;
        let policy = matches!(family, Family::ActorCritic { .. });
        let mut all = if policy { vec![Target::LogProb, Target::Value, Target::Logit] } else { vec![Target::Q] };
        if n_actions >= 2 {
            all.push(Target::Margin);
        }
        if !policy {
            all.push(Target::LogSoftmax);
        }
        all.extend((0..n_actions).map(|n| if policy { Target::ActionLogProb(n) } else { Target::Action(n) }));
        all
    }

    /// What a drop of this target is called in reports: "Q drop", "log-prob drop", ...
    pub fn drop_name(self) -> &'static str {
        match self {
            Target::Q | Target::Action(_) => "Q drop",
            Target::Margin => "margin drop",
            Target::LogSoftmax | Target::LogProb | Target::ActionLogProb(_) => "log-prob drop",
            Target::Logit => "logit drop",
            Target::Value => "value drop",
        }
    }

    /// The target's value for one input's outputs, with the greedy action `a` (float64 from the
    /// float32 outputs).
    pub fn value(self, out: &[f32], a: usize) -> f64 {
        match self {
            Target::Q | Target::Logit => f64::from(out[a]),
            Target::Action(n) => f64::from(out[n]),
            Target::Margin => f64::from(out[a]) - f64::from(out[runner_up(out, a)]),
            Target::LogSoftmax | Target::LogProb => log_softmax(out)[a],
            Target::ActionLogProb(n) => log_softmax(out)[n],
            Target::Value => f64::from(out[0]),
        }
    }

    /// d target / d out for one input, into `coef` (float64). For `logsoftmax` the greedy
    /// action's coefficient 1 - p(a) is computed as the sum of the other probabilities, which
    /// keeps its digits when p(a) is within rounding of 1.
    pub fn coefficients(self, out: &[f32], a: usize, coef: &mut [f64]) {
        coef.iter_mut().for_each(|c| *c = 0.0);
        match self {
            Target::Q | Target::Logit => coef[a] = 1.0,
            Target::Action(n) => coef[n] = 1.0,
            Target::Value => coef[0] = 1.0,
            Target::Margin => {
                coef[a] = 1.0;
                coef[runner_up(out, a)] = -1.0;
            }
            Target::LogSoftmax | Target::LogProb => log_softmax_coefficients(out, a, coef),
            Target::ActionLogProb(n) => log_softmax_coefficients(out, n, coef),
        }
    }
}

/// d log softmax(out)[a] / d out: one-hot(a) - p, the a-th entry computed as the sum of the
/// other probabilities (never 1 - p, which loses its digits when p is near 1).
fn log_softmax_coefficients(out: &[f32], a: usize, coef: &mut [f64]) {
    let ls = log_softmax(out);
    let mut others = 0.0;
    for (j, c) in coef.iter_mut().enumerate() {
        if j != a {
            let p = ls[j].exp();
            *c = -p;
            others += p;
        }
    }
    coef[a] = others;
}

/// argmax with the lowest index on ties; NaN counts as the largest (as `torch.argmax`).
pub fn greedy(row: &[f32]) -> usize {
    let mut best = 0usize;
    for (i, &v) in row.iter().enumerate().skip(1) {
        let cur = row[best];
        if !cur.is_nan() && (v.is_nan() || v > cur) {
            best = i;
        }
    }
    best
}

/// The best action other than `a` (lowest index on ties).
pub fn runner_up(row: &[f32], a: usize) -> usize {
    let mut best: Option<usize> = None;
    for (i, &v) in row.iter().enumerate() {
        if i == a {
            continue;
        }
        best = match best {
            None => Some(i),
            Some(b) if !row[b].is_nan() && (v.is_nan() || v > row[b]) => Some(i),
            keep => keep,
        };
    }
    best.unwrap_or(a)
}

/// log softmax in float64 (max-shifted).
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().map(|&v| f64::from(v)).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let log_sum = max + sum.ln();
    row.iter().map(|&v| f64::from(v) - log_sum).collect()
}

/// KL(p || p') of the softmaxes of two output rows, in float64.
pub fn kl_softmax(out: &[f32], ablated: &[f32]) -> f64 {
    let (lp, lq) = (log_softmax(out), log_softmax(ablated));
    lp.iter().zip(&lq).map(|(&a, &b)| if a == f64::NEG_INFINITY { 0.0 } else { a.exp() * (a - b) }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_names() {
        for t in ["q", "margin", "action:3", "logsoftmax", "logprob", "logit", "value"] {
            assert_eq!(Target::parse(t).unwrap().to_string(), t);
        }
        assert!(Target::parse("action:x").unwrap_err().to_string().contains("whole number"));
        assert!(Target::parse("entropy").unwrap_err().to_string().contains("known: q, margin"));
        // Per family: the Q-network's and the policy's names; action:N of a policy is its
        // log-probability.
        use crate::agent::Family;
        let ppo = Family::ActorCritic { algorithm: "PPO" };
        assert!(Target::Q.for_family(ppo, 3).unwrap_err().to_string().contains("is for Q-networks"));
        assert!(Target::Value.for_family(Family::Dqn, 3).unwrap_err().to_string().contains("is for actor-critic"));
        assert_eq!(Target::Action(2).for_family(ppo, 3), Ok(Target::ActionLogProb(2)));
        assert_eq!(Target::Action(2).for_family(Family::QrDqn, 3), Ok(Target::Action(2)));
        assert_eq!(Target::default_for(ppo), Target::LogProb);
        assert!(Target::Action(5).check(5).unwrap_err().to_string().contains("out of range"));
        assert!(Target::Margin.check(1).unwrap_err().to_string().contains("two actions"));
        assert_eq!(
            Target::offered(ppo, 2),
            [
                Target::LogProb,
                Target::Value,
                Target::Logit,
                Target::Margin,
                Target::ActionLogProb(0),
                Target::ActionLogProb(1)
            ]
        );
        assert_eq!(Target::offered(Family::Dqn, 1), [Target::Q, Target::LogSoftmax, Target::Action(0)]);
    }

    #[test]
    fn greedy_and_runner_up_take_the_lowest_index_on_ties() {
        assert_eq!(greedy(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(runner_up(&[1.0, 3.0, 3.0], 1), 2);
        assert_eq!(runner_up(&[2.0, 3.0, 2.0], 1), 0);
        assert_eq!(greedy(&[1.0, f32::NAN, 5.0]), 1);
    }

    #[test]
    fn values_and_coefficients() {
        let out = [1.0f32, 4.0, 2.0];
        assert_eq!(Target::Q.value(&out, 1), 4.0);
        assert_eq!(Target::Margin.value(&out, 1), 2.0);
        assert_eq!(Target::Action(2).value(&out, 1), 2.0);
        let mut c = [0.0; 3];
        Target::Margin.coefficients(&out, 1, &mut c);
        assert_eq!(c, [0.0, 1.0, -1.0]);
        // log softmax: the coefficients sum to zero and match 1 - p for the greedy action.
        Target::LogSoftmax.coefficients(&out, 1, &mut c);
        let p: Vec<f64> = log_softmax(&out).iter().map(|v| v.exp()).collect();
        assert!((c[1] - (1.0 - p[1])).abs() < 1e-15 && (c.iter().sum::<f64>()).abs() < 1e-15);
        // A confident policy: 1 - p(a) is below float32's and float64's rounding of 1, but the
        // coefficient keeps its digits.
        let sure = [0.0f32, 60.0];
        Target::LogSoftmax.coefficients(&sure, 1, &mut c[..2]);
        assert!(c[1] > 0.0 && (c[1] / (-60.0f64).exp() - 1.0).abs() < 1e-12, "{}", c[1]);
        assert!(kl_softmax(&out, &out).abs() < 1e-15);
        assert!(kl_softmax(&out, &[4.0, 1.0, 2.0]) > 0.0);
    }
}
