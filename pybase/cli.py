"""`pybase <command>`: what the nox sessions run. Each command validates versions.yaml first."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pybase import audit, bench, engine, images, matrix, sbom, tags, upstream


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
    optimize = m.cpython.optimize if args.optimize is None else args.optimize
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


def _image_refs(args: argparse.Namespace) -> list[str]:
    """--image REF..., else the local tag of every selected entry and variant."""
    if args.image:
        return list(args.image)
    m = matrix.load()
    variants = args.variant or m.variants
    return [tags.local_ref(m, t, v) for t in _targets(args) for v in variants]


def cmd_audit(args: argparse.Namespace) -> int:
    refs = _image_refs(args)
    engine.require()
    choice = audit.choose_source(args.advisory_db, args.service, args.osv_url)
    options = audit.Options(checks=args.check or audit.CHECKS, sbom=not args.no_sbom,
                            report_dir=args.report_dir)
    status, _ = audit.run(refs, choice, args.ignore_file, options)
    return status


def cmd_sbom(args: argparse.Namespace) -> None:
    refs = _image_refs(args)
    engine.require()
    for ref in refs:
        started = time.monotonic()
        if args.embed:
            path = sbom.embed(ref, None, args.report_dir / "sbom")
        else:
            path = sbom.generate(ref, out_dir=args.report_dir / "sbom").path
        os_packages, sources, python = sbom.counts(json.loads(path.read_text(encoding="utf-8")))
        shipped = f", shipped in the image at {sbom.SBOM_PATH_IN_IMAGE}" if args.embed else ""
        print(f"sbom: {ref}: {path} ({os_packages} OS packages, {sources} source packages, "
              f"{python} Python packages{shipped}) in {time.monotonic() - started:.1f} s",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pybase", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_selection(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("only", nargs="*", help="selectors: 3.13, 3.13-trixie, 3.13.15-bookworm")
        p.add_argument("--all", action="store_true",
                       help="every declared entry, not only those marked build: true")
        return p

    def with_variants(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_selection(p)
        p.add_argument("--variant", action="append", choices=["runtime", "build", "dev"],
                       help="only these variants (repeatable); default: versions.yaml's")
        return p

    sub.add_parser("engine", help="start a local engine if none answers").set_defaults(func=cmd_engine)
    boot = with_selection(sub.add_parser("bootstrap", help="build debian and python upstream images"))
    boot.add_argument("--refresh", action="store_true", help="rebuild even if a matching image exists")
    boot.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=None,
                      help="PGO+LTO for this run (default: versions.yaml's cpython.optimize)")
    boot.set_defaults(func=cmd_bootstrap)
    with_variants(sub.add_parser("build", help="build the hardened images")).set_defaults(
        func=cmd_build)
    with_selection(sub.add_parser("bench", help="speed figures of the built images")).set_defaults(
        func=cmd_bench)
    with_selection(sub.add_parser("targets", help="list selected entries")).set_defaults(func=cmd_targets)

    def with_images(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_variants(p)
        p.add_argument("--image", action="append", metavar="REF",
                       help="audit this image instead of the matrix selection (repeatable)")
        p.add_argument("--report-dir", type=Path, default=audit.REPORTS,
                       help="where audit/ and sbom/ reports go (default: reports/)")
        return p

    aud = with_images(sub.add_parser(
        "audit", help="pip-audit, pending Debian fixes and SBOM for every built image"))
    aud.add_argument("--advisory-db", type=Path, metavar="PATH",
                     help="offline: an OSV database (dir, .zip, .tar.gz); default "
                          f"${audit.ADVISORY_DB_ENV} if set, else online")
    aud.add_argument("--service", choices=["pypi", "osv"],
                     help="online vulnerability service for pip-audit (default: pypi)")
    aud.add_argument("--osv-url", metavar="URL", help="an OSV /v1/query endpoint (online)")
    aud.add_argument("--ignore-file", type=Path, default=audit.IGNORE_FILE,
                     help="accepted findings (default: images/audit-ignore.yaml)")
    aud.add_argument("--check", action="append", choices=list(audit.CHECKS),
                     help="only these checks (repeatable); default: python and os")
    aud.add_argument("--no-sbom", action="store_true", help="do not write the SBOM")
    aud.set_defaults(func=cmd_audit)
    bom = with_images(sub.add_parser("sbom", help="CycloneDX SBOM of every built image"))
    bom.add_argument("--embed", action="store_true",
                     help=f"also ship it in the image at {sbom.SBOM_PATH_IN_IMAGE} (re-tags)")
    bom.set_defaults(func=cmd_sbom)

    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        status = args.func(args)
    except (matrix.MatrixError, engine.EngineError, upstream.UpstreamError, audit.AuditError,
            sbom.SbomError) as exc:
        print(f"pybase {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"pybase {args.command}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
