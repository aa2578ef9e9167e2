//! `saliency`: gradient saliency for Stable-Baselines3 DQN agents.
//!
//! Layers, each ignorant of the ones above it: `paths`, `json` and `agent` (reading files), `model`
//! (the network in libtorch, batched per-input gradients), `pipeline` (the three steps and
//! their files), `commands` (the headless CLI).

pub mod agent;
pub mod cli;
pub mod commands;
pub mod json;
pub mod model;
pub mod paths;
pub mod pipeline;
pub mod tui;
