#!/usr/bin/env python3
"""PyTorch and scipy references for `saliency validate` (docs/validate.md), on three committed
fixtures: a DQN MLP (cartpole), a DQN CNN (cnn) and a PPO agent (ppo_cartpole, target logprob).

Run by hand, never by CI (the outputs are committed so tests need no Python):

    /tmp/ref/bin/python scripts/reference/make_validate_reference.py   # + scipy

Everything is computed here, independently of `saliency`, from the definitions:
- per-input gradients of the target with PyTorch autograd through SB3's own networks (DQN:
  q[a*] of `q_net`; PPO: log_softmax(action_net(...))[a*] of the policy, float64 copy as in
  make_algorithm_reference.py), reduced in float64 to the measures (mean-abs, mean-sq, max-abs,
  mean-abs-gxw, abs-mean-gxw, nonzero, fisher, variance, snr);
- the stratified sample of docs/validate.md on mean-abs (quota per tensor, deciles, round-robin
  from the top decile, Floyd's sample with SplitMix64), written again from its definition;
- each sampled element set to 0 in a copy of the network, every input run forward: damage =
  mean |T(w) - T(w')| with the original greedy action, flip rate = share of inputs whose greedy
  action changes;
- scipy.stats.spearmanr of each measure with the damage, and the top-decile hit rate.
Output: `reference/validation.json` beside the other reference files.
"""
import copy
import json
import math
import os
import sys

import numpy as np
import torch as th
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import python_tool  # noqa: E402
from make_ablation_reference import SplitMix64, distinct  # noqa: E402
from make_algorithm_reference import actor_critic, greedy, obs_leaf, on_path  # noqa: E402

# fixture: (sample size N, inputs M)
CASES = {"cartpole": (512, 24), "cnn": (128, 6), "ppo_cartpole": (256, 12)}
MEASURES = ["mean-abs", "mean-sq", "max-abs", "mean-abs-gxw", "abs-mean-gxw", "nonzero", "fisher", "variance",
            "snr"]
SNR_INFINITE = float(np.finfo(np.float32).max)


def load(name):
    path = os.path.join(ROOT, "tests", "fixtures", name, "agent.zip")
    if name.startswith("ppo"):
        from stable_baselines3 import PPO
        return PPO.load(path, device="cpu")
    from stable_baselines3 import DQN
    return DQN.load(path, device="cpu")


class Head:
    """The target T(x) of one input batch, for a network (the original or a changed copy)."""

    def __init__(self, model, name):
        self.model, self.ppo = model, name.startswith("ppo")
        if self.ppo:
            self.net = copy.deepcopy(model.policy).double()
            self.named = [(n, p) for n, p in self.net.named_parameters() if on_path(n, "logprob", self.net)]
        else:
            self.net = model.q_net
            self.named = list(self.net.named_parameters())
        self.net.eval()

    def x(self, values):
        if self.ppo:
            return obs_leaf(self.model, values, th.float64, None)[1]
        return python_tool.make_obs(self.model, values, "cpu")

    def outputs(self, net, x):
        """(scores whose argmax is the greedy action, the target per action)."""
        if self.ppo:
            logits, _ = actor_critic(net, x)
            return logits, th.log_softmax(logits, 1)
        q = net(x)
        return q, q


def measures_of(grads, w):
    """grads: inputs x elements (float64); w: the elements' values."""
    n = grads.shape[0]
    mean, sq = grads.sum(0) / n, (grads * grads).sum(0) / n
    var = np.maximum(sq - mean * mean, 0.0)
    snr = np.where(mean == 0, 0.0, np.where(var == 0, SNR_INFINITE, np.abs(mean) / np.sqrt(np.where(var == 0, 1, var))))
    return {
        "mean-abs": np.abs(grads).sum(0) / n,
        "mean-sq": sq,
        "max-abs": np.abs(grads).max(0),
        "mean-abs-gxw": np.abs(grads * w).sum(0) / n,
        "abs-mean-gxw": np.abs((grads * w).sum(0) / n),
        "nonzero": (grads != 0).sum(0) / n,
        "fisher": w * w * sq,
        "variance": var,
        "snr": np.minimum(snr, SNR_INFINITE),
    }


