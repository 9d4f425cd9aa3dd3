"""The renderer's contract: shapes, end patch, truncation, determinism, bad input, speed-critical paths."""
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pixelrep.render import Renderer, RenderConfig, ShapingUnavailableError, clean_text
from pixelrep.render.renderer import LEFT_PAD
from tests.render.helpers import SCRIPTS, ink_columns, scripts_here, text_area

ENGLISH = ["A man is playing a guitar.", "A woman is slicing an onion.", "The quick brown fox jumps over the lazy dog!",
           "Two dogs (one black) are running through a field; it's 5 o'clock.", "Office-workers wait @ 10:30 am?"]


def test_strip_shape_background_and_end_patch(renderer):
    r = renderer.render("Hello world")
    ps = 16
    assert r.pixels.dtype == np.uint8
    assert r.pixels.shape == (ps, r.num_patches * ps)
    assert 2 <= r.num_patches <= 64
    assert (r.pixels[:, -ps:] == 0).all(), "the end patch is black"
    text = text_area(r)
    assert text.max() == 255 and text.min() < 100, "white background, dark ink"
    assert (text[0] == 255).all() and (text[:, 0] == 255).all(), "a margin of white above and on the left"
    assert not r.truncated and r.missing_glyphs == 0 and r.missing_chars == ()


def test_empty_text_is_just_the_end_patch(renderer):
    r = renderer.render("")
    assert r.num_patches == 1 and r.pixels.shape == (16, 16) and (r.pixels == 0).all() and not r.truncated
    no_eos = Renderer(RenderConfig(eos_patch=False)).render("")
    assert no_eos.num_patches == 1 and (no_eos.pixels == 255).all()


def test_text_area_drops_the_end_patch_only_where_there_is_one(renderer):
    r = renderer.render("a cat")
    assert renderer.text_area(r).shape == (16, 16 * (r.num_patches - 1)) and (renderer.text_area(r) < 255).any()
    no_eos = Renderer(RenderConfig(eos_patch=False))
    assert no_eos.text_area(no_eos.render("a cat")).shape == no_eos.render("a cat").pixels.shape


def test_patches_grow_with_text_and_stop_at_max_patches(renderer):
    short, longer = renderer.render("cat"), renderer.render("a cat sat on the mat with a hat and a bat")
    assert short.num_patches < longer.num_patches
    r = renderer.render("A very long sentence about nothing. " * 40)
    assert r.num_patches == 64 and r.truncated
    assert r.pixels.shape == (16, 64 * 16) and (r.pixels[:, -16:] == 0).all()
    assert ink_columns(text_area(r)).max() > 62 * 16, "the canvas is used to its end"
    big = Renderer(RenderConfig(max_patches=529)).render("A very long sentence about nothing. " * 30)
    assert 64 < big.num_patches < 529 and not big.truncated


def test_same_text_same_pixels_whatever_was_rendered_before(renderer):
    texts = ENGLISH + list(scripts_here().values())
    first = [renderer.render(t).pixels for t in texts]
    for t in ENGLISH:  # second sightings take the cached (baked) path
        renderer.render(t)
    fresh = Renderer(RenderConfig())
    for i in range(300):  # churn the caches of the fresh renderer
        fresh.render(f"filler{i} text{i * 7} {'x' * (i % 13)}")
    again = [fresh.render(t).pixels for t in texts]
    twice = [renderer.render(t).pixels for t in texts]
    for a, b, c in zip(first, again, twice):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_latin_matches_pillow_drawing_the_whole_line(renderer):
    """Glyph composition is what Pillow's basic layout draws, up to rounding where glyphs overlap."""
    font = renderer.fonts.basic[0]
    baseline = round(16 / 2 + 0.3 * 13.0)
    for text in ENGLISH + ["Ærøskøbing Straße ÉÈÊ façade naïve", "Ελληνικά και Кириллица"]:
        r = renderer.render(text)
        width = (r.num_patches - 1) * 16
        im = Image.new("L", (width + 100, 16), 255)
        ImageDraw.Draw(im).text((LEFT_PAD, baseline), text, font=font, fill=0, anchor="ls")
        reference = np.asarray(im)[:, :width].astype(int)
        assert np.abs(reference - text_area(r)).max() <= 2, text


def test_basic_layout_gives_identical_pixels_for_simple_scripts(renderer, basic_renderer):
    for text in ENGLISH + [SCRIPTS[k] for k in ("latin", "greek", "cyrillic", "chinese", "japanese", "korean")]:
        np.testing.assert_array_equal(renderer.render(text).pixels, basic_renderer.render(text).pixels)


@pytest.mark.parametrize("script", ["arabic", "hebrew", "devanagari", "thai"])
def test_basic_layout_refuses_text_that_needs_shaping(basic_renderer, script):
    with pytest.raises(ShapingUnavailableError, match="libfribidi"):
        basic_renderer.render("Latin first, then " + SCRIPTS[script])


