"""xanes-ensemble joins trained checkpoints into one."""

import pytest

from model_core.checkpoint import load_checkpoint

from tests.model_core.helpers import tiny_checkpoint


@pytest.fixture()
def members(tmp_path):
    return [tiny_checkpoint(tmp_path / f"m{k}.pt", seed=k) for k in range(3)]


def test_ensemble_cli(members, tmp_path, capsys):
    from trainer.cli.ensemble import main

    out = tmp_path / "ens.pt"
    main([str(p) for p in members] + ["--out", str(out)])
    assert "ensemble of 3 members" in capsys.readouterr().out
    assert len(load_checkpoint(out).state_dicts) == 3
    with pytest.raises(SystemExit):
        main([str(members[0]), str(tmp_path / "missing.pt"), "--out", str(out)])
    assert "missing.pt" in capsys.readouterr().err
