"""Visual perturbations: seeded, the requested fraction, words in order, look-alikes that look alike,
and what the renderer makes of each character kind."""
import unicodedata
from importlib import resources

import numpy as np
import pytest

from pixelrep.render import (IMAGE_PERTURBATIONS, TEXT_PERTURBATIONS, Renderer, RenderConfig, blur, clean_text, jpeg,
                             low_resolution, perturb_pixels, perturb_text, rotate_patches, shift)
from pixelrep.render.visual import BIDI_CONTROLS, COMBINING_ACCENTS, HOMOGLYPHS, LEET, MATH_STYLES, ZERO_WIDTH
from tests.render.helpers import text_area

SENTENCES = resources.files("pixelrep.render").joinpath("samples", "en.txt").read_text("utf-8").splitlines()[:300]
KINDS = list(TEXT_PERTURBATIONS)
INSERTED = {"accents": COMBINING_ACCENTS, "zero-width": ZERO_WIDTH, "bidi": BIDI_CONTROLS}


def _options(kind: str, ch: str) -> set[str]:
    """What a one-for-one kind may put in place of ch (written here from the docs, not from the code)."""
    if kind == "homoglyphs":
        return set(HOMOGLYPHS.get(ch, ""))
    if kind == "leetspeak":
        return set(LEET.get(ch, ""))
    if kind == "case":
        return {ch.swapcase()} if len(ch.swapcase()) == 1 and ch.swapcase() != ch else set()
    if kind == "fullwidth":
        return {chr(ord(ch) - 0x21 + 0xFF01)} if ch.isascii() and ch.isalnum() else set()
    if kind == "math-letters":
        if not (ch.isascii() and ch.isalpha()):
            return set()
        return {unicodedata.lookup(f"MATHEMATICAL {style} {'CAPITAL' if ch.isupper() else 'SMALL'} {ch.upper()}")
                for style in ("BOLD", "BOLD ITALIC", "SANS-SERIF", "SANS-SERIF BOLD", "SANS-SERIF ITALIC",
                              "SANS-SERIF BOLD ITALIC", "MONOSPACE")}
    raise KeyError(kind)


def _eligible_and_changed(kind: str, text: str, out: str) -> tuple[int, int]:
    """How many units the kind could change in text, and how many it changed to give out."""
    if kind == "accents":
        return sum(ch.isalpha() for ch in text), len(out) - len(text)
    if kind in ("zero-width", "bidi"):
        return len(text) - 1, len(out) - len(text)
    if kind == "split-words":
        return sum(a.isalnum() and b.isalnum() for a, b in zip(text, text[1:])), len(out) - len(text)
    if kind == "merge-words":
        return len(text.split()) - 1, len(text.split()) - len(out.split())
    return sum(bool(_options(kind, ch)) for ch in text), sum(a != b for a, b in zip(text, out))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_rate_is_the_fraction_of_eligible_units_changed(kind, rate):
    rng = np.random.default_rng(0)
    eligible = changed = 0
    for s in SENTENCES:
        e, c = _eligible_and_changed(kind, s, perturb_text(s, kind, rate, rng))
        eligible, changed = eligible + e, changed + c
    # Each eligible unit is changed with probability `rate`: within 4 binomial standard deviations.
    assert eligible > 1000
    assert abs(changed / eligible - rate) < 4 * np.sqrt(rate * (1 - rate) / eligible)


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_deterministic_and_identity_at_rate_zero(kind):
    text = SENTENCES[5]
    assert perturb_text(text, kind, 0.3, 7) == perturb_text(text, kind, 0.3, 7)
    assert len({perturb_text(text, kind, 0.3, seed) for seed in range(10)}) > 5
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [perturb_text(s, kind, 0.3, a) for s in SENTENCES[:20]] == [perturb_text(s, kind, 0.3, b) for s in SENTENCES[:20]]
    assert all(perturb_text(s, kind, 0.0, 1) == s for s in SENTENCES[:50])
    assert perturb_text("", kind, 1.0, 0) == ""


def _joins(pieces: list[str], words: list[str]) -> bool:
    """Whether consecutive pieces concatenate to the words, in order (each word from one or more pieces)."""
    it = iter(pieces)
    for word in words:
        built = ""
        while len(built) < len(word):
            built += next(it, "\0")
        if built != word:
            return False
    return next(it, None) is None


@pytest.mark.parametrize("kind", KINDS)
def test_words_keep_their_order(kind):
    for i, s in enumerate(SENTENCES[:100]):
        out = perturb_text(s, kind, 0.5, i)
        if kind == "split-words":     # each word is cut into pieces, in order
            assert _joins(out.split(), s.split())
        elif kind == "merge-words":   # neighbouring words join, in order
            assert _joins(s.split(), out.split())
        elif kind in INSERTED:        # taking the inserted characters out gives the text back
            assert "".join(ch for ch in out if ch not in INSERTED[kind]) == s
        else:                         # one character for one, each the original or one of its replacements
            assert len(out) == len(s) and all(o == c or o in _options(kind, c) for o, c in zip(out, s))


