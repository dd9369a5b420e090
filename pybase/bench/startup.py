"""Start-up cost: in-container runs of `python -c pass`, bare and through tini and our
entrypoint (with and without three `*_FILE` secrets), beside the upstream image; and the whole
`docker run --rm` of each image."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from pybase.bench.stats import Summary
from pybase.infra import engine

PROBE = Path(__file__).with_name("startup_probe.py")
# The probe's case names (startup_probe.py) that the report compares with upstream.
BARE = "python -c pass"
FILE_SECRETS = "python -m file_secrets true"
ENTRYPOINT = "tini + entrypoint"


@dataclass(frozen=True)
class Startup:
    ours: dict[str, Summary]      # case -> in-container timings
    upstream: Summary             # bare `python -c pass` in the upstream image
    container_ours: Summary       # `docker run --rm IMAGE python -c pass`, through the entrypoint
    container_upstream: Summary


def _probe(ref: str, runs: int) -> dict[str, list[float]]:
    # --entrypoint: the probe itself must not run through the entrypoint it measures.
    result = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "python3", ref,
                           "-c", PROBE.read_text(encoding="utf-8"), str(runs), capture=True)
    samples: dict[str, list[float]] = json.loads(result.stdout)
    return samples


def _container_runs(refs: tuple[str, str], runs: int) -> tuple[Summary, Summary]:
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for ref, into in zip(refs, samples, strict=True):
            started = time.perf_counter()
            engine.docker("run", "--rm", "--network", "none", ref, "python", "-c", "pass",
                          capture=True)
            into.append(time.perf_counter() - started)
    return Summary.of(samples[0]), Summary.of(samples[1])


def measure(ref: str, upstream: str, rounds: int = 4, runs: int = 11,
            container_runs: int = 7) -> Startup:
    """Ours and upstream take turns, `rounds` containers each with `runs` starts per case, so
    a busy spell on the machine falls on both rather than on whichever ran then."""
    ours: dict[str, list[float]] = {}
    theirs: list[float] = []
    for round_ in range(rounds):
        for image in (ref, upstream) if round_ % 2 == 0 else (upstream, ref):
            found = _probe(image, runs)
            if image == upstream:
                theirs += found[BARE]
            else:
                for case, values in found.items():
                    ours.setdefault(case, []).extend(values)
    container_ours, container_upstream = _container_runs((ref, upstream), container_runs)
    return Startup({case: Summary.of(values) for case, values in ours.items()},
                   Summary.of(theirs), container_ours, container_upstream)
