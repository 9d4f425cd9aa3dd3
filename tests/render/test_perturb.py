"""Perturbations: rates within tolerance, seeded reproducibility, what each kind of change does."""
from importlib import resources

import numpy as np
import pytest

from pixelrep.render import add_pixel_noise, add_typos, shuffle_words
from pixelrep.render.perturb import KEYBOARD_NEIGHBOURS, LOOKALIKES
from tests.render.helpers import edit_distance

SENTENCES = resources.files("pixelrep.render").joinpath("samples", "en.txt").read_text("utf-8").splitlines()[:300]


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2])
def test_typo_rate_is_edits_per_character(rate):
    rng = np.random.default_rng(0)
    edits = chars = 0
    for s in SENTENCES:
        edits += edit_distance(s, add_typos(s, rate, rng))
        chars += len(s)
    # Each chosen character makes one edit; neighbouring edits can merge, so allow a little below.
    assert abs(edits / chars - rate) <= 0.03 * rate / 0.1


def test_typos_are_reproducible_from_a_seed():
    text = SENTENCES[0]
    assert add_typos(text, 0.3, 7) == add_typos(text, 0.3, 7)
    assert len({add_typos(text, 0.3, seed) for seed in range(10)}) > 5
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [add_typos(s, 0.2, a) for s in SENTENCES[:20]] == [add_typos(s, 0.2, b) for s in SENTENCES[:20]]
    assert add_typos(text, 0.0, 1) == text


def test_typos_use_keyboard_neighbours_and_look_alikes():
    out = add_typos("a" * 3000, 1.0, 0)
    allowed = {"a"} | set(KEYBOARD_NEIGHBOURS["a"]) | set(LOOKALIKES["a"])
    assert set(out) <= allowed
    assert set(KEYBOARD_NEIGHBOURS["a"]) & set(out) and set(LOOKALIKES["a"]) & set(out)
    assert "s" in KEYBOARD_NEIGHBOURS["a"] and "0" in LOOKALIKES["o"] and "о" in LOOKALIKES["o"]  # Cyrillic о
    assert 2300 < len(out) < 3700, "inserts and deletes roughly balance"


def test_typos_in_scripts_without_a_keyboard_map_stay_in_the_script():
    out = add_typos("一个男人在弹吉他一个女人在切洋葱" * 20, 0.5, 1)
    assert all("\u4e00" <= ch <= "\u9fff" for ch in out)


def test_typo_bad_input():
    with pytest.raises(TypeError, match="str"):
        add_typos(None, 0.1, 0)
    with pytest.raises(ValueError, match="rate"):
        add_typos("abc", 1.5, 0)
    with pytest.raises(TypeError, match="rng"):
        add_typos("abc", 0.1, "seed")


def test_shuffle_words_random_and_local():
    words = [f"w{i}" for i in range(40)]
    text = " ".join(words)
    shuffled = shuffle_words(text, "random", 0)
    assert sorted(shuffled.split()) == sorted(words) and shuffled != text
    assert shuffled == shuffle_words(text, "random", 0)
    for seed in range(5):
        local = shuffle_words(text, "local", seed, window=3).split()
        assert sorted(local) == sorted(words) and local != words
        assert max(abs(local.index(w) - i) for i, w in enumerate(words)) < 3
    assert shuffle_words("一个男人在弹吉他", "random", 0) == "一个男人在弹吉他", "no spaces: nothing to shuffle"
    with pytest.raises(ValueError, match="mode"):
        shuffle_words(text, "global", 0)


def test_pixel_noise():
    pixels = np.full((16, 64), 128, np.uint8)
    noisy = add_pixel_noise(pixels, 10.0, 0)
    assert noisy.dtype == np.uint8 and noisy.shape == pixels.shape
    assert abs(float(np.std(noisy.astype(float) - 128)) - 10.0) < 1.0
    np.testing.assert_array_equal(noisy, add_pixel_noise(pixels, 10.0, 0))
    np.testing.assert_array_equal(add_pixel_noise(pixels, 0.0, 0), pixels)
    white = add_pixel_noise(np.full((4, 4), 255, np.uint8), 50.0, 1)
    assert white.max() <= 255 and white.min() >= 0
    with pytest.raises(ValueError, match="std"):
        add_pixel_noise(pixels, -1.0, 0)
