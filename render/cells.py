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
   is WORD_GAP wide.
2. Where a word's ink goes in its cells: its left side bearing (LEFT_PAD for most first letters, one more for
   some) from a table keyed by its first two inked columns, and its right bearing, which decides how many cells
   it takes, from one keyed by its last two; LEFT_PAD and one column when the columns are unknown.

The tables are counted once, on lines the renderer draws continuous with every pen position known: frequent
English words, numbers and punctuation, and every pair of characters of SCRIPTS across a space and inside a word.
A strip snapped back onto the grid (pixelrep.render.grid) keeps a grey level or two of error, so a column counts as
blank from PAPER up and a key the tables lack takes the nearest one within NEAR grey levels. A strip whose words
already start where cells start (the renderer's own, or moved by a few pixels) is given back unchanged. With
another typeface the tables rarely match and the fallbacks read DejaVu Sans and Serif lines as well as
word-aligned drawings of them; Chinese and Japanese (one character per cell, touching) and right-to-left Arabic
are not laid out as the renderer lays them out.
"""
from __future__ import annotations

import dataclasses
import random
import string
from collections import Counter, defaultdict

import numpy as np

from pixelrep.render.renderer import LEFT_PAD

WORD_GAP = 3          # blank columns that always part two words in the renderer's font (inside a word: at most 2)
EDGE = 2              # inked columns on each side of a gap (and at a word's start) that key the tables
ALIGNED_REACH = (-3, 6)   # a word start this far from a cell's first column counts as in its cell (moves included)
PAPER = 253           # a column this light or lighter is blank (a strip snapped back onto the grid keeps a grey level or two)
NEAR = 4.0            # mean grey levels a gap's or a word edge's columns may differ from a table's to take its entry


_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
# The character pairs the tables are also counted on, per script: a letter to stand beside each pair, the script's
# characters, and the letters, digits and punctuation written with them. Latin: ASCII, then the accented letters of
# the STS-B languages and Polish.
SCRIPTS = (("o", _ASCII, ""),
           ("o", "àáâäçèéêëìíîïñòóôöùúûüßÀÁÂÄÇÈÉÊËÍÎÑÓÔÖÚÜąćęłńśźżŁŚŻ",
            string.ascii_letters + string.digits + ".,;:!?-()'\""),
           ("о", "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ", "0123456789.,;:!?-«»()\"'"))


def _inked(pixels: np.ndarray) -> np.ndarray:
    return pixels.min(0) < PAPER


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
    inside a word (so that "A young" and "11" are seen however rare in running text)."""
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


def _number(rng: random.Random) -> str:
    n = rng.choice([rng.randint(0, 99), rng.randint(100, 9999), rng.randint(10_000, 999_999)])
    return rng.choice([str(n), f"{n:,}", f"{n / 100:.2f}"])


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
    `renderer` drawing `lines` lines of `words_per_line` frequent English words (seeded) and the pairs of SCRIPTS."""

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
        for line in _training_lines(read_words("en"), lines, words_per_line, seed):
            pixels = continuous.render(" ".join(line)).pixels
            ink = _inked(pixels)
            spaces, x = [], LEFT_PAD
            for w in line:   # pen positions, as the renderer's continuous layout (Renderer.render) moves its pen
                advance = (continuous._words.get(w) or continuous._word(w))[1]
                spaces.append((x + advance, x + advance + continuous._space))
                x += advance + continuous._space
            for start, end in _blank_runs(ink):
                space = next(((a, b) for a, b in spaces[:-1] if start < b and end > a), None)
                gaps[self._gap_key(pixels, start, end)][space is not None] += 1
                if space is not None:
                    starts[self._start_key(pixels, end)][LEFT_PAD + end - space[1]] += 1
                    bearings[self._end_key(pixels, start)][space[0] - start] += 1
            cols = np.flatnonzero(ink)
            starts[self._start_key(pixels, int(cols[0]))][int(cols[0])] += 1
            bearings[self._end_key(pixels, int(cols[-1]) + 1)][spaces[-1][0] - int(cols[-1]) - 1] += 1
        self.word_ends = _Table({key: c[True] > c[False] for key, c in gaps.items()}, exact_prefix=1)
        self.ink_start = _Table({key: c.most_common(1)[0][0] for key, c in starts.items()})
        self.right_bearing = _Table({key: c.most_common(1)[0][0] for key, c in bearings.items()})

    def _gap_key(self, pixels: np.ndarray, start: int, end: int) -> bytes:
        return bytes([min(end - start, 255)]) + pixels[:, max(start - EDGE, 0):start].tobytes() + pixels[:, end:end + EDGE].tobytes()

    def _start_key(self, pixels: np.ndarray, first: int) -> bytes:
        return pixels[:, first:first + EDGE].tobytes()

    def _end_key(self, pixels: np.ndarray, end: int) -> bytes:
        return pixels[:, max(end - EDGE, 0):end].tobytes()

    def words(self, pixels: np.ndarray) -> list[tuple[int, int]]:
        """[first, last + 1) inked column of each word of a strip of text (no end patch)."""
        inked = _inked(pixels)
        cols = np.flatnonzero(inked)
        if not len(cols):
            return []
        out, first = [], int(cols[0])
        for start, end in _blank_runs(inked):
            ends = self.word_ends.get(self._gap_key(pixels, start, end))
            if ends if ends is not None else end - start >= WORD_GAP:
                out.append((first, start))
                first = end
        return out + [(first, int(cols[-1]) + 1)]

    def in_cells(self, pixels: np.ndarray) -> bool:
        """Whether every word starts where a cell starts (within ALIGNED_REACH): a strip already laid out in cells,
        perhaps moved by a few pixels."""
        return self._starts_in_cells(self.words(pixels))

    def _starts_in_cells(self, words: list[tuple[int, int]]) -> bool:
        low, high = ALIGNED_REACH
        return all(low <= (first + LEFT_PAD) % self.cell - LEFT_PAD <= high for first, _ in words)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """`pixels` laid out in cells (lay_out), or `pixels` itself when its words are in cells already (in_cells)."""
        words = self.words(pixels)   # found once: the near lookups make it the costly part for unknown scripts
        return pixels if self._starts_in_cells(words) else self._placed(pixels, words)

    def lay_out(self, pixels: np.ndarray) -> np.ndarray:
        """A strip of text (uint8 [patch_size, W], no end patch) with each word moved into cells of its own, as the
        renderer lays words out. The result may be wider than the renderer's canvas: the caller cuts it."""
        return self._placed(pixels, self.words(pixels))

    def _placed(self, pixels: np.ndarray, words: list[tuple[int, int]]) -> np.ndarray:
        """lay_out, with the strip's words already found."""
        pieces = [np.full((pixels.shape[0], 0), 255, dtype=np.uint8)]
        any_ink = pixels.min(0) < 255
        for k, (first, end) in enumerate(words):
            start = self.ink_start.get(self._start_key(pixels, first), LEFT_PAD)
            # Whole cells for LEFT_PAD + the word's advance: its left bearing (in `start`), its ink, its right bearing.
            advance_end = start + end - first + max(self.right_bearing.get(self._end_key(pixels, end), 1), 0)
            cells = np.full((pixels.shape[0], -(-advance_end // self.cell) * self.cell), 255, dtype=np.uint8)
            # The word's faintest edge columns (lighter than PAPER) go with it, up to halfway to its neighbours.
            low = (words[k - 1][1] + first + 1) // 2 if k else 0
            high = (end + words[k + 1][0]) // 2 if k + 1 < len(words) else pixels.shape[1]
            left, right = first, end
            while left > max(low, first - start) and any_ink[left - 1]:
                left -= 1
            while right < min(high, first + cells.shape[1] - start) and any_ink[right]:
                right += 1
            cells[:, start - (first - left):start + right - first] = pixels[:, left:right]
            pieces.append(cells)
        return np.concatenate(pieces, axis=1)
