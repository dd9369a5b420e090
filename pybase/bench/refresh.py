"""What a refresh costs on a warm machine: the Debian base made again from today's archive
(mmdebstrap) and CPython assembled on it from its cached tree, with no build cache, the way a
refresh after an archive change runs. Bench-only tags; the real upstream images are untouched.

Because the base is reproducible, the bench base is normally the same image as the current
one; the report says so (a difference means the archive moved since the last bootstrap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pybase.core.matrix import Target
from pybase.infra import emulation, engine
from pybase.upstream import cpython_build, debian_base


@dataclass(frozen=True)
class BaseRefresh:
    release: str
    seconds: float
    same_as_current: bool  # the same image ID as today's debian:<release>-slim


@dataclass(frozen=True)
class Refresh:
    bases: list[BaseRefresh]
    assemble_s: dict[str, float]  # target key -> seconds

    def per_image(self, target_key: str, release: str) -> float:
        """Base time shared by the release's images counts once for each: the worst case."""
        base = next(b.seconds for b in self.bases if b.release == release)
        return base + self.assemble_s[target_key]

    @property
    def total(self) -> float:
        return sum(b.seconds for b in self.bases) + sum(self.assemble_s.values())


def measure(targets: list[Target], optimize: bool) -> Refresh:
    """The refresh of the engine's own platform: another platform's (mmdebstrap and apt under
    emulation) is not what a maintainer waits for on a native runner."""
    targets = [t for t in targets if emulation.is_native(t.arch)]
    bases = []
    made: dict[str, str] = {}
    for release in dict.fromkeys(t.release for t in targets):
        ref = made[release] = f"pybase-bench/debian:{release}-slim"
        started = time.perf_counter()
        debian_base.build_debian(release, arch=emulation.native_arch(), ref=ref,
                                 reason="bench: timing a refresh")
        bases.append(BaseRefresh(release, time.perf_counter() - started,
                                 engine.image_id(ref) == engine.image_id(f"debian:{release}-slim")))
    assemble_s = {}
    for target in targets:
        started = time.perf_counter()
        cpython_build.assemble(target, optimize=optimize, force=True, no_cache=True,
                               base=made[target.release],
                               ref=f"pybase-bench/python:{target.key}-refreshed")
        assemble_s[target.key] = time.perf_counter() - started
    return Refresh(bases, assemble_s)