def test_split_words_splits_inside_words_only():
    out = perturb_text("guitar, 1990 a", "split-words", 1.0, 0)
    assert out == "g u i t a r, 1 9 9 0 a"
    assert perturb_text("A man plays a guitar.", "merge-words", 1.0, 0) == "Amanplaysaguitar."


def test_homoglyph_targets_are_cyrillic_or_greek_look_alikes_in_the_bundled_font():
    """Every target renders within a small pixel distance of its Latin letter (Noto Sans); unlike letters do not."""
    r = Renderer(RenderConfig(eos_patch=False))

    def distance(a: str, b: str) -> float:
        # Mean absolute grey difference over the pixels either one inks, the strips padded to one width.
        pa, pb = (r.render(x).pixels.astype(float) for x in (a, b))
        width = max(pa.shape[1], pb.shape[1])
        both = np.full((2, pa.shape[0], width), 255.0)
        both[0, :, :pa.shape[1]], both[1, :, :pb.shape[1]] = pa, pb
        ink = (both < 255).any(axis=0)
        return float(np.abs(both[0] - both[1])[ink].mean())

    pairs = [(src, dst) for src, targets in HOMOGLYPHS.items() for dst in targets]
    assert len(pairs) >= 40
    for src, dst in pairs:
        assert src.isascii() and src.isalpha()
        assert unicodedata.name(dst).split()[0] in ("CYRILLIC", "GREEK"), dst
        assert distance(src, dst) <= 8, (src, dst, distance(src, dst))
    # The check tells letters apart: the closest unlike pairs are far above the bound.
    assert min(distance(a, b) for a, b in [("a", "o"), ("e", "c"), ("l", "I"), ("n", "h"), ("K", "К")]) > 15


def test_each_kind_in_table_form():
    assert perturb_text("a", "homoglyphs", 1.0, 0) == "а" and perturb_text("o", "leetspeak", 1.0, 0) == "0"
    assert perturb_text("Az9", "fullwidth", 1.0, 0) == "Ａｚ９"
    assert perturb_text("aB", "case", 1.0, 0) == "Ab" and perturb_text("ß", "case", 1.0, 0) == "ß"
    assert {perturb_text("a", "math-letters", 1.0, s) for s in range(200)} == {chr(small) for _, small in MATH_STYLES}
    assert {perturb_text("e", "accents", 1.0, s) for s in range(200)} == {"e" + m for m in COMBINING_ACCENTS}


@pytest.mark.parametrize("word_align", [0, 3])
def test_what_the_renderer_does_to_each_kind(word_align):
    """The module docstring of pixelrep.render.visual, asserted."""
    r = Renderer(RenderConfig(word_align=word_align, max_patches=128))
    texts = SENTENCES[:40]
    clean = [r.render(s) for s in texts]

    def rendered(kind, rate=0.5):
        return [(s, perturb_text(s, kind, rate, i), r.render(perturb_text(s, kind, rate, i))) for i, s in enumerate(texts)]

    def same(a, b):
        return a.pixels.shape == b.pixels.shape and np.array_equal(a.pixels, b.pixels)

    # Zero-width characters and bidi controls: removed (ZWJ/ZWNJ kept, never drawn): the same pixels.
    for s, out, img in rendered("zero-width"):
        assert clean_text(out) == "".join(ch for ch in out if ch in "\u200c\u200d" or ch not in ZERO_WIDTH)
    assert all(same(img, c) for (_, _, img), c in zip(rendered("zero-width"), clean))
    assert all(clean_text(out) == s for s, out, _ in rendered("bidi"))
    assert all(same(img, c) for (_, _, img), c in zip(rendered("bidi"), clean))
    # Accents: NFC composes some (e + acute -> é) and keeps others as base + mark; the pixels change either way.
    accented = rendered("accents")
    assert any(len(clean_text(out)) < len(out) for _, out, _ in accented)
    assert any(unicodedata.combining(ch) for _, out, _ in accented for ch in clean_text(out))
    assert all(not same(img, c) for (_, _, img), c in zip(accented, clean))
    for mark in COMBINING_ACCENTS:
        for base in "aentxAT":
            assert not same(r.render(f"m{base}{mark}n"), r.render(f"m{base}n")), (base, mark)
    # Homoglyphs: kept by the cleaning, drawn with the Latin letters' outlines.
    for (s, out, img), c in zip(rendered("homoglyphs"), clean):
        assert clean_text(out) == out != s
        assert img.pixels.shape == c.pixels.shape and np.abs(img.pixels.astype(int) - c.pixels).mean() < 1
    # Fullwidth letters: kept (NFC, not NFKC), drawn from the CJK font, wider.
    for (s, out, img), c in zip(rendered("fullwidth"), clean):
        assert clean_text(out) == out and img.missing_glyphs == 0 and img.num_patches > c.num_patches
    # Mathematical letters: no bundled font has them: hollow boxes, counted.
    for s, out, img in rendered("math-letters"):
        changed = sum(a != b for a, b in zip(s, out))
        assert img.missing_glyphs == changed and clean_text(out) == out
    # Leetspeak, case, split and merged words are plain text, drawn as written.
    for kind in ("leetspeak", "case", "split-words", "merge-words"):
        assert all(not same(img, c) for (s, out, img), c in zip(rendered(kind), clean) if out != s)


