"""Text -> a strip of grey patches, fast, for every script the bundled fonts cover.

How a text becomes pixels:

1. Clean (`clean_text`): NFC; tab, newline and every other Unicode space or line/paragraph
   separator -> " "; NUL and the other control characters (Cc) and invisible format characters (Cf:
   soft hyphen, zero-width space, BOM, bidi marks and embeddings) are removed, except ZWJ/ZWNJ,
   which steer shaping. Only the first `max_chars` characters are looked at further (one per pixel
   of the canvas), so a 100k-character text costs no more than a full line. With
   RenderConfig.segment_words, English text is then re-spaced where words run together or fall
   apart (pixelrep.render.segment), and with RenderConfig.correct_spelling its misspelt words put
   back one edit (pixelrep.render.spelling).
2. Choose a font per character: the first font of the stack that has it; combining marks and
   ZWJ/ZWNJ/variation selectors stay with their base character's font. A character no font has
   (emoji, lone surrogates, unassigned code points) is drawn as a hollow box, counted in
   `missing_glyphs` and listed in `missing_chars`; it is never dropped.
3. Lay out by words. A word of "simple" scripts (Latin, Greek, Cyrillic, CJK, Hangul, symbols: no
   joining or reordering) is composed from cached single-glyph bitmaps with the fonts' hinted
   integer advances, which is what Pillow's basic layout draws (within 2 grey levels where glyphs
   overlap), so a never-seen word (a typo) costs microseconds and the pixels are the same with or
   without raqm. Complex scripts (Arabic, Hebrew, Indic, Thai, ...) are shaped with HarfBuzz
   (Pillow's raqm) in units that shape alone as they do in context: clusters (a base, its marks,
   consonants joined by a virama) and, for Arabic, the pieces between letters that never join to
   the next one. A line with right-to-left characters is ordered with the Unicode bidi algorithm
   (implicit levels; see _bidi_levels), and a right-to-left paragraph is right-aligned.
4. Compose: word bitmaps side by side (see Renderer), cut at the canvas (max_patches - 1 text
   patches; a right-to-left line keeps its logical beginning) and the black end patch appended.
   Word-aligned (RenderConfig.word_align = k): each word instead fills whole cells of k patches,
   drawn alone from the left of its first cell, in reading order (a right-to-left word is shaped
   right to left inside its cells); runs of scripts written without spaces are cut into chunks of
   a few characters. A word's pixels then depend on the word alone (see _render_words).

Every cache is keyed by the exact text and font, so pixels never depend on what was rendered before.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from pixelrep.render.config import Rendered, RenderConfig
from pixelrep.render.segment import load_segmenter
from pixelrep.render.spelling import load_corrector
from pixelrep.render.fonts import (NO_FONT, ShapingUnavailableError, load_stack, raqm_available,
                                   shaping_unavailable_message)

LEFT_PAD = 2                # pixels before the first pen position (mirrored for right-to-left lines)
CACHE_SIZE = 30_000         # entries per cache (words, shaped units, glyphs per font); ~1 KiB per entry
MAX_CACHED_WORD = 32        # longer words (e.g. CJK sentences without spaces) are composed, not cached
MAX_UNIT = 32               # complex runs longer than this are shaped in chunks at cluster boundaries

# Blocks whose scripts need shaping (joining, reordering, mark positioning) and, for the RTL ones,
# bidi: Hebrew..Arabic ext, Indic, Thai/Lao/Tibetan, Myanmar, Philippine..Mongolian, Limbu..Tai Tham,
# Balinese..Vedic, Syloti Nagri..Myanmar ext, Meetei Mayek, Hebrew/Arabic presentation forms,
# historic RTL and Brahmic scripts, Adlam and Arabic mathematical symbols.
_COMPLEX_RANGES = ((0x0590, 0x08FF), (0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1700, 0x18AF),
                   (0x1900, 0x1AAF), (0x1B00, 0x1CFF), (0xA800, 0xAAFF), (0xABC0, 0xABFF), (0xFB1D, 0xFDFF),
                   (0xFE70, 0xFEFF), (0x10800, 0x10FFF), (0x11000, 0x11FFF), (0x1E800, 0x1EFFF))
# Complex scripts are shaped in units smaller than a word, so that a new word (a typo) mostly reuses
# shaped units. HarfBuzz shapes Hebrew, Indic and South-East Asian scripts cluster by cluster
# (a base, its marks, and consonants joined by a virama), so a cluster alone shapes the same.
_CLUSTERED_RANGES = ((0x0590, 0x05FF), (0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF),
                     (0x1A20, 0x1AAF))
# Thai/Lao SARA AM is a letter, but HarfBuzz moves its nikhahit onto the preceding consonant.
_CLUSTER_JOINERS = {"\u0e33", "\u0eb3", "\u200c", "\u200d"}
# Arabic letters join only within a "piece of an Arabic word": a new piece starts after a letter
# that never joins the next one (alef, dal, reh, waw, teh marbuta, hamza and their variants) and
# around non-letters, so pieces shape alone exactly as inside the word.
_ARABIC_RANGES = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
_ARABIC_NO_LEFT_JOIN = frozenset(chr(c) for c in [0x0621, 0x0622, 0x0623, 0x0624, 0x0625, 0x0627, 0x0629, 0x062F,
                                                  0x0630, 0x0631, 0x0632, 0x0648, 0x0671, *range(0x0688, 0x069A),
                                                  0x06C0, *range(0x06C4, 0x06CC), 0x06CD, 0x06CF, 0x06D2,
                                                  0x06D3, 0x06D5, 0x200C])
# Invisible characters that only steer shaping: kept with the preceding run, never drawn on their own.
_IGNORABLE = frozenset(chr(c) for c in [0x034F, 0x200C, 0x200D, *range(0x180B, 0x1810),
                                        *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, CJK punctuation, kana,
# ideographs, full-width forms): word-aligned rendering cuts their runs into chunks of a few characters.
_UNSPACED_RANGES = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF), (0x3000, 0x31FF),
                    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))
# With RenderConfig.chunk_chars set, the full-width forms of ASCII (U+FF01-FF5E: "ｈ") stay with their word.
_CHUNKED_RANGES = tuple(r for r in _UNSPACED_RANGES if r != (0xFF00, 0xFFEF)) + ((0xFF00, 0xFF00), (0xFF5F, 0xFFEF))
_RTL_CLASSES = frozenset({"R", "AL", "AN"})
_DONE, _BAKE, _NEEDS_BIDI = 0, 1, 2  # word entry states (see Renderer)


def _range_table(ranges) -> bytes:
    table = np.zeros(0x110000, dtype=np.uint8)
    for lo, hi in ranges:
        table[lo:hi + 1] = 1
    return table.tobytes()


_COMPLEX = _range_table(_COMPLEX_RANGES)
_CLUSTERED = _range_table(_CLUSTERED_RANGES)
_ARABIC = _range_table(_ARABIC_RANGES)
_UNSPACED = _range_table(_UNSPACED_RANGES)
_CHUNKED = _range_table(_CHUNKED_RANGES)


class _CleanTable(dict):
    """str.translate table built lazily per character: spaces -> " ", Cc/Cf removed (see module doc)."""

    def __missing__(self, cp: int):
        if len(self) > 1 << 16:  # bounded, like every cache here
            self.clear()
        cat = unicodedata.category(chr(cp))
        if cat in ("Zs", "Zl", "Zp") or chr(cp) in "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85":
            value = 0x20
        elif cat == "Cc" or (cat == "Cf" and cp not in (0x200C, 0x200D)):
            value = None
        else:
            value = cp
        self[cp] = value
        return value


_CLEAN = _CleanTable()


def clean_text(text: str) -> str:
    """The text as the renderer draws it (before font choice): see the module docstring, step 1."""
    if text.isascii():
        return text if text.isprintable() else text.translate(_CLEAN)
    return unicodedata.normalize("NFC", text).translate(_CLEAN)


def _bidi_levels(text: str) -> tuple[list[int], int]:
    """Unicode bidi algorithm (UAX #9), implicit part: resolved embedding level per character.

    Explicit embeddings and isolates never reach here (clean_text removes them), so the paragraph
    is one level run: rules P2-P3, W1-W7, N1-N2, I1-I2 and L1 (trailing spaces).
    """
    original = [unicodedata.bidirectional(ch) or "L" for ch in text]
    para = 0
    for c in original:
        if c == "L":
            break
        if c in ("R", "AL"):
            para = 1
            break
    sos = "R" if para else "L"
    n = len(text)
    t = list(original)
    prev = sos
    for i in range(n):                                    # W1: marks take the type of their base
        if t[i] == "NSM":
            t[i] = prev
        prev = t[i]
    last = sos
    for i in range(n):                                    # W2: European digits after Arabic letters are Arabic
        if t[i] in ("L", "R", "AL"):
            last = t[i]
        elif t[i] == "EN" and last == "AL":
            t[i] = "AN"
    t = ["R" if c == "AL" else c for c in t]              # W3
    for i in range(1, n - 1):                             # W4: 1,000 and 1.5 stay numbers
        if t[i] == "ES" and t[i - 1] == "EN" == t[i + 1]:
            t[i] = "EN"
        elif t[i] == "CS" and t[i - 1] == t[i + 1] and t[i - 1] in ("EN", "AN"):
            t[i] = t[i - 1]
    i = 0
    while i < n:                                          # W5: currency and % next to digits
        if t[i] != "ET":
            i += 1
            continue
        j = i
        while j < n and t[j] == "ET":
            j += 1
        if (i > 0 and t[i - 1] == "EN") or (j < n and t[j] == "EN"):
            t[i:j] = ["EN"] * (j - i)
        i = j
    t = ["ON" if c in ("ES", "ET", "CS") else c for c in t]  # W6
    last = sos
    for i in range(n):                                    # W7: digits in left-to-right context are L
        if t[i] in ("L", "R"):
            last = t[i]
        elif t[i] == "EN" and last == "L":
            t[i] = "L"
    strong = {"L": "L", "R": "R", "EN": "R", "AN": "R"}
    i = 0
    while i < n:                                          # N1-N2: neutrals between same directions take it
        if t[i] in strong:
            i += 1
            continue
        j = i
        while j < n and t[j] not in strong:
            j += 1
        before = sos if i == 0 else strong[t[i - 1]]
        after = sos if j == n else strong[t[j]]
        t[i:j] = [before if before == after else sos] * (j - i)
        i = j
    if para == 0:                                         # I1-I2
        levels = [0 if c == "L" else 1 if c == "R" else 2 for c in t]
    else:
        levels = [1 if c == "R" else 2 for c in t]
    for i in range(n - 1, -1, -1):                        # L1: trailing spaces at paragraph level
        if original[i] != "WS":
            break
        levels[i] = para
    return levels, para


def _reorder(levels: list[int]) -> list[int]:
    """Rule L2: visual order of items given their levels (reverse every run at level >= k, k = max..1)."""
    order = list(range(len(levels)))
    if not levels:
        return order
    lowest_odd = min(lv for lv in levels if lv % 2 == 1) if any(lv % 2 for lv in levels) else max(levels) + 1
    for k in range(max(levels), lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] < k:
                i += 1
                continue
            j = i
            while j < len(order) and levels[order[j]] >= k:
                j += 1
            order[i:j] = order[i:j][::-1]
            i = j
    return order


# Grey levels of two overlapping layers of ink: coverages add up like layers, round(a * b / 255).
_OVER = ((np.arange(256)[:, None] * np.arange(256)[None, :] + 127) // 255).astype(np.uint8)


def _ink_at(img: np.ndarray, x0: int, bitmap: np.ndarray) -> None:
    """Draw bitmap over img in place from column x0 on, clipped to img's columns, the way Pillow draws
    overlapping glyphs (see _OVER)."""
    lo, hi = max(x0, 0), min(x0 + bitmap.shape[1], img.shape[1])
    if lo < hi:
        dst = img[:, lo:hi]
        dst[...] = _OVER[dst, bitmap[:, lo - x0:hi - x0]]


def _clusters(s: str) -> list[str]:
    """Split at cluster boundaries: a base with its marks and joiners, and consonants joined by a virama."""
    out: list[str] = []
    for ch in s:
        if out and (ch in _CLUSTER_JOINERS or ch in _IGNORABLE or unicodedata.category(ch)[0] == "M"
                    or out[-1][-1] in _CLUSTER_JOINERS or unicodedata.combining(out[-1][-1]) == 9):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _arabic_pieces(s: str) -> list[str]:
    """Split Arabic-script text where no letter joins across (see _ARABIC_NO_LEFT_JOIN)."""
    out: list[str] = []
    last = ""  # the last character of the current piece that is not a mark
    for ch in s:
        if out and (unicodedata.category(ch)[0] == "M" or ch == "\u200d"):
            out[-1] += ch  # marks and ZWJ stay with their letter
        elif (out and last and last not in _ARABIC_NO_LEFT_JOIN and unicodedata.category(last)[0] == "L"
              and unicodedata.category(ch)[0] == "L"):
            out[-1] += ch
        else:
            out.append(ch)
        if ch != "\u200d" and unicodedata.category(ch)[0] != "M":
            last = ch
    return out


def _units(piece: str) -> list[str]:
    """The shaping units of a complex single-font, single-direction piece."""
    cp = ord(piece[0])
    if _ARABIC[cp]:
        return _arabic_pieces(piece)
    if _CLUSTERED[cp] or len(piece) > MAX_UNIT:
        units = _clusters(piece)
        if _CLUSTERED[cp]:
            return units
        chunks, cur = [], ""  # other scripts: shaped whole, in chunks of at most MAX_UNIT characters
        for cl in units:
            if cur and len(cur) + len(cl) > MAX_UNIT:
                chunks.append(cur)
                cur = ""
            cur += cl
        return chunks + [cur]
    return [piece]


class Renderer:
    """Renders text into a strip of patches (see the module docstring for every step).

    layout: "auto" shapes complex scripts with raqm when Pillow has it; "basic" never uses raqm
    (what happens on machines without libfribidi): simple scripts render identically, text that
    needs shaping raises ShapingUnavailableError naming the missing library.

    How composition stays cheap: every glyph, shaped unit and word is stored as its advance box
    (the pixel columns from its pen position to the next one, column-major bytes) plus "spills",
    the bits of ink outside that box (an overhanging f, a combining mark). Boxes never overlap, so
    a line is one bytes join of boxes and one transpose; spills are then merged by multiplying
    coverage (`_ink_at`). A word seen once keeps its glyphs' spills apart (a typo is rarely seen
    again); seen twice, the spills inside its own box are baked in (see _word). All caches are bounded.
    """

    def __init__(self, config: RenderConfig | None = None, layout: str = "auto"):
        self.config = config or RenderConfig()
        if layout not in ("auto", "basic"):
            raise ValueError(f"layout={layout!r}: use 'auto' (raqm when available) or 'basic'")
        self.layout = layout
        c = self.config
        self.fonts = load_stack(tuple(c.fonts), float(c.font_size), layout == "auto" and raqm_available())
        ps = c.patch_size
        self._baseline = round(ps / 2 + 0.3 * c.font_size)  # centres Latin caps and descenders in the strip
        self._text_patches = c.max_patches - 1 if c.eos_patch else c.max_patches
        self._canvas = self._text_patches * ps
        # Characters looked at: one per pixel is generous (only marks, which sit on others, are narrower).
        self.max_chars = self._canvas
        self._words: dict[str, tuple] = {}      # seen at least twice (see _word)
        self._new_words: dict[str, tuple] = {}  # seen once
        self._units: dict[tuple, tuple] = {}
        self._runs: dict[tuple, tuple] = {}
        self._glyphs: list[dict[str, tuple]] = [{} for _ in self.fonts.names]
        # English words skip font choice when the first font has every printable ASCII character.
        self._ascii_first = all(cp in self.fonts.covers[0] for cp in range(0x21, 0x7F))
        self._space = self._glyph(" ", 0)[1]
        self._space_box = b"\xff" * (self._space * ps)
        self._pad_box = b"\xff" * (LEFT_PAD * ps)
        self._missing_box = self._box()
        # Word-aligned layout: cells of word_align patches; chunks of unspaced scripts hold as many
        # characters as fit a cell at the usual full width (one em = font_size pixels).
        self._cell = c.word_align * ps
        self._chunk_chars = c.chunk_chars or max(1, int((self._cell - LEFT_PAD) // c.font_size))
        self._chunk_runs = c.chunk_chars > 0    # chunk only the unspaced runs (see RenderConfig.chunk_chars)
        self._cells: dict[str, tuple] = {}      # word -> (column-major box of whole cells, width, missing)
        self._segment = load_segmenter(c.segment_words) if c.segment_words else None
        self._correct = load_corrector(c.correct_spelling) if c.correct_spelling else None

    # ---- public API ---------------------------------------------------------------------------

    def render(self, text: str) -> Rendered:
        """One text -> Rendered (pixels uint8 [patch_size, num_patches * patch_size])."""
        if not isinstance(text, str):
            raise TypeError(f"render() takes a str, got {type(text).__name__}; convert it with str() first")
        raw_limit = 2 * self.max_chars  # cleaning removes characters: look a little further
        head = clean_text(text[:raw_limit])
        if self._segment is not None:   # with the corrector, misspelt words are weighed as their corrections
            head = self._segment(head, self._correct)
        if self._correct is not None:
            head = self._correct(head)
        if len(head) > self.max_chars:
            text, truncated = head[:self.max_chars], True
        else:  # rare: a long text that is mostly removed characters
            text, truncated = head, len(text) > raw_limit and bool(clean_text(text[raw_limit:]).strip(" "))
        if not text:
            return self._finish([], 0, [], [], truncated)
        if self._cell:
            return self._render_words(text, truncated)
        limit, space, space_box = self._canvas, self._space, self._space_box
        boxes = [self._pad_box]
        spills: list[tuple] = []  # (pen x, spills of the word drawn there)
        missing: list[str] = []
        x = LEFT_PAD
        get = self._words.get
        for w in text.split(" "):
            e = get(w)
            if e is None:
                e = self._word(w)
            box, adv, spill, miss, state = e
            if state == _NEEDS_BIDI:  # right-to-left characters: the whole line takes the bidi path
                return self._render_bidi(text, truncated)
            boxes.append(box)
            boxes.append(space_box)
            if spill:
                spills.append((x, spill))
            if miss:
                missing.extend(miss)
            x += adv
            if x > limit:
                break
            x += space
        else:  # no space after the last word
            boxes.pop()
            x -= space
        return self._finish(boxes, x, spills, missing, truncated)

    def text_area(self, rendered: Rendered) -> np.ndarray:
        """The text patches of a strip this renderer drew: its pixels less the end patch (RenderConfig.eos_patch)."""
        return rendered.pixels[:, :rendered.pixels.shape[1] - (self.config.patch_size if self.config.eos_patch else 0)]

    def render_batch(self, texts: Sequence[str]) -> list[Rendered]:
        """Render many texts (a TypeError names the first that is not a str). Training renders in its
        DataLoader workers, so there is no process pool here."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        return [self.render(t) for t in texts]

    # ---- line composition -----------------------------------------------------------------------

    def _finish(self, boxes: list[bytes], end: int, spills: list[tuple], missing: list[str],
                truncated: bool, words: list[tuple[str, int, int]] | None = None) -> Rendered:
        """Join the boxes (columns 0..end), merge the spills, cut at the canvas, add the end patch."""
        c = self.config
        ps = c.patch_size
        for x, spill in spills:
            for dx, bm in spill:
                end = max(end, x + dx + bm.shape[1])
        truncated = truncated or end > self._canvas
        n_text = min(-(-end // ps), self._text_patches) if boxes else 0
        n = n_text + 1 if c.eos_patch else max(n_text, 1)
        width = n_text * ps
        pixels = np.empty((ps, n * ps), dtype=np.uint8)
        data = b"".join(boxes)
        used = min(len(data) // ps, width)
        pixels[:, :used] = np.frombuffer(data, np.uint8, used * ps).reshape(used, ps).T
        pixels[:, used:width] = 255
        text_area = pixels[:, :width]
        for x, spill in spills:
            for dx, bm in spill:
                _ink_at(text_area, x + dx, bm)
        if c.eos_patch:
            pixels[:, width:] = 0
        else:
            pixels[:, width:] = 255  # the one blank patch of an empty text
        return Rendered(pixels=pixels, num_patches=n, truncated=truncated, missing_glyphs=len(missing),
                        missing_chars=tuple(dict.fromkeys(missing)) if missing else (), words=tuple(words or ()))

    def _render_words(self, text: str, truncated: bool) -> Rendered:
        """Word-aligned line: each word (or chunk of an unspaced run) in whole cells, in reading order.

        Spaces only separate words (two spaces are one), so a word's cells never depend on its
        neighbours; the line is cut at the canvas like a continuous one.
        """
        boxes: list[bytes] = []
        missing: list[str] = []
        words: list[tuple[str, int, int]] = []
        x, limit, ps = 0, self._canvas, self.config.patch_size
        for w in text.split(" "):
            if not w:
                continue
            for piece in self._chunks(w) if len(w) > self._chunk_chars or self._chunk_runs else (w,):
                if x >= limit:   # the canvas is full and text remains
                    return self._finish(boxes, x, [], missing, True, words)
                e = self._cells.get(piece) or self._word_cells(piece)
                boxes.append(e[0])
                if x + e[1] <= limit:   # a piece cut by the canvas has no whole cells to name
                    words.append((piece, x // ps, (x + e[1]) // ps))
                x += e[1]
                missing.extend(e[2])
        return self._finish(boxes, x, [], missing, truncated, words)

    def _chunks(self, w: str) -> list[str]:
        """A space-free word as cell-sized units: whole, or cut into chunks of _chunk_chars clusters
        where it holds characters of a script written without spaces (the whole word, or with
        RenderConfig.chunk_chars set, only its unspaced runs: its other characters stay together)."""
        n, unspaced_table = self._chunk_chars, _CHUNKED if self._chunk_runs else _UNSPACED
        if not any(unspaced_table[ord(ch)] for ch in w):
            return [w]
        clusters = _clusters(w)
        if not self._chunk_runs:
            return ["".join(clusters[i:i + n]) for i in range(0, len(clusters), n)]
        pieces, spaced, unspaced = [], "", []
        for cluster in clusters:
            if _CHUNKED[ord(cluster[0])]:
                if spaced:
                    pieces.append(spaced)
                    spaced = ""
                unspaced.append(cluster)
                if len(unspaced) == n:
                    pieces.append("".join(unspaced))
                    unspaced = []
            else:
                if unspaced:
                    pieces.append("".join(unspaced))
                    unspaced = []
                spaced += cluster
        if unspaced:
            pieces.append("".join(unspaced))
        if spaced:
            pieces.append(spaced)
        return pieces

    def _word_cells(self, w: str) -> tuple:
        """(column-major box of whole cells, width in pixels, missing chars) of one word drawn alone."""
        ps, cell = self.config.patch_size, self._cell
        box, adv, spills, missing, state = self._words.get(w) or self._word(w)
        if state == _NEEDS_BIDI:  # right to left: shaped and ordered alone, then cropped to its ink
            r = self._render_bidi(w, False)
            strip = self.text_area(r)
            ink = np.flatnonzero(strip.min(axis=0) < 255)
            word = strip[:, ink[0]:ink[-1] + 1] if ink.size else strip[:, :0]
            width = -(-(LEFT_PAD + word.shape[1]) // cell) * cell
            img = np.full((ps, width), 255, dtype=np.uint8)
            img[:, LEFT_PAD:LEFT_PAD + word.shape[1]] = word
            missing = r.missing_chars
        else:
            width = -(-(LEFT_PAD + adv) // cell) * cell
            img = np.full((ps, width), 255, dtype=np.uint8)
            img[:, LEFT_PAD:LEFT_PAD + adv] = np.frombuffer(box, np.uint8).reshape(adv, ps).T
            for dx, bm in spills:  # ink outside the advance box, kept inside the word's own cells
                _ink_at(img, LEFT_PAD + dx, bm)
        entry = (img.T.tobytes(), width, tuple(missing))
        if len(w) <= MAX_CACHED_WORD:
            self._remember(self._cells, w, entry)
        return entry

    def _render_bidi(self, text: str, truncated: bool) -> Rendered:
        """A line with right-to-left text: resolve bidi levels, cut in logical order, reorder, compose."""
        if self.fonts.raqm[0] is None:
            raise ShapingUnavailableError(f"{shaping_unavailable_message()} (text: {text[:40]!r})")
        levels, para = _bidi_levels(text)
        items: list[tuple] = []  # (box, advance, spills) in logical order, with their levels
        item_levels: list[int] = []
        missing: list[str] = []
        total, limit = LEFT_PAD, self._canvas
        i, n = 0, len(text)
        while i < n and total <= limit:  # the canvas is filled in reading order, whatever the direction
            if text[i] == " ":
                items.append((self._space_box, self._space, ()))
                item_levels.append(levels[i])
                total += self._space
                i += 1
                continue
            j = i
            while j < n and text[j] != " " and levels[j] == levels[i]:
                j += 1
            # One run of a word at one level, composed in its direction and cached like a word.
            key = (text[i:j], levels[i] % 2 == 1)
            e = self._runs.get(key)
            if e is None:
                parts, miss = self._run_parts(*key)
                e = self._join(parts) + (tuple(miss),)
                if j - i <= MAX_CACHED_WORD:
                    self._remember(self._runs, key, e)
            items.append(e[:3])
            item_levels.append(levels[i])
            total += e[1]
            missing.extend(e[3])
            i = j
        truncated = truncated or bool(text[i:].strip(" "))
        ps = self.config.patch_size
        x = LEFT_PAD
        if para == 1:  # right-aligned: reading starts at the right edge of the text patches
            n_text = min(-(-total // ps), self._text_patches)
            x = n_text * ps - total
        boxes, spills = [], []
        for k in _reorder(item_levels):
            box, adv, spill = items[k]
            boxes.append(box)
            if spill:
                spills.append((x, spill))
            x += adv
        start = x - (total - LEFT_PAD)
        if start >= 0:
            boxes.insert(0, b"\xff" * (start * ps))
        else:  # a right-to-left line longer than the canvas loses its (logical) end, on the left
            boxes = [b"".join(boxes)[-start * ps:]]
            truncated = True
        return self._finish(boxes, x, spills, missing, truncated or x > limit)

    # ---- words, pieces, glyphs (all cached by exact text and font) ------------------------------

    def _word(self, w: str) -> tuple:
        """Entry (box, advance, spills, missing chars, state) of a word not in the main word cache.

        Words seen once wait in a probation cache; seen again, they are baked and move to the main
        cache. Typos, mostly seen once, thus never push the common words out.
        """
        entry = self._new_words.pop(w, None)
        if entry is not None:
            if entry[4] == _BAKE:
                entry = self._bake(entry)
            self._remember(self._words, w, entry)
            return entry
        entry = self._build_word(w)
        if len(w) <= MAX_CACHED_WORD:
            self._remember(self._new_words, w, entry)
        return entry

    def _build_word(self, w: str) -> tuple:
        """Entry of a space-free word composed left to right (see _word)."""
        if w.isascii() and self._ascii_first:  # the common case, and every English typo
            glyphs = self._glyphs[0]
            parts, missing = [glyphs.get(ch) or self._glyph(ch, 0) for ch in w], []
        elif any(_COMPLEX[ord(ch)] and unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in w):
            return (b"", 0, (), (), _NEEDS_BIDI)
        else:
            parts, missing = self._run_parts(w, rtl=False)
        box, adv, spills = self._join(parts)
        return (box, adv, spills, tuple(missing), _BAKE if spills and len(parts) > 1 else _DONE)

    def _run_parts(self, run: str, rtl: bool) -> tuple[list[tuple], list[str]]:
        """Glyphs or shaped units of a space-free run at one direction, in visual order; missing chars."""
        parts, missing = [], []
        for piece, font in self._pieces(run):
            if font == NO_FONT:
                missing.append(piece)
            parts.extend(self._piece_glyphs(piece, font, rtl))
        return (parts[::-1] if rtl else parts), missing

    @staticmethod
    def _join(parts: list[tuple]) -> tuple:
        """Boxes side by side: (box, advance, spills) of the whole, spills moved to their pen positions."""
        if len(parts) == 1:
            return parts[0]
        x, spills = 0, []
        for _, adv, spill in parts:
            if spill:
                spills.extend((x + dx, bm) for dx, bm in spill)
            x += adv
        return b"".join(p[0] for p in parts), x, tuple(spills)

    def _bake(self, entry: tuple) -> tuple:
        """Merge the spills that fall inside a word's own box into the box (see the class docstring)."""
        box, adv, spills, missing, _ = entry
        ps = self.config.patch_size
        img = np.frombuffer(box, np.uint8).reshape(adv, ps).T.copy()
        outside = []
        for dx, bm in spills:
            _ink_at(img, dx, bm)
            if dx < 0:
                outside.append((dx, bm[:, :min(-dx, bm.shape[1])]))
            if dx + bm.shape[1] > adv:
                keep = max(adv - dx, 0)
                outside.append((dx + keep, bm[:, keep:]))
        return (img.T.tobytes(), adv, tuple(outside), missing, _DONE)

    def _pieces(self, w: str) -> list[tuple[str, int]]:
        """Split a space-free run into (text, font index) pieces; NO_FONT pieces are one missing char."""
        first, covers = self.fonts.first_font, self.fonts.covers
        pieces: list[list] = []
        for ch in w:
            cp = ord(ch)
            font = first[cp]
            if cp >= 0x300 and pieces and pieces[-1][1] != NO_FONT and (
                    ch in _IGNORABLE or unicodedata.category(ch)[0] == "M"):
                prev = pieces[-1][1]
                if ch in _IGNORABLE or cp in covers[prev]:
                    font = prev  # a mark stays with its base's font
            elif ch in _IGNORABLE and font == NO_FONT:
                continue  # a variation selector or joiner with nothing to steer is invisible anyway
            if pieces and font == pieces[-1][1] and font != NO_FONT:
                pieces[-1][0] += ch
            else:
                pieces.append([ch, font])
        return [(p, f) for p, f in pieces]

    def _piece_glyphs(self, piece: str, font: int, rtl: bool) -> list[tuple]:
        """(box, advance, spills) of the glyphs or shaped units of one single-font piece, in logical order."""
        if font == NO_FONT:
            return [self._missing_box]
        if not rtl and not any(_COMPLEX[ord(ch)] for ch in piece):
            glyphs = self._glyphs[font]
            return [glyphs.get(ch) or self._glyph(ch, font) for ch in piece if ch not in _IGNORABLE]
        return [self._units.get((u, font, rtl)) or self._shape(u, font, rtl) for u in _units(piece)]

    def _draw(self, text: str, font, direction: str | None) -> tuple:
        """Rasterise text in one font, pen at x=0 on the baseline: (box, advance, spills)."""
        ps = self.config.patch_size
        adv = max(round(font.getlength(text, direction=direction)), 0)
        margin = 2 * ps  # room for ink outside the advance box; grown in the rare case it is not enough
        while True:
            im = Image.new("L", (adv + 2 * margin, ps), 255)
            ImageDraw.Draw(im).text((margin, self._baseline), text, font=font, fill=0, anchor="ls",
                                    direction=direction)
            img = np.asarray(im)
            ink = np.flatnonzero(img.min(axis=0) < 255)
            if not ink.size or (ink[0] > 0 and ink[-1] < img.shape[1] - 1):
                break
            margin *= 4
        spills = []
        if ink.size and ink[0] < margin:
            spills.append((int(ink[0]) - margin, img[:, ink[0]:margin]))
        if ink.size and ink[-1] >= margin + adv:
            spills.append((adv, img[:, margin + adv:ink[-1] + 1]))
        return (np.ascontiguousarray(img[:, margin:margin + adv].T).tobytes(), adv, tuple(spills))

    def _glyph(self, ch: str, font: int) -> tuple:
        entry = self._draw(ch, self.fonts.basic[font], None)
        self._remember(self._glyphs[font], ch, entry)
        return entry

    def _shape(self, unit: str, font: int, rtl: bool) -> tuple:
        shaper = self.fonts.raqm[font]
        if shaper is None:
            raise ShapingUnavailableError(f"{shaping_unavailable_message()} (text: {unit!r})")
        entry = self._draw(unit, shaper, "rtl" if rtl else "ltr")
        self._remember(self._units, (unit, font, rtl), entry)
        return entry

    def _box(self) -> tuple:
        """The placeholder for a character no font has: a hollow box, cap height tall, 1 px apart."""
        fs, ps = self.config.font_size, self.config.patch_size
        w, h = max(3, round(0.55 * fs)), max(3, round(0.7 * fs))
        img = np.full((ps, w + 2), 255, dtype=np.uint8)
        top, bottom = max(0, self._baseline - h), min(ps, self._baseline)
        img[top:bottom, [1, w]] = 0
        img[[top, bottom - 1], 1:w + 1] = 0
        return (np.ascontiguousarray(img.T).tobytes(), w + 2, ())

    @staticmethod
    def _remember(cache: dict, key, entry) -> None:
        """Insert with a bound: when full, drop the older half (insertion order), keeping memory flat."""
        if len(cache) >= CACHE_SIZE:
            for old in list(cache)[:CACHE_SIZE // 2]:
                del cache[old]
        cache[key] = entry
