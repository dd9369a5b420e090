"""`pybase bootstrap`: the upstream images of the selected entries. Each Debian base once per
release and platform (made again when the archive moved and `refresh` asks, or when the
OS-upgrade payload of today's images says the base is stale), then per entry the compiled
CPython tree (only when its key changed) and its assembly on the base.

They form a graph (a cross-compiled tree is built by the native tree of the same entry), run
`jobs` steps at a time (pybase.core.steps): the two releases' compiles overlap, and the arm64
bases (mmdebstrap under qemu, mostly one core) are made while the trees compile. Each step's
build output goes to reports/bootstrap/<step>.log; the terminal gets a line per step.
"""

from __future__ import annotations

from collections.abc import Callable

from pybase.core import paths
from pybase.core.matrix import Matrix, Target
from pybase.core.steps import Step, default_jobs, run_all
from pybase.infra import emulation, engine
from pybase.upstream import Outcome, cpython_build, debian_base, payload

LOGS = paths.REPORTS / "bootstrap"


def _step(name: str, make: Callable[[], Outcome], echo: Callable[[str], None],
          after: tuple[str, ...] = ()) -> Step[Outcome]:
    """A bootstrap step whose commands write to its own log."""
    log = LOGS / ("".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name) + ".log")
    return Step(name, engine.logged(f"bootstrap: {name}", log, make, echo), after)


def plan(m: Matrix, targets: list[Target], *, optimize: bool, refresh: bool = False,
         recompile: bool = False, stale: dict[str, str] | None = None,
         echo: Callable[[str], None] = print) -> list[Step[Outcome]]:
    """The steps that make the targets' upstream images, each after what it needs, listed in
    the order a free slot takes them: the native bases unblock the compiles, which are the long
    path; the emulated bases fill the cores the compiles leave idle."""
    stale = stale or {}
    native_platform = f"linux/{emulation.native_arch()}"
    # A cross-compiled tree is built by the same entry's native tree, on the native base.
    natives = {t.name: m.on(t, native_platform) for t in targets}
    bases = {(t.release, t.debian_image, t.arch): None for t in targets}
    bases |= {(n.release, n.debian_image, n.arch): None for n in natives.values()}
    trees = {t.name: t for t in [*natives.values(), *targets]}

    def base_step(release: str, ref: str, arch: str) -> Step[Outcome]:
        return _step(f"base {ref}", lambda: debian_base.build_debian(
            release, arch=arch, ref=ref, refresh=refresh, reason=stale.get(ref, "")), echo)

    def tree_step(tree: Target) -> Step[Outcome]:
        native = tree if emulation.is_native(tree.arch) else natives[tree.name]
        after = (f"base {native.debian_image}",
                 *(() if tree.name == native.name else (f"tree {native.name}",)))
        return _step(f"tree {tree.name}", lambda: cpython_build.build_tree(
            tree, optimize=optimize, native=native, force=recompile), echo, after)

    def assembly_step(target: Target) -> Step[Outcome]:
        return _step(f"assembly {target.name}",
                     lambda: cpython_build.assemble(target, optimize=optimize), echo,
                     (f"tree {target.name}", f"base {target.debian_image}"))

    native = [b for b in bases if emulation.is_native(b[2])]
    return [*(base_step(*b) for b in native),
            *(tree_step(t) for t in trees.values() if emulation.is_native(t.arch)),
            *(base_step(*b) for b in bases if b not in native),
            *(tree_step(t) for t in trees.values() if not emulation.is_native(t.arch)),
            *(assembly_step(t) for t in targets)]


def run(m: Matrix, targets: list[Target], *, refresh: bool = False, recompile: bool = False,
        optimize: bool | None = None, jobs: int | None = None,
        echo: Callable[[str], None] = print) -> list[Outcome]:
    engine.require()
    optimize = m.cpython.optimize if optimize is None else optimize
    # Measured before anything is made again: the images built on today's bases.
    stale = payload.stale_bases(m, targets)
    emulation.ensure(t.arch for t in targets)
    steps = plan(m, targets, optimize=optimize, refresh=refresh, recompile=recompile,
                 stale=stale, echo=echo)

    def made(step: Step[Outcome], outcome: Outcome) -> None:
        verb = "reused" if outcome.reused else "made"
        echo(f"bootstrap: {verb} {outcome.image} in {outcome.seconds:.1f} s ({outcome.why})")

    jobs = jobs or default_jobs()
    outcomes = run_all(steps, jobs=jobs, done=made)
    fresh = [o for o in outcomes if not o.reused]
    echo(f"bootstrap: {len(fresh)} of {len(outcomes)} images made "
         f"({'optimized' if optimize else 'no PGO/LTO'}, {jobs} at a time); the steps took "
         f"{sum(o.seconds for o in outcomes):.0f} s together")
    return outcomes
