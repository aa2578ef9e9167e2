#!/usr/bin/env python3
"""PyTorch references for targets, measures and input saliency (docs/targets.md,
docs/measures.md), on the committed fixtures.

Run by hand, never by CI (the outputs are committed so tests need no Python):

    .bench-venv/bin/python scripts/reference/make_target_reference.py

For each fixture and each target (q, margin, action:<last action>, logsoftmax), the first few
inputs (4; 2 for the image agents) go one at a time through SB3's own Q-network with PyTorch
autograd, and `reference/targets.npz` (`tests/fixtures/demo_reference` for the demo) gets, per
target T:
  T/grads        float32 (inputs, all parameters flattened in named_parameters() order)
  T/input/<key>  float32 (inputs, values of the key): d target / d observation as written in
                 clean_inputs.json (through the /255 of images; for Discrete observations with
                 respect to the one-hot vector SB3 builds)
  T/actions      int64 greedy actions;  T/values  float64 target values
`logsoftmax` is computed with the whole network in float64 (a copy of q_net in double
precision): float32 autograd loses the digits of 1 - p(a*) for a confident agent.
The measures are reductions of these gradients; the Rust tests compute them from this file.
"""
import copy
import os
import sys

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import python_tool  # noqa: E402
from make_ablation_reference import FIXTURES  # noqa: E402

IMAGE_FIXTURES = {"cnn", "combined"}


def preprocess(model, space, t):
    """SB3's preprocess_obs for a Box leaf, keeping its precision (SB3 casts to float32)."""
    if model.policy.normalize_images and is_image_space(space):
        return t / 255.0
    return t


def obs_leaves(model, values, dtype):
    """The observation as leaves requiring grad, and how to run the network on them: Box and
    Dict keys are the values as written (images divided by 255 on the way, as SB3 does); a
    Discrete observation is the one-hot vector SB3 builds. The network runs as SB3's
    QNetwork.forward does: q_net(features_extractor(preprocessed))."""
    space = model.observation_space
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if isinstance(space, spaces.Discrete):
        one_hot = th.zeros((1, int(space.n)), dtype=dtype)
        one_hot[0, int(flat[0])] = 1.0
        one_hot.requires_grad_(True)
        return {"obs": one_hot}, lambda net: net.q_net(net.features_extractor(one_hot))
    if isinstance(space, spaces.Dict):
        leaves, offset = {}, 0
        for key, sub in space.spaces.items():
            n = int(np.prod(sub.shape))
            t = th.tensor(flat[offset:offset + n].reshape((1,) + sub.shape), dtype=dtype, requires_grad=True)
            leaves[key] = t
            offset += n
        pre = lambda: {k: preprocess(model, space.spaces[k], v) for k, v in leaves.items()}  # noqa: E731
        return leaves, lambda net: net.q_net(net.features_extractor(pre()))
    t = th.tensor(flat.reshape((1,) + space.shape), dtype=dtype, requires_grad=True)
    return {"obs": t}, lambda net: net.q_net(net.features_extractor(preprocess(model, space, t)))


def target_value(name, q, a):
    if name == "q":
        return q[0, a]
    if name.startswith("action:"):
        return q[0, int(name.split(":")[1])]
    if name == "margin":
        others = [j for j in range(q.shape[1]) if j != a]
        b = max(others, key=lambda j: (float(q[0, j]), -j))
        return q[0, a] - q[0, b]
    if name == "logsoftmax":
        return th.log_softmax(q, dim=1)[0, a]
    raise ValueError(name)


def greedy(q):
    row = q[0].tolist()
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def main():
    th.set_num_threads(2)
    which = sys.argv[1:] or list(FIXTURES)
    for name in which:
        agent_dir, ref_dir = FIXTURES[name]
        model = python_tool.load_model(agent_dir)
        net32 = model.q_net
        net32.eval()
        net64 = copy.deepcopy(net32).double()
        inputs = python_tool.load(os.path.join(agent_dir, "activation_inputs", "clean_inputs.json"))
        n_ref = 2 if name in IMAGE_FIXTURES else 4
        items = list(inputs.items())[:n_ref]
        n_actions = int(model.action_space.n)
        arrays = {}
        for target in ["q", "margin", f"action:{n_actions - 1}", "logsoftmax"]:
            use64 = target == "logsoftmax"
            net = net64 if use64 else net32
            dtype = th.float64 if use64 else th.float32
            grads, actions, values, ins = [], [], [], {}
            for _, entry in items:
                # The greedy action comes from the float32 network, as the tool computes it.
                _, run32 = obs_leaves(model, entry["input"], th.float32)
                with th.no_grad():
                    a = greedy(run32(net32))
                leaves, run = obs_leaves(model, entry["input"], dtype)
                net.zero_grad()
                value = target_value(target, run(net), a)
                value.backward()
                grads.append(np.concatenate([p.grad.detach().double().numpy().reshape(-1)
                                             for _, p in net.named_parameters()]).astype(np.float32))
                for key, leaf in leaves.items():
                    ins.setdefault(key, []).append(leaf.grad.detach().double().numpy().reshape(-1).astype(np.float32))
                actions.append(a)
                values.append(float(value))
            arrays[f"{target}/grads"] = np.stack(grads)
            arrays[f"{target}/actions"] = np.array(actions, dtype=np.int64)
            arrays[f"{target}/values"] = np.array(values, dtype=np.float64)
            for key, rows in ins.items():
                arrays[f"{target}/input/{key}"] = np.stack(rows)
        path = os.path.join(ref_dir, "targets.npz")
        np.savez_compressed(path, **arrays)
        print(f"{name}: {n_ref} inputs, {len(arrays)} arrays -> {os.path.relpath(path, ROOT)} "
              f"({os.path.getsize(path) // 1024} KB)", flush=True)


if __name__ == "__main__":
    main()