def test_image_kinds_keep_shape_and_dtype_and_identity_levels():
    r = Renderer(RenderConfig(word_align=3))
    strip = text_area(r.render("A man is playing a guitar on stage."))
    for kind, (fn, keyword) in IMAGE_PERTURBATIONS.items():
        for level in {"sigma": (0.5, 1.5), "quality": (50, 10), "scale": (0.75, 0.35), "degrees": (3, 10),
                      "offset": (0.5, 2.0)}[keyword]:
            out = perturb_pixels(strip, kind, level, rng=0)
            assert out.dtype == np.uint8 and out.shape == strip.shape, (kind, level)
            assert not np.array_equal(out, strip), (kind, level)
    # Level 0 where the kind has one: unchanged (JPEG has none: no quality is lossless).
    for out in (blur(strip, sigma=0), low_resolution(strip, scale=1), rotate_patches(strip, degrees=0, rng=0),
                shift(strip, offset=0, rng=0)):
        np.testing.assert_array_equal(out, strip)
    # Stronger levels change more; a rotation is seeded; white paper stays white.
    change = [np.abs(blur(strip, sigma=s).astype(int) - strip).mean() for s in (0.5, 1.0, 1.5)]
    assert change == sorted(change)
    change = [np.abs(low_resolution(strip, scale=s).astype(int) - strip).mean() for s in (0.75, 0.5, 0.35)]
    assert change == sorted(change)
    np.testing.assert_array_equal(rotate_patches(strip, 6, rng=3), rotate_patches(strip, 6, rng=3))
    assert not np.array_equal(rotate_patches(strip, 6, rng=3), rotate_patches(strip, 6, rng=4))
    blank = np.full((16, 64), 255, np.uint8)
    assert rotate_patches(blank, 10, rng=0).min() == 255 and jpeg(blank, quality=10).min() >= 250


def test_shift_moves_the_ink_by_the_offset():
    """Whole pixels along an axis move the ink exactly; a fraction spreads each column's ink over two
    neighbours in proportion; the total ink stays while it is away from the edges; the direction is seeded."""
    from pixelrep.render.visual import _move

    strip = np.full((16, 48), 255, np.uint8)
    strip[4:12, 10:13] = 0                               # a 3 px stroke, 8 px tall, away from the edges
    ink = 255 - strip.astype(np.float32)
    np.testing.assert_array_equal(_move(ink, 2.0, axis=1)[:, 12:15], ink[:, 10:13])
    np.testing.assert_array_equal(_move(ink, -1.0, axis=0)[3:11], ink[4:12])
    half = _move(ink, 0.5, axis=1)[4:12]
    assert np.allclose(half[:, 10], 127.5) and np.allclose(half[:, 11:13], 255) and np.allclose(half[:, 13], 127.5)
    for seed in range(20):
        moved = 255 - shift(strip, 2.0, rng=seed).astype(int)
        assert abs(moved.sum() - ink.sum()) <= 0.01 * ink.sum(), seed
    np.testing.assert_array_equal(shift(strip, 1.0, rng=3), shift(strip, 1.0, rng=3))
    assert not np.array_equal(shift(strip, 1.0, rng=3), shift(strip, 1.0, rng=4))
    paper = np.full((16, 32), 255, np.uint8)
    np.testing.assert_array_equal(shift(paper, 1.5, rng=0), paper)


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="unknown text perturbation 'homoglyph'; known: homoglyphs, accents"):
        perturb_text("abc", "homoglyph", 0.1, 0)
    with pytest.raises(ValueError, match="unknown image perturbation 'gauss'; known: blur, jpeg, low-res, rotate, shift"):
        perturb_pixels(np.zeros((16, 16), np.uint8), "gauss", 1.0)
    with pytest.raises(ValueError, match=r"rate=1.5: use the fraction"):
        perturb_text("abc", "leetspeak", 1.5, 0)
    with pytest.raises(TypeError, match="add_homoglyphs\\(\\) takes a str"):
        perturb_text(None, "homoglyphs", 0.1, 0)
    with pytest.raises(ValueError, match="quality"):
        jpeg(np.zeros((16, 16), np.uint8), quality=0)
    with pytest.raises(ValueError, match="16 px tall"):
        rotate_patches(np.zeros((16, 20), np.uint8), 3)
    with pytest.raises(ValueError, match="uint8 grey strip"):
        blur(np.zeros((16, 16), np.float32), sigma=1.0)
    with pytest.raises(ValueError, match="shift offset=-1: use a non-negative distance"):
        shift(np.zeros((16, 16), np.uint8), -1)
