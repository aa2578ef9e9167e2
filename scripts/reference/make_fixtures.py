#!/usr/bin/env python3
"""Builds the real SB3 agents and the reference outputs that the Rust tests compare against.

Run by hand, never by CI (the outputs are committed so tests need no Python):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.11.0 stable-baselines3==2.9.2 gymnasium
    /tmp/ref/bin/python scripts/reference/make_fixtures.py            # all committed fixtures
    /tmp/ref/bin/python scripts/reference/make_fixtures.py atari --inputs 1000   # large, not committed

Every agent is trained (briefly) with SB3's DQN and saved with `model.save`, so `agent.zip`
is exactly what SB3 writes. Reference outputs come from `python_tool.py`, the Python tool's
method: one input at a time through PyTorch autograd, `json.dump(indent=2)`.

Fixtures (each an agent directory in the research project's layout):
  assets/demo               GridNav, Dict obs {'MLP_input': 106}, custom `mlp` extractor, 5 actions
                            (the research project's network); candidates from an ablation study,
                            `exp_<N>_<layer>` keys through useful_neurons.json
  tests/fixtures/cartpole   CartPole-v1, MlpPolicy, ReLU, net_arch [64, 64]; `<layer>_neuron_<n>` keys
  tests/fixtures/acrobot    Acrobot-v1, MlpPolicy, Tanh, net_arch [32, 16]
  tests/fixtures/cnn        synthetic 2x44x44 uint8 images, CnnPolicy (NatureCNN, features_dim 64)
  tests/fixtures/combined   Dict {'image': 1x36x36 uint8, 'vec': 3 floats}, MultiInputPolicy
                            (CombinedExtractor: NatureCNN + flatten), net_arch [32]
  tests/fixtures/frozenlake FrozenLake-v1 (Discrete(16) observations, one-hot), MlpPolicy [16]
  tests/fixtures/qrdqn      QR-DQN (sb3-contrib) CartPole-v1, 25 quantiles, net_arch [32, 32]
  tests/fixtures/ppo_cartpole  PPO CartPole-v1 with SB3's defaults (Tanh, pi and vf [64, 64])
  tests/fixtures/a2c_acrobot   A2C Acrobot-v1, ReLU, net_arch pi [32, 16] / vf [24]
  tests/fixtures/ppo_cnn    PPO CnnPolicy on 3x36x36 uint8 images (shared NatureCNN, features 32,
                            no mlp_extractor layers)
  tests/fixtures/ppo_vecnormalize  PPO on observations in mixed units, trained under VecNormalize
                            (clip_obs 1.5, so some inputs are clipped); vec_normalize.pkl beside
  tests/fixtures/maskable_ppo  MaskablePPO (sb3-contrib) CartPole-v1, net_arch [32, 32]
  fixtures-large/atari_cnn  4x84x84 uint8 frames, CnnPolicy (NatureCNN, 1.7 M weights): benchmarks
                            (`atari --inputs N --out DIR`; `demo-inputs --inputs N --out DIR` makes a
                            copy of the demo with N fresh inputs)
Reference files (under `<fixture>/reference/`, or tests/fixtures/demo_reference for the demo):
  meta.json                 parameter names and shapes, input ids, greedy actions and Q-values
  gradients.npy             float32 (inputs, total parameters): per-input gradients, parameters
                            flattened in named_parameters() order
  average_gradients.json    the Python tool's average file
  candidate_weights_k<k>_m<m>.json   the Python tool's extract output
  weight_gradients.json     (acrobot only: small enough) the Python tool's raw gradients file
"""
import argparse
import json
import os
import shutil
import sys

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import python_tool  # noqa: E402
from Environment_Tooling.BespokeEdits.FeatureExtractor import CustomCombinedExtractor  # noqa: E402


