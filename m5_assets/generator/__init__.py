"""Deterministic synthetic generator that writes the Kaggle M5 file set."""

from m5_assets.generator.scales import SCALES, Scale
from m5_assets.generator.writer import generate

__all__ = ["SCALES", "Scale", "generate"]
