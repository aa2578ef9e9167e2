//! Which algorithm saved the agent, and which of its networks (heads) an analysis runs on
//! (docs/algorithms.md).
//!
//! The algorithm is not stored by name: the policy class's module and the state-dict keys tell
//! it. DQN and QR-DQN have one online network (`q_net.*`, `quantile_net.*`; the target
//! network `*_target.*` is ignored). Actor-critic agents (PPO, A2C, MaskablePPO) have two heads
//! on shared or separate feature extractors: the actor (`mlp_extractor.policy_net.*`,
//! `action_net.*`) and the critic (`mlp_extractor.value_net.*`, `value_net.*`).

use super::arch::ArchError;
use super::data::AgentInfo;
use super::statedict::TensorRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Dqn,
    QrDqn,
    /// PPO, A2C or MaskablePPO.
    ActorCritic {
        algorithm: &'static str,
    },
}

/// The network a target is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// DQN's `q_net` or QR-DQN's `quantile_net`.
    Q,
    /// The policy: extractor, `mlp_extractor.policy_net`, `action_net` (logits).
    Actor,
    /// The value function: (vf) extractor, `mlp_extractor.value_net`, `value_net`.
    Critic,
}

impl Family {
    /// From the policy's module and the state-dict keys.
    pub fn detect(info: &AgentInfo, keys: &[&str]) -> Result<Family, ArchError> {
        let has = |prefix: &str| keys.iter().any(|k| k.starts_with(prefix));
        let m = info.policy_module.as_str();
        let found = |what: &str| {
            ArchError::Unsupported(format!(
                "the policy is {} ({}){what}; saliency reads DQN (stable_baselines3.dqn), QR-DQN \
                 (sb3_contrib.qrdqn), PPO and A2C (stable_baselines3.common.policies) and MaskablePPO \
                 (sb3_contrib.common.maskable) agents with Discrete actions",
                if info.policy_class_raw.is_empty() { "unknown" } else { &info.policy_class_raw },
                if m.is_empty() { "no module recorded" } else { m },
            ))
        };
        let ac_keys = has("action_net.") && has("value_net.");
        let family = if m.starts_with("stable_baselines3.dqn") || (m.is_empty() && has("q_net.")) {
            if !has("q_net.") {
                return Err(found(", but the state dict has no q_net.* tensors"));
            }
            Family::Dqn
        } else if m.starts_with("sb3_contrib.qrdqn") {
            if !has("quantile_net.") {
                return Err(found(", but the state dict has no quantile_net.* tensors"));
            }
            Family::QrDqn
        } else if m.starts_with("sb3_contrib.common.maskable") {
            if !ac_keys {
                return Err(found(", but the state dict lacks action_net.* and value_net.*"));
            }
            Family::ActorCritic { algorithm: "MaskablePPO" }
        } else if m == "stable_baselines3.common.policies" {
            if info.policy_class_raw.contains("Recurrent") || has("lstm") {
                return Err(found(": recurrent policies are not supported"));
            }
            if !ac_keys {
                return Err(found(
                    ", but the state dict lacks action_net.* and value_net.* (not an actor-critic policy?)",
                ));
            }
            // PPO's save has its clipping settings; A2C's has none.
            let algorithm = if info.data_keys.iter().any(|k| k == "clip_range") { "PPO" } else { "A2C" };
            Family::ActorCritic { algorithm }
        } else {
            return Err(found(""));
        };
        Ok(family)
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Dqn => "DQN",
            Family::QrDqn => "QR-DQN",
            Family::ActorCritic { algorithm } => algorithm,
        }
    }

    /// The head targets run on by default.
    pub fn default_head(self) -> Head {
        match self {
            Family::Dqn | Family::QrDqn => Head::Q,
            Family::ActorCritic { .. } => Head::Actor,
        }
    }

    /// The state-dict tensors of `head` and their names as PyTorch's `named_parameters()`
    /// gives them, in state-dict order (which is `named_parameters()` order):
    /// - DQN: `q_net.*` without `q_net.`; QR-DQN: `quantile_net.*` without the first
    ///   `quantile_net.` (so `quantile_net.0.weight`, `features_extractor.*`);
    /// - actor-critic: the policy's own names. The extractor appears three times in a save;
    ///   `pi_features_extractor.*` is always `features_extractor.*` (same storage), and
    ///   `vf_features_extractor.*` is too unless the extractors are separate
    ///   (`share_features_extractor=False`), when it is the critic's own extractor.
    pub fn select(self, head: Head, entries: &[(String, TensorRef)]) -> Vec<(String, String)> {
        let storage = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, t)| t.storage_key.clone());
        let separate_vf = entries.iter().any(|(k, t)| {
            k.strip_prefix("vf_features_extractor.")
                .is_some_and(|rest| storage(&format!("features_extractor.{rest}")).as_deref() != Some(&t.storage_key))
        });
        let mut out = Vec::new();
        for (key, _) in entries {
            let name = match (self, head) {
                (Family::Dqn, _) => key.strip_prefix("q_net.").map(str::to_string),
                (Family::QrDqn, _) => key.strip_prefix("quantile_net.").map(str::to_string),
                (Family::ActorCritic { .. }, Head::Actor | Head::Q) => {
                    let on_path = key.starts_with("features_extractor.")
                        || key.starts_with("mlp_extractor.policy_net.")
                        || key.starts_with("action_net.");
                    on_path.then(|| key.clone())
                }
                (Family::ActorCritic { .. }, Head::Critic) => {
                    let extractor = if separate_vf {
                        key.starts_with("vf_features_extractor.")
                    } else {
                        key.starts_with("features_extractor.")
                    };
                    let on_path =
                        extractor || key.starts_with("mlp_extractor.value_net.") || key.starts_with("value_net.");
                    on_path.then(|| key.clone())
                }
            };
            if let Some(n) = name {
                out.push((key.clone(), n));
            }
        }
        out
    }
}
