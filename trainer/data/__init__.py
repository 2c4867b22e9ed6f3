"""Training data: reading simulated spectra with their structures, preprocessing
(normalization, grid interpolation, screening) and cached, graph-ready datasets.

Modules:
    records: :class:`SpectrumRecord`, one absorber site with its raw spectrum.
    sources: directory/archive readers (FEFF and XANESNET-FDMNES layouts), splits.
    preprocess: normalization, interpolation to the model grid, screening.
    dataset: :func:`prepare_dataset` -> :class:`PreparedDataset` (cached on disk).
"""

from trainer.data.records import SpectrumRecord
from trainer.data.sources import LoadReport, load_records, read_splits
from trainer.data.preprocess import Normalization, normalize, interpolate_to_grid
from trainer.data.dataset import PreparedDataset, prepare_dataset

__all__ = [
    "LoadReport",
    "Normalization",
    "PreparedDataset",
    "SpectrumRecord",
    "interpolate_to_grid",
    "load_records",
    "normalize",
    "prepare_dataset",
    "read_splits",
]
