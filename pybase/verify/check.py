"""`pybase check`: is a rebuild due? Nothing is built.

- **debian**, per image (local, or pulled by reference): the audit's own Debian check
  (pybase.verify.audit.debian) runs apt inside the image; an installed package with a newer version in
  the release's -security or -updates suite is due. The image's CPython is compared with
  versions.yaml's too: an image behind its entry is due.
- **cpython**, per declared minor: newer patch releases in Debian's source indices
  (pybase.upstream.cpython_releases), verified by download where possible; listed ones count as due too,
  and the report says which could not be fetched.

Exit 0 nothing due, 1 a rebuild (or `nox -s update`) is due, 2 something could not be looked at:
it never says "nothing due" without having looked, and 2 wins over 1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from packaging.version import Version

from pybase import verify
from pybase.core.matrix import Matrix
from pybase.infra import engine, registry
from pybase.upstream import cpython_releases, debian_archive
from pybase.verify.audit.debian import debian_check
from pybase.verify.audit.report import AuditError

CHECKS = (verify.DEBIAN, verify.CPYTHON)
NOTHING_DUE, DUE, COULD_NOT_LOOK = 0, 1, 2


class CheckError(engine.CommandError):
    """An image could not be made available to check."""


@dataclass
class Outcome:
    due: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        return COULD_NOT_LOOK if self.errors else DUE if self.due else NOTHING_DUE


# `host[:port]/...`: a first component with a dot, a port or `localhost` names a registry.
_REGISTRY_REF = re.compile(r"^(localhost|[^/]*[.:][^/]*)/")


def ensure_image(ref: str, pull: bool) -> None:
    """Make `ref` available in the engine: pulled when `pull` or when it is missing.

    With PYTHON_BASE_REGISTRY_USER/_PASSWORD (GitLab: CI_REGISTRY_*) set, the pull reads them
    from registry.Session's private auth file; else the engine's own login is used."""
    if not pull and engine.image_id(ref) is not None:
        return
    if not _REGISTRY_REF.match(ref):
        raise CheckError(f"image {ref} is not in the engine and names no registry to pull it "
                         "from: build it (`nox -s build`) or give a registry reference")
    credentials = registry.credentials_from_env(os.environ)
    name = ref.split("@", 1)[0]  # repository: without digest and tag (a port stays)
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    if credentials is None:
        pulled = engine.docker("pull", "--quiet", ref, capture=True, check=False,
                               what=f"docker pull {ref}")
    else:
        with registry.Session(registry.Repository(name), credentials) as session:
            pulled = engine.run([engine.client(), "pull", "--quiet", ref], check=False,
                                env={**os.environ, "DOCKER_CONFIG": str(session.auth_file.parent)},
                                what=f"docker pull {ref}", error=CheckError)
    if pulled.returncode != 0 or engine.image_id(ref) is None:
        raise CheckError(f"image {ref}: `docker pull` failed: "
                         + engine.failure(f"docker pull {ref}", pulled))


def check_image(ref: str, m: Matrix, outcome: Outcome, echo: Callable[[str], None], *,
                pull: bool, docker_args: Sequence[str]) -> None:
    try:
        ensure_image(ref, pull)
        result = debian_check(ref, docker_args)
    except (CheckError, AuditError, engine.EngineError) as exc:
        outcome.errors.append(f"{ref}: {exc}")
        echo(f"check: {ref}: could not look: {exc}")
        return
    fixes = result.findings
    echo(f"check: {ref}: debian {result.codename}: {len(fixes)} of {result.packages} packages "
         f"have a newer version in {' / '.join(result.suites)}")
    for f in fixes:
        echo(f"  {f.package} {f.installed} -> {f.candidate} ({f.suite})")
    outcome.due += [f"{ref}: {f.package} {f.installed} -> {f.candidate} ({f.suite})"
                    for f in fixes]
    inspected = engine.inspect(ref)
    version = (inspected.environment if inspected else {}).get("PYTHON_VERSION", "")
    entry = next((e for e in m.python if version.startswith(f"{e.minor}.")), None)
    if not version:
        outcome.errors.append(f"{ref}: no PYTHON_VERSION in the image's environment")
        echo(f"check: {ref}: could not tell its CPython (no PYTHON_VERSION in its environment)")
    elif entry is None:
        echo(f"check: {ref}: cpython {version} (its minor is not declared in versions.yaml)")
    elif Version(version) < Version(entry.version):
        outcome.due.append(f"{ref}: cpython {version}, versions.yaml has {entry.version}")
        echo(f"check: {ref}: cpython {version} is behind versions.yaml's {entry.version}")
    else:
        echo(f"check: {ref}: cpython {version} (versions.yaml: {entry.version})")


def check_cpython(m: Matrix, outcome: Outcome, echo: Callable[[str], None], *,
                  apt_lines: Sequence[str] | None, python_org: bool) -> None:
    try:
        with cpython_releases.apt_sources(apt_lines) as apt:
            reports = cpython_releases.lookup(m, apt, python_org)
    except debian_archive.DebianArchiveError as exc:
        outcome.errors.append(f"CPython releases: {exc}")
        echo(f"check: CPython releases: could not look: {exc}")
        return
    for report in reports:
        for line in cpython_releases.describe(report):
            echo(f"check: {line}")
        if report.newer:
            newest = report.newer[0].listed.version
            outcome.due.append(f"python {report.entry.minor}: {report.entry.version} -> "
                               f"{newest} ({'verified' if report.verified else 'listed only'})")


def run(m: Matrix, refs: Sequence[str], *, checks: Sequence[str] = CHECKS, pull: bool = False,
        docker_args: Sequence[str] = (), apt_lines: Sequence[str] | None = None,
        python_org: bool = True, echo: Callable[[str], None] = print) -> Outcome:
    """Look at every image (debian) and every declared minor (cpython); see the module doc."""
    outcome = Outcome()
    if verify.DEBIAN in checks:
        for ref in refs:
            check_image(ref, m, outcome, echo, pull=pull, docker_args=docker_args)
    if verify.CPYTHON in checks:
        check_cpython(m, outcome, echo, apt_lines=apt_lines, python_org=python_org)
    if outcome.errors:
        echo(f"check: could not look ({len(outcome.errors)}): " + "; ".join(outcome.errors))
    elif outcome.due:
        echo(f"check: rebuild due ({len(outcome.due)}): " + "; ".join(outcome.due))
    else:
        echo("check: nothing due")
    return outcome
