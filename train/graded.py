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

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pixelrep.batch import collate
from pixelrep.encoder import PixelEncoder, resolve_precision


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
                    scale: float = 20.0, seed: int = 0, precision: str = "auto",
                    show_progress_bar: bool = True) -> PixelEncoder:
    """A copy of `encoder` trained for `steps` batches of `batch_size` graded pairs (CoSENT at `scale`,
    AdamW at a constant `lr`) plus anchor_weight * (1 - cosine) of each sentence's vector to the
    starting model's. Seeded: the same inputs give the same model. Runs on the encoder's device;
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
    model = copy.deepcopy(encoder)
    start = copy.deepcopy(encoder.vit).eval().requires_grad_(False)
    device = next(model.parameters()).device
    use_bf16 = resolve_precision(precision, device) == "bf16"
    first = model.renderer.render_batch(list(sentence1))
    second = model.renderer.render_batch(list(sentence2))
    target = torch.as_tensor(list(scores), dtype=torch.float32, device=device)

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in model.vit.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    order, position = torch.randperm(len(target), generator=generator), 0
    model.vit.train()
    for _ in tqdm(range(steps), desc="graded pairs", unit="step", disable=not show_progress_bar):
        if position + batch_size > len(order):          # a new epoch, newly shuffled
            order, position = torch.randperm(len(target), generator=generator), 0
        rows = order[position:position + batch_size].tolist()
        position += batch_size
        pixels, mask = (t.to(device) for t in collate([first[i] for i in rows] + [second[i] for i in rows]))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            vectors = model.vit(pixels, mask)
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
