"""Record the shipped models' outputs on the example structures, and tiny checkpoints of
every format written by today's code, so later versions can prove they load and predict
the same (see tests/model_core/test_golden.py). Run once per intentional change of a
shipped model, keeping the tiny checkpoints (written by older code: they must stay):

    python tools/record_golden.py --models-only

Without ``--models-only`` the tiny checkpoints are written anew by today's code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "golden"

CASES = {  # model -> example structures predicted for every site of the model's element
    "cu-k-feff": ["Cu2O.cif", "CuO.cif"],
    "fe-k-fdmnes": ["Fe2O3.cif"],
}


def _record(predictor, structure, stem: str, arrays: dict) -> None:
    from model_core.types import SiteSelection

    sites = structure.indices_of(predictor.info.element)
    prediction = predictor.predict(structure, SiteSelection(sites))
    arrays[f"{stem}/mu"] = prediction.mu
    arrays[f"{stem}/average"] = prediction.average
    arrays[f"{stem}/sites"] = prediction.site_indices
    if prediction.e0_ev is not None:
        arrays[f"{stem}/e0_ev"] = prediction.e0_ev
    if prediction.mu_spread is not None:
        arrays[f"{stem}/mu_spread"] = prediction.mu_spread


def _tiny_checkpoints(arrays: dict) -> None:
    """Format 1 (single), 2 (ensemble) and 3 (mixed architectures) files, a few kB each."""
    import dataclasses

    sys.path.insert(0, str(ROOT))
    from model_core.checkpoint import load_checkpoint, make_ensemble, save_checkpoint
    from model_core.inference import XanesPredictor
    from tests.model_core.helpers import TINY_MODEL, cuprite, tiny_checkpoint

    single = tiny_checkpoint(OUT / "tiny_format1.pt", seed=1)
    other = tiny_checkpoint(OUT / "_tmp_member.pt", seed=2)
    wide = tiny_checkpoint(OUT / "_tmp_wide.pt", seed=3,
                           model_config=dataclasses.replace(TINY_MODEL, scalar_channels=12))
    members = [load_checkpoint(p) for p in (single, other, wide)]
    save_checkpoint(make_ensemble(members[:2]), OUT / "tiny_format2.pt")
    save_checkpoint(make_ensemble(members), OUT / "tiny_format3.pt")
    for tmp in (other, wide):
        Path(tmp).unlink()
    structure = cuprite()
    for fmt in (1, 2, 3):
        path = OUT / f"tiny_format{fmt}.pt"
        predictor = XanesPredictor(load_checkpoint(path), name=path.stem, path=str(path), device="cpu")
        _record(predictor, structure, f"tiny_format{fmt}/Cu2O", arrays)


def main() -> int:
    from model_core.inference import load_model
    from model_core.io import read_structure

    models_only = "--models-only" in sys.argv[1:]
    OUT.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    if models_only:
        with np.load(OUT / "outputs.npz") as old:
            arrays = {key: old[key] for key in old.files if key.startswith("tiny_format")}
    structures = ROOT / "resources" / "structures"
    for model, files in CASES.items():
        predictor = load_model(model, device="cpu")
        for name in files:
            _record(predictor, read_structure(structures / name), f"{model}/{Path(name).stem}", arrays)
    if not models_only:
        _tiny_checkpoints(arrays)
    np.savez_compressed(OUT / "outputs.npz", **arrays)
    print(f"wrote {len(arrays)} arrays to {OUT / 'outputs.npz'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
