"""Render configuration and the rendered result: the contract between render/ and the rest."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pixelrep.render.segment import SEGMENTERS
from pixelrep.render.spelling import CORRECTORS

MAX_PATCHES_LIMIT = 529  # PIXEL's 23x23 grid: the longest sequence a PIXEL checkpoint has positions for.


@dataclass(frozen=True)
class RenderConfig:
    """How text becomes a strip of square grey patches.

    An embedding depends on every field here, so a checkpoint stores its RenderConfig.
    """

    patch_size: int = 16          # pixels per patch side; the strip is this tall
    font_size: float = 13.0       # text size in pixels (PIXEL: 8 pt at 120 dpi ~ 13.3 px)
    max_patches: int = 64         # including the end-of-sequence patch; at most 529
    fonts: tuple[str, ...] = ()   # font files (bundled names or paths) tried in order; () = bundled default stack
    eos_patch: bool = True        # append a black patch after the text, as PIXEL does
    # 0: continuous text, as PIXEL renders it. k > 0: word-aligned; every word starts on a k-patch
    # boundary (set k to the model's patches_per_token), so a word gives the same token pixels
    # wherever it stands and a typo changes only the tokens of the word it hits. Runs of scripts
    # written without spaces (Chinese, Japanese, Thai, ...) are cut into chunks of a few characters.
    word_align: int = 0
    # "en": before layout, English text is re-spaced where words run together ("aman" -> "a man") or
    # fall apart ("gui tar" -> "guitar"), with a bundled word list (pixelrep.render.segment); "": as written.
    segment_words: str = ""
    # "en": after re-spacing, lower-case English words the same list does not know are rewritten as the
    # most frequent common word one edit away ("playnig" -> "playing"; pixelrep.render.spelling); "": as written.
    correct_spelling: str = ""
    # Word-aligned layout, scripts written without spaces: 0 cuts a space-free word holding them into
    # chunks of as many characters as fit a cell (3 at 16 px patches, 13 px text, 3-patch cells); k > 0
    # cuts each run of them into chunks of k and keeps the word's other characters whole, so with 1 a
    # Chinese or Japanese character gives the same token pixels wherever it stands.
    chunk_chars: int = 0
    # True: strips given to PixelEncoder.embed_rendered (images drawn elsewhere, perturbed ones) are first
    # moved back onto this renderer's pixel grid where they sit a fraction of a pixel off it
    # (pixelrep.render.grid); encode()'s own renderings are on it already. False: read as given.
    snap_to_grid: bool = False

    def __post_init__(self):
        if not 4 <= self.patch_size <= 64:
            raise ValueError(f"RenderConfig.patch_size={self.patch_size}: use 4..64 (16 is standard)")
        if not 2 <= self.max_patches <= MAX_PATCHES_LIMIT:
            raise ValueError(f"RenderConfig.max_patches={self.max_patches}: use 2..{MAX_PATCHES_LIMIT}")
        if not 0 < self.font_size <= self.patch_size:
            raise ValueError(f"RenderConfig.font_size={self.font_size}: must be in (0, patch_size={self.patch_size}]")
        if self.word_align < 0 or self.word_align >= self.max_patches:
            raise ValueError(f"RenderConfig.word_align={self.word_align}: use 0 (continuous text) or a "
                             f"number of patches per word cell below max_patches={self.max_patches}")
        if not 0 <= self.chunk_chars <= 64:
            raise ValueError(f"RenderConfig.chunk_chars={self.chunk_chars}: use 0 (as many as fit a cell) or "
                             f"1..64 characters per chunk")
        if self.segment_words not in ("",) + SEGMENTERS:
            raise ValueError(f"RenderConfig.segment_words={self.segment_words!r}: use '' (text as written) or one "
                             f"of {SEGMENTERS} (a bundled word list)")
        if self.correct_spelling not in ("",) + CORRECTORS:
            raise ValueError(f"RenderConfig.correct_spelling={self.correct_spelling!r}: use '' (text as written) or "
                             f"one of {CORRECTORS} (a bundled word list)")
        if not isinstance(self.snap_to_grid, bool):
            raise ValueError(f"RenderConfig.snap_to_grid={self.snap_to_grid!r}: use True or False")
        object.__setattr__(self, "fonts", tuple(self.fonts))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Rendered:
    """One rendered text.

    pixels: uint8 [patch_size, num_patches * patch_size], white (255) background, black ink.
    num_patches: text patches plus the end patch; always 1..max_patches.
    words: with word-aligned layout (RenderConfig.word_align), each word (or chunk of an unspaced
    run) as drawn, with its first patch and the patch after its last: (piece, start, end), in reading
    order; () for continuous layout.
    """

    pixels: np.ndarray
    num_patches: int
    truncated: bool = False
    missing_glyphs: int = 0
    missing_chars: tuple[str, ...] = field(default_factory=tuple)
    words: tuple[tuple[str, int, int], ...] = field(default_factory=tuple)
