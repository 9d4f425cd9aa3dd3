"""Word-aligned rendering: every word fills whole cells of word_align patches, drawn alone."""
import numpy as np
import pytest

from pixelrep.render import Renderer, RenderConfig
from pixelrep.render.renderer import LEFT_PAD

from tests.render.helpers import ink_columns, needs_raqm, text_area

K = 3            # patches per cell, as the default model's patches_per_token
CELL = 16 * K


@pytest.fixture(scope="module")
def renderer():
    return Renderer(RenderConfig(max_patches=128, word_align=K))


def cells(rendered) -> list[bytes]:
    area = text_area(rendered)
    assert area.shape[1] % CELL == 0, "the text ends on a cell boundary"
    return [area[:, i:i + CELL].tobytes() for i in range(0, area.shape[1], CELL)]


def test_a_word_gives_the_same_cells_wherever_it_stands(renderer):
    a = cells(renderer.render("A man is playing the guitar"))
    b = cells(renderer.render("guitar lessons for the man"))
    guitar = cells(renderer.render("guitar"))
    assert len(guitar) == 1
    assert a[-1] == b[0] == guitar[0]
    assert a[1] == b[-1] == cells(renderer.render("man"))[0]
    # Two spaces, or spaces around the text, do not move a word.
    assert cells(renderer.render("  A  man is playing the   guitar ")) == a


def test_words_start_at_the_left_of_their_first_cell(renderer):
    r = renderer.render("one two three four")
    area = text_area(r)
    for start in range(0, area.shape[1], CELL):
        ink = ink_columns(area[:, start:start + CELL])
        assert ink.size and ink[0] >= LEFT_PAD - 1   # a little left ink (an overhang) at most
    assert len(cells(r)) == 4


def test_a_long_word_spans_several_cells(renderer):
    r = renderer.render("internationalisation")
    assert len(cells(r)) >= 2


def test_a_typo_changes_only_the_word_it_hits(renderer):
    clean = "The quick brown fox jumps over the lazy dog"
    words = clean.split()
    noisy = words.copy()
    noisy[3] = "fxo"   # a typo in "fox" only
    a, b = cells(renderer.render(clean)), cells(renderer.render(" ".join(noisy)))
    assert len(a) == len(b)
    assert [i for i in range(len(a)) if a[i] != b[i]] == [3]


def test_unspaced_scripts_are_cut_into_chunks(renderer):
    r = renderer.render("一个男人在弹吉他")   # 8 characters, 3 to a cell
    assert len(cells(r)) == 3
    assert cells(r)[0] == cells(renderer.render("一个男"))[0]
    assert r.missing_glyphs == 0


def test_chunk_chars_one_gives_each_character_its_own_cell_wherever_it_stands():
    one = Renderer(RenderConfig(max_patches=128, word_align=K, chunk_chars=1))
    a, b = one.render("一个男人在弹吉他"), one.render("男人")
    assert len(cells(a)) == 8 and cells(a)[2:4] == cells(b)      # with chunks of 3, 男人 fell across two cells
    assert [w for w, _, _ in one.render("CNET News.comが最初に報じた。").words] == \
        ["CNET", "News.com", "が", "最", "初", "に", "報", "じ", "た", "。"]   # other characters stay together
    assert [w for w, _, _ in one.render("ｈｅllo 世界").words] == ["ｈｅllo", "世", "界"]   # full-width ASCII too
    two = Renderer(RenderConfig(max_patches=128, word_align=K, chunk_chars=2))
    assert [w for w, _, _ in two.render("abc最初に報じた").words] == ["abc", "最初", "に報", "じた"]
    # 0 (the default) keeps the chunks the bundled weights were trained on: the whole word, 3 to a cell.
    assert [w for w, _, _ in Renderer(RenderConfig(max_patches=128, word_align=K)).render("News.comが最初").words] == \
        ["New", "s.c", "omが", "最初"]


@pytest.mark.parametrize("bad", [-1, 65])
def test_chunk_chars_must_be_a_small_count(bad):
    with pytest.raises(ValueError, match=f"chunk_chars={bad}"):
        RenderConfig(word_align=K, chunk_chars=bad)


@needs_raqm
def test_right_to_left_words_keep_reading_order(renderer):
    a = cells(renderer.render("مرحبا بالعالم"))
    assert a[0] == cells(renderer.render("مرحبا"))[0]       # the first word read comes first
    assert a[-1] == cells(renderer.render("بالعالم"))[-1]


def test_long_text_is_cut_at_the_canvas():
    r = Renderer(RenderConfig(max_patches=16, word_align=K))
    out = r.render("word " * 40)
    assert out.truncated and out.num_patches == 16
    short = r.render("two words")
    assert not short.truncated and short.num_patches == 2 * K + 1


def test_word_aligned_differs_from_continuous_only_by_layout():
    text = "A man is playing the guitar."
    cont = Renderer(RenderConfig(max_patches=128)).render(text)
    aligned = Renderer(RenderConfig(max_patches=128, word_align=K)).render(text)
    assert aligned.num_patches > cont.num_patches
    # Same ink, moved: the dark pixel counts agree within overhang rounding.
    dark = lambda r: int((text_area(r) < 128).sum())
    assert abs(dark(aligned) - dark(cont)) <= 0.02 * dark(cont)


def test_word_align_must_fit_the_canvas():
    with pytest.raises(ValueError, match="word_align"):
        RenderConfig(max_patches=8, word_align=8)
    with pytest.raises(ValueError, match="word_align"):
        RenderConfig(word_align=-1)


def test_rendered_words_name_each_words_cells(renderer):
    text = "A  man is playing the guitar"
    r = renderer.render(text)
    assert [w for w, _, _ in r.words] == ["A", "man", "is", "playing", "the", "guitar"]
    area = text_area(r)
    for word, start, end in r.words:
        assert start % K == 0 and end % K == 0 and end > start
        alone = text_area(renderer.render(word))
        assert np.array_equal(area[:, start * 16:end * 16], alone), word
    assert r.words[-1][2] * 16 == area.shape[1]          # the last word ends where the text does
    assert Renderer(RenderConfig(max_patches=128)).render(text).words == ()   # continuous layout: no cells


def test_a_word_cut_by_the_canvas_is_not_named():
    small = Renderer(RenderConfig(max_patches=8, word_align=3))
    r = small.render("playing guitar tonight")
    assert r.truncated
    assert all(end <= r.num_patches - 1 for _, _, end in r.words)   # within the text patches
    assert [w for w, _, _ in r.words] == ["playing", "guitar"]      # "tonight" would end past the canvas
