"""Re-spacing English text before word-aligned layout: words run together or broken apart.

Word-aligned rendering draws each space-separated word in cells of its own, so where the spaces fall
decides what the model sees: "aman" is one cell whose letters stand at offsets the model never saw for
"a" and "man", where a subword tokenizer recovers both words by construction (docs/study.md, sections
11 and 18). `WordSegmenter` puts the spaces back where an English reader would: it rewrites the
spacing of a stretch of letters as the cheapest sequence of words under a unigram model of the word
list `words/en.txt.gz` (a word of rank r costs log(r * log N), Zipf's law), where

- keeping a word as the text spaces it costs the word's own cost, or, for a word the list does not
  know, the cost of a word ranked last plus `unknown_per_char` per letter (so names and typos stay whole);
- cutting a word costs `split_cost` per piece, and a piece must be a common word (among the first
  `pieces` of the list, 3 letters or more unless among its first `short_words`, not an ending or a
  single letter other than "a");
- removing a space costs `join_cost`;
- with a spelling corrector given (`segmenter(text, corrector)`, as the renderer does when both are on,
  pixelrep.render.spelling), a word the corrector will put right costs what its correction does plus
  `edit_cost`, so that "erading" is read as a misspelt "reading" rather than cut into "era ding"; and a
  run-together word that is a very common word (among the list's first `short_words`) and a misspelt one
  ("acoputer", "drillingba") may be cut there, the misspelt piece written as its correction ("a computer",
  "drilling a"), at `edit_cost` more than the cut: a typed space lost or swapped in for a letter.

Only suspects are looked at, with a joinable word either side: letter runs the list does not know,
knows only as rare (rank `pieces` or more), short ones (3 letters or fewer) outside its first
`short_words`, and single letters other than "a". Everything else stays as written: only ASCII letter
runs are touched (not digits, apostrophes or other scripts), acronyms (all capitals) are kept, and a
text is touched only if a unigram model of the list's common words explains its letter runs at least
as well as the model of any gate language does (`words/gate-*.txt.gz`: de es fr it nl pl pt tr), so
"tocando" in a Spanish sentence is never cut into "to can do". The lists are built from ../shared/data
by scripts/build_wordlists.py.
"""
from __future__ import annotations

import functools
import gzip
import itertools
import math
import re
from importlib import resources

from pixelrep.render.perturb import KEYBOARD_NEIGHBOURS, LEET, LOOKALIKES

SEGMENTERS = ("en",)   # values of RenderConfig.segment_words besides "" (off)
GATE_LANGUAGES = ("de", "es", "fr", "it", "nl", "pl", "pt", "tr")
# never a piece of a cut word: endings, and single letters other than "a" (a cut "Messi" -> "Mess i")
NOT_PIECES = frozenset({"ing", "ed", "es", "er", "ers", "ly", "ion", "ions", "ness", "ment", "est", "ies"}) | \
    frozenset("bcdefghijklmnopqrstuvwxyz")
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)    # leading punctuation, the word, trailing punctuation
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
# Where a space is lost next to punctuation, a number or a contraction, ending at the point the space goes (a word
# must stand on each side; WordSegmenter._put_back_lost_spaces checks which): after a comma, semicolon, colon, "!" or
# "?" between letters; after a full stop between a small letter and a capitalised word; after a contraction or a
# possessive followed by letters; between letters and a number that ends the token, or a number that starts it and
# letters; before "(" and after ")" beside a word.
_LOST_SPACE = re.compile(
    r"(?=[,;:!?.'()0-9])(?:"    # each starts at one of these: a fast scan for the rest
    r"(?P<punctuation>(?<=[A-Za-z])[,;:!?](?=[A-Za-z]))"
    r"|(?P<stop>(?<=[A-Za-z][a-z])\.(?=[A-Z][a-z]))"
    r"|(?P<contraction>(?<=[A-Za-z])'(?:s|t|re|ve|ll|d|m)(?=[a-z]))"
    r"|(?P<before_number>(?<=[A-Za-z])(?=[0-9][0-9,.]*(?![\w'])))"
    r"|(?P<after_number>(?<![\w.,])[0-9][0-9,.]*(?=[A-Za-z]+(?![\w'])))"
    r"|(?P<paren>(?<=[A-Za-z0-9])(?=\([A-Za-z]{2})|\)(?=[A-Za-z]{2})))")
