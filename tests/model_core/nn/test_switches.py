"""Every ablation switch is real: changing it changes the network or its output.

The switches are found from the field types of :class:`ModelConfig` (every ``bool`` and
every ``Literal`` choice), so a switch added later is tested without editing this file
and one that the model silently ignores fails. Numeric switches that select a component
(``l_max``, ``avg_neighbors`` of sum aggregation) are listed explicitly, as are the
weights of the composite loss.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from model_core.config import ModelConfig, from_dict, to_dict
from model_core.nn import XANE3

from .graphs import TINY, batch_of, random_graph


def _switch_cases() -> dict[str, dict]:
    """Overrides of TINY: each bool flipped, each other Literal value taken."""
    hints = typing.get_type_hints(ModelConfig)
    cases: dict[str, dict] = {}
    for f in dataclasses.fields(ModelConfig):
        tp, default = hints[f.name], getattr(TINY, f.name)
        if tp is bool:
            cases[f"{f.name}={not default}"] = {f.name: not default}
        elif typing.get_origin(tp) is typing.Literal:
            for value in typing.get_args(tp):
                if value != default:
                    cases[f"{f.name}={value}"] = {f.name: value}
    cases["l_max=1"] = {"l_max": 1}
    cases["l_max=0"] = {"l_max": 0}
    return cases


#: Switches that change how the network trains, not what it computes: each has its own test.
TRAINING_SWITCHES = {"e0_backprop"}
SWITCHES = {key: value for key, value in _switch_cases().items()
            if key.split("=")[0] not in TRAINING_SWITCHES}


def _network(config: ModelConfig) -> tuple[XANE3, dict]:
    torch.manual_seed(0)
    model = XANE3(config).double().eval()
    if config.mean_offset:
        # The offset is the training mean (filled by the trainer); any non-zero one will do.
        model.set_offset_spectrum(torch.linspace(0.0, 1.0, config.grid.n_points))
    graphs = [random_graph(1, 9), random_graph(2, 6), random_graph(3, 12)]
    with torch.no_grad():
        return model, model(batch_of(graphs))


def _structure(model: XANE3) -> dict[str, tuple[int, ...]]:
    return {name: tuple(value.shape) for name, value in model.state_dict().items()}


@pytest.fixture(scope="module")
def default():
    return _network(TINY)


def test_every_switch_has_a_case():
    assert TRAINING_SWITCHES <= {f.name for f in dataclasses.fields(ModelConfig)}
    expected = {"use_layer_norm", "use_gate", "use_gated_residual", "radial_normalize", "use_background",
                "e0_head", "mean_offset", "pooling", "output", "aggregation", "radial_basis", "tensor_product"}
    assert expected <= {key.split("=")[0] for key in SWITCHES}


@pytest.mark.parametrize("overrides", list(SWITCHES.values()), ids=list(SWITCHES))
def test_switch_changes_the_network_or_its_output(overrides, default):
    base_model, base_out = default
    model, out = _network(dataclasses.replace(TINY, **overrides))
    if _structure(model) != _structure(base_model):
        return  # other parameters or buffers: a different network
    assert (out["e0"] is None) == (base_out["e0"] is None)
    assert not torch.allclose(out["mu"], base_out["mu"], rtol=1e-6, atol=1e-8), \
        f"{overrides} builds the default network and predicts the same spectra"


def test_avg_neighbors_scales_summed_messages():
    summed = dataclasses.replace(TINY, aggregation="sum", avg_neighbors=4.0)
    _, a = _network(summed)
    _, b = _network(dataclasses.replace(summed, avg_neighbors=8.0))
    assert not torch.allclose(a["mu"], b["mu"])


def test_legacy_scalar_only_is_l_max_0():
    """``scalar_only: true`` built the l_max=0 network; old files map onto it."""
    data = {**to_dict(TINY), "scalar_only": True}
    assert from_dict(ModelConfig, data) == dataclasses.replace(TINY, l_max=0)
    assert from_dict(ModelConfig, {**to_dict(TINY), "scalar_only": False}) == TINY


@pytest.mark.parametrize("field", ["lambda_d1", "lambda_d2", "lambda_e0"])
def test_loss_weights_change_the_loss(field):
    from trainer.config import LossConfig
    from trainer.loss import composite_loss

    gen = torch.Generator().manual_seed(0)
    pred, true = torch.rand(4, 41, generator=gen), torch.rand(4, 41, generator=gen)
    pred_e0, true_e0 = torch.rand(4, generator=gen), torch.rand(4, generator=gen)
    base = LossConfig(ramp_start_epoch=0, ramp_epochs=1)
    loss, _ = composite_loss(pred, true, 1.0, 5, base, pred_e0, true_e0)
    off, _ = composite_loss(pred, true, 1.0, 5, dataclasses.replace(base, **{field: 0.0}), pred_e0, true_e0)
    assert float(off) < float(loss)


@pytest.mark.parametrize("backprop", [False, True])
def test_e0_backprop_decides_whether_the_e0_loss_trains_the_backbone(backprop):
    torch.manual_seed(0)
    model = XANE3(dataclasses.replace(TINY, e0_backprop=backprop)).double().train()
    model(batch_of([random_graph(1, 9), random_graph(2, 6)]))["e0"].sum().backward()
    reached = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.blocks.parameters())
    assert reached == backprop
    assert any(p.grad is not None for p in model.e0_head.parameters())
