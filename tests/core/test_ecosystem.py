"""Fitting the ecosystem without importing sentence-transformers: the folder it loads, the keywords
MTEB and sentence-transformers pass to encode, similarity, truncation warnings, long strips, the model card."""
import json
import os
import warnings

import numpy as np
import pytest
import torch
import yaml

from pixelrep import ModelConfig, PixelEncoder, RenderConfig
from pixelrep.batch import collate
from pixelrep.eval.models import PIXEL, model_kind
from pixelrep.export import MODULE_CLASS, MODULE_CONFIG
from pixelrep.pretrained import write_checkpoint
from tests.core.helpers import LONG, SENTENCES, tiny_encoder


@pytest.fixture(scope="module")
def enc():
    return tiny_encoder(seed=5)


def test_saved_folder_is_a_sentence_transformers_folder_and_still_pixelrep(enc, tmp_path):
    enc.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == sorted(["config.json", "model.safetensors", "modules.json",
                                                         "config_sentence_transformers.json", MODULE_CONFIG, "README.md"])
    modules = json.loads((tmp_path / "m" / "modules.json").read_text())
    assert modules == [{"idx": 0, "name": "0", "path": "", "type": MODULE_CLASS}]
    st_config = json.loads((tmp_path / "m" / "config_sentence_transformers.json").read_text())
    assert st_config["model_type"] == "SentenceTransformer" and st_config["similarity_fn_name"] == "cosine"
    np.testing.assert_array_equal(PixelEncoder.from_pretrained(tmp_path / "m").encode(SENTENCES), enc.encode(SENTENCES))
    assert model_kind(str(tmp_path / "m"), default=PIXEL) == PIXEL   # format_version wins over modules.json
    # A folder from before (config.json + model.safetensors only) still loads.
    write_checkpoint(tmp_path / "old", model=enc.model_config, render=enc.render_config, state=enc.state_dict())
    assert sorted(os.listdir(tmp_path / "old")) == ["config.json", "model.safetensors"]
    np.testing.assert_array_equal(PixelEncoder.from_pretrained(tmp_path / "old").encode(SENTENCES), enc.encode(SENTENCES))


