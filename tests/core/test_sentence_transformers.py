"""A saved pixelrep folder under sentence-transformers: same vectors, same STS-B score, re-saved folders still pixelrep.

Slow only because importing sentence-transformers takes ~10 s on a busy 2-core machine.
"""
import numpy as np
import pytest

from pixelrep import PixelEncoder
from tests.conftest import SHARED_DATA
from tests.core.helpers import SENTENCES, tiny_encoder

pytestmark = pytest.mark.slow
sentence_transformers = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A tiny encoder (3 patches per token, projected) and SentenceTransformer on its saved folder."""
    enc = tiny_encoder(seed=3, patches_per_token=3, projection_dim=24)
    folder = tmp_path_factory.mktemp("st") / "tiny"
    enc.save_pretrained(folder, metadata={"trained": True})
    st = sentence_transformers.SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    return enc, st


def test_sentence_transformer_gives_pixel_encoder_vectors(loaded, tmp_path):
    enc, st = loaded
    # The module runs at encode()'s precision: "auto" by default, as encode(); exact in fp32.
    assert st[0].precision == "auto"
    auto = st.encode(SENTENCES, batch_size=4)
    assert (auto * enc.encode(SENTENCES)).sum(1).min() > 0.999   # bf16 batches pad differently: cosine
    st[0].precision = "fp32"
    try:
        np.testing.assert_allclose(st.encode(SENTENCES, batch_size=4), enc.encode(SENTENCES, precision="fp32"), atol=1e-6, rtol=0)
        np.testing.assert_allclose(st.encode(SENTENCES, prompt="query: "),
                                   enc.encode(SENTENCES, prompt="query: ", precision="fp32"), atol=1e-6, rtol=0)
        fp32 = st.encode(SENTENCES, batch_size=4)
    finally:
        st[0].precision = "auto"
    from pixelrep.encoder import native_bf16
    if native_bf16("cpu"):   # "auto" did run in bf16 here
        assert np.abs(auto - fp32).max() > 1e-5
    from pixelrep.st import PixelModule
    with pytest.raises(ValueError, match="precision='fp8'"):
        PixelModule(enc, precision="fp8")
    assert st.get_embedding_dimension() == 24 and st.max_seq_length == enc.max_seq_length == 64
    # Saved again by sentence-transformers, the folder is still a pixelrep checkpoint.
    st.save(str(tmp_path / "resaved"))
    np.testing.assert_allclose(PixelEncoder.from_pretrained(tmp_path / "resaved").encode(SENTENCES),
                               enc.encode(SENTENCES), atol=1e-6, rtol=0)


def test_embedding_similarity_evaluator_matches_evaluate_sts(loaded):
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    from pixelrep.eval import evaluate_sts, load_sts_file

    dev_file = SHARED_DATA / "sts" / "stsb" / "en" / "dev.jsonl"
    if not dev_file.is_file():
        pytest.skip(f"STS-B dev not found at {dev_file} (set PIXELREP_DATA to the shared data folder)")
    dev = load_sts_file(dev_file).head(200)
    enc, st = loaded
    evaluator = EmbeddingSimilarityEvaluator(list(dev.sentence1), list(dev.sentence2), list(dev.score), name="stsb-dev")
    st[0].precision = "fp32"   # compare the scoring, not bf16's batch-dependent rounding
    try:
        theirs = evaluator(st)["stsb-dev_spearman_cosine"]
    finally:
        st[0].precision = "auto"

    class Fp32:
        def encode(self, sentences, **kwargs):
            return enc.encode(sentences, precision="fp32", **kwargs)

    ours = evaluate_sts(Fp32(), dev.sentence1, dev.sentence2, dev.score)
    assert ours["n"] == 200
    assert ours["spearman"] == pytest.approx(100 * theirs, abs=1e-4)
