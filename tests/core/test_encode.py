"""PixelEncoder.encode: order, shapes, types, options."""
import numpy as np
import pytest
import torch

from pixelrep.encoder import default_device
from tests.core.helpers import LONG, SENTENCES, tiny_encoder


@pytest.fixture(scope="module")
def enc():
    return tiny_encoder()


def test_order_is_restored_after_length_sorting(enc):
    sentences = SENTENCES + [LONG] + SENTENCES[::-1]
    together = enc.encode(sentences, batch_size=3, precision="fp32")
    one_by_one = np.stack([enc.encode([s], precision="fp32")[0] for s in sentences])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5, rtol=0)
    assert together.shape == (len(sentences), 64) and together.dtype == np.float32


def test_normalize_and_tensor_output(enc):
    unit = enc.encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    raw = enc.encode(SENTENCES, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)
    t = enc.encode(SENTENCES, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (len(SENTENCES), 64)


def test_single_string_and_empty_list(enc):
    one = enc.encode("A man is playing a guitar.")
    assert one.shape == (64,)
    np.testing.assert_allclose(one, enc.encode(SENTENCES[:1])[0], atol=1e-6)
    empty = enc.encode([])
    assert empty.shape == (0, 64) and empty.dtype == np.float32
    assert enc.encode([], convert_to_tensor=True).shape == (0, 64)
    assert enc.encode(np.array(SENTENCES[:2])).shape == (2, 64)   # numpy arrays of str, as MTEB may pass


def test_bad_input_names_the_index(enc):
    with pytest.raises(TypeError, match=r"sentences\[2\] is int, expected str"):
        enc.encode(["a", "b", 3])
    with pytest.raises(TypeError, match=r"sentences\[0\] is NoneType"):
        enc.encode([None])
    with pytest.raises(TypeError, match="a str or a list of str, got bytes"):
        enc.encode(b"bytes")
    with pytest.raises(TypeError, match="got int"):
        enc.encode(5)
    with pytest.raises(ValueError, match="batch_size=0"):
        enc.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="precision='fp16'"):
        enc.encode(["a"], precision="fp16")


def test_encode_restores_training_mode_and_keeps_no_grad(enc):
    enc.train()
    out = enc.encode(SENTENCES, convert_to_tensor=True)
    assert enc.training and not out.requires_grad
    enc.eval()


def test_bf16_autocast_stays_close(enc):
    fp32 = enc.encode(SENTENCES, precision="fp32")
    bf16 = enc.encode(SENTENCES, precision="bf16")
    assert bf16.dtype == np.float32
    assert (fp32 * bf16).sum(1).min() > 0.99   # cosine similarity of unit vectors


def test_auto_precision_is_bf16_where_the_cpu_computes_it(enc, monkeypatch):
    from pixelrep import encoder

    native = encoder.native_bf16("cpu")
    want = enc.encode(SENTENCES, precision="bf16" if native else "fp32")
    np.testing.assert_array_equal(enc.encode(SENTENCES), want)            # the default is "auto"
    for flags, expected in ((frozenset({"avx512f", "avx512_bf16"}), True), (frozenset({"amx_bf16"}), True),
                            (frozenset({"avx2", "avx512f"}), False), (frozenset(), False)):
        monkeypatch.setattr(encoder, "_cpu_flags", lambda: flags)
        assert encoder.native_bf16("cpu") is expected
    assert encoder.native_bf16("meta") is False                          # other devices: fp32


def test_progress_bar(enc, capsys):
    enc.encode(SENTENCES, show_progress_bar=True)
    assert "encode" in capsys.readouterr().err
    enc.encode(SENTENCES)   # auto: short input, no bar
    assert capsys.readouterr().err == ""


def test_default_device_is_cpu_without_accelerators():
    # tests/conftest.py hides CUDA; MPS only exists on Apple machines.
    assert default_device().type in ("cpu", "mps")


