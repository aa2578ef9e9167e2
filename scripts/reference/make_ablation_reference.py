#!/usr/bin/env python3
"""PyTorch references for `saliency ablate` (docs/ablation.md), on the committed fixtures.

Run by hand, never by CI (the outputs are committed so tests need no Python):

    .bench-venv/bin/python scripts/reference/make_ablation_reference.py

For every fixture two selections are ablated with SB3's own Q-network (loaded with
`DQN.load`), in modes `zero` and `scale:0.5`, target `q`, with 20 random draws of seed 0:
- `candidate_weights_k2_m4.json`, the committed reference selection -> `ablation_<mode>.json`;
- `selection_live.json`, written here: the 3 elements of largest mean |gradient| (over the
  inputs of gradients.npy) of every parameter, biases included, so that every kind of layer
  (Linear, Conv, their biases) is changed where it matters -> `ablation_live_<mode>.json`.
For the actor-critic fixtures (POLICY_FIXTURES) the same, through SB3's policy object, for the
targets logprob and value on the live selection of each target's path ->
`ablation_<target>_live_<mode>.json`.
Results are written beside the other reference files, in the layout `saliency` writes. Everything is computed independently
of `saliency`:
- the changed network is a copy of `q_net` whose selected elements were set with PyTorch
  indexing (`w.view(-1)[idx] = 0`, or `*= F`);
- the predicted drop sums, over the changed elements, each input's own autograd gradient of
  q[a*] (one backward pass per input, as the Python tool computes gradients) times w - w', in
  float64;
- the random draws follow the generator docs/ablation.md defines (SplitMix64, Floyd's sample),
  written here again from that definition.
"""
import copy
import json
import os
import sys

import numpy as np
import torch as th

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import python_tool  # noqa: E402

FIXTURES = {
    "demo": (os.path.join(ROOT, "assets", "demo"), os.path.join(ROOT, "tests", "fixtures", "demo_reference")),
}
for _name in ["cartpole", "acrobot", "cnn", "combined", "frozenlake"]:
    _d = os.path.join(ROOT, "tests", "fixtures", _name)
    FIXTURES[_name] = (_d, os.path.join(_d, "reference"))

