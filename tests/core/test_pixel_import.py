"""PIXEL checkpoints: a synthetic ViT-MAE-style state dict, loaded into PixelEncoder, must compute
exactly what a direct implementation of the PIXEL encoder forward computes on the same pixels."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from pixelrep import PixelEncoder, collate
from pixelrep.pretrained import pixel_state_dict

# A small PIXEL: 16 px patches over a 6x6 grid (PIXEL-base: 23x23, width 768, 12 layers).
WIDTH, DEPTH, HEADS, HIDDEN, PS, GRID = 32, 2, 4, 80, 16, 6
N = GRID * GRID
EPS = 1e-12


def pixel_config() -> dict:
    return {"architectures": ["PIXELForPreTraining"], "model_type": "pixel", "hidden_size": WIDTH,
            "num_hidden_layers": DEPTH, "num_attention_heads": HEADS, "intermediate_size": HIDDEN,
            "hidden_act": "gelu", "patch_size": PS, "image_size": [PS, PS * N], "num_channels": 3,
            "layer_norm_eps": EPS, "qkv_bias": True, "decoder_hidden_size": 16, "mask_ratio": 0.25}


def pixel_weights(prefix: str = "vit.") -> dict[str, torch.Tensor]:
    """Random weights under PIXEL's key names (large enough that every term matters), plus decoder keys."""
    g = torch.Generator().manual_seed(0)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    sd = {"embeddings.cls_token": r(1, 1, WIDTH),
          "embeddings.position_embeddings": r(1, N + 1, WIDTH),   # random, not sin-cos: any misalignment shows
          "embeddings.patch_embeddings.projection.weight": r(WIDTH, 3, PS, PS, scale=0.05),
          "embeddings.patch_embeddings.projection.bias": r(WIDTH),
          "layernorm.weight": 1 + r(WIDTH), "layernorm.bias": r(WIDTH)}
    for i in range(DEPTH):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[f"{p}attention.attention.{name}.weight"] = r(WIDTH, WIDTH)
            sd[f"{p}attention.attention.{name}.bias"] = r(WIDTH)
        sd[f"{p}attention.output.dense.weight"], sd[f"{p}attention.output.dense.bias"] = r(WIDTH, WIDTH), r(WIDTH)
        sd[f"{p}intermediate.dense.weight"], sd[f"{p}intermediate.dense.bias"] = r(HIDDEN, WIDTH), r(HIDDEN)
        sd[f"{p}output.dense.weight"], sd[f"{p}output.dense.bias"] = r(WIDTH, HIDDEN), r(WIDTH)
        for ln in ("layernorm_before", "layernorm_after"):
            sd[f"{p}{ln}.weight"], sd[f"{p}{ln}.bias"] = 1 + r(WIDTH), r(WIDTH)
    out = {prefix + k: v for k, v in sd.items()}
    out["decoder.decoder_embed.weight"] = r(16, WIDTH)
    out["decoder.mask_token"] = r(1, 1, 16)
    return out


