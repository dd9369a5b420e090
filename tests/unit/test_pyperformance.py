"""Reading pyperf's JSON, and the pins; no engine, no network."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pybase.bench import pyperformance
from pybase.bench.pyperformance import Sample, parse

# What `run_benchmark.py -o out.json` writes for one benchmark (values invented, metadata cut
# down): pyperf moves the metadata shared by all benchmarks, the name too, to the top level; the
# first run only calibrates the loops and holds warmups alone.
DOCUMENT: dict[str, Any] = {
    "version": "1.0",
    "metadata": {"name": "nbody", "unit": "second", "loops": 1, "perf_version": "2.11.0",
                 "python_version": "3.13.15 (64-bit)"},
    "benchmarks": [{"runs": [
        {"metadata": {"calibrate_loops": 1}, "warmups": [[1, 0.50], [1, 0.40]]},
        {"metadata": {"duration": 0.4}, "warmups": [[1, 9.0]], "values": [0.10, 0.12]},
        {"metadata": {"duration": 0.4}, "warmups": [[1, 9.0]], "values": [0.14, 0.12]},
    ]}],
}


def text(document: dict[str, Any]) -> str:
    return json.dumps(document)


def test_values_of_all_runs_are_combined_and_warmups_ignored() -> None:
    sample = parse(text(DOCUMENT), "nbody")
    assert (sample.benchmark, sample.values) == ("nbody", 4)
    assert sample.mean == pytest.approx(0.12)
    assert sample.stdev == pytest.approx(0.01633, rel=1e-3)


def test_name_in_the_benchmark_metadata_picks_that_benchmark() -> None:
    document = copy.deepcopy(DOCUMENT)
    del document["metadata"]["name"]
    first = document["benchmarks"][0]
    first["metadata"] = {"name": "unpack_sequence_tuple"}
    document["benchmarks"].append({"metadata": {"name": "nbody"},
                                   "runs": [{"values": [0.2]}]})
    assert parse(text(document), "nbody") == Sample("nbody", 0.2, 0.0, 1)
    assert parse(text(document), "unpack_sequence_tuple").values == 4


def test_another_benchmark_is_refused_and_named() -> None:
    with pytest.raises(ValueError, match=r"no benchmark 'float'; it has: nbody"):
        parse(text(DOCUMENT), "float")
    with pytest.raises(ValueError, match="it has: none"):
        parse(text({"version": "1.0", "benchmarks": []}), "nbody")


def test_a_document_with_only_warmups_is_refused() -> None:
    document = copy.deepcopy(DOCUMENT)
    for run in document["benchmarks"][0]["runs"]:
        run.pop("values", None)
    with pytest.raises(ValueError, match="no values"):
        parse(text(document), "nbody")


def test_a_unit_other_than_seconds_is_refused() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["metadata"]["unit"] = "byte"
    with pytest.raises(ValueError, match="unit 'byte'"):
        parse(text(document), "nbody")


@pytest.mark.parametrize(("pin", "name"), [(pyperformance.PYPERFORMANCE, "pyperformance"),
                                           (pyperformance.PYPERF, "pyperf")])
def test_pins_are_exact(pin: str, name: str) -> None:
    project, sep, version = pin.partition("==")
    assert (project, sep) == (name, "==")
    assert version.replace(".", "").isdigit() and version.count(".") == 2


def test_benchmarks_are_unique_wide_and_start_with_the_core() -> None:
    assert len(pyperformance.BENCHMARKS) >= 20
    assert len(set(pyperformance.BENCHMARKS)) == len(pyperformance.BENCHMARKS)
    assert pyperformance.BENCHMARKS[:len(pyperformance.CORE)] == pyperformance.CORE