def sample(mean_abs_per_param, n, seed):
    total = sum(len(v) for v in mean_abs_per_param)
    rng = SplitMix64(seed, 0)
    out = []
    for t, v in enumerate(mean_abs_per_param):
        size = len(v)
        quota = min(max(4, int(round_half_even(n * size / total))), size)
        order = sorted(range(size), key=lambda i: (v[i], i))
        bounds = [(d * size // 10, (d + 1) * size // 10) for d in range(10)]
        counts, left = [0] * 10, quota
        while left > 0:
            for d in reversed(range(10)):
                if left > 0 and counts[d] < bounds[d][1] - bounds[d][0]:
                    counts[d] += 1
                    left -= 1
        for d in reversed(range(10)):
            lo, hi = bounds[d]
            for pos in distinct(rng, hi - lo, counts[d]):
                out.append((t, order[lo + pos]))
    return out


def round_half_even(x):
    # Rust's f64::round rounds half away from zero; the quotas here are never exact halves
    # (checked below), so either rounding gives the same.
    assert abs(x - math.floor(x) - 0.5) > 1e-9, x
    return math.floor(x + 0.5)


def top_decile_hit(a, b):
    k = math.ceil(len(a) / 10)
    top = lambda v: set(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])  # noqa: E731
    return len(top(a) & top(b)) / k


def main():
    th.set_num_threads(2)
    for name in sys.argv[1:] or list(CASES):
        n_sample, m_inputs = CASES[name]
        model = load(name)
        head = Head(model, name)
        agent_dir = os.path.join(ROOT, "tests", "fixtures", name)
        inputs = python_tool.load(os.path.join(agent_dir, "activation_inputs", "clean_inputs.json"))
        items = list(inputs.items())[:m_inputs]
        # Per-input gradients and the greedy actions.
        grads, actions = [], []
        for _, entry in items:
            x = head.x(entry["input"])
            head.net.zero_grad()
            scores, target = head.outputs(head.net, x)
            a = greedy(scores[0].tolist())
            target[0, a].backward()
            grads.append(np.concatenate([p.grad.detach().double().numpy().reshape(-1) for _, p in head.named]))
            actions.append(a)
        grads = np.stack(grads)
        w = np.concatenate([p.detach().double().numpy().reshape(-1) for _, p in head.named])
        # (the weights as float32 values, as the agent stores them)
        w = w.astype(np.float32).astype(np.float64)
        ms = measures_of(grads, w)
        sizes = [p.numel() for _, p in head.named]
        starts = np.cumsum([0] + sizes)
        per_param = [ms["mean-abs"][starts[t]:starts[t + 1]].tolist() for t in range(len(sizes))]
        elements = sample(per_param, n_sample, 0)
        # Damage of each element alone, over every input at once.
        xs = [head.x(e["input"]) for _, e in items]
        x = th.cat(xs) if not isinstance(xs[0], dict) else {k: th.cat([v[k] for v in xs]) for k in xs[0]}
        with th.no_grad():
            _, t0 = head.outputs(head.net, x)
        a = th.tensor(actions)
        base = t0.double()[th.arange(len(actions)), a]
        damage, flips = [], []
        for t, i in elements:
            net = copy.deepcopy(head.net)
            params = dict(net.named_parameters())
            with th.no_grad():
                params[head.named[t][0]].view(-1)[i] = 0.0
                scores2, t2 = head.outputs(net, x)
            after = t2.double()[th.arange(len(actions)), a]
            damage.append(float((base - after).abs().mean()))
            flips.append(float((scores2.argmax(1) != a).double().mean()))
        flat = [int(starts[t] + i) for t, i in elements]
        out = {
            "inputs": len(items),
            "sample": n_sample,
            "seed": 0,
            "target": "logprob" if head.ppo else "q",
            "params": [{"name": n, "shape": list(p.shape)} for n, p in head.named],
            "elements": [[t, i] for t, i in elements],
            "damage": damage,
            "flip_rate": flips,
            "measures": {m: [float(ms[m][j]) for j in flat] for m in MEASURES},
            "spearman": {},
            "top_decile_hit": {},
        }
        for m in MEASURES:
            rho = stats.spearmanr(out["measures"][m], damage).statistic
            out["spearman"][m] = None if np.isnan(rho) else float(rho)
            out["top_decile_hit"][m] = top_decile_hit(out["measures"][m], damage)
        with open(os.path.join(agent_dir, "reference", "validation.json"), "w") as f:
            json.dump(out, f, indent=1)
        best = max((m for m in MEASURES if out["spearman"][m] is not None), key=lambda m: out["spearman"][m])
        print(f"{name}: {len(elements)} weights over {len(items)} inputs; best {best} "
              f"({out['spearman'][best]:.3f})", flush=True)


if __name__ == "__main__":
    main()