# --------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------
class GridNav(gym.Env):
    """10x10 grid with walls, lava and a goal. Observation: 100 cell codes (wall 1, lava -1,
    goal 2), agent x/9 and y/9, one-hot heading (4) = 106 floats under 'MLP_input'.
    Actions: 0 turn left, 1 turn right, 2 forward, 3 back, 4 wait."""

    DIRS = [(1, 0), (0, 1), (-1, 0), (0, -1)]

    def __init__(self, layout_seed=0):
        super().__init__()
        self.observation_space = spaces.Dict(
            {"MLP_input": spaces.Box(-np.inf, np.inf, (106,), np.float32)}
        )
        self.action_space = spaces.Discrete(5)
        self.layout_seed = layout_seed
        self._build_layout(layout_seed)

    def _build_layout(self, seed):
        rng = np.random.default_rng(seed)
        grid = np.zeros((10, 10), dtype=np.float32)
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 1.0
        for _ in range(6):
            grid[rng.integers(2, 8), rng.integers(2, 8)] = 1.0
        for _ in range(3):
            grid[rng.integers(2, 8), rng.integers(2, 8)] = -1.0
        grid[8, 8] = 2.0
        self.grid = grid

    def _obs(self):
        heading = np.zeros(4, dtype=np.float32)
        heading[self.dir] = 1.0
        pos = np.array([self.x / 9.0, self.y / 9.0], dtype=np.float32)
        return {"MLP_input": np.concatenate([self.grid.reshape(-1), pos, heading]).astype(np.float32)}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        while True:
            self.x, self.y = (int(v) for v in self.np_random.integers(1, 9, size=2))
            if self.grid[self.y, self.x] == 0.0:
                break
        self.dir = int(self.np_random.integers(0, 4))
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        if action == 0:
            self.dir = (self.dir - 1) % 4
        elif action == 1:
            self.dir = (self.dir + 1) % 4
        elif action in (2, 3):
            dx, dy = self.DIRS[self.dir]
            if action == 3:
                dx, dy = -dx, -dy
            nx, ny = self.x + dx, self.y + dy
            if self.grid[ny, nx] != 1.0:
                self.x, self.y = nx, ny
        cell = self.grid[self.y, self.x]
        reward, done = -0.01, False
        if cell == 2.0:
            reward, done = 1.0, True
        elif cell == -1.0:
            reward, done = -1.0, True
        return self._obs(), reward, done, self.steps >= 60, {}


class Blobs(gym.Env):
    """uint8 images (C, H, W) with a bright blob that drifts; the action that points towards
    the image centre is rewarded. Small enough for a quick CnnPolicy."""

    def __init__(self, shape=(2, 44, 44), n_actions=4):
        super().__init__()
        self.shape = shape
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(n_actions)

    def _obs(self):
        c, h, w = self.shape
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros(self.shape, dtype=np.float32)
        for ch in range(c):
            cy, cx = self.pos[ch]
            img[ch] = 220.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (3.0 + ch) ** 2))
        img += self.np_random.uniform(0, 30, size=self.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        h, w = self.shape[1:]
        self.pos = [self.np_random.uniform(4, [h - 4, w - 4]) for _ in range(self.shape[0])]
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        h, w = self.shape[1:]
        cy, cx = self.pos[0]
        dy, dx = h / 2 - cy, w / 2 - cx
        best = (0 if dx > 0 else 1) if abs(dx) > abs(dy) else (2 if dy > 0 else 3)
        reward = 1.0 if action % 4 == best else 0.0
        self.pos = [p + self.np_random.normal(0, 2.0, size=2) for p in self.pos]
        self.pos = [np.clip(p, 2, [h - 2, w - 2]) for p in self.pos]
        return self._obs(), reward, False, self.steps >= 50, {}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def write_json(obj, path, indent=2):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent)


def collect_inputs(model, env, n, prefix, epsilon=0.3, seed=0, every=3):
    """Observations met by the trained agent under an epsilon-greedy policy."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out, step = [], 0
    while len(out) < n:
        if step % every == 0:
            out.append(obs)
        action = int(rng.integers(env.action_space.n)) if rng.random() < epsilon else int(model.predict(obs, deterministic=True)[0])
        obs, _, term, trunc, _ = env.step(action)
        step += 1
        if term or trunc:
            obs, _ = env.reset()
    inputs = {}
    for i, o in enumerate(out):
        if isinstance(o, dict) and "MLP_input" not in o:
            # A Dict observation is its keys' values concatenated in key order.
            flat = np.concatenate([np.asarray(o[k], dtype=np.float32).reshape(-1) for k in sorted(o)])
        else:
            flat = o["MLP_input"] if isinstance(o, dict) else o
        inputs[prefix(i, o)] = {"input": np.asarray(flat).reshape(-1).tolist()}
    return inputs


def write_reference(model, agent_dir, ref_dir, inputs, k_m_pairs, useful_path=None, raw_json=False,
                    npy_limit=None, average_json=True):
    """Runs the Python tool's method on the fixture and writes the reference files."""
    os.makedirs(ref_dir, exist_ok=True)
    grads = python_tool.compute_gradients(model, inputs)
    names = [name for name, _ in model.q_net.named_parameters()]
    shapes = [list(p.shape) for _, p in model.q_net.named_parameters()]
    ids = list(grads.keys())
    npy_ids = ids if npy_limit is None else ids[:npy_limit]
    flat = np.stack([
        np.concatenate([np.asarray(grads[i]["gradients"][n], dtype=np.float32).reshape(-1) for n in names])
        for i in npy_ids
    ])
    np.save(os.path.join(ref_dir, "gradients.npy"), flat)
    write_json({
        "params": [{"name": n, "shape": s} for n, s in zip(names, shapes)],
        "ids": npy_ids,
        "actions": [grads[i]["max_logit_action"] for i in npy_ids],
        "values": [grads[i]["max_logit_value"] for i in npy_ids],
        "all_actions": [grads[i]["max_logit_action"] for i in ids],
    }, os.path.join(ref_dir, "meta.json"))
    if raw_json:
        python_tool.dump(grads, os.path.join(ref_dir, "weight_gradients.json"))
    averages = python_tool.average_gradients(grads)
    if average_json:  # (the CNN's is 3 MB of text; its tests average gradients.npy instead)
        python_tool.dump(averages, os.path.join(ref_dir, "average_gradients.json"))
    cross = python_tool.load(os.path.join(agent_dir, "patching_results", "cross_metric_summary.json"))
    useful = python_tool.load(useful_path) if useful_path else None
    for k, m in k_m_pairs:
        python_tool.dump(python_tool.extract_candidates(cross, averages, useful, k, m),
                         os.path.join(ref_dir, f"candidate_weights_k{k}_m{m}.json"))


