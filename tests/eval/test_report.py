"""Reports: results.json, the markdown table made from it (they agree), the figure, skipped data listed."""
import json
import re

import pytest

from pixelrep.eval.report import markdown_table, text_report, write_outputs
from pixelrep.eval.runner import run_sts
from tests.eval.helpers import HashingEncoder

SUITES = ["english", "stsb-multi", "crosslingual", "sts17"]


def _table_cells(table: str) -> dict:
    """(suite, task or summary name) -> {column: cell} parsed back from the markdown."""
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = re.sub(r"^\*\*(.*)\*\*( \(\d+/\d+\))?$", r"\1", cells[1])
        rows[(cells[0], name)] = dict(zip(header, cells))
    return rows


def test_table_and_json_agree(sts_dir, tmp_path):
    models = {"hash64": HashingEncoder(64), "hash16": HashingEncoder(16)}
    results = run_sts(models, suite=SUITES, data_dir=sts_dir, out_dir=tmp_path / "out", progress=False)
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["data_source"] == f"local:{sts_dir.resolve()}" and on_disk["config"]["split"] == "test"
    assert {"created", "pixelrep_version", "skipped", "config"} <= set(on_disk)

    rows = _table_cells(markdown_table(on_disk))
    expected = 0
    for model in on_disk["models"]:
        assert model["id"] in ("hash64", "hash16") and "class" in model["config"]
        for r in model["results"]:
            cell = rows[(r["suite"], r["task"])]
            assert cell[model["id"]] == f"{r['spearman']:.2f}" and cell["n"] == str(r["n"])
        for s in model["summaries"]:
            assert rows[(s["suite"], s["name"])][model["id"]] == f"{s['spearman']:.2f}"
        expected = len(model["results"]) + len(model["summaries"])
    assert len(rows) == expected
    # An average over fewer tasks than the suite defines says so in the table.
    assert "| stsb-multi | **avg** (3/11) |" in markdown_table(on_disk)
    assert (tmp_path / "out" / "results.md").read_text().strip() == text_report(on_disk)


def test_summary_values_are_means_of_the_table_rows(sts_dir):
    results = run_sts({"m": HashingEncoder()}, suite="english", data_dir=sts_dir, progress=False)
    model = results["models"][0]
    avg = next(s for s in model["summaries"] if s["name"] == "avg")
    assert avg["complete"] and avg["spearman"] == pytest.approx(sum(r["spearman"] for r in model["results"]) / 7)


def test_report_lists_skipped_data(sts_dir):
    results = run_sts({"m": HashingEncoder()}, suite="stsb-multi", data_dir=sts_dir, progress=False)
    report = text_report(results)
    assert "Skipped (data absent, not evaluated):" in report
    assert f"- stsb-multi: es: no folder {sts_dir / 'stsb' / 'es'}" in report
    assert [m["task"] for m in results["skipped"]] == ["es", "fr", "it", "nl", "pl", "pt", "ru", "zh"]


def test_figure_is_written(sts_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    run_sts({"a": HashingEncoder(), "b": HashingEncoder(8)}, suite=["english", "stsb-multi"], data_dir=sts_dir,
            out_dir=tmp_path, progress=False)
    with Image.open(tmp_path / "sts.png") as im:
        assert im.format == "PNG" and im.width > 500 and im.height > 500
    assert not list(tmp_path.glob(".*.tmp"))                      # atomic writes leave no temp files


def test_no_data_at_all_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data for suite 'english'.*no subset files"):
        run_sts({"m": HashingEncoder()}, suite="english", data_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="at least one model"):
        run_sts({}, data_dir=tmp_path)


def test_undefined_scores_are_null_in_strict_json(sts_dir, tmp_path):
    def refuse(constant):
        raise ValueError(f"{constant} in results.json")

    results = run_sts({"m": HashingEncoder()}, suite="stsb-multi", data_dir=sts_dir, progress=False)
    results["models"][0]["results"][0]["spearman"] = float("nan")     # e.g. a model that diverged
    results["models"][0]["seconds"] = float("inf")
    write_outputs(results, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert on_disk["models"][0]["results"][0]["spearman"] is None and on_disk["models"][0]["seconds"] is None
    assert "| stsb-multi | en | 8 | - |" in markdown_table(on_disk)


def test_figure_shows_the_whole_0_to_100_scale(sts_dir):
    pytest.importorskip("matplotlib")
    from pixelrep.eval.report import plot_results

    results = run_sts({"a": HashingEncoder(), "b": HashingEncoder(8)}, suite=["stsb-multi", "robustness"],
                      data_dir=sts_dir, progress=False)
    for ax in plot_results(results, {}).axes:
        low, high = ax.get_ylim()
        assert high == 100 and low <= 0, "a low score must not fill the panel"


def test_data_skipped_from_the_hub_names_the_fix_once(sts_dir):
    results = run_sts({"m": HashingEncoder()}, suite="stsb-multi", data_dir=sts_dir, progress=False)
    results["data_source"] = "hub"                         # as when some sets were not in the datasets cache
    report = text_report(results)
    assert report.count("--data-dir ../shared/data/sts") == 1
