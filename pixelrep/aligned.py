"""The aligned space: pixel embeddings projected into a teacher's sentence space, and its file format.

A model trained with alignment heads (pixelrep.train.align) saves its projectors next to the encoder:
  align_head.json         {"teacher": first teacher, "teachers": [...], "projector": "linear"|"mlp", "heads": {...}}
  align_head.safetensors  the projectors' weights, keyed "<head>.<parameter>"
`AlignedPixelEncoder` reads them back for inference: pixels go through the PixelEncoder and one
teacher's sentence projector, so pixel-encoded queries compare with that teacher's text vectors. This is
inference code, so it stays in the core; the teachers themselves live in pixelrep.teachers (training
and evaluation), which the core never imports.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelrep.files import atomic_write_bytes

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
USE_M3 = "use-m3"
USE_ALIASES = (USE_M3, "universal-sentence-encoder-multilingual")
ALIGN_WEIGHTS = "align_head.safetensors"
ALIGN_CONFIG = "align_head.json"
PROJECTORS = ("linear", "mlp")


def teacher_key(name: str) -> str:
    """A short name for loss terms and projectors: "use" for USE-m3, "minilm" for MiniLM, else the last
    part of the id or folder, lower-cased with non-alphanumerics as "_". Head names in align_head.json
    are built from it, so it belongs to the file format."""
    if name in USE_ALIASES:
        return "use"
    if name in ("minilm", MINILM_ID):
        return "minilm"
    return re.sub(r"\W+", "_", Path(name.rstrip("/")).name.lower()).strip("_") or "teacher"


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """"linear": one Linear; "mlp": Linear-GELU-Linear with hidden size out_dim (as LLaVA-1.5's projector)."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    raise ValueError(f"projector={kind!r}: use one of {PROJECTORS}")


def save_align_head(folder: str | os.PathLike, projectors: dict[str, nn.Module], *, projector: str,
                    teachers: Sequence[str]) -> None:
    """Write the projectors as align_head.safetensors and how to rebuild them as align_head.json.

    teachers: in order; the first teacher's sentence projector is "sentence", the others'
    "sentence_<teacher_key>"."""
    from safetensors.torch import save as safetensors_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, heads = {}, {}
    for name, module in projectors.items():
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        heads[name] = {"in_dim": linears[0].in_features, "out_dim": linears[-1].out_features}
        tensors.update({f"{name}.{k}": v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()})
    config = {"teacher": teachers[0], "teachers": list(teachers), "projector": projector, "heads": heads}
    atomic_write_bytes(folder / ALIGN_WEIGHTS, safetensors_bytes(tensors))
    atomic_write_bytes(folder / ALIGN_CONFIG, json.dumps(config, indent=2).encode("utf-8"))


def load_align_head(folder: str | os.PathLike) -> tuple[dict[str, nn.Module], dict]:
    """(projectors by name, the JSON config) from a folder written by save_align_head.

    Folders written before the rename name the first teacher "lm" and may lack "teachers"; the config
    returned always has "teachers"."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / ALIGN_CONFIG).is_file():
        raise FileNotFoundError(f"{folder} has no {ALIGN_CONFIG}: it was not saved with alignment heads "
                                f"(train with an align config, or pass the folder of an aligned model)")
    config = json.loads((folder / ALIGN_CONFIG).read_text())
    first = config.pop("lm", None) or config.get("teacher")
    config = {"teacher": first, **config, "teachers": config.get("teachers") or [first]}
    state = load_file(str(folder / ALIGN_WEIGHTS))
    projectors = {}
    for name, dims in config["heads"].items():
        module = build_projector(config["projector"], dims["in_dim"], dims["out_dim"])
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        projectors[name] = module
    return projectors, config


class AlignedPixelEncoder(nn.Module):
    """The pixel side of the aligned space: PixelEncoder embeddings through one teacher's sentence projector.

    Its vectors are comparable with `pixelrep.teachers.load_teacher(self.teacher).encode(...)`: queries as
    pixels, documents as text.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, teacher: str = MINILM_ID):
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.teacher = teacher   # the teacher whose sentence space this projects into

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(pixels, patch_mask))

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 64, device=None, normalize: bool = True,
               convert_to_tensor: bool = False, show_progress_bar: bool | None = None, precision: str = "auto"):
        """Like PixelEncoder.encode, in the teacher's sentence space: np.ndarray [N, teacher dim]."""
        self.eval()
        emb = self.encoder.encode(sentences, batch_size=batch_size, device=device, normalize=False,
                                  convert_to_tensor=True, show_progress_bar=show_progress_bar, precision=precision)
        self.projector.to(emb.device)
        out = self.projector(emb.float())
        out = F.normalize(out, dim=-1) if normalize else out
        return out if convert_to_tensor else out.cpu().numpy()

    def to_pixel_encoder(self):
        """A plain PixelEncoder whose own output is this aligned space: a linear sentence projector is folded
        into the encoder's projection (composed with it when there is one already). Same vectors, one model;
        its metadata["teacher"] names the teacher whose space it lives in (pass it on to save_pretrained)."""
        from pixelrep.encoder import PixelEncoder
        if not isinstance(self.projector, nn.Linear):
            raise ValueError(f"only a linear projector folds into the encoder, not {type(self.projector).__name__}; "
                             f"use AlignedPixelEncoder as it is")
        vit = self.encoder.vit
        weight, bias = self.projector.weight.detach(), self.projector.bias.detach()
        if vit.cfg.removes_common:   # W2 H (I - D^T D)(y - mean) + b2: linear too, folded into W2 first
            if vit.cfg.common_whitening:
                weight = weight @ vit.common_whitener.detach()
            if vit.cfg.common_directions:
                d = vit.common_directions.detach()
                weight = weight - (weight @ d.T) @ d
            bias = bias - weight @ vit.common_mean.detach()
        if vit.projection is not None:   # W2 (W1 x + b1) + b2
            weight, bias = weight @ vit.projection.weight.detach(), weight @ vit.projection.bias.detach() + bias
        config = dataclasses.replace(self.encoder.model_config, projection_dim=weight.shape[0],
                                     common_directions=0, common_whitening=0.0)
        folded = PixelEncoder(config, self.encoder.render_config)
        state = {k: v for k, v in self.encoder.state_dict().items() if not k.startswith(("vit.projection.", "vit.common_"))}
        folded.load_state_dict({**state, "vit.projection.weight": weight.clone(), "vit.projection.bias": bias.clone()})
        folded.metadata = {"teacher": self.teacher}
        return folded

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, encoder: nn.Module | None = None,
                        teacher: str | None = None) -> "AlignedPixelEncoder":
        """Load a sentence projector saved in `path` (and the PixelEncoder there, unless one is given): the
        first teacher's, or that of `teacher` (a name from align_head.json's "teachers") for a model trained
        with several."""
        projectors, config = load_align_head(path)
        teachers = config["teachers"]
        teacher = teachers[0] if teacher is None else teacher
        keys = [teacher_key(t) for t in teachers]
        if teacher_key(teacher) not in keys:
            raise ValueError(f"{path} was trained with the teachers {teachers}, not {teacher!r}; pass one of those")
        index = keys.index(teacher_key(teacher))
        head = "sentence" if index == 0 else f"sentence_{keys[index]}"
        if head not in projectors:
            raise ValueError(f"{path} has no sentence projector (heads: {sorted(projectors)}); the aligned space "
                             f"needs a model trained with sentence_weight > 0")
        if encoder is None:
            from pixelrep.encoder import PixelEncoder
            encoder = PixelEncoder.from_pretrained(path)
        return cls(encoder, projectors[head], teacher=teachers[index])
