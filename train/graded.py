"""A short fine-tune on graded sentence pairs (STS-style scores), anchored to the model it starts from.

Distillation teaches the student *which* sentences belong together (InfoNCE against teacher vectors);
graded pairs teach it *how much*: CoSENT (Su 2022) asks that a pair scored higher gets a higher cosine,
over every ordered couple of pairs in a batch, which is exactly what Spearman on STS rewards. Alone it
pulls the space towards the one language and genre it sees (a probe on the bundle: English dev 75.1 ->
73.5 and en-X 49.5 -> 40.6 after 300 steps), so every sentence is also held near the starting model's
vector of it (1 - cosine, weighted): the space, its other languages and its teacher alignment stay,
while the ranks inside it move (docs/study.md, section 16).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pixelrep.batch import collate
from pixelrep.encoder import PixelEncoder, resolve_precision
from pixelrep.render import Rendered, perturb_rendered
from pixelrep.train.config import AUGMENT_IMAGE_LEVELS, draw_image_level


def cosent_loss(cosines: torch.Tensor, scores: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT: log(1 + sum over pairs i, j with scores[i] > scores[j] of exp(scale * (cos[j] - cos[i]))).
    cosines, scores: [n]; 0 when no two scores differ."""
    if cosines.shape != scores.shape or cosines.dim() != 1:
        raise ValueError(f"cosines {tuple(cosines.shape)} and scores {tuple(scores.shape)} must be the same 1-D shape")
    c = scale * cosines.float()
    diff = c[None, :] - c[:, None]                        # [i, j] = cos j - cos i
    higher = scores[:, None] > scores[None, :]            # pair i is scored above pair j
    return torch.logsumexp(torch.cat([c.new_zeros(1), diff[higher]]), dim=0)


