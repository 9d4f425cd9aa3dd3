"""`pixelrep train` on the command line: typos fail with the key named, overrides resolve."""
import json

from pixelrep.cli import main


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
