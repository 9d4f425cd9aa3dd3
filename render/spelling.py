"""Correcting English misspellings before word-aligned layout: one edit back to a common word.

Word-aligned rendering gives each word the same token pixels wherever it stands, so a typo changes the whole
cell of the word it hits, and a model has to have learnt that image too (docs/study.md, sections 4 and 21:
more typos in training did not shrink the drop). `SpellingCorrector` rewrites a word the bundled list
(`words/en.txt.gz`, as for `pixelrep.render.segment`) does not know as the most frequent of the list's first
`common` words one edit away (a letter deleted, inserted, changed, or two neighbours swapped: Damerau 1),
keeping its punctuation. A word written with look-alikes of lower-case letters (a digit or symbol for a letter
between two letters, "w0man", "gr@ss"; an accented letter, "cöffee"; a Cyrillic or Greek homoglyph) is read as
the Latin letters they imitate (`latin_readings`, from the typo generator's table `perturb.LOOKALIKES`, plus
canonical decomposition for other accented letters): the most frequent reading the list knows, else that
reading's correction. Everything else stays as written: words the list knows (every word its corpus has 3
times or more, rare ones too) or knows with an ending ("radiators", "biker", "hedging"), words of fewer than
`min_letters` letters, words with capitals (names and acronyms, "Biden" is not "Widen"), words with characters
that imitate no letter (combining accents, fullwidth and mathematical letters, other scripts: what pixels
read), words with no common word one edit away, and texts the segmenter's language gate does not take for
English. The list comes from a corpus heavy in software text, so some everyday words are missing and get
"corrected": STS-B en dev has real misspellings ("busniness", "simular", "ingrediants", all put right) and
also words such as "runny" (-> "funny").
"""
from __future__ import annotations

import functools
import itertools
import string
import unicodedata

from pixelrep.render.perturb import LOOKALIKES
from pixelrep.render.segment import _EDGES, SEGMENTERS, WordSegmenter, load_segmenter

CORRECTORS = SEGMENTERS   # values of RenderConfig.correct_spelling besides "" (off): the same word lists
_LETTERS = string.ascii_lowercase
_ENDINGS = ("s", "es", "d", "ed", "r", "er", "ers", "ing", "ings", "ly", "ness")


def one_edit_away(word: str) -> set[str]:
    """Every lower-case ASCII string one edit from `word`: deletion, insertion (of a letter or an apostrophe:
    "didnt" -> "didn't"), substitution, swap."""
    cuts = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in cuts if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in cuts if len(b) > 1}
    out |= {a + c + b[1:] for a, b in cuts if b for c in _LETTERS}
    out |= {a + c + b for a, b in cuts for c in _LETTERS + "'"}
    out.discard(word)
    return out


def _letters_imitated(ch: str) -> tuple[str, ...]:
    """The ASCII letters `ch` imitates: itself for an ASCII letter; its look-alike letters ("0" -> o, O; "1" -> l,
    I, i; Cyrillic "а" -> a); else the base of an accented letter ("ů" -> u); else none."""
    if ch.isascii() and ch.isalpha():
        return (ch,)
    letters = tuple(c for c in LOOKALIKES.get(ch, "") if c.isascii() and c.isalpha())
    if letters:
        return letters
    # Canonical decomposition only: an accent comes off ("ů" -> u), while fullwidth and mathematical letters,
    # which only a compatibility decomposition (NFKD) would make ASCII, stay what the pixels read.
    base = unicodedata.normalize("NFD", ch)[0]
    return (base,) if base != ch and base.isascii() and base.isalpha() else ()


def latin_readings(word: str, limit: int = 16) -> list[str]:
    """The ASCII words `word` reads as with each look-alike taken for a letter it imitates ("w0man" -> ["woman",
    "wOman"]; "1ane" -> ["lane", "Iane", "iane"]), at most `limit`; [] when a character imitates no letter."""
    options = [_letters_imitated(ch) for ch in word]
    if not all(options):
        return []
    return ["".join(letters) for letters in itertools.islice(itertools.product(*options), limit)]


@functools.lru_cache(maxsize=None)
def load_corrector(name: str) -> "SpellingCorrector":
    """The bundled corrector `name` (one of CORRECTORS), built once per process."""
    if name not in CORRECTORS:
        raise ValueError(f"correct_spelling={name!r}: use '' (off) or one of {CORRECTORS}")
    return SpellingCorrector(load_segmenter(name))


class SpellingCorrector:
    """Corrects a text's misspelt words (see the module docstring); `corrector(text)` returns the text.

    segmenter: the language's WordSegmenter, whose word ranks and language gate it uses.
    """

    def __init__(self, segmenter: WordSegmenter, *, common: int = 40_000, min_letters: int = 4):
        self.rank, self.is_its_language = segmenter.rank, segmenter.is_its_language
        self.common, self.min_letters = common, min_letters

    def __call__(self, text: str) -> str:
        tokens = text.split(" ")
        changed = False
        for i, token in enumerate(tokens):
            lead, core, trail = _EDGES.match(token).groups()
            best = self.correct_word(core)
            if best is None:
                continue
            if not changed and not self.is_its_language(text):
                return text
            tokens[i] = lead + best + trail
            changed = True
        return " ".join(tokens) if changed else text

    def correct_word(self, core: str) -> str | None:
        """The word `core` (no punctuation around it) should be written as, or None to keep it as written."""
        if core.isascii() and core.isalpha():
            if not core.islower() or len(core) < self.min_letters or self.known(core):
                return None
            return self.correction(core)
        if sum(ch.isascii() and ch.isalpha() for ch in core) < 2 or not self.symbols_inside(core):
            return None   # a number, an ordinal, a name with a version ("19th", "python3"), another script
        readings = [w for w in latin_readings(core) if w.islower()]
        known = [w for w in readings if self.known(w)]
        if known:
            return min(known, key=lambda w: self.rank.get(w, len(self.rank)))   # known with an ending: after
        corrections = [c for c in map(self.correction, readings) if c] if len(core) >= self.min_letters else []
        return min(corrections, key=self.rank.__getitem__) if corrections else None

    @staticmethod
    def symbols_inside(core: str) -> bool:
        """Whether each digit or symbol of `core` stands between two ASCII letters ("w0man", "gr@ss"; not "19th",
        "eth0", "l10n"): only there is it read as a letter."""
        plain = lambda i: 0 <= i < len(core) and core[i].isascii() and core[i].isalpha()
        return all(ch.isalpha() or (plain(i - 1) and plain(i + 1)) for i, ch in enumerate(core))

    def known(self, word: str) -> bool:
        """Whether the list knows `word`, as it is or with an ending."""
        return word in self.rank or self.inflected(word)

    def inflected(self, word: str) -> bool:
        """Whether `word` is a known word with an ending ("radiators", "biker", "hedging", "shopped"): not a typo."""
        for ending in _ENDINGS:
            stem = word[:-len(ending)]
            if word.endswith(ending) and len(stem) >= 3 and (
                    stem in self.rank or stem + "e" in self.rank or (stem[-1] == stem[-2] and stem[:-1] in self.rank)):
                return True
        return False

    def correction(self, word: str) -> str | None:
        """The most frequent common word one edit from `word` (lower case), or None; a dropped apostrophe first
        (the list knows "didn" from "didn't" split elsewhere, more often than "didn't" itself)."""
        ranked = [("'" not in w, self.rank[w], w) for w in one_edit_away(word) if self.rank.get(w, self.common) < self.common]
        return min(ranked)[2] if ranked else None
