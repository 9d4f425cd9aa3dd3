"""Evaluation: STS suites, reports, benchmarks.

    from pixelrep.eval import run_sts, evaluate_sts, load_sts_file
    evaluate_sts(model, sentences1, sentences2, scores)   # {"spearman": x100, "pearson": x100, "n": int}
    run_sts({"mine": encoder}, suite="all", data_dir="../shared/data/sts", out_dir="out/eval")
"""
import importlib

# Imported on first use, so `pixelrep --help` does not pay for scipy and datasets.
_EXPORTS = {
    "evaluate_sts": "pixelrep.eval.sts",
    "load_sts_file": "pixelrep.eval.data",
    "StsData": "pixelrep.eval.data",
    "run_sts": "pixelrep.eval.runner",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelrep.eval' has no attribute {name!r}")
