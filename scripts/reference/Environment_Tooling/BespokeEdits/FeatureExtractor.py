"""The research project's custom feature extractor, reproduced so that agents saved by
`make_fixtures.py` carry the same class path in their `data` JSON
(`Environment_Tooling.BespokeEdits.FeatureExtractor.CustomCombinedExtractor`)."""
import gymnasium as gym
import torch as th
from torch import nn
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


class CustomCombinedExtractor(BaseFeaturesExtractor):
    """Dict observation {'MLP_input': Box(106,)} -> Linear(106, 64) + ReLU."""

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 64):
        super().__init__(observation_space, features_dim)
        n_in = sum(int(space.shape[0]) for space in observation_space.spaces.values())
        self.mlp = nn.Sequential(nn.Linear(n_in, features_dim), nn.ReLU())

    def forward(self, observations) -> th.Tensor:
        x = th.cat([observations[key] for key in sorted(observations.keys())], dim=1)
        return self.mlp(x)
