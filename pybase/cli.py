"""`pybase <command>`: what the nox sessions run. Each command validates versions.yaml first."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pybase import bench, gitlab, verify
from pybase.bench import speed
from pybase.build import images, sbom
from pybase.core import matrix, paths, settings, tags
from pybase.core.errors import PybaseError
from pybase.infra import emulation, engine, host, local_registry, registry
from pybase.publish import Status, candidates, publisher, records, renovate, signing
from pybase.upstream import bootstrap, cpython_releases
from pybase.verify import audit, check, trust


def _targets(args: argparse.Namespace) -> list[matrix.Target]:
    m = matrix.load()
    return m.targets(include_all=args.all, only=args.only)


def _ready() -> None:
    """An engine answers, and it can run the images of every platform in versions.yaml
    (another architecture's under emulation)."""
    engine.require()
    emulation.ensure(matrix.load().archs)


def cmd_engine(args: argparse.Namespace) -> None:
    major, minor = engine.ensure_running()
    emulated = emulation.ensure(matrix.load().archs)
    print(f"engine: Docker Engine {major}.{minor} answers"
          + (f"; {', '.join(emulated)} under qemu-user emulation" if emulated else ""))


def cmd_host(args: argparse.Namespace) -> None:
    host.command(args)


def cmd_bootstrap(args: argparse.Namespace) -> None:
    bootstrap.run(matrix.load(), _targets(args), refresh=args.refresh, recompile=args.recompile,
                  optimize=args.optimize, jobs=args.jobs,
                  echo=lambda line: print(line, flush=True))


def cmd_build(args: argparse.Namespace) -> None:
    m = matrix.load()
    targets = _targets(args)
    _ready()
    images.build_all(m, targets, args.variant or m.variants, jobs=args.jobs,
                     echo=lambda line: print(line, flush=True))


def cmd_bench(args: argparse.Namespace) -> None:
    _ready()
    bench.run(matrix.load(), _targets(args),
              with_speed=args.speed or bool(args.compare) or bool(args.lever),
              compare=args.compare or (), levers=args.lever or (),
              with_builds=not args.no_builds)


def cmd_targets(args: argparse.Namespace) -> None:
    for target in _targets(args):
        print(target.name)


def _selected_refs(args: argparse.Namespace) -> list[str]:
    """The local tag of every selected entry and variant."""
    m = matrix.load()
    variants = args.variant or m.variants
    return [tags.local_ref(m, t, v) for t in _targets(args) for v in variants]


def _image_refs(args: argparse.Namespace) -> list[str]:
    """--image REF..., else the selection's local tags."""
    return list(args.image) if args.image else _selected_refs(args)


def cmd_audit(args: argparse.Namespace) -> int:
    refs = _image_refs(args)
    _ready()
    choice = audit.choose_source(args.advisory_db, args.service, args.osv_url)
    options = audit.Options(checks=args.check or audit.CHECKS, sbom=not args.no_sbom,
                            report_dir=args.report_dir)
    status, _ = audit.run(refs, choice, args.ignore_file, options)
    return status


def cmd_sbom(args: argparse.Namespace) -> None:
    refs = _image_refs(args)
    _ready()
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


def _session(args: argparse.Namespace, m: matrix.Matrix) -> registry.Session:
    return registry.target_session(m.image.registry, m.image.name, local=args.local)


def cmd_publish(args: argparse.Namespace) -> int:
    m = matrix.load()
    refs = _selected_refs(args)
    _ready()
    signer = signing.for_publish(local=args.local, unsigned=args.unsigned)
    with _session(args, m) as session:
        pub = publisher.Publisher(m, session, signer=signer)
        if args.rollback:
            pub.rollback(args.rollback)
            return 0
        sources = ({r.image: r.source for r in candidates.load(refs)}
                   if args.from_candidates else {})
        outcomes = pub.publish(publisher.selection(m, _targets(args), args.variant or m.variants,
                                                   sources))
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in Status}
    print(f"publish: {len(outcomes)} images to {session.repository.name}: "
          f"{counts[Status.PUBLISHED]} published, {counts[Status.UNCHANGED]} unchanged; record "
          f"{records.RECORDS / 'manifest.json'}")
    return 0


