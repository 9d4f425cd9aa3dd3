"""Training data: file formats and column mapping, pair builders, batch plans, rendered batches."""
import dataclasses
import csv
import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig
from pixelrep.train.data import (BatchPlan, Pairs, PlanSampler, RenderedBatches, build_pairs, field_columns, load_pairs,
                                 load_table, micro_batches, pair_rows)

ROWS = [
    {"s1": "A man plays a guitar.", "s2": 'He said "hello" to her.', "lab": "entailment"},
    {"s1": "A man plays a guitar.", "s2": "Nobody plays anything.", "lab": "contradiction"},
    {"s1": "Two dogs run on grass.", "s2": "Animals are outside.", "lab": "entailment"},
    {"s1": "Two dogs run on grass.", "s2": "The dogs sleep.", "lab": "neutral"},
]


def _write(path, rows):
    df = pd.DataFrame(rows)
    name = path.name.removesuffix(".gz")
    plain = path.with_name(name)
    if name.endswith(".jsonl"):
        df.to_json(plain, orient="records", lines=True)
    elif name.endswith(".csv"):
        df.to_csv(plain, index=False)
    elif name.endswith(".tsv"):
        df.to_csv(plain, index=False, sep="\t", quoting=csv.QUOTE_NONE)
    else:
        df.to_parquet(plain)
    if path.name.endswith(".gz"):
        with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()
    return path


@pytest.mark.parametrize("name", ["nli.jsonl", "nli.csv", "nli.tsv", "nli.parquet", "nli.jsonl.gz", "nli.csv.gz",
                                  "nli.tsv.gz", "nli.parquet.gz"])
def test_every_format_with_column_mapping(tmp_path, name):
    path = _write(tmp_path / name, ROWS)
    data = DataConfig(sources=str(path), pairs="reasoning",
                      columns={"premise": "s1", "hypothesis": "s2", "label": "lab"})
    pairs = load_pairs(data)
    # Quotes inside TSV text stay characters; the neutral row is unused; the contradiction is the negative.
    assert pairs.anchors == ["A man plays a guitar.", "Two dogs run on grass."]
    assert pairs.positives == ['He said "hello" to her.', "Animals are outside."]
    assert pairs.negatives == ["Nobody plays anything.", None]


