"""Candidate structures: collecting files, predicting them, caching the predictions.

A candidate is predicted as the multiplicity-weighted average over its sites of the
absorbing element (``select_sites(element=...)``, ``Prediction.average_spectrum``),
and, for an ensemble model, once per member as well (the ranking's confidence uses
the members' disagreement).

Cache of a library (a folder of known structures): ``<folder>/.xanes-cache/<key>.npz``
with ``key = sha256(structure file)[:16] + "-" + sha256(checkpoint file)[:12] + "-" +
element``, holding ``energy_ev``, ``mu`` (average), ``e0_ev`` (NaN without an E0 head),
``members`` ((K, G) per-member averages; (0, G) for one model), ``site_indices``,
``weights`` and, for a model whose grid has a fixed origin (FDMNES-trained),
``grid_origin_ev``. A changed structure or model gives another key, so a stale entry is
never read; entries are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from model_core.types import Spectrum

__all__ = ["Candidate", "CandidateError", "expand_paths", "member_predictors", "predict_candidate",
           "CACHE_DIR"]

CACHE_DIR = ".xanes-cache"


class CandidateError(ValueError):
    """A candidate could not be used (unreadable, no site of the element): one line naming it."""


@dataclass(frozen=True, eq=False)
class Candidate:
    """A predicted candidate structure.

    Attributes:
        path: the path as given (or as found in a folder).
        name: display name.
        spectrum: the average prediction (edge-relative energies, ``e0_ev`` its E0).
        members: (K, G) each ensemble member's average on the same grid; (0, G) for one model.
        site_indices: (M,) predicted sites.
        weights: (M,) their multiplicities.
        cached: whether the prediction came from a library cache.
        domain_score: (M,) each predicted site's distance to the model's training data
            (> 1: outside its domain), or None when the model has no domain index. With
            members it is the first member's, which is what the index is built on.
        member_weights: (K,) the members' weights in the ensemble's mean (summing to 1),
            or None when they count equally.
    """

    path: str
    name: str
    spectrum: Spectrum
    members: np.ndarray
    site_indices: np.ndarray
    weights: np.ndarray
    cached: bool = False
    domain_score: np.ndarray | None = None
    member_weights: np.ndarray | None = None


def _is_structure_file(path: Path) -> bool:
    from model_core.io import SUPPORTED_FORMATS

    name = path.name.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower())
               for _, patterns, _ in SUPPORTED_FORMATS for pattern in patterns)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Structure files named by ``paths``: files as given, folders searched recursively.

    Inside a folder, files whose names match a known structure format are taken (in
    sorted order); hidden files and folders (the cache among them) are skipped. A
    path that does not exist is passed on as is, so that reading it reports it.
    """
    out: list[str] = []
    for text in paths:
        path = Path(text)
        if not path.is_dir():
            out.append(str(text))
            continue
        found = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(Path(root) / f for f in files if not f.startswith(".") and _is_structure_file(Path(f)))
        out.extend(str(f) for f in sorted(found))
    return out


def member_predictors(predictor: Any) -> list[Any]:
    """One predictor per member of an ensemble (an empty list for one model or a stand-in).

    The inference API averages the members and exposes only their spread, so each
    member is rebuilt from the predictor's checkpoint as a one-model checkpoint.
    """
    from model_core.inference import XanesPredictor

    if not isinstance(predictor, XanesPredictor) or predictor.info.n_members < 2:
        return []
    from model_core.checkpoint import member_roles

    checkpoint = predictor.checkpoint
    spectrum, e0_members = member_roles(checkpoint.model_configs)
    # Dedicated E0 members go with every spectrum member, so each member predictor
    # places its spectrum at the ensemble's own E0.
    experts = [k for k in e0_members if k not in spectrum]
    out = []
    for k in spectrum:
        states = [checkpoint.state_dicts[j] for j in (k, *experts)]
        configs = [checkpoint.model_configs[j] for j in (k, *experts)]
        # The domain index was fitted on the first spectrum member's readout: another
        # member's readout lives in its own feature space (of another width, even), so it
        # is scored by none (the candidate's domain score is the first member's).
        single = dataclasses.replace(checkpoint, model_config=configs[0], state_dict=states[0],
                                     member_state_dicts=tuple(states[1:]),
                                     member_model_configs=tuple(configs[1:]) if experts else (),
                                     member_weights=(),
                                     domain_index=checkpoint.domain_index if k == spectrum[0] else None)
        out.append(XanesPredictor(single, name=predictor.info.name, path=predictor.info.path,
                                  device=predictor.info.device))
    return out


