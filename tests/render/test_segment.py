"""Re-spacing before word-aligned layout: merged words cut, broken words joined, everything else kept."""
import gzip
from importlib import resources

import numpy as np
import pytest

from pixelrep.render import Renderer, RenderConfig, merge_words, split_words
from pixelrep.render.segment import GATE_LANGUAGES, WordSegmenter, load_segmenter, read_words

SENTENCES = resources.files("pixelrep.render").joinpath("samples", "en.txt").read_text("utf-8").splitlines()[:300]
# A tiny English list, most frequent first, and a Spanish one for the language gate.
WORDS = ("the a man is of and to in on playing woman guitar dog park running across cross horse piano "
         "el la").split()
SPANISH = "el la de que y en un una está tocando chico mujer guitarra piano".split()


@pytest.fixture(scope="module")
def tiny():
    return WordSegmenter(WORDS, {"es": SPANISH}, pieces=len(WORDS), short_words=5)


@pytest.mark.parametrize("text, expected", [
    ("Aman is playingthe guitar.", "A man is playing the guitar."),        # cut, case and punctuation kept
    ("A man is playing the gui tar.", "A man is playing the guitar."),     # joined
    ("thedog isrunning acrossthe park", "the dog is running across the park"),
    ("A man is playing the guitar.", "A man is playing the guitar."),      # clean text as written
    ("the dog ran a cross the park", "the dog ran a cross the park"),      # known words are not joined
    ("Zork is playing", "Zork is playing"),                                # an unknown word stays whole
    ("AMANIS on the ISS", "AMANIS on the ISS"),                            # acronyms stay whole
    ("aman, 3dogs", "a man, 3dogs"),                                       # digits are not letters
    ("", ""), ("  ", "  "), ("the  dog", "the  dog"),
])
def test_tiny_list(tiny, text, expected):
    assert tiny(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("the man,playing the guitar", "the man, playing the guitar"),          # a space lost after a comma
    ("the guitar;playingthe piano", "the guitar; playing the piano"),       # ... beside words run together
    ("the dog is playing.The man", "the dog is playing. The man"),          # after a full stop, before a capital
    ("the man'sguitar", "the man's guitar"),                                # after a possessive
    ("the man isn'tplaying", "the man isn't playing"),                      # after a contraction
    ("playing2000 pianos", "playing 2000 pianos"),                          # beside a number
    ("1900playing on the", "1900 playing on the"),
    ("the man(playing) the dog", "the man (playing) the dog"),              # around brackets
    ("the dog(s)", "the dog(s)"),                                           # a letter in brackets is no word
    ("the dog3 man", "the dog3 man"),                                       # one digit: as often a typo
    ("at 10am", "at 10am"), ("the 2nd man", "the 2nd man"),                 # units and ordinals
    ("the man,zork", "the man,zork"),                                       # not two words
    ("a 3,000 man", "a 3,000 man"),
    ("the man１２ is", "the man１２ is"), ("the man1２ is", "the man1２ is"),   # digits of other scripts: not
    ("the ١٢man", "the ١٢man"),                                             # numbers here
])
def test_lost_spaces_beside_punctuation_and_numbers(tiny, text, expected):
    assert tiny(text) == expected


def test_punctuation_typed_for_a_letter_is_no_lost_space():
    """"gui,tar" is "guitar" with a comma typed in, and "wo,an" "woman" with a comma for the "m" beside it."""
    segmenter = WordSegmenter(WORDS + ["gui", "tar", "wo", "an"], pieces=len(WORDS) + 4, short_words=30)
    assert segmenter("the gui,tar") == "the gui,tar" and segmenter("the wo,an") == "the wo,an"
    assert segmenter("the man,tar") == "the man, tar"


def test_leetspeak_is_no_word_beside_a_number():
    """"in70" reads "into" with its digits taken for the letters they stand for: one word, not "in 70"."""
    segmenter = WordSegmenter(WORDS + ["into", "ballet"], pieces=len(WORDS) + 2, short_words=30)
    assert segmenter("the man in70 the park") == "the man in70 the park"
    assert segmenter("the man in1970 the park") == "the man in 1970 the park"
    assert segmenter("the 8a1137 man") == "the 8a1137 man"      # digits before the letters too: one word


def test_lost_spaces_only_in_english(tiny):
    assert tiny("El chico,tocando el piano.") == "El chico,tocando el piano."


