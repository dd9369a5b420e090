"""Interpreter speed on real programs: a pinned handful of pyperformance's own benchmarks, run by
pyperf inside an image, so that `-- --speed` compares interpreter builds on the suite the CPython
developers use rather than on our own micro-workloads alone.

The two pinned wheels are downloaded once with the host's pip into the cache; only pyperf and the
chosen benchmark directories are extracted, then mounted read-only into a fresh, offline
container. Nothing is installed in the image, so the same files run under any interpreter (ours,
Debian's python3 without pip). Every benchmark here needs nothing but pyperf (pyperf's own
optional psutil is not needed) and its standard library.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybase.core import paths
from pybase.infra import engine

PYPERFORMANCE = "pyperformance==1.14.0"
PYPERF = "pyperf==2.11.0"  # Requires-Python >=3.11: runs on the images' 3.13
# Pure Python on top of pyperf and the standard library. The first eight, each stressing
# another part of the interpreter, were the whole set until 2026-12 and are still reported on
# their own; the rest widen it so that no build choice is tuned to eight programs.
CORE = (
    "nbody",            # float arithmetic in tight loops, tuple unpacking
    "float",            # object allocation, attribute access, math calls
    "richards",         # small methods, attribute access: OO dispatch
    "deltablue",        # polymorphic calls, lists of objects
    "go",               # a larger program: classes, random, nested loops
    "spectral_norm",    # function calls and generator expressions
    "json_dumps",       # the _json C accelerator on dicts and strings
    "regex_v8",         # the sre engine
)
BENCHMARKS = (
    *CORE,
    "async_generators",  # asyncio's event loop driving async generators
    "chaos",            # floats, lists and small classes (a chaos-game image)
    "comprehensions",   # list and dict comprehensions over objects
    "coroutines",       # coroutine calls and awaits without an event loop
    "fannkuch",         # list slicing and reversal in a tight loop
    "generators",       # generator creation and resumption
    "hexiom",           # a puzzle solver: sets, dicts, recursion
    "json_loads",       # the _json decoder
    "meteor_contest",   # a board-packing search: sets, sorting, recursion
    "nqueens",          # generators, permutations, sets
    "pyflate",          # bit-level decompression in pure Python
    "raytrace",         # float math in methods, object creation
    "regex_effbot",     # many small regular expressions
    "richards_super",   # richards through super() calls
    "sqlite_synth",     # the sqlite3 module calling back into Python functions
    "telco",            # decimal arithmetic (the _decimal C module)
)
TIMEOUT = 300  # seconds per container: a hung benchmark must not hang the bench
MOUNT = "/bench"
OUTPUT = "/tmp/out.json"  # in the container's tmpfs: the rest of its file system is read-only
# Each worker process would compile pyperf again (0.4 s) as /bench is read-only: the first one
# writes the bytecode to the tmpfs instead, the others read it.
PYCACHE = "PYTHONPYCACHEPREFIX=/tmp/pycache"
# Runs the benchmark as pyperformance would (`python run_benchmark.py ...`), its report to
# stderr, then prints pyperf's JSON: stdout carries nothing else.
WRAPPER = (
    "import subprocess, sys\n"
    "code = subprocess.run([sys.executable, *sys.argv[1:]], stdout=2).returncode\n"
    "if code:\n"
    "    sys.exit(code)\n"
    "print(open(sys.argv[-1], encoding='utf-8').read())\n"
)


@dataclass(frozen=True)
class Sample:
    benchmark: str
    mean: float     # seconds per iteration, over every measured value
    stdev: float
    values: int     # how many values (warmups left out)


def _pins() -> str:
    return f"{PYPERFORMANCE}_{PYPERF}".replace("==", "-")


def fetch() -> Path:
    """The cache directory holding lib/pyperf and benchmarks/bm_<name>; downloaded only once."""
    root = paths.cache() / "pyperformance" / _pins()
    wanted = [root / "lib" / "pyperf", *(root / "benchmarks" / f"bm_{b}" for b in BENCHMARKS)]
    if all(p.is_dir() for p in wanted):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="download-", dir=root.parent) as tmp:
        # Wheels only: their layout is the one extracted below.
        engine.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "-d", tmp, PYPERFORMANCE, PYPERF],
                   what=f"pip download {PYPERFORMANCE} {PYPERF}", timeout=TIMEOUT,
                   error=engine.EngineError)
        staged = Path(tmp) / "staged"
        prefixes = {"pyperf/": "lib/pyperf/"} | {
            f"pyperformance/data-files/benchmarks/bm_{b}/": f"benchmarks/bm_{b}/"
            for b in BENCHMARKS}
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    for prefix, into in prefixes.items():
                        if name.startswith(prefix) and not name.endswith("/"):
                            target = staged / into / name[len(prefix):]
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(archive.read(name))
        missing = [p.relative_to(root) for p in wanted if not (staged / p.relative_to(root)).is_dir()]
        if missing:
            raise engine.EngineError(f"{PYPERFORMANCE} / {PYPERF}: the wheels lack "
                                     + ", ".join(map(str, missing)))
        # Readable by any container user (ours runs as 10001), whatever the host's umask.
        for path in [staged, *staged.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)  # an older, partial extraction
        staged.rename(root)
    return root


def parse(json_text: str, benchmark: str) -> Sample:
    """The benchmark's measured values in pyperf's JSON (benchmarks -> runs -> values).

    pyperf moves metadata shared by all benchmarks (a lone benchmark's name) to the document's
    top level, so a name is looked up there too. Warmups, and the calibration runs that hold
    only warmups, are left out.
    """
    document: dict[str, Any] = json.loads(json_text)
    common = document.get("metadata", {})
    names = []
    for bench in document.get("benchmarks", []):
        metadata = {**common, **bench.get("metadata", {})}
        names.append(str(metadata.get("name")))
        if metadata.get("name") != benchmark:
            continue
        if metadata.get("unit", "second") != "second":
            raise ValueError(f"pyperf {benchmark}: unit {metadata['unit']!r}, not seconds")
        values = [float(v) for run in bench.get("runs", []) for v in run.get("values", [])]
        if not values:
            raise ValueError(f"pyperf {benchmark}: no values in the JSON (only warmups?)")
        stdev = statistics.stdev(values) if len(values) > 1 else 0.0
        return Sample(benchmark, statistics.fmean(values), stdev, len(values))
    raise ValueError(f"pyperf JSON has no benchmark {benchmark!r}; it has: "
                     + (", ".join(names) or "none"))


def run(ref: str, python: str, benchmark: str, *, fast: bool = True) -> Sample:
    """One benchmark in a fresh offline container of `ref`, run by its interpreter `python`.

    fast: pyperf's --fast (10 processes x 2 values, a few seconds); else its default (20 x 3).
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"{benchmark}: not among the pinned benchmarks ({', '.join(BENCHMARKS)})")
    script = f"{MOUNT}/benchmarks/bm_{benchmark}/run_benchmark.py"
    result = engine.docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{fetch()}:{MOUNT}:ro", "-e", f"PYTHONPATH={MOUNT}/lib", "-e", PYCACHE,
        "--entrypoint", python, ref, "-c", WRAPPER,
        script, *(["--fast"] if fast else []), "--quiet",
        "--inherit-environ", PYCACHE.partition("=")[0],  # pyperf's workers get few variables
        "-o", OUTPUT,  # last: WRAPPER reads it from there
        capture=True, timeout=TIMEOUT, what=f"pyperformance {benchmark} in {ref}")
    return parse(result.stdout, benchmark)