def linear_layers(model):
    """(param name prefix, module) of every Linear whose output feeds an activation."""
    q = model.q_net
    layers = []
    for name, module in q.named_modules():
        if isinstance(module, th.nn.Linear):
            layers.append((name, module))
    return layers[:-1]  # the output layer's units are actions, not neurons


def ablation_study(model, inputs):
    """Zero one hidden unit at a time over the clean inputs and measure how the greedy action's
    Q-value, the action and the action distribution change: a simple stand-in for the research
    project's activation patching, which ranks neurons the same way (by measured effect)."""
    q_net = model.q_net
    obs = [python_tool.make_obs(model, e["input"], "cpu") for e in inputs.values()]
    if isinstance(obs[0], dict):
        batch = {k: th.cat([o[k] for o in obs]) for k in obs[0]}
    else:
        batch = th.cat(obs)
    with th.no_grad():
        base = q_net(batch)
    base_action = base.argmax(dim=1)
    base_value = base.gather(1, base_action[:, None])[:, 0]
    results = []
    for name, module in linear_layers(model):
        for unit in range(module.out_features):
            def hook(_m, _i, out, unit=unit):
                out = out.clone()
                out[:, unit] = 0.0
                return out
            handle = module.register_forward_hook(hook)
            with th.no_grad():
                q = q_net(batch)
            handle.remove()
            drop = (base_value - q.gather(1, base_action[:, None])[:, 0]).abs().mean().item()
            flips = (q.argmax(dim=1) != base_action).float().mean().item()
            kl = th.nn.functional.kl_div(q.log_softmax(1), base.log_softmax(1), log_target=True,
                                         reduction="batchmean").item()
            results.append((name, unit, {"logit_drop": drop, "action_flip_rate": flips,
                                         "kl_divergence": kl}))
    return results


def cross_metric_summary(results, key_of, top=25, keep=12):
    metrics = ["logit_drop", "action_flip_rate", "kl_divergence"]
    maxima = {m: max(r[2][m] for r in results) or 1.0 for m in metrics}
    tops = {}
    for m in metrics:
        ranked = sorted(results, key=lambda r: -r[2][m])[:top]
        tops[m] = {(r[0], r[1]) for r in ranked}
    common = set.intersection(*tops.values())
    rows = []
    for layer, unit, vals in results:
        if (layer, unit) not in common:
            continue
        norm = {f"{m}_normalized": vals[m] / maxima[m] for m in metrics}
        final = sum(norm.values()) / len(metrics)
        rows.append((final, layer, unit, norm, vals))
    rows.sort(key=lambda r: -r[0])
    rows = rows[:keep]
    common_neurons = {}
    for final, layer, unit, norm, vals in rows:
        entry = {"final_average_importance": final}
        entry.update(norm)
        entry.update({f"{m}_raw": v for m, v in vals.items()})
        common_neurons[key_of(layer, unit)] = entry
    return {
        "description": "Neurons ranked in the top %d by every ablation metric" % top,
        "methodology": "Each hidden unit of every Linear layer but the output is zeroed in turn over "
                       "the clean inputs; metrics are normalized by their maximum over all units; "
                       "final_average_importance is the mean of the normalized metrics.",
        "summary_statistics": {
            "units_tested": len(results),
            "metric_maxima": maxima,
        },
        "metrics_info": {
            "logit_drop": "mean |q[a*] - q_ablated[a*]| over clean inputs",
            "action_flip_rate": "fraction of clean inputs whose greedy action changes",
            "kl_divergence": "mean KL(softmax(q) || softmax(q_ablated))",
        },
        "common_count": len(common_neurons),
        "common_neurons": common_neurons,
    }


