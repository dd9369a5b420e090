"""The audit gate (`nox -s audit`, `pybase audit`): is a built image free of known, unfixed flaws?

For each image, three looks, each of which must really happen (an audit that could not look is a
failed audit, never a clean one):

* Python: every distribution of the system interpreter (/usr/local), the app venv (/opt/venv) and
  any other dist-info found in the image (pybase.build.inventory) goes to `pip-audit --strict
  --no-deps --disable-pip` as name==version. Vulnerability data comes from an offline OSV
  snapshot (`--advisory-db PATH` or $PYTHON_BASE_ADVISORY_DB, served on 127.0.0.1 by
  pybase.verify.osv_server) or from an online service (`--service pypi|osv`). Every requested
  package must come back audited; a skip or an unreachable service is an error.
* Debian: `apt-get update` inside the image (as root), then `apt-cache policy` for every installed
  package: a newer version in the release's `-security` or `-updates` suite is a pending fix,
  i.e. a finding (zero is the bar). Newer versions elsewhere (a point release in the main suite,
  backports) are listed as notices. Both suites must have been fetched, or the check failed.
* SBOM: reports/sbom/<local-tag>.cdx.json (pybase.build.sbom).

Findings that a human accepted are in images/audit-ignore.yaml (pybase.verify.audit_ignore): they are
reported as "ignored" with reason and expiry and do not fail the gate; an expired or reasonless
entry fails every audit. Debian findings have ids of the form `debian:<package>=<candidate>`
with the alias `debian:<package>`, so either may be accepted.

Each image gets a table on the terminal and reports/audit/<local-tag>.json. Exit status of
`run()`: 0 all clean, 1 open findings, 2 an audit could not run (or the ignore file is invalid).

Here: the run per image and over many images. The parts: source.py (where pip-audit gets its
data), python.py (the Python check), debian.py (the Debian check), report.py (results, accepted
findings, the terminal table and the JSON report).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pybase import verify
from pybase.build import inventory, sbom
from pybase.core import paths
from pybase.core.steps import Step, default_jobs, run_all
from pybase.infra import engine
from pybase.verify.audit.debian import (
    APT_TIMEOUT,
    PackagePolicy,
    debian_check,
    parse_apt_policy,
    parse_releases,
    pending_fixes,
)
from pybase.verify.audit.python import (
    PIP_AUDIT_TIMEOUT,
    parse_pip_audit,
    python_check,
    requirement_batches,
)
from pybase.verify.audit.report import (
    AuditError,
    DebianFinding,
    DebianNotice,
    DebianResult,
    Ignored,
    ImageReport,
    PythonFinding,
    PythonResult,
    apply_ignores,
    render,
    write_report,
)
from pybase.verify.audit.source import (
    SourceChoice,
    VulnerabilitySource,
    choose_source,
    vulnerability_source,
)
from pybase.verify.audit_ignore import AuditIgnoreError, IgnoreFile, load_ignores

__all__ = [
    "APT_TIMEOUT", "CHECKS", "IGNORE_FILE", "PIP_AUDIT_TIMEOUT", "REPORTS",
    "AuditError", "DebianFinding", "DebianNotice", "DebianResult", "Ignored", "ImageReport",
    "Options", "PackagePolicy", "PythonFinding", "PythonResult", "SourceChoice",
    "VulnerabilitySource", "apply_ignores", "audit_image", "choose_source", "debian_check",
    "parse_apt_policy", "parse_pip_audit", "parse_releases", "pending_fixes", "python_check",
    "render", "requirement_batches", "run", "vulnerability_source", "write_report",
]

REPORTS = paths.REPORTS
IGNORE_FILE = paths.REPO / "images" / "audit-ignore.yaml"
CHECKS = (verify.PYTHON, verify.DEBIAN)


@dataclass(frozen=True)
class Options:
    checks: Sequence[str] = CHECKS
    sbom: bool = True
    report_dir: Path = REPORTS
    docker_args: Sequence[str] = ()  # extra `docker run` arguments for the apt check


def audit_image(ref: str, source: VulnerabilitySource | None, options: Options = Options(),
                source_error: str | None = None) -> ImageReport:
    """Audit one image (findings not yet matched against exceptions: apply_ignores).

    Problems that stop a check become report errors, never exceptions; `source_error` says why
    there is no vulnerability source, if there is none.
    """
    started = time.monotonic()
    report = ImageReport(image=ref, checks=list(options.checks),
                         started=datetime.now(UTC).isoformat(timespec="seconds"))
    found = engine.inspect(ref)
    if found is None:
        report.errors.append(f"image {ref} is missing: run `nox -s build` first")
        return report
    report.image_id, report.tags, report.labels = found.id, found.repo_tags, found.labels

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # The apt check waits on the network; the Python side runs meanwhile.
        apt = pool.submit(debian_check, ref, options.docker_args) if verify.DEBIAN in options.checks \
            else None
        inv: inventory.Inventory | None = None
        if verify.PYTHON in options.checks or options.sbom:
            try:
                inv = inventory.inventory(ref)
            except inventory.InventoryError as exc:
                report.errors.append(f"inventory: {exc}")
        if verify.PYTHON in options.checks and source is None:
            report.errors.append(f"python: {source_error or 'no vulnerability source was given'}")
        elif verify.PYTHON in options.checks and inv is not None and source is not None:
            try:
                report.python = python_check(inv, source)
            except AuditError as exc:
                report.errors.append(f"python: {exc}")
        if options.sbom and inv is not None:
            try:
                report.sbom = sbom.generate(ref, inv, options.report_dir / "sbom").as_dict()
            except (sbom.SbomError, engine.EngineError) as exc:
                report.errors.append(f"sbom: {exc}")
        if apt is not None:
            try:
                report.debian = apt.result()
            except AuditError as exc:
                report.errors.append(f"debian: {exc}")
    report.seconds = round(time.monotonic() - started, 1)
    return report


def run(refs: Sequence[str], choice: SourceChoice, ignore_file: Path = IGNORE_FILE,
        options: Options = Options(), today: date | None = None,
        echo: Callable[[str], None] = print, jobs: int | None = None,
        ) -> tuple[int, list[ImageReport]]:
    """Audit every image, `jobs` at a time, print and write the reports as each ends;
    (exit status, reports in the order of `refs`)."""
    today = today or datetime.now(UTC).date()
    ignore_error: str | None = None
    try:
        ignores = load_ignores(ignore_file, today)
    except AuditIgnoreError as exc:
        ignores, ignore_error = IgnoreFile(), str(exc)
        echo(f"audit: the exceptions file is invalid, so no finding is ignored:\n{exc}")
    reports: list[ImageReport]
    used: set[str] = set()
    with contextlib.ExitStack() as stack:
        source: VulnerabilitySource | None = None
        source_error: str | None = None
        if verify.PYTHON in options.checks:
            try:
                source = stack.enter_context(vulnerability_source(choice))
            except AuditError as exc:
                source_error = str(exc)
                echo(f"audit: {exc}")
        def finish(step: Step[ImageReport], report: ImageReport) -> None:
            report.ignore_file = str(ignore_file)
            if ignore_error:
                report.errors.append(f"exceptions file: {ignore_error}")
            used.update(apply_ignores(report, ignores))
            path = write_report(report, options.report_dir)
            echo(render(report) + f"\n  report: {path}\n")

        # A few images at a time: each waits mostly on a container (apt) or on pip-audit.
        # (A ref given twice is audited once.)
        audits = [Step(ref, functools.partial(audit_image, ref, source, options, source_error))
                  for ref in dict.fromkeys(refs)]
        reports = run_all(audits, jobs=jobs or default_jobs(), done=finish)
    unused = [e.id for e in ignores.ignore if e.id not in used]
    if unused:
        echo(f"audit: exceptions that matched nothing (remove them?): {', '.join(unused)}")
    errors = sum(1 for r in reports if r.errors)
    failed = sum(1 for r in reports if r.open_findings)
    passed = sum(1 for r in reports if r.status == "passed")
    echo(f"audit: {len(reports)} image{'' if len(reports) == 1 else 's'}: {passed} passed, "
         f"{failed} with open findings, {errors} could not be fully audited"
         + (" (invalid exceptions file)" if ignore_error else ""))
    return (2 if errors or ignore_error else 1 if failed else 0), reports

