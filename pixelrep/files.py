"""File helpers every part uses: atomic writes, .npy bytes, where the offline data is (a leaf: imports
nothing of pixelrep).

A reader (another process, a resumed run, a DDP rank) must never see half a file, and a crash must
leave the old file intact, so everything pixelrep writes goes through `atomic_write`.
"""
from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(temp_path) for a temp file next to `path`, then rename it over `path` in one step."""
    path = Path(path)
    # A unique name in the same folder (os.replace is atomic only within one filesystem); not
    # mkstemp, whose 0600 mode would stick to the final file.
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"))
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())          # the bytes are on disk before the name points at them
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # some writers (safetensors) create files private to the owner
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """atomic_write for content already in memory (JSON, markdown, serialised tensors, a PNG)."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def npy_bytes(array) -> bytes:
    """An array as the bytes of a .npy file (to write atomically)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def data_path(*parts: str) -> str:
    """A path in the offline data folder, by the one rule every command and config follows:
    $PIXELREP_DATA, else ../shared/data from the working directory (the checkout's root, where the
    README's commands run; an installed pixelrep has no checkout to be relative to)."""
    return str(Path(os.environ.get("PIXELREP_DATA", "../shared/data"), *parts))
