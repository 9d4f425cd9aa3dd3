"""Golden properties per script: bidi order, Arabic joining, Devanagari reordering, CJK and Hangul drawn."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from pixelrep.render.fonts import NO_FONT, raqm_available
from pixelrep.render.renderer import _bidi_levels, _reorder
from tests.render.helpers import SCRIPTS, SHAPED, ink_columns, needs_raqm, text_area


def visual(text: str) -> str:
    """Characters in display order per the renderer's bidi resolution (right-to-left runs reversed)."""
    levels, _ = _bidi_levels(text)
    return "".join(text[i] for i in _reorder(levels))


def best_shift(small: np.ndarray, big: np.ndarray) -> int:
    """Horizontal offset at which `small` overlaps the ink of `big` most."""
    s, b = 255 - small.astype(np.int64), 255 - big.astype(np.int64)
    pad = np.zeros((b.shape[0], s.shape[1]), np.int64)
    b = np.concatenate([pad, b, pad], axis=1)
    scores = [(s * b[:, k:k + s.shape[1]]).sum() for k in range(b.shape[1] - s.shape[1] + 1)]
    return int(np.argmax(scores)) - s.shape[1]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_script_draws_ink_from_bundled_fonts(renderer, script):
    if script in SHAPED and not raqm_available():
        pytest.skip("Pillow has no raqm here (libfribidi missing)")
    r = renderer.render(SCRIPTS[script])
    assert r.missing_glyphs == 0 and r.missing_chars == ()
    assert ink_columns(text_area(r)).size > 40


@needs_raqm
@pytest.mark.parametrize("script, font", [("arabic", "NotoSansArabic"), ("hebrew", "NotoSansHebrew"),
                                          ("devanagari", "NotoSansDevanagari"), ("thai", "NotoSansThai")])
def test_complex_scripts_shape_like_harfbuzz_on_the_whole_run(renderer, script, font):
    """Shaping in clusters / Arabic word pieces gives the ink of shaping the whole run at once."""
    text = SCRIPTS[script]
    ours = text_area(renderer.render(text))
    shaper = renderer.fonts.raqm[[n.startswith(font + "-") for n in renderer.fonts.names].index(True)]
    im = Image.new("L", (ours.shape[1] + 64, 16), 255)
    ImageDraw.Draw(im).text((2, 12), text, font=shaper, fill=0, anchor="ls")
    whole = np.asarray(im)
    ink_ours, ink_whole = (255 - ours.astype(int)).sum(), (255 - whole.astype(int)).sum()
    assert abs(ink_ours / ink_whole - 1) < 0.02
    span = lambda a: np.ptp(ink_columns(a))  # noqa: E731
    assert abs(span(ours) - span(whole)) <= 3


@needs_raqm
def test_arabic_reads_from_the_right(renderer):
    first, second = "مستقبل", "بسيط"
    both = text_area(renderer.render(f"{first} {second}"))
    alone = text_area(renderer.render(first))
    cols = ink_columns(both)
    assert cols.max() >= both.shape[1] - 4, "the ink starts at the right edge of the text area"
    # The first word sits at the right end, exactly as when rendered alone (both right-aligned).
    k = alone.shape[1] - ink_columns(alone).min()
    np.testing.assert_array_equal(both[:, -k:], alone[:, -k:])
    hebrew = text_area(renderer.render("שלום עולם"))
    hebrew_first = text_area(renderer.render("שלום"))
    k = hebrew_first.shape[1] - ink_columns(hebrew_first).min()
    np.testing.assert_array_equal(hebrew[:, -k:], hebrew_first[:, -k:])


@needs_raqm
def test_arabic_letters_are_joined(renderer):
    word = "مستقبل"  # every letter joins on both sides
    joined = ink_columns(text_area(renderer.render(word)))
    isolated = sum(np.ptp(ink_columns(text_area(renderer.render(ch)))) + 1 for ch in word)
    assert np.ptp(joined) + 1 < 0.8 * isolated, "contextual forms are narrower than isolated letters"
    assert np.diff(joined).max() == 1, "the baseline stroke connects every column"
    split = ink_columns(text_area(renderer.render("\u200c".join(word))))  # ZWNJ forbids joining
    assert np.diff(split).max() > 1


def test_bidi_order_of_mixed_text():
    assert visual("abc مرحبا 123") == "abc 123 ابحرم"
    assert visual("مرحبا abc!") == "!abc ابحرم"
    assert visual("(مرحبا)") == ")ابحرم(", "brackets of an RTL run swap places; the shaper mirrors their glyphs"
    assert visual("\u05e9\u05dc\u05d5\u05dd 2024.") == ".2024 \u05dd\u05d5\u05dc\u05e9"
    assert visual("plain text") == "plain text"


@needs_raqm
def test_devanagari_vowel_sign_i_is_drawn_before_the_consonant(renderer):
    ka = text_area(renderer.render("क"))
    ki = text_area(renderer.render("कि"))   # ि follows क in memory but is drawn to its left
    kaa = text_area(renderer.render("का"))  # ा is drawn to the right, as stored
    assert best_shift(ka, ki) >= 2, "the consonant moves right to make room for the matra"
    assert best_shift(ka, kaa) == 0
    assert ink_columns(ki).min() <= ink_columns(ka).min()


def test_cjk_kana_and_hangul_come_from_the_bundled_cjk_font(renderer):
    cjk = renderer.fonts.names.index("NotoSansCJKsc-Subset.otf")
    text = "中文字体测试漢字かなカナ한국어"
    assert all(renderer.fonts.first_font[ord(ch)] == cjk for ch in text)
    r = renderer.render(text)
    assert r.missing_glyphs == 0
    box = text_area(renderer.render("\U0001F600"))  # the placeholder, for comparison
    for ch in text:
        glyph = text_area(renderer.render(ch))
        assert (glyph < 128).sum() >= 8, ch
        assert glyph.shape != box.shape or not np.array_equal(glyph, box), ch


def test_common_characters_of_every_required_script_are_covered(renderer):
    from importlib import resources

    samples = "".join(resources.files("pixelrep.render").joinpath("samples", f"{lang}.txt").read_text("utf-8")
                      for lang in ("en", "de", "ru", "zh", "ja", "ar"))
    required = (samples + "ĞğİıŞşÇçÖöÜü ĄąĆćĘęŁłŃńÓóŚśŹźŻż ČčĎďĚěŇňŘřŠšŤťŮůŽž ΑαΒβΓγΔδΩωάέή "
                "АаБбВвЁёЖжЯяЇїЄєЎў אבגדהוזחטיכלמנסעפצקרשת ابتثجحخدذرزسشصضطظعغفقكلمنهوي "
                "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह กขคงจฉชซญดตถทนบปผพฟมยรลวศสหอฮ "
                "가나다라마바사아자차카타파하")
    uncovered = sorted({ch for ch in required if not ch.isspace() and renderer.fonts.first_font[ord(ch)] == NO_FONT})
    assert uncovered == []
