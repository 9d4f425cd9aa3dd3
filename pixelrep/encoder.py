"""PixelEncoder: the public model (render + ViT + pooling) with a sentence-transformers-like API."""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from pixelrep.batch import collate
from pixelrep.config import ModelConfig
from pixelrep.model import PixelViT
from pixelrep.render import Rendered, Renderer, RenderConfig
from pixelrep.render.cells import aligner_for
from pixelrep.render.grid import GridSnapper

PRECISIONS = ("auto", "fp32", "bf16", "float32")   # "float32" is sentence-transformers' name for fp32
# Keywords MTEB and sentence-transformers pass that do not change a pixelrep embedding: MTEB's task
# description (task_name, prompt_type, task_metadata, hf_split, hf_subset), named prompts (pixelrep
# models are trained without instructions, so they have none), sentence-transformers' multi-process
# pool and its router task. Any other unknown keyword is an error, so a typo is not silently ignored.
IGNORED_KWARGS = ("task_name", "prompt_type", "task_metadata", "hf_split", "hf_subset", "prompt_name", "pool",
                  "chunk_size", "task")
RENDER_CHUNK = 8192          # sentences rendered, length-sorted and encoded together: bounds host memory
AUTO_PROGRESS_MIN = 1000     # show_progress_bar=None shows a bar from this many sentences (on a terminal)
# How encode_images takes a strip's layout (pixelrep.render.cells): "auto" lays a line drawn as continuous text out in
# the word-aligned model's cells and leaves one already in cells alone; "cells" reads as given; "continuous" lays out.
IMAGE_LAYOUTS = ("auto", "cells", "continuous")


