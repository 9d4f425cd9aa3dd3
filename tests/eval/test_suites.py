"""Suite assembly from a --data-dir folder: tasks, alignment, skipped data, summaries, robustness."""
import numpy as np
import pytest

from pixelrep.eval.suites import (STSB_LANGS, HubSource, LocalSource, build_plan, evaluate_plan, expand_suites,
                                  summarize_results, Summary)
from tests.eval.helpers import BASE_PAIRS, stsb_rows


def _names(plan, suite):
    return [t.name for t in plan.tasks if t.suite == suite]


def test_english_suite_concatenates_subsets_per_year(sts_dir):
    plan = build_plan("english", LocalSource(sts_dir))
    assert _names(plan, "english") == ["sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"]
    sts12 = plan.tasks[0].data
    assert len(sts12) == 5 + 5                                  # headlines.jsonl + MSRvid.jsonl ("all" setting)
    assert sts12.sentence1[5] == BASE_PAIRS[3][0]               # files in name order: MSRvid, then headlines
    assert plan.missing == []
    assert [s.name for s in plan.summaries] == ["avg"] and len(plan.summaries[0].tasks) == 7


def test_absent_data_is_skipped_with_reason_not_faked(sts_dir):
    plan = build_plan(["stsb-multi", "sts17"], LocalSource(sts_dir))
    assert _names(plan, "stsb-multi") == ["en", "de", "ja"]
    missing = {(m["suite"], m["task"]): m["reason"] for m in plan.missing}
    assert set(missing) == {("stsb-multi", lang) for lang in STSB_LANGS if lang not in ("en", "de", "ja")} | {
        ("sts17", p) for p in ("ar-ar", "es-es", "en-ar", "en-tr", "es-en", "fr-en", "it-en", "nl-en")}
    assert "no folder" in missing[("stsb-multi", "fr")] and str(sts_dir / "stsb" / "fr") in missing[("stsb-multi", "fr")]
    assert str(sts_dir / "sts17" / "en-tr") in missing[("sts17", "en-tr")]


def test_crosslingual_pairs_are_aligned_in_both_directions(sts_dir):
    plan = build_plan("crosslingual", LocalSource(sts_dir))
    assert _names(plan, "crosslingual") == ["en-de", "de-en", "en-ja", "ja-en", "sts17 en-de"]
    tasks = {t.name: t.data for t in plan.tasks}
    en, de = stsb_rows("en"), stsb_rows("de")
    assert tasks["en-de"].sentence1 == [r["sentence1"] for r in en]
    assert tasks["en-de"].sentence2 == [r["sentence2"] for r in de]
    assert tasks["de-en"].sentence1 == [r["sentence1"] for r in de]
    assert tasks["de-en"].sentence2 == [r["sentence2"] for r in en]
    np.testing.assert_array_equal(tasks["ja-en"].score, [r["score"] for r in en])


def test_crosslingual_rejects_misaligned_translation(sts_dir):
    (sts_dir / "stsb" / "de" / "test.jsonl").write_text("".join(
        line + "\n" for line in (sts_dir / "stsb" / "de" / "test.jsonl").read_text().splitlines()[:-1]))
    with pytest.raises(ValueError, match="8 vs 7 rows"):
        build_plan("crosslingual", LocalSource(sts_dir))


def test_limit_and_all(sts_dir):
    plan = build_plan("all", LocalSource(sts_dir), limit=3, typo_rates=())
    assert {t.suite for t in plan.tasks} == {"english", "stsb-multi", "crosslingual", "sts17", "robustness", "visual"}
    assert all(len(t.data) == 3 for t in plan.tasks)
    # Spread over each set (its first rows are one genre): the first, middle and last of 8 STS-B rows.
    stsb_en = next(t.data for t in plan.tasks if (t.suite, t.name) == ("stsb-multi", "en"))
    assert list(stsb_en.rows) == [0, 4, 7] and stsb_en.score.tolist() == [4.8, 0.0, 5.0]
    with pytest.raises(ValueError, match="unknown suite 'englsh'"):
        expand_suites("englsh")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        LocalSource(sts_dir / "nope")


def test_summaries_mean_and_drop():
    results = [dict(suite="s", task=t, spearman=v, pearson=v / 2) for t, v in [("a", 80.0), ("b", 60.0)]]
    out = summarize_results([Summary("s", "avg", ("a", "b", "c")), Summary("s", "d", ("a", "b"), kind="drop"),
                             Summary("s", "none", ("x",))], results)
    assert [(o["name"], o["spearman"], o["pearson"], o["complete"]) for o in out] == [
        ("avg", 70.0, 35.0, False), ("d", 20.0, 10.0, True)]


def test_evaluate_plan_scores_every_task(sts_dir, encoder):
    plan = build_plan(["english", "crosslingual"], LocalSource(sts_dir))
    run = evaluate_plan(encoder, plan, progress=False)
    assert [(r["suite"], r["task"]) for r in run.results] == [(t.suite, t.name) for t in plan.tasks]
    assert all(-100 <= r["spearman"] <= 100 and r["n"] == len(t.data) for r, t in zip(run.results, plan.tasks))
    # Each distinct sentence reaches the model once over the whole plan.
    encoded = [s for call in encoder.calls for s in call]
    assert len(encoded) == len(set(encoded))


def test_hub_source_offline_is_skipped_with_reason():
    plan = build_plan("english", HubSource())                     # conftest sets HF offline
    assert plan.tasks == [] and len(plan.missing) == 7
    # The fix (--data-dir) is said once by the report or the final error, not in each of the 7 reasons.
    assert "mteb/sts12-sts" in plan.missing[0]["reason"] and "--data-dir" not in plan.missing[0]["reason"]


def _add_typos_or_skip():
    try:
        from pixelrep.render import add_typos  # noqa: F401
    except ImportError:
        pytest.skip("pixelrep.render.add_typos not available yet")


def test_robustness_typos_are_deterministic_per_seed(sts_dir):
    _add_typos_or_skip()
    source = LocalSource(sts_dir)
    plan = build_plan("robustness", source, seed=7)
    assert _names(plan, "robustness") == ["clean", "typos 0.05", "typos 0.1", "typos 0.2"]
    assert [s.name for s in plan.summaries] == ["drop @ typos 0.05", "drop @ typos 0.1", "drop @ typos 0.2"]
    clean = plan.tasks[0].data
    assert clean.sentence1 == [r["sentence1"] for r in stsb_rows("en")]
    again = build_plan("robustness", source, seed=7)
    other = build_plan("robustness", source, seed=8)
    for a, b, c in zip(plan.tasks[1:], again.tasks[1:], other.tasks[1:]):
        assert a.data.sentence1 == b.data.sentence1 and a.data.sentence2 == b.data.sentence2
        np.testing.assert_array_equal(a.data.score, clean.score)
    heavy = plan.tasks[-1].data
    assert heavy.sentence1 != clean.sentence1 and heavy.sentence2 != clean.sentence2   # both sides perturbed
    assert plan.tasks[-1].data.sentence1 != other.tasks[-1].data.sentence1            # seed matters
