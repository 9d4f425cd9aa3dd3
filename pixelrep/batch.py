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


class LengthBucketSampler(torch.utils.data.Sampler):
    """Yields lists of indices whose lengths are close, so padded batches waste little compute.

    shuffle=False: indices sorted by length, cut into batches (deterministic, shortest first).
    shuffle=True: each epoch a seeded permutation is cut into pools of `pool_batches` batches; each
    pool is sorted by length and cut into batches, and the order of all batches is shuffled. Which
    items meet changes per epoch (call set_epoch, as with DistributedSampler) while lengths within a
    batch stay similar. Every index appears exactly once per epoch (minus the short last batch when
    drop_last). Use it as a DataLoader's batch_sampler.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, pool_batches: int = 50):
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size={batch_size} and pool_batches={pool_batches} must be positive")
        self.lengths = np.asarray(lengths)
        if self.lengths.ndim != 1:
            raise ValueError(f"lengths must be a flat sequence of numbers, got shape {self.lengths.shape}")
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.pool_batches = drop_last, pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n, bs = len(self.lengths), self.batch_size
        return n // bs if self.drop_last else -(-n // bs)

    def __iter__(self):
        n, bs = len(self.lengths), self.batch_size
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            order = rng.permutation(n)
            pool = bs * self.pool_batches   # a multiple of bs: only the very last batch can be short
            order = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")]
                                    for p in np.split(order, range(pool, n, pool))]) if n else order
        else:
            order = np.argsort(self.lengths, kind="stable")
        batches = [order[i:i + bs] for i in range(0, n, bs)]
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for b in batches:
            yield b.tolist()
