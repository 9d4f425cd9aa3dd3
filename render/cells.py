"""Putting a line drawn as continuous text into the renderer's word cells (word-aligned layout).

A word-aligned model (RenderConfig.word_align) reads each word in cells of its own, its ink starting LEFT_PAD
(or one more) pixels into the first: the bundle reads STS-B en dev at 76.4 so, and at 7.4 when the same
sentences are drawn as continuous text, as every other renderer, a screenshot or a scan draws them
(docs/study.md, section 24). `CellAligner` lays such a line out again without knowing its text:

1. Where words end: at a run of blank columns between two inked ones. In the renderer's font a run of
   WORD_GAP columns or more falls between words, a shorter one inside a word ("r t"), but not always: next to
   slanted letters ("A young") a space leaves fewer, between digits ("11") a word more. Which, is looked up
   from the ink on either side of the run, as the renderer draws it: a table of (run length, the two inked
   columns before it, the two after) -> whether a word ended there. A run the table lacks ends a word when it
   is WORD_GAP wide (RTL_WORD_GAP beside right-to-left ink).
2. Where a word's ink goes in its cells: its left side bearing (LEFT_PAD for most first letters, one more for
   some) from a table keyed by its first two inked columns, and its right bearing, which decides how many cells
   it takes, from one keyed by its last two; LEFT_PAD and one column when the columns are unknown.

The tables are counted once, on lines the renderer draws continuous with every pen position known: frequent
English words, numbers and punctuation, every pair of characters of SCRIPTS across a space and inside a word,
Hangul syllables and Arabic letters.
A strip snapped back onto the grid (pixelrep.render.grid) keeps a few grey levels of error, faint ink where a space
was among them, so a column counts as blank from PAPER up, and in a snapped strip from FAINT up beside a blank one
(without it a fifth of the dev lines moved half a pixel lost a space; on the renderer's own strips it costs Arabic,
whose thin joins are faint), and a key the tables lack takes the nearest one within NEAR grey levels. A strip whose words
already start where cells start (the renderer's own, or moved by a few pixels) is given back unchanged. With
another typeface the tables rarely match and the fallbacks read DejaVu Sans and Serif lines as well as
word-aligned drawings of them.

Chinese and Japanese leave no gap between characters to cut at, but every character is one em wide: a window of
an em's columns that is exactly one of the renderer's own glyphs (GLYPH_SETS, drawn once) is that character, and a
window between two found ones is a character outside the sets. Each goes to the cells the renderer gives it
(RenderConfig.chunk_chars per cell); what lies between runs of them is laid out by the tables.

Arabic is drawn right to left: the renderer right-aligns the line, its first word on the right, and puts a
right-to-left word in its cells cropped to its ink. A third table, counted on lines of Arabic letters drawn across
a space in every order, says from a word's edge columns whether it is right-to-left ink; a line of mostly such
words is read from its right, a run of left-to-right words inside it (numbers, Latin) from that run's left, as
bidi ordering does at the level of words. Counting the tables and drawing the glyphs takes a few seconds, once per
process and config (aligner_for).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import random
import string
from collections import Counter, defaultdict

import numpy as np

from pixelrep.render.renderer import _CHUNKED, LEFT_PAD

WORD_GAP = 3          # blank columns that always part two words in the renderer's font (inside a word: at most 2)
RTL_WORD_GAP = 2      # the same between right-to-left (Arabic) words, whose pieces mostly stand 1 column apart
EDGE = 2              # inked columns on each side of a gap (and at a word's start) that key the tables
ALIGNED_REACH = (-3, 6)   # a word start this far from a cell's first column counts as in its cell (moves included)
PAPER = 253           # a column this light or lighter is blank
FAINT = 243           # in a strip snapped back onto the grid, a column this light beside a blank one is blank too (the
FAINT_REACH = 1       # snapper leaves a few grey levels of error): up to this many columns on each side of a blank run
NEAR = 4.0            # mean grey levels a gap's or a word edge's columns may differ from a table's to take its entry
BOXY = 0.6            # a glyph whose ink spans this share of an em both ways is found alone; a thinner one ("一", "。")
                      # only beside another (a dash or a bar drawn by a Latin font could match it)
# The CJK character sets whose every character (hanzi, kanji, kana and CJK punctuation: 10,030; with the full-width
# forms of ASCII, 10,124) is drawn once to find glyphs in a line (as codec, first byte range of their two-byte codes):
# all of STS-B zh and ja dev's characters.
GLYPH_SETS = (("gb2312", range(0xA1, 0xF8)), ("euc_jp", range(0xA1, 0xF5)))


_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
# The character pairs the tables are also counted on, per script: a letter to stand beside each pair, the script's
# characters, and the letters, digits and punctuation written with them. Latin: ASCII, then the accented letters of
# the STS-B languages and Polish.
SCRIPTS = (("o", _ASCII, ""),
           ("o", "àáâäçèéêëìíîïñòóôöùúûüßÀÁÂÄÇÈÉÊËÍÎÑÓÔÖÚÜąćęłńśźżŁŚŻ",
            string.ascii_letters + string.digits + ".,;:!?-()'\""),
           ("о", "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ", "0123456789.,;:!?-«»()\"'"))


def _inked(pixels: np.ndarray, snapped: bool = False) -> np.ndarray:
    """Which columns hold ink: darker than PAPER; in a strip moved back onto the grid (`snapped`), less FAINT columns
    beside a blank one (up to FAINT_REACH deep)."""
    lightest = pixels.min(0)
    inked, faint = lightest < PAPER, lightest >= FAINT
    for _ in range(FAINT_REACH if snapped else 0):
        blank = ~inked
        inked = inked & ~(faint & (np.r_[False, blank[:-1]] | np.r_[blank[1:], False]))
    return inked


def _blank_runs(inked: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of blank columns between two inked ones."""
    cols = np.flatnonzero(inked)
    if len(cols) < 2:
        return []
    gaps = np.flatnonzero(np.diff(cols) > 1)
    return [(int(cols[i]) + 1, int(cols[i + 1])) for i in gaps]


