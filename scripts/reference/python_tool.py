#!/usr/bin/env python3
"""The Python SaliencyTooling method, re-implemented from docs/pipeline.md (steps 1-3).

This is the yardstick `saliency` is compared with: reference outputs (`make_fixtures.py`) and
the benchmarks (`scripts/bench.sh`). It does what the original scripts do, the way they do it:
load the agent with Stable-Baselines3, one forward and one backward pass per input with
PyTorch autograd, every gradient kept in Python lists, `json.dump(obj, f, indent=2)`, and the
average step reads the whole gradients file back.

Where docs/pipeline.md defines a rule the original leaves to chance (marked "ours" there: tie order,
k = 0, `<layer>_neuron_<n>` keys, duplicate neurons, sorted zip choice), this follows that page,
so that its files are the ones `saliency` must reproduce byte for byte.

Usage (same flags as the original scripts):
  python_tool.py run --agent_path DIR [--useful_neurons_path F] [--k 2] [--m 4] [--output_dir D]
  python_tool.py gradients --agent_path DIR [--output_dir D]
  python_tool.py average --gradients_path F [--output_dir D]
  python_tool.py extract --cross_metric_path F --average_gradients_path F
                         [--useful_neurons_path F] [--k 2] [--m 4] [--output_dir D]
Never run by CI: it needs torch and stable-baselines3 (see make_fixtures.py).
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def resolve_agent_zip(agent_path):
    if os.path.isfile(agent_path):
        return agent_path
    for name in ("agent.zip", "model.zip", "dqn.zip"):
        candidate = os.path.join(agent_path, name)
        if os.path.isfile(candidate):
            return candidate
    zips = sorted(glob.glob(os.path.join(agent_path, "*.zip")))
    if zips:
        return zips[0]
    raise FileNotFoundError(f"no agent zip in {agent_path}")


def agent_dir(agent_path):
    return os.path.dirname(agent_path) if os.path.isfile(agent_path) else agent_path


def load_model(agent_path, device="cpu"):
    from stable_baselines3 import DQN

    return DQN.load(resolve_agent_zip(agent_path), device=device)


def make_obs(model, values, device):
    """One input as a batch of one, shaped and typed for SB3's QNetwork.forward."""
    import torch as th
    from gymnasium import spaces

    space = model.observation_space
    if isinstance(space, spaces.Dict):
        keys = list(space.spaces.keys())
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        out, offset = {}, 0
        for key in keys:
            sub = space.spaces[key]
            n = int(np.prod(sub.shape))
            out[key] = th.as_tensor(flat[offset:offset + n].reshape((1,) + sub.shape), device=device)
            offset += n
        return out
    if isinstance(space, spaces.Discrete):
        return th.as_tensor(np.asarray(values, dtype=np.int64).reshape(1), device=device)
    arr = np.asarray(values, dtype=np.float32).reshape((1,) + space.shape)
    return th.as_tensor(arr, device=device)


def compute_gradients(model, inputs, device="cpu"):
    """Step 1: per input, the gradient of q[argmax q] w.r.t. every parameter."""
    import torch as th

    q_net = model.q_net
    q_net.eval()
    results = {}
    for input_id, entry in inputs.items():
        obs = make_obs(model, entry["input"], device)
        q_net.zero_grad()
        q = q_net(obs)
        action = int(th.argmax(q, dim=1).item())
        value = q[0, action]
        value.backward()
        results[input_id] = {
            "max_logit_action": action,
            "max_logit_value": float(value.item()),
            "gradients": {
                name: p.grad.detach().cpu().numpy().tolist() for name, p in q_net.named_parameters()
            },
        }
    return results


