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
