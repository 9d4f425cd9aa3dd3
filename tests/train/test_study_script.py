"""scripts/study_reading.py's measures that are not the eval harness's."""
import importlib.util
from pathlib import Path

import numpy as np


def _study():
    path = Path(__file__).resolve().parents[2] / "scripts" / "study_reading.py"
    spec = importlib.util.spec_from_file_location("study_reading", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Lookup:
    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, sentences):
        return np.stack([self.vectors[s] for s in sentences])


def test_translation_retrieval_counts_each_direction_apart():
    # a0 -> b0 and a1 -> b1 both ways; a2's nearest is b1 (wrong), while b2's nearest is a2 (right).
    vectors = {"a0": [1, 0, 0], "a1": [0, 1, 0], "a2": [0, 1, 0.5],
               "b0": [1, 0, 0], "b1": [0, 1, 0.1], "b2": [0, 0.2, 1]}
    vectors = {k: np.asarray(v, dtype=float) for k, v in vectors.items()}
    score = _study().translation_retrieval(_Lookup(vectors), ["a0", "a1", "a2"], ["b0", "b1", "b2"])
    assert score == 50.0 * (2 / 3 + 3 / 3)


def _script(name):
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_growing_depth_keeps_the_embeddings_and_the_new_blocks_learn():
    from pixelrep.batch import collate
    from tests.core.helpers import tiny_encoder

    enc = tiny_encoder(seed=1)
    grown = _script("grow_depth").grow(enc, depth=len(enc.vit.blocks) + 2)
    assert len(grown.vit.blocks) == grown.model_config.depth == len(enc.vit.blocks) + 2
    texts = ["A man plays a guitar.", "Ein Hund läuft."]
    np.testing.assert_allclose(grown.encode(texts, precision="fp32"), enc.encode(texts, precision="fp32"), atol=1e-6)
    # The inserted blocks start as identities, not as dead ends: one step moves their output projections.
    grown.train()
    grown(*collate(grown.renderer.render_batch(texts))).pow(2).sum().backward()
    zeroed = [b for b in grown.vit.blocks if not b.mlp[2].weight.any()]
    assert len(zeroed) == 2 and all(b.mlp[2].weight.grad.abs().sum() > 0 for b in zeroed)