def average_gradients(gradients):
    """Step 2: mean |gradient| in float64, summed in input order, divided once by N."""
    sums = {}
    n = 0
    for entry in gradients.values():
        n += 1
        for name, grad in entry["gradients"].items():
            mag = np.abs(np.asarray(grad, dtype=np.float64))
            if name in sums:
                if sums[name].shape != mag.shape:
                    raise ValueError(f"shape mismatch for {name}")
                sums[name] += mag
            else:
                sums[name] = mag
    return {
        "metadata": {
            "num_examples": n,
            "description": "Average gradient magnitudes across all input examples",
        },
        "average_gradients": {name: (s / n).tolist() for name, s in sums.items()} if n else {},
    }


def resolve_candidate(key, useful_neurons, averages):
    """(layer, neuron) for a candidate key, or (None, reason)."""
    parts = key.split("_")
    layer = neuron = None
    if len(parts) >= 3 and parts[0] == "exp" and parts[1].isdigit():
        exp = int(parts[1])
        layer = "_".join(parts[2:])
        if useful_neurons is None:
            return None, "needs useful_neurons.json"
        if not 1 <= exp <= len(useful_neurons):
            return None, f"experiment {exp} out of range"
        entry = useful_neurons[exp - 1]
        if layer not in entry:
            return None, f"layer {layer} not in experiment {exp}"
        listed = entry[layer]
        neuron = listed[0] if listed else 0
    elif "_neuron_" in key:
        layer, _, n = key.rpartition("_neuron_")
        if not n.isdigit():
            return None, "bad neuron number"
        neuron = int(n)
    else:
        return None, "unparseable"
    param = f"{layer}.weight"
    if param not in averages:
        return None, f"no parameter {param}"
    weights = averages[param]
    if not isinstance(neuron, int) or not 0 <= neuron < len(weights):
        return None, f"neuron {neuron} out of range"
    return (layer, neuron), None


def rank_desc(values):
    """Indices by magnitude, largest first; NaN first (numpy's sort puts it last, ascending);
    equal values keep index order (stable sort)."""
    return sorted(
        range(len(values)),
        key=lambda j: (not math.isnan(values[j]), 0.0 if math.isnan(values[j]) else -values[j]),
    )


def extract_candidates(cross_metric, averages_doc, useful_neurons, k, m):
    """Step 3."""
    averages = averages_doc["average_gradients"]
    targets, pool = [], []
    neuron_weights, top_k, additional = {}, {}, {}
    seen = set()
    guaranteed = 0
    for key in cross_metric["common_neurons"]:
        resolved, reason = resolve_candidate(key, useful_neurons, averages)
        if resolved is None:
            print(f"warning: skipping candidate {key}: {reason}", file=sys.stderr)
            continue
        if resolved in seen:
            print(f"warning: skipping candidate {key}: duplicate neuron", file=sys.stderr)
            continue
        seen.add(resolved)
        layer, neuron = resolved
        param = f"{layer}.weight"
        row = np.asarray(averages[param][neuron], dtype=np.float64).reshape(-1).tolist()
        neuron_weights[key] = {"layer_name": param, "neuron_index": neuron, "weights": row}
        order = rank_desc(row)
        chosen = order[:k]
        top_k[key] = {"indices": chosen, "values": [row[j] for j in chosen]}
        for rank, j in enumerate(chosen, start=1):
            targets.append({
                "layer_name": param, "neuron_index": neuron, "weight_index": j,
                "gradient_magnitude": row[j], "source": f"top_{rank}_of_{key}",
                "priority": f"guaranteed_k_{rank}",
            })
            guaranteed += 1
        chosen_set = set(chosen)
        for j in range(len(row)):
            if j not in chosen_set:
                pool.append((key, param, neuron, j, row[j]))
    pool_order = rank_desc([entry[4] for entry in pool])
    additional_count = 0
    for idx in pool_order[:m]:
        key, param, neuron, j, value = pool[idx]
        targets.append({
            "layer_name": param, "neuron_index": neuron, "weight_index": j,
            "gradient_magnitude": value, "source": f"additional_from_{key}",
            "priority": "additional_global",
        })
        slot = additional.setdefault(key, {"indices": [], "values": []})
        slot["indices"].append(j)
        slot["values"].append(value)
        additional_count += 1
    mags = [t["gradient_magnitude"] for t in targets]
    targets = [targets[i] for i in rank_desc(mags)]
    return {
        "weight_targets": targets,
        "metadata": {
            "k_per_neuron": k,
            "additional_m": m,
            "num_candidate_neurons": len(neuron_weights),
            "total_weights_selected": len(targets),
            "guaranteed_per_neuron": guaranteed,
            "additional_selected": additional_count,
            "description": f"Top {k} weights per neuron plus top {m} additional weights globally",
        },
        "neuron_weights": neuron_weights,
        "top_k_per_neuron": top_k,
        "additional_weights": additional,
    }


def dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def load(path):
    with open(path) as f:
        return json.load(f)


def cmd_gradients(agent_path, device, output_dir):
    model = load_model(agent_path, device)
    inputs = load(os.path.join(agent_dir(agent_path), "activation_inputs", "clean_inputs.json"))
    if not inputs:
        raise SystemExit("clean_inputs.json is empty")
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "weight_gradients.json")
    dump(compute_gradients(model, inputs, device), path)
    return path


def cmd_average(gradients_path, output_dir):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "average_gradients.json")
    dump(average_gradients(load(gradients_path)), path)
    return path


def cmd_extract(cross_path, average_path, useful_path, k, m, output_dir):
    useful = load(useful_path) if useful_path and os.path.exists(useful_path) else None
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "candidate_weights.json")
    dump(extract_candidates(load(cross_path), load(average_path), useful, k, m), path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    default_useful = "Neuron_Selection/ExperimentTooling/Definitions/useful_neurons.json"
    run = sub.add_parser("run")
    run.add_argument("--agent_path", required=True)
    run.add_argument("--useful_neurons_path", default=default_useful)
    run.add_argument("--k", type=int, default=2)
    run.add_argument("--m", type=int, default=4)
    run.add_argument("--device", default="cpu")
    run.add_argument("--output_dir")
    grads = sub.add_parser("gradients")
    grads.add_argument("--agent_path", required=True)
    grads.add_argument("--device", default="cpu")
    grads.add_argument("--output_dir")
    avg = sub.add_parser("average")
    avg.add_argument("--gradients_path", required=True)
    avg.add_argument("--output_dir")
    ext = sub.add_parser("extract")
    ext.add_argument("--cross_metric_path", required=True)
    ext.add_argument("--average_gradients_path", required=True)
    ext.add_argument("--useful_neurons_path", default=default_useful)
    ext.add_argument("--k", type=int, default=2)
    ext.add_argument("--m", type=int, default=4)
    ext.add_argument("--output_dir")
    args = parser.parse_args(argv)

    if args.command == "run":
        out = args.output_dir or os.path.join(agent_dir(args.agent_path), "gradient_analysis")
        grads_path = cmd_gradients(args.agent_path, args.device, out)
        avg_path = cmd_average(grads_path, out)
        cross = os.path.join(agent_dir(args.agent_path), "patching_results", "cross_metric_summary.json")
        cmd_extract(cross, avg_path, args.useful_neurons_path, args.k, args.m, out)
    elif args.command == "gradients":
        out = args.output_dir or os.path.join(agent_dir(args.agent_path), "gradient_analysis")
        cmd_gradients(args.agent_path, args.device, out)
    elif args.command == "average":
        cmd_average(args.gradients_path, args.output_dir or os.path.dirname(os.path.abspath(args.gradients_path)))
    else:
        out = args.output_dir or os.path.dirname(os.path.abspath(args.average_gradients_path))
        cmd_extract(args.cross_metric_path, args.average_gradients_path, args.useful_neurons_path, args.k, args.m, out)


if __name__ == "__main__":
    main()
