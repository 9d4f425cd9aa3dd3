"""Reports: results.json (the record), a markdown table made from it, and a PNG figure."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pixelrep import strict_json
from pixelrep.files import atomic_write_bytes

RESULTS_FORMAT = "pixelrep-sts-results/1"


def build_results(plan, runs: list[tuple[dict, "ModelRun"]], config: dict) -> dict:  # noqa: F821
    """The JSON record: data source, run config, skipped data, and per model its tasks and summaries."""
    from pixelrep import __version__

    return {
        "format": RESULTS_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pixelrep_version": __version__,
        "data_source": plan.source,
        "config": config,
        "skipped": plan.missing,
        "models": [dict(**info, seconds=round(run.seconds, 2), results=run.results, summaries=run.summaries)
                   for info, run in runs],
    }


def markdown_table(results: dict) -> str:
    """Spearman x100 per task and summary (rows) for each model (columns), from the results record."""
    models = results["models"]
    if not models:
        return ""
    header = ["suite", "task", "n"] + [_column_name(m) for m in models]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    first = models[0]
    for suite in _suites(first, visual=False):
        for r in first["results"]:
            if r["suite"] == suite:
                cells = [_value(m["results"], "task", suite, r["task"]) for m in models]
                lines.append(f"| {suite} | {r['task']} | {r['n']} | " + " | ".join(cells) + " |")
        for s in first["summaries"]:
            if s["suite"] == suite:
                label = f"**{s['name']}**" + ("" if s["complete"] else f" ({len(s['tasks'])}/{s['expected']})")
                cells = [_value(m["summaries"], "name", suite, s["name"]) for m in models]
                lines.append(f"| {suite} | {label} |  | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_report(results: dict) -> str:
    """The table with a title line and what was skipped, as printed by `pixelrep eval sts`."""
    cfg = results["config"]
    title = (f"STS test sets, cosine similarity, Spearman x100 - data: {results['data_source']}"
             + (f" - {cfg['limit']} pairs per task, evenly spread" if cfg.get("limit") else ""))
    parts = [title]
    if results["models"] and _suites(results["models"][0], visual=False):
        parts += ["", markdown_table(results)]
    if any(_suites(m, visual=True) for m in results["models"]):
        parts += ["", visual_table(results)]
    if results["skipped"]:
        parts += ["", "Skipped (data absent, not evaluated):"]
        groups: dict[tuple[str, str], list[str]] = {}
        for m in results["skipped"]:
            groups.setdefault((m["suite"], m["reason"]), []).append(m["task"])
        parts += [f"- {suite}: {', '.join(tasks)}: {reason}" for (suite, reason), tasks in groups.items()]
        if results["data_source"] == "hub":
            from pixelrep.eval.suites import hub_fix

            parts.append(f"To evaluate these: {hub_fix()}.")
    return "\n".join(parts)


def visual_table(results: dict) -> str:
    """The visual suite: Spearman x100 per kind and rate (or level) for each model, and in brackets
    its change from clean; an image kind is n/a for a text model."""
    models = results["models"]
    header = ["kind", "rate / level", "n"] + [_column_name(m) for m in models]
    lines = ["Visual perturbations (STS-B en test, both sentences perturbed, seed "
             f"{results['config'].get('seed', 0)}): Spearman x100 (change from clean); character kinds at a "
             "rate (fraction of eligible characters changed), image kinds at a level (pixel models only).",
             "",
             "| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    for task, row in _visual_rows(models).items():
        cells = []
        for m in models:
            result = next((r for r in m["results"] if r["suite"] == "visual" and r["task"] == task), None)
            drop = next((d["spearman"] for d in m["summaries"]
                         if d["suite"] == "visual" and d["name"] == f"drop @ {task}"), None)
            if result is not None and result.get("not_applicable"):
                cells.append("n/a")
            elif result is None or result["spearman"] is None:
                cells.append("-")
            else:
                cells.append(f"{result['spearman']:.2f}" + ("" if drop is None else f" ({-drop:+.2f})"))
        label = "" if row["kind"] == "clean" else f"{row['unit']} {row['level']:g}".strip()
        lines.append(f"| {row['kind']} | {label} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_visual(results: dict):
    """visual.png: a panel per kind, Spearman x100 against rate (or level) for each model, clean at the left."""
    import matplotlib.pyplot as plt

    models = results["models"]
    rows = _visual_rows(models)
    kinds = list(dict.fromkeys(r["kind"] for r in rows.values() if r["kind"] != "clean"))
    n_cols = min(4, max(1, len(kinds)))
    n_rows = max(1, -(-len(kinds) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.9 * n_rows), layout="constrained",
                             squeeze=False)
    for ax in axes.flat[len(kinds):]:
        ax.axis("off")
    for ax, kind in zip(axes.flat, kinds):
        tasks = ["clean"] + [t for t, r in rows.items() if r["kind"] == kind]
        levels = [rows[t]["level"] for t in tasks[1:]]
        image = rows[tasks[1]]["on_pixels"]
        # Character kinds on their rate axis (clean is rate 0); image kinds at evenly spaced levels.
        x = list(range(len(tasks))) if image else [0.0] + levels
        for k, m in enumerate(models):
            y = [_score(m["results"], "task", "visual", t) for t in tasks]
            if not np.all(np.isnan(y[1:])):     # a text model has no image-kind scores: no line
                ax.plot(x, y, marker="o", color=f"C{k}", label=_column_name(m))
        ax.set_xticks(x, ["clean"] + [f"{v:g}" for v in levels] if image else [f"{v:g}" for v in x],
                      fontsize="small")
        ax.set_xlabel(rows[tasks[1]]["unit"] or "rate", fontsize="small")
        ax.set_title(kind + (" (pixel models)" if image else ""), fontsize="medium")
        lowest = np.nanmin([_score(m["results"], "task", "visual", t) for m in models for t in tasks] + [0.0])
        ax.set_ylim(min(0.0, lowest - 5), 100)    # the whole scale, as in sts.png
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(color="0.85", linewidth=0.5)
    for ax in axes[:, 0]:
        ax.set_ylabel("Spearman x100")
    axes.flat[0].legend(fontsize="small")
    fig.suptitle("Visual perturbations: STS-B en test, both sentences perturbed")
    return fig


def _visual_rows(models: list[dict]) -> dict[str, dict]:
    """Task name -> {kind, level, unit, on_pixels, n} of the visual suite, in the order the models ran them.

    unit: what an image kind's level is ("sigma", "quality", "scale", "degrees"); "" for a rate."""
    from pixelrep.render.visual import IMAGE_PERTURBATIONS, LAYOUT_PERTURBATIONS

    units = {**{kind: unit for kind, (_, unit) in IMAGE_PERTURBATIONS.items()}, **LAYOUT_PERTURBATIONS}

    rows: dict[str, dict] = {}
    for m in models:
        for r in m["results"]:
            if r["suite"] == "visual" and r["task"] not in rows:
                kind, on_pixels = r.get("perturbation") or "clean", bool(r.get("on_pixels"))
                rows[r["task"]] = dict(kind=kind, level=r.get("level"), on_pixels=on_pixels, n=r["n"],
                                       unit=units[kind] if on_pixels else "")
    return rows


