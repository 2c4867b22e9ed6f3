"""The cooperative cancel hook: ``progress`` of the sampler and of ``invert`` reports every
diffusion step and stops the run where it raises; without a raise the result is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.inverse.api import invert, load_inverse
from model_core.inverse.diffusion import ClusterDiffusion
from tests.model_core.inverse.helpers import planted_spectrum, tiny_config, write_bundle


class Stop(Exception):
    """What a GUI's progress callback raises once Cancel was pressed."""


def stop_after(k: int, calls: list):
    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) >= k:
            raise Stop()
    return progress


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    return write_bundle(tmp_path_factory.mktemp("models") / "tiny-inverse", ClusterDiffusion(tiny_config()))


def test_sampler_reports_every_step_and_stops_after_k(monkeypatch):
    torch.manual_seed(0)
    model = ClusterDiffusion(tiny_config(sample_steps=20)).eval()
    n_steps = len(model.sample_timesteps()) - 1
    assert n_steps == 20
    denoised = []
    forward = model.denoiser.forward
    monkeypatch.setattr(model.denoiser, "forward", lambda *a, **k: denoised.append(1) or forward(*a, **k))
    mu = torch.as_tensor(planted_spectrum(0), dtype=torch.float32)
    calls: list = []
    with pytest.raises(Stop):
        model.sample(mu, 3, generator=torch.Generator().manual_seed(1), progress=stop_after(5, calls))
    assert calls == [(k, n_steps) for k in range(1, 6)] and len(denoised) == 5
    # Reporting changes nothing in the sample.
    denoised.clear()
    calls = []
    seen = model.sample(mu, 3, generator=torch.Generator().manual_seed(1), progress=lambda d, t: calls.append(d))
    plain = model.sample(mu, 3, generator=torch.Generator().manual_seed(1))
    assert calls == list(range(1, n_steps + 1)) and len(denoised) == 2 * n_steps
    np.testing.assert_array_equal(seen.positions_a, plain.positions_a)
    np.testing.assert_array_equal(seen.species_index, plain.species_index)


def test_invert_progress_counts_steps_then_scoring_and_cancel_stops_before_scoring(bundle, monkeypatch):
    import model_core.inverse.api as api

    model = load_inverse(str(bundle), element="Cu")
    n_steps = len(model.diffusion.sample_timesteps()) - 1
    calls: list = []
    seen = invert(planted_spectrum(1), "Cu", 3, n_retrieval=2, n_refine=0, model=model,
                  progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, n_steps + 1) for k in range(1, n_steps + 2)]
    plain = invert(planted_spectrum(1), "Cu", 3, n_retrieval=2, n_refine=0, model=model)
    assert [(c.method, c.roundtrip_mse) for c in seen] == [(c.method, c.roundtrip_mse) for c in plain]

    scored = []
    monkeypatch.setattr(api, "_score", lambda *a: scored.append(1) or [])
    calls = []
    with pytest.raises(Stop):
        invert(planted_spectrum(1), "Cu", 3, model=model, progress=stop_after(4, calls))
    assert [d for d, _t in calls] == [1, 2, 3, 4] and not scored
    # The total counts the refinements and their scoring.
    assert calls[0][1] == n_steps + 1 + 2 + 1


def test_invert_checks_between_refined_candidates(bundle, monkeypatch):
    import model_core.inverse.refined as refined

    model = load_inverse(str(bundle), element="Cu")
    n_steps = len(model.diffusion.sample_timesteps()) - 1
    refine_calls = []
    monkeypatch.setattr(refined, "refine_cluster", lambda *a, check, **k: refine_calls.append(check) or None)
    calls: list = []
    with pytest.raises(Stop):
        invert(planted_spectrum(0), "Cu", 2, n_retrieval=2, n_refine=3, model=model,
               progress=stop_after(n_steps + 2, calls))
    assert calls[-1] == (n_steps + 2, n_steps + 1 + 3 + 1) and len(refine_calls) == 1
    # Uncancelled, the last report is the total.
    calls = []
    invert(planted_spectrum(0), "Cu", 0, n_retrieval=2, n_refine=3, model=model,
           progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 5), (2, 5), (3, 5), (5, 5)]  # two retrieval candidates to refine


def test_cancel_stops_inside_a_refinement(tmp_path):
    """The hook is checked at every evaluation of a refinement (seconds each), with ``done`` unchanged."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny graphs run far slower with more threads on a busy machine
    try:
        model = load_inverse(str(write_bundle(tmp_path / "tiny-retrieval")), element="Cu")
        calls: list = []
        with pytest.raises(Stop):
            invert(planted_spectrum(1), "Cu", 0, n_retrieval=1, n_refine=1, model=model,
                   progress=stop_after(4, calls))
    finally:
        torch.set_num_threads(threads)
    # After the scoring (1 of 3), three checks inside the one refinement: it never finished.
    assert calls == [(1, 3)] * 4
