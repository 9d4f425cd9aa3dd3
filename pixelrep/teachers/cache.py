"""A disk cache of teacher sentence vectors keyed by text hash, shared by processes and runs."""
from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixelrep.files import atomic_write_bytes, npy_bytes


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
        atomic_write_bytes(self.root / f"{name}.vecs.npy", npy_bytes(vectors))
        atomic_write_bytes(self.root / f"{name}.keys.npy", npy_bytes(keys))
        self._refresh()


def open_cache(cache_dir: str | os.PathLike | None, namespace: str) -> EmbeddingCache | None:
    """One cache folder per teacher setup (namespace), so teachers never read each other's vectors."""
    if cache_dir is None:
        return None
    return EmbeddingCache(Path(cache_dir) / hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:16], namespace)


