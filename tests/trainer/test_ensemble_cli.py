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


def test_help_texts_are_plain_and_complete(capsys):
    import pytest

    from trainer.cli.ensemble import main as ensemble_main
    from trainer.cli.evaluate import build_parser as eval_parser

    with pytest.raises(SystemExit) as exit_info:
        ensemble_main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and "deep-ensemble checkpoint" in text
    device = next(a for a in eval_parser()._actions if "--device" in a.option_strings)
    assert device.help and "cpu" in device.help


def test_ensemble_cli_weights(members, tmp_path, capsys):
    from trainer.cli.ensemble import main

    out = tmp_path / "weighted.pt"
    main([str(p) for p in members] + ["--out", str(out), "--weights", "1,1,3"])
    np_weights = load_checkpoint(out).spectrum_weights
    assert list(np_weights) == pytest.approx([0.2, 0.2, 0.6])
    for bad in ("1,2", "1,0,1", "a,b,c"):
        with pytest.raises(SystemExit):
            main([str(p) for p in members] + ["--out", str(out), "--weights", bad])
        assert "--weights" in capsys.readouterr().err
