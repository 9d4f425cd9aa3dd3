"""The visual suite end to end: its tasks, image kinds through a pixel model only, the table and the figure."""
import json

import numpy as np
import pytest

from pixelrep import ModelConfig, PixelEncoder, RenderConfig
from pixelrep.eval.report import text_report
from pixelrep.eval.runner import run_sts
from pixelrep.eval.sts import PerturbedPixelEncoder, evaluate_sts
from pixelrep.eval.suites import (IMAGE_NOT_APPLICABLE, VISUAL_IMAGE_LEVELS, VISUAL_KINDS, LocalSource, build_plan)
from pixelrep.render import IMAGE_PERTURBATIONS, TEXT_PERTURBATIONS
from pixelrep.render.visual import LAYOUT_PERTURBATIONS
from tests.eval.helpers import HashingEncoder, stsb_rows


@pytest.fixture(scope="module")
def tiny() -> PixelEncoder:
    """A pixel model built in-process (random weights): image kinds need one, and it is fast."""
    import torch

    torch.manual_seed(0)
    return PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64), RenderConfig(max_patches=64))


def test_plan_has_every_kind_at_every_rate_seeded(sts_dir):
    assert set(VISUAL_KINDS) == set(TEXT_PERTURBATIONS) | set(IMAGE_PERTURBATIONS) | set(LAYOUT_PERTURBATIONS) == (
        set(TEXT_PERTURBATIONS) | set(VISUAL_IMAGE_LEVELS))
    plan = build_plan("visual", LocalSource(sts_dir), seed=7, visual_rates=(0.1, 0.3))
    tasks = {t.name: t for t in plan.tasks}
    assert list(tasks)[0] == "clean" and len(tasks) == 1 + 2 * len(TEXT_PERTURBATIONS) + 3 * len(VISUAL_IMAGE_LEVELS)
    clean = tasks["clean"].data
    assert clean.sentence1 == [r["sentence1"] for r in stsb_rows("en")]
    homoglyphs = tasks["homoglyphs 0.3"]
    assert (homoglyphs.perturbation, homoglyphs.level, homoglyphs.on_pixels) == ("homoglyphs", 0.3, False)
    # Both sentences of the pairs are perturbed; gold scores and row numbers stay.
    assert homoglyphs.data.sentence1 != clean.sentence1 and homoglyphs.data.sentence2 != clean.sentence2
    np.testing.assert_array_equal(homoglyphs.data.score, clean.score)
    # Image kinds keep the text: the encoder perturbs the rendering.
    blur = tasks["blur 1"]
    assert blur.on_pixels and blur.data.sentence1 == clean.sentence1 and blur.seed == 7
    assert [s.name for s in plan.summaries] == [f"drop @ {t}" for t in list(tasks)[1:]]
    again = build_plan("visual", LocalSource(sts_dir), seed=7, visual_rates=(0.1, 0.3))
    other = build_plan("visual", LocalSource(sts_dir), seed=8, visual_rates=(0.1, 0.3))
    assert [t.data.sentence1 for t in again.tasks] == [t.data.sentence1 for t in plan.tasks]
    assert [t.data.sentence1 for t in other.tasks] != [t.data.sentence1 for t in plan.tasks]


def test_bad_kinds_and_rates_name_the_known_ones(sts_dir):
    with pytest.raises(ValueError, match="unknown visual perturbation kind.*'homoglyph'.*known: homoglyphs, accents"):
        build_plan("visual", LocalSource(sts_dir), visual_kinds=("homoglyph",))
    with pytest.raises(ValueError, match=r"visual rates \[0\.0\]"):
        build_plan("visual", LocalSource(sts_dir), visual_rates=(0.0,))


def test_perturbed_pixel_encoder_is_encode_when_nothing_changes(tiny):
    sentences = ["A man plays a guitar.", "A much longer sentence about a woman slicing an onion.", ""]
    expected = tiny.encode(sentences, normalize=False, precision="fp32")
    same = PerturbedPixelEncoder(tiny, kind="blur", level=0.0).encode(sentences, batch_size=2, precision="fp32")
    np.testing.assert_allclose(same, expected, atol=1e-5)
    blurred = PerturbedPixelEncoder(tiny, kind="blur", level=1.5).encode(sentences)
    assert not np.allclose(blurred[:2], expected[:2], atol=1e-3)
    # A sentence's draws depend on it and the seed alone, not on its batch or neighbours.
    rotate = PerturbedPixelEncoder(tiny, kind="rotate", level=10, seed=3)
    np.testing.assert_allclose(rotate.encode(sentences[::-1], batch_size=1, precision="fp32")[::-1],
                               rotate.encode(sentences, precision="fp32"), atol=1e-5)
    # The end patch stays as drawn; only the text patches change.
    clean, low = tiny.renderer.render(sentences[0]), PerturbedPixelEncoder(tiny, kind="low-res", level=0.5).render(sentences[0])
    np.testing.assert_array_equal(low.pixels[:, -16:], clean.pixels[:, -16:])
    assert low.num_patches == clean.num_patches and not np.array_equal(low.pixels, clean.pixels)
    with pytest.raises(ValueError, match="unknown image perturbation 'gauss'; known: blur.*continuous"):
        PerturbedPixelEncoder(tiny, kind="gauss", level=1.0)


