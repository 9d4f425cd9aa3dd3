"""PixelEncoder: the public model (render + ViT + pooling) with a sentence-transformers-like API."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.batch import collate
from pixelrep.config import ModelConfig
from pixelrep.model import PixelViT
from pixelrep.render import Renderer, RenderConfig


class PixelEncoder(nn.Module):
    """Encodes sentences by rendering them and reading the pixels with a ViT."""

    def __init__(self, model_config: ModelConfig | None = None, render_config: RenderConfig | None = None):
        super().__init__()
        self.render_config = render_config or RenderConfig()
        self.model_config = model_config or ModelConfig(max_patches=self.render_config.max_patches,
                                                        patch_size=self.render_config.patch_size)
        self.vit = PixelViT(self.model_config)
        self.renderer = Renderer(self.render_config)

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        return self.vit(pixels, patch_mask)

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 64, device=None, normalize: bool = True,
               convert_to_tensor: bool = False, show_progress_bar=None):
        # Minimal version; being completed (sorting, devices, progress, bf16).
        self.eval()
        out = []
        for i in range(0, len(sentences), batch_size):
            pixels, mask = collate(self.renderer.render_batch(sentences[i:i + batch_size]))
            emb = self.vit(pixels, mask)
            out.append(F.normalize(emb, dim=-1) if normalize else emb)
        emb = torch.cat(out) if out else torch.zeros(0, self.model_config.embedding_dim)
        return emb if convert_to_tensor else emb.numpy()
