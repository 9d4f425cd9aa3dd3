"""Precomputed teacher vectors (make device-pack) stand in for the teacher: same targets, same losses."""
import json

import numpy as np
import pytest

from pixelrep.teachers import TeacherVectors, save_teacher_vectors
from pixelrep.train.config import AlignConfig, OptimConfig
from pixelrep.train.loop import train
from tests.train.helpers import tiny_lm, tiny_stage, write_pairs


def test_int8_vectors_keep_the_direction_and_name_what_is_missing(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"sentence {i}" for i in range(50)]
    save_teacher_vectors(tmp_path, "use-m3", texts, vectors, sentences_per_s=1000.0)
    teacher = TeacherVectors(tmp_path, "use-m3")
    assert teacher.dim == 512 and teacher.token_dim is None and (tmp_path / "use-m3" / "teacher.json").is_file()
    got = teacher.sentence_embeddings(texts[::-1]).numpy()
    cosine = (got * vectors[::-1]).sum(1)
    assert cosine.min() > 0.9999 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    assert teacher.served == 50
    with pytest.raises(KeyError, match="'unseen' has no vector in .*run it again"):
        teacher.sentence_embeddings(["unseen"])
    with pytest.raises(FileNotFoundError, match=r"no vectors of teacher 'minilm' .*\['use-m3'\].*device-pack"):
        TeacherVectors(tmp_path, "minilm")
    # Packs written before the rename name the teacher "lm" in teacher.json; they still load.
    meta = tmp_path / "use-m3" / "teacher.json"
    old = json.loads(meta.read_text())
    old["lm"] = old.pop("teacher")
    meta.write_text(json.dumps(old))
    assert TeacherVectors(tmp_path, "use-m3").sentence_embeddings(texts[:1]).shape == (1, 512)


def test_training_from_vectors_matches_training_with_the_teacher(tmp_path):
    from pixelrep.train.align import TeacherTargets

    data = write_pairs(tmp_path / "pairs.jsonl")
    lm = tiny_lm(tmp_path / "lm")
    align = AlignConfig(teacher=lm, token_weight=0.0, sentence_weight=1.0, cross_weight=0.5, sentence_loss="infonce")
    # What the pack does: the trainer's own teacher over every target text (here: the English sides).
    english = [json.loads(line)["en"] for line in data.read_text().splitlines()]
    teacher = TeacherTargets(align).teachers[0]
    save_teacher_vectors(tmp_path / "vectors", lm, english, teacher.sentence_embeddings(english).numpy())

    optim = OptimConfig(lr=2e-3, max_steps=3, batch_size=8)
    runs = {}
    for name, config in (("teacher", align), ("vectors", AlignConfig(**{**align.__dict__,
                                                                        "teacher_vectors": str(tmp_path / "vectors")}))):
        train(tiny_stage(data, align=config, contrastive_weight=0.0, optim=optim), tmp_path / name, show_progress=False)
        runs[name] = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
    # int8 rounding moves this 32-d toy teacher's InfoNCE logits (cosine / 0.05) by up to 0.05: losses agree to 1%.
    for a, b in zip(runs["teacher"], runs["vectors"]):
        assert a["loss_align_sentence"] == pytest.approx(b["loss_align_sentence"], rel=1e-2)