def _training_lines(words: list[str], lines: int, words_per_line: int, seed: int):
    """Lines to count the tables on: frequent English words (a fifth capitalised, a sentence's first always, and
    punctuation after some), numbers among them; then every pair of characters of each of SCRIPTS across a space and
    inside a word (so that "A young" and "11" are seen however rare in running text); then Hangul syllables."""
    rng = random.Random(seed)
    common = [w for w in words[:5000] if w.isalpha()] + ["a", "I"] * 50
    for _ in range(lines):
        line = [rng.choice(common) if rng.random() < 0.9 else _number(rng) for _ in range(words_per_line)]
        line = [w.capitalize() if rng.random() < 0.2 else w for w in line]
        line[0] = line[0].capitalize()
        yield [w + rng.choice(".,;:?!)'\"") if rng.random() < 0.15 else w for w in line]
    for letter, alphabet, others in SCRIPTS:
        chars = list(alphabet) + list(others)
        pairs = [word for a in chars for b in chars for word in (f"{letter}{a}", f"{b}{letter}")]
        pairs += [f"{letter}{a}{b}{letter}" for a in chars for b in chars]
        for i in range(0, len(pairs), 2 * words_per_line):
            yield pairs[i:i + 2 * words_per_line]
    # Hangul has too many syllables for every pair: each of KS X 1001's 2,350 starts one word and ends another, a
    # fifth with punctuation after.
    syllables = _two_byte_characters("euc_kr", range(0xB0, 0xC9))
    following = syllables[1:] + syllables[:1]
    words = [a + b + (rng.choice(".,?!") if rng.random() < 0.2 else "") for a, b in zip(syllables, following)]
    for i in range(0, len(words), 2 * words_per_line):
        yield words[i:i + 2 * words_per_line]


def _two_byte_characters(codec: str, first_bytes: range) -> list[str]:
    """The characters a two-byte EUC codec encodes with these first bytes (second bytes 0xA1-0xFE), in code order."""
    return [char for first in first_bytes for second in range(0xA1, 0xFF)
            for char in [bytes([first, second]).decode(codec, errors="ignore")] if len(char) == 1]


