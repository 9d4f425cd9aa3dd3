"""`pixelrep eval sts` end to end, and how model names are told apart."""
import argparse
import json

import numpy as np

import pytest

from pixelrep.eval import cli
from pixelrep.eval.models import PIXEL, SENTENCE_TRANSFORMERS, model_kind
from tests.eval.helpers import HashingEncoder


def _parse(argv):
    parser = argparse.ArgumentParser(prog="pixelrep")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench").add_subparsers(dest="bench", required=True)
    cli.register(commands, bench)
    return parser.parse_args(argv)


def test_cli_end_to_end_with_baseline(sts_dir, tmp_path, monkeypatch, capsys):
    loaded = []

    def fake_load(spec, default):
        loaded.append((spec, default))
        return HashingEncoder(64 if default == PIXEL else 16), dict(id=spec, kind=default, config={})

    monkeypatch.setattr("pixelrep.eval.models.load_model", fake_load)
    out = tmp_path / "out"
    args = _parse(["eval", "sts", "--model", "mine", "--suite", "stsb-multi", "--data-dir", str(sts_dir),
                   "--out", str(out), "--baseline", "minilm", "--limit", "5", "--batch-size", "2"])
    assert args.func(args) == 0
    # Word matching is reported beside every model unless --no-bow.
    assert loaded == [("mine", PIXEL), ("minilm", SENTENCE_TRANSFORMERS), ("bow", SENTENCE_TRANSFORMERS)]
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["limit"] == 5 and results["config"]["batch_size"] == 2
    assert [m["id"] for m in results["models"]] == ["mine", "minilm", "bow"]
    assert "| suite | task | n | mine | minilm | bow |" in printed
    assert f"| stsb-multi | de | 5 | {results['models'][0]['results'][1]['spearman']:.2f} |" in printed
    assert (out / "sts.png").is_file()


def test_no_bow_leaves_word_matching_out(sts_dir, tmp_path, monkeypatch):
    loaded = []

    def fake_load(spec, default):
        loaded.append(spec)
        return HashingEncoder(16), dict(id=spec, kind=default, config={})

    monkeypatch.setattr("pixelrep.eval.models.load_model", fake_load)
    args = _parse(["eval", "sts", "--model", "mine", "--suite", "stsb-multi", "--data-dir", str(sts_dir),
                   "--out", str(tmp_path), "--limit", "3", "--no-bow"])
    assert args.func(args) == 0 and loaded == ["mine"]


def test_bag_of_words_is_word_matching():
    from pixelrep.eval.models import load_model
    from pixelrep.eval.sts import cosine

    bow, info = load_model("bow")
    assert info["kind"] == "bow"
    emb = bow.encode(["A man plays the guitar.", "the GUITAR, a man plays", "Zwei Hunde rennen.", ""]).astype(float)
    sims = cosine(emb[[0, 0, 0]], emb[[1, 2, 3]])
    np.testing.assert_allclose(sims, [1.0, 0.0, 0.0], atol=1e-6)   # case and punctuation do not count


def test_cli_visual_suite_with_chosen_kinds_and_rates(sts_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pixelrep.eval.models.load_model",
                        lambda spec, default: (HashingEncoder(), dict(id=spec, kind=default, config={})))
    out = tmp_path / "out"
    args = _parse(["eval", "sts", "--model", "mine", "--suite", "visual", "--data-dir", str(sts_dir), "--out", str(out),
                   "--visual-kinds", "homoglyphs", "blur", "--visual-rates", "0.3", "--seed", "5", "--no-bow"])
    assert args.func(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["task"] for r in results["models"][0]["results"]] == ["clean", "homoglyphs 0.3", "blur 0.5", "blur 1",
                                                                    "blur 1.5"]
    assert results["config"]["visual_kinds"] == ["homoglyphs", "blur"] and results["config"]["seed"] == 5
    printed = capsys.readouterr().out
    assert "| homoglyphs | 0.3 | 8 |" in printed and "visual.png" in printed and (out / "visual.png").is_file()


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        _parse(["eval", "sts", "--model", "m", "--limit", "0"])
    with pytest.raises(SystemExit):
        _parse(["eval", "sts", "--model", "m", "--suite", "englsh"])
    assert "invalid choice: 'englsh'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["eval", "sts", "--model", "m", "--visual-kinds", "homoglyph"])
    assert "invalid choice: 'homoglyph'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["eval", "sts", "--model", "m", "--visual-rates", "30"])
    assert "30: use a fraction of eligible characters in (0, 1]" in capsys.readouterr().err


