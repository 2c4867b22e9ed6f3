"""Training configurations: every shipped preset loads; bad values are refused at load
with the dotted field named."""

from pathlib import Path

import pytest
import yaml

from model_core.config import ConfigError
from trainer.config import SCHEDULES, load_train_config

ALL_PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
# Inverse-model presets (configs/*-inverse-*.yaml) are read by trainer.inverse.train.
INVERSE_PRESETS = [p for p in ALL_PRESETS if "-inverse-" in p.stem]
PRESETS = [p for p in ALL_PRESETS if p not in INVERSE_PRESETS]


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_loads(path):
    config = load_train_config(path)
    assert config.optim.schedule in SCHEDULES
    assert config.model.grid.n_points > 1 and config.data.element in ("Cu", "Fe")
    assert config.model.r_max == config.graph.r_max


@pytest.mark.parametrize("path", INVERSE_PRESETS, ids=[p.stem for p in INVERSE_PRESETS])
def test_inverse_preset_loads(path):
    from trainer.inverse.train import load_config

    assert load_config(path).data is not None


def _write(tmp_path, data) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("data, overrides, message", [
    ({"optim": {"schedule": "cosin"}}, [], r"^optim\.schedule: 'cosin' is not one of 'plateau', 'cosine', 'cosine_time'$"),
    ({}, ["optim.schedule=linear"], r"^optim\.schedule: 'linear' is not one of"),
    ({"data": {"normalization": "edgestep"}}, [], r"^data\.normalization: 'edgestep' is not one of 'none', 'feff'"),
    ({"model": {"pooling": "max"}}, [], r"^model\.pooling: 'max' is not one of 'attention', 'mean'$"),
    ({}, ["model.output=spline"], r"^model\.output: 'spline' is not one of"),
    ({"optim": {"lrr": 1.0}}, [], r"^optim\.lrr: unknown OptimConfig key"),
    ({}, ["optim.lr=fast"], r"^optim\.lr: "),
])
def test_bad_values_name_the_field(tmp_path, data, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(_write(tmp_path, data), overrides)


def test_one_source_for_r_max(tmp_path):
    # model.r_max follows graph.r_max, from the file or an override ...
    assert load_train_config(_write(tmp_path, {"graph": {"r_max": 4.0}})).model.r_max == 4.0
    assert load_train_config(_write(tmp_path, {}), ["graph.r_max=4.5"]).model.r_max == 4.5
    agreed = load_train_config(_write(tmp_path, {"graph": {"r_max": 4.0}, "model": {"r_max": 4.0}}))
    assert agreed.model.r_max == 4.0
    # ... and one given as well must agree with it.
    with pytest.raises(ConfigError, match=r"model\.r_max: 5 Å .*graph\.r_max: 4 Å"):
        load_train_config(_write(tmp_path, {"graph": {"r_max": 4.0}, "model": {"r_max": 5.0}}))
    with pytest.raises(ConfigError, match=r"model\.r_max: 3 Å"):
        load_train_config(_write(tmp_path, {}), ["model.r_max=3"])


def test_legacy_scalar_only_in_yaml_and_overrides(tmp_path):
    assert load_train_config(_write(tmp_path, {"model": {"scalar_only": True}})).model.l_max == 0
    assert load_train_config(_write(tmp_path, {}), ["model.scalar_only=true"]).model.l_max == 0


def test_train_cli_refuses_a_bad_name_in_one_line(tmp_path, capsys):
    from trainer.cli.train import main

    path = _write(tmp_path, {"data": {"source": str(tmp_path)}})
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--set", "optim.schedule=cosin"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("optim.schedule: 'cosin' is not one of 'plateau', 'cosine', 'cosine_time'") and "\n" not in err
