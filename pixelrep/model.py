"""The vision transformer that reads a strip of text patches.

A strip of grey pixels [B, ps, P*ps] is cut into P square patches. Each token is `patches_per_token`
adjacent patches (1: one patch, as in PIXEL; 2: a 16x32 piece, about one word piece of text), flattened
and projected to `width`; learned positions are added, pre-norm transformer blocks run with a
key-padding mask (so padding never leaks into real tokens), and the real tokens are mean-pooled.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.config import ModelConfig


def patchify(pixels: torch.Tensor, patch_size: int, patches_per_token: int = 1) -> torch.Tensor:
    """[B, C, ps, P*ps] or [B, ps, P*ps] -> tokens [B, T, C*ps*ps*k], T = ceil(P / k), left to right.

    With k = patches_per_token > 1 the strip is first padded with paper to a multiple of k patches, so
    a sentence's tokens are the same alone and in a batch padded further.
    """
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(1)
    b, c, h, w = pixels.shape
    if h != patch_size or w % patch_size:
        raise ValueError(f"pixels of shape {tuple(pixels.shape)} are not a strip of {patch_size}px patches")
    token_width = patch_size * patches_per_token
    if w % token_width:
        pixels = F.pad(pixels, (0, token_width - w % token_width), value=255)
    t = pixels.shape[-1] // token_width
    return pixels.reshape(b, c, h, t, token_width).permute(0, 3, 1, 2, 4).reshape(b, t, c * h * token_width)


def token_mask(patch_mask: torch.Tensor, patches_per_token: int) -> torch.Tensor:
    """bool [B, P] real patches -> bool [B, T] real tokens (a token is real if any of its patches is)."""
    mask = patch_mask.to(torch.bool)
    if patches_per_token == 1:
        return mask
    mask = F.pad(mask, (0, -mask.shape[1] % patches_per_token), value=False)
    return mask.view(mask.shape[0], -1, patches_per_token).any(-1)


def remove_directions(x: torch.Tensor, mean: torch.Tensor, directions: torch.Tensor | None,
                      whitener: torch.Tensor | None = None) -> torch.Tensor:
    """x [B, d] less `mean` [d], then less its components along the orthonormal rows of `directions` [k, d],
    then times `whitener` [d, d] (symmetric: rescales each remaining principal direction) when given."""
    x = x - mean.to(x.dtype)
    if directions is not None:
        d = directions.to(x.dtype)
        x = x - (x @ d.T) @ d
    return x if whitener is None else x @ whitener.to(x.dtype)


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
    """Patch embedding + positions + transformer blocks + pooling (+ optional projection, + optional removal
    of fitted common directions)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Linear(cfg.in_channels * cfg.patch_size ** 2 * cfg.patches_per_token, cfg.width)
        # With a CLS token, position 0 is its own (as in PIXEL / ViT-MAE) and token i uses position i+1.
        n_pos = cfg.max_tokens + (1 if cfg.cls_token else 0)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, cfg.width))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width)) if cfg.cls_token else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.projection = nn.Linear(cfg.width, cfg.projection_dim) if cfg.projection_dim else None
        # "weighted" pooling scores each token; a sentence is the softmax-weighted mean of its tokens,
        # so the model can learn what SIF weighting does by hand (frequent words count less).
        self.pool_score = nn.Linear(cfg.width, 1) if cfg.pooling == "weighted" else None
        # Not trained: fitted after training on a corpus's vectors (PixelEncoder.remove_common_directions),
        # zeros until then. Buffers, so they are saved with the weights.
        if cfg.removes_common:
            self.register_buffer("common_mean", torch.zeros(cfg.embedding_dim))
        if cfg.common_directions:
            self.register_buffer("common_directions", torch.zeros(cfg.common_directions, cfg.embedding_dim))
        if cfg.common_whitening:
            self.register_buffer("common_whitener", torch.zeros(cfg.embedding_dim, cfg.embedding_dim))
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
        if self.pool_score is not None:   # equal scores: weighted pooling starts as the plain mean
            nn.init.zeros_(self.pool_score.weight)

    def no_weight_decay(self) -> set[str]:
        """Parameters weight decay would only pull towards zero, not regularise (as timm's models say):
        the positions and the CLS token. Biases and norms (1-D) are left out by the optimizer's own rule."""
        return {"pos_embed"} | ({"cls_token"} if self.cls_token is not None else set())

    def token_mask(self, patch_mask: torch.Tensor) -> torch.Tensor:
        """bool [B, P] real patches -> bool [B, T] real tokens, the positions forward_features returns."""
        return token_mask(patch_mask, self.cfg.patches_per_token)

    def forward_features(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """pixels uint8/float strip [B, (C,) ps, P*ps] (255 = paper), patch_mask bool [B, P].

        Returns normalised token features [B, T(+1 with CLS), width] (T = P with one patch per token);
        padded positions are garbage that pooling ignores.
        """
        n_patches = pixels.shape[-1] // self.cfg.patch_size
        if n_patches > self.cfg.max_patches:
            raise ValueError(f"{n_patches} patches exceed the model's max_patches={self.cfg.max_patches}")
        tokens = patchify(pixels, self.cfg.patch_size, self.cfg.patches_per_token)
        # Ink is 1, paper is 0: padding tokens are then exact zeros before the bias.
        x = self.patch_embed(1.0 - tokens.to(self.patch_embed.weight.dtype) / 255.0)
        mask = self.token_mask(patch_mask)
        n = x.shape[1]
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
        """[B, T(+1), width] features -> [B, embedding_dim]: the CLS feature, or the (weighted) mean over
        real tokens."""
        if self.cfg.pooling == "cls":
            pooled = features[:, 0]
        else:
            if self.cls_token is not None:
                features = features[:, 1:]
            m = self.token_mask(patch_mask).unsqueeze(-1)
            if self.pool_score is None:
                weights = m.to(features.dtype) / m.sum(1, keepdim=True).clamp_min(1).to(features.dtype)
            else:
                weights = torch.softmax(self.pool_score(features).float().masked_fill(~m, float("-inf")), dim=1)
                weights = weights.nan_to_num(0.0).to(features.dtype)   # an all-padding row has no weights
            # where() rather than a product: padded rows may hold anything, even NaN.
            pooled = (torch.where(m, features, 0.0) * weights).sum(1)
        out = self.projection(pooled) if self.projection is not None else pooled
        if self.cfg.removes_common:
            out = remove_directions(out, self.common_mean, getattr(self, "common_directions", None),
                                    getattr(self, "common_whitener", None))
        return out

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings [B, embedding_dim] (not normalised)."""
        return self.pool(self.forward_features(pixels, patch_mask), patch_mask)
