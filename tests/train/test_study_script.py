"""scripts/study_reading.py's measures that are not the eval harness's."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest


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


def test_export_removes_common_directions_and_unfold_gives_the_run_back(tmp_path, monkeypatch):
    """The recipe's export folds the projector, removes the common directions of the texts it is fitted
    on and whitens the rest; scripts/unfold_default.py rebuilds the run's encoder and projector, without them.
    With the graded fine-tune (GRADED_STEPS) the weights move and unfold refuses, naming the way back."""
    import torch

    from pixelrep import ModelConfig, PixelEncoder, RenderConfig
    from pixelrep.aligned import AlignedPixelEncoder, save_align_head
    from pixelrep.train.configs import default as recipe

    torch.manual_seed(0)
    run = tmp_path / "run"
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=32), RenderConfig(max_patches=32))
    head = torch.nn.Linear(encoder.embedding_dim, 24)
    encoder.save_pretrained(run, metadata={"teacher": "use-m3"})
    save_align_head(run, {"sentence": head}, projector="linear", teachers=("use-m3",))
    texts = [f"text {i} about {w}" for i, w in enumerate(("cats", "rain", "a long road home", "music") * 10)]
    monkeypatch.setattr(recipe, "common_directions_texts", lambda seed=0: texts)
    monkeypatch.setattr(recipe, "COMMON_DIRECTIONS", 2)
    monkeypatch.setattr(recipe, "GRADED_STEPS", 0)
    recipe.export(str(run), str(tmp_path / "bundle"))
    bundle = PixelEncoder.from_pretrained(tmp_path / "bundle")
    assert bundle.model_config.common_directions == 2 and "2 top principal directions" in bundle.metadata["description"]
    assert bundle.model_config.common_whitening == recipe.COMMON_WHITENING > 0
    vectors = bundle.encode(texts, normalize=False, precision="fp32")
    assert np.abs(vectors.mean(0)).max() < 2e-3   # float16 on disk
    _script("unfold_default").unfold(str(tmp_path / "bundle"), str(tmp_path / "unfolded"))
    unfolded = AlignedPixelEncoder.from_pretrained(tmp_path / "unfolded")
    assert not unfolded.encoder.model_config.removes_common and "common_directions" not in unfolded.encoder.metadata
    run_vectors = AlignedPixelEncoder.from_pretrained(run).encode(texts, normalize=False, precision="fp32")
    np.testing.assert_allclose(unfolded.encode(texts, normalize=False, precision="fp32"), run_vectors, atol=2e-2)

    pairs = (texts + texts[:24], texts[1:] + texts[:25], [float(i % 6) for i in range(64)])
    monkeypatch.setattr(recipe, "graded_pairs", lambda: pairs)
    across = ([f"text {i}" for i in range(8)], [f"Text {i} übersetzt" for i in range(8)], [float(i % 6) for i in range(8)])
    monkeypatch.setattr(recipe, "translation_silver_pairs", lambda per_language: across)
    monkeypatch.setattr(recipe, "GRADED_TRANSLATIONS", 4)
    monkeypatch.setattr(recipe, "GRADED_STEPS", 2)
    monkeypatch.setattr(recipe, "GRADED_LR", 1e-3)
    recipe.export(str(run), str(tmp_path / "graded"))
    graded = PixelEncoder.from_pretrained(tmp_path / "graded")
    assert "2 steps" in graded.metadata["graded_pairs"] and "CoSENT" in graded.metadata["description"]
    assert "8 pairs across languages from the first 4 translation pairs" in graded.metadata["graded_pairs"]
    assert not np.allclose(graded.encode(texts, normalize=False, precision="fp32"), vectors, atol=1e-3)
    with pytest.raises(ValueError, match="graded pairs.*--git-revision"):
        _script("unfold_default").unfold(str(tmp_path / "graded"), str(tmp_path / "unfolded-graded"))


def test_held_out_rows_spread_over_the_whole_file():
    """study_graded's second selection set: STS-B's rows come in genre blocks, so the held-out rows must
    reach from the first block to the last, each row once."""
    rows = _script("study_graded").held_out_rows(5749, 1000)
    assert len(rows) == 1000 and min(rows) < 6 and max(rows) > 5740
    gaps = sorted(b - a for a, b in zip(sorted(rows), sorted(rows)[1:]))
    assert gaps[0] >= 5 and gaps[-1] <= 6


def test_teacher_study_samples_the_first_phase_and_trains_on_the_sample_only(tmp_path):
    """scripts/study_teacher.py: a seeded sample in file order (a table's header kept), and the pilot's config
    is the recipe's first phase with every training source, and nothing else, moved to the sample."""
    from pixelrep.train.configs import default as recipe

    study = _script("study_teacher")
    src = tmp_path / "en-de.tsv"
    src.write_text("en\tde\n" + "".join(f"s{i}\tt{i}\n" for i in range(100)), encoding="utf-8")
    study.sample(src, tmp_path / "a.tsv", 10, header=True)
    study.sample(src, tmp_path / "b.tsv", 10, header=True)
    lines = (tmp_path / "a.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "en\tde" and len(lines) == 11
    assert lines == (tmp_path / "b.tsv").read_text(encoding="utf-8").splitlines()
    numbers = [int(line.split("\t")[0][1:]) for line in lines[1:]]
    assert numbers == sorted(numbers) and numbers != list(range(10))

    phase, pilot = recipe.get_config(), study.pilot_config(tmp_path)
    for part in ("data", "leapfrog_with"):
        sources = getattr(pilot, part).sources
        assert [Path(s).name for s in sources] == [Path(s).name for s in getattr(phase, part).sources]
        assert all(Path(s).parent == tmp_path / "data" for s in sources)
    assert pilot.optim == phase.optim and pilot.model == phase.model and pilot.align == phase.align


def test_teacher_study_embeds_its_share_once_and_resumes(tmp_path):
    """embed_share: each of n processes takes every n-th text, and texts already in the disk cache are not sent to
    the teacher again (a stopped precompute resumes where it was)."""
    from pixelrep.teachers.cache import EmbeddingCache

    class Teacher:
        def __init__(self):
            self.cache, self.sent = EmbeddingCache(tmp_path / "cache", "fake"), []

        def sentence_embeddings(self, texts):
            self.sent += texts
            self.cache.put(texts, np.ones((len(texts), 4), dtype=np.float32))

    study, texts = _script("study_teacher"), [f"text {i}" for i in range(10)]
    first = Teacher()
    study.embed_share(first, texts, "1/3", "t")
    assert first.sent == ["text 1", "text 4", "text 7"]
    again = Teacher()
    study.embed_share(again, texts, "1/3", "t")
    study.embed_share(again, texts, "0/1", "t")
    assert again.sent == [t for t in texts if t not in first.sent]