def test_control_characters_are_documented_and_handled(renderer):
    assert clean_text("a\tb\nc\r\nd\u00a0e\u2028f\u3000g") == "a b c  d e f g"
    assert clean_text("a\x00b\x07c\u200bd\u00ade\ufefff\u202eg\u2066h") == "abcdefgh"
    assert clean_text("ZW\u200dJ and ZW\u200cNJ") == "ZW\u200dJ and ZW\u200cNJ", "joiners steer shaping: kept"
    assert clean_text("e\u0301") == "\u00e9", "NFC"
    same = renderer.render("tab here").pixels
    np.testing.assert_array_equal(renderer.render("tab\there").pixels, same)
    np.testing.assert_array_equal(renderer.render("tab\x00 \x1bhere\u200b").pixels, same)
    only_controls = renderer.render("\x00\x01\x02\u200b")
    assert only_controls.num_patches == 1 and only_controls.missing_glyphs == 0


@pytest.mark.parametrize("char", ["\U0001F600", "\ud800", "\udfff", "\U0010FFFD", "\u0378"])
def test_characters_no_font_has_are_drawn_as_boxes_and_counted(renderer, char):
    """Emoji, lone surrogates, private use, unassigned: a visible box each, never dropped silently."""
    without = renderer.render("ab cd")
    with_two = renderer.render(f"ab{char}cd{char}")
    assert with_two.missing_glyphs == 2 and with_two.missing_chars == (char,)
    extra = ink_columns(text_area(with_two)).size - ink_columns(text_area(without)).size
    assert extra >= 2 * 4, "each box adds ink"


def test_emoji_with_variation_selector_counts_once(renderer):
    r = renderer.render("I \u2764\ufe0f it \U0001F600\U0001F3FD")  # heart (a Symbols font) + VS16; smiley + skin tone
    assert r.missing_chars == ("\U0001F600", "\U0001F3FD") and r.missing_glyphs == 2


def test_100k_characters_are_cut_early(renderer):
    for text in ("word " * 20_000, "x" * 100_000, "中" * 100_000, "\x00" * 99_999 + "a"):
        start = time.perf_counter()
        r = renderer.render(text)
        assert time.perf_counter() - start < 0.5, "does not shape the whole text"
        assert 1 <= r.num_patches <= 64
    assert renderer.render("word " * 20_000).truncated
    assert renderer.render("\x00" * 99_999 + "a").truncated, "what lies past the cut is flagged too"
    assert not renderer.render("a" + "\x00" * 99_999).truncated, "removed characters are not text"


def test_non_str_input_is_a_type_error(renderer):
    with pytest.raises(TypeError, match="bytes"):
        renderer.render(b"bytes")
    with pytest.raises(TypeError, match=r"texts\[2\] is NoneType"):
        renderer.render_batch(["ok", "fine", None])
    with pytest.raises(ValueError, match="layout"):
        Renderer(layout="pango")


def test_other_patch_and_font_sizes():
    for cfg in (RenderConfig(patch_size=8, font_size=6.5, max_patches=16), RenderConfig(patch_size=32, font_size=26.0)):
        r = Renderer(cfg).render(" ".join(scripts_here().values()))
        assert r.pixels.shape == (cfg.patch_size, r.num_patches * cfg.patch_size)
        assert text_area(r).min() < 100


def test_custom_font_stack_by_path_and_unknown_font(tmp_path):
    from pixelrep.render.fonts import resolve_font

    path = resolve_font("NotoSans-Regular.ttf")
    r = Renderer(RenderConfig(fonts=(str(path),))).render("abc 中")
    assert r.missing_chars == ("中",), "only the fonts named are used"
    with pytest.raises(FileNotFoundError, match="NoSuchFont.ttf"):
        Renderer(RenderConfig(fonts=("NoSuchFont.ttf",)))


def test_caches_stay_bounded_and_eviction_changes_nothing(monkeypatch):
    from pixelrep.render import renderer as renderer_module

    monkeypatch.setattr(renderer_module, "CACHE_SIZE", 40)
    small = Renderer(RenderConfig())
    texts = [f"word{i} w{i * 31 % 97} {chr(0x4E00 + i)}{chr(0x4E00 + 2 * i)}" for i in range(300)]
    first = [small.render(t).pixels for t in texts]
    assert len(small._words) <= 40 and len(small._new_words) <= 40 and all(len(g) <= 40 for g in small._glyphs)
    other = Renderer(RenderConfig())  # the same texts in reverse: other evictions, same pixels
    for t, expected in reversed(list(zip(texts, first))):
        np.testing.assert_array_equal(other.render(t).pixels, expected)
