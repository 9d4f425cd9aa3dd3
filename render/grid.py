"""Snapping a drawing back onto the renderer's pixel grid (RenderConfig.snap_to_grid).

The renderer puts every glyph at the same whole pixel each time, and a model trained on its strips reads
best there: the bundle reads STS-B en dev at 76.4 in place and 71.4 with every sentence's ink moved half a
pixel (the visual suite's `shift` kind; docs/study.md, section 23). A strip drawn elsewhere (another
renderer, a screenshot, a scan) can be moved back before the model reads it, without knowing its text:

1. The fraction of a pixel, per axis. A move by a fraction f spreads each stroke over two columns,
   obs[x] = (1 - f) ink[x] + f ink[x - 1]; that filter has an exact inverse, a one-tap recursion. Run with
   the wrong f it rings (ink below paper white or above black); with the right one it does not, and it
   gives a sharper strip than leaving it alone. So f is the fraction whose inverse stays within paper and
   ink and sharpens most, searched on a grid and refined. A blur spreads ink both ways: its mirrored
   fraction 1 - f is as clean as f, and once undone it stays softer than the renderer draws (CRISP_SHARE);
   such a strip is left as it is (moving it would not un-blur it).
2. The whole pixels left. Down, from the strip's ink per row against the renderer's own (the mean over
   frequent English words; only where the rows fit it: Latin, Greek, Cyrillic); across, with word-aligned
   layout, from where ink starts after a gap (a word's first column: LEFT_PAD or one past it in its cell)
   against where the renderer starts words.

A strip found on the grid (no fraction on either axis) comes back unchanged, so text the renderer drew is
never touched; a move by whole pixels alone is not looked for. ~14 ms per STS-length strip on one CPU
thread (numpy only; `pixelrep bench render`: 72 English strips/s).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pixelrep.render.config import Rendered
from pixelrep.render.visual import _move   # whole pixels: the shift kind's own move, without a fraction

# Fractions tried (then refined around the best few): a 0.03-pixel grid.
COARSE_FRACTIONS = np.round(np.arange(0.02, 0.99, 0.03), 4)
RING_TOLERANCE = 2.0      # grey levels an inverse may leave paper or ink by (rounding to uint8) before it counts
RING_LIMIT = 3e-4         # ringing, as a share of the strip's ink, that still counts as the right fraction
MIRROR_LIMIT = 1e-3       # a mirrored fraction this clean as well: a blur, not a move
SMALLEST_FRACTION = 0.03  # moves below this (and above 1 - this) are left alone
WINDOW = 256              # columns the fractions are estimated on (a move is the same along the whole strip)
INK_LEVEL = 24            # a column with ink above this counts as inked when finding word starts
WORD_GAP = 4              # blank columns before ink that mark a word's start
WHOLE_REACH = 3           # whole-pixel moves looked for, each way
CRISP_LEVEL = 200         # ink this dark counts as a stroke's core
CRISP_SHARE = 0.7         # an undone strip must hold this share of the renderer's stroke cores, or it was blurred
ROW_MISFIT_LIMIT = 0.01   # ink per row this far (squared) from the reference's: not the reference's script


def _runs(ink: np.ndarray, axis: int):
    """[H, W] ink -> rows [R, L] to filter along axis 1: each run of inked lines along `axis` (the filter starts
    clean at a blank line), zero-padded to the longest; and the function putting filtered rows back."""
    lines = ink if axis == 1 else ink.T
    height, width = lines.shape
    inked = lines.max(0) > 0
    edges = np.flatnonzero(np.diff(np.r_[0, inked.astype(np.int8), 0]))
    starts, ends = edges[::2], edges[1::2]
    if not len(starts):
        return np.zeros((0, 1)), lambda rows: ink.copy()
    longest = int((ends - starts).max())
    cols = starts[:, None] + np.arange(longest)[None]
    valid = cols < ends[:, None]
    cols = np.where(valid, cols, width)                     # width: an extra blank line
    rows = np.concatenate([lines, np.zeros((height, 1))], 1)[:, cols].transpose(1, 0, 2).reshape(-1, longest)

    def put_back(filtered: np.ndarray) -> np.ndarray:
        out = np.zeros((height, width + 1))
        out[:, cols[valid]] = filtered.reshape(len(starts), height, longest).transpose(1, 0, 2)[:, valid]
        return out[:, :width] if axis == 1 else out[:, :width].T

    return rows, put_back


def _unmove(rows: np.ndarray, fractions) -> tuple[np.ndarray, np.ndarray]:
    """Each row un-moved by each fraction f (the inverse of obs[x] = (1 - f) ink[x] + f ink[x - 1], run from the
    left for f <= 0.5 and from the right otherwise, where it is stable), clipped to [0, 255]: [K, R, L], and the
    ink each had to have clipped beyond RING_TOLERANCE: [K]. f > 0.5 leaves the ink one pixel further along."""
    fractions = np.asarray(fractions, dtype=np.float64)
    out = np.empty((len(fractions), *rows.shape))
    clipped = np.zeros(len(fractions))
    for chosen, from_left in ((fractions <= 0.5, True), (fractions > 0.5, False)):
        if not chosen.any():
            continue
        f = fractions[chosen][:, None]
        keep, spill = (1 - f, f) if from_left else (f, 1 - f)
        previous = np.zeros((len(f), rows.shape[0]))
        ring = np.zeros_like(previous)
        part = np.empty((len(f), *rows.shape))
        for i in range(rows.shape[1]) if from_left else range(rows.shape[1] - 1, -1, -1):
            exact = (rows[:, i][None] - spill * previous) / keep
            previous = np.clip(exact, 0, 255)
            ring += np.maximum(np.abs(exact - previous) - RING_TOLERANCE, 0)
            part[:, :, i] = previous
        out[chosen], clipped[chosen] = part, ring.sum(1)
    return out, clipped


def estimate_fraction(ink: np.ndarray, axis: int) -> float:
    """The fraction of a pixel (in [0, 1)) the ink [H, W] (255 - pixels) was moved by along axis (1: across,
    0: down), or 0.0 when it sits on the grid or is blurred rather than moved."""
    if axis == 0:
        ink = ink[:, :WINDOW]
    else:   # whole runs only: cut at the first blank column past the window
        blank = np.flatnonzero(ink[:, WINDOW:].max(0) == 0)
        ink = ink[:, :WINDOW + blank[0]] if len(blank) else ink
    rows, _ = _runs(ink, axis)
    total = ink.sum()
    if not len(rows) or total == 0:
        return 0.0
    unmoved, clipped = _unmove(rows, COARSE_FRACTIONS)
    ring, sharpness = clipped / total, (unmoved.reshape(len(COARSE_FRACTIONS), -1) ** 2).sum(1)
    # Refined around the three deepest valleys of the ringing and, as every fraction below the true one rings
    # little (the valley there is flat), around the sharpest fraction on each side of a half that does not ring.
    valleys = [i for i in range(len(ring)) if (i == 0 or ring[i] <= ring[i - 1]) and (i == len(ring) - 1 or ring[i] <= ring[i + 1])]
    chosen = set(sorted(valleys, key=lambda i: ring[i])[:3])
    for side in (COARSE_FRACTIONS <= 0.5, COARSE_FRACTIONS > 0.5):
        quiet = np.flatnonzero(side & (ring <= RING_LIMIT))
        if len(quiet):
            chosen.add(int(quiet[np.argmax(sharpness[quiet])]))
    near = np.unique(np.concatenate([np.linspace(max(SMALLEST_FRACTION, COARSE_FRACTIONS[i] - 0.03),
                                                 min(1 - SMALLEST_FRACTION, COARSE_FRACTIONS[i] + 0.03), 13)
                                     for i in chosen]))
    unmoved, clipped = _unmove(rows, near)
    sharpness = (unmoved.reshape(len(near), -1) ** 2).sum(1)
    fits = (clipped / total <= RING_LIMIT) & (sharpness > (rows ** 2).sum())
    if not fits.any():
        return 0.0
    fraction = float(near[fits][np.argmax(sharpness[fits])])
    if abs(fraction - 0.5) > 0.02 and _unmove(rows, [1 - fraction])[1][0] / total <= MIRROR_LIMIT:
        return 0.0      # as clean mirrored: spread both ways, a blur
    return fraction


def _crispness(ink: np.ndarray) -> float:
    """The share of inked pixels that are a stroke's core: the renderer's strips ~0.44, blurred ones below 0.2."""
    return float((ink >= CRISP_LEVEL).sum() / max((ink > INK_LEVEL).sum(), 1))


def _word_starts(ink: np.ndarray) -> np.ndarray:
    """Columns where ink starts after WORD_GAP blank columns."""
    inked = np.flatnonzero(ink.max(0) > INK_LEVEL)
    blank_before = np.diff(np.r_[-WORD_GAP - 1, inked]) - 1
    return inked[blank_before >= WORD_GAP]


class GridSnapper:
    """Moves strips drawn off a renderer's pixel grid back onto it (module docstring). Its two layout
    references (ink per row, word starts in a cell) come from the renderer drawing frequent English words."""

    def __init__(self, renderer, lines: int = 250, words_per_line: int = 12):
        from pixelrep.render.segment import read_words

        config = renderer.config
        self.patch_size, self.eos_patch = config.patch_size, config.eos_patch
        self.cell = config.word_align * config.patch_size
        words = read_words("en")[:lines * words_per_line]
        rows = np.zeros(config.patch_size)
        starts = np.zeros(max(self.cell, 1))
        crispness = []
        for i in range(0, len(words), words_per_line):
            ink = self._ink(renderer.render(" ".join(words[i:i + words_per_line])))
            rows += ink.sum(1)
            crispness.append(_crispness(ink))
            if self.cell:
                np.add.at(starts, _word_starts(ink) % self.cell, 1)
        self.row_ink = rows / rows.sum()
        self.crispness = float(np.median(crispness))
        self.word_start = (starts + 0.5) / (starts.sum() + 0.5 * len(starts))   # smoothed: no position impossible

    def _width(self, rendered: Rendered) -> int:
        return (rendered.num_patches - (1 if self.eos_patch else 0)) * self.patch_size

    def _ink(self, rendered: Rendered) -> np.ndarray:
        return 255.0 - rendered.pixels[:, :self._width(rendered)].astype(np.float64)

    def _whole_down(self, ink: np.ndarray) -> int:
        """Whole pixels the ink sits below the renderer's rows (0 unless its rows look like the reference's: Latin
        text; Chinese, Japanese or Arabic rows fit no move of it, ROW_MISFIT_LIMIT)."""
        share = ink.sum(1) / max(ink.sum(), 1e-9)
        misfit = {k: float(((share - _move(self.row_ink[:, None], k, 0)[:, 0]) ** 2).sum())
                  for k in range(-WHOLE_REACH, WHOLE_REACH + 1)}
        best = min(misfit, key=lambda k: (misfit[k], abs(k)))
        return best if misfit[best] <= ROW_MISFIT_LIMIT else 0

    def _whole_across(self, ink: np.ndarray) -> int:
        """Whole pixels the words start right of where the renderer starts them: the most likely move of the
        reference's word starts (LEFT_PAD or one past it in a cell, 59% / 40% in English) to the strip's."""
        starts = _word_starts(ink) % self.cell
        if len(starts) < 2:
            return 0
        fit = {k: float(np.log(np.roll(self.word_start, k)[starts]).sum()) for k in range(-WHOLE_REACH, WHOLE_REACH + 1)}
        return max(fit, key=lambda k: (fit[k], -abs(k)))

    def __call__(self, rendered: Rendered) -> Rendered:
        """The strip moved back onto the grid (the end patch as it is), or `rendered` itself when it is on it."""
        ink = self._ink(rendered)
        across, down = estimate_fraction(ink, 1), estimate_fraction(ink, 0)
        if not (across or down):
            return rendered
        # Off the grid: the fraction undone on each axis that has one, then the whole pixels left on both (a move
        # by 1.98 pixels down and 0.3 across has no fraction down to find, but two whole pixels to undo).
        for axis, fraction in ((1, across), (0, down)):
            if fraction:
                rows, put_back = _runs(ink, axis)
                ink = put_back(_unmove(rows, [fraction])[0][0])
        if _crispness(ink) < CRISP_SHARE * self.crispness:
            return rendered     # still soft once undone: blurred (or low resolution), not moved
        if self.cell:
            ink = _move(ink, -self._whole_across(ink), 1)
        ink = _move(ink, -self._whole_down(ink), 0)
        pixels = rendered.pixels.copy()
        pixels[:, :ink.shape[1]] = (255.0 - np.rint(ink)).clip(0, 255).astype(np.uint8)
        return dataclasses.replace(rendered, pixels=pixels)