def test_cli_with_a_saved_pixel_encoder(sts_dir, tmp_path, capsys):
    from pixelrep import ModelConfig, PixelEncoder, RenderConfig

    render = RenderConfig(max_patches=32)
    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=32), render)
    encoder.save_pretrained(tmp_path / "tiny", metadata={"trained": False})
    assert model_kind(str(tmp_path / "tiny"), SENTENCE_TRANSFORMERS) == PIXEL
    args = _parse(["eval", "sts", "--model", str(tmp_path / "tiny"), "--suite", "english", "--data-dir", str(sts_dir),
                   "--out", str(tmp_path / "out"), "--limit", "4"])
    with pytest.warns(UserWarning, match="untrained"):
        assert args.func(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    model = results["models"][0]
    assert model["kind"] == PIXEL and model["config"]["render_config"]["max_patches"] == 32
    assert model["config"]["metadata"] == {"trained": False}
    assert len(model["results"]) == 7 and all(r["n"] == 4 for r in model["results"])
    assert "| suite | task | n | tiny (untrained) |" in capsys.readouterr().out


def test_model_kind(tmp_path):
    assert model_kind("default", SENTENCE_TRANSFORMERS) == PIXEL
    assert model_kind("minilm", PIXEL) == SENTENCE_TRANSFORMERS
    assert model_kind("someone/model", PIXEL) == PIXEL                     # hub ids: the flag decides
    assert model_kind("someone/model", SENTENCE_TRANSFORMERS) == SENTENCE_TRANSFORMERS
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text("[]")
    assert model_kind(str(st), PIXEL) == SENTENCE_TRANSFORMERS
    px = tmp_path / "px"
    px.mkdir()
    (px / "config.json").write_text(json.dumps({"format_version": 1}))
    assert model_kind(str(px), SENTENCE_TRANSFORMERS) == PIXEL
    pixel_format = tmp_path / "pixel-base"                                  # PIXEL's ViT-MAE config: no modules.json
    pixel_format.mkdir()
    (pixel_format / "config.json").write_text(json.dumps({"hidden_size": 768, "num_hidden_layers": 12}))
    assert model_kind(str(pixel_format), SENTENCE_TRANSFORMERS) == PIXEL
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a pixelrep checkpoint"):
        model_kind(str(tmp_path / "empty"), PIXEL)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        model_kind(str(tmp_path / "missing"), PIXEL)


@pytest.mark.slow
def test_minilm_baseline_on_stsb(shared_data):
    from pixelrep.eval.data import load_sts_file
    from pixelrep.eval.models import load_model
    from pixelrep.eval.sts import evaluate_sts

    model, info = load_model("minilm", default=SENTENCE_TRANSFORMERS)
    data = load_sts_file(shared_data / "sts" / "stsb" / "en" / "test.jsonl").head(300)
    assert info["config"]["embedding_dim"] == 384
    assert evaluate_sts(model, data.sentence1, data.sentence2, data.score)["spearman"] > 75


@pytest.fixture
def no_network(monkeypatch):
    """No DNS (as on a machine without network) and offline mode off, as when HF_HUB_OFFLINE is unset;
    datasets must not be asked at all (it would retry for ~25 s per dataset)."""
    import socket

    import datasets
    from huggingface_hub import constants

    from pixelrep import hub

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the hub was retried"))
    hub._unreachable_reason.cache_clear()
    yield
    hub._unreachable_reason.cache_clear()


def test_unreachable_hub_fails_in_seconds_with_one_line_naming_the_fix(no_network, tmp_path, monkeypatch, capsys):
    import time

    from pixelrep.cli import main

    monkeypatch.setattr("pixelrep.eval.models.load_model",
                        lambda spec, default: (HashingEncoder(), dict(id=spec, kind=default, config={})))
    start = time.perf_counter()
    assert main(["eval", "sts", "--model", "default", "--suite", "all", "--out", str(tmp_path)]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pixelrep eval: error: cannot load STS data ")
    assert "the Hugging Face hub (https://huggingface.co) cannot be reached" in err
    assert err.count("--data-dir ../shared/data/sts") == 1 and err.count("HF_HUB_OFFLINE=1") == 1


def test_offline_mode_without_cached_data_names_the_fix_once(monkeypatch):
    import datasets
    from huggingface_hub import constants

    from pixelrep.eval.runner import run_sts

    def not_cached(path, name=None, split=None, **kwargs):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets, "load_dataset", not_cached)
    with pytest.raises(FileNotFoundError) as error:
        run_sts({"m": HashingEncoder()}, suite="stsb-multi", progress=False)
    message = str(error.value)
    assert message.startswith("no data for suite 'stsb-multi' from the hub: PhilipMay/stsb_multi_mt[de]:test could "
                              "not be loaded (ConnectionError: Couldn't reach") and "(and 10 more sets)" in message
    assert message.count("--data-dir ../shared/data/sts") == 1 and "\n" not in message


def test_several_suites_in_one_run(sts_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("pixelrep.eval.models.load_model",
                        lambda spec, default: (HashingEncoder(), dict(id=spec, kind=default, config={})))
    args = _parse(["eval", "sts", "--model", "m", "--suite", "stsb-multi", "robustness", "--data-dir", str(sts_dir),
                   "--out", str(tmp_path), "--no-bow"])
    assert args.func(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["suites"] == ["stsb-multi", "robustness"]
    assert {r["suite"] for r in results["models"][0]["results"]} == {"stsb-multi", "robustness"}


def test_unreachable_hub_baseline_fails_in_seconds(no_network, sts_dir, tmp_path, monkeypatch, capsys):
    import sentence_transformers

    from pixelrep.cli import main

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", lambda *a, **k: pytest.fail("the hub was retried"))
    assert main(["eval", "sts", "--model", "default", "--baseline", "someone/st-model", "--data-dir", str(sts_dir),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("pixelrep eval: error: cannot load baseline 'someone/st-model': the Hugging Face hub")


def test_uncached_baseline_in_offline_mode_is_one_line(monkeypatch):
    import sentence_transformers

    from pixelrep.eval.models import load_model

    def not_cached(name, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", not_cached)
    with pytest.raises(RuntimeError, match=r"^cannot load baseline 'someone/st-model': We couldn't connect to "
                                           r"'https://huggingface.co' to load the files.; pass a local") as error:
        load_model("someone/st-model", default=SENTENCE_TRANSFORMERS)
    assert "\n" not in str(error.value)
