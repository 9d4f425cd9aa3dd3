"""Fixtures for eval tests: a small STS folder in the --data-dir layout and a weightless encoder."""
from pathlib import Path

import pytest

from tests.eval.helpers import BASE_PAIRS, HashingEncoder, stsb_rows, write_jsonl


@pytest.fixture
def sts_dir(tmp_path) -> Path:
    """The --data-dir layout with every suite partly present: stsb en/de/ja, STS12-16, SICK-R, two STS17 pairs."""
    root = tmp_path / "sts"
    plain = [dict(sentence1=a, sentence2=b, score=s) for a, b, s in BASE_PAIRS]
    for year in ("sts12", "sts13", "sts14", "sts15", "sts16"):
        write_jsonl(root / year / "MSRvid.jsonl", plain[:5])
        write_jsonl(root / year / "headlines.jsonl", plain[3:])
    write_jsonl(root / "sickr" / "test.jsonl", [dict(r, score=max(1.0, r["score"])) for r in plain])
    for lang in ("en", "de", "ja"):
        write_jsonl(root / "stsb" / lang / "test.jsonl", stsb_rows(lang))
        write_jsonl(root / "stsb" / lang / "dev.jsonl", stsb_rows(lang)[:4])
    write_jsonl(root / "sts17" / "en-de.jsonl", plain)
    write_jsonl(root / "sts17" / "en-en.jsonl", plain)
    return root


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder()
