#!/usr/bin/env python3
"""PyTorch references for QR-DQN and actor-critic agents (PPO, A2C, MaskablePPO), with
VecNormalize, on the committed fixtures (docs/algorithms.md).

Run by hand, never by CI (the outputs are committed so tests need no Python):

    .bench-venv/bin/python scripts/reference/make_algorithm_reference.py

For each fixture and each of its family's targets, every input goes one at a time through SB3's
(or sb3-contrib's) own policy object with PyTorch autograd:
  QR-DQN: q = mean over quantiles of policy.quantile_net(obs); targets q, margin, action:<last>,
          logsoftmax; parameters policy.quantile_net.named_parameters().
  actor-critic: logits = policy.action_net(policy.mlp_extractor.forward_actor(features)),
          V = policy.value_net(policy.mlp_extractor.forward_critic(vf features)); targets
          logprob, logit, margin, action:<last> (its log-probability), value; parameters those
          of policy.named_parameters() on the target's path.
The log-softmax targets (logsoftmax, logprob, action:N of a policy) use a float64 copy of the
policy. Observations are the inputs as written; with VecNormalize they are normalised as SB3
does (float64, clip, then float32), and the input gradients are with respect to the raw values.
Output, beside the other reference files: `reference/targets.npz` (per target: grads,
input/<key> (`obs` for a non-Dict observation), actions, values) and `reference/heads.json` (per target: the parameters' names and
shapes, in order).
"""
import copy
import json
import os
import pickle
import sys

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import python_tool  # noqa: E402

FIXTURES = ["qrdqn", "ppo_cartpole", "a2c_acrobot", "ppo_cnn", "ppo_vecnormalize", "maskable_ppo",
            "ppo_dict_separate", "ppo_custom_mlp", "ppo_dict_vecnormalize"]
N_REF = {"ppo_cnn": 2, "ppo_cartpole": 6, "ppo_vecnormalize": 8, "ppo_dict_separate": 2}


def load(name):
    path = os.path.join(ROOT, "tests", "fixtures", name, "agent.zip")
    if name == "qrdqn":
        from sb3_contrib import QRDQN
        return QRDQN.load(path, device="cpu")
    if name == "maskable_ppo":
        from sb3_contrib import MaskablePPO
        return MaskablePPO.load(path, device="cpu")
    if name.startswith("a2c"):
        from stable_baselines3 import A2C
        return A2C.load(path, device="cpu")
    from stable_baselines3 import PPO
    return PPO.load(path, device="cpu")


def vec_normalize(name):
    path = os.path.join(ROOT, "tests", "fixtures", name, "vec_normalize.pkl")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return pickle.load(f)  # our own file (made by make_fixtures.py), so safe to unpickle


def obs_leaf(model, values, dtype, vn):
    """The raw observation as leaves (one per Dict key, in key order; one "obs" otherwise), and
    the observation the policy sees (normalised as VecNormalize does, and divided by 255 for
    images, in the leaves' precision)."""
    space = model.observation_space
    flat = np.asarray(values, dtype=np.float32).astype(np.float64)
    subspaces = list(space.spaces.items()) if isinstance(space, spaces.Dict) else [("obs", space)]
    leaves, xs, at = {}, {}, 0
    for key, sub in subspaces:
        n = int(np.prod(sub.shape))
        part = flat[at:at + n].reshape((1,) + sub.shape)
        at += n
        leaf = th.tensor(part, dtype=th.float64 if vn is not None else dtype, requires_grad=True)
        x = leaf
        # VecNormalize: one RunningMeanStd, or for a Dict one per key of norm_obs_keys.
        rms = None
        if vn is not None:
            rms = vn.obs_rms.get(key) if isinstance(vn.obs_rms, dict) else vn.obs_rms
        if rms is not None:
            x = (x - th.tensor(rms.mean)) / th.sqrt(th.tensor(rms.var) + vn.epsilon)
            x = th.clamp(x, -vn.clip_obs, vn.clip_obs)
        x = x.to(dtype)
        if model.policy.normalize_images and is_image_space(sub):
            x = x / 255.0
        leaves[key], xs[key] = leaf, x
    assert at == len(flat), f"{len(flat)} values for an observation of {at}"
    if isinstance(space, spaces.Dict):
        return leaves, xs
    return leaves, xs["obs"]


def q_outputs(policy, x):
    qn = policy.quantile_net
    quantiles = qn.quantile_net(qn.features_extractor(x)).view(-1, qn.n_quantiles, qn.action_space.n)
    return quantiles.mean(dim=1)