def fresh_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(os.path.join(path, "activation_inputs"))
    os.makedirs(os.path.join(path, "patching_results"))


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
def make_demo():
    out = os.path.join(ROOT, "assets", "demo")
    fresh_dir(out)
    th.manual_seed(0)
    env = GridNav(layout_seed=3)
    model = DQN("MultiInputPolicy", env, seed=0, learning_rate=5e-4, buffer_size=20000,
                learning_starts=1000, exploration_fraction=0.3, target_update_interval=500,
                policy_kwargs=dict(features_extractor_class=CustomCombinedExtractor,
                                   features_extractor_kwargs=dict(features_dim=64),
                                   net_arch=[64, 64]))
    model.learn(total_timesteps=40000)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))

    inputs = {}
    for seed in range(4):
        def name(i, o, seed=seed, base=len(inputs)):
            v = o["MLP_input"]
            x, y, heading = round(float(v[100]) * 9), round(float(v[101]) * 9), int(np.argmax(v[102:]))
            return f"GridNav-{seed}-{x},{y},{heading}-{base + i:04d}"
        inputs.update(collect_inputs(model, GridNav(layout_seed=seed), 10, name, seed=seed))
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))

    results = ablation_study(model, inputs)
    experiments = [{layer: [unit]} for layer, unit, _ in results]
    index = {(layer, unit): i + 1 for i, (layer, unit, _) in enumerate(results)}
    useful_path = os.path.join(out, "useful_neurons.json")
    write_json(experiments, useful_path)
    summary = cross_metric_summary(results, lambda layer, unit: f"exp_{index[(layer, unit)]}_{layer}")
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))
    write_reference(model, out, os.path.join(ROOT, "tests", "fixtures", "demo_reference"), inputs,
                    [(2, 4), (1, 10), (0, 6), (5, 0), (70, 3)], useful_path=useful_path, npy_limit=16)


class ImageAndVector(gym.Env):
    """Dict observation {'image': uint8 (1, 36, 36), 'vec': float (3,)}: SB3's CombinedExtractor
    (NatureCNN for the image, flatten for the vector), MultiInputPolicy."""

    def __init__(self):
        super().__init__()
        self.blobs = Blobs((1, 36, 36), 3)
        self.observation_space = spaces.Dict({
            "image": self.blobs.observation_space,
            "vec": spaces.Box(-1.0, 1.0, (3,), np.float32),
        })
        self.action_space = spaces.Discrete(3)

    def _obs(self, img):
        return {"image": img, "vec": np.tanh(np.array(self.blobs.pos[0].tolist() + [self.steps / 10], dtype=np.float32) / 20)}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        img, _ = self.blobs.reset(seed=seed)
        return self._obs(img), {}

    def step(self, action):
        self.steps += 1
        img, r, term, trunc, info = self.blobs.step(action)
        return self._obs(img), r, term, trunc, info


def make_combined():
    out = os.path.join(ROOT, "tests", "fixtures", "combined")
    fresh_dir(out)
    th.manual_seed(0)
    model = DQN("MultiInputPolicy", ImageAndVector(), seed=0, buffer_size=5000, learning_starts=500,
                target_update_interval=250,
                policy_kwargs=dict(net_arch=[32], features_extractor_kwargs=dict(cnn_output_dim=16)))
    model.learn(total_timesteps=3000)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))
    env = ImageAndVector()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    inputs = {}
    for i in range(4):
        # Dict inputs are the keys' values concatenated in key order (image first, flattened).
        flat = np.concatenate([obs["image"].reshape(-1).astype(np.float32), obs["vec"]])
        inputs[f"ImageAndVector-0-{i:04d}"] = {"input": flat.tolist()}
        for _ in range(3):
            obs, _, term, trunc, _ = env.step(int(rng.integers(3)))
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    keys = [neuron_key("q_net.0", u) for u in (0, 3, 7)] + [neuron_key("features_extractor.extractors.image.linear.0", 2)]
    summary = {"description": "hand-picked candidates", "methodology": "none", "summary_statistics": {},
               "metrics_info": {}, "common_count": len(keys),
               "common_neurons": {k: {"final_average_importance": 1.0} for k in keys}}
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))
    write_reference(model, out, os.path.join(out, "reference"), inputs, [(2, 4)], average_json=False)


class Switches(gym.Env):
    """Dict observation {'dials': MultiDiscrete([3, 4, 2]), 'lamps': MultiBinary(3),
    'pos': Box(-1, 1, (2,))}: one-hot per dial, lamps and position as floats (CombinedExtractor
    flattens each key after SB3's preprocessing). The rewarded action depends on all three."""

    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Dict({
            "dials": spaces.MultiDiscrete([3, 4, 2]),
            "lamps": spaces.MultiBinary(3),
            "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
        })
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        return {"dials": self.dials.copy(), "lamps": self.lamps.copy(), "pos": self.pos.copy()}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        self._draw()
        return self._obs(), {}

    def _draw(self):
        r = self.np_random
        self.dials = r.integers([3, 4, 2]).astype(np.int64)
        self.lamps = r.integers(0, 2, 3).astype(np.int8)
        self.pos = r.uniform(-1, 1, 2).astype(np.float32)

    def step(self, action):
        best = (int(self.dials[0]) + int(self.lamps.sum()) + int(self.pos[0] > 0)) % 3
        reward = 1.0 if action == best else 0.0
        self.steps += 1
        self._draw()
        return self._obs(), reward, False, self.steps >= 20, {}


