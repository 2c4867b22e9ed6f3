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


def test_bad_choices_name_the_field_and_the_allowed_values():
    from model_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"^pooling: 'max' is not one of 'attention', 'mean'$"):
        from_dict(ModelConfig, {"pooling": "max"})
    with pytest.raises(ConfigError, match=r"^aggregation: 'avg' is not one of 'mean', 'sum'"):
        apply_overrides(ModelConfig(), ["aggregation=avg"])
    with pytest.raises(ConfigError, match=r"^grid\.n_points: "):
        from_dict(ModelConfig, {"grid": {"n_points": "many"}})
    with pytest.raises(ConfigError, match=r"^grid\.bogus: unknown EnergyGrid key"):
        apply_overrides(ModelConfig(), ["grid.bogus=1"])
    with pytest.raises(ConfigError, match="l_max"):
        ModelConfig(l_max=3)


def test_model_cutoff_follows_the_graph_radius():
    from model_core.config import ConfigError, resolve_model_cutoff

    graph = GraphConfig(r_max=4.0)
    assert resolve_model_cutoff(ModelConfig(), graph, model_r_max_given=False).r_max == 4.0
    assert resolve_model_cutoff(ModelConfig(r_max=4.0), graph, model_r_max_given=True).r_max == 4.0
    with pytest.raises(ConfigError, match=r"model\.r_max: 5 Å .* disagrees with graph\.r_max: 4 Å"):
        resolve_model_cutoff(ModelConfig(r_max=5.0), graph, model_r_max_given=True)


def test_old_checkpoints_with_two_cutoffs_and_scalar_only_still_load():
    """The golden tiny checkpoints store model r_max 5 with graph r_max 4; the shipped Cu
    model stores scalar_only: both load as they were trained."""
    from pathlib import Path

    from model_core.checkpoint import load_checkpoint

    root = Path(__file__).resolve().parents[2]
    tiny = load_checkpoint(root / "tests" / "data" / "golden" / "tiny_format1.pt")
    assert (tiny.model_config.r_max, tiny.graph_config.r_max) == (5.0, 4.0)
    cu = load_checkpoint(root / "resources" / "models" / "cu-k-feff" / "model.pt")
    assert cu.model_config.l_max == 0
