"""Reading a run folder, what `train()` writes: the resolved config, the log, the saved models' steps.

Scripts and reports read runs through this, not through raw JSON keys, so that keys renamed since a
run was written (align.lm, the run controls) still read, and the file names live in one place.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pixelrep.train.config import StageConfig, from_dict

CONFIG_FILE = "config.json"   # the resolved stage
LOG_FILE = "log.jsonl"        # one record per log step and per dev evaluation


@dataclass
class RunFolder:
    """A run folder read back: `stage` as trained, `log` its records in order."""

    path: Path
    stage: StageConfig
    log: list[dict]

    def dev_curve(self) -> list[tuple[int, float]]:
        """(step, dev Spearman x100) of every dev evaluation, step 0 (before training) included."""
        return [(r["step"], r["dev_spearman"]) for r in self.log if "dev_spearman" in r]

    def model_step(self, name: str = "best") -> int | None:
        """The step at which best/ (or final/) was saved, from its metadata; None when absent."""
        from pixelrep.pretrained import read_config

        folder = self.path / name
        return read_config(folder).get("metadata", {}).get("step") if (folder / CONFIG_FILE).is_file() else None


def read_run(folder: str | os.PathLike) -> RunFolder:
    """The run in `folder` (a FileNotFoundError names the file when it is not a run folder)."""
    folder = Path(folder)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing: {folder} is not a training run folder")
    log_file = folder / LOG_FILE
    log = [json.loads(line) for line in log_file.read_text().splitlines()] if log_file.is_file() else []
    return RunFolder(folder, from_dict(json.loads(config.read_text(encoding="utf-8"))), log)
