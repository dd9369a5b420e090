"""`nox -s bench`: size, start-up, build and test times of every built image beside its upstream,
and with `-- --speed` the interpreter's speed, all taken in one run on this machine.

Writes reports/bench.json (every figure) and reports/bench.md (targets met or missed, tables),
and prints the Markdown. Nothing here asserts a time.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence

from pybase.bench import builds, junit, refresh, report, sizes, speed, startup
from pybase.bench.results import RUNTIME, Machine, PlatformSizes, Results, TargetResult
from pybase.core import paths, tags
from pybase.core.matrix import Matrix, Target
from pybase.infra import emulation, engine
from pybase.upstream import payload

JSON_REPORT = paths.REPORTS / "bench.json"
MARKDOWN_REPORT = paths.REPORTS / "bench.md"


def _speed_target(targets: list[Target]) -> Target | None:
    """The entry compared with Debian's python3.13 build: the same minor on the same release,
    on the engine's own platform."""
    return next((t for t in targets if t.python.minor == speed.DEBIAN_MINOR
                 and t.release == speed.DEBIAN_RELEASE and emulation.is_native(t.arch)), None)


def run(matrix: Matrix, targets: list[Target], with_speed: bool = False,
        compare: Sequence[str] = (), levers: Sequence[str] = (), with_builds: bool = True,
        ) -> Results:
    """`with_builds=False` leaves out the cold and warm builds and the refresh (minutes of
    `--no-cache` builds and mmdebstrap): a run that only needs sizes and start-up."""
    started = time.perf_counter()
    machine = Machine.here()
    built: dict[str, dict[str, str]] = {
        t.name: {v: tags.local_ref(matrix, t, v) for v in matrix.variants
                 if engine.inspect(tags.local_ref(matrix, t, v)) is not None}
        for t in targets}
    for target in targets:
        if RUNTIME not in built[target.name]:
            raise engine.EngineError(f"{tags.local_ref(matrix, target, RUNTIME)} is missing: "
                                     "run `nox -s build` first")
    measured = sizes.measure([*(t.upstream_image for t in targets),
                              *(ref for refs in built.values() for ref in refs.values())])
    every_platform = [PlatformSizes(t.name, t.platform, measured[t.upstream_image],
                                    {v: measured[ref] for v, ref in built[t.name].items()})
                      for t in targets]
    # Start-up, build times and the refresh are timed on the engine's own platform only: under
    # emulation they would measure qemu.
    targets = [t for t in targets if emulation.is_native(t.arch)]
    results = []
    for target in targets:
        refs = built[target.name]
        upstream = measured[target.upstream_image]
        ours: dict[str, sizes.ImageSize] = {variant: measured[ref] for variant, ref in refs.items()}
        print(f"bench {target.key}: start-up" + (", builds" if with_builds else ""), flush=True)
        results.append(TargetResult(
            target.key, upstream, ours, sizes.overhead(ours[RUNTIME], upstream),
            startup.measure(refs[RUNTIME], target.upstream_image),
            builds.measure(target) if with_builds else None,
            payload.upgrade_payload(refs[RUNTIME]) or 0))
    refreshed = None
    if with_builds:
        print("bench: refresh (Debian base from today's archive, CPython assembled)", flush=True)
        refreshed = refresh.measure(targets, matrix.cpython.optimize)
    speed_result = None
    if with_speed:
        chosen = _speed_target(targets)
        if chosen is None:
            raise engine.EngineError(f"--speed compares with Debian {speed.DEBIAN_RELEASE}'s "
                                     f"python{speed.DEBIAN_MINOR}: select a "
                                     f"{speed.DEBIAN_MINOR}-{speed.DEBIAN_RELEASE} entry")
        print(f"bench {chosen.key}: interpreter speed", flush=True)
        speed_result = speed.measure(built[chosen.name][RUNTIME], chosen, compare=compare,
                                     levers=levers)
    tested = {paths.report_name(ref) for refs in built.values() for ref in refs.values()}
    found = Results(machine, results, junit.read(tested), speed_result, refreshed,
                    matrix.debian.rebootstrap_payload_mb * payload.MB,
                    time.perf_counter() - started, every_platform)
    markdown = report.render(found)
    paths.REPORTS.mkdir(exist_ok=True)
    JSON_REPORT.write_text(json.dumps(dataclasses.asdict(found), indent=1) + "\n",
                           encoding="utf-8")
    MARKDOWN_REPORT.write_text(markdown, encoding="utf-8")
    print(markdown, flush=True)
    return found