_LETTERS_BEFORE = re.compile(r"[A-Za-z]*$")
_LETTERS_AFTER = re.compile(r"[A-Za-z]*")
_DIGITS = re.compile(r"[0-9]+")
# The letters a digit stands for in leetspeak (the visual suite's LEET) or as a look-alike (LOOKALIKES).
_DIGIT_LETTERS = {digit: "".join(sorted({letter.lower() for letter, leet in LEET.items() if leet == digit} |
                                        {c.lower() for c in LOOKALIKES.get(digit, "") if c.isascii() and c.isalpha()}))
                  for digit in "0123456789"}
# Letters written against a number without a space in clean text: times, ordinals, units.
NOT_BESIDE_NUMBERS = frozenset({"am", "pm", "st", "nd", "rd", "th", "s", "k", "m", "x", "km", "kg", "mm", "cm", "mb",
                                "gb", "kb", "ml", "mg", "mph", "fps", "bit", "px", "pt", "ft", "lb", "lbs", "hz", "d"})
# ZWJ / ZWNJ, which the renderer keeps for shaping, draw nothing beside Latin letters: they must not
# change where the spaces go either (the visual suite's zero-width kind leaves the pixels as they were).
_LATIN_JOINERS = re.compile(r"(?<=[A-Za-z])[\u200c\u200d]+|[\u200c\u200d]+(?=[A-Za-z])")


def _leetspeak_word(token: str, known, limit: int = 64) -> bool:
    """Whether letters and digits read as a word `known` knows with each digit taken for a letter it stands for."""
    options = [_DIGIT_LETTERS.get(ch, ch.lower()) for ch in token]
    return all(options) and any(known("".join(letters)) for letters in itertools.islice(itertools.product(*options), limit))


def read_words(name: str) -> list[str]:
    """A bundled word list (render/words/NAME.txt.gz), most frequent first."""
    data = (resources.files("pixelrep.render") / "words" / f"{name}.txt.gz").read_bytes()
    return gzip.decompress(data).decode("utf-8").split()


@functools.lru_cache(maxsize=None)
def load_segmenter(name: str) -> "WordSegmenter":
    """The bundled segmenter `name` (one of SEGMENTERS), built once per process."""
    if name not in SEGMENTERS:
        raise ValueError(f"segment_words={name!r}: use '' (off) or one of {SEGMENTERS}")
    return WordSegmenter(read_words(name), {lang: read_words(f"gate-{lang}") for lang in GATE_LANGUAGES})


