import dataclasses

import pytest
import yaml

from model_core.config import EnergyGrid, GraphConfig, ModelConfig, apply_overrides, from_dict, load_yaml, to_dict


def test_round_trip_through_dict():
    config = ModelConfig(scalar_channels=8, readout_hidden=(32, 16), grid=EnergyGrid(-10, 100, 221))
    assert from_dict(ModelConfig, to_dict(config)) == config


def test_overrides_are_typed_and_return_new_objects():
    config = ModelConfig()
    changed = apply_overrides(config, ["num_blocks=2", "grid.n_points=11", "use_gate=false",
                                       "readout_hidden=[8, 4]"])
    assert changed.num_blocks == 2 and changed.grid.n_points == 11
    assert changed.use_gate is False and changed.readout_hidden == (8, 4)
    assert config.num_blocks == 4  # unchanged original
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.num_blocks = 3  # type: ignore[misc]


def test_unknown_keys_and_bad_choices_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        apply_overrides(ModelConfig(), ["no_such_field=1"])
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="max")
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump({"r_crop": 7.5}))
    assert load_yaml(GraphConfig, path).r_crop == 7.5


def test_energy_grid():
    grid = EnergyGrid(-10.0, 100.0, 221)
    assert grid.energy_ev[0] == -10.0 and grid.energy_ev[-1] == 100.0
    assert grid.step_ev == pytest.approx(0.5)
