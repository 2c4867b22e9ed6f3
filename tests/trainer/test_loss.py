import numpy as np
import pytest
import torch

from trainer.config import LossConfig
from trainer.loss import composite_loss, derivative_ramp, eta_interval, spectrum_metrics


def test_ramp_starts_at_zero_and_reaches_one():
    config = LossConfig(ramp_start_epoch=20, ramp_epochs=15)
    assert derivative_ramp(0, config) == 0.0
    assert derivative_ramp(19, config) == 0.0
    assert 0.0 < derivative_ramp(20, config) < 1.0
    assert derivative_ramp(34, config) == 1.0
    assert derivative_ramp(100, config) == 1.0


def test_derivative_terms_penalise_wiggles_not_offsets():
    energy = torch.linspace(-10, 100, 221, dtype=torch.float64)
    true = torch.sigmoid(energy / 2).unsqueeze(0)
    offset = true + 0.01
    wiggle = true + 0.01 * torch.sin(energy * 3)
    config = LossConfig(ramp_start_epoch=0, ramp_epochs=0, lambda_e0=0)
    _, parts_offset = composite_loss(offset, true, 0.5, 5, config)
    _, parts_wiggle = composite_loss(wiggle, true, 0.5, 5, config)
    assert parts_offset["d1"] == pytest.approx(0.0, abs=1e-20)
    assert parts_wiggle["d1"] > 1e-5 and parts_wiggle["d2"] > 1e-5


def test_e0_term_ignores_unknown_targets():
    pred = torch.zeros(2, 5)
    config = LossConfig(lambda_e0=1.0)
    total, parts = composite_loss(pred, pred, 1.0, 0, config, torch.tensor([1.0, 5.0]),
                                  torch.tensor([0.0, float("nan")]))
    assert parts["e0_l1"] == pytest.approx(1.0)
    assert float(total) == pytest.approx(1.0)


def test_eta_is_ratio_of_median_errors():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(20, 10))
    mean = true.mean(axis=0)
    metrics = spectrum_metrics(true + 0.01, true, 0.5, mean)
    baseline = np.median(np.mean((mean - true) ** 2, axis=1))
    assert metrics["median_mse"] == pytest.approx(1e-4)
    assert metrics["eta"] == pytest.approx(baseline / 1e-4)


def test_robust_scale_tempers_the_worst_spectrum():
    true = torch.zeros(4, 8, dtype=torch.float64)
    pred = true.clone()
    pred[:3] += 0.01  # three spectra fit to 1e-4
    pred[3] += 1.0    # one the model cannot fit
    plain = LossConfig(ramp_start_epoch=0, ramp_epochs=0, lambda_e0=0)
    robust = LossConfig(ramp_start_epoch=0, ramp_epochs=0, lambda_e0=0, robust_scale=1e-3)
    plain_total, _ = composite_loss(pred.requires_grad_(), true, 0.5, 0, plain)
    (grad_plain,) = torch.autograd.grad(plain_total, pred)
    robust_total, parts = composite_loss(pred, true, 0.5, 0, robust)
    (grad_robust,) = torch.autograd.grad(robust_total, pred)
    plain_value, robust_value = plain_total.item(), robust_total.item()
    assert plain_value == pytest.approx((3 * 1e-4 + 1.0) / 4)
    assert robust_value < plain_value
    assert parts["mse"] == pytest.approx(plain_value)  # reported MSE stays the plain one
    share = lambda g: float(g[3].abs().sum() / g.abs().sum())  # noqa: E731
    assert share(grad_robust) < 0.1 < 0.9 < share(grad_plain)
    # Far below the scale the robust loss is the plain one.
    small = true + 1e-4
    assert float(composite_loss(small, true, 0.5, 0, robust)[0]) == pytest.approx(
        float(composite_loss(small, true, 0.5, 0, plain)[0]), rel=1e-4)


def test_robust_scale_must_not_be_negative():
    from model_core.config import ConfigError

    with pytest.raises(ConfigError, match="robust_scale"):
        LossConfig(robust_scale=-1.0)


def test_eta_interval_brackets_eta_and_narrows_with_more_spectra():
    rng = np.random.default_rng(1)

    def interval(n):
        baseline = rng.lognormal(np.log(7e-3), 0.8, n)
        errors = baseline / 7.6 * rng.lognormal(0.0, 0.8, n)
        low, high = eta_interval(errors, baseline)
        eta = np.median(baseline) / np.median(errors)
        assert low < eta < high
        return high - low

    assert interval(2000) < 0.5 * interval(200)
    errors, baseline = np.full(50, 1e-3), np.full(50, 7e-3)
    assert eta_interval(errors, baseline) == pytest.approx((7.0, 7.0))  # no spread, no width