def test_removing_common_directions_centres_the_fitted_texts_and_survives_saving(tmp_path):
    """remove_common_directions: the fitted texts' vectors lose their mean and top principal directions
    (so their centred spread along those is gone), the original is untouched, and save/load keeps it."""
    from pixelrep import PixelEncoder

    enc = tiny_encoder(projection_dim=16)
    texts = [f"{w} number {i} is here" for i, w in enumerate(("cat", "dog", "bird", "a fish", "horse") * 8)]
    before = enc.encode(texts, normalize=False, precision="fp32")
    fitted = enc.remove_common_directions(texts, count=3)
    assert fitted.model_config.common_directions == 3 and enc.model_config.common_directions == 0
    after = fitted.encode(texts, normalize=False, precision="fp32")
    np.testing.assert_allclose(after.mean(0), 0.0, atol=1e-4)
    directions = fitted.vit.common_directions.numpy()
    np.testing.assert_allclose(after @ directions.T, 0.0, atol=1e-4)
    # What is left is the centred vectors less their largest components: variance drops, the rest stays.
    centred = before - before.mean(0)
    np.testing.assert_allclose(after, centred - centred @ directions.T @ directions, atol=1e-4)
    assert (after ** 2).sum() < 0.9 * (centred ** 2).sum()
    np.testing.assert_array_equal(enc.encode(texts, normalize=False, precision="fp32"), before)
    fitted.save_pretrained(tmp_path / "m")
    loaded = PixelEncoder.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.encode(texts, precision="fp32"), fitted.encode(texts, precision="fp32"), atol=1e-6)


def test_whitening_evens_out_the_other_directions_of_the_fitted_texts_and_survives_saving(tmp_path):
    """whitening=0.5 on top of the removal: the fitted texts' vectors have equal variance along every
    direction left (whitened), none along the removed ones; a smaller power evens them out less."""
    from pixelrep import PixelEncoder

    enc = tiny_encoder(projection_dim=8)
    texts = [f"{w} number {i} is here" for i, w in enumerate(("cat", "dog", "bird", "a fish", "horse") * 8)]
    spread = lambda m: np.linalg.eigvalsh(np.cov(m.encode(texts, normalize=False, precision="fp32").T))[::-1]
    before, half = spread(enc), spread(enc.remove_common_directions(texts, count=2, whitening=0.5))
    # 8 dimensions, 2 removed: 6 directions keep variance, all of it the same.
    np.testing.assert_allclose(half[:6] / half[:6].mean(), 1.0, atol=1e-2)
    np.testing.assert_allclose(half[6:], 0.0, atol=1e-6 * half.max())
    quarter = spread(enc.remove_common_directions(texts, count=2, whitening=0.25))[:6]
    ratio = lambda v: v.max() / v.min()
    assert 1.01 < ratio(quarter) < ratio(before[2:8])
    fitted = enc.remove_common_directions(texts, count=2, whitening=0.25)
    assert fitted.model_config.common_whitening == 0.25 and "variance ** -0.25" in fitted.metadata["common_directions"]
    fitted.save_pretrained(tmp_path / "m")
    loaded = PixelEncoder.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.encode(texts, precision="fp32"), fitted.encode(texts, precision="fp32"), atol=1e-6)
    # Whitening alone (no directions removed) is a fit too.
    alone = enc.remove_common_directions(texts, count=0, whitening=0.5)
    np.testing.assert_allclose(spread(alone) / spread(alone).mean(), 1.0, atol=1e-2)


def test_removing_common_directions_checks_its_arguments():
    enc = tiny_encoder()
    with pytest.raises(ValueError, match="count=0"):
        enc.remove_common_directions(["a b", "c d", "e f"], count=0)
    with pytest.raises(ValueError, match="fewer than the 3 texts"):
        enc.remove_common_directions(["a b", "c d", "e f"], count=3)
    with pytest.raises(ValueError, match="more texts than the"):
        enc.remove_common_directions(["a b", "c d", "e f"], count=1, whitening=0.25)
    with pytest.raises(ValueError, match="common_whitening=0.7"):
        enc.remove_common_directions([f"text {i}" for i in range(80)], count=1, whitening=0.7)
    fitted = enc.remove_common_directions(["a b", "c d", "e f"], count=1)
    with pytest.raises(ValueError, match="already"):
        fitted.remove_common_directions(["a b", "c d", "e f"], count=1)
