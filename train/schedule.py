"""A recipe's schedule of phases as one resumable command (`pixelrep train default`).

Each phase (pixelrep.train.config.Phase) is one run of the recipe's stage with a few fields changed,
trained into runs/<phase name>/ and started from an earlier phase's best/ or final/. Running the
schedule again continues it: finished phases (their final/ exists) are skipped, the phase in progress
resumes from its latest checkpoint (exact resume), later phases start when their input exists.
"""
from __future__ import annotations

import os
from pathlib import Path

from pixelrep.train.config import Phase, StageConfig, apply_overrides


def phase_stage(stage: StageConfig, phase: Phase, data: dict, root: Path, overrides: list[str]) -> StageConfig:
    """The stage one phase trains: the recipe's stage, the phase's changes, then the command's --set."""
    return apply_overrides(stage, phase.overrides(data, runs=str(root)) + list(overrides))


def phase_range(phases: tuple[Phase, ...], start: str | None = None, until: str | None = None) -> tuple[int, int]:
    """Indices [first, last) of the phases from `start` up to and including `until` (None: the ends)."""
    names = [p.name for p in phases]
    for option, name in (("--from", start), ("--until", until)):
        if name is not None and name not in names:
            raise ValueError(f"{option} {name!r} is no phase of this schedule; its phases: {', '.join(names)}")
    first, last = names.index(start) if start else 0, names.index(until) + 1 if until else len(phases)
    if first >= last:
        raise ValueError(f"--from {start!r} comes after --until {until!r}")
    return first, last


def run_schedule(stage: StageConfig, phases: tuple[Phase, ...], data: dict, *, root: str | os.PathLike = "runs",
                 overrides: list[str] = (), start: str | None = None, until: str | None = None,
                 train_kwargs: dict | None = None) -> list:
    """Train the phases in order (from `start`, up to and including `until`) under `root`; returns each trained phase's
    TrainResult (skipped phases give none). `train_kwargs` go to pixelrep.train.loop.train (stop_after, device...);
    a phase stopped early (Ctrl-C, a time budget) ends the schedule there, to be continued by the next call."""
    from pixelrep.train.loop import train

    first, last = phase_range(phases, start, until)
    root = Path(root)
    results = []
    for phase in phases[first:last]:
        out = root / phase.name
        if (out / "final").is_dir():
            continue
        if phase.init and not (root / phase.init).is_dir():
            raise FileNotFoundError(f"phase {phase.name!r} starts from {root / phase.init}, which does not exist")
        result = train(phase_stage(stage, phase, data, root, list(overrides)), out, resume=True, **(train_kwargs or {}))
        results.append(result)
        if not (out / "final").is_dir():   # stopped before its last step: continue with the next call
            break
    return results