def make_multi():
    """DQN MultiInputPolicy on MultiDiscrete, MultiBinary and Box keys."""
    out = os.path.join(ROOT, "tests", "fixtures", "multi")
    fresh_dir(out)
    th.manual_seed(0)
    model = DQN("MultiInputPolicy", Switches(), seed=0, learning_starts=500, target_update_interval=250,
                exploration_fraction=0.5, policy_kwargs=dict(net_arch=[24]))
    model.learn(total_timesteps=6000)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))
    inputs = collect_inputs(model, Switches(), 12, lambda i, o: f"Switches-0-{i:04d}", every=1)
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    hand_picked(out, [neuron_key("q_net.0", u) for u in (2, 7, 15)])
    write_reference(model, out, os.path.join(out, "reference"), inputs, [(2, 4), (1, 6)])


def make_frozenlake():
    """Discrete observations (one-hot), MlpPolicy [16]."""
    out = os.path.join(ROOT, "tests", "fixtures", "frozenlake")
    fresh_dir(out)
    th.manual_seed(0)
    model = DQN("MlpPolicy", "FrozenLake-v1", seed=0, learning_starts=500, target_update_interval=250,
                exploration_fraction=0.5, policy_kwargs=dict(net_arch=[16]))
    model.learn(total_timesteps=5000)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))
    inputs = {f"FrozenLake-v1-0-{s:04d}": {"input": [s]} for s in range(16)}
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    keys = [neuron_key("q_net.0", u) for u in (1, 4, 9)]
    summary = {"description": "hand-picked candidates", "methodology": "none", "summary_statistics": {},
               "metrics_info": {}, "common_count": len(keys),
               "common_neurons": {k: {"final_average_importance": 1.0} for k in keys}}
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))
    write_reference(model, out, os.path.join(out, "reference"), inputs, [(2, 4), (1, 3)])


def make_demo_inputs(out, n):
    """A copy of the demo agent directory with n clean inputs from fresh rollouts of the trained
    agent (for benchmarks): same agent, candidates and useful_neurons.json."""
    src = os.path.join(ROOT, "assets", "demo")
    if os.path.isdir(out):
        shutil.rmtree(out)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("gradient_analysis"))
    model = DQN.load(os.path.join(src, "agent.zip"))
    path = os.path.join(out, "activation_inputs", "clean_inputs.json")
    per_seed = (n + 3) // 4
    with open(path, "w") as f:
        f.write("{")
        count = 0
        for seed in range(4):
            env = GridNav(layout_seed=seed)
            rng = np.random.default_rng(seed)
            obs, _ = env.reset(seed=seed)
            for _ in range(per_seed):
                if count == n:
                    break
                v = obs["MLP_input"]
                x, y, heading = round(float(v[100]) * 9), round(float(v[101]) * 9), int(np.argmax(v[102:]))
                key = f"GridNav-{seed}-{x},{y},{heading}-{count:05d}"
                f.write((", " if count else "") + json.dumps(key) + ': {"input": ' + json.dumps(v.tolist()) + "}")
                count += 1
                action = int(rng.integers(5)) if rng.random() < 0.3 else int(model.predict(obs, deterministic=True)[0])
                obs, _, term, trunc, _ = env.step(action)
                if term or trunc:
                    obs, _ = env.reset()
        f.write("}")


def neuron_key(layer, unit):
    return f"{layer}_neuron_{unit}"


def make_mlp(name, env_id, activation, net_arch, steps, n_inputs):
    out = os.path.join(ROOT, "tests", "fixtures", name)
    fresh_dir(out)
    th.manual_seed(0)
    # rl-baselines3-zoo's tuned DQN settings for these classic-control tasks
    model = DQN("MlpPolicy", env_id, seed=0, learning_rate=2.3e-3, batch_size=64, buffer_size=100000,
                learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
                gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
                policy_kwargs=dict(activation_fn=activation, net_arch=net_arch))
    model.learn(total_timesteps=steps)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))
    env = gym.make(env_id)
    inputs = collect_inputs(model, env, n_inputs, lambda i, o: f"{env_id}-0-{i:04d}", every=5)
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    summary = cross_metric_summary(ablation_study(model, inputs), neuron_key, top=20, keep=8)
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))
    write_reference(model, out, os.path.join(out, "reference"), inputs, [(2, 4), (1, 10), (3, 0)],
                    raw_json=(name == "acrobot"))