def _file_hash(path: str | Path, length: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _cache_file(cache_dir: Path, path: str, model_path: str, element: str) -> Path | None:
    if not model_path or not Path(model_path).is_file():
        return None
    return cache_dir / f"{_file_hash(path, 16)}-{_file_hash(model_path, 12)}-{element}.npz"


def _load_cached(file: Path, path: str, name: str) -> Candidate | None:
    try:
        with np.load(file) as data:
            e0 = float(data["e0_ev"])
            origin = float(data["grid_origin_ev"]) if "grid_origin_ev" in data.files else None
            spectrum = Spectrum(data["energy_ev"], data["mu"], label=name, energy_reference="edge",
                                e0_ev=e0 if math.isfinite(e0) else None, grid_origin_ev=origin)
            score = data["domain_score"] if "domain_score" in data.files else None
            member_weights = data["member_weights"] if "member_weights" in data.files else None
            return Candidate(path=path, name=name, spectrum=spectrum, members=data["members"],
                             site_indices=data["site_indices"], weights=data["weights"], cached=True,
                             domain_score=score, member_weights=member_weights)
    except (OSError, KeyError, ValueError):
        return None  # an unreadable entry is predicted again and overwritten


def _save_cached(file: Path, candidate: Candidate) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(file.name + f".{os.getpid()}.tmp.npz")
    e0 = candidate.spectrum.e0_ev
    np.savez(temporary, energy_ev=candidate.spectrum.energy_ev, mu=candidate.spectrum.mu,
             e0_ev=np.nan if e0 is None else e0, members=candidate.members,
             site_indices=candidate.site_indices, weights=candidate.weights,
             **({} if candidate.domain_score is None else {"domain_score": candidate.domain_score}),
             **({} if candidate.member_weights is None else {"member_weights": candidate.member_weights}),
             **({} if candidate.spectrum.grid_origin_ev is None
                else {"grid_origin_ev": candidate.spectrum.grid_origin_ev}))
    os.replace(temporary, file)


def predict_candidate(predictor: Any, path: str, element: str, *, members: Sequence[Any] = (),
                      cache_dir: str | Path | None = None) -> Candidate:
    """Read and predict one candidate.

    Args:
        predictor: a :class:`~model_core.inference.Predictor` of ``element``.
        path: the structure file.
        element: the absorbing element; every site of it is predicted.
        members: per-member predictors (:func:`member_predictors`), or none.
        cache_dir: read/write cached predictions here (None: no cache).

    Raises:
        CandidateError: unreadable file, no site of the element, or a prediction error.
    """
    from model_core.io import read_structure
    from model_core.sites import select_sites

    name = Path(path).name
    cache_file = None
    if cache_dir is not None:
        try:
            cache_file = _cache_file(Path(cache_dir), path, getattr(predictor.info, "path", ""), element)
        except OSError as exc:
            raise CandidateError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
        if cache_file is not None and cache_file.is_file():
            cached = _load_cached(cache_file, path, name)
            if cached is not None:
                return cached
    try:
        structure = read_structure(path)
        name = structure.name or name
        if element not in structure.elements:
            raise CandidateError(f"{path}: no {element} site (elements: {', '.join(structure.elements)})")
        selection = select_sites(structure, element=element)
        if members:
            # The ensemble's prediction is the (weighted) mean of its members', so
            # the members alone give both, at the cost of one ensemble pass.
            predictions = [m.predict(structure, selection) for m in members]
            spectra = [p.average_spectrum() for p in predictions]
            e0s = [s.e0_ev for s in spectra]
            # Weighted as the ensemble weights its spectrum members (equal unless the
            # checkpoint says otherwise).
            member_weights = np.asarray(getattr(predictor, "spectrum_weights", ()), dtype=np.float64)
            if member_weights.shape != (len(spectra),) or np.ptp(member_weights) == 0:
                member_weights = None
            per_member = [s.mu for s in spectra]
            mus = np.array(per_member)
            mu = mus.mean(axis=0) if member_weights is None else member_weights @ mus
            spectrum = Spectrum(spectra[0].energy_ev, mu, label=name,
                                energy_reference="edge", e0_ev=None if None in e0s else float(np.mean(e0s)),
                                grid_origin_ev=spectra[0].grid_origin_ev)
            prediction = predictions[0]
        else:
            prediction = predictor.predict(structure, selection)
            spectrum = prediction.average_spectrum()
            per_member, member_weights = [], None
    except CandidateError:
        raise
    except (ValueError, IndexError) as exc:
        # Named by the path as given, so that it matches the candidate's row.
        problem = getattr(exc, "problem", None) or str(exc)
        raise CandidateError(f"{path}: {problem}") from exc
    g = len(spectrum.energy_ev)
    candidate = Candidate(path=path, name=name, spectrum=spectrum,
                          members=np.array(per_member).reshape(len(per_member), g),
                          site_indices=prediction.site_indices, weights=prediction.weights,
                          domain_score=prediction.domain_score, member_weights=member_weights)
    if cache_file is not None:
        try:
            _save_cached(cache_file, candidate)
        except OSError:
            pass  # a read-only library still works, only without a cache
    return candidate
