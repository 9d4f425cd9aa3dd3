"""Teacher sentence vectors computed ahead of time, for machines that cannot hold the teacher.

A GPU node lent for minutes takes a working tree of at most 64 MiB, which has no room for the
teacher (all-MiniLM-L6-v2 is 88 MB, the multilingual USE wheel 32 MB). So `make device-pack` runs
the teacher here, on the CPU, over every target text of the training shard, and stores the vectors
as int8 with one scale per row (a quarter of float32's bytes; cosine to the float32 vector > 0.9999).
`AlignConfig(teacher_vectors=ROOT)` then trains from them without loading the teacher.

One folder per teacher (AlignConfig.teacher may name several), ROOT/<teacher name, as a file name>/:
    teacher.json  {"teacher", "dim", "count", "sentences_per_s"}: which teacher, and how fast it ran here
                  (packs written before the rename say "lm"; both are read)
    keys.npy      uint8 [N, 32]: sha256 of each text
    vectors.npy   int8 [N, dim]: round(v / scale), with |v|_inf / scale = 127
    scales.npy    float32 [N]
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pixelrep.files import atomic_write_bytes, npy_bytes

META = "teacher.json"


def teacher_folder(root: str | os.PathLike, teacher: str) -> Path:
    """Where the vectors of `teacher` live under `root`: "use-m3" -> ROOT/use-m3."""
    return Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "-", teacher).strip("-.")


def _read_meta(path: Path) -> dict:
    """teacher.json, with the teacher under "teacher" whichever name the pack used."""
    meta = json.loads(path.read_text())
    return {"teacher": meta.pop("lm", None) or meta.get("teacher"), **meta}


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def save_teacher_vectors(root: str | os.PathLike, teacher: str, texts: Sequence[str], vectors: np.ndarray,
                         sentences_per_s: float | None = None) -> Path:
    """Store `vectors` (float [N, dim], `teacher`'s embeddings of `texts`) in int8; returns the folder."""
    folder = teacher_folder(root, teacher)
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(f"vectors of shape {vectors.shape} do not match {len(texts)} texts")
    scales = np.maximum(np.abs(vectors).max(1), 1e-12) / 127
    quantized = np.round(vectors / scales[:, None]).astype(np.int8)
    keys = np.frombuffer(b"".join(_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
    atomic_write_bytes(folder / "keys.npy", npy_bytes(keys))
    atomic_write_bytes(folder / "vectors.npy", npy_bytes(quantized))
    atomic_write_bytes(folder / "scales.npy", npy_bytes(scales.astype(np.float32)))
    meta = dict(teacher=teacher, dim=int(vectors.shape[1]), count=len(texts), sentences_per_s=sentences_per_s)
    atomic_write_bytes(folder / META, (json.dumps(meta, indent=2) + "\n").encode())   # last: the folder is whole
    return folder


class TeacherVectors:
    """Stands in for `teacher` in the training targets: its sentence embeddings, read from what
    save_teacher_vectors wrote under `root`. A text that is not there is an error (the data changed:
    re-pack). Sentence vectors only, so token_dim is None. `served` and `seconds` count lookups, so a
    run can report the teacher's sentences/s."""

    token_dim = None

    def __init__(self, root: str | os.PathLike, teacher: str):
        self.folder = teacher_folder(root, teacher)
        path = self.folder / META
        if not path.is_file() or _read_meta(path)["teacher"] != teacher:
            there = sorted(_read_meta(p)["teacher"] for p in Path(root).glob(f"*/{META}"))
            raise FileNotFoundError(f"no vectors of teacher {teacher!r} under align.teacher_vectors="
                                    f"{os.fspath(root)!r} (it has {there or 'none'}); run `make device-pack` for this recipe")
        meta = _read_meta(path)
        self.name, self.dim, self.meta = teacher, int(meta["dim"]), meta
        keys = np.load(self.folder / "keys.npy")
        self._row = {k.tobytes(): i for i, k in enumerate(keys)}
        # numpy, not torch: a lookup then stays off the training process's torch threads (10x faster here).
        self._vectors = np.load(self.folder / "vectors.npy")
        self._scales = np.load(self.folder / "scales.npy")
        self.device = torch.device("cpu")
        self.served, self.seconds = 0, 0.0

    def to(self, device) -> "TeacherVectors":
        return self   # lookups are on the CPU; the targets are moved to the training device after

    def sentence_embeddings(self, texts: Sequence[str], normalize: bool = True, **unused) -> torch.Tensor:
        """float32 [B, dim] on CPU, unit length by default (the teacher's vectors are)."""
        start = time.perf_counter()
        rows = []
        for text in texts:
            row = self._row.get(_key(text))
            if row is None:
                raise KeyError(f"{text[:80]!r} has no vector in {self.folder}: the training data changed since "
                               f"`make device-pack` computed the teacher's vectors; run it again")
            rows.append(row)
        out = self._vectors[rows].astype(np.float32) * self._scales[rows, None]
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self.served += len(rows)
        self.seconds += time.perf_counter() - start
        return torch.from_numpy(out)
