"""JSON that every parser reads: NaN and ±Infinity become null.

Python's json writes NaN/Infinity by default, which is not JSON (jq, JavaScript and strict parsers
reject it). A loss that is not a number yet, or a Spearman of constant predictions, is written as null.
"""
from __future__ import annotations

import json
import math


def finite(value):
    """`value` with every non-finite float (numpy floats too) inside dicts, lists and tuples replaced by None."""
    if isinstance(value, float):   # numpy.float64 is a float subclass
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "dtype") and getattr(value, "ndim", None) == 0:   # numpy scalars (float32, int64, ...)
        return finite(value.item())
    return value


def dumps(value, **kwargs) -> str:
    """json.dumps of finite(value); allow_nan=False so a missed case fails loudly instead of writing NaN."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
