"""``invert``: candidate local structures for a spectrum, ranked by the forward model's round trip.

Contract::

    model = load_inverse(element="Cu")                 # shipped bundle cu-k-inverse + forward cu-k-feff
    spectrum = read_spectrum_on_grid(path, model.energy_ev, edge_offset_ev=model.library.edge_offset_ev)
    candidates = invert(spectrum, "Cu", n_samples=16, model=model)   # best first

Each :class:`Candidate` is a cluster (absorber first, at the origin), its first
shell (:func:`model_core.inverse.shells.first_shell`) and its round-trip fit
(:func:`model_core.inverse.roundtrip.fit_roundtrip`). Methods: ``"diffusion"``
(samples of the conditional diffusion model), ``"retrieval"`` (the clusters of
the nearest training spectra) and ``"refined"`` (the best ``n_refine`` of those after
the round-trip ranking, their shell distances refined against the input by
``xanes-refine``'s refinement, :mod:`model_core.inverse.refined`; scored by the same
round trip and ranked with the rest).

An inverse bundle is a folder ``resources/models/<name>/`` with ``inverse.json``
(name, element, edge, kind "inverse", forward model), ``library.npz`` and,
optionally, ``inverse.pt`` (without it: retrieval only) and ``MODEL_CARD.md``.
The forward registry (:mod:`model_core.registry`) lists only folders with
``model.pt`` and never returns a bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from model_core.inverse.clusters import cluster_structure
from model_core.inverse.retrieval import RetrievalLibrary, load_library
from model_core.inverse.roundtrip import fit_roundtrip, predict_clusters
from model_core.inverse.shells import first_shell
from model_core.inverse.spectrum import GridSpectrum
from model_core.types import Structure

__all__ = ["BUNDLE_META", "Candidate", "InverseModel", "find_bundle", "invert", "list_bundles", "load_inverse"]

BUNDLE_META = "inverse.json"
CHECKPOINT_FILE = "inverse.pt"
LIBRARY_FILE = "library.npz"
METHODS = ("diffusion", "retrieval", "refined")
COUNT_SOURCES = ("retrieval", "model")


@dataclass(frozen=True, eq=False)
class Candidate:
    """One candidate local structure for a spectrum.

    Attributes:
        method: "diffusion", "retrieval" or "refined".
        atomic_numbers: (n,) int64, absorber first.
        positions_a: (n, 3) float64 Å, absorber at the origin.
        coordination_number: first-shell coordination number.
        first_shell_distance_a: mean first-shell distance in Å.
        neighbours: first-shell element counts, e.g. ``{"O": 4}``.
        roundtrip_mse: MSE between the fitted forward prediction and the input.
        energy_ev: (G,) the model grid, eV relative to the edge.
        roundtrip_mu: (G,) the fitted forward prediction.
        shift_ev / scale: the round-trip fit parameters.
        source_id: the training site of a retrieval candidate, or of the retrieval
            candidate a refined one started from ("" otherwise).
        refined_from: the method of the candidate a refined one started from ("" otherwise).
    """

    method: str
    atomic_numbers: np.ndarray
    positions_a: np.ndarray
    coordination_number: int
    first_shell_distance_a: float
    neighbours: Mapping[str, int]
    roundtrip_mse: float
    energy_ev: np.ndarray
    roundtrip_mu: np.ndarray
    shift_ev: float = 0.0
    scale: float = 1.0
    source_id: str = ""
    refined_from: str = ""

    def __post_init__(self) -> None:
        for name in ("atomic_numbers", "positions_a", "energy_ev", "roundtrip_mu"):
            array = np.array(getattr(self, name))
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "neighbours", MappingProxyType(dict(self.neighbours)))

    def structure(self) -> Structure:
        """The cluster as a :class:`Structure` (no cell, absorber index 0)."""
        return cluster_structure(self.atomic_numbers, self.positions_a, name=f"{self.method} candidate")


@dataclass(frozen=True, eq=False)
class InverseModel:
    """A loaded bundle: retrieval library, optional diffusion model and the forward predictor."""

    name: str
    element: str
    edge: str
    library: RetrievalLibrary
    forward: Any
    diffusion: Any = None
    card: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def energy_ev(self) -> np.ndarray:
        return self.library.energy_ev


def _search_roots() -> list[Path]:
    from model_core import registry

    roots = [Path(__file__).resolve().parents[2] / "resources" / "models", registry.models_dir()]
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in unique:
            unique.append(root.resolve())
    return unique


def list_bundles() -> list[tuple[str, str, Path]]:
    """(name, element, folder) of every inverse bundle found (source tree first, then installed)."""
    found, seen = [], set()
    for root in _search_roots():
        for folder in sorted(p for p in root.iterdir() if (p / BUNDLE_META).is_file()):
            try:
                meta = json.loads((folder / BUNDLE_META).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            name = str(meta.get("name", folder.name))
            if name not in seen:
                seen.add(name)
                found.append((name, str(meta.get("element", "")), folder))
    return found


def find_bundle(name_or_path: str | None = None, element: str | None = None) -> Path:
    """The bundle folder for a name, a folder path, or an element.

    Raises:
        ValueError: nothing matches (the message lists what exists).
    """
    bundles = list_bundles()
    if name_or_path:
        path = Path(name_or_path)
        if path.is_file():
            path = path.parent
        if (path / BUNDLE_META).is_file():
            return path
        for name, _el, folder in bundles:
            if name.lower() == str(name_or_path).lower():
                return folder
    elif element:
        for _name, el, folder in bundles:
            if el.lower() == element.lower():
                return folder
    known = ", ".join(f"{n} ({e})" for n, e, _ in bundles) or "none"
    wanted = repr(name_or_path) if name_or_path else f"for element {element}"
    raise ValueError(f"no inverse model {wanted} (inverse models: {known})")


def load_inverse(name_or_path: str | None = None, element: str | None = None, *, forward: Any = None,
                 device: str = "cpu") -> InverseModel:
    """Load an inverse bundle and the forward model it names (or ``forward``, a predictor).

    Raises:
        ValueError: no such bundle, unreadable files, or a forward model of another element.
    """
    from model_core.inverse.checkpoint import load_diffusion

    folder = find_bundle(name_or_path, element)
    meta = json.loads((folder / BUNDLE_META).read_text(encoding="utf-8"))
    if element and str(meta.get("element", "")).lower() != element.lower():
        raise ValueError(f"{folder}: the inverse model is for {meta.get('element')}, not {element}")
    library = load_library(folder / LIBRARY_FILE)
    diffusion = None
    if (folder / CHECKPOINT_FILE).is_file():
        diffusion, _data = load_diffusion(folder / CHECKPOINT_FILE)
    if forward is None:
        from model_core.inference import load_model

        forward = load_model(meta.get("forward_model") or None, device=device, element=meta.get("element"))
    if forward.info.element and forward.info.element != meta.get("element"):
        raise ValueError(f"forward model {forward.info.name} predicts {forward.info.element}, "
                         f"the inverse model {meta.get('name')} {meta.get('element')}")
    if not np.allclose(forward.info.energy_ev, library.energy_ev):
        raise ValueError(f"{folder}: the library's energy grid differs from forward model {forward.info.name}'s")
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8") if (folder / "MODEL_CARD.md").is_file() else ""
    return InverseModel(name=str(meta.get("name", folder.name)), element=str(meta.get("element", "")),
                        edge=str(meta.get("edge", "K")), library=library, forward=forward,
                        diffusion=diffusion, card=card, meta=MappingProxyType(meta))


#: Library neighbours whose atom counts the "retrieval" count source draws from.
COUNT_NEIGHBOURS = 8


def _diffusion_clusters(model: InverseModel, mu: np.ndarray, n_samples: int, seed: int, counts: str,
                        progress: Callable[[int, int], None] | None = None
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    import torch

    diffusion = model.diffusion
    generator = torch.Generator().manual_seed(int(seed))
    n_neighbors = None
    if counts == "retrieval":
        # The number of atoms of each sample is drawn from the neighbour counts (within the
        # diffusion radius) of the nearest training spectra: the training distribution
        # conditioned on the spectrum, without a learned head that can overfit.
        rows, _distance = model.library.nearest(mu, COUNT_NEIGHBOURS)
        clusters = model.library.clusters
        distance = np.linalg.norm(clusters.pos[rows].astype(np.float64), axis=-1)
        inside = ((clusters.z[rows] > 0) & (distance < diffusion.config.radius_a + 1e-6)).sum(1) - 1
        pick = torch.randint(len(rows), (n_samples,), generator=generator).numpy()
        n_neighbors = torch.as_tensor(np.clip(inside[pick], 1, diffusion.config.max_neighbors))
    sampled = diffusion.sample(torch.as_tensor(mu, dtype=torch.float32), n_samples, n_neighbors=n_neighbors,
                               generator=generator, progress=progress)
    species = np.asarray(diffusion.config.species, dtype=np.int64)
    clusters = []
    for k in range(n_samples):
        n = int(sampled.n_neighbors[k])
        z = np.concatenate([[diffusion.config.absorber_z], species[sampled.species_index[k, 1:n + 1]]])
        clusters.append((z, sampled.positions_a[k, :n + 1]))
    return clusters


def _score(model: InverseModel, mu: np.ndarray, proposals: Sequence[tuple[str, np.ndarray, np.ndarray, str, str]]
           ) -> list[Candidate]:
    """Candidates of (method, z, positions, source_id, refined_from) proposals: one batched forward
    prediction, each fitted to ``mu`` by the round trip."""
    energy = model.energy_ev
    structures = [cluster_structure(z, pos) for _m, z, pos, _s, _r in proposals]
    predicted = predict_clusters(model.forward, structures)
    candidates = []
    for (method, z, pos, source_id, refined_from), pred in zip(proposals, predicted):
        fit = fit_roundtrip(energy, mu, pred)
        shell = first_shell(z, pos)
        candidates.append(Candidate(
            method=method, atomic_numbers=z, positions_a=pos, coordination_number=shell.coordination_number,
            first_shell_distance_a=shell.distance_a, neighbours=shell.neighbours, roundtrip_mse=fit.mse,
            energy_ev=energy, roundtrip_mu=fit.fitted, shift_ev=fit.shift_ev, scale=fit.scale,
            source_id=source_id, refined_from=refined_from))
    return candidates


def invert(spectrum: GridSpectrum | np.ndarray, element: str, n_samples: int = 16, *,
           n_retrieval: int = 3, n_refine: int = 2, model: InverseModel | None = None, seed: int = 0,
           methods: Sequence[str] = METHODS, counts: str = "retrieval",
           progress: Callable[[int, int], None] | None = None) -> tuple[Candidate, ...]:
    """Candidate clusters for a spectrum, best round trip first.

    Args:
        spectrum: a :class:`GridSpectrum`, or (G,) mu on the model grid.
        element: absorbing element.
        n_samples: diffusion samples (skipped when the bundle has no diffusion model).
        n_retrieval: nearest training sites added as retrieval candidates.
        n_refine: the best candidates (by round trip) refined into "refined" candidates
            (:func:`model_core.inverse.refined.refine_cluster`), added to the ranking; one
            the refinement cannot move adds none.
        model: a loaded bundle (default: the shipped one for ``element``).
        seed: seed of the diffusion sampler.
        methods: which candidate sources to use ("refined" refines those of the others).
        counts: where the diffusion samples' atom counts come from: "retrieval" (the
            counts of the 8 nearest training spectra's clusters) or "model" (the
            diffusion model's count head).
        progress: called as ``progress(done, total)`` after every diffusion step, after the
            round-trip scoring and after every refined candidate (total: the diffusion
            steps + 1 + the refinements + 1), and with an unchanged ``done`` at every
            evaluation of a refinement. An exception it raises (a cancel) stops ``invert``
            there and propagates; without it the result is the same.

    Raises:
        ValueError: wrong grid length, unknown method, or no bundle for the element.
    """
    from model_core.inverse.refined import refine_cluster

    if counts not in COUNT_SOURCES:
        raise ValueError(f"counts must be one of {COUNT_SOURCES}, got {counts!r}")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)} (known: {', '.join(METHODS)})")
    model = model or load_inverse(element=element)
    mu = np.asarray(spectrum.mu if isinstance(spectrum, GridSpectrum) else spectrum, dtype=np.float64)
    energy = model.energy_ev
    if mu.shape != energy.shape:
        raise ValueError(f"the spectrum has {mu.size} points, the model grid {energy.size}")
    use_diffusion = "diffusion" in methods and model.diffusion is not None and n_samples > 0
    n_steps = len(model.diffusion.sample_timesteps()) - 1 if use_diffusion else 0
    n_refined = n_refine if "refined" in methods and n_refine > 0 else 0
    total = n_steps + 1 + (n_refined + 1 if n_refined else 0)
    report = progress or (lambda _done, _total: None)
    proposals: list[tuple[str, np.ndarray, np.ndarray, str, str]] = []
    if "retrieval" in methods and n_retrieval > 0:
        rows, _distance = model.library.nearest(mu, n_retrieval)
        clusters = model.library.clusters
        for row in rows:
            n = int((clusters.z[row] > 0).sum())
            proposals.append(("retrieval", clusters.z[row, :n].astype(np.int64),
                              clusters.pos[row, :n].astype(np.float64), str(clusters.ids[row]), ""))
    if use_diffusion:
        proposals += [("diffusion", z, pos, "", "")
                      for z, pos in _diffusion_clusters(model, mu, n_samples, seed, counts,
                                                        lambda step, _steps: report(step, total))]
    if not proposals:
        return ()
    candidates = sorted(_score(model, mu, proposals), key=lambda c: c.roundtrip_mse)
    done = n_steps + 1
    report(done, total)
    if n_refined:
        refined = []
        for c in candidates[:n_refined]:
            # Each refinement takes seconds: the hook is also checked at its every evaluation.
            refined.append((c, refine_cluster(model.forward, c.atomic_numbers, c.positions_a, energy, mu, element,
                                              check=lambda: report(done, total))))
            done += 1
            report(done, total)
        moved = [(c, pos) for c, pos in refined if pos is not None]
        if moved:
            proposals = [("refined", c.atomic_numbers, pos, c.source_id, c.method) for c, pos in moved]
            # A refinement that ends no closer than its start (the optimizer stops where its own
            # objective stalls; the round trip refits scale and shift) adds a near-duplicate: drop it.
            better = [new for new, (start, _pos) in zip(_score(model, mu, proposals), moved)
                      if new.roundtrip_mse < start.roundtrip_mse]
            candidates = sorted(candidates + better, key=lambda c: c.roundtrip_mse)
        report(total, total)
    return tuple(candidates)
