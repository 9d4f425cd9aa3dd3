"""`pixelrep encode` and `pixelrep bench encode` (without the MiniLM baseline: that runs in slow tests)."""
import io
import json

import numpy as np
import pytest

from pixelrep import ModelConfig, PixelEncoder
from pixelrep.eval.bench_encode import load_sentences
from pixelrep.cli import main as run
from tests.core.helpers import tiny_encoder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_encoder(seed=7).save_pretrained(folder)
    return folder


def test_encode_file_writes_npy(tmp_path, model_dir):
    lines = ["A man is playing a guitar.", "", "Ein Mann spielt Gitarre.\u2028same line"]
    (tmp_path / "in.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    out = tmp_path / "sub" / "emb.npy"
    assert run(["encode", "--model", str(model_dir), "--input", str(tmp_path / "in.txt"), "--output", str(out)]) == 0
    emb = np.load(out)
    assert emb.shape == (3, 64) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, PixelEncoder.from_pretrained(model_dir).encode(lines), atol=1e-6)


def test_encode_stdin(tmp_path, model_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo\n"))
    out = tmp_path / "emb.npy"
    run(["encode", "--model", str(model_dir), "--output", str(out), "--no-normalize", "--batch-size", "1"])
    assert np.load(out).shape == (2, 64)
    assert "wrote 2 x 64" in capsys.readouterr().err


def test_bench_encode_json(shared_data, capsys):
    run(["bench", "encode", "--json", "--data-dir", str(shared_data), "--presets", "tiny", "default", "--runs", "1",
         "--limit", "40", "--no-baseline"])
    result = json.loads(capsys.readouterr().out)
    assert result["sentences"] == 40
    tiny = result["models"]["tiny"]
    assert tiny["sentences_per_s"] > 0 and tiny["peak_rss_mb"] > 0 and len(tiny["runs_s"]) == 1
    assert tiny["mean_positions"] == result["mean_patches"] > 1     # one patch per token
    # The bundled model is loaded (not a random preset) and read with its own render config.
    default = result["models"]["default"]
    assert default["sentences_per_s"] > 0 and default["mean_positions"] > 1


def test_bench_data_missing(tmp_path, monkeypatch, capsys):
    assert run(["bench", "encode", "--data-dir", str(tmp_path), "--no-baseline"]) == 2
    assert "test.jsonl not found: pass --data-dir" in capsys.readouterr().err
    # No --data-dir and no shared data: the renderer's bundled English samples stand in, and say so.
    monkeypatch.setenv("PIXELREP_DATA", str(tmp_path))
    sentences, source = load_sentences(limit=10)
    assert len(sentences) == 10 and source.startswith("bundled")


@pytest.mark.slow
def test_bench_encode_with_minilm(shared_data, capsys):
    run(["bench", "encode", "--json", "--data-dir", str(shared_data), "--runs", "1", "--limit", "200"])
    result = json.loads(capsys.readouterr().out)
    assert set(result["models"]) == {"tiny", "small", "default", "all-MiniLM-L6-v2"}
    assert result["ratios"]["small_vs_minilm"] > 0 and result["ratios"]["default_vs_minilm"] > 0
    # small reads runs of patches as one token: fewer positions than patches; MiniLM reports its tokens.
    k = ModelConfig.from_preset("small").patches_per_token
    assert result["mean_patches"] / k <= result["models"]["small"]["mean_positions"] < result["mean_patches"] / k + 1
    assert result["models"]["all-MiniLM-L6-v2"]["mean_positions"] > 2


def test_version_is_the_package_version(capsys):
    from importlib.metadata import version

    import pixelrep

    with pytest.raises(SystemExit) as done:
        run(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pixelrep {pixelrep.__version__}" == f"pixelrep {version('pixelrep')}"


def test_strict_json_writes_null_for_nan_and_infinity():
    from pixelrep import strict_json

    def refuse(constant):
        raise ValueError(constant)

    text = strict_json.dumps({"loss": float("nan"), "rates": [np.float32("inf"), -np.inf, 1.5, np.int64(3)]})
    assert json.loads(text, parse_constant=refuse) == {"loss": None, "rates": [None, None, 1.5, 3]}
