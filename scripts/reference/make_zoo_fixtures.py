"""Writes tests/fixtures/zoo/: real RL Zoo (rl_zoo3 2.9) training runs, as `python -m rl_zoo3.train`
leaves them, for the sweep's discovery and run statistics.

- logs/dqn/CartPole-v1_{1,2,3}: DQN, seeds 1, 2, 3, 3,000 steps, a checkpoint every 1,000 steps
  (rl_model_<N>_steps.zip), evaluations every 1,000 steps (best_model.zip, evaluations.npz),
  the final model CartPole-v1.zip, and CartPole-v1/args.yml, config.yml.
- logs/ppo/CartPole-v1_1: PPO with VecNormalize (normalize: True), seed 4: the final model's
  statistics in CartPole-v1/vecnormalize.pkl.
- evaluations.json: each run's evaluations.npz as numpy reads it (timesteps, and the mean,
  min and max of each evaluation's episode returns), the reference of the explorer's reward
  curve. `--evaluations-only` rewrites just this file from the runs already there.
- obs/CartPole-v1.npy: 48 CartPole observations (float32, shape (48, 4)) from a seeded random
  rollout, the inputs these agents are analysed on (`saliency sweep --inputs CartPole-v1=...`).

Small networks (net_arch [32, 32] and [16]) keep the fixture under a megabyte. Run with the
reference environment of README/docs/testing.md plus `pip install rl_zoo3==2.9.2`.
"""
import json
import os
import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np

root = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "zoo")
logs = os.path.join(root, "logs")


def train(algo, seed, steps, hyperparams):
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", "CartPole-v1", "-n", str(steps),
           "--seed", str(seed), "--save-freq", "1000", "--eval-freq", "1000", "--eval-episodes", "3",
           "-f", "logs", "--device", "cpu", "--num-threads", "1", "--hyperparams", *hyperparams]
    print(" ".join(cmd), flush=True)
    # (from the fixture folder, so the files record the relative path `logs`)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=root)


def write_evaluations():
    out = {}
    for dirpath, _, files in sorted(os.walk(logs)):
        if "evaluations.npz" in files:
            d = np.load(os.path.join(dirpath, "evaluations.npz"))
            out[os.path.relpath(dirpath, root)] = {
                "timesteps": [int(t) for t in d["timesteps"]],
                "mean": [float(x) for x in d["results"].mean(axis=1)],
                "min": [float(x) for x in d["results"].min(axis=1)],
                "max": [float(x) for x in d["results"].max(axis=1)],
            }
    with open(os.path.join(root, "evaluations.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    if "--evaluations-only" in sys.argv:
        write_evaluations()
        return
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for seed in (1, 2, 3):
        train("dqn", seed, 3000, ["policy_kwargs:dict(net_arch=[32, 32])", "learning_starts:500",
                                  "exploration_fraction:0.5"])
    train("ppo", 4, 3000, ["normalize:True", "n_envs:2", "n_steps:256", "policy_kwargs:dict(net_arch=[16])"])
    # Monitor files and TensorBoard logs are not what a sweep reads.
    for dirpath, _, files in os.walk(logs):
        for f in files:
            if f.endswith(".monitor.csv") or f.startswith("events.out"):
                os.remove(os.path.join(dirpath, f))
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows = []
    while len(rows) < 48:
        rows.append(obs)
        obs, _, term, trunc, _ = env.step(int(rng.integers(2)))
        if term or trunc:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    os.makedirs(os.path.join(root, "obs"), exist_ok=True)
    np.save(os.path.join(root, "obs", "CartPole-v1.npy"), np.asarray(rows, dtype=np.float32))
    write_evaluations()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            print(f"{os.path.relpath(p, root)}  {os.path.getsize(p)}")


if __name__ == "__main__":
    main()