def make_cnn(out, shape, n_actions, steps, n_inputs, features_dim, reference, compact=False):
    fresh_dir(out)
    th.manual_seed(0)
    env = Blobs(shape, n_actions)
    model = DQN("CnnPolicy", env, seed=0, buffer_size=max(steps, 1000), learning_starts=min(1000, steps),
                train_freq=4, target_update_interval=500,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=features_dim)))
    if steps:
        model.learn(total_timesteps=steps)
    model.save(os.path.join(out, "agent"))
    model = DQN.load(os.path.join(out, "agent.zip"))
    inputs_path = os.path.join(out, "activation_inputs", "clean_inputs.json")
    if compact:
        # Large input sets are streamed to disk one entry at a time (compact JSON).
        stream_inputs(model, Blobs(shape, n_actions), n_inputs, inputs_path)
        inputs = None
    else:
        inputs = collect_inputs(model, Blobs(shape, n_actions), n_inputs,
                                lambda i, o: f"Blobs-0-{i:05d}", every=2)
        write_json(inputs, inputs_path)
    keys = [neuron_key("features_extractor.linear.0", u) for u in (0, 5, 17)]
    keys += [neuron_key("q_net.0", 1), neuron_key("features_extractor.cnn.4", 3)]
    summary = {"description": "hand-picked candidates (the CNN fixture has no ablation study)",
               "methodology": "none", "summary_statistics": {}, "metrics_info": {},
               "common_count": len(keys),
               "common_neurons": {key: {"final_average_importance": 1.0 - 0.1 * i} for i, key in enumerate(keys)}}
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))
    if reference:
        write_reference(model, out, os.path.join(out, "reference"), inputs, [(2, 4), (4, 8)],
                        average_json=False)


