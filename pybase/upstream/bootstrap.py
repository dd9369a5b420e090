"""`pybase bootstrap`: the upstream images of the selected entries, in order. Each Debian base
once per release and platform (made again when the archive moved and `refresh` asks, or when the OS-upgrade
payload of today's images says the base is stale), then per entry the compiled CPython tree (only
when its key changed) and its assembly on the base."""

from __future__ import annotations

from collections.abc import Callable

from pybase.core.matrix import Matrix, Target
from pybase.infra import emulation, engine
from pybase.upstream import Outcome, cpython_build, debian_base, payload


def run(m: Matrix, targets: list[Target], *, refresh: bool = False, recompile: bool = False,
        optimize: bool | None = None, echo: Callable[[str], None] = print) -> list[Outcome]:
    engine.require()
    optimize = m.cpython.optimize if optimize is None else optimize
    # Measured before anything is made again: the images built on today's bases.
    stale = payload.stale_bases(m, targets)
    outcomes: list[Outcome] = []

    def made(outcome: Outcome) -> None:
        outcomes.append(outcome)
        verb = "reused" if outcome.reused else "made"
        echo(f"bootstrap: {verb} {outcome.image} in {outcome.seconds:.1f} s ({outcome.why})")

    emulation.ensure(t.arch for t in targets)
    native_platform = f"linux/{emulation.native_arch()}"
    # A cross-compiled tree is built by the same entry's native tree, on the native base.
    natives = {t.name: m.on(t, native_platform) for t in targets}
    bases = {(t.release, t.debian_image, t.arch): None for t in targets}
    bases |= {(n.release, n.debian_image, n.arch): None for n in natives.values()}
    for release, ref, arch in bases:
        made(debian_base.build_debian(release, arch=arch, ref=ref, refresh=refresh,
                                      reason=stale.get(ref, "")))
    compiled: set[str] = set()
    for target in targets:
        native = natives[target.name]
        for tree in (native, target):
            if tree.name not in compiled:
                compiled.add(tree.name)
                made(cpython_build.build_tree(tree, optimize=optimize, native=native,
                                              force=recompile))
        made(cpython_build.assemble(target, optimize=optimize))
    fresh = [o for o in outcomes if not o.reused]
    echo(f"bootstrap: {len(fresh)} of {len(outcomes)} images made "
         f"({'optimized' if optimize else 'no PGO/LTO'}) in {sum(o.seconds for o in outcomes):.0f} s")
    return outcomes
