"""One call from models and a suite name to scores, a table and files (what `pixelrep eval sts` runs)."""
from __future__ import annotations

from pathlib import Path

from pixelrep.eval.models import describe_model
from pixelrep.eval.report import build_results, write_outputs
from pixelrep.eval.suites import (TYPO_RATES, VISUAL_IMAGE_LEVELS, VISUAL_KINDS, VISUAL_RATES, DataSource, HubSource,
                                  LocalSource, build_plan, evaluate_plan, expand_suites, hub_fix)

# Where the STS-B English test set may sit in each suite, in the order the scatter plot looks for it.
STSB_EN_TASKS = (("english", "stsb"), ("stsb-multi", "en"), ("robustness", "clean"), ("visual", "clean"))


def run_sts(models: dict, suite: str | list[str] = "all", data_dir: str | Path | None = None,
            out_dir: str | Path | None = None, batch_size: int = 64, limit: int | None = None, seed: int = 0,
            typo_rates: tuple[float, ...] = TYPO_RATES, visual_kinds: tuple[str, ...] = VISUAL_KINDS,
            visual_rates: tuple[float, ...] = VISUAL_RATES, infos: dict[str, dict] | None = None,
            progress: bool = True) -> dict:
    """Evaluate each model (name -> object with encode()) on the suite's test sets; returns the results record.

    data_dir: a folder in the layout of pixelrep.eval.suites, or None for the Hugging Face hub.
    out_dir: where results.json, results.md and sts.png (and visual.png) go (nothing is written when None).
    seed: of the robustness typos and the visual perturbations.
    visual_kinds, visual_rates: the visual suite's kinds and the rates of its character kinds.
    infos: per model name, what to record about it (id, kind, config); described from the object otherwise.
    """
    if not models:
        raise ValueError("run_sts needs at least one model")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    source: DataSource = LocalSource(data_dir) if data_dir is not None else HubSource()
    suites = expand_suites(suite)
    plan = build_plan(suites, source, limit=limit, typo_rates=typo_rates, seed=seed, visual_kinds=tuple(visual_kinds),
                      visual_rates=tuple(visual_rates))
    if not plan.tasks:
        reasons = sorted({m["reason"] for m in plan.missing})
        if isinstance(source, HubSource):  # one cause for every set: one reason stands for all, the fix said once
            more = f" (and {len(reasons) - 1} more sets)" if len(reasons) > 1 else ""
            raise FileNotFoundError(f"no data for suite {suite!r} from the hub: {reasons[0]}{more}; {hub_fix()}")
        raise FileNotFoundError(f"no data for suite {suite!r} in {source.description}: {'; '.join(reasons)}")
    runs, scatter = [], {}
    for name, model in models.items():
        info = (infos or {}).get(name) or dict(id=name, kind="object", config=describe_model(model))
        run = evaluate_plan(model, plan, batch_size=batch_size, progress=progress, desc=f"STS {name}")
        runs.append((info, run))
        key = next((k for k in STSB_EN_TASKS if k in run.predictions), None)
        if key:
            gold = next(t.data.score for t in plan.tasks if (t.suite, t.name) == key)
            scatter[info["id"]] = (run.predictions[key], gold)
    config = dict(suites=suites, split="test", similarity="cosine", metric="spearman x100 (pearson x100 too)",
                  batch_size=batch_size, limit=limit, seed=seed, typo_rates=list(typo_rates))
    if "visual" in suites:
        config.update(visual_kinds=list(visual_kinds), visual_rates=list(visual_rates),
                      visual_image_levels={k: list(v) for k, v in VISUAL_IMAGE_LEVELS.items() if k in visual_kinds})
    results = build_results(plan, runs, config)
    if out_dir is not None:
        write_outputs(results, out_dir, scatter)
    return results

