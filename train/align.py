"""Alignment heads: tie the pixel encoder to teachers' embedding spaces (pixelrep.teachers).

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
- word (dense and grounded): with word-aligned rendering each word's cells are known (Rendered.words),
  which is the patch-token grounding CG-VLM had to approximate; the mean of the token features over a
  word's cells is projected and pulled to the first teacher's vector of that word alone (InfoNCE among
  the batch's distinct words), so each sentence gives a dozen targets for the same student compute.

Two halves, so that the model step sees vectors only: `TeacherTargets` turns a batch's texts into
target vectors (the teachers run, or their disk cache or precomputed vectors are read) as the batch
leaves the loader, in the main process; `AlignmentHeads` (inside the model, under DDP) scores the
projected features against those vectors. Strings never enter the model step.

Several teachers (AlignConfig.teacher a tuple) give one sentence projector and term each, named per
teacher (align_sentence_use, align_sentence_minilm); the token and cross terms use the first teacher.

Texts that appear twice in a batch (e.g. the English target of both sides of a pair) are one class,
not a false negative: the contrastive terms score against the distinct texts only.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.aligned import AlignedPixelEncoder, build_projector, load_align_head, save_align_head, teacher_key
from pixelrep.encoder import check_texts
from pixelrep.train import distributed
from pixelrep.train.config import AlignConfig


def _unique(texts: list[str]) -> tuple[list[str], torch.Tensor]:
    """Distinct texts in first-seen order and, per row, the index of its text among them."""
    first: dict[str, int] = {}
    index = [first.setdefault(t, len(first)) for t in texts]
    return list(first), torch.tensor(index)


def _span_mean(x: torch.Tensor, rows: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, T, D] over positions start..end-1 of row `rows`, per span ([M] each -> [M, D])."""
    sums = F.pad(x, (0, 0, 1, 0)).cumsum(1)   # sums[:, t] = x[:, :t].sum(1)
    return (sums[rows, end] - sums[rows, start]) / (end - start).clamp_min(1).unsqueeze(-1).to(x.dtype)


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
    averages gradients over ranks, so the update equals one process computing the global mean. A tensor
    without gradient (teacher targets, keys) is gathered once per Ranks, however many losses ask for it.
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
        self._gathered: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}   # id -> (tensor, gathered)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """[n, ...] here -> [total, ...] from every rank, with gradient to this rank's rows."""
        if self.world == 1:
            return x
        if not x.requires_grad and id(x) in self._gathered:   # the tensor is kept, so its id is not reused
            return self._gathered[id(x)][1]
        most = max(self.sizes)
        padded = torch.cat([x, x.new_zeros(most - x.shape[0], *x.shape[1:])])
        parts = distributed.all_gather_with_grad(padded).split(most)
        gathered = torch.cat([part[:size] for part, size in zip(parts, self.sizes)])
        if not x.requires_grad:
            self._gathered[id(x)] = (x, gathered)
        return gathered

    def mean(self, per_row: torch.Tensor) -> torch.Tensor:
        return per_row.sum() * self.world / self.total


