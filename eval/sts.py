"""STS scoring: cosine similarity of two encoded sides, Spearman and Pearson x100 against gold.

Works with any object that has `encode(sentences, batch_size=...)` returning [n, d] (numpy or
torch): PixelEncoder, sentence-transformers models, or a test double.
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from pixelrep.render import Renderer
from pixelrep.render.visual import IMAGE_PERTURBATIONS, LAYOUT_PERTURBATIONS, perturb_rendered


def encode(model, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Encode `sentences` with `model` as float64 [n, d]; each distinct sentence is encoded once."""
    sentences = list(sentences)
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentences[{i}] is {type(s).__name__}, expected str")
    unique = list(dict.fromkeys(sentences))
    if not unique:
        return np.zeros((0, 0))
    emb = model.encode(unique, batch_size=batch_size, show_progress_bar=False)
    if hasattr(emb, "detach"):  # a torch tensor (convert_to_tensor models)
        emb = emb.detach().float().cpu().numpy()
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(unique):
        raise ValueError(f"{type(model).__name__}.encode returned shape {emb.shape} for {len(unique)} sentences; "
                         "expected [n, d]")
    index = {s: i for i, s in enumerate(unique)}
    return emb[[index[s] for s in sentences]]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; an all-zero vector has similarity 0 to everything."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.einsum("nd,nd->n", a, b)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (nothing to correlate)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denom) if denom > 0 else 0.0


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation: Pearson of the ranks, ties getting their average rank (as scipy)."""
    return pearson(rankdata(x), rankdata(y))


def predict_similarity(model, sentences1: Sequence[str], sentences2: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Cosine similarity of each pair's embeddings; both sides are encoded in one call."""
    if len(sentences1) != len(sentences2):
        raise ValueError(f"sentences1 has {len(sentences1)} items but sentences2 has {len(sentences2)}")
    emb = encode(model, list(sentences1) + list(sentences2), batch_size=batch_size)
    n = len(sentences1)
    return cosine(emb[:n], emb[n:])


def score_predictions(predicted: np.ndarray, gold: np.ndarray) -> dict:
    """Spearman and Pearson x100 of predicted vs gold scores."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if len(predicted) != len(gold) or len(gold) < 2:
        raise ValueError(f"need two or more scored pairs with predictions; got {len(predicted)} predictions "
                         f"for {len(gold)} gold scores")
    return dict(spearman=100 * spearman(predicted, gold), pearson=100 * pearson(predicted, gold), n=len(gold))


def evaluate_sts(model, sentences1: Sequence[str], sentences2: Sequence[str], scores, batch_size: int = 64) -> dict:
    """Encode both sides, compare by cosine, return dict(spearman=, pearson=, n=) with values x100."""
    if len(scores) != len(sentences1):
        raise ValueError(f"scores has {len(scores)} items but there are {len(sentences1)} sentence pairs")
    return score_predictions(predict_similarity(model, sentences1, sentences2, batch_size), np.asarray(scores, dtype=np.float64))


class CachedEncoder:
    """Wraps a model so each distinct sentence is encoded once across many evaluations.

    The suites reuse sentences heavily (STS-B English appears in four suites); caching saves
    most of the encoding time of `--suite all`.
    """

    def __init__(self, model):
        self.model = model
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, sentences: Sequence[str], batch_size: int = 64, **kwargs) -> np.ndarray:
        new = [s for s in dict.fromkeys(sentences) if s not in self._cache]
        if new:
            for s, e in zip(new, encode(self.model, new, batch_size=batch_size)):
                self._cache[s] = e
        if not sentences:
            return np.zeros((0, 0))
        return np.stack([self._cache[s] for s in sentences])


class PerturbedPixelEncoder:
    """A PixelEncoder that reads its renderings after an image perturbation (blur, JPEG, ...).

    Built from the encoder's public pieces: its renderer draws each sentence, the perturbation
    (`pixelrep.render.perturb_rendered`) changes the text patches (the end patch stays as drawn, so
    the model still sees where the text ends), and `PixelEncoder.embed_rendered` reads them as it reads
    any image (snapped back onto the pixel grid first where the render config's snap_to_grid says so),
    on the device the encoder sits on. The layout kind (LAYOUT_PERTURBATIONS: "continuous") draws each
    sentence as continuous text instead, moves it by `level` pixels, and reads it as a user's image
    (`PixelEncoder.encode_images`). A sentence's random draws are seeded from `seed` and the sentence
    itself, so its embedding does not depend on the batch it came in.
    """

    def __init__(self, encoder, kind: str, level: float, seed: int = 0):
        if kind not in IMAGE_PERTURBATIONS and kind not in LAYOUT_PERTURBATIONS:
            known = ", ".join([*IMAGE_PERTURBATIONS, *LAYOUT_PERTURBATIONS])
            raise ValueError(f"unknown image perturbation {kind!r}; known: {known}")
        self.encoder, self.kind, self.level, self.seed = encoder, kind, level, seed
        self.continuous = (Renderer(dataclasses.replace(encoder.render_config, word_align=0))
                           if kind in LAYOUT_PERTURBATIONS else None)

    def render(self, sentence: str):
        """The sentence as the encoder draws it (continuous, for the layout kind), with the perturbation applied to its
        text patches."""
        rng = np.random.default_rng([self.seed, zlib.crc32(sentence.encode("utf-8", "surrogatepass"))])
        if self.continuous is not None:   # the layout kind: drawn continuous, then moved as the shift kind moves ink
            return perturb_rendered(self.continuous.render(sentence), "shift", self.level, rng=rng,
                                    eos_patch=self.encoder.render_config.eos_patch)
        return perturb_rendered(self.encoder.renderer.render(sentence), self.kind, self.level, rng=rng,
                                eos_patch=self.encoder.render_config.eos_patch)

    def encode(self, sentences: Sequence[str], batch_size: int = 64, precision: str = "auto", **kwargs) -> np.ndarray:
        """Embeddings float32 [n, d] (not normalised; cosine does not need it), in input order; precision
        as PixelEncoder.encode's; other keywords (show_progress_bar, ...) are accepted and change nothing."""
        rendered = [self.render(s) for s in sentences]
        if self.continuous is not None:
            return self.encoder.encode_images([self.continuous.text_area(r) for r in rendered], batch_size,
                                              normalize=False, precision=precision)
        return self.encoder.embed_rendered(rendered, batch_size, precision).cpu().numpy()
