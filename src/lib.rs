//! `saliency`: gradient saliency for Stable-Baselines3 agents (DQN, QR-DQN, PPO, A2C,
//! MaskablePPO).
//!
//! Layers, each ignorant of the ones above it (docs/architecture.md; `tests/architecture.rs`
//! keeps it so): `paths`, `format`, `json`, `jobs`, `colormap` (foundations); `agent` (reading
//! files); `target`; `model` (the network in libtorch, batched per-input gradients);
//! `pipeline` (the three steps and their files); `ablation`; `study` (the services the
//! commands and the explorer share); `cli`; `commands` (the headless CLI); `tui` (the explorer).

pub mod ablation;
pub mod agent;
pub mod cli;
pub mod colormap;
pub mod commands;
pub mod format;
pub mod jobs;
pub mod json;
pub mod model;
pub mod paths;
pub mod pipeline;
pub mod stats;
pub mod study;
pub mod target;
pub mod tui;

/// An error and its causes as one line: "what: why: ...". A cause whose text the message
/// already contains (an error that quotes its source) is not repeated.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    error_text_of(e)
}

/// `error_text` for an error behind any reference.
pub fn error_text_of(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}
