"""Fail in seconds when the Hugging Face hub cannot be reached.

Without HF_HUB_OFFLINE=1, `datasets` and `huggingface_hub` retry a dead network with back-off for
about 25 s per file, so an offline `pixelrep eval sts` used to spend minutes before failing. One short
request to the hub first turns that into a single clear error naming the fix.
"""
from __future__ import annotations

import functools


class HubUnreachable(RuntimeError):
    """The hub did not answer and offline mode is off; the message names the fix."""


def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set: the libraries read their local caches and never wait on the network."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@functools.cache
def _unreachable_reason(endpoint: str, timeout: float) -> str | None:
    """Why one HEAD request to the hub failed, or None when it answered (any status: the host is there).

    Asked once per process: after one miss, later loads fail at once too."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=timeout)
    except Exception as e:  # DNS failure, refused, timed out, proxy error: all mean "no hub now"
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}"
    return None


def require_hub(what: str, fix: str, timeout: float = 3.0) -> None:
    """Raise HubUnreachable("cannot load WHAT: ...; FIX") when the hub is needed and does not answer.

    Nothing is checked in offline mode (HF_HUB_OFFLINE=1): the caches answer or fail at once there.
    """
    if hub_offline():
        return
    from huggingface_hub import constants

    reason = _unreachable_reason(constants.ENDPOINT, timeout)
    if reason:
        raise HubUnreachable(f"cannot load {what}: the Hugging Face hub ({constants.ENDPOINT}) cannot be reached "
                             f"({reason}); {fix}")
