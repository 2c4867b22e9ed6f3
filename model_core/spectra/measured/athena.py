"""Athena projects (``.prj``, gzip-compressed Perl dumps), read with larch's ``read_athena``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_core.spectra.larch_compat import import_larch, preserved_global_state
from model_core.spectra.measured.base import ChannelChoice, Table, fail
from model_core.spectra.measured.repairs import MIN_POINTS

_NO_USABLE_GROUP = ("the Athena project has no usable group (no mu(E) data; only chi(k), "
                    "background or empty groups)")
_UNUSABLE_ATHENA_FLAGS = ("is_chi", "is_rsp", "is_qsp", "is_bkg", "is_diff", "is_pixel")


def _athena_usable(group: Any) -> bool:
    energy = getattr(group, "energy", None)
    mu = getattr(group, "mu", None)
    if energy is None or mu is None:
        return False
    if np.ndim(energy) != 1 or np.shape(energy) != np.shape(mu) or len(energy) < MIN_POINTS:
        return False
    params = getattr(group, "athena_params", None)
    for flag in _UNUSABLE_ATHENA_FLAGS:
        try:
            if params is not None and int(float(getattr(params, flag, 0) or 0)):
                return False
        except (TypeError, ValueError):
            continue
    return True


def _load_athena(path: Path) -> dict[str, Any]:
    """All groups of an Athena project by larch key (wrapped so tests can mock it)."""
    larch = import_larch()
    try:
        with preserved_global_state():
            project = larch.io.read_athena(str(path), do_preedge=False)
    except Exception as exc:  # noqa: BLE001 - larch's Perl-dump parser raises anything
        raise fail(path, f"not a readable Athena project ({' '.join(str(exc).split())[:100]})") from exc
    groups = getattr(project, "groups", None)
    if not isinstance(groups, dict):
        raise fail(path, "not a readable Athena project (no groups)")
    return dict(groups)


def _athena_names(groups: dict[str, Any]) -> dict[str, str]:
    """Display name -> larch key for the usable groups (labels when unique, else keys)."""
    usable = [key for key, group in groups.items() if _athena_usable(group)]
    labels = [str(getattr(groups[key], "label", "") or key) for key in usable]
    if len(set(labels)) == len(labels):
        return dict(zip(labels, usable))
    return {key: key for key in usable}


def group_names(path: Path) -> list[str]:
    """Names of the groups holding mu(E), in file order: Athena's labels (larch's keys when labels repeat).

    Raises:
        MeasuredReadError: unreadable project, or no group with mu(E) data.
    """
    names = _athena_names(_load_athena(path))
    if not names:
        raise fail(path, _NO_USABLE_GROUP)
    return list(names)


def read(path: Path, group_name: str | None = None) -> Table:
    """Read one group of an Athena project (None: the first holding mu(E)); energies carry Athena's shift."""
    groups = _load_athena(path)
    names = _athena_names(groups)
    if not names:
        raise fail(path, _NO_USABLE_GROUP)
    if group_name is None:
        display = next(iter(names))
        key = names[display]
    else:
        key = names.get(group_name)
        display = group_name
        if key is None and group_name in groups:
            key = group_name
            if not _athena_usable(groups[key]):
                raise fail(path, f"Athena group {group_name!r} holds no mu(E) data")
            # Report the group by the name list_athena_groups() uses for it.
            display = next((name for name, k in names.items() if k == key), group_name)
        elif key is None:
            raise fail(path, f"no Athena group {group_name!r} (groups: {', '.join(names)})")
    group = groups[key]
    columns = {"energy": np.asarray(group.energy, dtype=np.float64).copy(),
               "mu": np.asarray(group.mu, dtype=np.float64).copy()}
    for name in ("i0", "i1", "it", "ifluor", "ir", "irefer"):
        values = getattr(group, name, None)
        if isinstance(values, np.ndarray) and values.shape == columns["energy"].shape:
            columns[name] = values.astype(np.float64)
    metadata: dict[str, Any] = {"format": "athena", "athena_groups": tuple(names)}
    notes: list[str] = []
    bkg = getattr(getattr(group, "athena_params", None), "bkg", None)
    if bkg is not None:
        symbol = str(getattr(bkg, "z", "") or "").strip()
        if symbol and symbol.isalpha():
            metadata["element"] = symbol.capitalize()
        edge = str(getattr(bkg, "edge", "") or "").strip()
        if edge and edge.lower() != "none":
            metadata["edge"] = edge.upper()
        try:
            metadata["e0_hint_ev"] = float(bkg.e0)
        except (AttributeError, TypeError, ValueError):
            pass
        try:
            eshift = float(getattr(bkg, "eshift", 0.0) or 0.0)
        except (TypeError, ValueError):
            eshift = 0.0
        if eshift:
            # Athena shows (and aligns) the data with this shift applied.
            columns["energy"] = columns["energy"] + eshift
            metadata["athena_eshift_ev"] = eshift
            notes.append(f"applied Athena's energy shift of {eshift:+.3f} eV")
    return Table(columns=columns, metadata=metadata, label=display,
                  fixed=ChannelChoice(energy="energy", numerator="mu", mode="mu"), notes=notes)
