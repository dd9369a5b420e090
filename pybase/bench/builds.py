"""Build times of our layers on the present upstream image: cold (`--no-cache`) and a warm
rebuild with nothing changed, each with the SBOM layer that `nox -s build` adds.

Both run on a bench-only copy, so that no regular tag (`python-base:*`) ever moves and nothing is
left behind that a regular build could pick up: the copy's runtime stage declares one more build
argument, set to a fresh value per run, so none of its cache keys equal those of `nox -s build`
(BuildKit records the layers of a `--no-cache` build under the keys it computed, and the next
regular build would take them and get a new image ID). The copy is tagged `pybase-bench/...` only
and removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pybase.build import images, sbom
from pybase.core.matrix import Target
from pybase.infra import engine

BENCH_REPOSITORY = "pybase-bench/python-base"
RUNTIME_STAGE = "FROM ${UPSTREAM_IMAGE} AS runtime\n"
COLD_ARG = "PYBASE_BENCH_COLD"


@dataclass(frozen=True)
class BuildTimes:
    cold_s: float
    warm_s: float


def isolated_dockerfile(text: str) -> str:
    """The Dockerfile with an extra ARG at the top of the runtime stage (see the module doc)."""
    if text.count(RUNTIME_STAGE) != 1:
        raise engine.EngineError("images/python-base/Dockerfile: no single runtime stage line "
                                 f"{RUNTIME_STAGE.strip()!r}")
    return text.replace(RUNTIME_STAGE, f"{RUNTIME_STAGE}ARG {COLD_ARG}\n")


def measure(target: Target) -> BuildTimes:
    upstream_id = images.upstream_digest(target)
    ref = f"{BENCH_REPOSITORY}:{target.key}-build"
    with tempfile.TemporaryDirectory(prefix="pybase-bench-build-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(images.CONTEXT, context)
        dockerfile = context / "Dockerfile"
        dockerfile.write_text(isolated_dockerfile(dockerfile.read_text(encoding="utf-8")),
                              encoding="utf-8")
        args = [
            "build", "--progress=plain", str(context), "-t", ref,
            *images.build_args(target, "runtime", digest=upstream_id,
                               os_upgrade_stamp=f"bench-{uuid.uuid4().hex}",
                               build_date="1970-01-01", revision="bench"),
            "--build-arg", f"{COLD_ARG}={uuid.uuid4().hex}",
        ]

        def timed(*extra: str) -> float:
            started = time.perf_counter()
            engine.docker(*args, *extra, capture=True)
            sbom.embed(ref, [], out_dir=Path(tmp))
            return time.perf_counter() - started
        try:
            cold = timed("--no-cache")
            return BuildTimes(cold, timed())
        finally:
            engine.docker("image", "rm", ref, capture=True, check=False)
