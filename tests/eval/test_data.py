"""Loading STS files: formats, validation errors naming file and column, skipped rows, alignment."""
import gzip
import json

import numpy as np
import pytest

from pixelrep.eval.data import cross_pairs, dataset_to_sts, load_sts_file
from tests.eval.helpers import stsb_rows, write_jsonl


def _lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_csv_tsv_and_gzip_read_the_same(tmp_path):
    rows = [dict(sentence1='He said "hi', sentence2="a, b", score=1.5), dict(sentence1="x", sentence2="y", score=4)]
    a = load_sts_file(write_jsonl(tmp_path / "a.jsonl", rows))
    b = load_sts_file(_lines(tmp_path / "b.csv", ["sentence1,sentence2,score", '"He said ""hi","a, b",1.5', "x,y,4"]))
    c = load_sts_file(_lines(tmp_path / "c.tsv", ["score\tsentence1\tsentence2", '1.5\tHe said "hi\ta, b', "4\tx\ty"]))
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress((tmp_path / "a.jsonl").read_bytes()))
    d = load_sts_file(gz)
    for data in (a, b, c, d):
        assert data.sentence1 == ['He said "hi', "x"] and data.sentence2 == ["a, b", "y"]
        np.testing.assert_array_equal(data.score, [1.5, 4.0])
        assert data.skipped == 0


def test_missing_column_names_file_and_column(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [dict(sentence1="a", sentence2="b", score=1), dict(sentence1="a", score=2)])
    with pytest.raises(ValueError, match=r"bad\.jsonl: row 2 is missing column 'sentence2'"):
        load_sts_file(path)
    path = _lines(tmp_path / "bad.csv", ["sentence1,sentence2,similarity", "a,b,1"])
    with pytest.raises(ValueError, match=r"bad\.csv: missing column 'score'.*found: sentence1, sentence2, similarity"):
        load_sts_file(path)


def test_nan_null_and_out_of_range_scores_are_skipped_and_counted(tmp_path):
    path = _lines(tmp_path / "s.jsonl", [
        '{"sentence1": "a", "sentence2": "b", "score": 2.0}',
        '{"sentence1": "c", "sentence2": "d", "score": NaN}',
        '{"sentence1": "e", "sentence2": "f", "score": null}',
        '{"sentence1": "g", "sentence2": "h", "score": 7}',
        '{"sentence1": "i", "sentence2": "j", "score": -0.5}',
        '',
        '{"sentence1": "k", "sentence2": "l", "score": "5"}',
    ])
    data = load_sts_file(path)
    assert data.sentence1 == ["a", "k"] and data.skipped == 4 and data.total_rows == 6
    np.testing.assert_array_equal(data.rows, [0, 5])
    assert load_sts_file(path, score_range=None).skipped == 2   # NaN and null are never scores


def test_empty_and_unusable_files_error(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.jsonl is empty"):
        load_sts_file(_lines(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(ValueError, match=r"header\.csv is empty"):
        load_sts_file(_lines(tmp_path / "header.csv", ["sentence1,sentence2,score"]))
    with pytest.raises(ValueError, match="no usable rows: all 1 scores"):
        load_sts_file(write_jsonl(tmp_path / "nan.jsonl", [dict(sentence1="a", sentence2="b", score=None)]))
    with pytest.raises(ValueError, match=r"line 2 is not valid JSON"):
        load_sts_file(_lines(tmp_path / "broken.jsonl", ['{"sentence1": "a", "sentence2": "b", "score": 1}', "{oops"]))
    with pytest.raises(ValueError, match=r"row 1 column 'sentence2' is NoneType"):
        load_sts_file(write_jsonl(tmp_path / "none.jsonl", [dict(sentence1="a", sentence2=None, score=1)]))
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        load_sts_file(tmp_path / "nowhere.jsonl")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_sts_file(_lines(tmp_path / "x.parquet", ["x"]))


def test_cross_pairs_take_aligned_rows(tmp_path):
    en = load_sts_file(write_jsonl(tmp_path / "en.jsonl", stsb_rows("en")))
    de_rows = stsb_rows("de")
    de_rows[2]["score"] = float("nan")                           # skipped in de only: left out of the pairs
    de = load_sts_file(write_jsonl(tmp_path / "de.jsonl", de_rows))
    pairs = cross_pairs(en, de)
    assert len(pairs) == 7 and pairs.skipped == 1
    for s1, s2, row in zip(pairs.sentence1, pairs.sentence2, pairs.rows):
        assert s1 == stsb_rows("en")[row]["sentence1"] and s2 == stsb_rows("de")[row]["sentence2"]
    np.testing.assert_array_equal(pairs.score, [r["score"] for i, r in enumerate(stsb_rows("en")) if i != 2])


def test_cross_pairs_reject_misaligned_files(tmp_path):
    en = load_sts_file(write_jsonl(tmp_path / "en.jsonl", stsb_rows("en")))
    short = load_sts_file(write_jsonl(tmp_path / "short.jsonl", stsb_rows("fr")[:-1]))
    with pytest.raises(ValueError, match=r"8 vs 7 rows"):
        cross_pairs(en, short)
    shuffled = load_sts_file(write_jsonl(tmp_path / "shuffled.jsonl", stsb_rows("fr")[::-1]))
    with pytest.raises(ValueError, match=r"row 1 has score 4.8 vs 5.0; the files are not row-aligned"):
        cross_pairs(en, shuffled)


def test_datasets_path_with_renamed_score_column(tmp_path):
    # The hub code path (PhilipMay/stsb_multi_mt names its gold column similarity_score), on a local file.
    rows = [dict(sentence1=r["sentence1"], sentence2=r["sentence2"], similarity_score=r["score"]) for r in stsb_rows("es")]
    rows[0]["similarity_score"] = 9.0
    path = tmp_path / "es.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import datasets

    table = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    data = dataset_to_sts(table, "json:train", score_column="similarity_score")
    assert len(data) == 7 and data.skipped == 1 and data.sentence1[0] == rows[1]["sentence1"]
    with pytest.raises(ValueError, match=r"json:train: missing column 'score'"):
        dataset_to_sts(table, "json:train")
