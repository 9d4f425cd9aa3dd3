"""Snapping strips drawn off the pixel grid back onto it (pixelrep.render.grid, RenderConfig.snap_to_grid):
moved strips come back as drawn, strips on the grid and blurred ones are left alone, and encode() never snaps."""
import dataclasses

import numpy as np
import pytest
import torch

from pixelrep import ModelConfig, PixelEncoder
from pixelrep.render import GridSnapper, Renderer, RenderConfig, perturb_rendered
from pixelrep.render.grid import estimate_fraction
from pixelrep.render.visual import _move
from tests.render.helpers import text_area

SENTENCES = ["A man is playing a large flute.", "Two dogs run through the snow near a red barn.",
             "The stock market fell sharply on Tuesday after the report."]


@pytest.fixture(scope="module")
def snapper(aligned) -> GridSnapper:
    return GridSnapper(aligned)


def _text_ink(rendered) -> np.ndarray:
    return 255.0 - text_area(rendered).astype(np.float64)


@pytest.mark.parametrize("sentence", SENTENCES)
def test_a_strip_on_the_grid_is_left_as_it_is(aligned, snapper, sentence):
    rendered = aligned.render(sentence)
    assert snapper(rendered) is rendered


@pytest.mark.parametrize("dx, dy", [(0.3, 0.0), (0.0, -0.4), (-0.35, 0.35), (0.5, 0.0), (0.8, -0.6), (-1.6, 0.7)])
def test_a_moved_strip_comes_back_as_drawn(aligned, snapper, dx, dy):
    for sentence in SENTENCES:
        rendered = aligned.render(sentence)
        ink = _move(_move(_text_ink(rendered), dx, 1), dy, 0)
        moved = rendered.pixels.copy()
        moved[:, :ink.shape[1]] = (255.0 - np.rint(ink)).clip(0, 255).astype(np.uint8)
        moved_error = np.abs(moved.astype(int) - rendered.pixels).mean()
        back = snapper(dataclasses.replace(rendered, pixels=moved)).pixels
        assert moved_error > 3                                      # the move changed the strip
        assert np.abs(back.astype(int) - rendered.pixels).mean() < 0.5, (sentence, dx, dy)


def test_the_fraction_is_found_on_each_axis(aligned):
    ink = _text_ink(aligned.render(SENTENCES[1]))
    for fraction in (0.1, 0.15, 0.3, 0.5, 0.65, 0.9):
        for axis in (1, 0):
            moved = np.rint(_move(ink, fraction, axis))             # whole grey levels, as an image holds them
            assert estimate_fraction(moved, axis) == pytest.approx(fraction, abs=0.02), (fraction, axis)
    assert estimate_fraction(ink, 1) == 0.0 and estimate_fraction(ink, 0) == 0.0


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_a_blurred_strip_is_not_taken_for_a_moved_one(aligned, snapper, sigma):
    rendered = aligned.render(SENTENCES[0])
    blurred = perturb_rendered(rendered, "blur", sigma)
    assert snapper(blurred) is blurred
    assert not np.array_equal(blurred.pixels, rendered.pixels)


def test_the_random_shift_kind_is_undone(aligned, snapper):
    rendered = aligned.render(SENTENCES[2])
    for seed in range(4):
        moved = perturb_rendered(rendered, "shift", 0.5, rng=seed)
        assert np.abs(snapper(moved).pixels.astype(int) - rendered.pixels).mean() < 0.5


def test_snap_to_grid_must_be_a_bool():
    with pytest.raises(ValueError, match="snap_to_grid"):
        RenderConfig(snap_to_grid="yes")


def test_the_encoder_snaps_images_only(tmp_path):
    torch.manual_seed(0)
    render = RenderConfig(max_patches=64, word_align=3, snap_to_grid=True)
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=3), render)
    clean = encoder.renderer.render(SENTENCES[0])
    moved = perturb_rendered(clean, "shift", 0.5, rng=1)
    encoder.encode(SENTENCES, precision="fp32")
    assert encoder._snapper is None                          # encode()'s own strips are on the grid
    reference = encoder.embed_rendered([clean], precision="fp32")
    snapped = encoder.embed_rendered([moved], precision="fp32")
    as_given = encoder.embed_rendered([moved], precision="fp32", snap_to_grid=False)
    assert torch.dist(snapped, reference) < 0.1 * torch.dist(as_given, reference)
    encoder.save_pretrained(tmp_path / "m")
    assert PixelEncoder.from_pretrained(tmp_path / "m").render_config.snap_to_grid is True


def test_encode_images_reads_a_strip_as_encode_reads_its_text():
    torch.manual_seed(0)
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=3),
                           RenderConfig(max_patches=64, word_align=3, snap_to_grid=True))
    clean = encoder.renderer.render(SENTENCES[1])
    strip = text_area(clean)
    from PIL import Image
    from_text = encoder.encode([SENTENCES[1]], precision="fp32")
    from_image = encoder.encode_images([strip, Image.fromarray(strip)], precision="fp32")
    assert np.allclose(from_image, from_text, atol=1e-5)
    moved = perturb_rendered(clean, "shift", 0.5, rng=2).pixels[:, :strip.shape[1]]
    snapped, as_given = (encoder.encode_images([moved], precision="fp32", snap_to_grid=snap) for snap in (None, False))
    assert np.abs(snapped - from_text).max() < 0.1 * np.abs(as_given - from_text).max()
    with pytest.raises(ValueError, match="image 1: expected a grey uint8 strip 16 pixels tall"):
        encoder.encode_images([strip, np.zeros((32, 64), dtype=np.uint8)])
    with pytest.warns(UserWarning, match="1 of 1 inputs were longer"):
        assert encoder.encode_images([np.full((16, 16 * 100), 255, dtype=np.uint8)]).shape == (1, encoder.embedding_dim)