def finetune_graded(encoder: PixelEncoder, sentence1: Sequence[str], sentence2: Sequence[str],
                    scores: Sequence[float], *, steps: int, lr: float, anchor_weight: float, batch_size: int = 64,
                    scale: float = 20.0, seed: int = 0, precision: str = "auto", augment: Sequence[str] = (),
                    augment_prob: float = 0.5, show_progress_bar: bool = True) -> PixelEncoder:
    """A copy of `encoder` trained for `steps` batches of `batch_size` graded pairs (CoSENT at `scale`,
    AdamW at a constant `lr`) plus anchor_weight * (1 - cosine) of each sentence's vector to the
    starting model's. augment: image kinds (keys of AUGMENT_IMAGE_LEVELS); each sentence of a batch is
    drawn with one of them at a random level with probability augment_prob, and its anchor stays the
    starting model's vector of the clean drawing, so the model learns to read through them without
    leaving its space. Seeded: the same inputs give the same model. Runs on the encoder's device;
    precision as encode's (bf16 autocast where native, the losses in fp32). The input is left as it is."""
    if not len(sentence1) == len(sentence2) == len(scores):
        raise ValueError(f"sentence1, sentence2 and scores differ in length: {len(sentence1)}, {len(sentence2)}, "
                         f"{len(scores)}")
    if len(scores) < batch_size:
        raise ValueError(f"{len(scores)} graded pairs are fewer than one batch ({batch_size}); pass more pairs or a "
                         f"smaller batch_size")
    if steps < 1 or lr <= 0 or anchor_weight < 0:
        raise ValueError(f"steps={steps}, lr={lr}, anchor_weight={anchor_weight}: need steps >= 1, lr > 0 and "
                         f"anchor_weight >= 0")
    unknown = [kind for kind in augment if kind not in AUGMENT_IMAGE_LEVELS]
    if unknown or not 0 <= augment_prob <= 1:
        raise ValueError(f"augment={list(augment)}, augment_prob={augment_prob}: use image kinds of "
                         f"{', '.join(AUGMENT_IMAGE_LEVELS)} and a probability in [0, 1]")
    model = copy.deepcopy(encoder)
    start = copy.deepcopy(encoder.vit).eval().requires_grad_(False)
    device = next(model.parameters()).device
    use_bf16 = resolve_precision(precision, device) == "bf16"
    first = model.renderer.render_batch(list(sentence1))
    second = model.renderer.render_batch(list(sentence2))
    target = torch.as_tensor(list(scores), dtype=torch.float32, device=device)

    generator = torch.Generator().manual_seed(seed)
    views = np.random.default_rng(seed)   # which sentences are augmented, how and how much
    optimizer = torch.optim.AdamW([p for p in model.vit.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    order, position = torch.randperm(len(target), generator=generator), 0
    model.vit.train()
    for _ in tqdm(range(steps), desc="graded pairs", unit="step", disable=not show_progress_bar):
        if position + batch_size > len(order):          # a new epoch, newly shuffled
            order, position = torch.randperm(len(target), generator=generator), 0
        rows = order[position:position + batch_size].tolist()
        position += batch_size
        clean = [first[i] for i in rows] + [second[i] for i in rows]
        drawn = [_augmented(r, augment, views) if augment and views.random() < augment_prob else r for r in clean]
        pixels, mask = (t.to(device) for t in collate(clean))
        seen = collate(drawn)[0].to(device) if augment else pixels   # augmenting keeps each strip's shape
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            vectors = model.vit(seen, mask)
            with torch.no_grad():
                anchors = start(pixels, mask)
        vectors = F.normalize(vectors.float(), dim=-1)
        anchors = F.normalize(anchors.float(), dim=-1)
        a, b = vectors[:batch_size], vectors[batch_size:]
        loss = cosent_loss((a * b).sum(-1), target[rows], scale)
        loss = loss + anchor_weight * (1 - (vectors * anchors).sum(-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.vit.eval()
    return model


def _augmented(rendered: Rendered, kinds: Sequence[str], rng: np.random.Generator) -> Rendered:
    """`rendered` with one of the image `kinds`, at a level drawn from AUGMENT_IMAGE_LEVELS (as training draws it)."""
    kind = kinds[rng.integers(len(kinds))]
    return perturb_rendered(rendered, kind, draw_image_level(kind, rng), rng=rng)


def silver_couples(vectors: torch.Tensor, *, neighbours: int, random_couples: int, seed: int = 0,
                   chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New couples of texts to score by a teacher's cosine ("Augmented SBERT", Thakur et al. 2021): each row
    of the unit `vectors` [n, d] with its `neighbours` nearest other rows and `random_couples` random other
    rows, each couple (i < j) once. Neighbours give the close couples that random sampling almost never
    draws, random ones the far ones, so the couples span the range of similarity. Seeded; returns first,
    second (long [m], sorted by couple) and the couples' cosines [m]."""
    n = len(vectors)
    if neighbours < 0 or random_couples < 0 or neighbours + random_couples == 0 or neighbours >= n:
        raise ValueError(f"neighbours={neighbours}, random_couples={random_couples} for {n} texts: need at least "
                         f"one couple per text and fewer neighbours than texts")
    vectors = vectors.float()
    generator = torch.Generator().manual_seed(seed)
    found = []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        similarity = vectors[rows] @ vectors.T
        similarity[torch.arange(len(rows)), rows] = -float("inf")          # not itself
        others = [similarity.topk(neighbours, dim=1).indices] if neighbours else []
        others.append(torch.randint(0, n, (len(rows), random_couples), generator=generator))
        others = torch.cat(others, dim=1)
        found.append(torch.stack([rows[:, None].expand_as(others), others], dim=-1).reshape(-1, 2))
    couples = torch.cat(found)
    couples = couples[couples[:, 0] != couples[:, 1]].sort(dim=1).values.unique(dim=0)   # sorted, each once
    first, second = couples[:, 0], couples[:, 1]
    return first, second, (vectors[first] * vectors[second]).sum(-1)


def on_scale_of(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """`values` mapped by rank onto the distribution of `reference` (value of rank r -> reference's quantile
    r / (n - 1); equal values share their mean rank): teacher cosines put on the gold scores' scale, so
    that CoSENT compares gold and silver pairs of one batch as the gold annotators would have spread them."""
    values = torch.as_tensor(list(values), dtype=torch.float64)
    if len(values) == 0 or len(reference) == 0:
        raise ValueError(f"on_scale_of needs values and reference, got {len(values)} and {len(reference)}")
    ranks = values.argsort().argsort().double()
    distinct, inverse = values.unique(return_inverse=True)     # equal values share their mean rank
    ranks = torch.zeros(len(distinct), dtype=torch.float64).index_add_(0, inverse, ranks) / inverse.bincount()
    ranks = ranks[inverse] / max(len(values) - 1, 1)
    return torch.quantile(torch.as_tensor(list(reference), dtype=torch.float64), ranks).tolist()
