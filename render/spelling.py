"""Correcting English misspellings before word-aligned layout: one edit back to a common word.

Word-aligned rendering gives each word the same token pixels wherever it stands, so a typo changes
the whole cell of the word it hits, and a model has to have learnt that image too (docs/study.md,
sections 4 and 21: more typos in training did not shrink the drop). `SpellingCorrector` rewrites a
word the bundled list (`words/en.txt.gz`, as for `pixelrep.render.segment`) does not know as the most
frequent of the list's first `common` words one edit away (a letter deleted, inserted, changed, or two
neighbours swapped: Damerau 1), keeping its punctuation. Everything else stays as written:
words the list knows (every word its corpus has 3 times or more, rare ones too) or knows with an ending
("radiators", "biker", "hedging"), words of fewer than `min_letters` letters, anything that is not
lower-case ASCII letters (capitals: names and acronyms, "Biden" is not "Widen"; digits, look-alikes from
other scripts, accents: what pixels read), words with no common word one edit away, and texts the
segmenter's language gate does not take for English. The list comes from a corpus heavy in software
text, so some everyday words are missing and get "corrected": STS-B en dev has real misspellings
("busniness", "simular", "ingrediants", all put right) and also words such as "runny" (-> "funny").
"""
from __future__ import annotations

import functools
import string

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
            if len(core) < self.min_letters or not (core.isascii() and core.isalpha() and core.islower()) \
                    or core in self.rank or self.inflected(core):
                continue
            best = self.correction(core)
            if best is None:
                continue
            if not changed and not self.is_its_language(text):
                return text
            tokens[i] = lead + best + trail
            changed = True
        return " ".join(tokens) if changed else text

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