def reference_pixel_forward(sd, pixels_u8, attention_mask, mean=(0.0,) * 3, std=(1.0,) * 3, prefix="vit."):
    """PIXEL / ViT-MAE encoder (no masking, as when fine-tuning), written out plainly in float64.

    pixels_u8 [B, 16, W] grey text strips (255 = paper), padded here to PIXEL's full canvas with white;
    attention_mask [B, P] (1 = text or end patch). Returns (mean over real patches, CLS feature).
    """
    sd = {k[len(prefix):]: v.double() for k, v in sd.items() if k.startswith(prefix)}
    b, _, w = pixels_u8.shape
    canvas = torch.full((b, PS, PS * N), 255.0, dtype=torch.float64)
    canvas[:, :, :w] = pixels_u8.double()
    mask = torch.zeros(b, N, dtype=torch.float64)
    mask[:, : attention_mask.shape[1]] = attention_mask.double()
    # PIXEL's input: RGB in [0, 1], white = 1, the grey strip copied into each channel, then normalised.
    x = (canvas / 255.0).unsqueeze(1).expand(b, 3, PS, PS * N)
    x = (x - torch.tensor(mean, dtype=torch.float64)[None, :, None, None]) / torch.tensor(std, dtype=torch.float64)[None, :, None, None]
    emb = F.conv2d(x, sd["embeddings.patch_embeddings.projection.weight"],
                   sd["embeddings.patch_embeddings.projection.bias"], stride=PS)     # [B, D, 1, N]
    emb = emb.flatten(2).transpose(1, 2) + sd["embeddings.position_embeddings"][:, 1:]
    cls = (sd["embeddings.cls_token"] + sd["embeddings.position_embeddings"][:, :1]).expand(b, -1, -1)
    h = torch.cat([cls, emb], dim=1)
    full_mask = torch.cat([torch.ones(b, 1, dtype=torch.float64), mask], dim=1)
    additive = (1.0 - full_mask)[:, None, None, :] * -10000.0           # as PIXEL's extended attention mask
    hd = WIDTH // HEADS

    def lin(t, name):
        return t @ sd[name + ".weight"].T + sd[name + ".bias"]

    def ln(t, name):
        return F.layer_norm(t, (WIDTH,), sd[name + ".weight"], sd[name + ".bias"], eps=EPS)

    def heads(t):
        return t.view(b, -1, HEADS, hd).transpose(1, 2)

    for i in range(DEPTH):
        p = f"encoder.layer.{i}."
        a = ln(h, p + "layernorm_before")
        q, k, v = (heads(lin(a, f"{p}attention.attention.{n}")) for n in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + additive, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(b, -1, WIDTH)
        h = h + lin(ctx, p + "attention.output.dense")
        m = ln(h, p + "layernorm_after")
        h = h + lin(F.gelu(lin(m, p + "intermediate.dense")), p + "output.dense")
    h = ln(h, "layernorm")
    patches = h[:, 1:]
    mean_pooled = (patches * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return mean_pooled, h[:, 0]


def write_pixel_checkpoint(folder, weights, preprocessor=None):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(pixel_config()))
    save_file(weights, folder / "model.safetensors")
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


def strips():
    """Grey pixels of every level (not just black text on white) and different lengths."""
    g = torch.Generator().manual_seed(1)
    lengths = [3, 11, N]
    pixels = torch.full((len(lengths), PS, PS * N), 255, dtype=torch.uint8)
    mask = torch.zeros(len(lengths), N, dtype=torch.bool)
    for i, n in enumerate(lengths):
        pixels[i, :, : n * PS] = torch.randint(0, 256, (PS, n * PS), generator=g, dtype=torch.uint8)
        mask[i, :n] = True
    return pixels, mask


@pytest.mark.parametrize("prefix", ["vit.", "pixel."])
@pytest.mark.parametrize("mean,std", [((0.0,) * 3, (1.0,) * 3), ((0.5, 0.4, 0.3), (0.5, 0.25, 0.2))])
def test_pixel_checkpoint_matches_reference_forward(tmp_path, prefix, mean, std):
    weights = pixel_weights(prefix)
    pre = {"do_normalize": True, "image_mean": list(mean), "image_std": list(std)} if mean[0] else None
    enc = PixelEncoder.from_pretrained(write_pixel_checkpoint(tmp_path / "pixel", weights, pre))
    assert enc.render_config.max_patches == N and enc.model_config.cls_token
    assert enc.model_config.pooling == "mean" and enc.model_config.layer_norm_eps == EPS

    pixels, mask = strips()
    want_mean, want_cls = reference_pixel_forward(weights, pixels, mask, mean, std, prefix)
    assert want_mean.abs().mean() > 0.1          # a meaningful comparison, not two near-zero vectors
    with torch.no_grad():
        got = enc(pixels, mask)
        # Our batch pads only to its own longest strip: the same vectors as PIXEL's full canvas.
        got_short = enc(pixels[:2, :, : 11 * PS], mask[:2, :11])
    torch.testing.assert_close(got.double(), want_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_short.double(), want_mean[:2], atol=1e-4, rtol=1e-4)

    cls_enc = PixelEncoder.from_pretrained(tmp_path / "pixel", pooling="cls")
    with torch.no_grad():
        torch.testing.assert_close(cls_enc(pixels, mask).double(), want_cls, atol=1e-4, rtol=1e-4)


def test_rendered_text_matches_reference(tmp_path):
    weights = pixel_weights()
    enc = PixelEncoder.from_pretrained(write_pixel_checkpoint(tmp_path / "pixel", weights))
    pixels, mask = collate(enc.renderer.render_batch(["A man plays a guitar.", "Hi"]))
    want, _ = reference_pixel_forward(weights, pixels, mask)
    got = enc.encode(["A man plays a guitar.", "Hi"], normalize=False, precision="fp32")
    torch.testing.assert_close(torch.from_numpy(got).double(), want, atol=1e-4, rtol=1e-4)


def test_pixel_mapping_errors_name_keys():
    weights = pixel_weights()
    del weights["vit.encoder.layer.1.output.dense.bias"]
    with pytest.raises(ValueError, match=r"lacks key 'vit\.encoder\.layer\.1\.output\.dense\.bias'"):
        pixel_state_dict(weights, depth=DEPTH, max_patches=N)
    weights = pixel_weights()
    weights["vit.encoder.layer.2.output.dense.bias"] = torch.zeros(WIDTH)    # a layer the config does not have
    with pytest.raises(ValueError, match=r"cannot map: \['vit\.encoder\.layer\.2\.output\.dense\.bias'\]"):
        pixel_state_dict(weights, depth=DEPTH, max_patches=N)
    with pytest.raises(ValueError, match="position table has 36 patch positions, 40 needed"):
        pixel_state_dict(pixel_weights(), depth=DEPTH, max_patches=40)


def test_pixel_folder_without_safetensors_refuses_pickle(tmp_path):
    folder = tmp_path / "pixel"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(pixel_config()))
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="does not load pickled"):
        PixelEncoder.from_pretrained(folder)
