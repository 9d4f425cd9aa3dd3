"""Contrastive loss: symmetric InfoNCE with in-batch, cross-rank and hard negatives."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pixelrep.train import distributed


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor | None = None,
             negative_mask: torch.Tensor | None = None, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE over this rank's rows against every rank's columns.

    anchor, positive: [n, d] embeddings of this rank's pairs (row i of each is a positive pair).
    negative: [n, d] hard negatives (row i belongs to anchor i but, like every column, counts against
    all anchors); negative_mask [n] bool marks rows that have one (the others are ignored).

    anchor -> {all positives, all hard negatives} and positive -> {all anchors} are cross-entropies
    with the matching column as target; the loss is their mean. Columns are gathered from all ranks
    with gradient, so a DDP run with the global batch split over ranks computes the same loss (and,
    after DDP averages gradients, the same update) as one process with the whole batch.
    """
    if anchor.shape != positive.shape:
        raise ValueError(f"anchor {tuple(anchor.shape)} and positive {tuple(positive.shape)} differ in shape")
    # Cosine similarity in fp32: logits of 1/temperature = 20 lose too much precision in bf16.
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    all_a = distributed.all_gather_with_grad(a)
    all_p = distributed.all_gather_with_grad(p)
    n = a.shape[0]
    target = torch.arange(n, device=a.device) + distributed.rank() * n

    logits_a = a @ all_p.T
    if negative is not None:
        if negative_mask is None:
            negative_mask = torch.ones(n, dtype=torch.bool, device=a.device)
        h = F.normalize(negative.float(), dim=-1)
        all_h = distributed.all_gather_with_grad(h)
        all_mask = distributed.all_gather_with_grad(negative_mask.float()) > 0.5
        logits_h = (a @ all_h.T).masked_fill(~all_mask, float("-inf"))
        logits_a = torch.cat([logits_a, logits_h], dim=1)
    loss_a = F.cross_entropy(logits_a / temperature, target)
    loss_p = F.cross_entropy((p @ all_a.T) / temperature, target)
    return (loss_a + loss_p) / 2
