"""Presets, shapes, padding invariance and determinism of the ViT and PixelEncoder."""
import numpy as np
import pytest
import torch

from pixelrep import PRESETS, ModelConfig, PixelEncoder, RenderConfig, collate
from pixelrep.config import from_dict
from pixelrep.model import PixelViT, patchify, token_mask
from tests.core.helpers import LONG, SENTENCES, tiny_encoder


def n_params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in PixelViT(cfg).parameters())


def test_preset_sizes():
    assert n_params(ModelConfig.from_preset("tiny")) < 1_000_000
    assert 20e6 < n_params(ModelConfig.from_preset("small")) < 24e6
    base = ModelConfig.from_preset("base")
    assert (base.width, base.depth, base.heads) == (768, 12, 12)
    assert set(PRESETS) == {"tiny", "small", "base"}


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        ModelConfig.from_preset("huge")
    with pytest.raises(ValueError, match="needs cls_token=True"):
        ModelConfig(pooling="cls")
    with pytest.raises(ValueError, match=r"unknown ModelConfig keys \['colour'\]"):
        from_dict(ModelConfig, {"width": 64, "colour": 1})
    with pytest.raises(ValueError, match="patches_per_token=0 must be >= 1"):
        ModelConfig(patches_per_token=0)
    with pytest.raises(ValueError, match="max_patches=32 is below RenderConfig.max_patches=64"):
        PixelEncoder(ModelConfig.from_preset("tiny", max_patches=32), RenderConfig(max_patches=64))


@pytest.mark.parametrize("pooling,cls_token,proj,per_token",
                         [("mean", False, 0, 1), ("mean", True, 0, 1), ("cls", True, 16, 1), ("mean", True, 0, 3)])
def test_shapes(pooling, cls_token, proj, per_token):
    torch.manual_seed(0)
    cfg = ModelConfig.from_preset("tiny", pooling=pooling, cls_token=cls_token, projection_dim=proj,
                                  patches_per_token=per_token)
    vit = PixelViT(cfg)
    pixels, mask = collate(PixelEncoder(cfg).renderer.render_batch(["short", "a longer sentence here"]))
    feats = vit.forward_features(pixels, mask)
    n_tokens = -(-mask.shape[1] // per_token)
    assert feats.shape == (2, n_tokens + cls_token, cfg.width)
    assert vit.pos_embed.shape[1] == -(-cfg.max_patches // per_token) + cls_token
    assert vit.pool(feats, mask).shape == (2, cfg.embedding_dim)
    assert vit(pixels, mask).shape == (2, proj or cfg.width)


def test_too_many_patches_is_an_error():
    vit = PixelViT(ModelConfig.from_preset("tiny", max_patches=4))
    with pytest.raises(ValueError, match="5 patches exceed the model's max_patches=4"):
        vit(torch.zeros(1, 16, 80, dtype=torch.uint8), torch.ones(1, 5, dtype=torch.bool))


def test_tokens_are_runs_of_adjacent_patches():
    pixels = torch.randint(0, 255, (2, 16, 5 * 16), dtype=torch.uint8)
    tokens = patchify(pixels, 16, patches_per_token=2)
    assert tokens.shape == (2, 3, 2 * 16 * 16)
    # Token 1 is patches 2-3 as one 16x32 piece; the last token is patch 4 and a patch of paper.
    torch.testing.assert_close(tokens[:, 1].view(2, 16, 32), pixels[:, :, 32:64])
    torch.testing.assert_close(tokens[:, 2].view(2, 16, 32)[..., :16], pixels[:, :, 64:])
    assert (tokens[:, 2].view(2, 16, 32)[..., 16:] == 255).all()
    # One patch per token is the plain PIXEL patchification.
    torch.testing.assert_close(patchify(pixels, 16)[:, 3].view(2, 16, 16), pixels[:, :, 48:64])
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    assert token_mask(mask, 2).tolist() == [[True, True, False], [True, True, True]]
    assert token_mask(mask, 3).tolist() == [[True, False], [True, True]]


@pytest.mark.parametrize("cls_token,per_token", [(False, 1), (True, 1), (False, 2), (True, 3)])
def test_padding_does_not_change_embeddings(cls_token, per_token):
    enc = tiny_encoder(cls_token=cls_token, patches_per_token=per_token)
    rendered = enc.renderer.render_batch(["A short one.", LONG])
    assert rendered[1].num_patches > 3 * rendered[0].num_patches
    alone = enc(*collate(rendered[:1]))
    batched = enc(*collate(rendered))
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=0)
    # Explicit extra padding far beyond the batch's longest strip changes nothing either.
    padded = enc(*collate(rendered[:1], pad_to=64))
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("precision, cosine", [("fp32", 1 - 1e-6), ("bf16", 0.9999)])
def test_padding_invariance_through_encode(precision, cosine):
    # Exact in fp32; in bf16 the padded batch's matmuls round differently, by bf16 rounding only.
    enc = tiny_encoder()
    alone = enc.encode(["A short one."], normalize=False, precision=precision)
    mixed = enc.encode(["A short one.", LONG], normalize=False, batch_size=2, precision=precision)
    if precision == "fp32":
        np.testing.assert_allclose(mixed[0], alone[0], atol=1e-5, rtol=0)
    assert np.dot(mixed[0], alone[0]) / np.linalg.norm(mixed[0]) / np.linalg.norm(alone[0]) > cosine


def test_determinism():
    a, b = tiny_encoder(seed=3), tiny_encoder(seed=3)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    np.testing.assert_array_equal(a.encode(SENTENCES), a.encode(SENTENCES))
    np.testing.assert_array_equal(a.encode(SENTENCES), b.encode(SENTENCES))
    assert not np.allclose(tiny_encoder(seed=4).encode(SENTENCES), a.encode(SENTENCES))


def test_weighted_pooling_starts_as_the_mean_and_ignores_padding():
    mean_enc = tiny_encoder(seed=1)
    weighted_enc = tiny_encoder(seed=2, pooling="weighted")
    missing, unexpected = weighted_enc.load_state_dict(mean_enc.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("vit.pool_score") for k in missing)
    rendered = weighted_enc.renderer.render_batch(["A short one.", LONG])
    pixels, mask = collate(rendered)
    # Zero-initialised scores: the weighted mean is the plain mean.
    torch.testing.assert_close(weighted_enc(pixels, mask), mean_enc(pixels, mask), atol=1e-5, rtol=0)
    with torch.no_grad():
        weighted_enc.vit.pool_score.weight.normal_(std=1.0)
    alone = weighted_enc(*collate(rendered[:1]))
    padded = weighted_enc(*collate(rendered[:1], pad_to=64))
    batched = weighted_enc(pixels, mask)
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=0)
    assert not torch.allclose(alone[0], mean_enc(*collate(rendered[:1]))[0], atol=1e-3)


def test_word_align_must_match_the_token_width():
    from pixelrep.render import RenderConfig
    with pytest.raises(ValueError, match="word_align=2 is not a multiple of ModelConfig.patches_per_token=3"):
        PixelEncoder(ModelConfig.from_preset("tiny", patches_per_token=3), RenderConfig(word_align=2))
    PixelEncoder(ModelConfig.from_preset("tiny", patches_per_token=3), RenderConfig(word_align=3))
