"""Spelling correction before word-aligned layout: one edit back to a common word, everything else kept."""
from importlib import resources

import numpy as np
import pytest

from pixelrep.render import Renderer, RenderConfig, add_typos
from pixelrep.render.segment import WordSegmenter
from pixelrep.render.spelling import SpellingCorrector, keyboard_edit, latin_readings, load_corrector, one_edit_away

SENTENCES = resources.files("pixelrep.render").joinpath("samples", "en.txt").read_text("utf-8").splitlines()[:300]
# A tiny English list, most frequent first; its last three are beyond `common`, never a correction.
WORDS = "the a man is of and to in on playing woman guitar dog park running horse piano plays don don't el la playign".split()
SPANISH = "el la de que y en un una está tocando chico mujer guitarra piano".split()


@pytest.fixture(scope="module")
def tiny():
    return SpellingCorrector(WordSegmenter(WORDS, {"es": SPANISH}), common=len(WORDS) - 3)


@pytest.mark.parametrize("text, expected", [
    ("A woamn is playnig the guitar.", "A woman is playing the guitar."),   # swap and swap, punctuation kept
    ("Woman plyaing guiar, dgo runnning.", "Woman playing guitar, dgo running."),  # deletion, insertion; 3 letters kept
    ("the man Playnig", "the man Playnig"),         # capitals: a name
    ("the man PLAYNIG pIayning", "the man PLAYNIG pIayning"),   # an acronym; mixed case
    ("the horses pianos", "the horses pianos"),     # a known word with an ending
    ("the man playinng", "the man playing"),        # ... but not a typo in the stem
    ("dont plays", "don't plays"),                  # a dropped apostrophe comes first
    ("the man p1aying gu1tar", "the man playing guitar"),       # a digit between letters read as a letter
    ("the man plаying pl@yinf.", "the man playing playing."),  # a Cyrillic а; a symbol, then one edit
    ("the wömän plays", "the woman plays"),         # accented letters
    ("the 0man pian0 run1", "the 0man pian0 run1"),  # digits at a word's edge: versions, ordinals ("python3", "19th")
    ("the man pl4ying pla\u0301ying", "the man pl4ying pla\u0301ying"),   # imitate no letter: what pixels read
    ("the man ΡLAYING", "the man ΡLAYING"),         # capitals stay capitals (a Greek Ρ)
    ("the man zorking", "the man zorking"),         # nothing one edit away
    ("the piano plays", "the piano plays"),         # known common words are kept
    ("the man playign", "the man playign"),         # a known word is kept, even a rare one (a corpus's typo)
    ("", ""), ("  ", "  "),
])
def test_tiny_list(tiny, text, expected):
    assert tiny(text) == expected


def test_language_gate(tiny):
    spanish = "El chico está tocando el pinao."
    assert tiny(spanish) == spanish


def test_one_edit_away():
    edits = one_edit_away("ab")
    assert {"b", "a", "ba", "xb", "ax", "xab", "axb", "abx"} <= edits and "ab" not in edits
    assert len(one_edit_away("playnig")) == len(set(one_edit_away("playnig"))) > 300


def test_latin_readings():
    assert latin_readings("w0man") == ["woman", "wOman"]
    assert set(latin_readings("1ane")) == {"lane", "Iane", "iane"}
    assert latin_readings("сafé") == ["cafe"]                 # a Cyrillic с, an accented e
    assert latin_readings("pl4y") == [] and latin_readings("") == [""]
    assert latin_readings("ｐｌａｙ") == [] and latin_readings("𝐩𝐥𝐚𝐲") == []   # fullwidth, math letters: as drawn
    assert len(latin_readings("1" * 10, limit=5)) == 5


def test_bundled_corrector_on_english_samples():
    """Typo'd English comes back closer to the text as written; clean English is nearly untouched."""
    correct = load_corrector("en")
    assert load_corrector("en") is correct                     # built once per process
    assert sum(correct(s) != s for s in SENTENCES) / len(SENTENCES) < 0.05
    rng = np.random.default_rng(0)
    typod = [add_typos(s, 0.1, rng) for s in SENTENCES]
    words_right = lambda texts: np.mean([x == y for t, s in zip(texts, SENTENCES)
                                         for x, y in zip(t.split(), s.split())])
    assert words_right([correct(t) for t in typod]) > words_right(typod) + 0.05
    with pytest.raises(ValueError, match="correct_spelling='fr'"):
        load_corrector("fr")


