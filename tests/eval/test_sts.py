"""Scoring: correlations match scipy, cosine scoring is ranked like the gold, encode() contract checks."""
import numpy as np
import pytest
import torch
from scipy import stats

from pixelrep.eval.sts import CachedEncoder, cosine, evaluate_sts, pearson, spearman
from tests.eval.helpers import HashingEncoder


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_and_pearson_equal_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, size=200).astype(float)          # many ties, as STS gold scores have
    pred = gold + rng.normal(0, 2, size=200)
    pred[:20] = 0.5                                             # ties on the predicted side too
    assert spearman(pred, gold) == pytest.approx(stats.spearmanr(pred, gold).statistic, abs=1e-12)
    assert pearson(pred, gold) == pytest.approx(stats.pearsonr(pred, gold).statistic, abs=1e-12)


def test_constant_predictions_correlate_zero():
    assert spearman(np.ones(5), np.arange(5.0)) == 0.0


class LookupEncoder:
    def __init__(self, table):
        self.table = table
        self.calls = 0

    def encode(self, sentences, batch_size=64, **kwargs):
        self.calls += 1
        return np.stack([self.table[s] for s in sentences])


def _angle_pairs(scores):
    # Pair i: cosine(s1, s2) = cos(angle) decreasing in angle, angle decreasing in score: a perfect model.
    table, s1, s2 = {}, [], []
    for i, score in enumerate(scores):
        angle = (5.0 - score) / 5.0 * (np.pi / 2)
        table[f"a{i}"], table[f"b{i}"] = np.array([1.0, 0.0]), np.array([np.cos(angle), np.sin(angle)])
        s1.append(f"a{i}")
        s2.append(f"b{i}")
    return LookupEncoder(table), s1, s2


def test_evaluate_sts_perfect_and_reversed_model():
    scores = [0.0, 1.0, 2.5, 4.0, 5.0]
    model, s1, s2 = _angle_pairs(scores)
    result = evaluate_sts(model, s1, s2, scores)
    assert result == {"spearman": pytest.approx(100.0), "pearson": pytest.approx(result["pearson"]), "n": 5}
    assert 90 < result["pearson"] <= 100
    assert model.calls == 1                                     # both sides in one encode call
    assert evaluate_sts(model, s1, s2, scores[::-1])["spearman"] == pytest.approx(-100.0)


def test_torch_tensor_output_is_accepted():
    class TensorEncoder(HashingEncoder):
        def encode(self, sentences, **kwargs):
            return torch.from_numpy(super().encode(sentences)).to(torch.bfloat16)

    s1, s2 = ["a cat", "a dog", "the sun"], ["a cat!", "a log", "moonlight"]
    assert evaluate_sts(TensorEncoder(), s1, s2, [5, 3, 0])["n"] == 3


def test_each_distinct_sentence_encoded_once_across_calls():
    inner = HashingEncoder()
    cached = CachedEncoder(inner)
    evaluate_sts(cached, ["x", "y", "x"], ["y", "z", "x"], [1, 2, 3])
    evaluate_sts(cached, ["x", "w"], ["z", "y"], [1, 2])
    assert [sorted(c) for c in inner.calls] == [["x", "y", "z"], ["w"]]


def test_cosine_handles_zero_vectors():
    assert cosine(np.zeros((1, 3)), np.ones((1, 3)))[0] == 0.0


def test_bad_input_errors():
    enc = HashingEncoder()
    with pytest.raises(ValueError, match="sentences2 has 1"):
        evaluate_sts(enc, ["a", "b"], ["a"], [1, 2])
    with pytest.raises(ValueError, match="scores has 1"):
        evaluate_sts(enc, ["a", "b"], ["a", "b"], [1])
    with pytest.raises(TypeError, match=r"sentences\[3\] is int"):
        evaluate_sts(enc, ["a", "b"], ["c", 4], [1, 2])

    class Flat:
        def encode(self, sentences, **kwargs):
            return np.zeros(len(sentences))

    with pytest.raises(ValueError, match=r"Flat.encode returned shape \(4,\)"):
        evaluate_sts(Flat(), ["a", "b"], ["c", "d"], [1, 2])
