"""End-to-end trainer checks on a tiny synthetic FEFF-layout dataset."""

import json

import numpy as np
import pytest
import yaml

from model_core.checkpoint import load_checkpoint
from model_core.config import to_dict
from trainer.config import load_train_config
from trainer.train import train

from tests.model_core.helpers import TINY_GRAPH, TINY_MODEL
from tests.trainer.data.synthetic import write_feff_material


@pytest.fixture()
def config_path(tmp_path):
    data = tmp_path / "data"
    for k in range(6):
        write_feff_material(data, material=f"mp-{k}", sites=(0, 1))
    model = to_dict(TINY_MODEL)
    model["grid"] = {"e_min_ev": -10.0, "e_max_ev": 60.0, "n_points": 71}
    del model["r_max"]  # taken from graph.r_max
    config = {
        "name": "tiny", "output_dir": str(tmp_path / "runs"),
        "data": {"source": str(data), "element": "Cu", "normalization": "feff", "val_fraction": 0.34,
                 "cache_dir": str(tmp_path / "cache")},
        "graph": to_dict(TINY_GRAPH), "model": model,
        "loss": {"ramp_start_epoch": 1, "ramp_epochs": 1},
        "optim": {"epochs": 2, "batch_size": 4, "lr": 1e-3},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_writes_checkpoints_and_resumes(config_path):
    config = load_train_config(config_path)
    best = train(config, log=lambda *_: None)
    checkpoint = load_checkpoint(best)
    assert checkpoint.trained and checkpoint.element == "Cu"
    assert checkpoint.train_mean_spectrum.shape == (71,)
    assert "validation" in checkpoint.metrics and np.isfinite(checkpoint.metrics["validation"]["eta"])
    run_dir = config.run_dir
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    # Resume with more epochs continues at epoch 2 instead of starting over.
    longer = load_train_config(config_path, ["optim.epochs=3"])
    train(longer, resume=True, log=lambda *_: None)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2]


def test_cosine_schedule_reaches_min_lr_on_the_last_epoch(config_path):
    config = load_train_config(config_path, ["optim.schedule=cosine", "optim.epochs=3", "optim.min_lr=1e-5"])
    train(config, log=lambda *_: None)
    rates = [json.loads(line)["lr"] for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[0] > rates[1] > rates[2]
    with pytest.raises(ValueError, match="schedule"):
        train(load_train_config(config_path, ["optim.schedule=linear"]), log=lambda *_: None)


def test_overrides_reach_the_model(config_path):
    config = load_train_config(config_path, ["model.pooling=mean", "model.use_layer_norm=false"])
    assert config.model.pooling == "mean" and config.model.use_layer_norm is False


def test_eval_cli_json(config_path, tmp_path, capsys):
    from trainer.cli.evaluate import main as eval_main

    config = load_train_config(config_path)
    best = train(config, log=lambda *_: None)
    eval_main(["--model", str(best), "--data", config.data.source, "--json",
               "--out-dir", str(tmp_path / "eval")])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"mse", "median_mse", "d1_mse", "d2_mse", "eta"} <= set(payload)
    assert payload["eta_ci90_low"] <= payload["eta"] <= payload["eta_ci90_high"]
    assert (tmp_path / "eval" / "per_spectrum.csv").is_file()
    assert (tmp_path / "eval" / "examples.png").stat().st_size > 1000


def test_fine_tune_from_a_checkpoint_keeps_its_architecture(config_path, tmp_path):
    config = load_train_config(config_path)
    first = train(config, log=lambda *_: None)
    # A different model size in the config is overridden by the initial checkpoint's.
    tuned = load_train_config(config_path, ["name=tuned", "model.num_blocks=1", "optim.epochs=1"])
    best = train(tuned, init=str(first), log=lambda *_: None)
    checkpoint = load_checkpoint(best)
    assert checkpoint.model_config == load_checkpoint(first).model_config
    assert checkpoint.provenance["init"] == str(first)


def test_weight_average_is_what_is_validated_and_saved(config_path):
    """With optim.ema_decay the checkpoints hold the averaged weights (not the last step's),
    and resuming restores the average."""
    import torch

    config = load_train_config(config_path, ["optim.ema_decay=0.5", "optim.epochs=1"])
    train(config, log=lambda *_: None)
    state = torch.load(config.run_dir / "train_state.pt", weights_only=True)
    last = load_checkpoint(config.run_dir / "last.pt").state_dict
    averaged = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    assert averaged.keys() == last.keys()
    assert all(torch.equal(last[k], averaged[k]) for k in last)
    assert any(not torch.equal(last[k], state["model"][k]) for k in last if last[k].is_floating_point())
    longer = load_train_config(config_path, ["optim.ema_decay=0.5", "optim.epochs=2"])
    train(longer, resume=True, log=lambda *_: None)
    resumed = torch.load(config.run_dir / "train_state.pt", weights_only=True)
    assert int(resumed["ema"]["n_averaged"]) > int(state["ema"]["n_averaged"])


