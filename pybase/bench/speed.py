"""Interpreter speed (`-- --speed`): the pinned pyperformance benchmarks
(pybase.bench.pyperformance) run by our CPython, by the same recipe with one lever undone or
changed (each a bench-only build: the lever measured alone), by Debian's own python3.13 (PGO+LTO
at -O3, its /usr/bin/python3.13 linked statically and not a PIE) and by any image given with
`--compare`, in containers on this machine in one run.

The comparison images are bench-only and kept by their tags for later runs: their compiled trees
are `pybase-bench/cpython-tree:<version>-<release>-<key>-<variant>` (images/python/
compile.Dockerfile with other build args; ~15 min with PGO+LTO on 2 cores, longer with the
wider training), assembled as `pybase-bench/python:<version>-slim-<release>-<variant>`, and
`pybase-bench/debian-python:<release>` (the archive's package in debian:<release>-slim).
Each benchmark runs every contender in turn, starting with another one each round, so a busy
moment on a shared machine slows all of them alike; each figure is the mean over rounds of
pyperf's mean. Our image also runs as a second contender: how far it lands from itself is the
run's own noise, which the report states beside every ratio.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pybase.bench import pyperformance
from pybase.bench.stats import RatioSpread
from pybase.core.matrix import Target
from pybase.infra import engine
from pybase.upstream import cpython_build

DEBIAN_RELEASE = "trixie"  # the distribution build compared against: trixie's python3.13
DEBIAN_MINOR = "3.13"
# Ours with one lever undone or changed: (label, tag suffix, optimize, extra build args).
# Measured earlier and since dropped from the run (figures in compile.Dockerfile and
# versions.yaml): no PGO/LTO (1.20x slower) and frame pointers (5 % slower).
PIE = "PIE executable (the recipe until 2026-12)"
# The wider PGO training runs most of the regression suite (21 min on 2 cores). In a build
# container two test files and one test fail (no services database, no ptrace), and a failing
# profile run fails CPython's build, so they are left out of the training. The test goes by
# name (`-i`): regrtest's `-x` sees test_asyncio as one file, not its split parts.
PGO_EXTENDED = ("-m test --pgo-extended -j2 --timeout=$(TESTTIMEOUT) "
                "-i test_create_connection_service_name -x test_socket test_external_inspection")
# The same image as a second contender: its ratio to ours is this run's noise alone (an A/A
# comparison), the yardstick the report holds every other ratio against.
AGAIN = "ours again (the same image: this run's noise)"
# LTO alone is what the cross-compiled arm64 trees get (no PGO under emulation): built natively
# here, it measures what the missing PGO costs them, on this machine's architecture.
NO_PGO = "LTO without PGO (as the cross-compiled arm64 trees)"
BOLT = "BOLT after PGO+LTO"
VARIANTS = (
    (PIE, "pie", True, ("--build-arg", "PYTHON_PIE=1")),
    (NO_PGO, "lto", True, ("--build-arg", "PYTHON_OPTIMIZE=lto")),
    (BOLT, "bolt", True, ("--build-arg", "PYTHON_BOLT=1")),
    ("PGO trained on regrtest --pgo-extended", "pgo-extended", True,
     ("--build-arg", f"PYTHON_PGO_TASK={PGO_EXTENDED}")),
)


@dataclass(frozen=True)
class Contender:
    label: str
    ref: str
    python: str
    version: str = ""


@dataclass(frozen=True)
class Speed:
    contenders: list[Contender]
    seconds: dict[str, dict[str, float]]  # label -> benchmark -> mean over rounds of pyperf's mean
    stdev: dict[str, dict[str, float]]    # label -> benchmark -> largest pyperf stdev / mean
    ratios: dict[str, RatioSpread]        # label -> how many times faster ours is than it
    core_ratios: dict[str, RatioSpread]   # the same over pyperformance.CORE only
    rounds: int


def python_variant(target: Target, suffix: str, *, optimize: bool,
                   extra: tuple[str, ...]) -> str:
    """Our upstream recipe with other build args, under bench-only tags (kept for later runs)."""
    key = cpython_build.tree_key(target, optimize)
    tree = f"pybase-bench/cpython-tree:{target.key}-{key}-{suffix}"
    ref = f"pybase-bench/python:{target.python.version}-slim-{target.release}-{suffix}"
    cpython_build.build_tree(target, optimize=optimize, ref=tree, extra_args=extra)
    cpython_build.assemble(target, optimize=optimize, tree=tree, ref=ref)
    return ref


def debian_image() -> str:
    ref = f"pybase-bench/debian-python:{DEBIAN_RELEASE}"
    if engine.inspect(ref) is not None:
        return ref
    with tempfile.TemporaryDirectory(prefix="pybase-bench-debian-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM debian:{DEBIAN_RELEASE}-slim\n"
            "RUN apt-get update \\\n"
            f" && apt-get install -y --no-install-recommends python{DEBIAN_MINOR} \\\n"
            " && rm -rf /var/lib/apt/lists/*\n", encoding="utf-8")
        engine.docker("build", "--progress=plain", "-t", ref, tmp, capture=True)
    return ref


def _version(contender: Contender) -> str:
    return engine.docker("run", "--rm", "--network", "none", "--entrypoint", contender.python,
                         contender.ref, "-c", "import platform; print(platform.python_version())",
                         capture=True).stdout.strip()


def ratios(seconds: dict[str, dict[str, float]], ours: str,
           only: Sequence[str] = ()) -> dict[str, RatioSpread]:
    """Per other contender: its time over ours per workload (> 1: ours is faster), summarized;
    `only`: these workloads (default: all)."""
    chosen = [w for w in seconds[ours] if not only or w in only]
    return {label: RatioSpread.of([times[w] / seconds[ours][w] for w in chosen])
            for label, times in seconds.items() if label != ours}


def measure(ours_ref: str, target: Target, rounds: int = 2,
            compare: Sequence[str] = (), levers: Sequence[str] = ()) -> Speed:
    """`compare`: more images whose `python3` on PATH joins the comparison (e.g. an earlier
    build kept under another tag). `levers`: the VARIANTS (by tag suffix) to build and time;
    empty: all of them."""
    contenders = [
        Contender("ours", ours_ref, "/usr/local/bin/python3"),
        Contender(AGAIN, ours_ref, "/usr/local/bin/python3"),
        *(Contender(label, python_variant(target, suffix, optimize=optimize, extra=extra),
                    "/usr/local/bin/python3") for label, suffix, optimize, extra in VARIANTS
          if not levers or suffix in levers),
        Contender(f"Debian {DEBIAN_RELEASE} python{DEBIAN_MINOR}", debian_image(),
                  f"/usr/bin/python{DEBIAN_MINOR}"),
        *(Contender(ref, ref, "python3") for ref in compare),
    ]
    contenders = [Contender(c.label, c.ref, c.python, _version(c)) for c in contenders]
    samples: dict[str, dict[str, list[pyperformance.Sample]]] = {c.label: {} for c in contenders}
    for benchmark in pyperformance.BENCHMARKS:
        for round_ in range(rounds):
            # Each round starts with another contender: none always runs first or last.
            turn = (round_ + pyperformance.BENCHMARKS.index(benchmark)) % len(contenders)
            for contender in contenders[turn:] + contenders[:turn]:
                samples[contender.label].setdefault(benchmark, []).append(
                    pyperformance.run(contender.ref, contender.python, benchmark))
    seconds = {label: {b: statistics.fmean(s.mean for s in runs) for b, runs in found.items()}
               for label, found in samples.items()}
    stdev = {label: {b: max(s.stdev / s.mean for s in runs) for b, runs in found.items()}
             for label, found in samples.items()}
    ours = contenders[0].label
    return Speed(contenders, seconds, stdev, ratios(seconds, ours),
                 ratios(seconds, ours, pyperformance.CORE), rounds)
