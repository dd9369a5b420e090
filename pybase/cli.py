"""`pybase <command>`: what the nox sessions run. Each command validates versions.yaml first."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pybase import bench, engine, images, matrix, upstream


def _targets(args: argparse.Namespace) -> list[matrix.Target]:
    m = matrix.load()
    return m.targets(include_all=args.all, only=args.only)


def cmd_engine(args: argparse.Namespace) -> None:
    major, minor = engine.ensure_running()
    print(f"engine: Docker Engine {major}.{minor} answers")


def cmd_bootstrap(args: argparse.Namespace) -> None:
    m = matrix.load()
    targets = _targets(args)
    engine.require()
    optimize = m.cpython.optimize or args.optimize
    timings: list[upstream.Outcome] = []
    for release in dict.fromkeys(t.release for t in targets):
        timings.append(upstream.build_debian(release, force=args.refresh))
        _report(timings[-1])
    for target in targets:
        timings.append(upstream.build_python(target, optimize=optimize, force=args.refresh))
        _report(timings[-1])
    print(f"bootstrap: {len(timings)} images ({'PGO+LTO' if optimize else 'no PGO/LTO'}) in "
          f"{sum(o.seconds for o in timings):.0f} s")


def _report(outcome: upstream.Outcome) -> None:
    verb = "reused" if outcome.reused else "built"
    print(f"bootstrap: {verb} {outcome.image} in {outcome.seconds:.1f} s", flush=True)


def cmd_build(args: argparse.Namespace) -> None:
    m = matrix.load()
    targets = _targets(args)
    engine.require()
    variants = args.variant or m.variants
    for target in targets:
        for variant in variants:
            built = images.build(m, target, variant)
            print(f"build: {built.ref} ({len(built.tags)} tags) in {built.seconds:.1f} s", flush=True)


def cmd_bench(args: argparse.Namespace) -> None:
    engine.require()
    bench.run(matrix.load(), _targets(args))


def cmd_targets(args: argparse.Namespace) -> None:
    for target in _targets(args):
        print(target.key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pybase", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_selection(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("only", nargs="*", help="selectors: 3.13, 3.13-trixie, 3.13.15-bookworm")
        p.add_argument("--all", action="store_true",
                       help="every declared entry, not only those marked build: true")
        return p

    sub.add_parser("engine", help="start a local engine if none answers").set_defaults(func=cmd_engine)
    boot = with_selection(sub.add_parser("bootstrap", help="build debian and python upstream images"))
    boot.add_argument("--refresh", action="store_true", help="rebuild even if a matching image exists")
    boot.add_argument("--optimize", action="store_true", help="PGO+LTO for this run")
    boot.set_defaults(func=cmd_bootstrap)
    build = with_selection(sub.add_parser("build", help="build the hardened images"))
    build.add_argument("--variant", action="append", choices=["runtime", "build", "dev"],
                       help="only these variants (repeatable); default: versions.yaml's")
    build.set_defaults(func=cmd_build)
    with_selection(sub.add_parser("bench", help="speed figures of the built images")).set_defaults(
        func=cmd_bench)
    with_selection(sub.add_parser("targets", help="list selected entries")).set_defaults(func=cmd_targets)

    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        args.func(args)
    except (matrix.MatrixError, engine.EngineError, upstream.UpstreamError) as exc:
        print(f"pybase {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"pybase {args.command}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
