"""Training data: load a table, build text pairs per stage, plan length-bucketed batches, render in workers.

load_table   hub id or local jsonl/json/csv/tsv/parquet (.gz too) -> datasets.Dataset
build_pairs  table + DataConfig -> Pairs (anchor, positive, optional hard negative per row)
BatchPlan    global batches per epoch: shuffled, similar lengths together, identical on every rank
RenderedBatches / make_loader   a DataLoader whose workers perturb, render and collate this rank's
             share of each batch; it starts at any (epoch, step), which is how a run resumes.
"""
from __future__ import annotations

import csv
import gzip
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pixelrep.batch import LengthBucketSampler, collate
from pixelrep.render import Rendered, Renderer, RenderConfig
from pixelrep.render.renderer import clean_text
from pixelrep.render.perturb import add_typos, shuffle_words
from pixelrep.render.visual import TEXT_PERTURBATIONS, perturb_rendered, perturb_text
from pixelrep.train.config import PAIR_COLUMNS, DataConfig, draw_image_level

# File suffix (after an optional .gz) -> datasets builder and its reader options.
# TSV fields are taken verbatim: quotes inside text are characters, not CSV quoting.
LOCAL_FORMATS = {
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE}),
    ".parquet": ("parquet", {}),
}
PREFETCH = 4  # batches each loader worker renders ahead
# Integer NLI labels follow SNLI / MultiNLI on the hub (e.g. sentence-transformers/all-nli pair-class).
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


# --------------------------------------------------------------------------- loading

def _local_format(source: str) -> tuple[str, dict] | None:
    name = source.lower().removesuffix(".gz")
    for suffix, fmt in LOCAL_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def load_table(source: str, subset: str | None = None, split: str = "train"):
    """A datasets.Dataset from a local file (by suffix, .gz allowed) or a hub dataset id.

    `split` takes datasets' slicing syntax, e.g. "train[:5000]" for the first 5,000 rows.
    """
    import datasets

    fmt = _local_format(source)
    if fmt is None:
        if Path(source).exists():
            raise ValueError(f"{source}: unsupported file type; use one of "
                             f"{', '.join(LOCAL_FORMATS)} (optionally .gz)")
        return datasets.load_dataset(source, subset, split=split)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    builder, options = fmt
    if builder == "parquet" and path.name.lower().endswith(".gz"):
        # Parquet readers need a seekable, uncompressed file.
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / path.name[:-3]
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return datasets.load_dataset(builder, data_files=str(plain), split=split, keep_in_memory=True)
    # split "train" is what datasets names the single split of local files.
    return datasets.load_dataset(builder, data_files=str(path), split=split, **options)


# --------------------------------------------------------------------------- pairs

@dataclass
class Pairs:
    """Text pairs of one stage. negatives: None for stages without hard negatives, else one per row
    (None where a row has none). `same_meaning`: the positive is a rendition of the anchor (a perturbed
    view, a translation), so the anchor is the positive's alignment target too."""

    anchors: list[str]
    positives: list[str]
    negatives: list[str | None] | None = None
    same_meaning: bool = False

    def __len__(self) -> int:
        return len(self.anchors)

    def lengths(self) -> np.ndarray:
        """Characters of the longest text of each row: a cheap proxy for patches, for bucketing."""
        negatives = self.negatives or [None] * len(self)
        return np.array([max(len(a), len(p), len(n or "")) for a, p, n in zip(self.anchors, self.positives, negatives)])

    def target_texts(self, rows) -> list[str]:
        """The alignment target of each text a batch of `rows` shows, in the batch's order: anchors, then
        positives, then the hard negatives of the rows that have one. A rendition of the anchor (a view,
        a translation: same_meaning) is pulled to the anchor's teacher vector; anything else to its own."""
        anchors = [self.anchors[i] for i in rows]
        positives = anchors if self.same_meaning else [self.positives[i] for i in rows]
        negatives = [self.negatives[i] for i in rows] if self.negatives is not None else []
        return anchors + positives + [n for n in negatives if n is not None]