def test_missing_column_and_missing_file_are_named(tmp_path):
    path = _write(tmp_path / "nli.jsonl", ROWS)
    with pytest.raises(ValueError, match=r"no column 'premise' for reasoning field 'premise' \(columns: s1, s2, lab\); "
                                         r"map it with --set data.columns.premise=NAME"):
        load_pairs(DataConfig(sources=str(path), pairs="reasoning"))
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_table(str(tmp_path / "absent.jsonl"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_table(str(tmp_path / "notes.txt"))


def test_split_slicing(tmp_path):
    path = _write(tmp_path / "t.jsonl", [{"text": f"sentence {i}"} for i in range(10)])
    assert len(load_table(str(path), split="train[:3]")) == 3


def test_pair_builders(tmp_path):
    import datasets

    docs = datasets.Dataset.from_list([
        {"title": "A game", "paragraphs": ["First part.", "Second part."]},
        {"title": "A tool", "paragraphs": ["First part."]},
        {"title": "", "paragraphs": ["Only.", "Only."]},
    ])
    topical = build_pairs(docs, DataConfig(sources="x", pairs="topical"))
    assert list(zip(topical.anchors, topical.positives)) == [
        ("A game", "First part."), ("A game", "Second part."), ("First part.", "Second part."), ("A tool", "First part.")]
    assert topical.negatives is None and not topical.same_meaning

    visual = build_pairs(datasets.Dataset.from_list([{"t": "a b"}, {"t": " a b "}, {"t": ""}, {"t": "c"}]),
                         DataConfig(sources="x", pairs="visual", columns={"text": "t"}, typo_rate=0.1))
    assert visual.anchors == visual.positives == ["a b", "c"] and visual.same_meaning

    # multilingual: the target is the file's other column (so en-de and en-fr files pool unchanged).
    de = _write(tmp_path / "en-de.tsv.gz", [{"en": "Hello world", "de": "Hallo Welt"}, {"en": "Same", "de": "Same"}])
    fr = _write(tmp_path / "en-fr.tsv.gz", [{"en": "Hello world", "fr": "Bonjour le monde"}])
    multi = load_pairs(DataConfig(sources=(str(de), str(fr)), pairs="multilingual"))
    assert list(zip(multi.anchors, multi.positives)) == [("Hello world", "Hallo Welt"), ("Hello world", "Bonjour le monde")]
    three = _write(tmp_path / "three.jsonl", [{"en": "a", "de": "b", "fr": "c"}])
    with pytest.raises(ValueError, match="cannot tell the target column"):
        load_pairs(DataConfig(sources=str(three), pairs="multilingual"))

    # Integer labels follow SNLI/MultiNLI (0 entailment, 2 contradiction).
    nli = datasets.Dataset.from_list([{"premise": "p", "hypothesis": "e", "label": 0},
                                      {"premise": "p", "hypothesis": "c", "label": 2}])
    assert build_pairs(nli, DataConfig(sources="x", pairs="reasoning")).negatives == ["c"]


def test_batch_plan_is_seeded_full_and_length_bucketed():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000)
    plan = BatchPlan(lengths, batch_size=16, seed=3, bucket_batches=8)
    e0, e1 = plan.epoch(0), plan.epoch(1)
    assert e0.shape == (62, 16) and len(plan) == 62
    assert np.array_equal(e0, BatchPlan(lengths, 16, seed=3, bucket_batches=8).epoch(0))
    assert not np.array_equal(e0, e1)
    assert len(np.unique(e0)) == e0.size  # no row twice in an epoch
    spread = np.mean(np.ptp(lengths[e0], axis=1))
    unbucketed = np.mean(np.ptp(lengths[BatchPlan(lengths, 16, seed=3, bucket_batches=1).epoch(0)], axis=1))
    assert spread < unbucketed / 3
    with pytest.raises(ValueError, match="do not fill one batch"):
        BatchPlan(lengths[:5], batch_size=16, seed=0)


def test_micro_batches_partition_the_global_batch():
    batch = np.arange(24)
    parts = [micro_batches(batch, r, 2, 3) for r in range(2)]
    # micro-step k over both ranks covers rows [8k, 8k+8)
    for k in range(3):
        assert np.array_equal(np.concatenate([parts[0][k], parts[1][k]]), np.arange(8 * k, 8 * k + 8))
    with pytest.raises(ValueError, match="cannot be split over 3 ranks"):
        micro_batches(batch, 0, 3, 3)


def test_sampler_resumes_at_any_position():
    plan = BatchPlan(np.arange(40), batch_size=8, seed=0, bucket_batches=2)
    full = PlanSampler(plan, rank=0, world_size=1, grad_accum=2)
    items = [x for _, x in zip(range(14), full)]
    assert [(e, s) for e, s, _ in items[::2]] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1)]
    resumed = [x for _, x in zip(range(4), PlanSampler(plan, 0, 1, 2, start_epoch=1, start_step=0))]
    for a, b in zip(items[10:], resumed):
        assert a[:2] == b[:2] and np.array_equal(a[2], b[2])


def test_rendered_batches_are_deterministic_with_hard_negatives():
    pairs = Pairs(["one two three", "four five", "six"], ["uno dos tres", "cuatro cinco", "seis"],
                  negatives=[None, "neg five", None])
    data = DataConfig(sources="x", pairs="reasoning", typo_rate=0.3)
    ds = RenderedBatches(pairs, data, RenderConfig(max_patches=16), seed=0, pad_multiple=4, keep_texts=True)
    key = (2, 5, np.array([0, 1, 2]))
    a, b = ds[key], ds[key]
    assert torch.equal(a["pixels"], b["pixels"]) and a["texts"] == b["texts"]
    assert a["n"] == 3 and a["negative_rows"].tolist() == [1]
    assert a["pixels"].shape[0] == 7 and a["mask"].shape[1] % 4 == 0
    assert a["texts"][:3] == pairs.anchors and a["texts"][6] == "neg five"
    assert a["texts"][3:6] != pairs.positives  # typos on the positive side, seeded per (epoch, row)
    assert a["targets"] == pairs.anchors + pairs.positives + ["neg five"]
    assert ds[(3, 5, np.array([0, 1, 2]))]["texts"][3:6] != a["texts"][3:6]


