"""The two edge-step normalizations of model_core.spectra.normalize agree on simulated
spectra within the stated tolerances (see that module's docstring)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from model_core.spectra.normalize import (AGREEMENT_TOLERANCE, FEFF_AGREEMENT_TOLERANCE, TargetNormalization,
                                          normalize, normalize_target, target_norm_params)
from model_core.spectra.simulated import parse_fdmnes, parse_feff_xmu
from tests.model_core.spectra.synthetic_spectra import edge_energy, edge_mu

EDGE_STEP = TargetNormalization(mode="edge_step")


@pytest.mark.parametrize("white_line", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("pre_slope", [0.0, -1e-4, 3e-4])
def test_short_range_target_matches_long_range_measured(white_line, pre_slope):
    """A measured-like spectrum (-100..+200 eV) normalized by larch with its automatic
    windows, and its -15..+60 eV crop normalized as a training target, give one curve."""
    energy = edge_energy()
    mu = edge_mu(energy, e0=8979.0, step=1.7, white_line=white_line, pre_slope=pre_slope)
    measured = normalize(energy, mu)
    crop = (energy - 8979.0 >= -15.0) & (energy - 8979.0 <= 60.0)
    target, info = normalize_target(energy[crop] - 8979.0, mu[crop], EDGE_STEP)
    assert info["method"] == "own_fit"
    assert np.abs(target - measured.norm[crop]).max() < AGREEMENT_TOLERANCE


def _members(path, wanted, n: int) -> list[tuple[str, str]]:
    """The first ``n`` archive members whose name satisfies ``wanted`` (streamed, no unpacking)."""
    found = []
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            if member.isfile() and wanted(member.name):
                found.append((member.name, archive.extractfile(member).read().decode()))
                if len(found) == n:
                    break
    return found


def test_fdmnes_targets_match_larch_with_the_same_windows(shared_dir):
    spectra = _members(shared_dir / "data" / "fe-k-fdmnes.tar.xz", lambda name: "/spectra/" in name, 20)
    assert len(spectra) == 20
    for name, text in spectra:
        spectrum = parse_fdmnes(text, name)
        e_edge = spectrum.e0_ev or 7112.0  # the tabulated Fe K edge, as the trainer uses
        energy_rel = spectrum.energy_ev - e_edge
        target, info = normalize_target(energy_rel, spectrum.mu, EDGE_STEP)
        measured = normalize(spectrum.energy_ev, spectrum.mu, target_norm_params(energy_rel, EDGE_STEP, e_edge))
        assert info["method"] == "own_fit"
        assert np.abs(target - measured.norm).max() < AGREEMENT_TOLERANCE, name


def test_feff_own_normalization_is_close_to_an_edge_step(shared_dir):
    spectra = _members(shared_dir / "data" / "cu-k-feff.tar.xz", lambda name: name.endswith("xmu.dat"), 20)
    assert len(spectra) == 20
    for name, text in spectra:
        spectrum = parse_feff_xmu(text, name)
        energy_rel = np.asarray(spectrum.metadata["energy_rel_ev"])
        feff, _ = normalize_target(energy_rel, spectrum.mu, TargetNormalization(mode="feff"))
        edge_step, info = normalize_target(energy_rel, spectrum.mu, EDGE_STEP)
        assert 0.6 < info["step"] < 1.0, name  # FEFF's unit is not the edge step ...
        assert np.abs(feff - edge_step).max() < FEFF_AGREEMENT_TOLERANCE, name  # ... but close to it
        # larch's line on FEFF's short pre-edge lies on the rise: the target fit must not use it.
        assert info["pre_kind"] != "line", name


def test_larch_target_mode_falls_back_on_feff_like_spectra():
    energy = np.linspace(-11.0, 130.0, 300)
    mu = 1.0 / (1.0 + np.exp(-(energy + 3.0) / 3.0))  # already rising below -5 eV
    norm, info = normalize_target(energy, mu, TargetNormalization(mode="edge_step", use_larch=True), 8979.0)
    assert np.all(np.isfinite(norm)) and np.abs(norm).max() < 3.0
