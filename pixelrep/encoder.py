"""PixelEncoder: the public model (render + ViT + pooling) with a sentence-transformers-like API."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from pixelrep.batch import collate
from pixelrep.config import ModelConfig
from pixelrep.model import PixelViT
from pixelrep.render import Renderer, RenderConfig

PRECISIONS = ("fp32", "bf16")
RENDER_CHUNK = 8192          # sentences rendered, length-sorted and encoded together: bounds host memory
AUTO_PROGRESS_MIN = 1000     # show_progress_bar=None shows a bar from this many sentences (on a terminal)


def default_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_texts(texts, name: str = "sentences", allow_str: bool = False) -> list[str]:
    """A list of str (a lone str too, as [str], with allow_str), or a TypeError naming the first bad item."""
    if allow_str and isinstance(texts, str):
        return [texts]
    if isinstance(texts, (str, bytes, bytearray, Mapping)) or not isinstance(texts, Iterable):
        expected = "a str or a list of str" if allow_str else "a list of str"
        hint = "; wrap a single str in a list" if isinstance(texts, str) else ""
        raise TypeError(f"{name} must be {expected}, got {type(texts).__name__}{hint}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] is {type(t).__name__}, expected str")
    return texts


class PixelEncoder(nn.Module):
    """Encodes sentences by rendering them and reading the pixels with a ViT.

    `encoder.vit` is the PixelViT, `encoder.renderer` the Renderer built from `render_config`;
    a checkpoint stores both configs because an embedding depends on font, size and canvas.
    """

    def __init__(self, model_config: ModelConfig | None = None, render_config: RenderConfig | None = None):
        super().__init__()
        self.render_config = render_config or RenderConfig()
        self.model_config = model_config or ModelConfig(max_patches=self.render_config.max_patches,
                                                        patch_size=self.render_config.patch_size)
        m, r = self.model_config, self.render_config
        if m.patch_size != r.patch_size:
            raise ValueError(f"ModelConfig.patch_size={m.patch_size} differs from RenderConfig.patch_size={r.patch_size}")
        if m.max_patches < r.max_patches:
            raise ValueError(f"ModelConfig.max_patches={m.max_patches} is below RenderConfig.max_patches="
                             f"{r.max_patches}: the model would have no position for the last patches")
        self.vit = PixelViT(self.model_config)
        self.renderer = Renderer(self.render_config)
        self.metadata: dict = {}   # what config.json said about a loaded checkpoint (e.g. "trained")

    @property
    def embedding_dim(self) -> int:
        return self.model_config.embedding_dim

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings [B, embedding_dim] (not normalised) for a collated batch."""
        return self.vit(pixels, patch_mask)

    @torch.no_grad()
    def encode(self, sentences: str | Sequence[str], batch_size: int = 64, device: str | torch.device | None = None,
               normalize: bool = True, convert_to_tensor: bool = False, show_progress_bar: bool | None = None,
               precision: str = "fp32"):
        """Embed sentences: np.ndarray float32 [n, d] (a str gives one vector [d]).

        Sentences are rendered and sorted by patch count so each batch pads little; the output keeps
        the input order. device=None picks cuda > mps > cpu and moves the model there (as
        sentence-transformers does). precision="bf16" runs the ViT under bf16 autocast (for GPUs);
        outputs are float32 either way. convert_to_tensor=True returns a tensor on that device.
        show_progress_bar=None shows a bar for long inputs when stderr is a terminal.
        """
        single = isinstance(sentences, str)
        sentences = check_texts(sentences, allow_str=True)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: use a positive int")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}")
        device = torch.device(device) if device is not None else default_device()
        if show_progress_bar is None:
            show_progress_bar = len(sentences) >= AUTO_PROGRESS_MIN and sys.stderr.isatty()

        was_training = self.training
        self.eval()
        self.to(device)
        out = torch.empty(len(sentences), self.embedding_dim, dtype=torch.float32, device=device)
        try:
            with tqdm(total=len(sentences), desc="encode", unit="sent", disable=not show_progress_bar) as bar:
                for start in range(0, len(sentences), RENDER_CHUNK):
                    rendered = self.renderer.render_batch(sentences[start:start + RENDER_CHUNK])
                    # Longest first, as sentence-transformers does: running out of memory shows on the first batch.
                    order = sorted(range(len(rendered)), key=lambda i: -rendered[i].num_patches)
                    for b in range(0, len(order), batch_size):
                        idx = order[b:b + batch_size]
                        emb = self._embed_batch(collate([rendered[i] for i in idx]), device, precision)
                        out[torch.tensor(idx, device=device) + start] = emb
                        bar.update(len(idx))
        finally:
            self.train(was_training)

        if normalize:
            out = F.normalize(out, dim=-1)
        if single:
            out = out[0]
        return out if convert_to_tensor else out.cpu().numpy()

    def _embed_batch(self, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device, precision: str):
        pixels, mask = (t.to(device, non_blocking=True) for t in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return self.vit(pixels, mask).float()

    # ------------------------------------------------------------------ save / load

    def save_pretrained(self, directory: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write config.json (model + render config, format version, metadata) and model.safetensors."""
        from pixelrep.pretrained import save_pretrained
        save_pretrained(self, directory, metadata=metadata)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        pooling: str | None = None) -> "PixelEncoder":
        """Load a folder, the bundled "default", or a hub id (PixelEncoder or PIXEL format).

        pooling="mean"|"cls" overrides the checkpoint's pooling ("cls" needs a CLS token, as PIXEL has).
        """
        from pixelrep.pretrained import load_pretrained
        return load_pretrained(name_or_path, revision=revision, pooling=pooling)
