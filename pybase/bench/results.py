"""What one bench run measured, as plain dataclasses (written to reports/bench.json as they are),
and the machine it ran on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pybase.bench.builds import BuildTimes
from pybase.bench.junit import TestTimes
from pybase.bench.refresh import Refresh
from pybase.bench.sizes import ImageSize
from pybase.bench.speed import Speed
from pybase.bench.startup import Startup
from pybase.core.matrix import Variant
from pybase.infra import engine

RUNTIME: Variant = "runtime"  # the variant whose size and start-up are compared with upstream


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gib: float
    cpu: str
    kernel: str
    engine: str
    taken: str  # UTC, ISO 8601

    @classmethod
    def here(cls) -> Machine:
        def field(path: str, name: str) -> str:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except OSError:
                return ""
            return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(name)), "")
        kib = field("/proc/meminfo", "MemTotal").removesuffix("kB").strip() or "0"
        version = engine.server_version()
        return cls(os.cpu_count() or 0, int(kib) / 2**20, field("/proc/cpuinfo", "model name"),
                   platform.release(), f"{engine.chosen()} {'.'.join(map(str, version or ()))}",
                   datetime.now(UTC).replace(microsecond=0).isoformat())


@dataclass(frozen=True)
class TargetResult:
    key: str                           # "3.13.15-bookworm"
    upstream: ImageSize
    images: dict[str, ImageSize]       # variant -> our image
    overhead: dict[str, tuple[int, int]]  # cause -> (bytes, gzip bytes), runtime variant
    startup: Startup
    builds: BuildTimes | None  # None: not measured (`--no-builds`)
    upgrade_payload: int  # bytes the runtime image's OS-upgrade layer adds (pybase.upstream.payload)


@dataclass(frozen=True)
class PlatformSizes:
    """One entry's images on one platform, beside its upstream image of that platform."""

    name: str                          # "3.13.15-bookworm-arm64"
    platform: str                      # "linux/arm64"
    upstream: ImageSize
    images: dict[str, ImageSize]       # variant -> our image


@dataclass(frozen=True)
class Results:
    machine: Machine
    targets: list[TargetResult]        # the engine's own platform: sizes, start-up, builds
    tests: TestTimes | None
    speed: Speed | None
    refresh: Refresh | None  # None: not measured (`--no-builds`)
    payload_limit: int  # bytes: versions.yaml's debian.rebootstrap_payload_mb
    seconds: float  # the bench's own wall time
    platforms: list[PlatformSizes] = field(default_factory=list)  # every platform's sizes
