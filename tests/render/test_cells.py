"""Laying a line drawn as continuous text out in a word-aligned renderer's cells (pixelrep.render.cells): the
renderer's own continuous drawings come out as its word-aligned ones, strips already in cells are left alone, and
encode_images reads a continuous line as encode() reads its text."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from pixelrep import ModelConfig, PixelEncoder
from pixelrep.render import Renderer, RenderConfig, perturb_rendered
from pixelrep.render.cells import CellAligner, aligner_for, glyph_set_characters
from pixelrep.render.grid import GridSnapper
from pixelrep.render.visual import _move
from tests.render.helpers import needs_raqm, text_area

# Slanted letters across a space ("A young", "y, w"), digits whose side bearings leave wide gaps inside a
# number ("11"), punctuation and quotes at word edges.
SENTENCES = ["A young child is riding a horse.", "A woman is slicing an onion, very slowly.",
             "The dollar was at 116.92 yen, flat on the session.", 'He said: "It\'s a huge black eye."',
             "After 9/11, agents spent 1,650 hours on it.", "Two dogs run through the snow near a red barn."]


@pytest.fixture(scope="module")
def aligner(aligned) -> CellAligner:
    return aligner_for(aligned.config)


@pytest.mark.parametrize("sentence", SENTENCES)
def test_a_continuous_line_is_laid_out_as_the_renderer_lays_out_its_words(aligned, aligner, sentence):
    continuous = Renderer(dataclasses.replace(aligned.config, word_align=0))
    line = text_area(continuous.render(sentence))
    assert not aligner.in_cells(line)
    assert np.array_equal(aligner(line), text_area(aligned.render(sentence)))


def test_strips_in_cells_are_left_alone_even_moved_by_whole_pixels(aligned, aligner):
    for sentence in SENTENCES:
        strip = text_area(aligned.render(sentence))
        assert aligner(strip) is strip
        for pixels in (-2, 1, 3):
            moved = (255 - _move(255.0 - strip, pixels, 1)).astype(np.uint8)
            assert aligner.in_cells(moved), (sentence, pixels)
    blank = np.full((16, 96), 255, dtype=np.uint8)
    assert aligner(blank) is blank and aligner.lay_out(blank).shape == (16, 0)


# Chinese and Japanese, with Latin words, digits and CJK punctuation among them; "丟" is outside GLYPH_SETS.
CJK_SENTENCES = ["一个男人在弹吉他。", "男性がギターを弾いています。", "我用Python 3写了一个程序，运行了20分钟。",
                 "他丟了書。", "「東京」は日本の首都です、と彼は言った。"]


@pytest.mark.parametrize("sentence", CJK_SENTENCES)
def test_chinese_and_japanese_lines_are_laid_out_a_character_per_cell(aligned, aligner, sentence):
    continuous = Renderer(dataclasses.replace(aligned.config, word_align=0))
    line = text_area(continuous.render(sentence))
    assert np.array_equal(aligner(line), text_area(aligned.render(sentence)))
    in_cells = text_area(aligned.render(sentence))
    assert aligner(in_cells) is in_cells
    # Two characters to a cell, as a renderer with chunk_chars=2 cuts their runs (the tables do not depend on it).
    pairs = copy.copy(aligner)
    pairs.chunk = 2
    assert np.array_equal(pairs(line), text_area(Renderer(dataclasses.replace(aligned.config, chunk_chars=2)).render(sentence)))


@pytest.mark.parametrize("sentence", ["한 남자가 기타를 치고 있다.", "나는 Python 3으로 프로그램을 썼다."])
def test_korean_lines_are_laid_out_as_the_renderer_lays_out_its_words(aligned, aligner, sentence):
    continuous = Renderer(dataclasses.replace(aligned.config, word_align=0))
    assert np.array_equal(aligner(text_area(continuous.render(sentence))), text_area(aligned.render(sentence)))


# Right to left, with numbers and a Latin word inside, and an Arabic word inside an English line.
@needs_raqm
@pytest.mark.parametrize("sentence", ["رجل يعزف على الغيتار", "كلمة السر الرئيسية غير صحيحة.", "اضغط على Ctrl ثم اختر 3 ملفات.",
                                      "في عام 2024 زار 15 مدينة.", "The word سلام means peace."])
def test_arabic_words_are_laid_out_in_reading_order(aligned, aligner, sentence):
    continuous = Renderer(dataclasses.replace(aligned.config, word_align=0))
    assert np.array_equal(aligner(text_area(continuous.render(sentence))), text_area(aligned.render(sentence)))


def test_dashes_and_bars_in_latin_text_are_not_taken_for_cjk_characters(aligned, aligner):
    assert "丟" not in glyph_set_characters() and "書" in glyph_set_characters()
    continuous = Renderer(dataclasses.replace(aligned.config, word_align=0))
    for sentence in SENTENCES + ["Wait \u2014 no | yes \u2013 ok", "a\u2014b\u2014c ||| --- ___ === 111 lll III"]:
        line = text_area(continuous.render(sentence))
        assert aligner.glyph_starts(line) == [], sentence
        assert np.array_equal(aligner(line), text_area(aligned.render(sentence)))


def test_the_aligner_needs_cells():
    with pytest.raises(ValueError, match="word-aligned renderer"):
        CellAligner(Renderer(RenderConfig(max_patches=64)))


def test_encode_images_reads_a_continuous_line_as_encode_reads_itstext_area():
    torch.manual_seed(0)
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=3),
                           RenderConfig(max_patches=64, word_align=3))
    continuous = Renderer(dataclasses.replace(encoder.render_config, word_align=0))
    lines = [text_area(continuous.render(s)) for s in SENTENCES[:3]]
    from_text = encoder.encode(SENTENCES[:3], precision="fp32")
    assert np.allclose(encoder.encode_images(lines, precision="fp32"), from_text, atol=1e-5)
    assert np.allclose(encoder.encode_images(lines, precision="fp32", layout="continuous"), from_text, atol=1e-5)
    as_given = encoder.encode_images(lines, precision="fp32", layout="cells")
    assert (as_given * from_text).sum(1).max() < 0.99
    # A strip in cells is read as it is, whatever the layout asks: laying its words out again changes nothing.
    in_cells = text_area(encoder.renderer.render(SENTENCES[0]))
    assert np.array_equal(encoder.image_to_rendered(in_cells, layout="continuous").pixels,
                          encoder.image_to_rendered(in_cells, layout="cells").pixels)
    with pytest.raises(ValueError, match="layout='sideways'"):
        encoder.encode_images(lines, layout="sideways")
    continuous_model = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64), RenderConfig(max_patches=64))
    with pytest.raises(ValueError, match="renderer has none"):
        continuous_model.encode_images(lines, layout="continuous")


def test_a_continuous_line_moved_off_the_grid_is_snapped_before_it_is_laid_out():
    torch.manual_seed(0)
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=3),
                           RenderConfig(max_patches=64, word_align=3, snap_to_grid=True))
    continuous = Renderer(dataclasses.replace(encoder.render_config, word_align=0))
    put_back = 0
    for sentence in (SENTENCES[0], SENTENCES[1], SENTENCES[5]):
        from_text = encoder.encode([sentence], precision="fp32")
        for seed in range(4):   # a direction drawn per seed; the snapper finds ~93% of moves on continuous dev lines
            moved = text_area(perturb_rendered(continuous.render(sentence), "shift", 0.5, rng=seed))
            snapped, as_given = (encoder.encode_images([moved], precision="fp32", snap_to_grid=snap) for snap in (None, False))
            put_back += np.abs(snapped - from_text).max() < 0.1 * np.abs(as_given - from_text).max()
    assert put_back >= 10


def test_a_continuous_line_moved_half_a_pixel_and_snapped_is_laid_out_as_drawn_in_cells(aligned, aligner):
    # The snapper leaves faint ink in some spaces: read as not snapped (columns blank only at PAPER), 17 of 24 come back.
    snapper, continuous = GridSnapper(aligned), Renderer(dataclasses.replace(aligned.config, word_align=0))
    close = 0
    for sentence in SENTENCES:
        want = text_area(aligned.render(sentence))
        for seed in range(4):   # a direction drawn per seed
            laid = aligner(text_area(snapper(perturb_rendered(continuous.render(sentence), "shift", 0.5, rng=seed))),
                           snapped=True)
            close += laid.shape == want.shape and np.abs(laid.astype(int) - want).mean() < 1
    assert close >= 22


def test_a_laid_out_line_past_the_canvas_is_cut_and_flagged():
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=16, patches_per_token=3),
                           RenderConfig(max_patches=16, word_align=3))
    line = text_area(Renderer(dataclasses.replace(encoder.render_config, word_align=0, max_patches=64)).render(SENTENCES[0]))
    assert line.shape[1] <= 15 * 16          # fits the canvas as continuous text, not once in cells
    rendered = encoder.image_to_rendered(line)
    assert rendered.truncated and rendered.num_patches == 16
    with pytest.warns(UserWarning, match="1 of 1 inputs were longer"):
        encoder.encode_images([line])