def cmd_candidate(args: argparse.Namespace) -> int:
    m = matrix.load()
    refs = _image_refs(args)
    _ready()
    with _session(args, m) as target:
        repository = candidates.candidate_repository(target.repository)
    with registry.Session(repository, registry.credentials_from_env(os.environ)) as session:
        if args.action == "push":
            pipeline = args.pipeline or settings.get(settings.GITLAB_PIPELINE_ID) or "local"
            candidates.push(session, refs, pipeline)
        else:
            candidates.pull(session, candidates.load(refs))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    m = matrix.load()
    pull = bool(args.published)
    if args.published:
        with _session(args, m) as session:
            # The primary platform's image of each tag: Debian publishes a security fix for
            # every release architecture at once (per source package), so what is pending for
            # it is pending for the others.
            refs = [session.repository.tag(tags.local_tag(t, v))
                    for t in _targets(args) if t.is_primary_platform
                    for v in (args.variant or m.variants)]
    else:
        refs = _image_refs(args)
    checks = args.check or check.CHECKS
    if verify.DEBIAN in checks:
        _ready()
    return check.run(m, refs, checks=checks, pull=pull, python_org=not args.offline).status


def cmd_update(args: argparse.Namespace) -> int:
    m = matrix.load(args.versions)
    with cpython_releases.apt_sources() as apt:
        reports = cpython_releases.lookup(m, apt, python_org=not args.offline)
    for report in reports:
        for line in cpython_releases.describe(report):
            print(f"update: {line}")
    wanted = cpython_releases.changes(reports)
    diff = cpython_releases.apply(args.versions, wanted, dry_run=args.dry_run)
    if diff and not args.dry_run:
        # The generated entry list names the versions; it sits beside versions.yaml.
        gitlab.sync(matrix.load(args.versions), check=False,
                    path=args.versions.with_name(gitlab.GITLAB_CI.name))
    if diff:
        print(diff, end="")
    verb = "would write" if args.dry_run else "wrote"
    print(f"update: {verb} {len(wanted)} verified version(s) to {args.versions}"
          + ("" if args.dry_run or not wanted else " and .gitlab-ci.yml's entry list"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """0 verified, 1 not (the problems are printed), 2 could not look (a PybaseError)."""
    return 0 if trust.verify_reference(args.reference, args.key or signing.public_key_path()) \
        else 1


def cmd_signing_key(args: argparse.Namespace) -> int:
    private, public = signing.generate(args.directory, signing.passphrase_from_env())
    print(f"signing-key: wrote {private} (encrypted with ${settings.SIGNING_PASSPHRASE}) and "
          f"{public}; commit the public key as {trust.PUBLIC_KEY.relative_to(paths.REPO)}, keep the "
          f"private one in a protected place ({settings.SIGNING_KEY})")
    return 0


def cmd_local_registry(args: argparse.Namespace) -> int:
    if args.action == "start":
        reg = local_registry.ensure(*local_registry.configured())
        print(f"local registry at {reg.address} (pid {reg.pid}, data under {reg.directory})")
    else:
        print(local_registry.stop_configured())
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """The files generated from versions.yaml: the GitLab entry list, the Renovate preset."""
    m = matrix.load()
    same = gitlab.sync(m, check=args.check)
    print(f"pipeline: {gitlab.GITLAB_CI.name} "
          + ("matches versions.yaml" if same else "ENTRY list rewritten from versions.yaml"))
    where = renovate.PRESET.relative_to(paths.REPO)
    if renovate.sync(m, check=args.check):
        print(f"pipeline: {where} matches versions.yaml")
    elif args.check:
        raise gitlab.PipelineError(f"{where} differs from what versions.yaml gives; run "
                                   "`nox -s pipeline` and commit the result")
    else:
        print(f"pipeline: {where} written from versions.yaml")
    return 0


# --- the command line ---------------------------------------------------------------------------
# Every option means one thing in every command that has it: selectors and --all choose matrix
# entries, --variant narrows the variants, --image names images instead of the selection.


def _selection(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("only", nargs="*", help="selectors: 3.13, 3.13-trixie, 3.13.15-bookworm")
    p.add_argument("--all", action="store_true",
                   help="every declared entry, not only those marked build: true")
    return p


def _variants(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _selection(p)
    p.add_argument("--variant", action="append", choices=get_args(matrix.Variant),
                   help="only these variants (repeatable); default: versions.yaml's")
    return p


def _jobs(p: argparse.ArgumentParser, what: str) -> argparse.ArgumentParser:
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"{what} (default: cores + 1)")
    return p


def _images(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _variants(p)
    p.add_argument("--image", action="append", metavar="REF",
                   help="this image (a local tag, or a registry reference that is pulled) "
                        "instead of the matrix selection (repeatable)")
    return p


def _reports(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--report-dir", type=Path, default=audit.REPORTS,
                   help="where audit/ and sbom/ reports go (default: reports/)")
    return p


def _registry(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--local", action="store_true",
                   help="use (and start if needed) Debian's docker-registry on 127.0.0.1 with "
                        f"its data under the cache directory; port ${settings.LOCAL_REGISTRY_PORT}")
    return p


def _upstream_commands(sub: Any) -> None:
    sub.add_parser("engine", help="start a local engine if none answers").set_defaults(
        func=cmd_engine)
    boot = _selection(sub.add_parser("bootstrap",
                                     help="build debian and python upstream images"))
    boot.add_argument("--refresh", action="store_true",
                      help="make the Debian bases again if the archive moved since they were "
                           "made, and assemble CPython on them (never recompiles)")
    boot.add_argument("--recompile", action="store_true",
                      help="compile the CPython trees even if cached ones exist")
    boot.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=None,
                      help="PGO+LTO for this run (default: versions.yaml's cpython.optimize)")
    _jobs(boot, "images made at the same time")
    boot.set_defaults(func=cmd_bootstrap)
    upd = sub.add_parser("update", help="write newer verified CPython patch releases into "
                                        "versions.yaml (comments and layout kept)")
    upd.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    upd.add_argument("--versions", type=Path, default=matrix.DEFAULT_PATH, help=argparse.SUPPRESS)
    upd.add_argument("--offline", action="store_true",
                     help="do not try python.org; Debian's archive only")
    upd.set_defaults(func=cmd_update)
    hst = sub.add_parser("host", help=host.DESCRIPTION)
    host.add_arguments(hst)
    hst.set_defaults(func=cmd_host)


def _build_commands(sub: Any) -> None:
    bld = _jobs(_variants(sub.add_parser("build", help="build the hardened images")),
                "matrix entries built at the same time")
    bld.set_defaults(func=cmd_build)
    _selection(sub.add_parser("targets", help="list selected entries")).set_defaults(
        func=cmd_targets)
    bom = _reports(_images(sub.add_parser("sbom", help="CycloneDX SBOM of every built image")))
    bom.add_argument("--embed", action="store_true",
                     help=f"also ship it in the image at {sbom.SBOM_PATH_IN_IMAGE} (re-tags)")
    bom.set_defaults(func=cmd_sbom)


def _verify_commands(sub: Any) -> None:
    aud = _reports(_images(sub.add_parser(
        "audit", help="pip-audit, pending Debian fixes and SBOM for every built image")))
    aud.add_argument("--advisory-db", type=Path, metavar="PATH",
                     help="offline: an OSV database (dir, .zip, .tar.gz); default "
                          f"${settings.ADVISORY_DB} if set, else online")
    aud.add_argument("--service", choices=["pypi", "osv"],
                     help="online vulnerability service for pip-audit (default: pypi)")
    aud.add_argument("--osv-url", metavar="URL", help="an OSV /v1/query endpoint (online)")
    aud.add_argument("--ignore-file", type=Path, default=audit.IGNORE_FILE,
                     help="accepted findings (default: images/audit-ignore.yaml)")
    aud.add_argument("--check", action="append", choices=list(audit.CHECKS),
                     help=f"only these checks (repeatable); default: {', '.join(audit.CHECKS)}")
    aud.add_argument("--no-sbom", action="store_true", help="do not write the SBOM")
    aud.set_defaults(func=cmd_audit)
    chk = _registry(_images(sub.add_parser(
        "check", help="is a rebuild due? pending Debian fixes per image, newer CPython patches")))
    chk.add_argument("--published", action="store_true",
                     help="check the published rolling tags (pulled) of the selection "
                          "(with --local: in the registry of `publish --local`)")
    chk.add_argument("--check", action="append", choices=list(check.CHECKS),
                     help=f"only these checks (repeatable); default: {', '.join(check.CHECKS)}")
    chk.add_argument("--offline", action="store_true",
                     help="do not try python.org; Debian's archive only")
    chk.set_defaults(func=cmd_check)


def _publish_commands(sub: Any) -> None:
    pub = _registry(_variants(sub.add_parser(
        "publish", help="push tested images whose content changed; move the rolling tags")))
    pub.add_argument("--rollback", metavar="IMMUTABLE_TAG",
                     help="point the rolling tags of that image back at this immutable tag")
    pub.add_argument("--from-candidates", action="store_true",
                     help="promote the pipeline candidates recorded under reports/candidates/")
    pub.add_argument("--unsigned", action="store_true",
                     help="publish without signing or attesting (experiments only)")
    pub.set_defaults(func=cmd_publish)
    cand = sub.add_parser("candidate",
                          help="push/pull this pipeline's candidate images (GitLab jobs)")
    cand.add_argument("action", choices=["push", "pull"])
    _registry(_images(cand))
    cand.add_argument("--pipeline", help="candidate tag prefix (default: $CI_PIPELINE_ID)")
    cand.set_defaults(func=cmd_candidate)
    ver = sub.add_parser("verify", help="check an image's signature and attestations (exit 0 "
                                        "verified, 1 not, 2 could not look)")
    ver.add_argument("reference", metavar="REF",
                     help="registry/repository:tag or registry/repository@sha256:...")
    ver.add_argument("--key", type=Path,
                     help=f"public key (default ${settings.SIGNING_PUBLIC_KEY}, else "
                          "keys/python-base.pub)")
    ver.set_defaults(func=cmd_verify)
    key = sub.add_parser("signing-key", help="make the signing key pair: DIR/python-base.key "
                                             "(encrypted) and DIR/python-base.pub")
    key.add_argument("directory", type=Path, metavar="DIR")
    key.set_defaults(func=cmd_signing_key)
    loc = sub.add_parser("local-registry", help="start or stop the --local registry")
    loc.add_argument("action", choices=["start", "stop"])
    loc.set_defaults(func=cmd_local_registry)


def _other_commands(sub: Any) -> None:
    bench_parser = _selection(sub.add_parser("bench",
                                             help="the whole cost of every built image"))
    bench_parser.add_argument("--speed", action="store_true",
                              help="add the interpreter-speed comparison (minutes more)")
    bench_parser.add_argument("--compare", action="append", metavar="IMAGE",
                              help="also time this image's python3 in the speed comparison "
                                   "(repeatable; implies --speed)")
    bench_parser.add_argument("--lever", action="append", metavar="SUFFIX",
                              choices=[suffix for _, suffix, _, _ in speed.VARIANTS],
                              help="build and time only this lever's variant (repeatable; "
                                   "default: all; implies --speed)")
    bench_parser.add_argument("--no-builds", action="store_true",
                              help="leave out the cold/warm builds and the refresh (minutes): "
                                   "sizes and start-up only")
    bench_parser.set_defaults(func=cmd_bench)
    pipe = sub.add_parser("pipeline", help="write the files generated from versions.yaml "
                                           "(.gitlab-ci.yml's entry list, images/renovate.json)")
    pipe.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    pipe.set_defaults(func=cmd_pipeline)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pybase", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for add in (_upstream_commands, _build_commands, _verify_commands, _publish_commands,
                _other_commands):
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    try:
        status = args.func(args)
    except PybaseError as exc:
        print(f"pybase {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"pybase {args.command}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
