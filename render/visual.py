"""Seeded visual perturbations: text that looks (almost) the same, and images of text that got worse.

Character kinds take `(text, rate, rng)` like `add_typos`: `rate` is the probability that each
eligible character (or gap, or word boundary) is changed, so about that fraction is; rate 0 returns
the text unchanged, words keep their order, and the same seed gives the same output. `rng` is an
int seed, a numpy Generator (draws continue from its state) or None (fresh entropy).

Image kinds take a uint8 grey strip [H, W] (white paper, black ink, as `Renderer` draws it) and a
level, and return a uint8 array of the same shape. A pixel model sees them; a text model cannot.

What the renderer does to each character kind (tested in tests/render/test_visual.py): zero-width
characters and bidi controls are removed or ignored (ZWJ/ZWNJ are kept but never drawn), so the
pixels do not change; NFC composes a base letter and its combining accent where a precomposed letter
exists (e + U+0301 -> é), and draws the others as a mark over the letter, so the pixels change either
way; Cyrillic/Greek homoglyphs are drawn with the glyphs of their Latin look-alikes (Noto Sans shares
the outlines, tested); fullwidth letters come from the CJK font, wider, and in word-aligned layout
they cut their word into chunks as CJK text is; mathematical letters (U+1D400..) are in no bundled
font and are drawn as hollow boxes (counted in `missing_glyphs`).
"""
from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable

import numpy as np

from pixelrep.render.config import Rendered
from pixelrep.render.perturb import LEET, as_generator

# Latin letter -> Cyrillic / Greek letters that Unicode's confusables data (UTS #39, confusables.txt)
# lists as its look-alikes, kept where the bundled Noto Sans draws them like the Latin letter
# (tests/render/test_visual.py renders every pair and checks the pixel distance). Left out because
# Noto Sans draws them visibly differently: Greek α ρ χ γ ι ν υ κ, Cyrillic п, palochka Ӏ for l, Cyrillic К.
HOMOGLYPHS: dict[str, str] = {
    "a": "а", "c": "сϲ", "d": "ԁ", "e": "е", "h": "һ", "i": "і", "j": "ј", "o": "оο", "p": "р", "q": "ԛ",
    "s": "ѕ", "w": "ԝ", "x": "х", "y": "у",
    "A": "АΑ", "B": "ВΒ", "C": "СϹ", "E": "ЕΕ", "H": "НΗ", "I": "ІΙӀ", "J": "Ј", "K": "Κ", "M": "МΜ", "N": "Ν",
    "O": "ОΟ", "P": "РΡ", "Q": "Ԛ", "S": "Ѕ", "T": "ТΤ", "W": "Ԝ", "X": "ХΧ", "Y": "ҮΥ", "Z": "Ζ",
}

# Combining marks put after a letter: grave, acute, circumflex, tilde, macron, breve, dot above,
# diaeresis, ring above, caron, dot below, cedilla.
COMBINING_ACCENTS = "\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030c\u0323\u0327"


# Zero-width space, zero-width non-joiner, zero-width joiner, word joiner, zero-width no-break space (BOM).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# Marks (LRM, RLM, ALM), embeddings and overrides (LRE, RLE, PDF, LRO, RLO), isolates (LRI, RLI, FSI, PDI).
BIDI_CONTROLS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

FULLWIDTH_OFFSET = 0xFF01 - 0x21   # ASCII ! .. ~ -> fullwidth ！ .. ～
# Code points of A and a in the styles of Mathematical Alphanumeric Symbols that have every letter
# (bold, bold italic, sans-serif, sans-serif bold, sans-serif italic, sans-serif bold italic, monospace).
MATH_STYLES = ((0x1D400, 0x1D41A), (0x1D468, 0x1D482), (0x1D5A0, 0x1D5BA), (0x1D5D4, 0x1D5EE), (0x1D608, 0x1D622),
               (0x1D63C, 0x1D656), (0x1D670, 0x1D68A))


def _check(fn: str, text, rate: float) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{fn}() takes a str, got {type(text).__name__}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{fn}() rate={rate}: use the fraction of eligible characters to change, in [0, 1]")


def _replace_chars(text: str, rate: float, rng, options: Callable[[str], str | tuple]) -> str:
    """Each character with options (a non-empty str or tuple of replacements) is replaced with
    probability `rate` by one of them, chosen uniformly."""
    gen = as_generator(rng)
    eligible = [i for i, ch in enumerate(text) if options(ch)]
    hits = [i for i, u in zip(eligible, gen.random(len(eligible))) if u < rate]
    if not hits:
        return text
    out = list(text)
    for i, u in zip(hits, gen.random(len(hits))):
        choices = options(text[i])
        out[i] = choices[int(u * len(choices))]
    return "".join(out)


