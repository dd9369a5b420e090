"""`nox -s bench`: speed figures of the built images, as ratios taken in one run.

Nothing here asserts a time; the numbers are printed and written to reports/bench.json.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from pybase import engine, images, paths, tags
from pybase.matrix import Matrix, Target

REPORT = paths.REPORTS / "bench.json"


def _median_seconds(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _size(ref: str) -> int:
    image = engine.inspect(ref)
    if image is None:
        raise engine.EngineError(f"image {ref} is missing: run `nox -s build` first")
    return image.size


def measure(matrix: Matrix, target: Target, runs: int = 7) -> dict[str, float]:
    ref = tags.local_ref(matrix, target, "runtime")
    with_entrypoint = _median_seconds(
        lambda: engine.docker("run", "--rm", ref, "true", capture=True), runs)
    without = _median_seconds(
        lambda: engine.docker("run", "--rm", "--entrypoint", "true", ref, capture=True), runs)
    # Inside one container, so that container set-up does not drown the script's own cost.
    loop = "i=0; while [ $i -lt 200 ]; do {cmd}; i=$((i+1)); done"
    name = f"pybase-bench-{int(time.time())}"
    engine.docker("run", "-d", "--rm", "--name", name, ref, "sleep", "300", capture=True)
    try:
        def inside(cmd: str) -> Callable[[], object]:
            return lambda: engine.docker("exec", name, "sh", "-c", loop.format(cmd=cmd),
                                         capture=True)
        entry_200 = _median_seconds(inside("/usr/local/bin/python-base-entrypoint true"), 3)
        plain_200 = _median_seconds(inside("/bin/true"), 3)
        health_20 = _median_seconds(
            lambda: engine.docker("exec", "-e", "HEALTHCHECK_DISABLE=1", name, "sh", "-c",
                                  loop.replace("200", "20").format(
                                      cmd="/usr/local/bin/python-base-healthcheck >/dev/null"),
                                  capture=True), 3)
    finally:
        engine.docker("rm", "-f", name, capture=True, check=False)
    started = time.perf_counter()
    images.build(matrix, target, "runtime", quiet=True)
    warm_rebuild = time.perf_counter() - started
    return {
        "container_start_s": with_entrypoint,
        "container_start_ratio_vs_no_entrypoint": with_entrypoint / without,
        "entrypoint_overhead_ms": (entry_200 - plain_200) / 200 * 1000,
        "healthcheck_run_ms": health_20 / 20 * 1000,
        "warm_rebuild_s": warm_rebuild,
        "size_mb": _size(ref) / 1e6,
        "size_ratio_vs_upstream": _size(ref) / _size(target.upstream_image),
    }


def run(matrix: Matrix, targets: list[Target]) -> dict[str, dict[str, float]]:
    results = {t.key: measure(matrix, t) for t in targets}
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    for key, figures in results.items():
        print(f"bench {key}:")
        for name, value in figures.items():
            print(f"  {name:42} {value:10.3f}")
    return results
