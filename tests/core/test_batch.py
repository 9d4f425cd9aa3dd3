"""collate and the length-bucketing sampler."""
import numpy as np
import pytest
import torch

from pixelrep import LengthBucketSampler, collate
from pixelrep.render import Renderer, RenderConfig


def test_collate_pads_with_paper_and_masks():
    rendered = Renderer(RenderConfig()).render_batch(["a", "a longer text"])
    pixels, mask = collate(rendered)
    n = max(r.num_patches for r in rendered)
    assert pixels.shape == (2, 16, 16 * n) and pixels.dtype == torch.uint8
    assert mask.tolist()[0] == [True] * rendered[0].num_patches + [False] * (n - rendered[0].num_patches)
    assert (pixels[0, :, rendered[0].num_patches * 16:] == 255).all()
    assert collate(rendered, pad_to=40)[1].shape == (2, 40)
    with pytest.raises(ValueError, match="shorter than the longest"):
        collate(rendered, pad_to=1)


def lengths(n=1000, seed=0):
    return np.random.default_rng(seed).integers(1, 65, n)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_index_exactly_once(shuffle, drop_last):
    sampler = LengthBucketSampler(lengths(1003), batch_size=32, shuffle=shuffle, seed=1, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    if drop_last:
        assert all(len(b) == 32 for b in batches) and len(flat) == 992
    else:
        assert sorted(flat) == list(range(1003))


def test_batches_group_similar_lengths():
    lens = lengths()
    spread = lambda batches: np.mean([np.ptp(lens[b]) for b in batches])  # noqa: E731
    bucketed = spread(list(LengthBucketSampler(lens, batch_size=32, seed=0)))
    random = spread(np.array_split(np.random.default_rng(0).permutation(len(lens)), len(lens) // 32))
    assert bucketed < random / 4
    # Unshuffled: sorted, so batches tile the length range without overlap.
    ordered = list(LengthBucketSampler(lens, batch_size=32, shuffle=False))
    assert all(lens[a].max() <= lens[b].min() for a, b in zip(ordered, ordered[1:]))


def test_seed_and_epoch_control_the_shuffle():
    lens = lengths()
    a = LengthBucketSampler(lens, batch_size=16, seed=5)
    assert list(a) == list(LengthBucketSampler(lens, batch_size=16, seed=5))
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(a) != list(LengthBucketSampler(lens, batch_size=16, seed=6))


def test_works_as_a_dataloader_batch_sampler():
    data = [torch.tensor([i]) for i in range(50)]
    loader = torch.utils.data.DataLoader(data, batch_sampler=LengthBucketSampler(range(50), batch_size=8))
    assert sorted(torch.cat(list(loader)).flatten().tolist()) == list(range(50))
