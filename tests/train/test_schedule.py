"""A schedule of phases runs as one resumable command."""
from __future__ import annotations

import json

import pytest

from pixelrep.train.config import Phase
from pixelrep.train.schedule import run_schedule
from tests.train.helpers import tiny_stage, write_pairs


def test_a_schedule_trains_its_phases_in_order_and_continues_where_it_stopped(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    stage = tiny_stage(data)
    phases = (Phase("first", max_steps=4),
              Phase("second", init="first/final", max_steps=6, lr=1e-3, sets=("optim.warmup_steps=1",)))
    root = tmp_path / "runs"
    # Stopped 3 steps into each call: the first call ends inside phase one, the second finishes it and
    # stops inside phase two, the third finishes the schedule, the fourth has nothing left to do.
    calls = [run_schedule(stage, phases, {}, root=root, train_kwargs=dict(stop_after=3, show_progress=False))
             for _ in range(4)]
    assert [[r.step for r in c] for c in calls] == [[3], [4, 3], [6], []]
    second = json.loads((root / "second" / "config.json").read_text())
    assert second["init_from"] == str(root / "first" / "final") and second["optim"]["lr"] == 1e-3
    assert second["optim"]["warmup_steps"] == 1 and (root / "second" / "final").is_dir()
    with pytest.raises(ValueError, match="--until 'third' is no phase of this schedule; its phases: first, second"):
        run_schedule(stage, phases, {}, root=root, until="third")


def test_until_stops_after_the_named_phase_and_a_missing_input_is_named(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    phases = (Phase("first", max_steps=2), Phase("second", init="first/best", max_steps=2))
    root = tmp_path / "runs"
    done = run_schedule(tiny_stage(data), phases, {}, root=root, until="first", train_kwargs=dict(show_progress=False))
    assert [r.output_dir.name for r in done] == ["first"] and not (root / "second").exists()
    with pytest.raises(FileNotFoundError, match="phase 'second' starts from .*first/best, which does not exist"):
        run_schedule(tiny_stage(data), phases, {}, root=root)   # tiny_stage has no dev set: no best/
    # --from starts at a later phase once its input is there (here: the first phase's final/ as best/).
    (root / "first" / "final").rename(root / "first" / "best")
    done = run_schedule(tiny_stage(data), phases, {}, root=root, start="second", train_kwargs=dict(show_progress=False))
    assert [r.output_dir.name for r in done] == ["second"] and (root / "second" / "final").is_dir()


def test_a_phase_names_its_files_and_they_become_the_stage_it_trains(tmp_path):
    """Data file names resolve through the recipe's files, a tuple of files to all of them, in order."""
    from pixelrep.train.config import apply_overrides

    words, pairs = write_pairs(tmp_path / "words.jsonl"), write_pairs(tmp_path / "pairs.jsonl")
    more = write_pairs(tmp_path / "more.jsonl")
    phase = Phase("next", init="first/best", max_steps=5, sources=("words",), pair_sources=("pairs", "more"))
    sets = phase.overrides({"words": str(words), "pairs": (str(pairs),), "more": str(more)}, runs="R")
    assert sets[:3] == ["init_from=R/first/best", f"data.sources={words}", f"leapfrog_with.sources={pairs},{more}"]
    stage = tiny_stage(words)
    stage = apply_overrides(stage, ["leapfrog_every=2", "leapfrog_with={\"sources\": [\"x\"], \"pairs\": \"multilingual\"}"] + sets[1:])
    assert stage.data.sources == (str(words),) and stage.leapfrog_with.sources == (str(pairs), str(more))