def _columns(table, data: DataConfig, source: str) -> dict[str, list]:
    """The canonical fields of `data.pairs` as Python lists, with errors naming missing columns."""
    names = list(table.column_names)
    out = {}
    for field in PAIR_COLUMNS[data.pairs]:
        column = data.column(field)
        if column is None:   # multilingual target: the table's other column
            others = [c for c in names if c != data.column("source")]
            if len(others) != 1:
                raise ValueError(f"{source}: cannot tell the target column among {names}; "
                                 f"set data.columns.target")
            column = others[0]
        if column not in names:
            raise ValueError(f"{source}: no column {column!r} for {data.pairs} field {field!r} "
                             f"(columns: {', '.join(names)}); map it with --set data.columns.{field}=NAME")
        out[field] = table.select_columns([column])[:][column]
    return out


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def build_pairs(table, data: DataConfig, source: str = "data") -> Pairs:
    """Pairs for one stage from a loaded table (see DataConfig.pairs):

    visual        each distinct sentence with itself; the positive is perturbed at render time
    topical       title <-> each paragraph, and consecutive paragraphs, of one document
    reasoning     NLI premise <-> entailed hypothesis; a contradiction of the premise as hard negative
    multilingual  a sentence <-> its translation
    Empty texts and pairs of identical texts are dropped; repeated pairs are kept once.
    """
    cols = _columns(table, data, source)
    if data.pairs == "visual":
        texts = list(dict.fromkeys(t for t in map(_text, cols["text"]) if t))
        pairs = Pairs(texts, list(texts), same_meaning=True)
    elif data.pairs == "topical":
        seen = {}
        for title, paragraphs in zip(cols["title"], cols["paragraphs"]):
            paragraphs = [paragraphs] if isinstance(paragraphs, str) else list(paragraphs or [])
            paragraphs = [p for p in map(_text, paragraphs) if p]
            title = _text(title)
            candidates = [(title, p) for p in paragraphs] if title else []
            candidates += list(zip(paragraphs, paragraphs[1:]))
            for a, p in candidates:
                if a != p:
                    seen.setdefault((a, p), None)
        pairs = Pairs([a for a, _ in seen], [p for _, p in seen])
    elif data.pairs == "reasoning":
        by_premise: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for premise, hypothesis, label in zip(cols["premise"], cols["hypothesis"], cols["label"]):
            premise, hypothesis = _text(premise), _text(hypothesis)
            if premise and hypothesis and premise != hypothesis:
                by_premise[premise][_nli_label(label)].append(hypothesis)
        anchors, positives, negatives = [], [], []
        for premise, groups in by_premise.items():
            entailed = list(dict.fromkeys(groups["entailment"]))
            contradictions = list(dict.fromkeys(groups["contradiction"]))
            for i, hypothesis in enumerate(entailed):
                anchors.append(premise)
                positives.append(hypothesis)
                negatives.append(contradictions[i % len(contradictions)] if contradictions else None)
        pairs = Pairs(anchors, positives, negatives)
    else:  # multilingual
        seen = {}
        for a, p in zip(map(_text, cols["source"]), map(_text, cols["target"])):
            if a and p and a != p:
                seen.setdefault((a, p), None)
        pairs = Pairs([a for a, _ in seen], [p for _, p in seen], same_meaning=True)
    if not len(pairs):
        raise ValueError(f"{source}: no {data.pairs} pairs could be built (check the columns and labels)")
    return pairs