def test_ema_warmup_forgets_the_initial_weights_quickly():
    import torch

    from trainer.schedules import ema_with_warmup

    update = ema_with_warmup(0.999)
    averaged = [torch.zeros(3)]
    for n in range(50):
        update(averaged, [torch.ones(3)], torch.tensor(n))
    # A plain 0.999 average would still be ~95% initial weights after 50 steps.
    assert float(averaged[0][0]) > 0.9


def test_extra_training_ids_never_share_a_material_with_validation(config_path):
    from trainer.splits import split_indices

    ids = ["a_000", "a_001", "b_000", "c_000", "c_001", "d_000"]
    groups = [i.split("_")[0] for i in ids]
    splits = {"train": ["a_000", "b_000"], "val": ["c_000"], "unscreened": ["c_001", "a_001", "d_000"]}
    config = load_train_config(config_path, ["data.train_ids=train", "data.val_ids=val",
                                             "data.extra_train_ids=[unscreened]"])
    train, val = split_indices(config, ids, groups, splits)
    assert [ids[k] for k in val] == ["c_000"]
    assert [ids[k] for k in train] == ["a_000", "a_001", "b_000", "d_000"]  # c_001 is left out
    everything = load_train_config(config_path, ["data.val_ids=val"])
    train, _ = split_indices(everything, ids, groups, splits)
    assert "c_001" not in [ids[k] for k in train]