def test_renderer_and_encoder_setting(tmp_path):
    from pixelrep import PixelEncoder
    from tests.core.helpers import tiny_encoder

    with pytest.raises(ValueError, match="correct_spelling='de'.*'en'"):
        RenderConfig(correct_spelling="de")
    config = RenderConfig(max_patches=64, word_align=3)
    corrected = Renderer(RenderConfig(max_patches=64, word_align=3, correct_spelling="en")).render("A man is playnig.")
    assert np.array_equal(corrected.pixels, Renderer(config).render("A man is playing.").pixels)
    assert Renderer(config).render("playnig").words == (("playnig", 0, 3),)    # off by default: as written
    encoder = tiny_encoder()
    encoder.set_render_config(correct_spelling="en")
    typod, clean = encoder.encode(["A man is playnig.", "A man is playing."], precision="fp32")
    assert np.allclose(typod, clean)
    encoder.save_pretrained(tmp_path / "m")
    assert PixelEncoder.from_pretrained(tmp_path / "m").render_config.correct_spelling == "en"


def test_keyboard_edit():
    assert keyboard_edit("playin", "playing") and keyboard_edit("palying", "playing")     # a letter left out; a swap
    assert keyboard_edit("plsying", "playing") and keyboard_edit("plaaying", "playing")   # a neighbour key; a key twice
    assert keyboard_edit("w0man", "woman")                                                # a look-alike
    assert not keyboard_edit("playin", "plain")        # "y" typed beside "l", which it does not touch
    assert not keyboard_edit("plmying", "playing")     # "m" for "a"


def test_correction_prefers_a_keyboard_slip():
    words = "the a of plain playing".split()          # "plain" the more frequent, "playing" the likelier slip
    corrector = SpellingCorrector(WordSegmenter(words))
    assert corrector.correction("playin") == "playing"
    assert corrector.correction("plaim") == "plain"   # both one slip away: frequency decides


JOINED = "the a is in of to on man woman era ding reading computer drilling board playing".split()


@pytest.fixture(scope="module")
def joined():
    segmenter = WordSegmenter(JOINED, pieces=len(JOINED), short_words=7, edit_cost=3.0)   # a short list: cheap words
    return segmenter, SpellingCorrector(segmenter, common=len(JOINED))


@pytest.mark.parametrize("text, alone, with_corrector", [
    # a misspelt word is weighed as its correction, not cut into rarer words
    ("the woman is erading", "the woman is era ding", "the woman is erading"),
    # a lost space beside a very common word, the other piece misspelt: cut, the piece written corrected
    ("the man is drillingba board", "the man is drillingba board", "the man is drilling a board"),
    ("the man is acoputer", "the man is acoputer", "the man is a computer"),
    # ... only beside one of the first short_words: "board" is not one
    ("the man is boardcoputer", "the man is boardcoputer", "the man is boardcoputer"),
    ("the man is playing", "the man is playing", "the man is playing"),   # clean text as written
])
def test_segmenter_weighs_corrections(joined, text, alone, with_corrector):
    segmenter, corrector = joined
    assert segmenter(text) == alone
    assert segmenter(text, corrector) == with_corrector
    assert corrector(segmenter(text, corrector)) == corrector(with_corrector)


def test_bundled_front_end_reads_typos_as_words():
    """The renderer re-spaces with the corrector when both are on: a misspelt word is corrected, not cut."""
    both = Renderer(RenderConfig(max_patches=64, word_align=3, segment_words="en", correct_spelling="en"))
    for typed, meant in (("A woman is erading.", "A woman is reading."),
                         ("A child is playing acoputer game.", "A child is playing a computer game.")):
        assert np.array_equal(both.render(typed).pixels, both.render(meant).pixels), typed
    respaced = Renderer(RenderConfig(max_patches=64, word_align=3, segment_words="en"))
    assert [w for w, *_ in respaced.render("A woman is erading.").words][-2:] == ["era", "ding."]
