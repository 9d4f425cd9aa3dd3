"""Seeded perturbations: character typos and word shuffles on text, Gaussian noise on pixels.

Every function takes `rng`: an int seed (same seed and input -> same output), a numpy Generator
(draws continue from its state, e.g. one Generator for a whole epoch), or None (fresh entropy).
"""
from __future__ import annotations

import functools
import unicodedata

import numpy as np

# Keyboard rows as typed (QWERTY and Russian JCUKEN); each row sits a little to the right of the one above,
# so key (r, c) touches (r, c±1), (r-1, c), (r-1, c+1), (r+1, c-1), (r+1, c).
_KEYBOARDS = (("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"),
              ("1234567890-=", "йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю."))


def _neighbours() -> dict[str, str]:
    out: dict[str, set] = {}
    for layout, rows in enumerate(_KEYBOARDS):
        for r, row in enumerate(rows):
            for c, key in enumerate(row):
                if layout and not key.isalpha():
                    continue  # digits and punctuation take their neighbours from the first (QWERTY) layout
                near = {(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)}
                keys = {rows[rr][cc] for rr, cc in near if 0 <= rr < len(rows) and 0 <= cc < len(rows[rr])}
                out.setdefault(key, set()).update(keys)
                if key.isalpha():
                    out.setdefault(key.upper(), set()).update(k.upper() for k in keys)
    return {k: "".join(sorted(v)) for k, v in out.items()}


KEYBOARD_NEIGHBOURS = _neighbours()

# Leetspeak: the digit written for a letter (the visual suite's `leetspeak` kind; the re-spacer reads it back).
LEET: dict[str, str] = {
    "a": "4", "b": "8", "e": "3", "g": "9", "i": "1", "l": "1", "o": "0", "s": "5", "t": "7", "z": "2",
    "A": "4", "B": "8", "E": "3", "G": "6", "I": "1", "L": "1", "O": "0", "S": "5", "T": "7", "Z": "2",
}

# Characters that look alike: digits for letters, missing or wrong diacritics, Latin/Cyrillic/Greek homoglyphs.
_LOOKALIKE_GROUPS = ("o0оοö", "O0ОΟÖ", "l1I|", "i1íìï", "e3éèêëе", "a@áàâäаα", "s5$", "S5$", "B8ВΒ", "g9q",
                     "uüúùû", "cсç", "pрρ", "xх×", "yуý", "AАΑÁÄ", "EЕΕÉ", "HНΗ", "KКΚ", "MМΜ", "PРΡ", "TТΤ",
                     "XХΧ", "CСÇ", "nñη", "vν", "zž", "rг")
LOOKALIKES: dict[str, str] = {}
for _group in _LOOKALIKE_GROUPS:
    for _ch in _group:
        LOOKALIKES[_ch] = "".join(dict.fromkeys(LOOKALIKES.get(_ch, "") + _group.replace(_ch, "")))


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """An int seed, a Generator (used as is) or None (fresh entropy) -> Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")


@functools.lru_cache(maxsize=1 << 16)
def _script(ch: str) -> str:
    """A cheap script label: the first word of the character's Unicode name (LATIN, CJK, ARABIC, ...)."""
    return unicodedata.name(ch, "?").split(" ", 1)[0]


def _substitute(ch: str, text: str, same_script: dict, u: float, v: float) -> str:
    """A typo for ch: a keyboard neighbour or a look-alike (chosen by u), else another character of
    the text in the same script, else any other character of the text (picked by v); `same_script`
    caches those per script ("" for any)."""
    near, alike = KEYBOARD_NEIGHBOURS.get(ch, ""), LOOKALIKES.get(ch, "")
    pool = (near if u < 0.5 else alike) or near or alike
    if not pool:  # no keyboard or look-alike knowledge (CJK, Arabic, a space, ...)
        for script in (_script(ch), ""):
            if script not in same_script:  # sorted: a set's order would vary between runs
                same_script[script] = sorted({c for c in text
                                              if not c.isspace() and (not script or _script(c) == script)})
            pool = [c for c in same_script[script] if c != ch]
            if pool:
                break
        else:
            return ch  # a text of one repeated character and spaces: nothing else to type
    return pool[int(v * len(pool))]


def add_typos(text: str, rate: float, rng: int | np.random.Generator | None = None) -> str:
    """Each character gets a typo with probability `rate`: insert, delete, substitute or swap (equally likely).

    Substitutions and insertions use keyboard neighbours (QWERTY, Russian) or look-alikes (0 for o,
    é for e, Cyrillic а for Latin a); characters without either (CJK, Arabic, spaces) borrow another
    character of the text, of the same script when there is one. A swap exchanges the character
    with the next one. Each chosen position makes exactly one edit.
    """
    if not isinstance(text, str):
        raise TypeError(f"add_typos() takes a str, got {type(text).__name__}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"typo rate={rate}: use a probability per character in [0, 1]")
    gen = as_generator(rng)
    n = len(text)
    hits = (gen.random(n) < rate).nonzero()[0].tolist()
    if not hits:
        return text
    # One draw for the edit kind (4 equally likely) and two for the choice of replacement.
    kinds, us, vs = gen.random((3, len(hits))).tolist()
    same_script: dict[str, list[str]] = {}
    out: list[str] = []
    i = 0
    for pos, k, u, v in zip(hits, kinds, us, vs):
        kind = int(4 * k)
        if pos < i:  # already consumed by a swap
            continue
        out.append(text[i:pos])
        ch = text[pos]
        i = pos + 1
        if kind == 3 and pos + 1 < n and text[pos + 1] != ch:   # swap with the next character
            out.append(text[pos + 1] + ch)
            i = pos + 2
        elif kind == 0:                                          # insert a neighbour after it (fat finger)
            out.append(ch + _substitute(ch, text, same_script, u, v))
        elif kind == 1:                                          # delete
            pass
        else:                                                    # substitute (also a swap that cannot swap)
            out.append(_substitute(ch, text, same_script, u, v))
    out.append(text[i:])
    return "".join(out)


def shuffle_words(text: str, mode: str = "random", rng: int | np.random.Generator | None = None,
                  window: int = 3) -> str:
    """Reorder whitespace-separated words; the result joins them with single spaces.

    mode="random": any order. mode="local": each word moves by less than `window` places
    (sort positions plus uniform noise in [0, window)). Text without spaces (Chinese, Japanese) is
    a single word and comes back unchanged.
    """
    if not isinstance(text, str):
        raise TypeError(f"shuffle_words() takes a str, got {type(text).__name__}")
    if mode not in ("random", "local"):
        raise ValueError(f"shuffle mode={mode!r}: use 'random' or 'local'")
    if window < 1:
        raise ValueError(f"window={window}: use 1 or more (1 keeps the order)")
    gen = as_generator(rng)
    words = text.split()
    if len(words) < 2:
        return text
    if mode == "random":
        order = gen.permutation(len(words))
    else:
        order = np.argsort(np.arange(len(words)) + gen.uniform(0, window, len(words)), kind="stable")
    return " ".join(words[k] for k in order)


def add_pixel_noise(pixels: np.ndarray, std: float, rng: int | np.random.Generator | None = None) -> np.ndarray:
    """Gaussian noise with standard deviation `std` (in 0..255 grey levels), rounded and clipped to uint8."""
    if std < 0:
        raise ValueError(f"pixel noise std={std}: use a non-negative number of grey levels (e.g. 8)")
    pixels = np.asarray(pixels)
    if std == 0:
        return pixels.astype(np.uint8, copy=True)
    noisy = pixels.astype(np.float32) + as_generator(rng).normal(0.0, std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
