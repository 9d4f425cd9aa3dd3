"""save_pretrained / from_pretrained: round trip, bundled default, hub, and every bad-checkpoint error."""
import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from pixelrep import PixelEncoder
from pixelrep.pretrained import FORMAT_VERSION
from tests.core.helpers import SENTENCES, tiny_encoder


@pytest.fixture()
def saved(tmp_path):
    enc = tiny_encoder(seed=1, cls_token=True, patches_per_token=2)
    enc.save_pretrained(tmp_path / "model", metadata={"trained": True, "note": "test"})
    return enc, tmp_path / "model"


def test_round_trip_gives_identical_outputs(saved):
    enc, folder = saved
    assert not [f for f in os.listdir(folder) if f.startswith(".")]   # no temp files left
    loaded = PixelEncoder.from_pretrained(folder)
    np.testing.assert_array_equal(loaded.encode(SENTENCES), enc.encode(SENTENCES))
    assert loaded.model_config == enc.model_config and loaded.render_config == enc.render_config
    assert loaded.metadata == {"trained": True, "note": "test"}
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION and set(config) == {"format_version", "model", "render", "metadata"}


def test_save_overwrites_and_keeps_other_files(saved):
    enc, folder = saved
    (folder / "align_config.json").write_text("{}")
    other = tiny_encoder(seed=2, cls_token=True)
    other.save_pretrained(folder)
    assert (folder / "align_config.json").exists()
    np.testing.assert_array_equal(PixelEncoder.from_pretrained(folder).encode(SENTENCES), other.encode(SENTENCES))


def test_pooling_override(saved):
    enc, folder = saved
    cls = PixelEncoder.from_pretrained(folder, pooling="cls")
    assert cls.model_config.pooling == "cls"
    assert not np.allclose(cls.encode(SENTENCES), enc.encode(SENTENCES))


def test_bundled_default_is_trained_and_reads_past_typos():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a trained model loads without the untrained warning
        enc = PixelEncoder.from_pretrained("default")
    assert enc.metadata["trained"] is True and enc.embedding_dim == 512   # USE-m3's space
    assert enc.render_config.word_align == enc.model_config.patches_per_token   # words on token boundaries
    clean, typo, unrelated, german = enc.encode(["A man is playing a guitar.", "A man is playing a gutiar.",
                                                 "The stock market fell sharply today.", "Ein Mann spielt Gitarre."])
    # A typo barely moves it, a translation stays nearer than an unrelated sentence, which is far (bundle:
    # 0.87 / 0.32 / -0.10; the whitening spreads cosines out, so unrelated pairs fall below 0).
    assert clean @ typo > 0.75 and clean @ german > 0.15 > 0.0 > clean @ unrelated


def test_untrained_model_warns(tmp_path):
    tiny_encoder().save_pretrained(tmp_path / "m", metadata={"trained": False, "description": "random weights"})
    with pytest.warns(UserWarning, match="'.*m' is untrained: random weights"):
        enc = PixelEncoder.from_pretrained(tmp_path / "m")
    assert enc.metadata["trained"] is False


def test_missing_files_are_named(saved, tmp_path):
    _, folder = saved
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        PixelEncoder.from_pretrained(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        PixelEncoder.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no model folder './nowhere'"):
        PixelEncoder.from_pretrained("./nowhere")


def test_corrupt_safetensors_is_named(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file"):
        PixelEncoder.from_pretrained(folder)


def test_mismatched_keys_and_shapes_are_named(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    state = load_file(path)
    state["vit.extra.weight"] = state.pop("vit.norm.weight")
    save_file(state, path)
    with pytest.raises(ValueError, match=r"missing key 'vit\.norm\.weight'.*unexpected key 'vit\.extra\.weight'"):
        PixelEncoder.from_pretrained(folder)
    state["vit.norm.weight"] = torch.ones(65)
    del state["vit.extra.weight"]
    save_file(state, path)
    with pytest.raises(ValueError, match=r"key 'vit\.norm\.weight' has shape \(65,\), the config needs \(64,\)"):
        PixelEncoder.from_pretrained(folder)


def _edit_config(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_unknown_config_keys_are_named(saved):
    _, folder = saved
    _edit_config(folder, lambda c: c["model"].update(colour="red"))
    with pytest.raises(ValueError, match=r"unknown ModelConfig keys \['colour'\]"):
        PixelEncoder.from_pretrained(folder)
    _edit_config(folder, lambda c: (c["model"].pop("colour"), c.update(extras=1)))
    with pytest.raises(ValueError, match=r"unknown keys \['extras'\]"):
        PixelEncoder.from_pretrained(folder)
    _edit_config(folder, lambda c: (c.pop("extras"), c.update(format_version=FORMAT_VERSION + 1)))
    with pytest.raises(ValueError, match="upgrade pixelrep"):
        PixelEncoder.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        PixelEncoder.from_pretrained(folder)


def test_hub_id_offline_says_so():
    # tests/conftest.py sets HF_HUB_OFFLINE=1.
    with pytest.raises(RuntimeError, match=r"offline \(HF_HUB_OFFLINE=1 is set\).*pass that folder"):
        PixelEncoder.from_pretrained("no-such-owner/no-such-model")


@pytest.mark.parametrize("dtype, tolerance", [("float16", 1e-3), ("bfloat16", 5e-3)])
def test_half_precision_save_matches_float32(tmp_path, dtype, tolerance):
    # Unit-length embeddings of the half-precision copy are within `tolerance` of the float32 model's
    # (measured 1e-4 / 1e-3; the bundled default, stored as float16, moved 7e-5 when converted).
    enc = tiny_encoder(seed=2, patches_per_token=3)
    enc.save_pretrained(tmp_path / dtype, dtype=dtype)
    stored = load_file(tmp_path / dtype / "model.safetensors")
    assert {v.dtype for v in stored.values()} == {getattr(torch, dtype)}
    loaded = PixelEncoder.from_pretrained(tmp_path / dtype)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())   # upcast on load
    np.testing.assert_allclose(loaded.encode(SENTENCES, precision="fp32"), enc.encode(SENTENCES, precision="fp32"),
                               atol=tolerance)
    with pytest.raises(ValueError, match="dtype='int8'.*float16"):
        enc.save_pretrained(tmp_path / "bad", dtype="int8")


def test_bundled_default_is_stored_in_float16():
    # Half the bytes, so the working tree fits a GPU node's 64 MiB (make device-pack).
    from pixelrep.pretrained import DEFAULT_DIR

    assert {v.dtype for v in load_file(DEFAULT_DIR / "model.safetensors").values()} == {torch.float16}
