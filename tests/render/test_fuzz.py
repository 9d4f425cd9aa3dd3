"""Property-based fuzzing over random Unicode: the renderer never crashes and keeps its invariants."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelrep.render import (Renderer, RenderConfig, ShapingUnavailableError, add_typos, clean_text, raqm_available,
                             shuffle_words)

# Every code point, lone surrogates and control characters included.
ANY_CHAR = st.characters(codec=None, categories=None)
# Weighted towards the scripts with shaping, joining and bidi, where the hard cases are.
HARD_CHARS = st.one_of(ANY_CHAR, st.sampled_from(list(
    "abc ABC 123 .,;!?()[] \t\n\x00\u200b\u200c\u200d\ufe0f\u0301\u0308 مستقبل بسيط ٠١٢ לשון "
    "कि क्ष र्क ं ँ สวัสดีน้ำ 中文かなカナ한국어 \U0001F600\U0001F3FD \ud800\udfff")))

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = Renderer(RenderConfig(max_patches=6))
RENDERERS = {16: Renderer(RenderConfig()), 6: SMALL}


def render(renderer: Renderer, text: str):
    """Render, accepting a refusal only where Pillow cannot shape (no raqm)."""
    try:
        return renderer.render(text)
    except ShapingUnavailableError:
        assert not raqm_available()
        return None


def check(text: str, r, config: RenderConfig) -> None:
    if r is None:
        return
    ps = config.patch_size
    assert 1 <= r.num_patches <= config.max_patches
    assert r.pixels.dtype == np.uint8 and r.pixels.shape == (ps, r.num_patches * ps)
    assert (r.pixels[:, -ps:] == 0).all(), "the end patch closes every strip"
    assert r.missing_glyphs >= len(r.missing_chars)
    assert set(r.missing_chars) <= set(clean_text(text)), "only characters of the text can be missing"


@FUZZ
@given(text=st.text(HARD_CHARS, max_size=120))
def test_random_unicode_never_crashes(text):
    for renderer in RENDERERS.values():
        check(text, render(renderer, text), renderer.config)


@FUZZ
@given(text=st.text(HARD_CHARS, min_size=1, max_size=60), seed=st.integers(0, 2**32 - 1),
       rate=st.floats(0.0, 1.0), mode=st.sampled_from(["random", "local"]))
def test_perturbed_random_unicode_never_crashes(text, seed, rate, mode):
    perturbed = add_typos(shuffle_words(text, mode, seed), rate, seed)
    assert isinstance(perturbed, str)
    check(perturbed, render(SMALL, perturbed), SMALL.config)


@settings(max_examples=40, deadline=None, database=None)
@given(text=st.text(HARD_CHARS, max_size=40))
def test_same_random_text_same_pixels(text):
    a = render(RENDERERS[16], text)
    b = render(RENDERERS[16], text)
    if a is None:
        return
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert (a.num_patches, a.truncated, a.missing_chars) == (b.num_patches, b.truncated, b.missing_chars)
