"""Interpreter speed (`-- --speed`): our CPython against the same version built without PGO/LTO,
the same built with a statically linked interpreter, and Debian's own python3.13 (built by Debian
with PGO+LTO, its /usr/bin/python3.13 linked statically), in containers on this machine in one run.

The comparison images are bench-only and kept by their tags for later runs:
`pybase-bench/python:<version>-slim-<release>-noopt` (images/python/Dockerfile with
PYTHON_OPTIMIZE=0, ~4 min on 2 cores), `...-static` (PGO+LTO without --enable-shared, ~15 min)
and `pybase-bench/debian-python:<release>` (the archive's package in debian:<release>-slim).
Rounds alternate the images, so a busy moment on a shared machine slows all of them alike; each
figure is the median over rounds of a best-of-K."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pybase import engine, upstream
from pybase.bench.stats import RatioSpread
from pybase.matrix import Target

WORKLOADS = Path(__file__).with_name("workloads.py")
DEBIAN_RELEASE = "trixie"  # the distribution build compared against: trixie's python3.13
DEBIAN_MINOR = "3.13"
# Ours with one change: the interpreter linked statically, as Debian links its own.
STATIC = "same, static interpreter (no --enable-shared)"


@dataclass(frozen=True)
class Contender:
    label: str
    ref: str
    python: str
    version: str = ""


@dataclass(frozen=True)
class Speed:
    contenders: list[Contender]
    seconds: dict[str, dict[str, float]]  # label -> workload -> median of best-of-K
    ratios: dict[str, RatioSpread]        # label -> how many times faster ours is than it
    rounds: int
    best_of: int


def static_dockerfile(text: str) -> str:
    """images/python/Dockerfile without --enable-shared: the interpreter links libpython
    statically (as Debian's /usr/bin/python3.X does), everything else the same."""
    line = "        --enable-shared \\\n"
    if text.count(line) != 1:
        raise engine.EngineError("images/python/Dockerfile: no single --enable-shared line")
    return text.replace(line, "")


def python_variant(target: Target, suffix: str, *, optimize: bool, shared: bool) -> str:
    """Our upstream recipe, built under a bench-only tag (kept for later runs) with one change."""
    ref = f"pybase-bench/python:{target.python.version}-slim-{target.release}-{suffix}"
    if engine.inspect(ref) is not None:
        return ref
    with tempfile.TemporaryDirectory(prefix="pybase-bench-python-") as tmp:
        os.link(upstream.source_tarball(target.python), Path(tmp) / "Python.tar.xz")
        text = upstream.PYTHON_DOCKERFILE.read_text(encoding="utf-8")
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(text if shared else static_dockerfile(text), encoding="utf-8")
        engine.docker(
            "build", "--progress=plain", "-f", str(dockerfile),
            "--build-arg", f"DEBIAN_IMAGE={target.debian_image}",
            "--build-arg", f"PYTHON_VERSION={target.python.version}",
            "--build-arg", f"PYTHON_SHA256={target.python.sha256}",
            "--build-arg", f"PYTHON_OPTIMIZE={int(optimize)}",
            "-t", ref, tmp, capture=True)
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


def _workloads(contender: Contender, best_of: int) -> dict[str, float]:
    result = engine.docker("run", "--rm", "--network", "none", "--entrypoint", contender.python,
                           contender.ref, "-c", WORKLOADS.read_text(encoding="utf-8"),
                           str(best_of), capture=True)
    found: dict[str, float] = json.loads(result.stdout)
    return found


def ratios(seconds: dict[str, dict[str, float]], ours: str) -> dict[str, RatioSpread]:
    """Per other contender: its time over ours per workload (> 1: ours is faster), summarized."""
    return {label: RatioSpread.of([times[w] / seconds[ours][w] for w in seconds[ours]])
            for label, times in seconds.items() if label != ours}


def measure(ours_ref: str, target: Target, rounds: int = 5, best_of: int = 3) -> Speed:
    contenders = [
        Contender("ours (PGO+LTO)", ours_ref, "/usr/local/bin/python3"),
        Contender("same version, no PGO/LTO",
                  python_variant(target, "noopt", optimize=False, shared=True),
                  "/usr/local/bin/python3"),
        Contender(STATIC, python_variant(target, "static", optimize=True, shared=False),
                  "/usr/local/bin/python3"),
        Contender(f"Debian {DEBIAN_RELEASE} python{DEBIAN_MINOR}", debian_image(),
                  f"/usr/bin/python{DEBIAN_MINOR}"),
    ]
    contenders = [Contender(c.label, c.ref, c.python, _version(c)) for c in contenders]
    samples: dict[str, list[dict[str, float]]] = {c.label: [] for c in contenders}
    for round_ in range(rounds):
        # Each round starts with another contender: none always runs first or last.
        for contender in contenders[round_ % len(contenders):] + contenders[:round_ % len(contenders)]:
            samples[contender.label].append(_workloads(contender, best_of))
    seconds = {label: {w: statistics.median(r[w] for r in runs) for w in runs[0]}
               for label, runs in samples.items()}
    return Speed(contenders, seconds, ratios(seconds, contenders[0].label), rounds, best_of)