def test_resumed_run_equals_the_uninterrupted_one(config_path):
    """One epoch, then resume for a second: the same weights and losses as two epochs in
    one go (CPU, fixed seeds), and the epoch counter and optimizer state continue."""
    import torch

    from trainer.train import Trainer

    whole = load_train_config(config_path, ["name=whole"])
    train(whole, log=lambda *_: None)
    train(load_train_config(config_path, ["name=parts", "optim.epochs=1"]), log=lambda *_: None)
    first = torch.load(whole.run_dir.parent / "parts" / "train_state.pt", weights_only=True)
    trainer = Trainer(load_train_config(config_path, ["name=parts"]), log=lambda *_: None)
    assert trainer.resume() and trainer.start_epoch == 1
    steps = first["optimizer"]["state"][0]["step"]
    assert torch.equal(trainer.optimizer.state_dict()["state"][0]["step"], steps)
    trainer.run()

    def records(name):
        lines = (whole.run_dir.parent / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "epoch_s"} for line in lines]

    assert records("parts") == records("whole")
    resumed = torch.load(whole.run_dir.parent / "parts" / "train_state.pt", weights_only=True)
    uninterrupted = torch.load(whole.run_dir / "train_state.pt", weights_only=True)
    assert resumed["epoch"] == uninterrupted["epoch"] == 1
    assert float(resumed["optimizer"]["state"][0]["step"]) == 2 * float(steps)
    for key, value in uninterrupted["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def test_checkpoint_records_the_target_normalization(config_path):
    from model_core.spectra.normalize import TargetNormalization, target_normalization_from_record

    best = train(load_train_config(config_path, ["optim.epochs=1"]), log=lambda *_: None)
    record = load_checkpoint(best).normalization
    assert record["mode"] == "feff" and "FEFF" in record["description"]
    assert target_normalization_from_record(record) == TargetNormalization(mode="feff")
    # Checkpoints written before the settings were recorded give the defaults of their mode.
    assert target_normalization_from_record({"mode": "edge_step"}) == TargetNormalization()


def test_reporting_part_is_grouped_stable_and_never_selects():
    from trainer.splits import is_reporting_group, reporting_split

    groups = [f"mp-{k // 2}" for k in range(400)]  # two records per material
    select, report = reporting_split(np.arange(400), groups, 0.5)
    assert set(select).isdisjoint(report) and len(select) + len(report) == 400
    assert {groups[k] for k in select}.isdisjoint({groups[k] for k in report})
    assert 150 < len(report) < 250
    # A group's part depends on its name alone, not on which other records are present.
    sub_select, sub_report = reporting_split(np.arange(0, 400, 7), groups, 0.5)
    assert set(sub_report) == {k for k in range(0, 400, 7) if is_reporting_group(groups[k], 0.5)}
    assert set(sub_report) <= set(report) and set(sub_select) <= set(select)
    assert len(reporting_split(np.arange(10), groups, 0.0)[1]) == 0


def test_reporting_part_is_scored_once_after_training(config_path):
    config = load_train_config(config_path, ["data.val_fraction=0.67", "data.report_fraction=0.6",
                                             "model.e0_backprop=true", "loss.lambda_e0=0.1"])
    best = train(config, log=lambda *_: None)
    run_dir = config.run_dir
    val = set((run_dir / "val_ids.txt").read_text().split())
    report = set((run_dir / "report_ids.txt").read_text().split())
    assert val and report and val.isdisjoint(report)
    assert {i.rsplit("_", 1)[0] for i in val}.isdisjoint({i.rsplit("_", 1)[0] for i in report})
    metrics = json.loads((run_dir / "report_metrics.json").read_text())
    assert metrics["n"] == len(report) and np.isfinite(metrics["e0_mae_ev"])
    assert "e0_mae_ev" in load_checkpoint(best).metrics["validation"]
    assert all("val_eta" in json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())


def test_selecting_on_the_edge_energy_picks_the_best_e0_epoch(config_path, tmp_path):
    """optim.select_on=e0_mae_ev: best.pt is the epoch with the lowest E0 error (the way
    dedicated E0 members are chosen), here fine-tuned from member 1 of an ensemble."""
    from model_core.checkpoint import make_ensemble, save_checkpoint
    from model_core.config import ConfigError

    first = train(load_train_config(config_path), log=lambda *_: None)
    second = train(load_train_config(config_path, ["name=second", "optim.seed=1"]), log=lambda *_: None)
    ensemble = save_checkpoint(make_ensemble([load_checkpoint(first), load_checkpoint(second)]),
                               tmp_path / "ensemble.pt")
    config = load_train_config(config_path, ["name=e0", "optim.select_on=e0_mae_ev", "optim.epochs=3",
                                             "optim.lr=1e-2", "optim.early_stopping_patience=10"])
    best = train(config, init=str(ensemble), init_member=1, log=lambda *_: None)
    records = [json.loads(line) for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    errors = [r["val_e0_mae_ev"] for r in records]
    checkpoint = load_checkpoint(best)
    assert checkpoint.metrics["epoch"] == int(np.argmin(errors))
    assert checkpoint.provenance["init"].endswith("(member 1)")
    with pytest.raises(ConfigError, match="E0 head"):
        load_train_config(config_path, ["optim.select_on=e0_mae_ev", "model.e0_head=false"])


def test_fine_tuning_on_a_longer_crop_keeps_the_architecture(config_path):
    """--set graph.r_crop with --init: the crop is the data's, so the flag wins."""
    first = train(load_train_config(config_path), log=lambda *_: None)
    longer = load_train_config(config_path, ["name=longer", "optim.epochs=1", "graph.r_crop=6.5"])
    best = train(longer, init=str(first), graph_overrides=["graph.r_crop=6.5"], log=lambda *_: None)
    checkpoint = load_checkpoint(best)
    assert checkpoint.graph_config.r_crop == 6.5
    assert checkpoint.model_config == load_checkpoint(first).model_config
    plain = train(load_train_config(config_path, ["name=plain", "optim.epochs=1", "graph.r_crop=6.5"]),
                  init=str(first), log=lambda *_: None)
    assert load_checkpoint(plain).graph_config == load_checkpoint(first).graph_config


def test_cli_bad_init_is_one_line_and_writes_no_run(config_path, tmp_path, capsys):
    from trainer.cli.train import main

    with pytest.raises(SystemExit) as exc:
        main([str(config_path), "--init", str(tmp_path / "nosuch.pt")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch.pt" in err[0]
    assert not (tmp_path / "runs" / "tiny").exists()


def test_time_cosine_follows_the_elapsed_fraction_of_the_limit():
    import torch

    from trainer.config import OptimConfig
    from trainer.schedules import TimeCosine, make_scheduler, step_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = make_scheduler(optimizer, OptimConfig(lr=1e-3, schedule="cosine_time", time_limit_min=10,
                                                      min_lr=1e-5))
    assert isinstance(scheduler, TimeCosine)
    rates = []
    for elapsed_s in (0.0, 300.0, 600.0, 900.0):  # start, half way, the limit, past it
        step_scheduler(scheduler, float("nan"), False, elapsed_s)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3, 0.5 * (1e-3 + 1e-5), 1e-5, 1e-5])
    restored = TimeCosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=5e-4), 600.0, 1e-5)
    restored.load_state_dict(scheduler.state_dict())  # a resumed run keeps the first start's rate
    assert restored.base_lrs == [1e-3]


def test_time_cosine_needs_a_time_limit(config_path):
    from model_core.config import ConfigError

    with pytest.raises(ConfigError, match="time_limit_min"):
        load_train_config(config_path, ["optim.schedule=cosine_time"])
    config = load_train_config(config_path, ["optim.schedule=cosine_time", "optim.time_limit_min=30"])
    assert config.optim.schedule == "cosine_time"
