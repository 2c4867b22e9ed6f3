"""The shipped Fe K inverse bundle (``fe-k-inverse``, FDMNES complexes): found for ``--element Fe``
and by name or folder, kept out of the forward registry, and ``xanes-invert`` on small Fe files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core.cli.invert import main
from model_core.inverse.api import find_bundle, load_inverse
from model_core.inverse.clusters import ClusterSet

FE_BUNDLE = Path(__file__).resolve().parents[3] / "resources" / "models" / "fe-k-inverse"
FE_EDGE_EV = 7112.0  # the FDMNES edge of the data, 0 on the forward grid


def _write_fdmnes(path: Path, energy_ev: np.ndarray, mu: np.ndarray) -> Path:
    """A convolved-FDMNES-style file (the XANESNET ``spectra/`` layout): absolute eV, intensity."""
    rows = "\n".join(f"  {e:9.3f}  {m:.7E}" for e, m in zip(energy_ev, mu))
    path.write_text("    FDMNES\n    energy     <xanes>\n" + rows + "\n")
    return path


@pytest.fixture(scope="module")
def library() -> ClusterSet:
    return ClusterSet.load(FE_BUNDLE / "library.npz")


@pytest.fixture(scope="module")
def fe_forward():
    from model_core.inference import load_model

    return load_model("fe-k-fdmnes", device="cpu")


@pytest.fixture(autouse=True)
def _load_the_forward_ensemble_once(fe_forward, monkeypatch):
    # Six members take seconds to load; every CLI call of this module asks for the same ones.
    # One thread: the sampler's small tensors run ~50x slower with two on a busy 2-core machine.
    import torch

    import model_core.inference

    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    real = model_core.inference.load_model
    monkeypatch.setattr(model_core.inference, "load_model", lambda name=None, *args, **kwargs: (
        fe_forward if name == "fe-k-fdmnes" else real(name, *args, **kwargs)))
    yield
    torch.set_num_threads(threads)


def test_the_bundle_is_found_for_fe_by_element_name_and_folder():
    assert find_bundle(element="Fe").resolve() == FE_BUNDLE.resolve()
    assert find_bundle("fe-k-inverse").resolve() == FE_BUNDLE.resolve()
    assert find_bundle(str(FE_BUNDLE)) == FE_BUNDLE
    assert find_bundle(element="Cu").name == "cu-k-inverse"


def test_the_shipped_fe_model_loads_with_its_forward_model(library):
    model = load_inverse(element="Fe", device="cpu")
    assert model.name == "fe-k-inverse" and model.forward.info.name == "fe-k-fdmnes"
    assert model.forward.info.element == "Fe" and model.diffusion is not None
    config = model.diffusion.config
    assert config.absorber_z == 26 and config.n_points == len(model.energy_ev) == 226
    # Every neighbour element of the training clusters is in the model's vocabulary.
    crop = library.crop(config.radius_a)
    assert set(np.unique(crop.z[:, 1:][crop.z[:, 1:] > 0]).tolist()) == set(config.species)
    assert crop.n_atoms.max() - 1 <= config.max_neighbors
    np.testing.assert_allclose(model.energy_ev, model.forward.info.energy_ev)
    assert "Fe" in model.card and "fe-k-fdmnes" in model.card


def test_the_forward_registry_never_returns_the_fe_bundle(monkeypatch):
    from model_core import registry

    monkeypatch.setattr(registry, "models_dir", lambda: FE_BUNDLE.parent)
    assert registry.model_for_element("Fe").name == "fe-k-fdmnes"
    assert "fe-k-inverse" not in {entry.name for entry in registry.list_models()}
    assert registry.find_model("fe-k-inverse") is None


def test_an_fdmnes_file_is_prepared_like_the_training_targets(library, tmp_path):
    from model_core.inverse.spectrum import read_spectrum_on_grid

    row = 11
    path = _write_fdmnes(tmp_path / "fe.txt", FE_EDGE_EV + library.energy_ev, 0.02 * library.mu[row])
    spectrum = read_spectrum_on_grid(path, library.energy_ev, edge_offset_ev=0.33, element="Fe")
    assert "tabulated" in spectrum.alignment and spectrum.e0_ev == pytest.approx(FE_EDGE_EV)
    # The edge-step fit of an edge-step-normalized spectrum gives it back (float16 library aside).
    np.testing.assert_allclose(spectrum.mu, library.mu[row], atol=0.02)


def test_cli_on_a_synthetic_fdmnes_file_picks_the_fe_bundle(library, tmp_path, capsys):
    row = 7
    spectrum = _write_fdmnes(tmp_path / "fe.txt", FE_EDGE_EV + library.energy_ev, 0.02 * library.mu[row])
    out = tmp_path / "candidates"
    assert main([str(spectrum), "--element", "Fe", "--samples", "2", "--retrieval", "2", "--refine", "0",
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "fe-k-inverse" and result["forward_model"] == "fe-k-fdmnes"
    samples = result["samples"]
    assert sorted(s["method"] for s in samples) == ["diffusion", "diffusion", "retrieval", "retrieval"]
    assert [s["roundtrip_mse"] for s in samples] == sorted(s["roundtrip_mse"] for s in samples)
    for entry in samples:
        assert entry["coordination_number"] >= 1 and entry["first_shell_distance_a"] > 0.5
        assert sum(entry["neighbours"].values()) == entry["coordination_number"]
        first_atom = Path(entry["xyz"]).read_text().splitlines()[2].split()
        assert first_atom[0] == "Fe" and [float(v) for v in first_atom[1:]] == [0.0, 0.0, 0.0]
    # FDMNES units (x0.02) are normalized away: the nearest training spectrum is the complex itself.
    assert str(library.ids[row]) in {s.get("source_id") for s in samples}
    assert main([str(spectrum), "--element", "Fe", "--model", "fe-k-inverse", "--samples", "0",
                 "--retrieval", "1", "--refine", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"][0]["method"] == "retrieval"


def test_cli_refuses_the_fe_bundle_for_cu(tmp_path, capsys, library):
    spectrum = _write_fdmnes(tmp_path / "fe.txt", FE_EDGE_EV + library.energy_ev, library.mu[0])
    with pytest.raises(SystemExit) as exit_info:
        main([str(spectrum), "--element", "Cu", "--model", "fe-k-inverse"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not Cu" in err[0]


@pytest.mark.shared
def test_cli_on_a_real_fdmnes_spectrum_of_a_validation_complex(shared_dir, tmp_path, capsys):
    import tarfile

    # Validation complexes of the carve-out (never in the library). A larch E0 search puts the edge
    # of UZELAN 15 eV into its white line, so that its data would miss the grid: the FDMNES edge is used.
    names = ("ACODUR_C8H5FeNO2", "UZELAN_C20H27FeN9S2")
    with tarfile.open(shared_dir / "data" / "fe-k-fdmnes.tar.xz") as archive:
        for name in names:
            (tmp_path / f"{name}.txt").write_bytes(archive.extractfile(f"fe-k-fdmnes/spectra/{name}.txt").read())
    for name, samples in zip(names, (4, 0)):
        assert main([str(tmp_path / f"{name}.txt"), "--element", "Fe", "--samples", str(samples), "--refine", "0",
                     "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert len(result["samples"]) == samples + 3 and result["model"] == "fe-k-inverse"
        assert "tabulated" in result["alignment"]
        assert name not in {s.get("source_id") for s in result["samples"]}
