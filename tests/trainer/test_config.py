"""Every shipped training preset loads and names a known schedule."""

from pathlib import Path

import pytest

from trainer.config import load_train_config
from trainer.config import SCHEDULES

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_loads(path):
    config = load_train_config(path)
    assert config.optim.schedule in SCHEDULES
    assert config.model.grid.n_points > 1 and config.data.element in ("Cu", "Fe")
