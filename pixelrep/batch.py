"""Turn rendered strips into a padded batch: pixels plus a patch mask."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pixelrep.render.config import Rendered


def collate(rendered: Sequence[Rendered], pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad strips to the longest in the batch (or `pad_to` patches) with white paper.

    Returns pixels uint8 [B, ps, P*ps] and patch_mask bool [B, P] (True = real patch).
    Keeping uint8 until the model makes host->device copies 4x smaller.
    """
    if not rendered:
        raise ValueError("collate() needs at least one rendered text")
    ps = rendered[0].pixels.shape[0]
    longest = max(r.num_patches for r in rendered)
    n = pad_to if pad_to is not None else longest
    if n < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest text ({longest} patches)")
    pixels = np.full((len(rendered), ps, n * ps), 255, dtype=np.uint8)
    mask = np.zeros((len(rendered), n), dtype=bool)
    for i, r in enumerate(rendered):
        pixels[i, :, : r.num_patches * ps] = r.pixels
        mask[i, : r.num_patches] = True
    return torch.from_numpy(pixels), torch.from_numpy(mask)