def pair_rows(pairs: Pairs, kind: str, rows) -> list[dict]:
    """Table rows that build_pairs(kind) reads back as these pairs (`rows` of them), in columns named as the
    fields: read them with DataConfig(pairs=kind, columns=field_columns(kind)). A shard of a source is
    written this way (make device-pack)."""
    out = []
    for i in rows:
        a, p = pairs.anchors[i], pairs.positives[i]
        if kind == "visual":
            out.append({"text": a})
        elif kind == "multilingual":
            out.append({"source": a, "target": p})
        elif kind == "topical":
            out.append({"title": a, "paragraphs": [p]})
        else:
            out.append({"premise": a, "hypothesis": p, "label": "entailment"})
            if pairs.negatives is not None and pairs.negatives[i] is not None:
                out.append({"premise": a, "hypothesis": pairs.negatives[i], "label": "contradiction"})
    return out


def field_columns(kind: str) -> dict[str, str]:
    """data.columns for tables whose columns are named as the fields of `kind` (what pair_rows writes)."""
    return {name: name for name in PAIR_COLUMNS[kind]}


def _nli_label(label) -> str:
    if label is None:
        return ""
    if isinstance(label, str):
        return label.strip().lower()
    return NLI_LABELS.get(int(label), str(label))


def load_pairs(data: DataConfig) -> Pairs:
    """Pairs from every source of a DataConfig, pooled in order."""
    parts = [build_pairs(load_table(s, data.subset, data.split), data, s) for s in data.sources]
    if len(parts) == 1:
        return parts[0]
    negatives = None
    if any(p.negatives is not None for p in parts):
        negatives = list(chain.from_iterable(p.negatives or [None] * len(p) for p in parts))
    return Pairs(list(chain.from_iterable(p.anchors for p in parts)), list(chain.from_iterable(p.positives for p in parts)),
                 negatives, same_meaning=parts[0].same_meaning)


# --------------------------------------------------------------------------- batches

