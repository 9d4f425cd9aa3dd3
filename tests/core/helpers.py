"""Tiny encoders built in-process for the core tests."""
import torch

from pixelrep import ModelConfig, PixelEncoder, RenderConfig

SENTENCES = ["A man is playing a guitar.", "Hi", "", "Ein Mann spielt Gitarre auf der Bühne.",
             "A woman slices an onion in the kitchen while the radio plays.", "ok"]
LONG = "This sentence is very much longer than the others so that its batch pads the short ones a lot. " * 2


def tiny_encoder(seed: int = 0, **overrides) -> PixelEncoder:
    torch.manual_seed(seed)
    render = RenderConfig(max_patches=64)
    return PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, **overrides), render)
