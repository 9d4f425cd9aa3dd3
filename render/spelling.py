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

from pixelrep.render.perturb import KEYBOARD_NEIGHBOURS, LOOKALIKES
from pixelrep.render.segment import _EDGES, SEGMENTERS, WordSegmenter, load_segmenter

CORRECTORS = SEGMENTERS   # values of RenderConfig.correct_spelling besides "" (off): the same word lists
_LETTERS = string.ascii_lowercase
_ENDINGS = ("s", "es", "d", "ed", "r", "er", "ers", "ing", "ings", "ly", "ness")
# What a correction costs more, in the word list's rank costs (WordSegmenter.rank_cost, nats), when no keyboard
# explains its edit: a letter typed for one it neither touches on the keyboard nor looks like, or typed beside
# one it neither touches nor repeats ("playin" is "playing" less a letter, not "plain" with a "y" typed in).
ODD_EDIT_COST = 3.0
CORRECTIONS_KEPT = 100_000   # words whose answer a corrector remembers (then it starts again)


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


def _near(key: str, typed: str) -> bool:
    return typed in KEYBOARD_NEIGHBOURS.get(key, "") or typed in LOOKALIKES.get(key, "")


def keyboard_edit(typed: str, word: str) -> bool:
    """Whether `typed`, one edit from `word`, is a slip a keyboard explains: a letter left out, two neighbours
    swapped, a key's neighbour or look-alike typed in its place, or typed beside it (or the key twice)."""
    if len(typed) < len(word) or (len(typed) == len(word) and sum(a != b for a, b in zip(typed, word)) == 2):
        return True   # a deletion or a swap
    if len(typed) > len(word):
        return any(typed[:i] + typed[i + 1:] == word and (typed[i] == typed[i - 1] or _near(typed[i - 1], typed[i]))
                   for i in range(1, len(typed)))
    i = next(i for i, (a, b) in enumerate(zip(typed, word)) if a != b)
    return _near(word[i], typed[i])


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
        self.rank, self.is_its_language, self.rank_cost = segmenter.rank, segmenter.is_its_language, segmenter.rank_cost
        self.common, self.min_letters = common, min_letters
        self._corrections: dict[str, str | None] = {}   # correct_word()'s answers for words it had to look at

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
        if core.isascii() and core.isalpha() and (not core.islower() or len(core) < self.min_letters or
                                                  core in self.rank):
            return None   # the common case, answered before the memory
        if core in self._corrections:   # the re-spacer asks first, then the corrector: one answer
            return self._corrections[core]
        if len(self._corrections) >= CORRECTIONS_KEPT:
            self._corrections.clear()
        self._corrections[core] = fixed = self._correct_word(core)
        return fixed

    def _correct_word(self, core: str) -> str | None:
        if core.isascii() and core.isalpha():
            return None if self.inflected(core) else self.correction(core)
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
        """The likeliest common word one edit from `word` (lower case), or None: a dropped apostrophe first (the list
        knows "didn" from "didn't" split elsewhere, more often than "didn't" itself), then the least rank cost, plus
        ODD_EDIT_COST where no keyboard explains the edit."""
        ranked = [("'" not in w, self.rank_cost(self.rank[w]) + ODD_EDIT_COST * ("'" not in w and not keyboard_edit(word, w)), w)
                  for w in self._common_one_edit(word)]
        return min(ranked)[2] if ranked else None

    def piece_correction(self, piece: str) -> str | None:
        """For letters cut from a run-together word (WordSegmenter with this corrector): the likeliest common word
        a keyboard slip away, lower case, or None. Only a lower-case ASCII piece of `min_letters` or more that the
        list does not know."""
        if not (piece.isascii() and piece.isalpha() and piece.islower()) or len(piece) < self.min_letters or \
                piece in self.rank:
            return None
        ranked = [(self.rank[w], w) for w in self._common_one_edit(piece) if "'" not in w and keyboard_edit(piece, w)]
        return min(ranked)[1] if ranked else None

    def _common_one_edit(self, word: str) -> list[str]:
        """The list's first `common` words one edit from `word`: what a correction is chosen among."""
        return [w for w in one_edit_away(word) if self.rank.get(w, self.common) < self.common]
