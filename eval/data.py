"""STS data: local files or hub datasets -> validated (sentence1, sentence2, score) triples.

Every loader ends in the same validation, so a local file and a hub dataset fail the same way:
a missing column is an error naming the source and the column, an empty source is an error, and
rows whose score is missing, NaN or outside the score range are skipped and counted (reported).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COLUMNS = ("sentence1", "sentence2", "score")
# STS gold scores are similarity on a 0-5 scale (SICK-R uses 1-5, inside it).
SCORE_RANGE = (0.0, 5.0)
# File types a STS file may have, optionally gzipped; the suffix picks the parser.
EXTENSIONS = (".jsonl", ".csv", ".tsv")


@dataclass
class StsData:
    """Sentence pairs with gold scores, from one source.

    `skipped` counts rows dropped for a missing/NaN/out-of-range score; `rows` holds each kept
    pair's 0-based row number in the source, so files of translated rows can be aligned.
    """

    sentence1: list[str]
    sentence2: list[str]
    score: np.ndarray
    skipped: int = 0
    source: str = ""
    rows: np.ndarray = field(default=None)

    def __post_init__(self):
        self.score = np.asarray(self.score, dtype=np.float64)
        if self.rows is None:
            self.rows = np.arange(len(self.score))
        if not (len(self.sentence1) == len(self.sentence2) == len(self.score) == len(self.rows)):
            raise ValueError(f"{self.source or 'StsData'}: sentence1, sentence2, score and rows differ in length")

    def __len__(self) -> int:
        return len(self.score)

    @property
    def total_rows(self) -> int:
        """Rows in the source, kept or skipped."""
        return len(self) + self.skipped

    def head(self, n: int) -> "StsData":
        """The first n pairs."""
        return StsData(self.sentence1[:n], self.sentence2[:n], self.score[:n], self.skipped, self.source, self.rows[:n])

    def spread(self, n: int) -> "StsData":
        """n pairs evenly spaced over the set, for quick runs with --limit: STS files are grouped by genre
        (STS-B test opens with easy video captions), so the first n pairs would score far from the whole."""
        if n >= len(self):
            return self
        keep = np.linspace(0, len(self) - 1, n).round().astype(int)
        return StsData([self.sentence1[i] for i in keep], [self.sentence2[i] for i in keep], self.score[keep],
                       self.skipped, self.source, self.rows[keep])


def is_sts_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and name.endswith(EXTENSIONS)


def load_sts_file(path: str | Path, score_range: tuple[float, float] | None = SCORE_RANGE) -> StsData:
    """Read a jsonl / csv / tsv file (gzip allowed) with columns sentence1, sentence2, score."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STS file not found: {path}")
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith(EXTENSIONS):
        raise ValueError(f"{path}: unsupported file type; use one of {', '.join(EXTENSIONS)} (optionally .gz)")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        text = f.read()
    if name.endswith(".jsonl"):
        records = _jsonl_records(text, str(path))
    else:
        records = _delimited_records(text, str(path), delimiter="\t" if name.endswith(".tsv") else ",")
    return validate_records(records, source=str(path), score_range=score_range)


def dataset_to_sts(ds, source: str, score_column: str = "score",
                   score_range: tuple[float, float] | None = SCORE_RANGE) -> StsData:
    """Validate a loaded `datasets.Dataset` as STS pairs (see `validate_records`)."""
    wanted = ("sentence1", "sentence2", score_column)
    for col in wanted:
        if col not in ds.column_names:
            raise ValueError(f"{source}: missing column {col!r} (columns: {', '.join(ds.column_names)})")
    records = ((i + 1, {"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r[score_column]})
               for i, r in enumerate(ds.select_columns(list(wanted))))
    return validate_records(records, source=source, score_range=score_range)


def validate_records(records: Iterable[tuple[int, dict]], source: str,
                     score_range: tuple[float, float] | None = SCORE_RANGE) -> StsData:
    """Check (row number, record) pairs and keep the valid ones. Row numbers are for messages."""
    s1, s2, scores, rows = [], [], [], []
    skipped = 0
    for index, (line, rec) in enumerate(records):
        for col in COLUMNS:
            if col not in rec:
                raise ValueError(f"{source}: row {line} is missing column {col!r}; STS data needs columns "
                                 f"{', '.join(COLUMNS)} (found: {', '.join(map(str, rec))})")
        for col in ("sentence1", "sentence2"):
            if not isinstance(rec[col], str):
                raise ValueError(f"{source}: row {line} column {col!r} is {type(rec[col]).__name__}, expected text")
        score = _as_score(rec["score"])
        if score is None or (score_range and not score_range[0] <= score <= score_range[1]):
            skipped += 1
            continue
        s1.append(rec["sentence1"])
        s2.append(rec["sentence2"])
        scores.append(score)
        rows.append(index)
    if not scores:
        if skipped:
            raise ValueError(f"{source}: no usable rows: all {skipped} scores are missing, NaN or outside {score_range}")
        raise ValueError(f"{source} is empty: no rows with {', '.join(COLUMNS)}")
    return StsData(s1, s2, np.array(scores), skipped=skipped, source=source, rows=np.array(rows))


def concat(parts: list[StsData], source: str) -> StsData:
    """Concatenate subsets into one set (SentEval's "all" setting for STS12-16)."""
    return StsData(sum((p.sentence1 for p in parts), []), sum((p.sentence2 for p in parts), []),
                   np.concatenate([p.score for p in parts]), skipped=sum(p.skipped for p in parts), source=source)


def cross_pairs(first: StsData, second: StsData) -> StsData:
    """Pairs with sentence1 from `first` and sentence2 from `second`, two translations of the same rows.

    Both sources must have the same rows in the same order: equal row counts, and equal gold scores
    on every row both kept. A row skipped in either source is left out.
    """
    where = f"cannot pair {first.source} with {second.source}"
    if first.total_rows != second.total_rows:
        raise ValueError(f"{where}: {first.total_rows} vs {second.total_rows} rows; "
                         "cross-lingual pairs need row-aligned translations of the same file")
    common, i, j = np.intersect1d(first.rows, second.rows, assume_unique=True, return_indices=True)
    differ = np.flatnonzero(np.abs(first.score[i] - second.score[j]) > 1e-6)
    if len(differ):
        r = differ[0]
        raise ValueError(f"{where}: row {common[r] + 1} has score {first.score[i[r]]} vs {second.score[j[r]]}; "
                         "the files are not row-aligned translations")
    return StsData([first.sentence1[k] for k in i], [second.sentence2[k] for k in j], first.score[i],
                   skipped=first.total_rows - len(common), source=f"{first.source} x {second.source}", rows=common)


def _as_score(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(score) else score


def _jsonl_records(text: str, source: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: line {line_no} is not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{source}: line {line_no} is a JSON {type(rec).__name__}, expected an object")
        yield line_no, rec


def _delimited_records(text: str, source: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    # QUOTE_NONE for tsv: STS sentences contain unbalanced quotes that csv would treat as fields.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    header = reader.fieldnames or []
    for col in COLUMNS:
        if col not in header:
            raise ValueError(f"{source}: missing column {col!r} in the header line "
                             f"(found: {', '.join(header) or 'nothing'}); STS data needs columns {', '.join(COLUMNS)}")
    for rec in reader:
        if None in rec.values():  # fewer fields than the header
            raise ValueError(f"{source}: line {reader.line_num} has fewer fields than the header")
        yield reader.line_num, rec
