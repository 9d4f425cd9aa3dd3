"""Small helpers shared by the render tests."""
import numpy as np
import pytest

from pixelrep.render import raqm_available

# Without libfribidi Pillow has no raqm: the renderer then refuses text that needs shaping
# (tested with layout="basic"), and tests of shaped output skip.
needs_raqm = pytest.mark.skipif(not raqm_available(), reason="Pillow has no raqm here (libfribidi missing)")

# A few sentences per script, for properties that should hold everywhere.
SCRIPTS = {
    "latin": "Zażółć gęślą jaźń. Çok güzel ığdır. Příliš žluťoučký kůň.",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει.",
    "cyrillic": "Съешь же ещё этих мягких французских булок.",
    "arabic": "رجل يعزف على الغيتار",
    "hebrew": "איש מנגן בגיטרה",
    "devanagari": "एक आदमी गिटार बजा रहा है",
    "thai": "ผู้ชายกำลังเล่นกีตาร์",
    "chinese": "一个男人在弹吉他。",
    "japanese": "男性がギターを弾いています。",
    "korean": "한 남자가 기타를 치고 있다.",
}
SHAPED = {"arabic", "hebrew", "devanagari", "thai"}  # need raqm


def scripts_here() -> dict[str, str]:
    """SCRIPTS, less those that need shaping where raqm is missing."""
    return {k: v for k, v in SCRIPTS.items() if raqm_available() or k not in SHAPED}


def ink_columns(pixels: np.ndarray, threshold: int = 160) -> np.ndarray:
    """Indices of the columns holding a clearly dark pixel."""
    return np.flatnonzero((pixels < threshold).any(axis=0))


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours), row-vectorised."""
    codes_b = np.array([ord(c) for c in b], dtype=np.int64)
    m = len(b)
    steps = np.arange(m + 1)
    prev2, prev = None, steps.copy()
    for i in range(1, len(a) + 1):
        ca = ord(a[i - 1])
        row = np.empty(m + 1, dtype=np.int64)
        row[0] = i
        row[1:] = np.minimum(prev[1:] + 1, prev[:-1] + (codes_b != ca))
        if prev2 is not None and i > 1 and m > 1:
            swap = (codes_b[1:] == ord(a[i - 2])) & (codes_b[:-1] == ca)
            row[2:] = np.where(swap, np.minimum(row[2:], prev2[:-2] + 1), row[2:])
        # insertions run along the row: row[j] = min_k(row[k] + j - k)
        row = np.minimum.accumulate(row - steps) + steps
        prev2, prev = prev, row
    return int(prev[m])


def text_area(rendered) -> np.ndarray:
    """A strip's text patches, less its end patch (the renderers here all draw one)."""
    return rendered.pixels[:, :rendered.pixels.shape[1] - rendered.pixels.shape[0]]
