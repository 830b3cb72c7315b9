"""models — the PyTorch reference: μPC / SP predictive coding and the Depth-μP backprop baseline."""

from .pcnet import PCNet
from .training import MODELS, ConfigError, TrainConfig, TrainResult, load_trained, train

__all__ = ["MODELS", "ConfigError", "PCNet", "TrainConfig", "TrainResult", "load_trained", "train"]
