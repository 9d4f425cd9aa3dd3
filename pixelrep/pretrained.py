"""Checkpoint I/O: configs, weights and metadata in and out of a folder; it builds no model.

A pixelrep checkpoint is a folder with two files:
  config.json        {"format_version": 1, "model": ModelConfig, "render": RenderConfig, "metadata": {...}}
  model.safetensors  the PixelEncoder state dict (weights only: safetensors never runs code, pickle can)

`read_checkpoint` takes such a folder, the bundled name "default", or a Hugging Face hub id. It also
reads PIXEL checkpoints (Team-PIXEL/pixel-base, Pixel-Linguist/Pixel-Linguist-v0: a ViT-MAE-style
config.json with hidden_size etc. and safetensors weights) and maps their weights onto PixelEncoder keys.
`PixelEncoder.from_pretrained` builds itself from what it returns (as timm's builders do), so this
module never imports the encoder and the two do not import each other.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pixelrep import strict_json
from pixelrep.config import ModelConfig, from_dict
from pixelrep.files import atomic_write
from pixelrep.render import MAX_PATCHES_LIMIT, RenderConfig

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_DIR = Path(__file__).resolve().parent / "default"
CONFIG_KEYS = ("format_version", "model", "render", "metadata")
# What a hub download fetches: enough for our format and PIXEL's, never pickled weights.
HUB_FILES = [CONFIG_NAME, "*.safetensors", "preprocessor_config.json", "text_renderer_config.json"]


@dataclass
class Checkpoint:
    """What a checkpoint folder holds: the configs to build a PixelEncoder, its float32 weights, metadata.

    `source` is what errors about the weights name (the weights file, or the folder for PIXEL imports)."""

    model: ModelConfig
    render: RenderConfig
    state: dict[str, torch.Tensor]
    source: Path
    metadata: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- writing

# Storage precisions for save_pretrained(dtype=...); loading always upcasts to float32.
SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def write_checkpoint(directory: str | os.PathLike, *, model: ModelConfig, render: RenderConfig,
                     state: dict[str, torch.Tensor], metadata: dict | None = None, dtype: str = "float32") -> Path:
    """Write config.json and model.safetensors into `directory` (created if needed; other files there are
    left alone).

    metadata: free-form JSON-able facts (e.g. {"trained": True, "description": ...}); nothing is
    carried over from a loaded checkpoint, so a fine-tuned model never inherits stale labels.
    dtype: how the weights are stored: "float32", or "float16" / "bfloat16" for half the bytes (the
    bundled default is float16 so that it travels to GPU nodes; loading upcasts to float32, and
    embeddings then match the float32 model to ~1e-3, tested).
    """
    from safetensors.torch import save_file

    if dtype not in SAVE_DTYPES:
        raise ValueError(f"dtype={dtype!r}: use one of {', '.join(SAVE_DTYPES)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", SAVE_DTYPES[dtype] if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.items()}
    config = {"format_version": FORMAT_VERSION, "model": model.to_dict(), "render": render.to_dict(),
              "metadata": dict(metadata or {})}
    text = strict_json.dumps(config, indent=2, ensure_ascii=False) + "\n"   # fails here, before any file is touched
    # Weights first: a new folder never holds a config.json without its weights.
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return directory


# --------------------------------------------------------------------------- finding a checkpoint

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """The local folder for a folder path, "default", or a hub id (downloaded when online)."""
    name = os.fspath(name_or_path)
    if name == "default":
        return DEFAULT_DIR
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if HUB_ID.match(name) and ".." not in name:
        return _download(name, revision)
    raise FileNotFoundError(f"no model folder {name!r}: pass a folder holding {CONFIG_NAME} and {WEIGHTS_NAME}, "
                            f"'default' for the bundled model, or a hub id such as 'owner/name'")


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    fix = (f"download it where the hub is reachable (e.g. `hf download {repo_id} --local-dir DIR`) and pass "
           f"that folder: PixelEncoder.from_pretrained('DIR')")
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as e:
        raise FileNotFoundError(f"hub model {repo_id!r} (revision {revision or 'main'}) not found or not "
                                f"accessible: {type(e).__name__}; check the id, or pass a local folder") from None
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE=1 is set" if constants.HF_HUB_OFFLINE else "the Hugging Face hub cannot be reached")
        raise RuntimeError(f"cannot load {repo_id!r}: offline ({why}) and it is not in the local hub cache; "
                           f"{fix}") from None


# --------------------------------------------------------------------------- reading

def read_config(folder: Path) -> dict:
    """A checkpoint folder's config.json as a dict (errors name the file)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a checkpoint folder needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one safetensors file, with errors that name the file."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a checkpoint folder needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        return load_file(path)
    except Exception as e:   # safetensors raises its own SafetensorError, or OSError, for bad files
        raise ValueError(f"{path} is not a readable safetensors file ({e}); re-save or re-download it") from None


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Strictly load `state` into `module`, naming every missing, unexpected or mis-shaped key."""
    expected = module.state_dict()
    problems = [f"missing key {k!r}" for k in expected if k not in state]
    problems += [f"unexpected key {k!r}" for k in state if k not in expected]
    problems += [f"key {k!r} has shape {tuple(v.shape)}, the config needs {tuple(expected[k].shape)}"
                 for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise ValueError(f"{source} does not match its {CONFIG_NAME}: {shown}")
    module.load_state_dict(state)


def read_checkpoint(name_or_path: str | os.PathLike, *, revision: str | None = None,
                    pooling: str | None = None) -> Checkpoint:
    """The configs, weights and metadata of a folder, "default" or a hub id; pixelrep or PIXEL format (see
    module doc). pooling overrides the checkpoint's pooling."""
    folder = resolve(name_or_path, revision)
    config = read_config(folder)
    if "format_version" in config or "model" in config:
        return _read_native(folder, config, pooling)
    if "hidden_size" in config and "num_hidden_layers" in config:
        return _read_pixel(folder, config, pooling)
    raise ValueError(f"{folder / CONFIG_NAME} is neither a pixelrep checkpoint (keys {list(CONFIG_KEYS)}) "
                     f"nor a PIXEL / ViT-MAE config (hidden_size, num_hidden_layers, ...)")


