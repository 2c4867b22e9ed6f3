"""Training data: reading simulated spectra with their structures, preprocessing
(normalization, grid interpolation, screening) and cached, graph-ready datasets.

Modules:
    records: :class:`SpectrumRecord`, one absorber site with its raw spectrum.
    sources: every record of a source, whatever its layout (:func:`load_records`).
    trees: a folder or an archive as a file tree; the load report; ``splits/`` id lists.
    feff_source / fdmnes_source: the FEFF (OmniXAS, run folders) and XANESNET-FDMNES layouts.
    preprocess: interpolation to the model grid, screening (targets are normalized by
        :func:`model_core.spectra.normalize.normalize_target`).
    dataset: :func:`prepare_dataset` -> :class:`PreparedDataset` (cached on disk).
"""

from trainer.data.records import SpectrumRecord
from trainer.data.sources import LoadReport, load_records, read_splits
from trainer.data.preprocess import interpolate_to_grid
from trainer.data.dataset import PreparedDataset, prepare_dataset

__all__ = [
    "LoadReport",
    "PreparedDataset",
    "SpectrumRecord",
    "interpolate_to_grid",
    "load_records",
    "prepare_dataset",
    "read_splits",
]