def stream_inputs(model, env, n, path, seed=0):
    """Epsilon-greedy observations written one by one: {"Blobs-0-00000": {"input": [...]}, ...}."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    with open(path, "w") as f:
        f.write("{")
        for i in range(n):
            if i:
                f.write(", ")
            f.write(json.dumps(f"Blobs-0-{i:05d}") + ": {\"input\": " + json.dumps(obs.reshape(-1).tolist()) + "}")
            for _ in range(2):
                action = int(rng.integers(env.action_space.n)) if rng.random() < 0.3 else int(model.predict(obs, deterministic=True)[0])
                obs, _, term, trunc, _ = env.step(action)
                if term or trunc:
                    obs, _ = env.reset()
        f.write("}")


# --------------------------------------------------------------------------------------------
# Beyond DQN: QR-DQN and actor-critic agents (sb3-contrib for QR-DQN and MaskablePPO)
# --------------------------------------------------------------------------------------------
def hand_picked(out, keys):
    summary = {"description": "hand-picked candidates", "methodology": "none", "summary_statistics": {},
               "metrics_info": {}, "common_count": len(keys),
               "common_neurons": {k: {"final_average_importance": 1.0 - 0.05 * i} for i, k in enumerate(keys)}}
    write_json(summary, os.path.join(out, "patching_results", "cross_metric_summary.json"))


def save_agent(model, out, env, n_inputs, prefix, keys, every=3, vec_normalize=None):
    """Saves the agent as SB3 does, the clean inputs (raw observations met by the trained agent)
    and hand-picked candidates."""
    model.save(os.path.join(out, "agent"))
    if vec_normalize is not None:
        vec_normalize.save(os.path.join(out, "vec_normalize.pkl"))
    policy_model = model

    class Greedy:
        def predict(self, obs, deterministic=True):
            o = vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs
            return policy_model.predict(o, deterministic=True)

    inputs = collect_inputs(Greedy(), env, n_inputs, lambda i, o: f"{prefix}-{i:04d}", every=every)
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    hand_picked(out, keys)


def make_qrdqn():
    from sb3_contrib import QRDQN
    out = os.path.join(ROOT, "tests", "fixtures", "qrdqn")
    fresh_dir(out)
    th.manual_seed(0)
    model = QRDQN("MlpPolicy", "CartPole-v1", seed=0, learning_starts=500, target_update_interval=250,
                  policy_kwargs=dict(n_quantiles=25, net_arch=[32, 32]))
    model.learn(total_timesteps=8000)
    save_agent(model, out, gym.make("CartPole-v1"), 12, "CartPole-v1-0",
               [neuron_key("quantile_net.0", u) for u in (1, 5, 9)] + [neuron_key("quantile_net.2", 3)])


def make_ppo_cartpole():
    from stable_baselines3 import PPO
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_cartpole")
    fresh_dir(out)
    th.manual_seed(0)
    model = PPO("MlpPolicy", "CartPole-v1", seed=0, n_steps=512, batch_size=64)
    model.learn(total_timesteps=12000)
    save_agent(model, out, gym.make("CartPole-v1"), 12, "CartPole-v1-0",
               [neuron_key("mlp_extractor.policy_net.0", u) for u in (2, 7)]
               + [neuron_key("mlp_extractor.policy_net.2", 11), neuron_key("mlp_extractor.value_net.0", 4)])


def make_a2c_separate():
    from stable_baselines3 import A2C
    out = os.path.join(ROOT, "tests", "fixtures", "a2c_acrobot")
    fresh_dir(out)
    th.manual_seed(0)
    model = A2C("MlpPolicy", "Acrobot-v1", seed=0,
                policy_kwargs=dict(activation_fn=th.nn.ReLU, net_arch=dict(pi=[32, 16], vf=[24])))
    model.learn(total_timesteps=10000)
    save_agent(model, out, gym.make("Acrobot-v1"), 12, "Acrobot-v1-0",
               [neuron_key("mlp_extractor.policy_net.0", u) for u in (0, 3)]
               + [neuron_key("mlp_extractor.policy_net.2", 5), neuron_key("mlp_extractor.value_net.0", 2)])


def make_ppo_cnn():
    from stable_baselines3 import PPO
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_cnn")
    fresh_dir(out)
    th.manual_seed(0)
    env = Blobs((3, 36, 36), 4)
    model = PPO("CnnPolicy", env, seed=0, n_steps=256, batch_size=64,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=32)))
    model.learn(total_timesteps=2048)
    save_agent(model, out, Blobs((3, 36, 36), 4), 4, "Blobs-0",
               [neuron_key("features_extractor.linear.0", u) for u in (1, 6)] + [neuron_key("action_net", 2)],
               every=2)


class Drift(gym.Env):
    """A point drifting on a plane with observations in wildly different units (position in
    metres around 100, velocity around 0.01, a heading in degrees): the case VecNormalize is
    for. The action that moves the point back to the origin is rewarded."""

    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Box(-np.inf, np.inf, (5,), np.float32)
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        return np.array([100 + self.x, 100 - self.x, 0.01 * self.v, 0.01 * self.v ** 3, 180 + 40 * np.sin(self.t)],
                        dtype=np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v, self.t = float(self.np_random.normal(0, 3)), float(self.np_random.normal(0, 1)), 0.0
        return self._obs(), {}

    def step(self, action):
        self.v += (action - 1) * 0.5 + float(self.np_random.normal(0, 0.2))
        self.x += self.v
        self.t += 0.3
        reward = -abs(self.x) / 10
        return self._obs(), reward, False, self.t > 15, {}


def make_ppo_vecnormalize():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_vecnormalize")
    fresh_dir(out)
    th.manual_seed(0)
    venv = VecNormalize(DummyVecEnv([Drift]), norm_obs=True, norm_reward=True, clip_obs=1.5)
    model = PPO("MlpPolicy", venv, seed=0, n_steps=256, batch_size=64)
    model.learn(total_timesteps=4096)
    venv.training = False
    save_agent(model, out, Drift(), 16, "Drift-0",
               [neuron_key("mlp_extractor.policy_net.0", u) for u in (1, 8, 30)], every=2, vec_normalize=venv)


def make_ppo_dict_separate():
    """PPO MultiInputPolicy (CombinedExtractor: NatureCNN for the image, flatten for the vector)
    with separate actor and critic extractors (share_features_extractor=False) and pi/vf
    net_arch, the Tanh default."""
    from stable_baselines3 import PPO
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_dict_separate")
    fresh_dir(out)
    th.manual_seed(0)
    model = PPO("MultiInputPolicy", ImageAndVector(), seed=0, n_steps=256, batch_size=64,
                policy_kwargs=dict(share_features_extractor=False, net_arch=dict(pi=[16], vf=[24]),
                                   features_extractor_kwargs=dict(cnn_output_dim=16)))
    model.learn(total_timesteps=2048)
    save_agent(model, out, ImageAndVector(), 4, "ImageAndVector-0",
               [neuron_key("features_extractor.extractors.image.linear.0", u) for u in (2, 5)]
               + [neuron_key("mlp_extractor.policy_net.0", 3)], every=2)


def make_ppo_custom_mlp():
    """PPO on the demo's grid world with the research project's custom mlp extractor (shared),
    whose ReLU differs from the policy's Tanh default: the case --extractor-activation is for."""
    from stable_baselines3 import PPO
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_custom_mlp")
    fresh_dir(out)
    th.manual_seed(0)
    model = PPO("MultiInputPolicy", GridNav(layout_seed=3), seed=0, n_steps=512, batch_size=64,
                policy_kwargs=dict(features_extractor_class=CustomCombinedExtractor,
                                   features_extractor_kwargs=dict(features_dim=32), net_arch=[32]))
    model.learn(total_timesteps=4096)
    save_agent(model, out, GridNav(layout_seed=3), 6, "GridNav-0",
               [neuron_key("features_extractor.mlp.0", u) for u in (4, 11)]
               + [neuron_key("mlp_extractor.policy_net.0", 7)])