@pytest.mark.parametrize("kind", ["visual", "topical", "reasoning", "multilingual"])
def test_pair_rows_read_back_as_the_same_pairs_and_targets(kind):
    """What make device-pack writes for a shard (pair_rows) builds the same pairs, and the same teacher
    targets (Pairs.target_texts, the rule RenderedBatches uses), as the source it came from."""
    import datasets

    rows = {"visual": [{"text": f"sentence {i}"} for i in range(6)],
            "topical": [{"title": f"title {i}", "paragraphs": [f"para {i}a", f"para {i}b"]} for i in range(3)],
            "reasoning": [{"premise": f"p {i}", "hypothesis": f"h {i}", "label": lab}
                          for i in range(3) for lab in ("entailment", "contradiction")] + [
                {"premise": "p 9", "hypothesis": "h 9", "label": "entailment"}],
            "multilingual": [{"en": f"en {i}", "de": f"de {i}"} for i in range(4)]}[kind]
    columns = {"multilingual": {"source": "en"}}.get(kind, {})
    data = DataConfig(sources="x", pairs=kind, columns=columns, typo_rate=0.1 if kind == "visual" else 0.0)
    pairs = build_pairs(datasets.Dataset.from_list(rows), data)
    index = list(range(len(pairs)))
    again = build_pairs(datasets.Dataset.from_list(pair_rows(pairs, kind, index)),
                        dataclasses.replace(data, columns=field_columns(kind)))
    assert (again.anchors, again.positives, again.negatives) == (pairs.anchors, pairs.positives, pairs.negatives)
    assert again.target_texts(index) == pairs.target_texts(index)
    targets = pairs.target_texts(index)
    if pairs.same_meaning:   # a view or a translation is pulled to its anchor's vector
        assert targets == pairs.anchors * 2


VISUAL_TEXTS = ["A man is playing a guitar.", "The cat sits on the mat.", "Two dogs run on the grass.",
                "A woman slices an onion.", "Kids play in the park.", "The sun sets over the sea."]


def _visual_batch(key, **augment):
    pairs = Pairs(VISUAL_TEXTS, VISUAL_TEXTS, same_meaning=True)
    data = DataConfig(sources="x", pairs="visual", typo_rate=0.05, **augment)
    return RenderedBatches(pairs, data, RenderConfig(max_patches=32), seed=0, keep_texts=True)[key]


def test_augmentations_change_the_view_not_the_anchor_or_the_target():
    key = (0, 0, np.arange(len(VISUAL_TEXTS)))
    plain = _visual_batch(key)
    assert plain["texts"] == _visual_batch(key)["texts"]            # seeded
    # Off by default: the views are the typo'd views as before; on, a text kind edits the view's text...
    cased = _visual_batch(key, augment=("case",), augment_prob=1.0, augment_max_rate=0.5)
    n = len(VISUAL_TEXTS)
    assert cased["texts"][:n] == VISUAL_TEXTS and cased["targets"] == plain["targets"]
    changed = [a != b for a, b in zip(cased["texts"][n:], plain["texts"][n:])]
    assert sum(changed) >= n - 1 and all(a.lower() == b.lower() for a, b in zip(cased["texts"][n:], plain["texts"][n:]))
    # ... and an image kind its pixels, leaving the text and the anchors' pixels alone.
    for kind in ("blur", "jpeg", "low-res", "rotate", "shift"):
        seen = _visual_batch(key, augment=(kind,), augment_prob=1.0)
        assert seen["texts"] == plain["texts"]
        assert torch.equal(seen["pixels"][:n], plain["pixels"][:n])
        assert not torch.equal(seen["pixels"][n:], plain["pixels"][n:]), kind
    # A probability below 1 leaves some views as they were.
    some = _visual_batch(key, augment=("leetspeak", "split-words"), augment_prob=0.5)
    kept = [a == b for a, b in zip(some["texts"][n:], plain["texts"][n:])]
    assert 0 < sum(kept) < n