def clip_loss(x: torch.Tensor, targets: torch.Tensor, keys: torch.Tensor, temperature: float,
              ranks: Ranks | None = None, extra: torch.Tensor | None = None,
              extra_keys: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between rows x [n, D] and their targets [n, D], over every rank's rows.

    keys [n] (text_keys of the target texts): rows with equal keys share one target, which is scored once,
    so it is no false negative. Rows -> distinct targets is cross-entropy; targets -> rows counts every row
    of the target as a positive (log of their summed probability). Without repeats this is CLIP's loss.
    extra [Q, D] with extra_keys [Q]: more target vectors, negatives on the rows -> targets side only (a
    queue of earlier batches' teacher vectors: they cost no student compute); one with a row's own key is
    masked for that row.
    """
    ranks = ranks or Ranks(x.shape[0], x.device)
    x_all, keys_all = ranks.gather(x), ranks.gather(keys)
    distinct_keys, labels_all = torch.unique(keys_all, return_inverse=True)
    rows = torch.arange(len(keys_all), device=x.device)
    first = torch.full_like(distinct_keys, len(keys_all)).scatter_reduce(0, labels_all, rows, "amin")
    distinct = ranks.gather(targets)[first]                                           # [U, D]
    labels = labels_all[ranks.offset: ranks.offset + x.shape[0]]
    logits = x @ distinct.T / temperature
    if extra is not None and len(extra):
        own = keys[:, None] == extra_keys[None, :]
        logits = torch.cat([logits, (x @ extra.T / temperature).masked_fill(own, float("-inf"))], dim=1)
    row_loss = ranks.mean(F.cross_entropy(logits, labels, reduction="none"))
    # The target side sees every rank's rows; each rank computes it whole, and the gather's backward sums
    # the ranks' identical gradients, which DDP's averaging undoes.
    col = distinct @ x_all.T / temperature                                              # [U, total]
    positive = labels_all[None, :] == torch.arange(len(distinct), device=x.device)[:, None]
    col_loss = (torch.logsumexp(col, dim=1) - torch.logsumexp(col.masked_fill(~positive, float("-inf")), dim=1)).mean()
    return (row_loss + col_loss) / 2


def structure_loss(x: torch.Tensor, targets: torch.Tensor, temperature: float, ranks: Ranks | None = None) -> torch.Tensor:
    """KL(teacher || student) between each row's softmax over its cosine similarities to the batch's other
    rows (every rank's), self excluded: the graded similarity STS measures, not only which row matches.
    x, targets [n, D] unit vectors (student, teacher)."""
    ranks = ranks or Ranks(x.shape[0], x.device)
    x_all, t_all = ranks.gather(x), ranks.gather(targets)
    me = ranks.offset + torch.arange(x.shape[0], device=x.device)
    is_self = me[:, None] == torch.arange(x_all.shape[0], device=x.device)[None, :]
    student = F.log_softmax((x @ x_all.T / temperature).masked_fill(is_self, float("-inf")), dim=1)
    teacher = F.log_softmax((targets @ t_all.T / temperature).masked_fill(is_self, float("-inf")), dim=1)
    kl = (teacher.exp() * (teacher - student)).masked_fill(is_self, 0.0).sum(1)
    return ranks.mean(kl)


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


class TeacherTargets:
    """What the alignment terms score against, computed from a batch's texts before the model step.

    Built from the config like the trainer does: the teachers by name (load_teacher, with the disk cache
    of align.cache_dir), or their precomputed vectors (align.teacher_vectors: the teachers are never
    loaded). `teachers` may pass the teacher objects instead (tests, tools). Calling it gives a dict of
    tensors on `device`: text_keys and target_keys (int64 [N], text_keys()), "token" ([N, token_dim], the
    mean of each text's unit token vectors, with a token term) and "sentence" (one [N, dim] unit target
    per teacher, with a sentence term).
    """

    def __init__(self, config: AlignConfig, teachers: Sequence | None = None):
        self.config = config
        if teachers is None and config.teacher_vectors:
            from pixelrep.teachers import TeacherVectors
            teachers = [TeacherVectors(config.teacher_vectors, name) for name in config.teachers]
        if teachers is None:
            from pixelrep.teachers import load_teacher
            teachers = [load_teacher(name, max_length=config.max_length or None, cache_dir=config.cache_dir)
                        for name in config.teachers]
        self.teachers = list(teachers) if isinstance(teachers, (list, tuple)) else [teachers]
        if len(self.teachers) != len(config.teachers):
            raise ValueError(f"{len(self.teachers)} teacher objects for the {len(config.teachers)} teachers "
                             f"of AlignConfig.teacher={config.teacher!r}")

    @property
    def dims(self) -> dict:
        """The sizes AlignmentHeads needs: token_dim (the first teacher's; None without token vectors) and
        teacher_dims (each teacher's sentence size)."""
        return dict(token_dim=getattr(self.teachers[0], "token_dim", None),
                    teacher_dims=tuple(t.dim for t in self.teachers))

    def __call__(self, texts: Sequence[str], targets_texts: Sequence[str] | None = None,
                 device: torch.device | str = "cpu", words: dict | None = None) -> dict:
        """Targets of rows showing `texts`; targets_texts: the text whose teacher vector is each row's
        target (default `texts`); for parallel data both sides, [en; x] with targets [en; en]. words: the
        batch's word spans (train.data.word_spans), needed with a word term: adds "word" ([M, dim] unit
        vectors of the words alone), "word_keys" and the spans "word_rows" / "word_start" / "word_end"."""
        texts = check_texts(texts, "texts")
        targets = texts if targets_texts is None else check_texts(targets_texts, "targets_texts")
        if len(targets) != len(texts):
            raise ValueError(f"batch sizes differ: texts {len(texts)}, targets_texts {len(targets)}")
        device = torch.device(device)
        for teacher in self.teachers:
            teacher.to(device)
        cfg = self.config
        out = {"text_keys": text_keys(texts, device), "target_keys": text_keys(targets, device)}
        if cfg.token_weight:
            distinct, labels = _unique(texts)
            tokens, token_mask = self.teachers[0].token_embeddings(distinct)
            # mean_t cos(z_i, e_jt) = z_i . mean_t(e_jt / |e_jt|): one matmul scores every pair.
            token_side = _masked_mean(F.normalize(tokens, dim=-1), token_mask).to(device)
            out["token"] = token_side[labels.to(device)]
        if cfg.sentence_weight:
            distinct, labels = _unique(targets)
            labels = labels.to(device)
            out["sentence"] = tuple(t.sentence_embeddings(distinct).to(device)[labels] for t in self.teachers)
        if cfg.word_weight:
            if words is None:
                raise ValueError("align.word_weight is set but the batch has no word spans: build the loader "
                                 "with word_max=align.word_max")
            out["word_keys"] = text_keys(words["texts"], device)
            dim = self.teachers[0].dim
            if words["texts"]:
                distinct, labels = _unique(words["texts"])
                out["word"] = self.teachers[0].sentence_embeddings(distinct).to(device)[labels.to(device)]
            else:
                out["word"] = torch.zeros(0, dim, device=device)
            for part in ("rows", "start", "end"):
                out[f"word_{part}"] = words[part].to(device)
        return out


def _head_owners(teachers: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Projector name -> (term, teacher key): the first teacher's projectors are "token" and "sentence",
    the others' "sentence_<key>"."""
    keys = [teacher_key(t) for t in teachers]
    return {"token": ("token", keys[0]), "sentence": ("sentence", keys[0]), "word": ("word", keys[0]),
            **{f"sentence_{k}": ("sentence", k) for k in keys[1:]}}


class AlignmentHeads(nn.Module):
    """Projectors from the pixel encoder into teachers' spaces, and their losses against TeacherTargets.

    width: the encoder's patch feature size (ModelConfig.width); pooled_dim: its sentence embedding size
    (ModelConfig.embedding_dim; default width); token_dim and teacher_dims: the teachers' sizes
    (TeacherTargets.dims). Holds no teacher: state_dict() is the projectors only.
    """

    def __init__(self, config: AlignConfig, width: int, pooled_dim: int | None = None, *,
                 teacher_dims: Sequence[int], token_dim: int | None = None):
        super().__init__()
        self.config = config
        if len(teacher_dims) != len(config.teachers):
            raise ValueError(f"{len(teacher_dims)} teacher sizes for the {len(config.teachers)} teachers "
                             f"of AlignConfig.teacher={config.teacher!r}")
        if config.token_weight and token_dim is None:
            raise ValueError(f"align.token_weight={config.token_weight} needs per-token vectors, but the teacher "
                             f"{config.teachers[0]!r} gives sentence vectors only: set align.token_weight=0 "
                             f"(or name a transformers teacher first in align.teacher)")
        pooled_dim = pooled_dim or width
        # Token and sentence spaces differ (input embeddings vs last hidden states): one projector each.
        self.token_proj = build_projector(config.projector, width, token_dim) if config.token_weight else None
        needs_sentence = config.sentence_weight or config.cross_weight
        self.sentence_proj = build_projector(config.projector, pooled_dim, teacher_dims[0]) if needs_sentence else None
        self.word_proj = build_projector(config.projector, width, teacher_dims[0]) if config.word_weight else None
        if config.queue_size:
            # A FIFO of the first teacher's target vectors and their text keys, newest first: in checkpoints
            # (exact resume), not in the exported head. `queue_filled` counts the valid rows.
            self.register_buffer("queue", torch.zeros(config.queue_size, teacher_dims[0]))
            self.register_buffer("queue_keys", torch.zeros(config.queue_size, dtype=torch.int64))
            self.register_buffer("queue_filled", torch.zeros((), dtype=torch.int64))
        # Further teachers: a sentence projector each (empty, and absent from state_dict, with one teacher).
        self.extra_sentence_proj = nn.ModuleDict({
            teacher_key(name): build_projector(config.projector, pooled_dim, dim)
            for name, dim in zip(config.teachers[1:], teacher_dims[1:])} if config.sentence_weight else {})

    def losses(self, patch_features: torch.Tensor, patch_mask: torch.Tensor, pooled: torch.Tensor,
               targets: dict, patches_per_token: int = 1) -> dict[str, torch.Tensor]:
        """Weighted loss terms {"align_token", "align_sentence", "align_cross", "align_word"} (those whose weight is not 0;
        cross is 0 when no rows share a target); with several teachers "align_sentence_<teacher_key>" for
        each instead of "align_sentence". Sum them into the stage loss. Under torchrun every rank
        must call this each step (the contrastive terms gather all ranks' rows as negatives).

        patch_features [B, T, W] from PixelViT.forward_features (a leading CLS position is skipped),
        patch_mask bool [B, T] from PixelViT.token_mask (the patch mask itself with one patch per token),
        pooled [B, pooled_dim] from PixelViT.pool, targets: TeacherTargets of the rows' texts;
        patches_per_token: the model's (word cells are counted in patches, features in tokens).
        """
        b = patch_features.shape[0]
        rows = targets["target_keys"].shape[0]
        if patch_mask.shape[0] != b or pooled.shape[0] != b or rows != b:
            raise ValueError(f"batch sizes differ: patch_features {b}, patch_mask {patch_mask.shape[0]}, "
                             f"pooled {pooled.shape[0]}, targets {rows}")
        if patch_features.shape[1] == patch_mask.shape[1] + 1:   # CLS pooling: align the patches only
            patch_features = patch_features[:, 1:]
        if patch_features.shape[1] != patch_mask.shape[1]:
            raise ValueError(f"patch_features has {patch_features.shape[1]} positions but patch_mask "
                             f"{patch_mask.shape[1]}; pass forward_features' output and PixelViT.token_mask(patch_mask)")
        with torch.autocast(patch_features.device.type, enabled=False):   # logits scaled by 1/temperature need fp32
            return self._losses(patch_features.float(), patch_mask, pooled.float(), targets, patches_per_token)

    def _losses(self, patch_features, patch_mask, pooled, targets, patches_per_token) -> dict[str, torch.Tensor]:
        cfg = self.config
        ranks = Ranks(patch_features.shape[0], patch_features.device)
        out: dict[str, torch.Tensor] = {}

        if self.word_proj is not None:
            # Each word's tokens: its cells, counted in patches, as the token positions that hold them.
            start = targets["word_start"] // patches_per_token
            end = -(-targets["word_end"] // patches_per_token)
            z = F.normalize(self.word_proj(_span_mean(patch_features, targets["word_rows"], start, end)), dim=-1)
            word_ranks = Ranks(z.shape[0], z.device)   # every rank calls it: their word counts differ
            out["align_word"] = (cfg.word_weight * clip_loss(z, targets["word"], targets["word_keys"], cfg.temperature,
                                                             word_ranks)
                                 if word_ranks.total else patch_features.sum() * 0.0)

        if self.token_proj is not None:
            # CG-VLM: project each patch, then average the real patches into one vector per text.
            z = F.normalize(_masked_mean(self.token_proj(patch_features), patch_mask), dim=-1)
            out["align_token"] = cfg.token_weight * clip_loss(z, targets["token"], targets["text_keys"],
                                                              cfg.temperature, ranks)

        if self.sentence_proj is not None:
            keys = targets["target_keys"]
            if cfg.sentence_weight:
                projectors = [self.sentence_proj, *self.extra_sentence_proj.values()]
                weights = cfg.teacher_weights or (1.0,) * len(projectors)
                several = len(projectors) > 1
                for i, (name, target, proj, w) in enumerate(zip(cfg.teachers, targets["sentence"], projectors, weights)):
                    term = f"align_sentence_{teacher_key(name)}" if several else "align_sentence"
                    p = proj(pooled)
                    out[term] = cfg.sentence_weight * w * self._sentence_loss(p, target, keys, ranks, first=i == 0)
                    if i == 0 and cfg.regression_weight:
                        out["align_regression"] = cfg.regression_weight * ranks.mean(
                            1.0 - F.cosine_similarity(p, target, dim=-1))
                    if i == 0 and cfg.structure_weight:
                        out["align_structure"] = cfg.structure_weight * structure_loss(
                            F.normalize(p, dim=-1), target, cfg.temperature, ranks)
                if cfg.queue_size:
                    self._enqueue(ranks.gather(targets["sentence"][0]), ranks.gather(keys))
            if cfg.cross_weight:
                p = F.normalize(self.sentence_proj(pooled), dim=-1)
                out["align_cross"] = cfg.cross_weight * group_infonce(p, keys, cfg.temperature, ranks)
        return out

    def _sentence_loss(self, p: torch.Tensor, teacher: torch.Tensor, keys: torch.Tensor, ranks: Ranks,
                       first: bool = False) -> torch.Tensor:
        cfg = self.config
        if cfg.sentence_loss == "cosine":
            return ranks.mean(1.0 - F.cosine_similarity(p, teacher, dim=-1))
        if cfg.sentence_loss == "mse":
            return ranks.mean((p - teacher).pow(2).mean(-1))
        extra = extra_keys = None
        if first and cfg.queue_size:
            n = int(self.queue_filled)
            # Copies: the queue is updated in place after this step's loss, before its backward.
            extra, extra_keys = self.queue[:n].clone(), self.queue_keys[:n].clone()
        return clip_loss(F.normalize(p, dim=-1), teacher, keys, cfg.temperature, ranks, extra, extra_keys)

    @torch.no_grad()
    def _enqueue(self, vectors: torch.Tensor, keys: torch.Tensor) -> None:
        """Put this step's target vectors (every rank's) at the front of the queue, dropping the oldest."""
        vectors, keys = vectors[: self.config.queue_size], keys[: self.config.queue_size]
        k = len(keys)
        self.queue.copy_(torch.cat([vectors.to(self.queue.dtype), self.queue[:-k]]))
        self.queue_keys.copy_(torch.cat([keys, self.queue_keys[:-k]]))
        self.queue_filled.fill_(min(int(self.queue_filled) + k, self.config.queue_size))

    def aligned_encoder(self, encoder: nn.Module) -> AlignedPixelEncoder:
        """The pixel side of the first teacher's aligned space (encoder + sentence projector); the teacher's
        own encode() is the text side."""
        if self.sentence_proj is None:
            raise ValueError("the aligned space needs the sentence projector: set sentence_weight or cross_weight > 0")
        return AlignedPixelEncoder(encoder, self.sentence_proj, teacher=self.config.teachers[0])

    def _projectors(self) -> dict[str, nn.Module]:
        named = [("token", self.token_proj), ("sentence", self.sentence_proj), ("word", self.word_proj),
                 *((f"sentence_{key}", m) for key, m in self.extra_sentence_proj.items())]
        return {name: m for name, m in named if m is not None}

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write align_head.safetensors + align_head.json into the model folder (next to the encoder)."""
        save_align_head(folder, self._projectors(), projector=self.config.projector, teachers=self.config.teachers)

    def load_pretrained(self, folder: str | os.PathLike) -> list[str]:
        """Load the projectors saved by save_pretrained (e.g. to carry them into the next stage); returns the
        names loaded. Projectors are matched by teacher, so a stage may add, drop or reorder teachers; a
        projector this config has but the folder lacks (a term or teacher switched on now) stays fresh."""
        saved, config = load_align_head(folder)
        if config["projector"] != self.config.projector:
            raise ValueError(f"{folder} holds {config['projector']!r} projectors; this config wants "
                             f"{self.config.projector!r} (set align.projector to match, or start the heads fresh)")
        saved_owners = _head_owners(config["teachers"])
        source = {owner: name for name, owner in saved_owners.items() if name in saved}
        owners = _head_owners(self.config.teachers)
        loaded = []
        for name, module in self._projectors().items():
            if owners[name] in source:
                module.load_state_dict(saved[source[owners[name]]].state_dict())
                loaded.append(name)
        return loaded