def _insert_between(text: str, rate: float, rng, pool: str, eligible: Callable[[str, str], bool]) -> str:
    """Into each gap between two neighbouring characters that `eligible` accepts, one character of
    `pool` is inserted with probability `rate`."""
    gen = as_generator(rng)
    gaps = [i for i in range(1, len(text)) if eligible(text[i - 1], text[i])]
    hits = [i for i, u in zip(gaps, gen.random(len(gaps))) if u < rate]
    if not hits:
        return text
    out, last = [], 0
    for i, u in zip(hits, gen.random(len(hits))):
        out += [text[last:i], pool[int(u * len(pool))]]
        last = i
    return "".join(out) + text[last:]


def add_homoglyphs(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """Latin letters -> Cyrillic or Greek look-alikes (`HOMOGLYPHS`): 'a' -> Cyrillic 'а'."""
    _check("add_homoglyphs", text, rate)
    return _replace_chars(text, rate, rng, lambda ch: HOMOGLYPHS.get(ch, ""))


def add_accents(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """A combining accent (`COMBINING_ACCENTS`) after letters: 'e' -> 'e' + U+0301. The output is not
    normalised (NFC would compose it to 'é'); the renderer applies NFC itself."""
    _check("add_accents", text, rate)
    return _replace_chars(text, rate, rng, lambda ch: tuple(ch + m for m in COMBINING_ACCENTS) if ch.isalpha() else "")


def add_leetspeak(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """Letters -> digits that look like them (`LEET`): a -> 4, e -> 3, o -> 0, ..."""
    _check("add_leetspeak", text, rate)
    return _replace_chars(text, rate, rng, lambda ch: LEET.get(ch, ""))


def split_words(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """A space into gaps inside words (between two letters or digits): 'guitar' -> 'gui tar'."""
    _check("split_words", text, rate)
    return _insert_between(text, rate, rng, " ", lambda a, b: a.isalnum() and b.isalnum())


def merge_words(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """The whitespace between two words removed: 'a man' -> 'aman'."""
    _check("merge_words", text, rate)
    gen = as_generator(rng)
    parts = re.split(r"(\s+)", text)      # words at even indices, the whitespace between them at odd ones
    between = [i for i in range(1, len(parts) - 1, 2) if parts[i - 1] and parts[i + 1]]
    for i, u in zip(between, gen.random(len(between))):
        if u < rate:
            parts[i] = ""
    return "".join(parts)


def add_zero_width(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """A zero-width character (`ZERO_WIDTH`) into gaps between neighbouring characters."""
    _check("add_zero_width", text, rate)
    return _insert_between(text, rate, rng, ZERO_WIDTH, lambda a, b: True)


def add_bidi_controls(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """A bidi control (`BIDI_CONTROLS`: marks, embeddings, overrides, isolates) into gaps between characters."""
    _check("add_bidi_controls", text, rate)
    return _insert_between(text, rate, rng, BIDI_CONTROLS, lambda a, b: True)


def to_fullwidth(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """ASCII letters and digits -> their fullwidth forms: 'A' -> 'Ａ' (U+FF21)."""
    _check("to_fullwidth", text, rate)
    return _replace_chars(text, rate, rng,
                          lambda ch: chr(ord(ch) + FULLWIDTH_OFFSET) if ch.isascii() and ch.isalnum() else "")


def to_math_letters(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """ASCII letters -> a mathematical alphanumeric letter in one of `MATH_STYLES`: 'a' -> '𝐚' (bold)."""
    _check("to_math_letters", text, rate)

    def options(ch: str) -> tuple[str, ...] | str:
        if not (ch.isascii() and ch.isalpha()):
            return ""
        upper, offset = ch.isupper(), ord(ch.lower()) - ord("a")
        return tuple(chr((cap if upper else small) + offset) for cap, small in MATH_STYLES)

    return _replace_chars(text, rate, rng, options)


def add_case_noise(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """Letters with a one-character other case get it: 'man' -> 'mAn'."""
    _check("add_case_noise", text, rate)

    def options(ch: str) -> str:
        other = ch.swapcase()
        return other if len(other) == 1 and other != ch else ""   # not 'ß' -> 'SS'

    return _replace_chars(text, rate, rng, options)


# The character kinds by their suite names, in the order tables list them.
TEXT_PERTURBATIONS: dict[str, Callable[..., str]] = {
    "homoglyphs": add_homoglyphs,
    "accents": add_accents,
    "leetspeak": add_leetspeak,
    "split-words": split_words,
    "merge-words": merge_words,
    "zero-width": add_zero_width,
    "bidi": add_bidi_controls,
    "fullwidth": to_fullwidth,
    "math-letters": to_math_letters,
    "case": add_case_noise,
}


def perturb_text(text: str, kind: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """The character kind `kind` (a key of TEXT_PERTURBATIONS) at `rate`."""
    if kind not in TEXT_PERTURBATIONS:
        raise ValueError(f"unknown text perturbation {kind!r}; known: {', '.join(TEXT_PERTURBATIONS)}")
    return TEXT_PERTURBATIONS[kind](text, rate, rng)


# ---- image kinds -----------------------------------------------------------------------------------

def _grey_strip(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError(f"expected a uint8 grey strip [H, W], got {pixels.dtype} {list(pixels.shape)}")
    return np.ascontiguousarray(pixels)


def _as_image(pixels: np.ndarray):
    """uint8 [H, W] -> torch uint8 [1, H, W] (what torchvision's functional transforms take)."""
    import torch

    return torch.from_numpy(_grey_strip(pixels))[None]


def blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels (0: unchanged)."""
    if sigma < 0:
        raise ValueError(f"blur sigma={sigma}: use a non-negative number of pixels (e.g. 1.0)")
    if sigma == 0:
        return _grey_strip(pixels).copy()
    import torchvision.transforms.v2.functional as TF

    k = 2 * int(np.ceil(3 * sigma)) + 1   # the kernel reaches 3 sigma each side
    return TF.gaussian_blur(_as_image(pixels), [k, k], [sigma, sigma])[0].numpy()


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """JPEG compression at `quality` (1..100; lower is worse). No quality is lossless."""
    if not (1 <= quality <= 100 and quality == int(quality)):
        raise ValueError(f"jpeg quality={quality!r}: use a whole number in 1..100 (e.g. 20)")
    # Pillow's codec: torchvision's encode_jpeg/decode_jpeg (behind its JPEG transform) are deprecated since 0.29.
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_grey_strip(pixels)).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("L"))


def low_resolution(pixels: np.ndarray, scale: float) -> np.ndarray:
    """A low-resolution scan: down-sampled to `scale` of each side (antialiased), then back up
    (bilinear) to the same shape. scale 1: unchanged."""
    if not 0 < scale <= 1:
        raise ValueError(f"low_resolution scale={scale}: use a fraction of the size in (0, 1] (e.g. 0.5)")
    if scale == 1:
        return _grey_strip(pixels).copy()
    import torchvision.transforms.v2.functional as TF

    img = _as_image(pixels)
    h, w = img.shape[-2:]
    small = TF.resize(img, [max(1, round(h * scale)), max(1, round(w * scale))], antialias=True)
    return TF.resize(small, [h, w], antialias=True)[0].numpy()


def rotate_patches(pixels: np.ndarray, degrees: float, rng: int | np.random.Generator | None = None,
                   patch_size: int = 16) -> np.ndarray:
    """Each square patch rotated about its centre by `degrees`, clockwise or anticlockwise (drawn
    per patch), bilinear, white where the rotation uncovers paper. 0 degrees: unchanged.

    Patches, not the whole strip: a strip one patch tall rotated as a whole would lose the ends of
    its line off the top and bottom at a degree or two.
    """
    if degrees < 0:
        raise ValueError(f"rotate degrees={degrees}: use a non-negative angle (the direction is drawn per patch)")
    pixels = _grey_strip(pixels)
    if pixels.shape[0] != patch_size or pixels.shape[1] % patch_size:
        raise ValueError(f"rotate_patches needs a strip {patch_size} px tall and a multiple of {patch_size} wide "
                         f"(patch_size={patch_size}), got {list(pixels.shape)}")
    if degrees == 0:
        return _grey_strip(pixels).copy()
    h, w = pixels.shape
    signs = np.where(as_generator(rng).random(w // patch_size) < 0.5, -1.0, 1.0)
    import torch
    import torchvision.transforms.v2.functional as TF

    # Ink as the signal: torchvision pads with 0 before it applies `fill`, which would grey white paper.
    ink = 255 - torch.from_numpy(pixels)
    patches = ink.reshape(h, -1, patch_size).permute(1, 0, 2)[:, None]   # [P, 1, ps, ps]
    out = torch.empty_like(patches)
    for sign in (-1.0, 1.0):
        idx = torch.from_numpy(np.flatnonzero(signs == sign))
        if len(idx):
            out[idx] = TF.rotate(patches[idx], sign * degrees, interpolation=TF.InterpolationMode.BILINEAR)
    return (255 - out[:, 0].permute(1, 0, 2).reshape(h, w)).numpy()


def shift(pixels: np.ndarray, offset: float, rng: int | np.random.Generator | None = None) -> np.ndarray:
    """The ink moved by `offset` pixels in a direction drawn at random (any angle), with bilinear
    interpolation, so a fraction of a pixel spreads a stroke over two columns or rows as a rasteriser
    drawing at that position would; paper where the move uncovers the edge. 0: unchanged.

    Word-aligned rendering puts every glyph at the same pixel each time, so a model can learn each word's
    exact image; another renderer, another resolution or a screenshot draws it a fraction of a pixel
    elsewhere. This kind measures that.
    """
    if offset < 0:
        raise ValueError(f"shift offset={offset}: use a non-negative distance in pixels (e.g. 1.0)")
    pixels = _grey_strip(pixels)
    if offset == 0:
        return pixels.copy()
    angle = as_generator(rng).uniform(0, 2 * np.pi)
    ink = 255.0 - pixels.astype(np.float32)
    for axis, distance in ((1, offset * np.cos(angle)), (0, offset * np.sin(angle))):
        ink = _move(ink, float(distance), axis)
    return (255.0 - np.rint(ink)).clip(0, 255).astype(np.uint8)


def _move(ink: np.ndarray, distance: float, axis: int) -> np.ndarray:
    """ink moved by `distance` pixels along `axis` (positive: right or down), linear between whole pixels."""
    whole = int(np.floor(distance))
    fraction = distance - whole
    out = np.zeros_like(ink)
    for steps, weight in ((whole, 1.0 - fraction), (whole + 1, fraction)):
        if weight == 0 or abs(steps) >= ink.shape[axis]:
            continue
        src = [slice(None)] * 2
        dst = [slice(None)] * 2
        src[axis] = slice(max(0, -steps), ink.shape[axis] - max(0, steps))
        dst[axis] = slice(max(0, steps), ink.shape[axis] - max(0, -steps))
        out[tuple(dst)] += weight * ink[tuple(src)]
    return out


# The image kinds by their suite names: the function and the keyword its level is passed as.
IMAGE_PERTURBATIONS: dict[str, tuple[Callable[..., np.ndarray], str]] = {
    "blur": (blur, "sigma"),
    "jpeg": (jpeg, "quality"),
    "low-res": (low_resolution, "scale"),
    "rotate": (rotate_patches, "degrees"),
    "shift": (shift, "offset"),
}


# Drawn as other renderers, screenshots and scans draw text: continuous, the words not in the word-aligned model's
# cells, the ink then moved by `offset` pixels (the shift kind's move; 0: not moved). Not a change of pixels but of
# the drawing: eval's PerturbedPixelEncoder draws the text so and reads it as an image (PixelEncoder.encode_images,
# which lays a continuous line out in cells: pixelrep.render.cells).
LAYOUT_PERTURBATIONS: dict[str, str] = {"continuous": "offset"}


def perturb_rendered(rendered: Rendered, kind: str, level: float, rng: int | np.random.Generator | None = None,
                     eos_patch: bool = True) -> Rendered:
    """A Rendered strip with the image kind applied to its text patches; the end patch (eos_patch) stays as
    drawn, so a model still sees where the text ends. An empty text comes back as it is."""
    ps = rendered.pixels.shape[0]
    width = (rendered.num_patches - (1 if eos_patch else 0)) * ps
    if width <= 0:
        return rendered
    pixels = rendered.pixels.copy()
    pixels[:, :width] = perturb_pixels(pixels[:, :width], kind, level, rng=rng, patch_size=ps)
    return dataclasses.replace(rendered, pixels=pixels)


def perturb_pixels(pixels: np.ndarray, kind: str, level: float, rng: int | np.random.Generator | None = None,
                   patch_size: int = 16) -> np.ndarray:
    """The image kind `kind` (a key of IMAGE_PERTURBATIONS) at `level` (its sigma, quality, scale or degrees)."""
    if kind not in IMAGE_PERTURBATIONS:
        raise ValueError(f"unknown image perturbation {kind!r}; known: {', '.join(IMAGE_PERTURBATIONS)}")
    fn, keyword = IMAGE_PERTURBATIONS[kind]
    extra = {"rotate": dict(rng=rng, patch_size=patch_size), "shift": dict(rng=rng)}.get(kind, {})   # drawn at random
    return fn(pixels, **{keyword: level}, **extra)
