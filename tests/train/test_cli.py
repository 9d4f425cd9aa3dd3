"""`pixelrep train` on the command line: typos fail with the key named, overrides resolve, Ctrl-C
checkpoints and exits 130, output is strict JSON."""
import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from pixelrep.cli import main
from pixelrep.train import loop
from tests.train.helpers import tiny_stage, write_pairs


def test_config_typo_fails_naming_the_key(capsys):
    assert main(["train", "smoke", "--set", "optim.lrr=1e-4"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.lrr'; known keys of optim: lr, weight_decay, betas" in err
    assert main(["train", "smokee"]) == 2
    err = capsys.readouterr().err
    assert "unknown config 'smokee'; choose from " in err and "smoke, topical, visual or give a .py path" in err


def test_print_config_shows_the_resolved_overrides(capsys):
    assert main(["train", "reasoning", "--set", "optim.lr=1e-4", "data.split=train[:100]", "--set", "seed=7",
                 "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["optim"]["lr"] == 1e-4 and config["data"]["split"] == "train[:100]" and config["seed"] == 7
    assert config["init_from"] == "runs/topical/best" and config["data"]["pairs"] == "reasoning"


def _strict(text: str):
    """json.loads that refuses NaN / Infinity, which are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


def _ctrl_c_at(monkeypatch, at_step: int, times: int = 1):
    """Send Ctrl-C (SIGINT) to this process `times` times while step `at_step` (0-based) runs.

    raise_signal, not os.kill: kill may deliver the signal to another thread (torch's, a loader's), and
    Python then runs the handler later, so on a busy machine two Ctrl-Cs could merge into one (the run
    then stopped at step 4, not 2). raise_signal delivers to this thread and runs the handler before
    it returns: each Ctrl-C is handled, in order, whatever the load."""
    real = loop.lr_at

    def lr_at(step, optim):
        if step == at_step:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(step, optim)
    monkeypatch.setattr(loop, "lr_at", lr_at)
    return real


def test_ctrl_c_checkpoints_the_step_and_resume_finishes_the_same_run(tmp_path, monkeypatch, capsys):
    stage = tiny_stage(write_pairs(tmp_path / "pairs.jsonl"))
    monkeypatch.setattr("pixelrep.train.config.load_stage", lambda name, **_: stage)
    argv = ["train", "tiny", "--output-dir", str(tmp_path / "run")]
    real_lr_at = _ctrl_c_at(monkeypatch, at_step=3)
    assert main(argv) == 130
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "pixelrep train: interrupted at step 4; resume with --resume"
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-00000004"

    monkeypatch.setattr(loop, "lr_at", real_lr_at)
    assert main(argv + ["--resume"]) == 0
    assert _strict(capsys.readouterr().out)["step"] == 8
    full = loop.train(stage, tmp_path / "full", show_progress=False)
    a, b = (load_file(str(tmp_path / run / "final" / "model.safetensors")) for run in ("run", "full"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert full.step == 8

    # Resuming the finished run trains nothing: the summary has no loss (null, not NaN).
    assert main(argv + ["--resume"]) == 0
    summary = _strict(capsys.readouterr().out)
    assert summary["step"] == 8 and summary["loss"] is None


@pytest.mark.parametrize("started_with", [signal.default_int_handler, signal.SIG_IGN],
                         ids=["interactive", "sigint-ignored"])
def test_second_ctrl_c_stops_at_once_keeping_the_last_checkpoint(tmp_path, monkeypatch, capsys, started_with):
    """Also when the process started with SIGINT ignored, as a script's background job does (`cmd &`):
    the second Ctrl-C (kill -INT) still interrupts, and the handler from before is back afterwards."""
    stage = tiny_stage(write_pairs(tmp_path / "pairs.jsonl"), checkpoint_every=2)
    monkeypatch.setattr("pixelrep.train.config.load_stage", lambda name, **_: stage)
    _ctrl_c_at(monkeypatch, at_step=3, times=2)
    before = signal.signal(signal.SIGINT, started_with)
    try:
        assert main(["train", "tiny", "--output-dir", str(tmp_path / "run")]) == 130
        assert signal.getsignal(signal.SIGINT) is started_with
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "pixelrep train: interrupted at step 2; resume with --resume"


def test_logs_and_checkpoints_are_strict_json_when_the_loss_is_nan(tmp_path, monkeypatch, capsys):
    stage = tiny_stage(write_pairs(tmp_path / "pairs.jsonl"))
    monkeypatch.setattr(loop, "info_nce", lambda a, b, *rest: (a.sum() + b.sum()) * float("nan"))
    monkeypatch.setattr("pixelrep.train.config.load_stage", lambda name, **_: stage)
    assert main(["train", "tiny", "--output-dir", str(tmp_path / "run")]) == 0
    assert _strict(capsys.readouterr().out)["loss"] is None
    records = [_strict(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records and all(r["loss"] is None and r["grad_norm"] is None for r in records)
    _strict((tmp_path / "run" / "checkpoints" / "step-00000008" / "state.json").read_text())


def test_stop_after_seconds_ends_the_run_early_and_says_so(tmp_path, monkeypatch, capsys):
    stage = tiny_stage(write_pairs(tmp_path / "pairs.jsonl"))
    monkeypatch.setattr("pixelrep.train.config.load_stage", lambda name, **_: stage)
    assert main(["train", "tiny", "--output-dir", str(tmp_path / "run"), "--stop-after-seconds", "0"]) == 0
    summary = _strict(capsys.readouterr().out)
    assert summary["step"] == 1 and summary["out_of_time"] is True