M64 = 2 ** 64
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed, r):
        self.state = (mix(seed) + r * GOLDEN) % M64

    def next(self):
        self.state = (self.state + GOLDEN) % M64
        return mix(self.state)

    def below(self, n):
        zone = (M64 // n) * n
        while True:
            x = self.next()
            if x < zone:
                return x % n


def distinct(rng, n, count):
    count = min(count, n)
    taken = set()
    for j in range(n - count, n):
        t = rng.below(j + 1)
        taken.add(j if t in taken else t)
    return sorted(taken)


def stack_obs(model, inputs):
    obs = [python_tool.make_obs(model, e["input"], "cpu") for e in inputs.values()]
    if isinstance(obs[0], dict):
        return {k: th.cat([o[k] for o in obs]) for k in obs[0]}
    return th.cat(obs)


def changed_network(q_net, change, mode):
    """A copy of q_net with the change applied, and w - w' (float64) per changed parameter."""
    net = copy.deepcopy(q_net)
    params = dict(net.named_parameters())
    deltas = {}
    with th.no_grad():
        for name, idx in change.items():
            w = params[name]
            before = w.detach().clone()
            flat = w.view(-1)
            index = th.tensor(idx, dtype=th.long)
            if mode == "zero":
                flat[index] = 0.0
            else:
                flat[index] *= float(mode.split(":")[1])
            deltas[name] = (before.double() - w.detach().double()).view(-1)
    return net, deltas


def effects(q_net, batch, out, actions, change, mode, grads=None):
    net, deltas = changed_network(q_net, change, mode)
    with th.no_grad():
        out2 = net(batch)
    o, o2 = out.double(), out2.double()
    logp, logq = th.log_softmax(o, 1), th.log_softmax(o2, 1)
    rows = []
    for i, a in enumerate(actions):
        drop = float(o[i, a] - o2[i, a])
        kl = float((logp[i].exp() * (logp[i] - logq[i])).sum())
        pred = 0.0
        if grads is not None:
            for name, idx in change.items():
                g = grads[i][name].view(-1).double()
                pred += float((g[idx] * deltas[name][idx]).sum())
        rows.append({"action": a, "ablated_action": int(th.argmax(out2[i])), "target_drop": drop, "kl": kl,
                     "predicted_drop": pred})
    return rows


def aggregates(rows):
    n = len(rows)
    s = {"flip_rate": 0.0, "mean_target_drop": 0.0, "mean_kl": 0.0, "mean_predicted_drop": 0.0}
    flips = 0
    for r in rows:
        flips += r["ablated_action"] != r["action"]
        s["mean_target_drop"] += r["target_drop"]
        s["mean_kl"] += r["kl"]
        s["mean_predicted_drop"] += r["predicted_drop"]
    s["flip_rate"] = flips / n
    for k in ("mean_target_drop", "mean_kl", "mean_predicted_drop"):
        s[k] /= n
    return s


def stat(values, sel):
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    below = sum(v < sel for v in values)
    ties = sum(v == sel for v in values)
    return {"mean": mean, "std": var ** 0.5, "min": min(values), "max": max(values),
            "percentile": (below + 0.5 * ties) / n}


def write_live_selection(params, grads, path, per_param=3):
    """The `per_param` elements of largest mean |gradient| of every parameter (`params`: name and
    shape entries, in the order of the columns of `grads`, inputs x elements), written to `path`
    as a candidate file's weight_targets (a 1-D parameter's element i is neuron 0, weight i)."""
    mean = np.abs(grads.astype(np.float64)).mean(axis=0)
    targets, start = [], 0
    for p in params:
        shape, numel = p["shape"], int(np.prod(p["shape"]))
        block = mean[start:start + numel]
        start += numel
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else numel
        for flat in sorted(np.argsort(-block, kind="stable")[:per_param].tolist()):
            neuron, weight = (flat // cols, flat % cols) if len(shape) > 1 else (0, flat)
            targets.append({"layer_name": p["name"], "neuron_index": int(neuron), "weight_index": int(weight),
                            "gradient_magnitude": float(block[flat])})
    with open(path, "w") as f:
        json.dump({"weight_targets": targets}, f, indent=2)
    return os.path.basename(path)


def live_selection(ref_dir):
    """The live selection of a DQN fixture, from the Python tool's gradients.npy."""
    meta = python_tool.load(os.path.join(ref_dir, "meta.json"))
    return write_live_selection(meta["params"], np.load(os.path.join(ref_dir, "gradients.npy")),
                                os.path.join(ref_dir, "selection_live.json"))


def change_of(selection, names, shapes):
    """A candidate file's weight_targets as {parameter: sorted flat indices}, in `names` order."""
    change = {}
    for t in selection["weight_targets"]:
        shape = shapes[t["layer_name"]]
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        change.setdefault(t["layer_name"], set()).add(t["neuron_index"] * cols + t["weight_index"])
    return {n: sorted(change[n]) for n in names if n in change}


def reference(name, mode, selection="candidate_weights_k2_m4.json", tag="", draws=20, seed=0):
    agent_dir, ref_dir = FIXTURES[name]
    model = python_tool.load_model(agent_dir)
    q_net = model.q_net
    q_net.eval()
    names = [n for n, _ in q_net.named_parameters()]
    shapes = {n: tuple(p.shape) for n, p in q_net.named_parameters()}
    inputs = python_tool.load(os.path.join(agent_dir, "activation_inputs", "clean_inputs.json"))
    change = change_of(python_tool.load(os.path.join(ref_dir, selection)), names, shapes)

    batch = stack_obs(model, inputs)
    with th.no_grad():
        out = q_net(batch)
    actions = [int(a) for a in th.argmax(out, 1)]
    grads = []
    for i, entry in enumerate(inputs.values()):
        q_net.zero_grad()
        q = q_net(python_tool.make_obs(model, entry["input"], "cpu"))
        q[0, actions[i]].backward()
        grads.append({n: p.grad.detach().clone() for n, p in q_net.named_parameters()})

    rows = effects(q_net, batch, out, actions, change, mode, grads)
    selection = aggregates(rows)
    random = None
    if draws:
        counts = [(n, len(change[n]), int(np.prod(shapes[n]))) for n in names if n in change]
        per_draw = []
        for r in range(draws):
            rng = SplitMix64(seed, r)
            drawn = {n: distinct(rng, numel, c) for n, c, numel in counts}
            per_draw.append(aggregates(effects(q_net, batch, out, actions, drawn, mode)))
        random = {k: stat([d[k] for d in per_draw], selection[k])
                  for k in ("flip_rate", "mean_target_drop", "mean_kl")}
    report = {
        "metadata": {"agent": "agent.zip", "num_examples": len(rows),
                     "num_weights": sum(len(v) for v in change.values()), "mode": mode, "target": "q",
                     "random_draws": draws, "seed": seed},
        "selection": selection,
        "random": random,
        "per_input": dict(zip(inputs.keys(), rows)),
    }
    out_path = os.path.join(ref_dir, "ablation_%s%s.json" % (tag, mode.replace(":", "_")))
    with open(out_path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"{name} {mode}: flip {selection['flip_rate']:.3f} drop {selection['mean_target_drop']:.4g} "
          f"-> {os.path.relpath(out_path, ROOT)}", flush=True)


# Actor-critic policies: the target's path only (the actor's for logprob, the critic's for
# value), through SB3's own policy object; the actions and the KL are always the policy's.
POLICY_FIXTURES = {"ppo_cnn": ("logprob", "value"), "a2c_acrobot": ("logprob", "value")}


def policy_live_selection(ref_dir, target):
    """As live_selection, from make_algorithm_reference.py's gradients of `target`."""
    heads = python_tool.load(os.path.join(ref_dir, "heads.json"))["targets"][target]
    grads = np.load(os.path.join(ref_dir, "targets.npz"))[f"{target}/grads"]
    return write_live_selection(heads, grads, os.path.join(ref_dir, f"selection_live_{target}.json"))


def policy_reference(name, target, mode="zero", draws=20, seed=0):
    import make_algorithm_reference as mar
    agent_dir = os.path.join(ROOT, "tests", "fixtures", name)
    ref_dir = os.path.join(agent_dir, "reference")
    model = mar.load(name)
    vn = mar.vec_normalize(name)
    policy = model.policy
    policy.eval()
    named = [(n, p) for n, p in policy.named_parameters() if mar.on_path(n, target, policy)]
    names = [n for n, _ in named]
    shapes = {n: tuple(p.shape) for n, p in named}
    inputs = python_tool.load(os.path.join(agent_dir, "activation_inputs", "clean_inputs.json"))
    change = change_of(python_tool.load(os.path.join(ref_dir, policy_live_selection(ref_dir, target))), names, shapes)

    def batch_of(dtype, pol_vn=vn):
        xs = [mar.obs_leaf(model, e["input"], dtype, pol_vn)[1] for e in inputs.values()]
        return {k: th.cat([x[k] for x in xs]) for k in xs[0]} if isinstance(xs[0], dict) else th.cat(xs)

    def value_of(logits, value, i, a):
        if target == "value":
            return float(value[i, 0].double())
        return float(th.log_softmax(logits[i:i + 1].double(), 1)[0, a])

    batch = batch_of(th.float32)
    with th.no_grad():
        logits, value = mar.actor_critic(policy, batch)
    actions = [mar.greedy(row) for row in logits.tolist()]
    # Each input's own gradient of the target (float64 for logprob, as the algorithm references).
    grad_policy = copy.deepcopy(policy).double() if target == "logprob" else policy
    grad_named = dict(grad_policy.named_parameters())
    grads = []
    for i, entry in enumerate(inputs.values()):
        grad_policy.zero_grad()
        _, x = mar.obs_leaf(model, entry["input"], th.float64 if target == "logprob" else th.float32, vn)
        lg, v = mar.actor_critic(grad_policy, x)
        t = v[0, 0] if target == "value" else th.log_softmax(lg, 1)[0, actions[i]]
        t.backward()
        grads.append({n: (grad_named[n].grad if grad_named[n].grad is not None else th.zeros_like(grad_named[n]))
                      .detach().clone() for n in names})

    def effects_of(ch, with_pred):
        net, deltas = changed_network(policy, ch, mode)
        with th.no_grad():
            logits2, value2 = mar.actor_critic(net, batch)
        lp, lq = th.log_softmax(logits.double(), 1), th.log_softmax(logits2.double(), 1)
        rows = []
        for i, a in enumerate(actions):
            pred = 0.0
            if with_pred:
                for n, idx in ch.items():
                    pred += float((grads[i][n].view(-1).double()[idx] * deltas[n][idx]).sum())
            rows.append({"action": a, "ablated_action": mar.greedy(logits2[i].tolist()),
                         "target_drop": value_of(logits, value, i, a) - value_of(logits2, value2, i, a),
                         "kl": float((lp[i].exp() * (lp[i] - lq[i])).sum()), "predicted_drop": pred})
        return rows

    rows = effects_of(change, True)
    selection = aggregates(rows)
    counts = [(n, len(change[n]), int(np.prod(shapes[n]))) for n in names if n in change]
    per_draw = []
    for r in range(draws):
        rng = SplitMix64(seed, r)
        per_draw.append(aggregates(effects_of({n: distinct(rng, numel, c) for n, c, numel in counts}, False)))
    random = {k: stat([d[k] for d in per_draw], selection[k]) for k in ("flip_rate", "mean_target_drop", "mean_kl")}
    report = {
        "metadata": {"agent": "agent.zip", "num_examples": len(rows),
                     "num_weights": sum(len(v) for v in change.values()), "mode": mode, "target": target,
                     "random_draws": draws, "seed": seed},
        "selection": selection,
        "random": random,
        "per_input": dict(zip(inputs.keys(), rows)),
    }
    out_path = os.path.join(ref_dir, f"ablation_{target}_live_{mode.replace(':', '_')}.json")
    with open(out_path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"{name} {target} {mode}: flip {selection['flip_rate']:.3f} drop {selection['mean_target_drop']:.4g} "
          f"-> {os.path.relpath(out_path, ROOT)}", flush=True)


def main():
    th.set_num_threads(2)
    which = sys.argv[1:] or list(FIXTURES) + list(POLICY_FIXTURES)
    for name in which:
        if name in POLICY_FIXTURES:
            for target in POLICY_FIXTURES[name]:
                for mode in ("zero", "scale:0.5"):
                    policy_reference(name, target, mode)
            continue
        live = live_selection(FIXTURES[name][1])
        for mode in ("zero", "scale:0.5"):
            reference(name, mode)
            reference(name, mode, live, "live_")


if __name__ == "__main__":
    main()
