"""Exporting what is shown: plots as PNG or SVG, spectra and comparisons as CSV.

pyqtgraph's own SVG and CSV exporters do not work with Qt 6, so SVG is
rendered through QtSvg (the scene painted into a :class:`QSvgGenerator`) and
the CSV is written here.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsView

from model_core.types import Prediction
from xanes_gui.comparison import NORM_FIELDS
from xanes_gui.plots import Curve

if TYPE_CHECKING:
    from xanes_gui.state import AppState


def export_png(view: QGraphicsView, path: str | Path, scale: float = 2.0) -> Path:
    """Save a pyqtgraph graphics widget as PNG (``scale`` × its on-screen size).

    Raises:
        OSError: the file could not be written.
    """
    import pyqtgraph.exporters as exporters

    path = Path(path)
    root = getattr(view, "ci", None) or view.scene()
    exporter = exporters.ImageExporter(root)
    width = max(int(view.width() * scale), 200)
    exporter.parameters()["width"] = width
    exporter.export(str(path))
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"could not write {path}")
    return path


def export_svg(view: QGraphicsView, path: str | Path, title: str = "XANES spectra") -> Path:
    """Save a graphics widget as SVG by painting its scene into a QSvgGenerator (vector output).

    Raises:
        OSError: the file could not be written.
    """
    path = Path(path)
    scene = view.scene()
    source = view.mapToScene(view.viewport().rect()).boundingRect()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(int(source.width()), int(source.height())))
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    generator.setTitle(title)
    generator.setDescription("Exported by xanes-gui")
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"could not write {path}")
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"could not write {path}")
    return path


def energy_reference_text(reference: str, origin_ev: float | None) -> str:
    """The ``energy_reference`` header of an exported CSV: absolute, or relative to each
    site's E0, or to the one fixed energy a model's grid was trained against."""
    if reference == "absolute":
        return "E (absolute, eV)"
    return "E - E0 (eV)" if origin_ev is None else f"E - {origin_ev:.1f} eV (the model grid's fixed origin)"


def csv_metadata(prediction: Prediction, *, reference: str, source: str, structure_name: str,
                 device: str = "") -> dict[str, Any]:
    """The '#' header lines of an exported CSV."""
    sites = ", ".join(f"{int(i)}:{w:g}" for i, w in zip(prediction.site_indices, prediction.weights))
    meta: dict[str, Any] = {
        "program": "xanes-gui",
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "structure": structure_name,
        "structure_source": source or "(in memory)",
        "model": prediction.model_name,
        "trained": str(bool(prediction.trained)).lower(),
        "element": prediction.element,
        "edge": prediction.edge,
        "energy_reference": energy_reference_text(reference, prediction.grid_origin_ev),
        "sites_and_weights": sites,
    }
    if device:
        meta["device"] = device
    if not prediction.trained:
        meta["warning"] = "UNTRAINED model - predictions are not meaningful"
    return meta


def curves_table(curves: Sequence[Curve]) -> tuple[list[str], np.ndarray]:
    """All curves on one energy grid: header and (G, 1 + 3·C) values.

    The grid is the ML average's (or the first prediction curve's, or the first
    curve's when there is no ML prediction); curves on another grid
    (absolute energies with per-site E0) are linearly interpolated onto it and
    are NaN outside their own range.
    """
    if not curves:
        return ["energy_ev"], np.zeros((0, 1))
    predicted = [c for c in curves if c.kind == "prediction"] or list(curves)
    base = next((c for c in predicted if c.site is None), predicted[0])
    grid = np.asarray(base.energy, dtype=float)
    columns = [grid]
    header = ["energy_ev"]
    for curve in curves:
        same = len(curve.energy) == len(grid) and np.allclose(curve.energy, grid)
        for suffix, values in (("", curve.mu), ("_d1", curve.d1), ("_d2", curve.d2)):
            column = values if same else np.interp(grid, curve.energy, values, left=np.nan, right=np.nan)
            columns.append(np.asarray(column, dtype=float))
            header.append(f"{curve.label}{suffix}")
    return header, np.column_stack(columns)


def _column_name(label: str) -> str:
    # Spreadsheet- and pandas-friendly: letters, digits and single underscores.
    return re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_") or "curve"


def write_csv(path: str | Path, curves: Sequence[Curve], metadata: Mapping[str, Any]) -> Path:
    """Write curves (μ, dμ/dE, d²μ/dE² each) on one energy grid with a '#' metadata header.

    Raises:
        ValueError: nothing to export.
        OSError: the file could not be written.
    """
    if not curves:
        raise ValueError("no spectra to export; predict first")
    path = Path(path)
    header, table = curves_table(curves)
    buffer = io.StringIO()
    for key, value in metadata.items():
        buffer.write(f"# {key}: {value}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_column_name(h) for h in header])
    for row in table:
        writer.writerow(["" if np.isnan(v) else f"{v:.8g}" for v in row])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def export_spectra_csv(state: AppState, curves: Sequence[Curve], path: str | Path) -> Path:
    """Write the shown ``curves`` (prediction, FEFF10, measured) with their derivatives as CSV.

    The header records the structure, model and device (or the energy reference
    without a prediction), the FEFF10 runs, the measured files and the alignment shift.

    Raises:
        ValueError: no curves.
        OSError: the file could not be written.
    """
    prediction, doc = state.predictions.shown_prediction(), state.structures.current
    if not curves:
        raise ValueError("no spectra to export; predict first")
    reference = curves[0].reference
    if prediction is not None and doc is not None:
        meta = csv_metadata(prediction, reference=reference, source=doc.structure.source,
                            structure_name=doc.title, device=state.predictions.device)
    else:
        meta = {"program": "xanes-gui",
                "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "energy_reference": energy_reference_text(reference, None)}
        if doc is not None:
            meta["structure"] = doc.title
            meta["structure_source"] = doc.structure.source or "(in memory)"
    for result in state.simulations.results().values():
        meta[f"feff_{result.preset}"] = f"FEFF10 preset {result.preset}, {result.edge} edge, {result.structure_dir}"
    for doc_m in state.measured.visible():
        meta[f"measured_{doc_m.label}"] = f"{doc_m.path} ({doc_m.data.channel}, " \
                                          f"{'flattened' if doc_m.use_flat else 'normalized'})"
    if any(c.kind == "measured" for c in curves):
        meta["alignment_shift_ev"] = f"{state.measured.align.shift_ev:.3f}"
    return write_csv(path, curves, meta)


def export_comparison_csv(state: AppState, path: str | Path, measured_id: str | None = None) -> Path:
    """Write the aligned comparison of a measured spectrum (the current one by default) with the
    prediction or FEFF10 spectrum it was compared with (backend.comparison_to_csv). The header
    records the element's energy calibration ("none (free alignment)" without one).

    Raises:
        ValueError: nothing compared for that spectrum (no prediction, no overlap, ...).
        OSError: the file could not be written.
    """
    doc_m = state.measured.doc(measured_id)
    if doc_m is None:
        raise ValueError("no measured spectrum to compare; import one first")
    result = state.measured.comparisons.get(doc_m.id)
    if result is None:
        raise ValueError(f"{doc_m.label} has not been compared; predict a spectrum first")
    if isinstance(result, str):
        raise ValueError(f"{doc_m.label}: {result}")
    meta = {"program": "xanes-gui", "measured_file": doc_m.path, "measured_label": doc_m.label,
            "measured_channel": doc_m.data.channel}
    if doc_m.data.group:
        meta["athena_group"] = doc_m.data.group
    if doc_m.norm is not None:
        used = doc_m.norm.params
        meta["normalization"] = ", ".join(f"{k}={getattr(used, k)}" for k in NORM_FIELDS)
    target = state.measured.comparison_target()
    prediction, doc = state.predictions.shown_prediction(), state.structures.current
    if doc is not None:
        meta["structure"] = doc.title
        meta["structure_source"] = doc.structure.source or "(in memory)"
    if target is not None and target[0] == "ml" and prediction is not None:
        meta["model"] = prediction.model_name
        meta["trained"] = str(bool(prediction.trained)).lower()
        if not prediction.trained:
            meta["warning"] = "UNTRAINED model - predictions are not meaningful"
    elif target is not None:
        meta["predicted"] = "FEFF10 " + ", ".join(state.simulations.results())
    calibration = state.interpret.calibration()
    if calibration is not None:
        meta.update(calibration.header_items())
    else:
        meta["calibration"] = "none (free alignment)"
    path = Path(path)
    state.backend.comparison_to_csv(result, str(path), meta)
    return path
