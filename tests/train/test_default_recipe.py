"""The default recipe's derived files (train/configs/default.py prepare) from a tiny fake data tree."""
import gzip
import json
import os

import pytest
import torch

from pixelrep.train.configs import default as recipe


def _gz(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def data(tmp_path, monkeypatch):
    root = tmp_path / "data"
    english = [f"English corpus sentence number {i}." for i in range(12)]
    english[4] = "x" * (recipe.MAX_CHARS + 1)   # too long for training: dropped everywhere
    _gz(root / "corpus/english-sentences.txt.gz", english)
    languages = set(recipe.LEXICON_LANGUAGES) | set(recipe.MONOLINGUAL_LANGUAGES)
    for lang in languages:
        _gz(root / f"corpus/sentences-{lang}.txt.gz", [f"Satz {lang} {i}." for i in range(5)])
    _gz(root / "parallel/en-de.tsv.gz", ["en\tde", "A cat sleeps here. It is very old now.\tEine Katze schläft hier. Sie ist jetzt sehr alt."])
    _jsonl(root / "sts/stsb/en/train.jsonl", [dict(sentence1="A man runs.", sentence2="A man is running.", score=4.8)])
    _jsonl(root / "nli/sick-train.jsonl", [dict(premise="A dog barks.", hypothesis="A dog is quiet.", label="contradiction")])
    for lang in ("en", *recipe.DEV_CROSS_LANGUAGES):
        _jsonl(root / f"sts/stsb/{lang}/dev.jsonl",
               [dict(sentence1=f"{lang} one {i}", sentence2=f"{lang} two {i}", score=i % 5) for i in range(1500)])
    monkeypatch.setenv("PIXELREP_DATA", str(root))
    monkeypatch.setattr(recipe, "CORPUS_SENTENCES", 3)
    monkeypatch.setattr(recipe, "MORE_ENGLISH", 4)
    monkeypatch.setattr(recipe, "SENTENCES_PER_LANGUAGE", 2)
    return english


def _texts(path):
    return [json.loads(line)["text"] for line in open(path, encoding="utf-8")]


def test_sentences_continue_the_corpus_where_english_stops_and_add_every_language(data, tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "LEXICON_EN", 3)   # of the fake corpus's 16 English words; then other languages
    paths = recipe.prepare(tmp_path / "derived")
    english, more = _texts(paths["english"]), _texts(paths["sentences"])
    # english.jsonl: the first CORPUS_SENTENCES corpus lines (plus STS-B train and SICK sentences);
    # sentences.jsonl: the next MORE_ENGLISH short ones, none of them already in english.jsonl.
    assert set(data[:3]) <= set(english) and "A man runs." in english and "A dog barks." in english
    assert more[:4] == [data[3], data[5], data[6], data[7]]   # data[4] is too long
    assert not set(more) & set(english)
    for lang in recipe.MONOLINGUAL_LANGUAGES:
        assert [t for t in more if t.startswith(f"Satz {lang} ")] == [f"Satz {lang} 0.", f"Satz {lang} 1."]
    # Paragraph pairs are split into sentence pairs when both sides split alike.
    de = open(paths["parallel"][recipe.LANGUAGES.index("de")], encoding="utf-8").read().splitlines()
    assert de[0] == "en\tde" and sorted(de[1:]) == ["A cat sleeps here.\tEine Katze schläft hier.", "It is very old now.\tSie ist jetzt sehr alt."]
    # The English-only visual texts: the head of each file, no other language in them.
    assert _texts(paths["sentences_en"]) == more[:4]
    assert not [t for t in _texts(paths["lexicon_en"]) if "Satz" in t or t.startswith("de")]
    # The dev mix: 500 English rows, then 200 en-X rows per language.
    assert sum(1 for _ in open(paths["dev"], encoding="utf-8")) == 500 + 200 * len(recipe.DEV_CROSS_LANGUAGES)


def test_later_languages_keep_held_out_pairs_apart_whatever_existed_before(data, tmp_path, monkeypatch):
    rows = [f"Open the file number {i} now.\tافتح الملف رقم {i} الآن." for i in range(10)]
    _gz(tmp_path / "data/parallel/en-ar.ui.tsv.gz", ["en\tar"] + rows)
    monkeypatch.setattr(recipe, "HELD_OUT_PAIRS", 3)
    fresh = recipe.prepare(tmp_path / "fresh")
    ar = recipe.MORE_LANGUAGES.index("ar")

    def pairs(path):
        return open(path, encoding="utf-8").read().splitlines()

    held, trained = pairs(fresh["held_out"][ar]), pairs(fresh["parallel_more"][ar])
    assert held[0] == trained[0] == "en\tar" and len(held) == 1 + 3 and len(trained) == 1 + 7
    assert sorted(held[1:] + trained[1:]) == sorted(rows)   # every pair once, none in both
    # A data folder prepared before the new languages existed gets the same files for them.
    again = tmp_path / "again"
    recipe.prepare(again)
    for name in ("held_out", "parallel_more"):
        for path in recipe.data_files(again)[name]:
            os.remove(path)
    again_paths = recipe.prepare(again)
    assert pairs(again_paths["held_out"][ar]) == held and pairs(again_paths["parallel_more"][ar]) == trained


def test_prepare_writes_once(data, tmp_path):
    paths = recipe.prepare(tmp_path / "derived")
    before = {k: open(paths[k], "rb").read() for k in ("english", "lexicon", "sentences", "dev")}
    recipe.MORE_ENGLISH = 1   # a changed constant must not rewrite files a run may be reading (monkeypatch restores it)
    recipe.prepare(tmp_path / "derived")
    assert {k: open(paths[k], "rb").read() for k in before} == before


def test_get_config_declares_and_writes_nothing(tmp_path, monkeypatch):
    """`pixelrep train default --print-config` (and bench, device-pack's reading) must not derive data."""
    import subprocess
    import sys

    env = {**os.environ, "PIXELREP_RUNS": str(tmp_path / "runs"), "PIXELREP_DATA": str(tmp_path / "no-data")}
    out = subprocess.run([sys.executable, "-m", "pixelrep", "train", "default", "--print-config"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["data"]["sources"][0] == str(tmp_path / "runs" / "default-data" / "english.jsonl")
    # With --from, the stage that phase trains: its start, data, lr and settings, still without writing.
    out = subprocess.run([sys.executable, "-m", "pixelrep", "train", "default", "--print-config", "--from", "default8",
                          "--set", "optim.max_steps=700"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    stage = json.loads(out.stdout)
    derived = tmp_path / "runs" / "default-data"
    assert stage["init_from"] == str(tmp_path / "runs" / "default6" / "final")
    assert stage["data"]["sources"] == [str(derived / f) for f in ("english.jsonl", "lexicon-en.jsonl", "sentences-en.jsonl")]
    assert str(derived / "en-ar.tsv") in stage["leapfrog_with"]["sources"]
    assert stage["optim"]["lr"] == 1e-4 and stage["align"]["queue_size"] == 4096 and stage["optim"]["max_steps"] == 700
    assert list(tmp_path.iterdir()) == []


def test_readme_and_model_card_read_the_lineage():
    """The README's commands and the export metadata follow LINEAGE, the one declaration of the bundled model."""
    from pathlib import Path

    readme = (Path(recipe.__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("**Recipe**")[1].split("```bash")[1:]
    commands = next(b for b in blocks if "study_reading.py run default" in b).split("```")[0].replace("\\\n", " ")
    schedule = blocks[0].split("```")[0]
    kept = recipe.LINEAGE[-1]
    assert f"pixelrep train default --until {kept.name}" in schedule   # the one command
    assert f"--export runs/{kept.name}/{kept.kept}" in schedule
    assert recipe.SCHEDULE[: len(recipe.LINEAGE)] == recipe.LINEAGE
    assert recipe.LINEAGE[: len(recipe.BY_HAND)] == recipe.BY_HAND
    files = {k: f"$D/{Path(v).name}" for k, v in recipe.data_files().items() if isinstance(v, str)}
    first, *rest = recipe.BY_HAND
    assert f"study_reading.py run default --steps {first.max_steps}" in commands
    for phase in rest:
        line = next(line for line in commands.splitlines() if f"--output-dir runs/{phase.name} " in line)
        missing = [s for s in phase.overrides(files) if s not in line.split()]
        assert not missing, f"README's command for runs/{phase.name} lacks {missing}"
    facts = recipe.lineage_facts()
    weights_step = sum(p.steps_kept for p in recipe.LINEAGE)
    total = sum(p.max_steps for p in recipe.LINEAGE)
    assert f"step {weights_step:,}" in readme and f"{total:,} steps" in readme
    assert f"step {weights_step:,}" in facts["training_budget"] and f"{total:,} steps" in facts["training_budget"]


def test_the_bundle_removes_the_common_directions_the_recipe_declares():
    from pixelrep import PixelEncoder

    bundle = PixelEncoder.from_pretrained("default")
    assert bundle.model_config.common_directions == recipe.COMMON_DIRECTIONS
    assert f"{recipe.COMMON_DIRECTIONS_TEXTS:,} texts" in bundle.metadata["common_directions"]
    directions = bundle.vit.common_directions.float()
    # Orthonormal rows (float16 on disk), and the removed mean is not zero: both were fitted.
    assert torch.allclose(directions @ directions.T, torch.eye(recipe.COMMON_DIRECTIONS), atol=2e-3)
    assert bundle.vit.common_mean.norm() > 0.01
    # The whitener is symmetric and annihilates the removed directions; what is left it rescales.
    assert bundle.model_config.common_whitening == recipe.COMMON_WHITENING
    whitener = bundle.vit.common_whitener.float()
    assert torch.allclose(whitener, whitener.T, atol=1e-3)
    assert (directions @ whitener).abs().max() < 1e-2
    assert f"variance ** -{recipe.COMMON_WHITENING:g}" in bundle.metadata["description"]
    # Then the graded fine-tune the recipe declares (it moves the weights, not the removal's buffers).
    assert f"{recipe.GRADED_STEPS} steps" in bundle.metadata["graded_pairs"]
    assert recipe.GRADED_PAIRS in bundle.metadata["graded_pairs"]
    # And it renders as the recipe's export sets it.
    assert bundle.segment_words == recipe.SEGMENT_WORDS and f"segment_words={recipe.SEGMENT_WORDS!r}" in \
        bundle.metadata["description"]
    assert bundle.render_config.chunk_chars == recipe.CHUNK_CHARS and "(chunk_chars)" in bundle.metadata["description"]
    assert bundle.render_config.correct_spelling == recipe.CORRECT_SPELLING and \
        f"correct_spelling={recipe.CORRECT_SPELLING!r}" in bundle.metadata["description"]
    assert bundle.render_config.snap_to_grid == recipe.SNAP_TO_GRID and "(snap_to_grid)" in bundle.metadata["description"]


def test_export_names_the_teacher_the_run_was_trained_on(tmp_path, monkeypatch):
    """A run trained on e5 exports as e5's space: the model card names e5 and its width, never USE-m3's."""
    from pixelrep import PixelEncoder
    from pixelrep.aligned import AlignedPixelEncoder
    from pixelrep.config import ModelConfig
    from pixelrep.render import RenderConfig

    torch.manual_seed(0)
    config = ModelConfig.from_preset("tiny", max_patches=32)
    aligned = AlignedPixelEncoder(PixelEncoder(config, RenderConfig(max_patches=32)),
                                  torch.nn.Linear(config.embedding_dim, 24), teacher="e5")
    monkeypatch.setattr(AlignedPixelEncoder, "from_pretrained", classmethod(lambda cls, path: aligned))
    monkeypatch.setattr(recipe, "common_directions_texts", lambda: [f"sentence {i} about {w}" for i, w in
                                                                    enumerate(["cats", "rain", "trains", "bread"] * 10)])
    monkeypatch.setattr(recipe, "GRADED_STEPS", 0)
    recipe.export("runs/e5-run", str(tmp_path / "model"))
    exported = PixelEncoder.from_pretrained(tmp_path / "model")
    description = exported.metadata["description"]
    assert exported.metadata["teacher"] == "e5" and exported.embedding_dim == 24
    assert description.startswith(f"pixelrep default: {recipe.TEACHER_TITLES['e5']} distilled into a "
                                  f"{config.depth}-layer") and "e5's 24-d space" in description
    assert "Universal Sentence Encoder" not in description and "USE-m3" not in description
    # Every alias of USE-m3 is named as USE-m3.
    assert recipe.space_description("universal-sentence-encoder-multilingual", depth=4, dim=512).startswith(
        f"pixelrep default: {recipe.TEACHER_TITLES['use']} distilled")


def test_translation_silver_pairs_grade_english_against_translations(tmp_path, monkeypatch):
    """Each English sentence meets its own translation at the top score and its neighbours' translations at
    the teacher's cosine of the English sides, both ways round, on the gold scores' scale."""
    import pixelrep.teachers

    english = ["a cat sleeps", "a cat naps", "the market fell", "stocks dropped"]
    german = ["eine Katze schläft", "eine Katze döst", "der Markt fiel", "Aktien fielen"]
    (tmp_path / "en-de.tsv").write_text("en\tde\n" + "".join(f"{e}\t{d}\n" for e, d in zip(english, german)),
                                        encoding="utf-8")
    (tmp_path / "en-ar.tsv").write_text("en\tar\n", encoding="utf-8")
    monkeypatch.setattr(recipe, "data_files", lambda: {"parallel": (str(tmp_path / "en-de.tsv"),),
                                                       "parallel_more": (str(tmp_path / "en-ar.tsv"),)})
    monkeypatch.setattr(recipe, "graded_pairs", lambda: ([], [], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]))
    # Two topics: the cats close to each other, the markets close to each other, the topics apart.
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, 0.2], [0.1, 1.0], [0.2, 1.0]]), dim=-1)

    class Teacher:
        def sentence_embeddings(self, texts, show_progress_bar=False):
            return vectors[[english.index(t) for t in texts]]

    monkeypatch.setattr(pixelrep.teachers, "load_teacher", lambda name, cache_dir=None: Teacher())
    s1, s2, scores = recipe.translation_silver_pairs(per_language=3, neighbours=1, random_couples=0)
    pairs = dict(zip(zip(s1, s2), scores))
    assert set(s1) <= set(english[:3]) and set(s2) <= set(german[:3])          # the first 3 pairs of each file
    assert pairs[("a cat sleeps", "eine Katze schläft")] == pairs[("a cat naps", "eine Katze döst")] == max(scores)
    assert pairs[("a cat sleeps", "eine Katze döst")] == pairs[("a cat naps", "eine Katze schläft")]  # both ways
    # The market's nearest English sentence is the closer cat: a far couple, graded low.
    far = pairs[("a cat naps", "der Markt fiel")]
    assert far == pairs[("the market fell", "eine Katze döst")]
    assert 0.0 <= min(scores) == far < pairs[("a cat sleeps", "eine Katze döst")] < max(scores) <= 5.0
    assert len(scores) == 3 + 2 * 2                                # own translations, then 2 couples both ways


def test_silver_pairs_leave_the_gold_couples_out_and_share_their_scale(monkeypatch):
    import pixelrep.teachers

    first = ["a cat sleeps", "the market fell"]
    second = ["a cat naps", "stocks dropped"]
    monkeypatch.setattr(recipe, "graded_pairs", lambda: (first, second, [4.0, 3.0]))
    texts = sorted(first + second)
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, 0.2], [0.2, 1.0], [0.1, 1.0]]), dim=-1)

    class Teacher:
        def sentence_embeddings(self, batch, show_progress_bar=False):
            assert batch == texts
            return vectors

    monkeypatch.setattr(pixelrep.teachers, "load_teacher", lambda name, cache_dir=None: Teacher())
    s1, s2, scores = recipe.silver_pairs(neighbours=2, random_couples=0)
    couples = {frozenset(pair) for pair in zip(s1, s2)}
    assert couples and not couples & {frozenset(pair) for pair in zip(first, second)}
    assert all(3.0 <= s <= 4.0 for s in scores)