class WordSegmenter:
    """Puts the spaces of an English text where its words are (see the module docstring).

    words: the language's words, lower case, most frequent first; gates: other languages' words, most
    frequent first, whose texts are kept as written. `segmenter(text)` returns the text re-spaced.
    """

    def __init__(self, words: list[str], gates: dict[str, list[str]] | None = None, *, pieces: int = 40_000,
                 short_words: int = 150, common_words: int = 5_000, split_cost: float = 2.0,
                 join_cost: float = 5.0, unknown_per_char: float = 2.0, max_piece: int = 20, edit_cost: float = 12.0):
        if not words:
            raise ValueError("WordSegmenter needs a non-empty word list")
        self.log_n = math.log(len(words))
        self.rank = {w: r for r, w in enumerate(words)}
        self.piece_cost = {w: self.rank_cost(r) + split_cost for r, w in enumerate(words[:pieces])
                           if (len(w) >= 3 or r < short_words) and w not in NOT_PIECES and len(w) <= max_piece}
        self.unknown_cost, self.unknown_per_char = self.rank_cost(len(words) - 1), unknown_per_char
        self.join_cost, self.max_piece, self.split_cost, self.edit_cost = join_cost, max_piece, split_cost, edit_cost
        self.pieces, self.short_words = pieces, short_words
        # Which language a text is in: a unigram model per language over its `common_words` most
        # frequent words, a word of rank r costing log(r + 1) and any other word the same
        # log(4 * common_words) in every language (a run of merged words is evidence for none).
        self.unseen_cost = math.log(4 * common_words)
        self.language_costs = {lang: {w: math.log(r + 1) for r, w in enumerate(ranked[:common_words])}
                               for lang, ranked in {"": words, **(gates or {})}.items()}

    def __call__(self, text: str, corrector: "SpellingCorrector | None" = None) -> str:
        """The text re-spaced; with `corrector` (pixelrep.render.spelling, on this segmenter's list), misspelt
        words weighed as their corrections (see the module docstring)."""
        if "\u200c" in text or "\u200d" in text:
            text = _LATIN_JOINERS.sub("", text)
        english = None   # the language gate, asked once and only when needed
        if _LOST_SPACE.search(text):
            english = self.is_its_language(text)
            if english:
                text = self._put_back_lost_spaces(text, corrector)
        tokens = text.split(" ")
        parts = [_EDGES.match(t).groups() for t in tokens]
        eligible = [bool(core) and core.isascii() and core.isalpha() and not (len(core) > 1 and core.isupper())
                    for _, core, _ in parts]
        suspects = [e and self._suspect(parts[i][1]) for i, e in enumerate(eligible)]
        if not any(suspects) or not (self.is_its_language(text) if english is None else english):
            return text
        out, i = [], 0
        while i < len(tokens):
            if not suspects[i]:
                out.append(tokens[i])
                i += 1
                continue
            # a window: the suspect, the suspects right after it, and one more joinable word either side
            start = i - 1 if out and self._joinable(parts, eligible, i - 1, i) else i
            end = i
            while end + 1 < len(tokens) and self._joinable(parts, eligible, end, end + 1) and \
                    (suspects[end] or suspects[end + 1]):
                end += 1
            if start < i:
                out.pop()
            words = self._segment([parts[k][1] for k in range(start, end + 1)], corrector)
            out.append(parts[start][0] + " ".join(words) + parts[end][2])
            i = end + 1
        return " ".join(out)

    def _put_back_lost_spaces(self, text: str, corrector=None) -> str:
        """`text` with a space put back where English writes one and a word touches punctuation, a number or a
        contraction instead (_LOST_SPACE: "beach,near", "said.The", "doesn'thave", "since1998", "1900Olympics",
        "manner(rather"), unless the letters read as one known word with a typo there ("gui,tar": a comma typed
        into "guitar", or for an "m" beside it)."""
        known = corrector.known if corrector is not None else self.rank.__contains__
        word = self._reads_as_words
        cuts = []
        for match in _LOST_SPACE.finditer(text):
            left = _LETTERS_BEFORE.search(text, 0, match.start()).group()
            right = _LETTERS_AFTER.match(text, match.end()).group()
            kind = match.lastgroup
            if kind == "contraction":
                if (match.group() == "'t" and not left.endswith("n")) or not word(right):
                    continue
            elif kind in ("before_number", "after_number"):
                before = kind == "before_number"
                letters = left if before else right
                digits = _DIGITS.match(text, match.end() if before else match.start()).group()
                outer = match.start() - len(left) - 1   # what stands before the letters
                if len(digits) < 2 or not self._whole_word(letters) or \
                        (before and outer >= 0 and "0" <= text[outer] <= "9"):
                    continue   # one digit beside a word is as often a typo ("the3") as a lost space; "8a1137" is
                               # one leetspeak word
                if _leetspeak_word(letters + digits if before else digits + letters, known):
                    continue   # "in70" is "into", "50me" "some"
            elif kind == "paren":   # the words inside and outside the bracket
                after_close = match.group() == ")"
                right = _LETTERS_AFTER.match(text, match.end() + (not after_close)).group()
                if not (word(right) and (after_close or word(left))):
                    continue
            elif not (word(left) and word(right)):
                continue   # "Abl,ack", "m,an": not two words
            elif kind == "punctuation" and any(known((left + letter + right).lower()) for letter in
                                               [""] + [k for k in KEYBOARD_NEIGHBOURS.get(match.group(), "") if k.isalpha()]):
                continue   # a letter typed as its neighbour on the keyboard: "gui,tar", "co,puter"
            cuts.append(match.end())
        if not cuts:
            return text
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        return " ".join(pieces)

    def _reads_as_words(self, letters: str) -> bool:
        """Whether a letter run beside punctuation is a common word, or common words run together ("butitis")."""
        if letters.lower() in self.piece_cost or letters == "I":
            return True
        if len(letters) < 5 or not letters.isalpha() or not self._suspect(letters):
            return False
        pieces = self._segment([letters])
        return len(pieces) > 1 and all(piece.lower() in self.piece_cost for piece in pieces)

    def _whole_word(self, letters: str) -> bool:
        """Whether a letter run next to punctuation or a number is a word of its own: one a cut word may have as a
        piece (common, not an ending, not a unit such as "am" or "th"), not an acronym."""
        return letters.lower() in self.piece_cost and letters.lower() not in NOT_BESIDE_NUMBERS and \
            not (len(letters) > 1 and letters.isupper())

    def is_its_language(self, text: str) -> bool:
        """Whether the text's words cost no more under this list's unigram model than under any gate
        language's (see __init__)."""
        words = [w.lower() for w in _LETTER_RUNS.findall(text)]
        costs = {lang: sum(table.get(w, self.unseen_cost) for w in words) for lang, table in self.language_costs.items()}
        return costs[""] <= min(costs.values())

    def rank_cost(self, rank: int) -> float:
        """The unigram cost of the word of this rank (0: the most frequent): log(r * log N), Zipf's law."""
        return math.log((rank + 1) * self.log_n)

    def _suspect(self, core: str) -> bool:
        low = core.lower()
        rank = self.rank.get(low)
        return (rank is None or rank >= self.pieces or (len(low) <= 3 and rank >= self.short_words)
                or (len(low) == 1 and low != "a"))

    @staticmethod
    def _joinable(parts, eligible, left: int, right: int) -> bool:
        """Two neighbouring tokens whose letters touch across one space (no punctuation between)."""
        return eligible[left] and eligible[right] and not parts[left][2] and not parts[right][0]

    def _segment(self, cores: list[str], corrector=None) -> list[str]:
        """The cheapest words for the letters of `cores` (neighbouring tokens), in their own case; a misspelt
        piece cut from a run-together word comes back as its correction (with `corrector` only)."""
        text = "".join(cores)
        low, n = text.lower(), len(text)
        starts = [0]
        for core in cores:
            starts.append(starts[-1] + len(core))
        as_written = {(starts[k], starts[k + 1]) for k in range(len(cores))}
        inner = set(starts[1:-1])
        spaces = [0] * (n + 1)          # spaces[k]: the text's spaces at letter positions 1..k
        for k in range(1, n + 1):
            spaces[k] = spaces[k - 1] + (k in inner)
        token_of = [k for k, core in enumerate(cores) for _ in core]   # the token each letter was typed in
        longest = max(self.max_piece, max(map(len, cores)))
        best, back, written_as = [0.0] + [math.inf] * n, [0] * (n + 1), [None] * (n + 1)
        for i in range(1, n + 1):
            for j in range(max(0, i - longest), i):
                if best[j] == math.inf:
                    continue
                word = low[j:i]
                options = []   # (cost, the word written instead, or None for the letters as typed)
                if (j, i) in as_written:
                    rank = self.rank.get(word)
                    if rank is not None:
                        options.append((self.rank_cost(rank), None))
                    else:
                        options.append((self.unknown_cost + self.unknown_per_char * len(word), None))
                        fixed = corrector.correct_word(text[j:i]) if corrector is not None else None
                        if fixed is not None:   # kept as typed here: the corrector puts it right afterwards
                            options.append((self.rank_cost(self.rank.get(fixed.lower(), len(self.rank))) + self.edit_cost, None))
                else:
                    cost = self.piece_cost.get(word)
                    if cost is not None:
                        options.append((cost + self.join_cost * (spaces[i - 1] - spaces[j]), None))
                    elif corrector is not None and spaces[i - 1] == spaces[j]:
                        k = token_of[j]   # no space inside: the letters of one token
                        fixed = self._misspelt_piece(cores[k], j - starts[k], i - starts[k], corrector)
                        if fixed is not None:
                            options.append((self.rank_cost(self.rank[fixed]) + self.split_cost + self.edit_cost, fixed))
                for cost, instead in options:
                    if best[j] + cost < best[i]:
                        best[i], back[i], written_as[i] = best[j] + cost, j, instead
        cuts, i = [], n
        while i > 0:
            cuts.append(i)
            i = back[i]
        bounds = [0] + cuts[::-1]
        return [written_as[b] or text[a:b] for a, b in zip(bounds, bounds[1:])]

    def _misspelt_piece(self, token: str, a: int, b: int, corrector) -> str | None:
        """The correction of token[a:b], a piece of a token typed without a space, when the rest of the token is one
        very common word and the token is no word the corrector knows; else None."""
        if a == 0:
            rest = token[b:]
        elif b == len(token):
            rest = token[:a]
        else:
            return None
        if self.rank.get(rest.lower(), self.short_words) >= self.short_words or corrector.known(token.lower()):
            return None
        return corrector.piece_correction(token[a:b])