class DriftDict(Drift):
    """Drift with a Dict observation: 'pos' (the two positions, in metres around 100) and
    'rest' (velocity terms and heading), for VecNormalize's per-key statistics."""

    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Dict({
            "pos": spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "rest": spaces.Box(-np.inf, np.inf, (3,), np.float32),
        })

    def _obs(self):
        o = super()._obs()
        return {"pos": o[:2].copy(), "rest": o[2:].copy()}


def make_ppo_dict_vecnormalize():
    """PPO MultiInputPolicy with VecNormalize on one key of a Dict observation (norm_obs_keys),
    clip 1.5 so that some inputs are clipped."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    out = os.path.join(ROOT, "tests", "fixtures", "ppo_dict_vecnormalize")
    fresh_dir(out)
    th.manual_seed(0)
    venv = VecNormalize(DummyVecEnv([DriftDict]), norm_obs=True, norm_reward=True, clip_obs=1.5,
                        norm_obs_keys=["pos"])
    model = PPO("MultiInputPolicy", venv, seed=0, n_steps=256, batch_size=64, policy_kwargs=dict(net_arch=[32]))
    model.learn(total_timesteps=4096)
    venv.training = False
    save_agent(model, out, DriftDict(), 12, "DriftDict-0",
               [neuron_key("mlp_extractor.policy_net.0", u) for u in (2, 9, 20)], every=2, vec_normalize=venv)


class MaskedCartPole(gym.Wrapper):
    def action_masks(self):
        return np.array([True, True])


def make_maskable():
    from sb3_contrib import MaskablePPO
    out = os.path.join(ROOT, "tests", "fixtures", "maskable_ppo")
    fresh_dir(out)
    th.manual_seed(0)
    model = MaskablePPO("MlpPolicy", MaskedCartPole(gym.make("CartPole-v1")), seed=0, n_steps=512, batch_size=64,
                        policy_kwargs=dict(net_arch=[32, 32]))
    model.learn(total_timesteps=4096)

    class Unmasked:
        def predict(self, obs, deterministic=True):
            return model.predict(obs, deterministic=True, action_masks=np.array([True, True]))

    model.save(os.path.join(out, "agent"))
    inputs = collect_inputs(Unmasked(), gym.make("CartPole-v1"), 8, lambda i, o: f"CartPole-v1-0-{i:04d}")
    write_json(inputs, os.path.join(out, "activation_inputs", "clean_inputs.json"))
    hand_picked(out, [neuron_key("mlp_extractor.policy_net.0", u) for u in (3, 9)])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="*", default=["demo", "cartpole", "acrobot", "cnn", "combined", "frozenlake",
                                                     "qrdqn", "ppo_cartpole", "a2c_acrobot", "ppo_cnn",
                                                     "ppo_vecnormalize", "maskable_ppo", "ppo_dict_separate",
                                                     "ppo_custom_mlp", "multi", "ppo_dict_vecnormalize"])
    parser.add_argument("--inputs", type=int, default=1000, help="inputs of the atari fixture")
    parser.add_argument("--out", default=os.path.join(ROOT, "fixtures-large", "atari_cnn"))
    args = parser.parse_args()
    th.set_num_threads(2)
    for which in args.which:
        print(f"== {which}", flush=True)
        if which == "demo":
            make_demo()
        elif which == "cartpole":
            make_mlp("cartpole", "CartPole-v1", th.nn.ReLU, [64, 64], 50000, 24)
        elif which == "acrobot":
            make_mlp("acrobot", "Acrobot-v1", th.nn.Tanh, [32, 16], 30000, 16)
        elif which == "cnn":
            make_cnn(os.path.join(ROOT, "tests", "fixtures", "cnn"), (2, 44, 44), 4, 8000, 6, 64, True)
        elif which == "combined":
            make_combined()
        elif which == "frozenlake":
            make_frozenlake()
        elif which == "qrdqn":
            make_qrdqn()
        elif which == "ppo_cartpole":
            make_ppo_cartpole()
        elif which == "a2c_acrobot":
            make_a2c_separate()
        elif which == "ppo_cnn":
            make_ppo_cnn()
        elif which == "ppo_vecnormalize":
            make_ppo_vecnormalize()
        elif which == "maskable_ppo":
            make_maskable()
        elif which == "ppo_dict_separate":
            make_ppo_dict_separate()
        elif which == "ppo_custom_mlp":
            make_ppo_custom_mlp()
        elif which == "multi":
            make_multi()
        elif which == "ppo_dict_vecnormalize":
            make_ppo_dict_vecnormalize()
        elif which == "demo-inputs":
            make_demo_inputs(args.out, args.inputs)
        elif which == "atari":
            make_cnn(args.out, (4, 84, 84), 6, 0, args.inputs, 512, False, compact=True)
        else:
            raise SystemExit(f"unknown fixture {which}")


if __name__ == "__main__":
    main()
