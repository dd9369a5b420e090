"""The audit's results: findings, per-check results and the image report; how accepted findings
are marked (images/audit-ignore.yaml), and how a report is shown and written."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pybase.core import paths
from pybase.infra import engine
from pybase.verify.audit_ignore import IgnoreEntry, IgnoreFile

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class AuditError(engine.CommandError):
    """An audit could not run (its data could not be gathered or trusted)."""


def scrub(text: str) -> str:
    """Reports never carry repository or index URLs (only suite names)."""
    return _URL.sub("<repository>", text)


@dataclass
class Ignored:
    id: str
    reason: str
    expires: str
    scope: str | None

    @classmethod
    def of(cls, entry: IgnoreEntry) -> Ignored:
        return cls(entry.id, entry.reason, entry.expires.isoformat(), entry.scope)


@dataclass
class PythonFinding:
    package: str
    version: str
    id: str
    aliases: list[str]
    fix_versions: list[str]
    description: str
    locations: list[str]  # dist-info paths that carry this name==version
    environments: list[str]
    ignored: Ignored | None = None

    @property
    def status(self) -> str:
        return "ignored" if self.ignored else "open"


@dataclass
class DebianFinding:
    package: str
    installed: str
    candidate: str
    suite: str
    ignored: Ignored | None = None

    @property
    def id(self) -> str:
        return f"debian:{self.package}={self.candidate}"

    @property
    def aliases(self) -> list[str]:
        return [f"debian:{self.package}"]

    @property
    def status(self) -> str:
        return "ignored" if self.ignored else "open"


@dataclass
class DebianNotice:
    """A newer version outside the security/updates suites: listed, not failing."""

    package: str
    installed: str
    candidate: str
    suite: str


@dataclass
class PythonResult:
    source: str = ""
    environments: list[dict[str, Any]] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)  # name==version sent to pip-audit
    findings: list[PythonFinding] = field(default_factory=list)


@dataclass
class DebianResult:
    codename: str = ""
    suites: dict[str, str] = field(default_factory=dict)  # suite -> its Release version/archive
    packages: int = 0
    findings: list[DebianFinding] = field(default_factory=list)
    notices: list[DebianNotice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImageReport:
    image: str
    image_id: str | None = None
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    ignore_file: str = ""
    started: str = ""
    seconds: float = 0.0
    python: PythonResult | None = None
    debian: DebianResult | None = None
    sbom: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def findings(self) -> list[PythonFinding | DebianFinding]:
        found: list[PythonFinding | DebianFinding] = []
        found += self.python.findings if self.python else []
        found += self.debian.findings if self.debian else []
        return found

    @property
    def open_findings(self) -> int:
        return sum(1 for f in self.findings() if f.ignored is None)

    @property
    def ignored_findings(self) -> int:
        return sum(1 for f in self.findings() if f.ignored is not None)

    @property
    def status(self) -> str:
        if self.errors:
            return "error"
        return "failed" if self.open_findings else "passed"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        data["open_findings"] = self.open_findings
        data["ignored_findings"] = self.ignored_findings
        for item, finding in zip(data["python"]["findings"] if self.python else [],
                                 self.python.findings if self.python else [], strict=True):
            item["status"] = finding.status
        for item, deb in zip(data["debian"]["findings"] if self.debian else [],
                             self.debian.findings if self.debian else [], strict=True):
            item.update(status=deb.status, id=deb.id, aliases=deb.aliases)
        return {"status": data.pop("status"), **data}


def apply_ignores(report: ImageReport, ignores: IgnoreFile) -> set[str]:
    """Mark accepted findings; returns the ids of the entries that matched something."""
    used: set[str] = set()
    tags = report.tags or [report.image]
    for finding in report.findings():
        for tag in tags:
            entry = ignores.is_ignored(finding.id, finding.aliases, tag)
            if entry is not None:
                finding.ignored = Ignored.of(entry)
                used.add(entry.id)
                break
    return used


def write_report(report: ImageReport, report_dir: Path) -> Path:
    path = paths.audit_records(report_dir) / f"{paths.report_name(report.image)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "    ") -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [indent + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False))
             .rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def render(report: ImageReport) -> str:
    """The terminal view of one image's audit."""
    head = (f"{report.image}  {(report.image_id or '')[7:19]}  {report.status.upper()}  "
            f"({report.open_findings} open, {report.ignored_findings} ignored, "
            f"{report.seconds:.1f} s)")
    out = [head]
    if report.python is not None:
        py = report.python
        envs = ", ".join(f"{e['environment']} ({len(e['distributions'])})" for e in py.environments)
        out.append(f"  python: {len(py.audited)} name==version in {envs}; {py.source}")
        if py.findings:
            rows = [[f.package, f.version, f.id, ", ".join(f.fix_versions) or "none",
                     ", ".join(f.environments),
                     f"IGNORED until {f.ignored.expires}: {f.ignored.reason}" if f.ignored
                     else "OPEN"] for f in py.findings]
            out.append(_table(["PACKAGE", "VERSION", "ADVISORY", "FIXED IN", "WHERE", "STATUS"],
                              rows))
        else:
            out.append("    no known vulnerabilities")
    if report.debian is not None:
        deb = report.debian
        out.append(f"  debian: {deb.packages} packages against {', '.join(deb.suites)}")
        if deb.findings:
            rows = [[f.package, f.installed, f.candidate, f.suite,
                     f"IGNORED until {f.ignored.expires}: {f.ignored.reason}" if f.ignored
                     else "OPEN"] for f in deb.findings]
            out.append(_table(["PACKAGE", "INSTALLED", "CANDIDATE", "SUITE", "STATUS"], rows))
        else:
            out.append("    no pending security or updates fixes")
        for n in deb.notices:
            out.append(f"    notice: {n.package} {n.installed} -> {n.candidate} in {n.suite} "
                       "(not a security/updates suite)")
        for w in deb.warnings:
            out.append(f"    apt warning: {w}")
    if report.sbom is not None:
        s = report.sbom
        out.append(f"  sbom: {s['path']}: {s['os_packages']} OS packages "
                   f"({s['os_source_packages']} source), {s['python_packages']} Python packages, "
                   f"CPython {s['cpython'] or 'unknown'}, {s['own_files']} own files")
    for error in report.errors:
        out.append(f"  ERROR {error}")
    return "\n".join(out)