def default_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bf16 natively, so that encode(precision="auto") runs in bf16 there:
    a CUDA GPU that supports it, or a CPU with avx512_bf16 or AMX (elsewhere bf16 is emulated, slower)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """encode()'s precision as run on `device`: "bf16" or "fp32" ("auto": bf16 where native_bf16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}; to quantise the returned vectors "
                         f"(int8, binary) use sentence_transformers.quantization.quantize_embeddings")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return "bf16" if precision == "bf16" else "fp32"


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
        if r.word_align % m.patches_per_token:
            raise ValueError(f"RenderConfig.word_align={r.word_align} is not a multiple of ModelConfig.patches_per_token="
                             f"{m.patches_per_token}: words would not start on token boundaries")
        if m.max_patches < r.max_patches:
            raise ValueError(f"ModelConfig.max_patches={m.max_patches} is below RenderConfig.max_patches="
                             f"{r.max_patches}: the model would have no position for the last patches")
        self.vit = PixelViT(self.model_config)
        self.renderer = Renderer(self.render_config)
        self._snapper = None       # a GridSnapper for this renderer, made when snap_to_grid first needs it
        self._aligner = None       # its CellAligner (aligner_for: one per config), when an image first needs laying out
        self.metadata: dict = {}   # what config.json said about a loaded checkpoint (e.g. "trained")

    @property
    def embedding_dim(self) -> int:
        return self.model_config.embedding_dim

    def get_sentence_embedding_dimension(self) -> int:
        """Length of an encode() vector (sentence-transformers' name for embedding_dim)."""
        return self.embedding_dim

    get_embedding_dimension = get_sentence_embedding_dimension   # the name since sentence-transformers 6

    @property
    def max_seq_length(self) -> int:
        """The longest input, in patches (the end patch included); longer text is cut.

        Patches, not characters: the renderer cuts text where the canvas ends, and how many characters
        fit in a patch depends on the script (~2.5 Latin letters, ~1 CJK character). Setting it (as
        sentence-transformers and MTEB users do) renders at most that many patches, up to the positions
        the model has (ModelConfig.max_patches).
        """
        return self.render_config.max_patches

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.model_config.max_patches
        if not isinstance(value, int) or not 2 <= value <= limit:
            raise ValueError(f"max_seq_length={value!r}: use an int in 2..{limit}, the patches this model has positions for")
        self.set_render_config(max_patches=value)

    def set_render_config(self, **changes) -> None:
        """Render from now on with these RenderConfig fields changed (validated first, so a bad value
        changes nothing), e.g. segment_words="" or chunk_chars=0; save_pretrained keeps them."""
        config = dataclasses.replace(self.render_config, **changes)
        self.render_config, self.renderer, self._snapper, self._aligner = config, Renderer(config), None, None

    @property
    def segment_words(self) -> str:
        """How English text is re-spaced before rendering: "en" puts the spaces back where words run
        together or fall apart (pixelrep.render.segment; the bundled default's setting), "" renders the
        text as written. Stored in the render config, so save_pretrained keeps it."""
        return self.render_config.segment_words

    @segment_words.setter
    def segment_words(self, value: str) -> None:
        self.set_render_config(segment_words=value)

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings [B, embedding_dim] (not normalised) for a collated batch."""
        return self.vit(pixels, patch_mask)

    @torch.no_grad()
    def encode(self, sentences: str | Sequence[str], batch_size: int = 64, device: str | torch.device | None = None,
               normalize: bool = True, convert_to_tensor: bool = False, show_progress_bar: bool | None = None,
               precision: str = "auto", *, prompt: str | None = None, normalize_embeddings: bool | None = None,
               convert_to_numpy: bool = True, truncate_dim: int | None = None,
               output_value: str = "sentence_embedding", **ignored):
        """Embed sentences: np.ndarray float32 [n, d] (a str gives one vector [d]).

        Sentences are rendered and sorted by patch count so each batch pads little; the output keeps
        the input order. device=None picks cuda > mps > cpu and moves the model there (as
        sentence-transformers does). precision="bf16" runs the ViT under bf16 autocast, "fp32" in
        float32, and "auto" (the default) in bf16 where the device computes it natively (a CUDA GPU
        with bf16, a CPU with avx512_bf16 or AMX: ~1.5x faster there, STS scores within 0.05) and fp32
        elsewhere; outputs are float32 either way. Padding invariance is exact in fp32 and within bf16
        rounding (cosine > 0.9999) in bf16. convert_to_tensor=True returns a tensor on that device.
        show_progress_bar=None shows a bar for long inputs when stderr is a terminal. A text longer
        than max_seq_length patches is cut, with one warning per call saying how many were.

        sentence-transformers' keywords mean what they mean there: prompt is put before every
        sentence; normalize_embeddings sets normalize; convert_to_numpy=False (without
        convert_to_tensor) gives a list of 1-D tensors; truncate_dim keeps the first dimensions
        (before normalising); output_value must be "sentence_embedding". MTEB's task_name,
        prompt_type, ... (IGNORED_KWARGS) are accepted and change nothing.
        """
        unknown = sorted(set(ignored) - set(IGNORED_KWARGS))
        if unknown:
            raise TypeError(f"encode() got unknown keyword(s) {unknown}; besides its named arguments it accepts "
                            f"and ignores only {list(IGNORED_KWARGS)}")
        if output_value != "sentence_embedding":
            raise ValueError(f"output_value={output_value!r}: PixelEncoder.encode returns sentence embeddings only "
                             f"(output_value='sentence_embedding'); patch features come from encoder.vit.forward_features")
        if truncate_dim is not None and (not isinstance(truncate_dim, int) or not 1 <= truncate_dim <= self.embedding_dim):
            raise ValueError(f"truncate_dim={truncate_dim!r}: use None or an int in 1..{self.embedding_dim}")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        single = isinstance(sentences, str)
        sentences = check_texts(sentences, allow_str=True)
        if prompt:
            sentences = [prompt + s for s in sentences]
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: use a positive int")
        device = torch.device(device) if device is not None else default_device()
        precision = resolve_precision(precision, device)   # a bad value fails before any rendering
        if show_progress_bar is None:
            show_progress_bar = len(sentences) >= AUTO_PROGRESS_MIN and sys.stderr.isatty()

        self.to(device)
        out = torch.empty(len(sentences), self.embedding_dim, dtype=torch.float32, device=device)
        truncated = 0
        with tqdm(total=len(sentences), desc="encode", unit="sent", disable=not show_progress_bar) as bar:
            for start in range(0, len(sentences), RENDER_CHUNK):
                rendered = self.renderer.render_batch(sentences[start:start + RENDER_CHUNK])
                truncated += sum(r.truncated for r in rendered)
                out[start:start + len(rendered)] = self.embed_rendered(rendered, batch_size, precision, bar,
                                                                        snap_to_grid=False)
        if truncated:
            # stacklevel 3: past this function and torch.no_grad's wrapper, to the caller's line.
            warnings.warn(self._truncation_message(truncated, len(sentences)), UserWarning, stacklevel=3)

        if truncate_dim is not None:
            out = out[:, :truncate_dim]
        if normalize:
            out = F.normalize(out, dim=-1)
        if not convert_to_tensor:
            out = out.cpu().numpy() if convert_to_numpy else list(out)
        return out[0] if single else out

    def _truncation_message(self, truncated: int, total: int) -> str:
        fix = "split long texts into sentences or passages"
        if self.max_seq_length < self.model_config.max_patches:
            fix += f", or raise encoder.max_seq_length up to {self.model_config.max_patches}"
        return (f"{truncated} of {total} inputs were longer than max_seq_length={self.max_seq_length} patches and "
                f"were cut; {fix}")

    def similarity(self, a, b) -> torch.Tensor:
        """Cosine similarity matrix [len(a), len(b)] of two sets of vectors (numpy or torch; a single
        vector counts as a set of one), as sentence-transformers' model.similarity."""
        a, b = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x) for x in (a, b))
        a, b = (F.normalize(torch.atleast_2d(x).float(), dim=-1) for x in (a, b.to(a.device)))
        return a @ b.T

    @torch.no_grad()
    def remove_common_directions(self, texts: Sequence[str], count: int = 5, whitening: float = 0.0,
                                 batch_size: int = 64, show_progress_bar: bool | None = None) -> "PixelEncoder":
        """A copy of this encoder whose vectors lose what the vectors of `texts` share: their mean, and
        their `count` top principal directions (All-but-the-top, Mu & Viswanath 2018). Cosine similarity
        then weighs what tells sentences apart rather than what every sentence has (length, layout).
        whitening p > 0 also scales each other principal direction by (its variance / their mean) ** -p, so
        that a few loud directions weigh less (0.5 whitens, as Su et al. 2021; needs more texts than
        dimensions; directions without variance are dropped). Fitted in float32 on the texts' unnormalised
        vectors; saved with the weights (ModelConfig.common_directions, common_whitening), so encode(), the
        sentence-transformers module and every copy apply it."""
        if self.model_config.removes_common:
            raise ValueError(f"this encoder is fitted already (common_directions={self.model_config.common_directions}, "
                             f"common_whitening={self.model_config.common_whitening:g}); fit on the encoder without them")
        texts = check_texts(texts, "texts")
        if not 0 <= count < min(len(texts), self.embedding_dim) or not (count or whitening):
            raise ValueError(f"count={count}: remove 1 up to {min(len(texts), self.embedding_dim) - 1} directions "
                             f"(fewer than the {len(texts)} texts and the {self.embedding_dim} dimensions), or 0 "
                             f"with whitening")
        if whitening and len(texts) <= self.embedding_dim:
            raise ValueError(f"whitening={whitening} needs more texts than the {self.embedding_dim} dimensions, "
                             f"got {len(texts)}")
        vectors = self.encode(texts, batch_size=batch_size, normalize=False, precision="fp32",
                              show_progress_bar=show_progress_bar).astype(np.float64)
        mean = vectors.mean(axis=0)
        _, singular, principal = np.linalg.svd(vectors - mean, full_matrices=False)   # orthonormal rows
        fitted_config = dataclasses.replace(self.model_config, common_directions=count, common_whitening=whitening)
        state = {**self.state_dict(), "vit.common_mean": torch.tensor(mean, dtype=torch.float32)}
        if count:
            state["vit.common_directions"] = torch.tensor(principal[:count], dtype=torch.float32)
        described = f"the mean and {count} top principal directions of {len(texts):,} texts' vectors removed"
        if whitening:
            # Directions the texts do not vary along (a projection wider than the model leaves a null space)
            # are dropped: scaled up, their rounding noise would swamp the rest.
            variance = singular[count:] ** 2
            kept = variance > 1e-6 * variance.max()
            rest, variance = principal[count:][kept], variance[kept]
            scale = (variance / variance.mean()) ** -whitening
            state["vit.common_whitener"] = torch.tensor((rest.T * scale) @ rest, dtype=torch.float32)
            described += f", the other directions scaled by variance ** -{whitening:g}"
        device = next(self.parameters()).device
        fitted = type(self)(fitted_config, self.render_config)
        fitted.load_state_dict(state)
        fitted.metadata = {**self.metadata, "common_directions": described}
        return fitted.to(device)

    @torch.no_grad()
    def embed_rendered(self, rendered: Sequence, batch_size: int = 64, precision: str = "auto", bar=None,
                       snap_to_grid: bool | None = None) -> torch.Tensor:
        """Embeddings float32 [n, d] (not normalised), in input order, of texts already rendered
        (pixelrep.render.Rendered, e.g. perturbed images of them), on the device the model sits on;
        precision as encode's. snap_to_grid (None: the render config's) first moves strips drawn a fraction
        of a pixel off the renderer's grid back onto it (pixelrep.render.grid). encode() is this after
        rendering, without the snap (its strips are on the grid); `bar` (tqdm) is advanced per batch."""
        if self.render_config.snap_to_grid if snap_to_grid is None else snap_to_grid:
            rendered = self._snapped(rendered)
        device = next(self.parameters()).device
        precision = resolve_precision(precision, device)
        out = torch.empty(len(rendered), self.embedding_dim, dtype=torch.float32, device=device)
        was_training = self.training
        self.eval()
        try:
            # Longest first, as sentence-transformers does: running out of memory shows on the first batch.
            order = sorted(range(len(rendered)), key=lambda i: -rendered[i].num_patches)
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                pixels, mask = (t.to(device, non_blocking=True) for t in collate([rendered[i] for i in idx]))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    out[torch.tensor(idx, device=device)] = self.vit(pixels, mask).float()
                if bar is not None:
                    bar.update(len(idx))
        finally:
            self.train(was_training)
        return out

    def _snapped(self, rendered: Sequence[Rendered]) -> list[Rendered]:
        if self._snapper is None:
            self._snapper = GridSnapper(self.renderer)
        return [self._snapper(r) for r in rendered]

    def image_to_rendered(self, image, index: int = 0, layout: str = "auto") -> Rendered:
        """A grey text strip drawn elsewhere (uint8 array [patch_size, W] or a PIL image of that height; white
        paper, dark ink) as this encoder's renderer would hand it over: with a word-aligned renderer its words
        laid out in cells when drawn as continuous text (layout, one of IMAGE_LAYOUTS; pixelrep.render.cells),
        padded with paper to whole patches, cut at the canvas (flagged `truncated`) and, with eos_patch, closed
        by the black end patch."""
        self._check_layout(layout)
        if hasattr(image, "convert"):   # a PIL image
            image = np.asarray(image.convert("L"))
        pixels = np.asarray(image)
        ps = self.render_config.patch_size
        if pixels.ndim != 2 or pixels.dtype != np.uint8 or pixels.shape[0] != ps:
            raise ValueError(f"image {index}: expected a grey uint8 strip {ps} pixels tall (white paper, dark ink; "
                             f"scale it so the text is {self.render_config.font_size:g} px, as this model's renderer "
                             f"draws it), got {pixels.dtype} {list(pixels.shape)}")
        return self._in_cells(self._as_rendered(pixels), layout)

    def _check_layout(self, layout: str) -> None:
        if layout not in IMAGE_LAYOUTS:
            raise ValueError(f"layout={layout!r}: use one of {IMAGE_LAYOUTS}")
        if layout == "continuous" and not self.render_config.word_align:
            raise ValueError("layout='continuous' lays words out in cells, and this encoder's renderer has none "
                             "(RenderConfig.word_align=0): it reads continuous text as given, with layout='auto'")

    def _in_cells(self, rendered: Rendered, layout: str, snapped: bool = False) -> Rendered:
        """`rendered` with its words laid out in cells as `layout` says (image_to_rendered), cut again at the canvas;
        `snapped`: the grid snapper moved it (CellAligner.lay_out)."""
        if layout == "cells" or not self.render_config.word_align:
            return rendered
        if self._aligner is None:
            self._aligner = aligner_for(self.render_config)
        text = self.renderer.text_area(rendered)
        laid = (self._aligner if layout == "auto" else self._aligner.lay_out)(text, snapped=snapped)
        if laid is text:
            return rendered
        out = self._as_rendered(laid)
        return dataclasses.replace(out, truncated=out.truncated or rendered.truncated)

    def _as_rendered(self, pixels: np.ndarray) -> Rendered:
        """A validated strip padded with paper to whole patches, cut at the canvas, closed by the end patch."""
        ps = self.render_config.patch_size
        eos = 1 if self.render_config.eos_patch else 0
        room = self.render_config.max_patches - eos
        patches = max(1, -(-pixels.shape[1] // ps))
        truncated = patches > room
        patches = min(patches, room)
        out = np.full((ps, (patches + eos) * ps), 255, dtype=np.uint8)
        width = min(pixels.shape[1], patches * ps)
        out[:, :width] = pixels[:, :width]
        if eos:
            out[:, patches * ps:] = 0
        return Rendered(pixels=out, num_patches=patches + eos, truncated=truncated)

    @torch.no_grad()
    def encode_images(self, images: Sequence, batch_size: int = 64, normalize: bool = True, precision: str = "auto",
                      snap_to_grid: bool | None = None, layout: str = "auto") -> np.ndarray:
        """Embed images of text lines (see image_to_rendered): np.ndarray float32 [n, d]. snap_to_grid (None: the
        render config's) first moves strips drawn a fraction of a pixel off the renderer's grid back onto it
        (pixelrep.render.grid); then layout (IMAGE_LAYOUTS) "auto" lays a line drawn as continuous text (a
        screenshot, another renderer) out in the word-aligned model's cells (pixelrep.render.cells), and "cells"
        reads it as given. The model stays on its device; a strip wider than the canvas is cut, with a warning."""
        if isinstance(images, np.ndarray) and images.ndim == 2:
            raise TypeError("encode_images takes a sequence of strips; wrap a single one in a list")
        self._check_layout(layout)   # before any image is read
        given = [self.image_to_rendered(image, i, layout="cells") for i, image in enumerate(images)]
        # Onto the grid before the layout: a word's edges are found, and its cell chosen, from exact pixels.
        snap = self.render_config.snap_to_grid if snap_to_grid is None else snap_to_grid
        rendered = self._snapped(given) if snap else given
        rendered = [self._in_cells(r, layout, snapped=r is not g) for r, g in zip(rendered, given)]
        truncated = sum(r.truncated for r in rendered)
        if truncated:
            warnings.warn(self._truncation_message(truncated, len(rendered)), UserWarning, stacklevel=3)
        if not rendered:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        out = self.embed_rendered(rendered, batch_size, precision, snap_to_grid=False)
        return (F.normalize(out, dim=-1) if normalize else out).cpu().numpy()

    # ------------------------------------------------------------------ save / load

    def save_pretrained(self, directory: str | os.PathLike, metadata: dict | None = None,
                        results: str | os.PathLike | dict | None = None, dtype: str = "float32") -> None:
        """Write a folder that both PixelEncoder.from_pretrained and sentence-transformers load.

        config.json (model + render config, format version, metadata) and model.safetensors are
        pixelrep's format; modules.json, config_sentence_transformers.json and pixelrep_module.json
        point sentence-transformers at pixelrep.st.PixelModule; README.md is a model card, with the
        scores of `results` (a `pixelrep eval sts` results.json, as a path or a dict) when given.
        dtype: "float32", or "float16" / "bfloat16" to store the weights in half the bytes (loading upcasts).
        """
        from pixelrep.export import model_card, write_sentence_transformers_files
        from pixelrep.files import atomic_write_bytes
        from pixelrep.pretrained import write_checkpoint

        card = model_card(self, name=os.path.basename(os.path.abspath(directory)), metadata=metadata or {},
                          results=results)   # a bad results file fails here, before any file is written
        folder = write_checkpoint(directory, model=self.model_config, render=self.render_config,
                                  state=self.state_dict(), metadata=metadata, dtype=dtype)
        write_sentence_transformers_files(folder)
        atomic_write_bytes(folder / "README.md", card.encode("utf-8"))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        pooling: str | None = None) -> "PixelEncoder":
        """Load a folder, the bundled "default", or a hub id (PixelEncoder or PIXEL format).

        pooling="mean"|"cls" overrides the checkpoint's pooling ("cls" needs a CLS token, as PIXEL has).
        """
        from pixelrep.pretrained import load_state, read_checkpoint

        checkpoint = read_checkpoint(name_or_path, revision=revision, pooling=pooling)
        encoder = cls(checkpoint.model, checkpoint.render)
        load_state(encoder, checkpoint.state, checkpoint.source)
        encoder.metadata = checkpoint.metadata
        if encoder.metadata.get("trained") is False:
            what = encoder.metadata.get("description") or "this model was never trained"
            warnings.warn(f"{os.fspath(name_or_path)!r} is untrained: {what}", UserWarning, stacklevel=2)
        return encoder
