"""Shared CLI plumbing: negative option values, paths named as given, fast path checks."""

from __future__ import annotations

import pytest

from model_core.cli.common import check_paths, error_message, join_negative_values, require_paths
from model_core.io import StructureReadError
from model_core.spectra.measured import MeasuredReadError


def test_join_negative_values() -> None:
    argv = ["a.cif", "--window", "-20,80", "--shift", "-3", "--window=-1,2", "--window", "5,6"]
    assert join_negative_values(argv, ("--window",)) == [
        "a.cif", "--window=-20,80", "--shift", "-3", "--window=-1,2", "--window", "5,6"]
    assert join_negative_values(["--window", "--json"], ("--window",)) == ["--window", "--json"]
    assert join_negative_values(["--window"], ("--window",)) == ["--window"]


def test_error_message_names_the_path_as_given() -> None:
    structure = StructureReadError("./data/CuO.cif", "not a readable cif structure")
    assert str(structure) == "CuO.cif: not a readable cif structure"
    assert error_message(structure, ["./data/CuO.cif"]) == "./data/CuO.cif: not a readable cif structure"
    measured = MeasuredReadError("data/cu.xdi: the file is empty")  # spectrum readers normalize the path
    assert error_message(measured, ["./data/cu.xdi"]) == "./data/cu.xdi: the file is empty"
    assert error_message(ValueError("cu.xdi: bad\nthing"), ["../x/cu.xdi"]) == "../x/cu.xdi: bad thing"
    assert error_message(ValueError("no model named 'x'"), ["a.cif"]) == "no model named 'x'"


def test_check_paths(tmp_path) -> None:
    (tmp_path / "here.cif").write_text("x")
    assert check_paths([str(tmp_path / "here.cif")]) == []
    assert check_paths(["nope/x.cif", str(tmp_path)]) == [
        "nope/x.cif: file not found", f"{tmp_path}: is a folder, not a file"]
    with pytest.raises(SystemExit) as exc:
        require_paths(["nope/x.cif"])
    assert exc.value.code == 2