def _suites(model: dict, visual: bool) -> list[str]:
    """The suites of a model's results, in order; the visual suite (its own table and figure) or the others."""
    return [s for s in dict.fromkeys(r["suite"] for r in model["results"]) if (s == "visual") == visual]


def write_outputs(results: dict, out_dir: str | Path, scatter: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Path]:
    """Write results.json, results.md and (with matplotlib) sts.png, and visual.png when the visual suite
    ran, into out_dir; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    atomic_write_bytes(paths["json"], strict_json.dumps(results, indent=2, ensure_ascii=False).encode())
    atomic_write_bytes(paths["markdown"], (text_report(results) + "\n").encode())
    try:
        import matplotlib
    except ImportError:
        print("figure skipped: matplotlib is not installed (pip install matplotlib)")
        return paths
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {"figure": ("sts.png", plot_results(results, scatter or {}))}
    if any(_suites(m, visual=True) for m in results["models"]):
        figures["visual_figure"] = ("visual.png", plot_visual(results))
    for key, (name, figure) in figures.items():
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110)
        paths[key] = out / name
        atomic_write_bytes(paths[key], png.getvalue())
        plt.close(figure)
    return paths


def plot_results(results: dict, scatter: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Per suite, grouped bars (task x model); below, predicted cosine vs gold for STS-B English per model."""
    import matplotlib.pyplot as plt

    from pixelrep.eval.sts import spearman

    models = results["models"]
    first = models[0]
    suites = _suites(first, visual=False)     # the visual suite has its own figure (plot_visual)
    n_rows = max(1, len(suites) + (1 if scatter else 0))
    n_cols = max(1, len(scatter))
    widest = max([sum(r["suite"] == s for r in first["results"]) + 3 for s in suites] + [6])
    fig = plt.figure(figsize=(min(20.0, max(8.0, 0.45 * widest * max(1, len(models)) + 2)), 3.2 * n_rows),
                     layout="constrained")
    grid = fig.add_gridspec(n_rows, n_cols)
    bar_width = 0.8 / len(models)
    for row, suite in enumerate(suites):
        ax = fig.add_subplot(grid[row, :])
        # Tasks, then the suite's averages (hatched); "drop" summaries are differences, not scores: left out.
        bars = [("results", "task", r["task"]) for r in first["results"] if r["suite"] == suite]
        bars += [("summaries", "name", m["name"]) for m in first["summaries"] if m["suite"] == suite and m["kind"] == "mean"]
        x = np.arange(len(bars))
        for k, m in enumerate(models):
            values = [_score(m[rows], key, suite, name) for rows, key, name in bars]
            hatch = ["//" if rows == "summaries" else "" for rows, _, _ in bars]
            ax.bar(x + (k - (len(models) - 1) / 2) * bar_width, values, bar_width, color=f"C{k}", hatch=hatch,
                   label=_column_name(m))
        rotate = sum(len(name) for _, _, name in bars) > 60
        ax.set_xticks(x, [name for _, _, name in bars], rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.set_xlim(-0.6, max(len(bars), 6) - 0.4)       # a suite with one or two bars keeps narrow bars
        ax.set_title(suite)
        ax.set_ylabel("Spearman x100")
        # The whole 0-100 scale on every panel, so a score of 20 looks as low as it is.
        lowest = np.nanmin([_score(m[rows], key, suite, name) for m in models for rows, key, name in bars] + [0.0])
        ax.set_ylim(min(0.0, lowest - 5), 100)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(axis="y", color="0.85", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.axhline(0, color="black", linewidth=0.5)
        if row == 0:
            ax.legend(fontsize="small")
    labels = {m["id"]: _column_name(m) for m in models}
    for col, (name, (predicted, gold)) in enumerate(scatter.items()):
        ax = fig.add_subplot(grid[n_rows - 1, col])
        ax.scatter(gold, predicted, s=4, alpha=0.4)
        ax.set_title(f"{labels.get(name, name)}: STS-B en test (Spearman {100 * spearman(predicted, gold):.1f})",
                     fontsize="small")
        ax.set_xlabel("gold score")
        ax.set_ylabel("cosine similarity")
    return fig


def _column_name(model: dict) -> str:
    # Folder paths shortened to their last part; hub ids and names kept; untrained checkpoints say so.
    name = model["id"]
    name = Path(name).name if name.startswith((".", "/", "~")) else name
    untrained = model.get("config", {}).get("metadata", {}).get("trained") is False
    return name + (" (untrained)" if untrained else "")


def _score(rows: list[dict], key: str, suite: str, name: str) -> float:
    """The row's Spearman x100; NaN when the row is absent or has no score (null in results.json)."""
    for r in rows:
        if r["suite"] == suite and r[key] == name and r["spearman"] is not None:
            return r["spearman"]
    return float("nan")


def _value(rows: list[dict], key: str, suite: str, name: str) -> str:
    score = _score(rows, key, suite, name)
    return "-" if np.isnan(score) else f"{score:.2f}"


