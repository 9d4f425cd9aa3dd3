"""Stage configs: shipped configs load, overrides are typed and reject unknown keys, JSON round trip."""
import dataclasses
import json

import pytest

from pixelrep.config import ModelConfig
from pixelrep.train.config import (DataConfig, StageConfig, apply_overrides, available_configs, from_dict,
                                   load_stage, save_json, to_dict)

STAGES = ["leapfrog", "multilingual", "reasoning", "smoke", "topical", "visual"]


def test_every_stage_config_loads_and_names_its_input():
    assert set(STAGES) <= set(available_configs())
    chain = {name: load_stage(name) for name in STAGES}
    assert chain["visual"].init_from is None and chain["visual"].model is not None
    assert chain["topical"].init_from == "runs/visual/best"
    assert chain["reasoning"].init_from == "runs/topical/best"
    assert chain["multilingual"].init_from == "runs/reasoning/best"
    assert chain["leapfrog"].init_from == "runs/multilingual/best"
    lf = chain["leapfrog"]
    assert lf.data.pairs == "reasoning" and lf.leapfrog_with.pairs == "multilingual" and lf.leapfrog_every > 0
    assert chain["smoke"].model.width == ModelConfig.from_preset("tiny").width


def test_overrides_are_typed():
    stage = apply_overrides(load_stage("smoke"), [
        "optim.lr=3e-5", "optim.max_steps=7", "optim.betas=0.8,0.9", "compile=true", "run.workers=3", "dev=none",
        "data.columns.premise=sentence_a", "data.split=train[:100]", "model=small", "head.kind=none"])
    assert stage.optim.lr == 3e-5 and stage.optim.max_steps == 7 and stage.optim.betas == (0.8, 0.9)
    # compile and workers are run controls (stage.run); their old top-level names still work.
    assert stage.run.compile is True and stage.run.workers == 3 and stage.dev is None
    assert stage.data.columns == {"premise": "sentence_a"} and stage.data.split == "train[:100]"
    assert stage.model.width == ModelConfig.from_preset("small").width and stage.model.max_patches == 32
    assert stage.head.kind == "none"
    # The original is untouched (frozen dataclasses are copied).
    assert load_stage("smoke").optim.lr != 3e-5


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'; known keys of optim: lr, weight_decay"),
    ("optimm.lr=1", "unknown config key 'optimm'; known top-level keys: name, data"),
    ("data.columns.premis=x", "data.columns has unknown keys ['premis'] for pairs='reasoning'; known: premise"),
    ("optim.lr=fast", "cannot set optim.lr='fast'"),
    ("run.compile=maybe", "cannot set run.compile='maybe'"),
    ("optim.schedule=step", "optim.schedule='step': use one of cosine, linear, constant"),
    ("align.token_weight=1", "config key 'align' is None in this stage"),
    ("optim.lr", "is not of the form key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ValueError) as e:
        apply_overrides(load_stage("smoke"), [override])
    assert message in str(e.value)


def test_nested_dataclass_from_json_override():
    stage = apply_overrides(load_stage("reasoning"),
                            ['leapfrog_with={"sources": ["a.tsv"], "pairs": "multilingual"}', "leapfrog_every=5"])
    assert stage.leapfrog_with == DataConfig(sources=("a.tsv",), pairs="multilingual")


def test_unknown_config_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config 'smok'; choose from .*leapfrog, multilingual, reasoning, "
                                         r"smoke, topical, visual or give a .py path"):
        load_stage("smok")
    path = tmp_path / "mine.py"
    path.write_text("from pixelrep.train.configs.smoke import get_config as base\n"
                    "import dataclasses\n"
                    "def get_config():\n    return dataclasses.replace(base(), name='mine')\n")
    assert load_stage(str(path)).name == "mine"


def test_json_round_trip(tmp_path):
    stage = apply_overrides(load_stage("leapfrog"), ['align={"token_weight": 0.5}'])
    save_json(stage, tmp_path / "config.json")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["optim"]["batch_size"] == stage.optim.batch_size and data["align"]["token_weight"] == 0.5
    assert from_dict(data) == stage
    assert to_dict(from_dict(data)) == data
    # A run folder written before run controls were grouped (and before align.lm was align.teacher) loads.
    old = {k: v for k, v in data.items() if k != "run"} | data["run"]
    old["align"] = {("lm" if k == "teacher" else k): v for k, v in data["align"].items()}
    assert "workers" in old and "lm" in old["align"] and from_dict(old) == stage


def test_stage_validation():
    smoke = load_stage("smoke")
    with pytest.raises(ValueError, match="needs model and render configs"):
        dataclasses.replace(smoke, model=None)
    with pytest.raises(ValueError, match="leapfrog needs both"):
        dataclasses.replace(smoke, leapfrog_every=10)
    with pytest.raises(ValueError, match="visual pairs need a perturbed view"):
        DataConfig(sources="x.jsonl", pairs="visual")
    with pytest.raises(ValueError, match="not divisible by optim.grad_accum"):
        apply_overrides(smoke, ["optim.grad_accum=5"])
    with pytest.raises(ValueError, match="some loss must remain"):
        dataclasses.replace(smoke, contrastive_weight=0.0)   # no align: nothing would train
    assert isinstance(smoke, StageConfig) and smoke.data.sources == (smoke.data.sources[0],)
