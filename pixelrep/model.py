"""The vision transformer that reads a strip of text patches.

A strip of grey pixels [B, ps, P*ps] is cut into P square patches, each patch is flattened and
projected to `width`, learned positions are added, pre-norm transformer blocks run with a key-padding
mask (so padding never leaks into real patches), and the real patches are mean-pooled.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.config import ModelConfig


def patchify(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, C, ps, P*ps] or [B, ps, P*ps] -> [B, P, C*ps*ps] (patch order left to right)."""
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(1)
    b, c, h, w = pixels.shape
    if h != patch_size or w % patch_size:
        raise ValueError(f"pixels of shape {tuple(pixels.shape)} are not a strip of {patch_size}px patches")
    p = w // patch_size
    return pixels.reshape(b, c, h, p, patch_size).permute(0, 3, 1, 2, 4).reshape(b, p, c * h * patch_size)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=cfg.qkv_bias)
        self.proj = nn.Linear(cfg.width, cfg.width)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # attn_mask [B, 1, 1, N] bool: True where a key is a real patch.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        hidden = int(cfg.width * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, hidden), nn.GELU(), nn.Linear(hidden, cfg.width))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, attn_mask):
        x = x + self.drop(self.attn(self.norm1(x), attn_mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class PixelViT(nn.Module):
    """Patch embedding + positions + transformer blocks + pooling (+ optional projection)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Linear(cfg.in_channels * cfg.patch_size ** 2, cfg.width)
        # With a CLS token, position 0 is its own (as in PIXEL / ViT-MAE) and patch i uses position i+1.
        n_pos = cfg.max_patches + (1 if cfg.cls_token else 0)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, cfg.width))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width)) if cfg.cls_token else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.projection = nn.Linear(cfg.width, cfg.projection_dim) if cfg.projection_dim else None
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """pixels uint8/float strip [B, (C,) ps, P*ps] (255 = paper), patch_mask bool [B, P].

        Returns normalised patch features [B, P(+1 with CLS), width]; padded positions are garbage
        that pooling ignores.
        """
        patches = patchify(pixels, self.cfg.patch_size)
        # Ink is 1, paper is 0: padding patches are then exact zeros before the bias.
        x = self.patch_embed(1.0 - patches.to(self.patch_embed.weight.dtype) / 255.0)
        n = x.shape[1]
        if n > self.cfg.max_patches:
            raise ValueError(f"{n} patches exceed the model's max_patches={self.cfg.max_patches}")
        mask = patch_mask.to(torch.bool)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
            n += 1
        x = x + self.pos_embed[:, :n]
        attn_mask = mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.norm(x)

    def pool(self, features: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """[B, P(+1), width] features -> [B, embedding_dim]: the CLS feature, or the mean over real patches."""
        if self.cfg.pooling == "cls":
            pooled = features[:, 0]
        else:
            if self.cls_token is not None:
                features = features[:, 1:]
            m = patch_mask.to(torch.bool).unsqueeze(-1)
            # where() rather than a product: padded rows may hold anything, even NaN.
            pooled = torch.where(m, features, 0.0).sum(1) / m.sum(1).clamp_min(1).to(features.dtype)
        return self.projection(pooled) if self.projection is not None else pooled

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings [B, embedding_dim] (not normalised)."""
        return self.pool(self.forward_features(pixels, patch_mask), patch_mask)