def test_encode_takes_sentence_transformers_keywords(enc):
    plain = enc.encode(SENTENCES)
    np.testing.assert_array_equal(enc.encode(SENTENCES, normalize_embeddings=False), enc.encode(SENTENCES, normalize=False))
    np.testing.assert_allclose(enc.encode(SENTENCES, prompt="query: "), enc.encode(["query: " + s for s in SENTENCES]),
                               atol=1e-6)
    assert not np.allclose(enc.encode(SENTENCES, prompt="query: "), plain)
    as_list = enc.encode(SENTENCES, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == len(SENTENCES) and as_list[0].shape == (64,)
    np.testing.assert_allclose(torch.stack(as_list).numpy(), plain, atol=1e-6)
    short = enc.encode(SENTENCES, truncate_dim=16)
    raw = enc.encode(SENTENCES, normalize=False)[:, :16]
    np.testing.assert_allclose(short, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(enc.encode(SENTENCES, precision="float32", output_value="sentence_embedding"),
                                  enc.encode(SENTENCES, precision="fp32"))


def test_encode_ignores_mteb_keywords_and_names_unknown_ones(enc):
    plain = enc.encode(SENTENCES)
    mteb = enc.encode(SENTENCES, task_name="STSBenchmark", prompt_type=None, prompt_name="query", hf_split="test",
                      hf_subset="default", task_metadata=None)
    np.testing.assert_array_equal(mteb, plain)
    with pytest.raises(TypeError, match=r"unknown keyword\(s\) \['normalise'\]"):
        enc.encode(SENTENCES, normalise=True)
    with pytest.raises(ValueError, match="output_value='token_embeddings'.*sentence embeddings only"):
        enc.encode(SENTENCES, output_value="token_embeddings")
    with pytest.raises(ValueError, match="precision='int8'.*quantize_embeddings"):
        enc.encode(SENTENCES, precision="int8")
    with pytest.raises(ValueError, match="truncate_dim=65"):
        enc.encode(SENTENCES, truncate_dim=65)


def test_similarity_dimension_and_max_seq_length(enc):
    a, b = enc.encode(SENTENCES[:3], normalize=False), enc.encode(SENTENCES, normalize=False)
    sim = enc.similarity(a, torch.from_numpy(b))
    expected = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    assert isinstance(sim, torch.Tensor) and sim.shape == (3, len(SENTENCES))
    np.testing.assert_allclose(sim.numpy(), expected, atol=1e-5)
    assert enc.similarity(a[0], b[0]).shape == (1, 1)   # single vectors, as MTEB's STS evaluator passes them
    assert enc.get_sentence_embedding_dimension() == enc.get_embedding_dimension() == 64
    assert enc.max_seq_length == 64


def test_max_seq_length_setter_cuts_earlier():
    enc = tiny_encoder()
    enc.max_seq_length = 8
    assert enc.render_config.max_patches == 8 and enc.renderer.render(LONG).num_patches == 8
    with pytest.raises(ValueError, match=r"max_seq_length=65: use an int in 2\.\.64"):
        enc.max_seq_length = 65


def test_one_truncation_warning_per_call(enc):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc.encode([LONG * 3, "short", LONG * 5], batch_size=1)
        enc.encode(["short", "also short"])
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert "2 of 3 inputs were longer than max_seq_length=64 patches" in messages[0]
    assert caught[0].filename == __file__   # points at the caller's line


@pytest.mark.parametrize("per_token", [1, 3])
def test_long_strips_up_to_512_patches_do_not_depend_on_padding(per_token):
    torch.manual_seed(0)
    enc = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=512, patches_per_token=per_token),
                       RenderConfig(max_patches=512))
    assert enc.vit.pos_embed.shape[1] == -(-512 // per_token)   # positions sized to 512 patches
    rendered = enc.renderer.render_batch([LONG * 4, LONG * 7])
    assert 250 <= rendered[0].num_patches <= 350 and rendered[1].num_patches > rendered[0].num_patches + 100
    alone = enc(*collate(rendered[:1]))
    torch.testing.assert_close(enc(*collate(rendered))[0], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(enc(*collate(rendered[:1], pad_to=512))[0], alone[0], atol=1e-5, rtol=0)


def test_model_card_has_hub_metadata_and_scores(enc, tmp_path):
    results = {"models": [
        {"id": "minilm", "kind": "sentence-transformers", "results": [], "summaries": []},
        {"id": "runs/x/best", "kind": "pixelrep",
         "results": [{"suite": "english", "task": "stsb", "n": 1379, "spearman": 23.456, "pearson": 20.1},
                     {"suite": "english", "task": "sickr", "n": 2, "spearman": None, "pearson": None}],
         "summaries": [{"suite": "english", "name": "avg", "spearman": 23.456, "pearson": 20.1}]}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    enc.save_pretrained(tmp_path / "card-model", results=tmp_path / "results.json",
                        metadata={"trained": True, "description": "A test model.", "recipe": "pixelrep train smoke",
                                  "steps": 80})
    text = (tmp_path / "card-model" / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "pixelrep" and meta["license"] == "apache-2.0"
    entry = meta["model-index"][0]
    assert entry["name"] == "card-model"
    assert entry["results"][0]["metrics"][0] == {"type": "spearman", "value": 23.46, "name": "Spearman x100 (cosine)"}
    assert len(entry["results"]) == 1   # a null (undefined) score is left out, not written as a number
    for fact in ("A test model.", "64 × 2 × 2", "| embedding dimension | 64 |", "recipe: pixelrep train smoke",
                 "steps: 80", "| english | stsb | 1379 | 23.46 | 20.10 |", "| english | sickr | 2 | - | - |",
                 "Apache-2.0", "Open Font License",
                 '"max_patches": 64', "Intended use"):
        assert fact in body, fact
    with pytest.raises(ValueError, match="no pixelrep model"):
        enc.save_pretrained(tmp_path / "bad", results={"models": []})
    assert not (tmp_path / "bad").exists()   # nothing written when the card cannot be made