def test_shift_moves_anchors_views_and_negatives_alike_seeded_per_row():
    """data.shift_prob moves any drawing of the batch, not only the view; the texts and targets stay, and the
    same key gives the same pixels (a batch is the same in whichever worker draws it)."""
    key = (0, 0, np.arange(len(VISUAL_TEXTS)))
    n = len(VISUAL_TEXTS)
    plain = _visual_batch(key)
    moved = _visual_batch(key, shift_prob=1.0, shift_max=2.0)
    assert moved["texts"] == plain["texts"] and moved["targets"] == plain["targets"]
    assert torch.equal(moved["mask"], plain["mask"])                 # a move keeps every strip's length
    for rows in (slice(0, n), slice(n, 2 * n)):                      # anchors and views
        assert not torch.equal(moved["pixels"][rows], plain["pixels"][rows])
    assert torch.equal(moved["pixels"], _visual_batch(key, shift_prob=1.0, shift_max=2.0)["pixels"])
    some = _visual_batch(key, shift_prob=0.5, shift_max=2.0)
    same = [torch.equal(a, b) for a, b in zip(some["pixels"], plain["pixels"])]
    assert 0 < sum(same) < 2 * n
    with pytest.raises(ValueError, match="data.shift_prob=1.5, data.shift_max=1.5: use a probability"):
        DataConfig(sources="x", pairs="visual", shift_prob=1.5)


def test_augment_config_names_unknown_kinds_and_needs_a_probability():
    with pytest.raises(ValueError, match="unknown kinds \\['wobble'\\]; known: homoglyphs"):
        DataConfig(sources="x", pairs="visual", typo_rate=0.1, augment=("wobble",), augment_prob=0.5)
    with pytest.raises(ValueError, match="name kinds and a probability"):
        DataConfig(sources="x", pairs="visual", typo_rate=0.1, augment=("case",))


def test_word_spans_target_the_clean_words_and_skip_moved_boundaries():
    pairs = Pairs(["the quick brown fox jumps", "a dog"], ["the quick brown fox jumps", "a dog"], same_meaning=True)
    data = DataConfig(sources="x", pairs="visual", typo_rate=0.5)
    render = RenderConfig(max_patches=64, word_align=2)
    batch = RenderedBatches(pairs, data, render, seed=0, keep_texts=True, word_max=3)[(0, 0, np.array([0, 1]))]
    words, texts = batch["words"], batch["texts"]
    rows = words["rows"].tolist()
    assert rows.count(0) == 3 and rows.count(1) == 2            # word_max=3 words of the long row, all of the short
    # The views have typos; one that kept its word count targets the clean words at their places, one
    # whose typos moved a space gives no word rows.
    assert texts[2:] != pairs.positives
    for view, clean in zip((2, 3), pairs.positives):
        kept = len(texts[view].split()) == len(clean.split())
        targets = [w for r, w in zip(rows, words["texts"]) if r == view]
        assert (set(targets) <= set(clean.split()) and len(targets) == min(3, len(clean.split()))) if kept else not targets
    assert 3 in rows and 2 not in rows                          # this seed has one of each
    for r, a, b in zip(rows, words["start"].tolist(), words["end"].tolist()):
        assert batch["mask"][r, a:b].all() and (b - a) % 2 == 0  # whole cells of real patches
    again = RenderedBatches(pairs, data, render, seed=0, keep_texts=True, word_max=3)[(0, 0, np.array([0, 1]))]
    assert again["words"]["texts"] == words["texts"]            # the choice is seeded
    # A view whose words were split has no word rows; continuous rendering has no cells to name.
    split = RenderedBatches(pairs, DataConfig(sources="x", pairs="visual", typo_rate=0.01, augment=("split-words",), augment_prob=1.0,
                                              augment_max_rate=1.0), render, seed=0, keep_texts=True, word_max=8)
    views = split[(0, 0, np.array([0]))]
    assert views["texts"][1] != pairs.positives[0] and views["words"]["rows"].tolist() == [0] * 5
    with pytest.raises(ValueError, match="render.word_align"):
        RenderedBatches(pairs, data, RenderConfig(max_patches=64), seed=0, word_max=3)