def test_the_layout_kind_draws_continuous_text_and_reads_it_as_an_image():
    import torch

    torch.manual_seed(0)
    aligned = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=3),
                           RenderConfig(max_patches=64, word_align=3))
    sentences = ["A young child is riding a horse.", "Two dogs run through the snow."]
    continuous = PerturbedPixelEncoder(aligned, kind="continuous", level=0.0)
    drawing = continuous.render(sentences[0])
    assert not np.array_equal(drawing.pixels[:, :-16], aligned.renderer.render(sentences[0]).pixels[:, :drawing.pixels.shape[1] - 16])
    # Laid out in the model's cells again, the continuous drawing reads as the text does.
    np.testing.assert_allclose(continuous.encode(sentences, precision="fp32"),
                               aligned.encode(sentences, normalize=False, precision="fp32"), atol=1e-5)
    moved = PerturbedPixelEncoder(aligned, kind="continuous", level=1.0, seed=1).render(sentences[0])
    assert not np.array_equal(moved.pixels, drawing.pixels)


def test_visual_suite_end_to_end(sts_dir, tmp_path, tiny):
    models = {"tiny": tiny, "text": HashingEncoder()}
    results = run_sts(models, suite="visual", data_dir=sts_dir, out_dir=tmp_path, progress=False, seed=3)
    pixel, text = results["models"]
    n_tasks = 1 + 3 * len(TEXT_PERTURBATIONS) + 3 * len(VISUAL_IMAGE_LEVELS)
    assert len(pixel["results"]) == len(text["results"]) == n_tasks
    by_task = {r["task"]: r for r in text["results"]}
    # Image kinds: n/a for a text model, scored for the pixel model, with their drop from clean.
    assert by_task["jpeg 20"]["spearman"] is None and by_task["jpeg 20"]["not_applicable"] == IMAGE_NOT_APPLICABLE
    assert all(r["spearman"] is not None for r in pixel["results"])
    assert "drop @ jpeg 20" in {s["name"] for s in pixel["summaries"]} - {s["name"] for s in text["summaries"]}
    # The clean row is the plain STS-B score of each model.
    clean = LocalSource(sts_dir).get("stsb", "en", "test")
    for model, run in zip(models.values(), results["models"]):
        expected = evaluate_sts(model, clean.sentence1, clean.sentence2, clean.score)["spearman"]
        assert run["results"][0]["task"] == "clean" and run["results"][0]["spearman"] == pytest.approx(expected, abs=1e-6)
    # The zero-width kind cannot change what a pixel model reads (the renderer drops or ignores it).
    pixel_by_task = {r["task"]: r for r in pixel["results"]}
    assert pixel_by_task["zero-width 0.5"]["spearman"] == pytest.approx(pixel_by_task["clean"]["spearman"], abs=1e-6)
    # The table: a row per kind and rate with the change from clean, n/a for text models on image kinds.
    report = text_report(results)
    drop = next(s["spearman"] for s in pixel["summaries"] if s["name"] == "drop @ homoglyphs 0.3")
    assert f"| homoglyphs | 0.3 | 8 | {pixel_by_task['homoglyphs 0.3']['spearman']:.2f} ({-drop:+.2f}) |" in report
    assert f"| blur | sigma 1 | 8 | {pixel_by_task['blur 1']['spearman']:.2f} (" in report and "| n/a |" in report
    assert "| suite | task |" not in report      # no other suite ran: only the visual table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["visual_rates"] == [0.1, 0.3, 0.5] and saved["config"]["visual_image_levels"] == {
        k: list(v) for k, v in VISUAL_IMAGE_LEVELS.items()}
    assert (tmp_path / "results.md").read_text().strip() == report.strip()
    for figure in ("visual.png", "sts.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_visual_beside_other_suites_keeps_both_tables(sts_dir, tmp_path):
    results = run_sts({"m": HashingEncoder()}, suite=["stsb-multi", "visual"], data_dir=sts_dir, progress=False,
                      visual_kinds=("leetspeak", "rotate"), visual_rates=(0.3,), out_dir=tmp_path)
    report = text_report(results)
    assert "| stsb-multi | en | 8 |" in report and "| visual |" not in report   # visual rows only in their table
    assert "| leetspeak | 0.3 | 8 |" in report and "| rotate | degrees 3 | 8 | n/a |" in report
    assert [r["task"] for r in results["models"][0]["results"] if r["suite"] == "visual"] == [
        "clean", "leetspeak 0.3", "rotate 3", "rotate 6", "rotate 10"]
    assert (tmp_path / "visual.png").is_file()
