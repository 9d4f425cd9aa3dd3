"""Symmetric InfoNCE with hard negatives."""
import math

import pytest
import torch
import torch.nn.functional as F

from pixelrep.train.losses import info_nce


def _reference(a, p, h=None, t=0.05):
    a, p = F.normalize(a, dim=-1), F.normalize(p, dim=-1)
    n = len(a)
    cols = p if h is None else torch.cat([p, F.normalize(h, dim=-1)])
    forward = sum(-torch.log_softmax(a[i] @ cols.T / t, 0)[i] for i in range(n)) / n
    backward = sum(-torch.log_softmax(p[i] @ a.T / t, 0)[i] for i in range(n)) / n
    return (forward + backward) / 2


def test_matches_a_plain_reference():
    g = torch.Generator().manual_seed(0)
    a, p, h = (torch.randn(6, 8, generator=g) for _ in range(3))
    assert torch.allclose(info_nce(a, p, temperature=0.05), _reference(a, p), atol=1e-5)
    assert torch.allclose(info_nce(a, p, h, temperature=0.1), _reference(a, p, h, t=0.1), atol=1e-5)


def test_masked_hard_negatives_are_ignored():
    g = torch.Generator().manual_seed(1)
    a, p, h = (torch.randn(4, 8, generator=g) for _ in range(3))
    mask = torch.tensor([True, False, True, False])
    expected = _reference(a, p, h[mask])
    assert torch.allclose(info_nce(a, p, h, mask), expected, atol=1e-5)
    assert torch.allclose(info_nce(a, p, h, torch.zeros(4, dtype=torch.bool)), _reference(a, p), atol=1e-5)


def test_aligned_pairs_score_low_and_hard_negatives_raise_the_loss():
    a = torch.eye(4, 8)
    assert info_nce(a, a.clone()) < 1e-6
    near = a + 0.1 * torch.roll(a, 1, dims=1)  # a negative close to each anchor
    assert info_nce(a, a.clone(), near) > info_nce(a, a.clone(), -a)
    shuffled = info_nce(a, a[[1, 0, 3, 2]])
    assert shuffled > math.log(4)  # mismatched pairs cost more than chance


def test_gradients_reach_every_input():
    a, p, h = (torch.randn(4, 8, requires_grad=True) for _ in range(3))
    info_nce(a, p, h).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in (a, p, h))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"anchor \(4, 8\) and positive \(3, 8\) differ"):
        info_nce(torch.zeros(4, 8), torch.zeros(3, 8))