def _read_native(folder: Path, config: dict, pooling: str | None) -> Checkpoint:
    path = folder / CONFIG_NAME
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known: {list(CONFIG_KEYS)}")
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version!r} is not one this pixelrep reads (1..{FORMAT_VERSION}); "
                         f"a newer pixelrep wrote it: upgrade pixelrep")
    for key in ("model", "render"):
        if not isinstance(config.get(key), dict):
            raise ValueError(f"{path}: {key!r} must be an object with the {key} config")
    try:
        model = from_dict(ModelConfig, {**config["model"], **({"pooling": pooling} if pooling is not None else {})})
        render = from_dict(RenderConfig, config["render"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    # Half-precision files (save_pretrained(dtype=...)) are upcast: the model always computes in float32.
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in read_safetensors(folder / WEIGHTS_NAME).items()}
    return Checkpoint(model, render, state, source=folder / WEIGHTS_NAME, metadata=dict(config.get("metadata") or {}))


# --------------------------------------------------------------------------- PIXEL import

PIXEL_PATCH_KEY = "embeddings.patch_embeddings.projection.weight"
PIXEL_FONT_PX = 8 * 120 / 72      # PIXEL renders 8 pt text at 120 dpi: 13.33 px in 16 px patches
# Encoder keys a PIXEL checkpoint may carry that PixelEncoder has no use for.
PIXEL_IGNORED = re.compile(r"^(pooler\.|embeddings\.mask_token$)")


def pixel_state_dict(raw: dict[str, torch.Tensor], depth: int, max_patches: int,
                     image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """Map a PIXEL / ViT-MAE encoder state dict onto PixelEncoder keys.

    - Keys may carry a prefix ("vit.", "pixel.", ...), found from the patch projection key; keys
      outside it (decoder, classifier heads) are dropped.
    - Patch embedding: PIXEL reads RGB values x_c = (p/255 - mean_c)/std_c, white paper = 1; we read
      one grey channel u = 1 - p/255 (ink = 1, paper = 0). Our grey strip is PIXEL's three equal
      channels, so with p/255 = 1 - u:
        sum_c W_c . x_c + b = -sum_c (W_c/std_c) . u + [b + sum_c (1 - mean_c)/std_c * sum(W_c)]
      i.e. weight = -sum_c W_c/std_c and the constant moves into the bias.
    - Positions: PIXEL's fixed 2-D sin-cos table covers a 23x23 grid read row by row; a one-line
      strip of patches uses rows in order, so patch i keeps position i+1 (0 is the CLS token).
    """
    prefixes = [k[: -len(PIXEL_PATCH_KEY)] for k in raw if k.endswith(PIXEL_PATCH_KEY)]
    if len(prefixes) != 1:
        raise ValueError(f"a PIXEL state dict needs exactly one '*{PIXEL_PATCH_KEY}' key, found {len(prefixes)}")
    prefix = prefixes[0]
    todo = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}

    def take(name: str) -> torch.Tensor:
        if name not in todo:
            raise ValueError(f"PIXEL checkpoint lacks key {prefix + name!r}")
        return todo.pop(name).to(torch.float64)   # float64 so the folding adds no rounding of its own

    out = {}
    w, b = take(PIXEL_PATCH_KEY), take("embeddings.patch_embeddings.projection.bias")
    mean = torch.tensor(image_mean, dtype=torch.float64)
    std = torch.tensor(image_std, dtype=torch.float64)
    if w.shape[1] != len(mean) or len(mean) != len(std):
        raise ValueError(f"PIXEL patch projection has {w.shape[1]} channels; image_mean/std have {len(mean)}/{len(std)}")
    out["vit.patch_embed.weight"] = -(w / std[None, :, None, None]).sum(1).reshape(w.shape[0], -1)
    out["vit.patch_embed.bias"] = b + (w.sum((2, 3)) * ((1 - mean) / std)[None, :]).sum(1)
    pos = take("embeddings.position_embeddings")
    if pos.shape[1] < max_patches + 1:
        raise ValueError(f"PIXEL position table has {pos.shape[1] - 1} patch positions, {max_patches} needed")
    out["vit.pos_embed"] = pos[:, : max_patches + 1]
    out["vit.cls_token"] = take("embeddings.cls_token")
    for i in range(depth):
        src, dst = f"encoder.layer.{i}.", f"vit.blocks.{i}."
        qkv = [f"{src}attention.attention.{n}" for n in ("query", "key", "value")]
        out[dst + "attn.qkv.weight"] = torch.cat([take(n + ".weight") for n in qkv])
        if f"{qkv[0]}.bias" in todo:
            out[dst + "attn.qkv.bias"] = torch.cat([take(n + ".bias") for n in qkv])
        for ours, theirs in (("attn.proj", "attention.output.dense"), ("norm1", "layernorm_before"),
                             ("norm2", "layernorm_after"), ("mlp.0", "intermediate.dense"), ("mlp.2", "output.dense")):
            out[f"{dst}{ours}.weight"] = take(f"{src}{theirs}.weight")
            out[f"{dst}{ours}.bias"] = take(f"{src}{theirs}.bias")
    out["vit.norm.weight"], out["vit.norm.bias"] = take("layernorm.weight"), take("layernorm.bias")
    left = sorted(prefix + k for k in todo if not PIXEL_IGNORED.match(k))
    if left:
        raise ValueError(f"PIXEL checkpoint has keys PixelEncoder cannot map: {left[:8]}")
    return {k: v.to(torch.float32).contiguous() for k, v in out.items()}


def _read_pixel(folder: Path, config: dict, pooling: str | None) -> Checkpoint:
    path = folder / CONFIG_NAME
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{path}: hidden_act={config['hidden_act']!r}; only PIXEL's exact 'gelu' is supported")
    try:
        width, depth = int(config["hidden_size"]), int(config["num_hidden_layers"])
        heads, hidden = int(config["num_attention_heads"]), int(config["intermediate_size"])
        ps = int(config["patch_size"])
        size = config.get("image_size", [ps, ps * MAX_PATCHES_LIMIT])
    except KeyError as e:
        raise ValueError(f"{path}: PIXEL config lacks {e.args[0]!r}") from None
    h, w = (size, size) if isinstance(size, int) else size
    grid = (h // ps) * (w // ps)
    max_patches = min(grid, MAX_PATCHES_LIMIT)
    if int(width * (hidden / width)) != hidden:
        raise ValueError(f"{path}: intermediate_size={hidden} is not expressible as mlp_ratio of {width}")

    # The image processor may normalise pixels; PIXEL's default feeds plain [0, 1] values.
    mean, std = (0.0,) * 3, (1.0,) * 3
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        p = json.loads(pre.read_text(encoding="utf-8"))
        if p.get("do_normalize"):
            mean, std = tuple(p["image_mean"]), tuple(p["image_std"])
    font_px = PIXEL_FONT_PX * ps / 16
    tr = folder / "text_renderer_config.json"
    if tr.is_file():
        t = json.loads(tr.read_text(encoding="utf-8"))
        font_px = float(t.get("font_size", 8)) * float(t.get("dpi", 120)) / 72

    model = ModelConfig(width=width, depth=depth, heads=heads, mlp_ratio=hidden / width, patch_size=ps,
                        in_channels=1, max_patches=max_patches, pooling=pooling or "mean", cls_token=True,
                        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
                        qkv_bias=bool(config.get("qkv_bias", True)))
    render = RenderConfig(patch_size=ps, font_size=min(font_px, ps), max_patches=max_patches, eos_patch=True)

    files = sorted(folder.glob("model*.safetensors")) or sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no .safetensors weights; pixelrep does not load pickled "
                                f"pytorch_model.bin files (they can run code): convert them to safetensors with a "
                                f"tool you trust, or load a hub revision that has safetensors (revision='refs/pr/N')")
    raw = {}
    for f in files:
        raw.update(read_safetensors(f))
    try:
        state = pixel_state_dict(raw, depth=depth, max_patches=max_patches, image_mean=mean, image_std=std)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from None
    return Checkpoint(model, render, state, source=folder, metadata={
        "source": "PIXEL", "trained": True, "description": f"imported from PIXEL format ({folder})"})