def glyph_set_characters() -> list[str]:
    """The characters of GLYPH_SETS that a word-aligned renderer cuts into cells (RenderConfig.chunk_chars), and their
    full-width forms of ASCII ("，", "Ａ"), in code point order."""
    return sorted({char for codec, first_bytes in GLYPH_SETS for char in _two_byte_characters(codec, first_bytes)
                   if _CHUNKED[ord(char)] or 0xFF01 <= ord(char) <= 0xFF5E})


def _window_hashes(columns: np.ndarray, width: int) -> np.ndarray:
    """A uint64 hash of each window of `width` columns of a column-major strip (uint8 [W, patch_size]): a polynomial
    in _BASE of its columns' hashes, from prefix sums (the odd base is invertible modulo 2 ** 64)."""
    rows = -(-columns.shape[1] // 8) * 8
    if rows != columns.shape[1]:
        columns = np.pad(columns, ((0, 0), (0, rows - columns.shape[1])))
    words = np.ascontiguousarray(columns).view(np.uint64)
    column = (words * _ROW_MIX[:words.shape[1]]).sum(1, dtype=np.uint64)
    n = len(column) - width + 1
    if n <= 0:
        return np.zeros(0, np.uint64)
    powers, inverses = _powers(len(column))
    prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(column * powers, dtype=np.uint64)])
    return (prefix[width:] - prefix[:n]) * inverses[:n]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_BASE ** i and _BASE ** -i modulo 2 ** 64 for i < n (cached; grown by doubling)."""
    global _POWERS
    if len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]))
        _POWERS = tuple(np.cumprod(np.concatenate([np.ones(1, np.uint64), np.full(size - 1, base, np.uint64)]),
                                   dtype=np.uint64) for base in (_BASE, pow(_BASE, -1, 2 ** 64)))
    return _POWERS[0][:n], _POWERS[1][:n]


_ROW_MIX = np.random.default_rng(0).integers(1, 2 ** 63, size=64, dtype=np.uint64)
_BASE = 0x9E3779B97F4A7C15   # odd
_POWERS = (np.zeros(0, np.uint64), np.zeros(0, np.uint64))


# Arabic letters, drawn across a space in every order (the end of one word, the start of the next), so that the
# tables see their final and initial forms side by side; a fifth of the words have punctuation after them.
ARABIC_LETTERS = "ءآأؤإئابةتثجحخدذرزسشصضطظعغفقكلمنهوىي"
ARABIC_ROUNDS = 3


def _arabic_lines(words_per_line: int):
    rng = random.Random(0)
    pairs = [(a, b) for a in ARABIC_LETTERS for b in ARABIC_LETTERS]   # (a word's last letter, the next one's first)
    words = [b + "".join(rng.choices("لمنسباويهتر", k=rng.randint(0, 3))) + a
             + rng.choice(["", "", "", "", "،", "؟", ".", ":"])
             for _ in range(ARABIC_ROUNDS) for (_, b), (a, _) in zip(pairs, pairs[1:])]
    for i in range(0, len(words), 2 * words_per_line - 1):   # lines overlap by a word: no pair is lost at a break
        yield words[i:i + 2 * words_per_line]


def _pen_spaces(renderer, line: list[str], rtl: bool) -> tuple[list[tuple[int, int]], int]:
    """[start, end) of each space between the words of `line` as `renderer` draws it continuous (left to right on the
    strip; a right-to-left line is right-aligned, its first word on the right), and where the last word's advance
    ends (left-to-right lines)."""
    space = renderer._space
    if rtl:
        advances = [renderer._join(renderer._run_parts(w, rtl=True)[0])[1] for w in line]
        total = LEFT_PAD + sum(advances) + space * (len(line) - 1)
        x = min(-(-total // renderer.config.patch_size), renderer._text_patches) * renderer.config.patch_size - total
        advances = advances[::-1]
    else:
        advances, x = [(renderer._words.get(w) or renderer._word(w))[1] for w in line], LEFT_PAD
    spaces = []
    for advance in advances:
        spaces.append((x + advance, x + advance + space))
        x += advance + space
    return spaces[:-1], spaces[-1][0]


def _reading_order(rtl: list[bool]) -> list[int]:
    """Indices of a line's words (left to right as drawn) in reading order: a line of mostly right-to-left words reads
    from its right, a run of left-to-right ones inside it (numbers, Latin words) from that run's left; a run of
    right-to-left words inside a left-to-right line from its right."""
    runs = [list(run) for _, run in itertools.groupby(range(len(rtl)), key=lambda k: rtl[k])]
    if 2 * sum(rtl) > len(rtl):
        runs = runs[::-1]
    return [k for run in runs for k in (run[::-1] if rtl[run[0]] else run)]


def _number(rng: random.Random) -> str:
    n = rng.choice([rng.randint(0, 99), rng.randint(100, 9999), rng.randint(10_000, 999_999)])
    return rng.choice([str(n), f"{n:,}", f"{n / 100:.2f}"])


@functools.lru_cache(maxsize=8)
def aligner_for(config) -> "CellAligner":
    """The CellAligner of a word-aligned RenderConfig, shared in a process by every config that draws the same cells
    (its tables take seconds to count): the canvas, end patch, snapping and English front end do not change them."""
    from pixelrep.render.renderer import Renderer

    return CellAligner(Renderer(dataclasses.replace(config, max_patches=512, eos_patch=True, snap_to_grid=False,
                                                    segment_words="", correct_spelling="")))


class _Table:
    """Keys (bytes) -> values. `get` takes the exact key, else the nearest key of the same length and the same first
    `exact_prefix` bytes whose other bytes differ by at most NEAR on average (a strip snapped back onto the grid),
    else `default`."""

    def __init__(self, entries: dict, exact_prefix: int = 0):
        self.exact, self.prefix = entries, exact_prefix
        groups: dict[tuple, list] = defaultdict(list)
        for key, value in entries.items():
            groups[(len(key), key[:exact_prefix])].append((key[exact_prefix:], value))
        self.near = {group: (np.frombuffer(b"".join(k for k, _ in rows), np.uint8).reshape(len(rows), -1).astype(np.int16),
                             [v for _, v in rows]) for group, rows in groups.items()}

    def get(self, key: bytes, default=None):
        value = self.exact.get(key)
        if value is not None:
            return value
        keys, values = self.near.get((len(key), key[:self.prefix]), (None, None))
        if keys is None or not keys.shape[1]:
            return default
        distance = np.abs(keys - np.frombuffer(key[self.prefix:], np.uint8).astype(np.int16)).mean(1)
        best = int(distance.argmin())
        return values[best] if distance[best] <= NEAR else default


class CellAligner:
    """Lays a strip of continuous text out in a word-aligned renderer's cells (module docstring); counts its tables on
    `renderer` drawing `lines` lines of `words_per_line` frequent English words (seeded), the pairs of SCRIPTS,
    Hangul and Arabic, and draws the glyphs of GLYPH_SETS. aligner_for(config) shares one per config."""

    def __init__(self, renderer, lines: int = 3000, words_per_line: int = 8, seed: int = 0):
        from pixelrep.render.renderer import Renderer
        from pixelrep.render.segment import read_words

        config = renderer.config
        if not config.word_align:
            raise ValueError("CellAligner needs a word-aligned renderer (RenderConfig.word_align > 0): a continuous "
                             "layout has no cells to put words in")
        self.cell = config.word_align * config.patch_size
        # The same font and size, drawn continuous and as written (no re-spacing or spelling front end).
        continuous = Renderer(dataclasses.replace(config, word_align=0, segment_words="", correct_spelling="",
                                                  snap_to_grid=False))
        gaps: dict[bytes, Counter] = defaultdict(Counter)
        starts: dict[bytes, Counter] = defaultdict(Counter)
        bearings: dict[bytes, Counter] = defaultdict(Counter)
        directions: dict[bytes, Counter] = defaultdict(Counter)
        lines = [(line, False) for line in _training_lines(read_words("en"), lines, words_per_line, seed)]
        if continuous.fonts.raqm[0] is not None:   # without raqm the renderer draws no Arabic
            lines += [(line, True) for line in _arabic_lines(words_per_line)]
        for line, rtl in lines:
            pixels = continuous.render(" ".join(line)).pixels
            ink = _inked(pixels)
            spaces, last_end = _pen_spaces(continuous, line, rtl)
            cols = np.flatnonzero(ink)
            first = int(cols[0])
            for start, end in _blank_runs(ink):
                space = next(((a, b) for a, b in spaces if start < b and end > a), None)
                gaps[self._gap_key(pixels, start, end)][space is not None] += 1
                if space is not None:
                    directions[self._start_key(pixels, first)][rtl] += 1
                    directions[self._end_key(pixels, start)][rtl] += 1
                    first = end
                    if not rtl:   # a right-to-left word goes in its cells cropped to its ink: no bearings
                        starts[self._start_key(pixels, end)][LEFT_PAD + end - space[1]] += 1
                        bearings[self._end_key(pixels, start)][space[0] - start] += 1
            directions[self._start_key(pixels, first)][rtl] += 1
            directions[self._end_key(pixels, int(cols[-1]) + 1)][rtl] += 1
            if not rtl:
                starts[self._start_key(pixels, int(cols[0]))][int(cols[0])] += 1
                bearings[self._end_key(pixels, int(cols[-1]) + 1)][last_end - int(cols[-1]) - 1] += 1
        self.word_ends = _Table({key: c[True] > c[False] for key, c in gaps.items()}, exact_prefix=1)
        self.ink_start = _Table({key: c.most_common(1)[0][0] for key, c in starts.items()})
        self.right_bearing = _Table({key: c.most_common(1)[0][0] for key, c in bearings.items()})
        self.right_to_left = _Table({key: c[True] > c[False] for key, c in directions.items()})
        self._draw_glyphs(continuous)
        self.chunk = renderer._chunk_chars   # CJK characters per cell

    def _draw_glyphs(self, continuous) -> None:
        """The glyph table: the column-major pixels of each character of glyph_set_characters() that the font draws
        one em wide, alone inside its advance -> (whether it is boxy (BOXY), whether the renderer cuts it into cells
        with its neighbours; a full-width form of ASCII is a piece of its own). The em is their most common advance."""
        ps = continuous.config.patch_size
        drawn = [(continuous._build_word(char), bool(_CHUNKED[ord(char)])) for char in glyph_set_characters()]
        drawn = [(box, advance, chunked) for (box, advance, spills, missing, _), chunked in drawn
                 if advance and not spills and not missing]
        self.em = Counter(advance for _, advance, _ in drawn).most_common(1)[0][0] if drawn else 0
        self.glyphs: dict[bytes, tuple[bool, bool]] = {}
        for box, advance, chunked in drawn:
            ink = np.frombuffer(box, np.uint8).reshape(advance, ps) < PAPER
            if advance == self.em and ink.any():
                cols, rows = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
                self.glyphs[box] = (bool(min(cols[-1] - cols[0], rows[-1] - rows[0]) + 1 >= BOXY * self.em), chunked)
        # A bit per 20-bit hash prefix: proposes windows to look up (about 1% of other windows pass)
        self._glyph_bits = np.zeros(1 << 20, dtype=bool)
        for box in self.glyphs:
            self._glyph_bits[_window_hashes(np.frombuffer(box, np.uint8).reshape(self.em, ps), self.em) >> 44] = True

    def _gap_key(self, pixels: np.ndarray, start: int, end: int) -> bytes:
        return bytes([min(end - start, 255)]) + pixels[:, max(start - EDGE, 0):start].tobytes() + pixels[:, end:end + EDGE].tobytes()

    def _start_key(self, pixels: np.ndarray, first: int) -> bytes:
        return pixels[:, first:first + EDGE].tobytes()

    def _end_key(self, pixels: np.ndarray, end: int) -> bytes:
        return pixels[:, max(end - EDGE, 0):end].tobytes()

    def words(self, pixels: np.ndarray, snapped: bool = False) -> list[tuple[int, int]]:
        """[first, last + 1) inked column of each word of a strip of text (no end patch; `snapped`: moved back onto
        the grid, see _inked)."""
        inked = _inked(pixels, snapped)
        cols = np.flatnonzero(inked)
        if not len(cols):
            return []
        out, first = [], int(cols[0])
        for start, end in _blank_runs(inked):
            ends = self.word_ends.get(self._gap_key(pixels, start, end))
            if ends is None:   # a gap the table lacks: by its width, narrower beside right-to-left ink
                rtl = self.right_to_left.get(self._end_key(pixels, start)) or self.right_to_left.get(self._start_key(pixels, end))
                ends = end - start >= (RTL_WORD_GAP if rtl else WORD_GAP)
            if ends:
                out.append((first, start))
                first = end
        return out + [(first, int(cols[-1]) + 1)]

    def glyph_starts(self, pixels: np.ndarray) -> list[tuple[int, bool]]:
        """(first column of its em box, whether the renderer cuts it with its neighbours) of each CJK character of a
        strip (module docstring): windows that are a glyph of the table (a thin one only beside another), and a window
        between two found ones (taken for a character outside the sets)."""
        em = self.em
        if not em or pixels.shape[1] < em:
            return []
        columns = np.ascontiguousarray(pixels.T)
        found = {}
        for x in np.flatnonzero(self._glyph_bits[_window_hashes(columns, em) >> 44]).tolist():
            glyph = self.glyphs.get(columns[x:x + em].tobytes())
            if glyph is not None:
                found[x] = glyph
        starts, end = [], 0
        for x, (boxy, chunked) in found.items():   # in column order
            if x < end or not (boxy or x - em in found or x + em in found):
                continue
            if not chunked and not (found.get(x - em, (0, 0))[1] and found.get(x + em, (0, 0))[1]):
                continue   # a full-width form of ASCII is cut alone only between two CJK characters (else: the tables)
            if starts and starts[-1][0] == x - 2 * em and (pixels[:, x - em:x] < PAPER).any():
                starts.append((x - em, True))
            starts.append((x, chunked))
            end = x + em
        return starts

    def in_cells(self, pixels: np.ndarray, snapped: bool = False) -> bool:
        """Whether every word starts where a cell starts (within ALIGNED_REACH): a strip already laid out in cells,
        perhaps moved by a few pixels."""
        return self._in_cells(*self._found(pixels, snapped))

    def __call__(self, pixels: np.ndarray, snapped: bool = False) -> np.ndarray:
        """`pixels` laid out in cells (lay_out), or `pixels` itself when its words are in cells already (in_cells)."""
        starts, words = self._found(pixels, snapped)
        return pixels if self._in_cells(starts, words) else self._laid_out(pixels, starts, words, snapped)

    def lay_out(self, pixels: np.ndarray, snapped: bool = False) -> np.ndarray:
        """A strip of text (uint8 [patch_size, W], no end patch) with each word moved into cells of its own, as the
        renderer lays words out; `snapped`: a strip the grid snapper moved, whose blank columns may keep faint ink.
        The result may be wider than the renderer's canvas: the caller cuts it."""
        return self._laid_out(pixels, *self._found(pixels, snapped), snapped)

    def _found(self, pixels: np.ndarray, snapped: bool) -> tuple[list[tuple[int, bool]], list[tuple[int, int]]]:
        """The strip's CJK characters (glyph_starts), or none and its words, each found once: the near lookups make
        the words the costly part for unknown scripts."""
        starts = self.glyph_starts(pixels)
        return starts, ([] if starts else self.words(pixels, snapped))

    def _in_cells(self, starts: list[tuple[int, bool]], words: list[tuple[int, int]]) -> bool:
        return self._glyphs_in_cells(starts) if starts else self._starts_in_cells(words)

    def _laid_out(self, pixels: np.ndarray, starts: list[tuple[int, bool]], words: list[tuple[int, int]],
                  snapped: bool) -> np.ndarray:
        return self._with_glyphs(pixels, starts, snapped) if starts else self._placed(pixels, words)

    def _starts_in_cells(self, words: list[tuple[int, int]]) -> bool:
        low, high = ALIGNED_REACH
        return all(low <= (first + LEFT_PAD) % self.cell - LEFT_PAD <= high for first, _ in words)

    def _glyphs_in_cells(self, starts: list[tuple[int, bool]]) -> bool:
        """Whether every CJK character's em box starts LEFT_PAD into a cell (within ALIGNED_REACH); a full-width form
        of ASCII may share its cells with a word."""
        return self._starts_in_cells([(x, x + self.em) for x, chunked in starts if chunked])

    def _with_glyphs(self, pixels: np.ndarray, starts: list[tuple[int, bool]], snapped: bool) -> np.ndarray:
        """lay_out of a strip with CJK characters at `starts`: `chunk` consecutive ones to a cell's text, as the
        renderer cuts their runs (a full-width form of ASCII alone); the stretches between runs laid out by the tables."""
        em, pieces, x, runs = self.em, [], 0, []
        for start, chunked in starts:
            if runs and runs[-1][0][-1] == start - em and chunked and runs[-1][1]:
                runs[-1][0].append(start)
            else:
                runs.append(([start], chunked))
        for run, _ in runs:
            pieces.append(self._placed(pixels[:, x:run[0]], self.words(pixels[:, x:run[0]], snapped)))
            for chunk in range(0, len(run), self.chunk):
                first, end = int(run[chunk]), int(run[min(chunk + self.chunk, len(run)) - 1]) + em
                cells = np.full((pixels.shape[0], -(-(LEFT_PAD + end - first) // self.cell) * self.cell), 255, np.uint8)
                cells[:, LEFT_PAD:LEFT_PAD + end - first] = pixels[:, first:end]
                pieces.append(cells)
            x = int(run[-1]) + em
        pieces.append(self._placed(pixels[:, x:], self.words(pixels[:, x:], snapped)))
        return np.concatenate(pieces, axis=1)

    def _placed(self, pixels: np.ndarray, words: list[tuple[int, int]]) -> np.ndarray:
        """lay_out, with the strip's words already found: each in cells of its own, in reading order."""
        any_ink = pixels.min(0) < 255
        pieces, rtl = [], []
        for k, (first, end) in enumerate(words):
            # The word's faintest edge columns (lighter than PAPER) go with it, up to halfway to its neighbours.
            low = (words[k - 1][1] + first + 1) // 2 if k else 0
            high = (end + words[k + 1][0]) // 2 if k + 1 < len(words) else pixels.shape[1]
            votes = [self.right_to_left.get(self._start_key(pixels, first)),
                     self.right_to_left.get(self._end_key(pixels, end))]
            rtl.append(votes.count(True) > votes.count(False))
            left, right = first, end
            if rtl[-1]:   # cropped to its ink, which starts LEFT_PAD into its cells (as the renderer draws it)
                while left > low and any_ink[left - 1]:
                    left -= 1
                while right < high and any_ink[right]:
                    right += 1
                start, width = LEFT_PAD + first - left, -(-(LEFT_PAD + right - left) // self.cell) * self.cell
            else:   # whole cells for LEFT_PAD + its advance: its left bearing (in `start`), ink and right bearing
                start = self.ink_start.get(self._start_key(pixels, first), LEFT_PAD)
                advance_end = start + end - first + max(self.right_bearing.get(self._end_key(pixels, end), 1), 0)
                width = -(-advance_end // self.cell) * self.cell
                while left > max(low, first - start) and any_ink[left - 1]:
                    left -= 1
                while right < min(high, first + width - start) and any_ink[right]:
                    right += 1
            cells = np.full((pixels.shape[0], width), 255, dtype=np.uint8)
            cells[:, start - (first - left):start + right - first] = pixels[:, left:right]
            pieces.append(cells)
        return np.concatenate([np.full((pixels.shape[0], 0), 255, dtype=np.uint8)]
                              + [pieces[k] for k in _reading_order(rtl)], axis=1)
