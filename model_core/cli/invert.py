"""``xanes-invert``: candidate local structures for a spectrum.

Usage::

    xanes-invert SPECTRUM [--group NAME] --element EL [--model NAME_OR_PATH] [--samples N]
                 [--retrieval K] [--refine K] [--counts retrieval|model] [--seed S] [--device auto|cpu|cuda]
                 [--out DIR] [--json]

SPECTRUM is anything ``xanes-compare --measured`` reads. It is put on the
forward model's grid (:mod:`model_core.inverse.spectrum`), N clusters are
sampled from the diffusion model and the K nearest training sites retrieved,
every candidate is predicted with the forward model and ranked by its
round-trip MSE; the best ``--refine`` K (default 2, 0: none) are refined against
the spectrum (shell distances, as ``xanes-refine``) into ``"refined"`` candidates,
scored the same way and ranked with the rest (:func:`model_core.inverse.api.invert`).

Output: a table on stdout, or with ``--json`` one object
``{"samples": [{"method", "coordination_number", "first_shell_distance_a",
"neighbours", "roundtrip_mse", "xyz" (with --out)}, ...], ...}``, best first; a
refined sample also has ``"refined_from"`` (the method it started from) and, when
that was a retrieval candidate, its ``"source_id"``.
``--out DIR`` writes each candidate as extended XYZ, absorber first
(``NN_<method>.xyz``). Bad input exits with status 2 and one ``error: FILE: problem`` line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from model_core.cli.common import CliError, fail, int_at_least


_count = int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanes-invert",
        description="Infer candidate local structures (absorber-centred clusters) from a K-edge XANES spectrum.")
    parser.add_argument("spectrum", metavar="SPECTRUM",
                        help="spectrum file: XDI, Athena .prj, column/CSV file, FEFF xmu.dat, FDMNES output")
    parser.add_argument("--group", help="Athena project group (default: the first)")
    parser.add_argument("--element", required=True, help="absorbing element, e.g. Cu")
    parser.add_argument("--model", help="inverse model name or folder (default: the shipped one for --element)")
    parser.add_argument("--samples", type=_count, default=16, metavar="N",
                        help="clusters sampled from the diffusion model (default 16)")
    parser.add_argument("--retrieval", type=_count, default=3, metavar="K",
                        help="nearest training sites added as candidates (default 3)")
    parser.add_argument("--refine", type=_count, default=2, metavar="K",
                        help="best candidates refined against the spectrum (shell distances) and added "
                             "as 'refined' candidates (default 2; 0: none)")
    parser.add_argument("--counts", choices=("retrieval", "model"), default="retrieval",
                        help="atom counts of the diffusion samples: from the nearest training sites "
                             "(default) or the model's count head")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    parser.add_argument("--device", default="cpu", help="device of the forward model: auto, cpu, cuda, cuda:N, mps")
    parser.add_argument("--out", metavar="DIR", help="write each candidate as extended XYZ into DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _write_xyz(candidate: Any, path: Path, rank: int) -> None:
    from ase.io import write

    from model_core.io.convert import to_ase

    atoms = to_ase(candidate.structure())
    atoms.info.update({"method": candidate.method, "rank": rank, "roundtrip_mse": candidate.roundtrip_mse,
                       "coordination_number": candidate.coordination_number,
                       "first_shell_distance_a": candidate.first_shell_distance_a,
                       "source_id": candidate.source_id or "none"})
    if candidate.refined_from:
        atoms.info["refined_from"] = candidate.refined_from
    write(str(path), atoms, format="extxyz")


def run_invert(args: argparse.Namespace, stdout=None) -> dict[str, Any]:
    """Run ``xanes-invert`` for parsed ``args``; returns the JSON summary.

    Raises:
        CliError, ValueError, OSError: bad input (turned into one line by :func:`main`).
    """
    from model_core.inverse.api import invert, load_inverse
    from model_core.inverse.spectrum import read_spectrum_on_grid
    from model_core.types import atomic_number, element_symbol

    stdout = stdout or sys.stdout
    try:
        element = element_symbol(atomic_number(args.element))
    except ValueError as exc:
        raise CliError(f"--element {args.element}: {exc}") from exc
    if not Path(args.spectrum).is_file():
        raise CliError(f"{args.spectrum}: no such file")
    model = load_inverse(args.model, element=element, device=args.device)
    spectrum = read_spectrum_on_grid(args.spectrum, model.energy_ev, group=args.group,
                                     edge_offset_ev=model.library.edge_offset_ev, element=element)
    candidates = invert(spectrum, element, args.samples, n_retrieval=args.retrieval, n_refine=args.refine,
                        model=model, seed=args.seed, counts=args.counts)
    out_dir = None
    if args.out:
        out_dir = Path(args.out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot create the folder ({exc.strerror or exc})") from exc
    samples = []
    for rank, candidate in enumerate(candidates, start=1):
        entry: dict[str, Any] = {
            "method": candidate.method, "coordination_number": int(candidate.coordination_number),
            "first_shell_distance_a": _finite(candidate.first_shell_distance_a),
            "neighbours": dict(candidate.neighbours), "roundtrip_mse": _finite(candidate.roundtrip_mse),
            "shift_ev": candidate.shift_ev, "scale": candidate.scale, "n_atoms": int(len(candidate.atomic_numbers)),
        }
        if candidate.source_id:
            entry["source_id"] = candidate.source_id
        if candidate.refined_from:
            entry["refined_from"] = candidate.refined_from
        if out_dir is not None:
            path = out_dir / f"{rank:02d}_{candidate.method}.xyz"
            try:
                _write_xyz(candidate, path, rank)
            except OSError as exc:
                raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from exc
            entry["xyz"] = str(path)
        samples.append(entry)
    summary = {"spectrum": str(args.spectrum), "group": args.group, "element": element, "model": model.name,
               "forward_model": model.forward.info.name, "alignment": spectrum.alignment,
               "warnings": list(spectrum.warnings), "samples": samples}
    if args.json:
        stdout.write(json.dumps(summary) + "\n")
    else:
        stdout.write(f"# spectrum: {args.spectrum}\n# model: {model.name} (forward {model.forward.info.name})\n"
                     f"# alignment: {spectrum.alignment}\n")
        stdout.write("rank,method,coordination_number,first_shell_distance_a,neighbours,roundtrip_mse"
                     + (",xyz" if out_dir is not None else "") + "\n")
        for rank, entry in enumerate(samples, start=1):
            neighbours = " ".join(f"{k}{v}" for k, v in entry["neighbours"].items())
            distance = entry["first_shell_distance_a"]
            row = (f"{rank},{entry['method']},{entry['coordination_number']},"
                   f"{'' if distance is None else f'{distance:.3f}'},{neighbours},{entry['roundtrip_mse']:.4g}")
            stdout.write(row + (f",{entry['xyz']}" if out_dir is not None else "") + "\n")
        for warning in spectrum.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xanes-invert``; returns 0, or exits with status 2 on bad input."""
    args = build_parser().parse_args(argv)
    try:
        run_invert(args)
    except (CliError, ValueError, OSError, IndexError) as exc:
        fail(str(exc))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