def actor_critic(policy, x):
    if policy.share_features_extractor:
        pi_f = vf_f = policy.features_extractor(x)
    else:
        pi_f, vf_f = policy.pi_features_extractor(x), policy.vf_features_extractor(x)
    logits = policy.action_net(policy.mlp_extractor.forward_actor(pi_f))
    value = policy.value_net(policy.mlp_extractor.forward_critic(vf_f))
    return logits, value


def on_path(name, target, policy):
    if target == "value":
        extractor = "features_extractor." if policy.share_features_extractor else "vf_features_extractor."
        return name.startswith((extractor, "mlp_extractor.value_net.", "value_net."))
    return name.startswith(("features_extractor.", "mlp_extractor.policy_net.", "action_net."))


def greedy(row):
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def main():
    th.set_num_threads(2)
    for name in sys.argv[1:] or FIXTURES:
        model = load(name)
        vn = vec_normalize(name)
        agent_dir = os.path.join(ROOT, "tests", "fixtures", name)
        ref_dir = os.path.join(agent_dir, "reference")
        os.makedirs(ref_dir, exist_ok=True)
        inputs = python_tool.load(os.path.join(agent_dir, "activation_inputs", "clean_inputs.json"))
        items = list(inputs.items())[:N_REF.get(name, len(inputs))]
        policy32 = model.policy
        policy32.eval()
        policy64 = copy.deepcopy(policy32).double()
        n_actions = int(model.action_space.n)
        qr = name == "qrdqn"
        targets = (["q", "margin", f"action:{n_actions - 1}", "logsoftmax"] if qr
                   else ["logprob", "logit", "margin", f"action:{n_actions - 1}", "value"])
        arrays, heads = {}, {}
        for target in targets:
            use64 = target in ("logsoftmax", "logprob") or (not qr and target.startswith("action:"))
            policy = policy64 if use64 else policy32
            dtype = th.float64 if use64 else th.float32
            module = policy.quantile_net if qr else policy
            named = [(n, p) for n, p in module.named_parameters() if qr or on_path(n, target, policy)]
            heads[target] = [{"name": n, "shape": list(p.shape)} for n, p in named]
            grads, actions, values, ins = [], [], [], {}
            for _, entry in items:
                # The greedy action from the float32 network (the policy's for `value`).
                with th.no_grad():
                    _, x32 = obs_leaf(model, entry["input"], th.float32, vn)
                    out32 = q_outputs(policy32, x32) if qr else actor_critic(policy32, x32)[0]
                a = greedy(out32[0].tolist())
                leaf, x = obs_leaf(model, entry["input"], dtype, vn)
                module.zero_grad()
                if qr:
                    out, value_out = q_outputs(policy, x), None
                else:
                    out, value_out = actor_critic(policy, x)
                if target in ("q", "logit"):
                    t = out[0, a]
                elif target == "margin":
                    b = max((j for j in range(n_actions) if j != a), key=lambda j: (float(out[0, j]), -j))
                    t = out[0, a] - out[0, b]
                elif target.startswith("action:"):
                    n = int(target.split(":")[1])
                    t = out[0, n] if qr else th.log_softmax(out, 1)[0, n]
                elif target in ("logsoftmax", "logprob"):
                    t = th.log_softmax(out, 1)[0, a]
                else:
                    t = value_out[0, 0]
                t.backward()
                grads.append(np.concatenate([
                    (p.grad if p.grad is not None else th.zeros_like(p)).detach().double().numpy().reshape(-1)
                    for _, p in named]).astype(np.float32))
                for key, leaf_k in leaf.items():
                    ins.setdefault(key, []).append(leaf_k.grad.detach().double().numpy().reshape(-1).astype(np.float32))
                actions.append(a)
                values.append(float(t.detach()))
            arrays[f"{target}/grads"] = np.stack(grads)
            arrays[f"{target}/actions"] = np.array(actions, dtype=np.int64)
            arrays[f"{target}/values"] = np.array(values, dtype=np.float64)
            for key, rows in ins.items():
                arrays[f"{target}/input/{key}"] = np.stack(rows)
        np.savez_compressed(os.path.join(ref_dir, "targets.npz"), **arrays)
        with open(os.path.join(ref_dir, "heads.json"), "w") as f:
            json.dump({"inputs": len(items), "targets": heads}, f, indent=2)
        print(f"{name}: {len(items)} inputs, targets {', '.join(targets)} "
              f"({os.path.getsize(os.path.join(ref_dir, 'targets.npz')) // 1024} KB)", flush=True)


if __name__ == "__main__":
    main()