class BatchPlan:
    """Global batches of every epoch, the same on every rank (seeded by seed and epoch).

    pixelrep.batch.LengthBucketSampler does the bucketing: rows are shuffled, each pool of
    `bucket_batches` batches is sorted by length and cut into batches, and the batches are shuffled,
    so a batch holds similar lengths (little padding) while an epoch's order stays random. The short
    last batch is left out (different rows each epoch).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, bucket_batches: int = 64):
        self.sampler = LengthBucketSampler(lengths, batch_size, shuffle=True, seed=seed, drop_last=True,
                                           pool_batches=bucket_batches)
        if len(self) == 0:
            raise ValueError(f"{len(lengths)} pairs do not fill one batch of {batch_size}; "
                             f"lower optim.batch_size or add data")

    def __len__(self) -> int:
        """Steps (global batches) per epoch."""
        return len(self.sampler)

    def epoch(self, epoch: int) -> np.ndarray:
        """[steps, batch_size] row indices of one epoch."""
        self.sampler.set_epoch(epoch)
        return np.array(list(self.sampler))


def micro_batches(batch: np.ndarray, rank: int, world_size: int, grad_accum: int) -> list[np.ndarray]:
    """This rank's rows of a global batch, one array per accumulation micro-step.

    Micro-step k is a contrastive problem over world_size ranks: rows [k*M, (k+1)*M) of the batch,
    of which rank r holds the r-th of world_size equal slices.
    """
    m = len(batch) // grad_accum
    if m % world_size:
        raise ValueError(f"batch of {len(batch)} pairs with grad_accum={grad_accum} cannot be split over "
                         f"{world_size} ranks; make optim.batch_size divisible by grad_accum * world size")
    n = m // world_size
    return [batch[k * m + rank * n: k * m + (rank + 1) * n] for k in range(grad_accum)]


class PlanSampler(Sampler):
    """Yields (epoch, step, rows) for this rank from (start_epoch, start_step) on, forever."""

    def __init__(self, plan: BatchPlan, rank: int, world_size: int, grad_accum: int,
                 start_epoch: int = 0, start_step: int = 0):
        self.plan, self.rank, self.world_size, self.grad_accum = plan, rank, world_size, grad_accum
        self.start = (start_epoch, start_step)

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        epoch, step = self.start
        while True:
            batches = self.plan.epoch(epoch)
            for s in range(step, len(batches)):
                for rows in micro_batches(batches[s], self.rank, self.world_size, self.grad_accum):
                    yield epoch, s, rows
            epoch, step = epoch + 1, 0


class RenderedBatches(Dataset):
    """Turns (epoch, step, rows) into a rendered batch; runs in DataLoader workers.

    The batch holds pixels uint8 [N, ps, P*ps] and mask bool [N, P] with N = anchors, then positives,
    then the hard negatives of the rows that have one (`negative_rows` says which); `texts` (what was
    rendered) and `targets` (each text's alignment target) when `keep_texts`; with `word_max` also `words`
    (word_spans: up to word_max words per row, their cells and clean texts). Perturbations are seeded
    by (seed, epoch, row), so a batch is the same whichever worker renders it, and after a resume.
    """

    def __init__(self, pairs: Pairs, data: DataConfig, render_config: RenderConfig, seed: int,
                 pad_multiple: int = 1, keep_texts: bool = False, word_max: int = 0):
        if word_max and not render_config.word_align:
            raise ValueError("the word term (align.word_weight) needs word-aligned rendering to know each word's "
                             "cells: set render.word_align (e.g. 3), or align.word_weight=0")
        self.pairs, self.data, self.render_config = pairs, data, render_config
        self.seed, self.pad_multiple, self.keep_texts, self.word_max = seed, pad_multiple, keep_texts, word_max
        self._renderer = None  # built in each worker on first use

    def __len__(self) -> int:
        return len(self.pairs)

    def _perturb(self, text: str, epoch: int, row: int) -> tuple[str, tuple | None]:
        """The positive's text as it is drawn, and the image augmentation to apply to its pixels
        ((kind, level, rng) or None)."""
        d = self.data
        if not (d.typo_rate or d.shuffle_prob or d.augment_prob):
            return text, None
        rng = np.random.default_rng([self.seed, epoch, row])
        if d.shuffle_prob and rng.random() < d.shuffle_prob:
            text = shuffle_words(text, mode=d.shuffle_mode, rng=rng)
        if d.typo_rate:
            text = add_typos(text, rate=d.typo_rate, rng=rng)
        if d.augment_prob and rng.random() < d.augment_prob:   # drawn last: without augment, views are as before
            kind = d.augment[rng.integers(len(d.augment))]
            if kind in TEXT_PERTURBATIONS:
                return perturb_text(text, kind, rate=rng.uniform(0, d.augment_max_rate), rng=rng), None
            return text, (kind, draw_image_level(kind, rng), rng)
        return text, None

    def _shifted(self, rendered: Rendered, epoch: int, side: tuple[int, int]) -> Rendered:
        """The drawing moved by up to data.shift_max pixels with probability data.shift_prob, seeded by
        (seed, epoch, side, row) so that a batch is the same whichever worker draws it."""
        rng = np.random.default_rng([self.seed, epoch, *side])
        if rng.random() >= self.data.shift_prob:
            return rendered
        return perturb_rendered(rendered, "shift", rng.uniform(0, self.data.shift_max), rng=rng,
                                eos_patch=self.render_config.eos_patch)

    def __getitem__(self, key: tuple[int, int, np.ndarray]) -> dict:
        epoch, step, rows = key
        if self._renderer is None:
            self._renderer = Renderer(self.render_config)
        p = self.pairs
        anchors = [p.anchors[i] for i in rows]
        positives, images = zip(*(self._perturb(p.positives[i], epoch, int(i)) for i in rows))
        negative_rows = [k for k, i in enumerate(rows) if p.negatives is not None and p.negatives[i] is not None]
        negatives = [p.negatives[rows[k]] for k in negative_rows]
        texts = anchors + list(positives) + negatives
        rendered = self._renderer.render_batch(texts)
        # Each drawing's (side, row): anchor 0, positive 1, negative 2; with the epoch, its seed.
        sides = [(0, int(i)) for i in rows] + [(1, int(i)) for i in rows] + [(2, int(rows[k])) for k in negative_rows]
        for k, image in enumerate(images):
            if image is not None:
                kind, level, rng = image
                rendered[len(rows) + k] = perturb_rendered(rendered[len(rows) + k], kind, level, rng=rng,
                                                           eos_patch=self.render_config.eos_patch)
        if self.data.shift_prob:
            rendered = [self._shifted(r, epoch, side) for r, side in zip(rendered, sides)]
        # Rounded up to a multiple of pad_multiple (fewer shapes to compile), at most the canvas.
        longest = max(r.num_patches for r in rendered)
        pixels, mask = collate(rendered, pad_to=min(-(-longest // self.pad_multiple) * self.pad_multiple,
                                                     self.render_config.max_patches))
        batch = dict(pixels=pixels, mask=mask, n=len(rows), epoch=epoch, step=step,
                     negative_rows=torch.tensor(negative_rows, dtype=torch.long) if p.negatives is not None else None)
        if self.keep_texts:
            batch["texts"] = texts
            batch["targets"] = p.target_texts(rows)
        if self.word_max:
            clean = anchors + [p.positives[i] for i in rows] + negatives
            batch["words"] = word_spans(rendered, texts, clean, self.word_max,
                                        [(self.seed, epoch, *side) for side in sides])
        return batch


def word_spans(rendered: list, texts: list[str], clean: list[str], word_max: int, seeds: list) -> dict:
    """The word term's rows: for each rendered text, up to word_max of its words (a choice seeded by that
    row's seed, a numpy SeedSequence entropy, when it has more), as {"rows", "start", "end"} (int64 [M]; cells in patches, end exclusive) and
    "texts" (M words). A word's target is the word of the clean text it was drawn from: the rendered
    word itself, or the clean word at its place when a perturbation kept the word count (typos, case,
    leetspeak); rows whose perturbation moved word boundaries (split or merged words) give none."""
    rows, start, end, words = [], [], [], []
    for k, (r, text, source, seed) in enumerate(zip(rendered, texts, clean, seeds)):
        pieces = r.words
        if text == source:
            targets = [w for w, _, _ in pieces]
        else:
            source_words = [w for w in clean_text(source).split(" ") if w]
            if r.truncated or len(source_words) != len(pieces):
                continue
            targets = source_words
        chosen = range(len(pieces))
        if len(pieces) > word_max:
            rng = np.random.default_rng(seed)
            chosen = sorted(rng.choice(len(pieces), size=word_max, replace=False).tolist())
        for j in chosen:
            rows.append(k)
            start.append(pieces[j][1])
            end.append(pieces[j][2])
            words.append(targets[j])
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)
    return dict(rows=as_long(rows), start=as_long(start), end=as_long(end), texts=words)


def _as_is(batch):
    return batch


def make_loader(pairs: Pairs, data: DataConfig, render_config: RenderConfig, plan: BatchPlan, *, seed: int,
                rank: int = 0, world_size: int = 1, grad_accum: int = 1, start_epoch: int = 0, start_step: int = 0,
                workers: int = 2, pad_multiple: int = 1, keep_texts: bool = False, word_max: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """An endless loader of this rank's micro-batches from (start_epoch, start_step) on."""
    dataset = RenderedBatches(pairs, data, render_config, seed=seed, pad_multiple=pad_multiple, keep_texts=keep_texts,
                              word_max=word_max)
    sampler = PlanSampler(plan, rank, world_size, grad_accum, start_epoch, start_step)
    # A private generator: creating loaders must not draw from the global torch RNG (exact resume).
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=workers, collate_fn=_as_is,
                      pin_memory=pin_memory, prefetch_factor=PREFETCH if workers else None,
                      generator=torch.Generator().manual_seed(seed))