def test_invisible_joiners_do_not_move_spaces(tiny):
    """ZWJ / ZWNJ draw nothing beside Latin letters, so the text is re-spaced as if they were not there."""
    assert tiny("Aman is play\u200ding the gui\u200ctar.") == "A man is playing the guitar."
    respaced = Renderer(RenderConfig(max_patches=64, word_align=3, segment_words="en"))
    assert np.array_equal(respaced.render("pla\u200dyingthe dog").pixels, respaced.render("playing the dog").pixels)


def test_language_gate(tiny):
    spanish = "El chico está tocando el piano."
    assert not tiny.is_its_language(spanish) and tiny(spanish) == spanish
    assert tiny.is_its_language("thedog isrunning")          # merged words are evidence for no language


def test_bundled_lists_are_ranked_and_load():
    english = read_words("en")
    assert english[:3] == ["the", "a", "of"] and len(english) > 50_000 and len(set(english)) == len(english)
    for lang in GATE_LANGUAGES:
        assert len(read_words(f"gate-{lang}")) == 5_000
    assert load_segmenter("en") is load_segmenter("en")        # built once per process
    with pytest.raises(ValueError, match="segment_words='fr'"):
        load_segmenter("fr")
    with pytest.raises(ValueError, match="non-empty"):
        WordSegmenter([])


def test_bundled_segmenter_on_english_samples():
    """Merged and broken English comes back mostly as written; clean English is nearly untouched."""
    segment = load_segmenter("en")
    clean_changed = sum(segment(s) != s for s in SENTENCES) / len(SENTENCES)
    rng = np.random.default_rng(0)
    merged = [merge_words(s, 0.3, rng) for s in SENTENCES]
    broken = [split_words(s, 0.3, rng) for s in SENTENCES]
    words_back = lambda perturbed: np.mean([segment(p).split() == s.split() for p, s in zip(perturbed, SENTENCES)])
    was = lambda perturbed: np.mean([p.split() == s.split() for p, s in zip(perturbed, SENTENCES)])
    assert clean_changed < 0.08
    assert words_back(merged) > was(merged) + 0.5
    assert words_back(broken) > was(broken) + 0.5


def test_other_languages_kept():
    segment = load_segmenter("en")
    for text in ["Una mujer está tocando la guitarra.", "Un uomo sta dando da mangiare un topo a un serpente.",
                 "Een man met een helm is aan het dansen.", "Der Mann spielt Gitarre im Park.",
                 "Un homme donne une souris à un serpent.", "一个男人在弹吉他。"]:
        assert segment(text) == text


def test_renderer_draws_the_respaced_text():
    config = RenderConfig(max_patches=64, word_align=3)
    respaced = Renderer(RenderConfig(max_patches=64, word_align=3, segment_words="en")).render("Aman is playingthe gui tar.")
    clean = Renderer(config).render("A man is playing the guitar.")
    assert np.array_equal(respaced.pixels, clean.pixels) and respaced.words == clean.words
    assert Renderer(config).render("Aman").words == (("Aman", 0, 3),)    # off by default: as written


def test_config_names_the_bad_list():
    with pytest.raises(ValueError, match="segment_words='de'.*'en'"):
        RenderConfig(segment_words="de")
    assert RenderConfig(segment_words="en").to_dict()["segment_words"] == "en"


def test_word_lists_are_deterministic_gzip():
    """Same data, same bytes: no timestamp in the gzip header (scripts/build_wordlists.py)."""
    raw = (resources.files("pixelrep.render") / "words" / "en.txt.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and gzip.decompress(raw).endswith(b"\n")


def test_encoder_setting_renders_respaced_and_is_saved(tmp_path):
    from pixelrep import PixelEncoder
    from tests.core.helpers import tiny_encoder

    encoder = tiny_encoder()
    assert encoder.segment_words == ""
    as_written = encoder.encode(["Aman is playingthe gui tar."], precision="fp32")
    encoder.segment_words = "en"
    respaced, clean = encoder.encode(["Aman is playingthe gui tar.", "A man is playing the guitar."], precision="fp32")
    assert np.allclose(respaced, clean) and not np.allclose(as_written[0], clean, atol=1e-3)
    with pytest.raises(ValueError, match="segment_words='xx'"):
        encoder.segment_words = "xx"
    assert encoder.segment_words == "en"                       # a bad value changes nothing
    encoder.set_render_config(chunk_chars=1)
    with pytest.raises(ValueError, match="chunk_chars=-2"):
        encoder.set_render_config(chunk_chars=-2, segment_words="")
    encoder.save_pretrained(tmp_path / "m")
    loaded = PixelEncoder.from_pretrained(tmp_path / "m")
    assert loaded.segment_words == "en" and loaded.render_config.chunk_chars == 1 and loaded.renderer.config.chunk_chars == 1
