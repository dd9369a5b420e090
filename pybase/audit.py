"""The audit gate (`nox -s audit`, `pybase audit`): is a built image free of known, unfixed flaws?

For each image, three looks, each of which must really happen (an audit that could not look is a
failed audit, never a clean one):

* Python: every distribution of the system interpreter (/usr/local), the app venv (/opt/venv) and
  any other dist-info found in the image (pybase.inventory) goes to `pip-audit --strict
  --no-deps --disable-pip` as name==version. Vulnerability data comes from an offline OSV
  snapshot (`--advisory-db PATH` or $PYBASE_ADVISORY_DB, served on 127.0.0.1 by
  pybase.osv_server) or from an online service (`--service pypi|osv`). Every requested
  package must come back audited; a skip or an unreachable service is an error.
* Debian: `apt-get update` inside the image (as root), then `apt-cache policy` for every installed
  package: a newer version in the release's `-security` or `-updates` suite is a pending fix,
  i.e. a finding (zero is the bar). Newer versions elsewhere (a point release in the main suite,
  backports) are listed as notices. Both suites must have been fetched, or the check failed.
* SBOM: reports/sbom/<local-tag>.cdx.json (pybase.sbom).

Findings that a human accepted are in images/audit-ignore.yaml (pybase.audit_ignore): they are
reported as "ignored" with reason and expiry and do not fail the gate; an expired or reasonless
entry fails every audit. Debian findings have ids of the form `debian:<package>=<candidate>`
with the alias `debian:<package>`, so either may be accepted.

Each image gets a table on the terminal and reports/audit/<local-tag>.json. Exit status of
`run()`: 0 all clean, 1 open findings, 2 an audit could not run (or the ignore file is invalid).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pybase import engine, inventory, osv, osv_server, sbom
from pybase.audit_ignore import AuditIgnoreError, IgnoreEntry, IgnoreFile, load_ignores

__all__ = [
    "CHECKS", "AuditError", "ImageReport", "Options", "SourceChoice", "audit_image",
    "choose_source", "debian_check", "parse_apt_policy", "python_check", "run",
    "vulnerability_source",
]

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
IGNORE_FILE = REPO / "images" / "audit-ignore.yaml"
ADVISORY_DB_ENV = "PYBASE_ADVISORY_DB"
CHECKS = ("python", "os")
PIP_AUDIT_TIMEOUT = 600.0
APT_TIMEOUT = 300.0
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class AuditError(engine.CommandError):
    """An audit could not run (its data could not be gathered or trusted)."""


def _scrub(text: str) -> str:
    """Reports never carry repository or index URLs (only suite names)."""
    return _URL.sub("<repository>", text)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Vulnerability data for pip-audit
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceChoice:
    """Where pip-audit gets its data: an offline database, or an online service."""

    advisory_db: Path | None = None
    service: str = "pypi"
    osv_url: str | None = None

    @property
    def offline(self) -> bool:
        return self.advisory_db is not None


def choose_source(advisory_db: Path | None, service: str | None, osv_url: str | None,
                  environ: dict[str, str] | None = None) -> SourceChoice:
    """--advisory-db wins; an explicit --service/--osv-url means online; then $PYBASE_ADVISORY_DB;
    then the online PyPI service."""
    if advisory_db is not None:
        if service is not None or osv_url is not None:
            raise AuditError("--advisory-db (offline) and --service/--osv-url (online) exclude "
                             "each other")
        return SourceChoice(advisory_db=advisory_db)
    if osv_url is not None:
        if service not in (None, "osv"):
            raise AuditError(f"--osv-url needs --service osv, not {service}")
        return SourceChoice(service="osv", osv_url=osv_url)
    if service is not None:
        return SourceChoice(service=service)
    env_db = (environ if environ is not None else dict(os.environ)).get(ADVISORY_DB_ENV)
    if env_db:
        return SourceChoice(advisory_db=Path(env_db))
    return SourceChoice(service="pypi")


@dataclass(frozen=True)
class VulnerabilitySource:
    description: str
    args: list[str]
    env: dict[str, str]


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@functools.lru_cache(maxsize=2)
def _cached_database(path: str, mtime_ns: int, size: int) -> osv.OsvDatabase:
    try:
        return osv.load_database(Path(path))
    except osv.OsvError as exc:
        raise AuditError(f"advisory database: {exc}") from None


def _load_database(path: Path) -> osv.OsvDatabase:
    """Read once per process (2 s for the PyPA snapshot), again if the file changes."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise AuditError(f"advisory database {path}: {exc.strerror}; expected an OSV directory, "
                         ".zip or .tar.gz") from None
    return _cached_database(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@contextmanager
def vulnerability_source(choice: SourceChoice) -> Iterator[VulnerabilitySource]:
    """pip-audit arguments for `choice`; an offline database is served for the duration."""
    if choice.advisory_db is None:
        args = ["-s", choice.service]
        if choice.osv_url:
            args += ["--osv-url", choice.osv_url]
        where = f" at {choice.osv_url}" if choice.osv_url else ""
        yield VulnerabilitySource(f"online {choice.service} service{where}", args,
                                  dict(os.environ))
        return
    db = _load_database(choice.advisory_db)
    if len(db) == 0:
        raise AuditError(f"advisory database {choice.advisory_db}: no advisories in it; an empty "
                         "database would pass everything")
    with osv_server.serve(db) as url:
        yield VulnerabilitySource(
            f"offline OSV database {choice.advisory_db} ({len(db)} advisories)",
            ["-s", "osv", "--osv-url", url], _offline_env())


# --------------------------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------------------------

def requirement_batches(dists: Sequence[inventory.Distribution]) -> list[list[tuple[str, str]]]:
    """Unique (name, version) pairs split so that no batch names a package twice.

    The same name at two versions (pip 26 in /usr/local, pip 23 in the venv) is normal in an
    image but not in one requirements file.
    """
    batches: list[dict[str, tuple[str, str]]] = []
    for name, version in sorted({(d.name, d.version) for d in dists},
                                key=lambda p: (p[0].lower(), p[1], p[0])):
        key = canonicalize_name(name)
        seen = {(canonicalize_name(n), v) for b in batches for n, v in b.values()}
        if (key, version) in seen:
            continue
        for batch in batches:
            if key not in batch:
                batch[key] = (name, version)
                break
        else:
            batches.append({key: (name, version)})
    return [sorted(b.values(), key=lambda p: p[0].lower()) for b in batches]


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def parse_pip_audit(data: Any, requested: Sequence[tuple[str, str]]
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """pip-audit's JSON -> (vulnerabilities with package/version, errors).

    Every requested name==version must come back with a `vulns` list; anything else (skipped,
    missing, malformed) is an error, so a silent skip can never look clean.
    """
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        return [], ["pip-audit's JSON has no 'dependencies' list"]
    answered: dict[str, list[dict[str, Any]]] = {}
    for dep in data["dependencies"]:
        if isinstance(dep, dict) and isinstance(dep.get("name"), str):
            answered.setdefault(canonicalize_name(dep["name"]), []).append(dep)
    vulns: list[dict[str, Any]] = []
    errors: list[str] = []
    for name, version in requested:
        match = [d for d in answered.get(canonicalize_name(name), [])
                 if _same_version(str(d.get("version")), version)]
        if not match:
            errors.append(f"{name}=={version}: pip-audit returned no result for it")
            continue
        dep = match[0]
        if "skip_reason" in dep or not isinstance(dep.get("vulns"), list):
            reason = dep.get("skip_reason") or "no 'vulns' list"
            errors.append(f"{name}=={version}: not audited: {reason}")
            continue
        for vuln in dep["vulns"]:
            vulns.append({"package": name, "version": version, "id": str(vuln.get("id")),
                          "aliases": [str(a) for a in vuln.get("aliases") or []],
                          "fix_versions": [str(v) for v in vuln.get("fix_versions") or []],
                          "description": " ".join(str(vuln.get("description") or "").split())})
    return vulns, errors


def _pip_audit(batch: Sequence[tuple[str, str]], source: VulnerabilitySource, scratch: Path,
               index: int) -> Any:
    requirements = scratch / f"requirements-{index}.txt"
    requirements.write_text("".join(f"{n}=={v}\n" for n, v in batch), encoding="utf-8")
    output = scratch / f"pip-audit-{index}.json"
    args = [sbom.tool("pip-audit"), "--strict", *source.args, "-r", str(requirements),
            "--no-deps", "--disable-pip", "--cache-dir", str(scratch / "cache"),
            "--progress-spinner", "off", "-f", "json", "-o", str(output)]
    # Exit 1 also means "vulnerabilities found": the output file tells success from failure.
    result = engine.run(args, what="pip-audit", env=source.env, timeout=PIP_AUDIT_TIMEOUT,
                        check=False, error=AuditError)
    if not output.is_file():  # --strict stops before writing when anything was skipped
        raise AuditError(f"pip-audit could not audit against the {source.description}: "
                         + _scrub(engine.failure("pip-audit", result)))
    return json.loads(output.read_text(encoding="utf-8"))


def python_check(inv: inventory.Inventory, source: VulnerabilitySource) -> PythonResult:
    """pip-audit every distribution of the inventory; raises AuditError if any was not audited."""
    dists = inv.distributions
    result = PythonResult(source=source.description)
    for env in inv.environments:
        result.environments.append({
            "environment": env.label, "python": env.python, "prefix": env.prefix,
            "distributions": [f"{d.name}=={d.version}" for d in env.distributions]})
    if inv.other:
        for where in dict.fromkeys(d.environment for d in inv.other):
            result.environments.append({
                "environment": where, "python": None, "prefix": where,
                "distributions": [f"{d.name}=={d.version}" for d in inv.other
                                  if d.environment == where]})
    if inv.errors:
        raise AuditError("the Python inventory is incomplete: " + "; ".join(inv.errors))
    if not dists:
        raise AuditError("no Python distribution found in the image: nothing was audited")
    vulns: list[dict[str, Any]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pybase-audit-") as tmp:
        for index, batch in enumerate(requirement_batches(dists)):
            found, problems = parse_pip_audit(_pip_audit(batch, source, Path(tmp), index), batch)
            vulns += found
            errors += problems
            result.audited += [f"{n}=={v}" for n, v in batch]
    if errors:
        raise AuditError(f"pip-audit ({source.description}): " + "; ".join(errors))
    for vuln in vulns:
        copies = [d for d in dists if d.key == (canonicalize_name(vuln["package"]),
                                                vuln["version"])]
        result.findings.append(PythonFinding(
            **vuln, locations=[d.path for d in copies],
            environments=list(dict.fromkeys(d.environment for d in copies))))
    return result


# --------------------------------------------------------------------------------------------
# Debian
# --------------------------------------------------------------------------------------------

# Runs in the image as root. Markers split the sections; URLs are never kept on the host side.
_APT_SCRIPT = r"""
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
codename=
if [ -r /etc/os-release ]; then . /etc/os-release; codename="${VERSION_CODENAME:-}"; fi
echo "@@codename $codename"
if ! apt-get update -q >/tmp/pybase-apt-update.log 2>&1; then
    echo "@@update-failed"
    grep -E '^(E|W|Err):' /tmp/pybase-apt-update.log | tail -n 5
    exit 3
fi
echo "@@warnings"
grep -E '^(E|W|Err):' /tmp/pybase-apt-update.log || true
echo "@@releases"
apt-cache policy
echo "@@installed"
dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk 'substr($1, 2, 1) != "n" && substr($1, 2, 1) != "c" { print $2 }' > /tmp/pybase-installed
cat /tmp/pybase-installed
echo "@@policy"
xargs apt-cache policy < /tmp/pybase-installed
echo "@@end"
"""


@dataclass
class PackagePolicy:
    installed: str | None
    # (version, suites offering it, is the installed one), apt's order: newest first
    versions: list[tuple[str, list[str], bool]] = field(default_factory=list)


_VERSION_LINE = re.compile(r"^ (\*\*\*|   ) (\S+) (-?\d+)$")
_SOURCE_LINE = re.compile(r"^ {6,}(-?\d+) (\S.*)$")
_SOURCE_LINE_ANY = re.compile(r"^ +(-?\d+) (\S.*)$")


def _suite_of(source: str) -> str | None:
    """'<uri> bookworm-security/main amd64 Packages' -> 'bookworm-security'; status -> None."""
    tokens = source.split()
    if not tokens or tokens[0].startswith("/var/lib/dpkg/status") or len(tokens) < 3:
        return None
    dist = tokens[1]
    return dist.rsplit("/", 1)[0] if "/" in dist.rstrip("/") else dist.rstrip("/")


def parse_apt_policy(text: str) -> dict[str, PackagePolicy]:
    """Parse `apt-cache policy PKG...` output (LC_ALL=C)."""
    packages: dict[str, PackagePolicy] = {}
    current: PackagePolicy | None = None
    version: tuple[str, list[str], bool] | None = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = packages.setdefault(line[:-1], PackagePolicy(None))
            version = None
        elif current is None:
            continue
        elif line.startswith("  Installed: "):
            value = line.split(": ", 1)[1].strip()
            current.installed = None if value == "(none)" else value
        elif match := _VERSION_LINE.match(line):
            version = (match.group(2), [], match.group(1) == "***")
            current.versions.append(version)
        elif version is not None and (match := _SOURCE_LINE.match(line)):
            suite = _suite_of(match.group(2))
            if suite is not None and suite not in version[1]:
                version[1].append(suite)
    return packages


def parse_releases(text: str) -> dict[str, dict[str, str]]:
    """`apt-cache policy` (no arguments) -> {dist as written in sources: Release fields}.

    The fields include n= (the codename-style suite, `bookworm-security`) and a= (the archive,
    `oldstable-security`), so sources that say `stable-security` still map to the codename.
    """
    releases: dict[str, dict[str, str]] = {}
    suite: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("release "):
            if suite is not None:
                releases[suite] = dict(item.split("=", 1) for item in stripped[8:].split(",")
                                       if "=" in item)
            suite = None
        elif match := _SOURCE_LINE_ANY.match(line):
            suite = _suite_of(match.group(2))
    return releases


def pending_fixes(policies: dict[str, PackagePolicy], codename: str,
                  releases: dict[str, dict[str, str]] | None = None
                  ) -> tuple[list[DebianFinding], list[DebianNotice]]:
    """Installed packages with a newer version in a suite: findings for the release's security
    and updates suites, notices for any other suite. `releases` maps the dists named in the
    sources to their Release codename (parse_releases)."""
    fix_suites = {f"{codename}-security", f"{codename}-updates"}
    names = {dist: fields.get("n", dist) for dist, fields in (releases or {}).items()}
    findings: list[DebianFinding] = []
    notices: list[DebianNotice] = []
    for package, policy in sorted(policies.items()):
        position = next((i for i, v in enumerate(policy.versions) if v[2]), None)
        if policy.installed is None or position is None:
            continue
        newer = [(v, sorted({names.get(s, s) for s in suites}))
                 for v, suites, _ in policy.versions[:position]]  # apt lists newest first
        fixes = [(v, [s for s in suites if s in fix_suites]) for v, suites in newer
                 if fix_suites.intersection(suites)]
        if fixes:
            candidate, suites = fixes[0]
            findings.append(DebianFinding(package, policy.installed, candidate, ", ".join(suites)))
            continue
        others = [(v, suites) for v, suites in newer if suites]
        if others:
            candidate, suites = others[0]
            notices.append(DebianNotice(package, policy.installed, candidate, ", ".join(suites)))
    return findings, notices


def _sections(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            name, _, rest = line[2:].partition(" ")
            current = sections.setdefault(name, [])
            if rest:
                current.append(rest)
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def debian_check(ref: str, docker_args: Sequence[str] = (), timeout: float = APT_TIMEOUT
                 ) -> DebianResult:
    """Pending security/updates fixes of the installed Debian packages of `ref`.

    `docker_args` go to `docker run` (tests mount an extra repository with them).
    """
    try:
        run = engine.docker("run", "--rm", "--user", "0", "--entrypoint", "sh", *docker_args,
                            ref, "-c", _APT_SCRIPT, capture=True, check=False, timeout=timeout,
                            what="apt-get update/apt-cache policy in the image")
    except engine.EngineError as exc:
        raise AuditError(str(exc)) from None
    sections = _sections(run.stdout)
    if "update-failed" in sections:
        raise AuditError("apt-get update failed in the image, so pending fixes are unknown: "
                         + _scrub(" | ".join(sections["update-failed"].splitlines()[-3:])))
    if run.returncode != 0 or "end" not in sections:
        raise AuditError(_scrub(engine.failure("apt check in the image", run)))
    codename = sections.get("codename", "").strip()
    if not codename:
        raise AuditError("/etc/os-release has no VERSION_CODENAME; cannot tell the release's "
                         "security suite")
    result = DebianResult(codename=codename)
    result.warnings = [_scrub(w) for w in sections.get("warnings", "").splitlines() if w.strip()]
    releases = parse_releases(sections.get("releases", ""))
    by_name = {fields["n"]: fields for fields in releases.values() if "n" in fields}
    wanted = (f"{codename}-security", f"{codename}-updates")
    missing = [s for s in wanted if s not in by_name]
    if missing:
        raise AuditError(f"apt has no index of {', '.join(missing)} (not in the image's sources, "
                         "or not fetched): pending fixes cannot be checked")
    result.suites = {s: ",".join(f"{k}={by_name[s][k]}" for k in ("v", "a") if k in by_name[s])
                     for s in wanted}
    installed = [p for p in sections.get("installed", "").splitlines() if p.strip()]
    policies = parse_apt_policy(sections.get("policy", ""))
    # dpkg says `libacl1:amd64` for Multi-Arch: same packages; apt drops the native arch.
    unseen = [p for p in installed if p not in policies and p.rsplit(":", 1)[0] not in policies]
    if not installed or unseen:
        raise AuditError("apt-cache policy did not describe every installed package"
                         + (f" (missing: {', '.join(unseen[:5])})" if unseen else ""))
    result.packages = len(installed)
    result.findings, result.notices = pending_fixes(policies, codename, releases)
    return result


# --------------------------------------------------------------------------------------------
# One image, many images
# --------------------------------------------------------------------------------------------

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
        apt = pool.submit(debian_check, ref, options.docker_args) if "os" in options.checks \
            else None
        inv: inventory.Inventory | None = None
        if "python" in options.checks or options.sbom:
            try:
                inv = inventory.inventory(ref)
            except inventory.InventoryError as exc:
                report.errors.append(f"inventory: {exc}")
        if "python" in options.checks and source is None:
            report.errors.append(f"python: {source_error or 'no vulnerability source was given'}")
        elif "python" in options.checks and inv is not None and source is not None:
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


def write_report(report: ImageReport, report_dir: Path) -> Path:
    path = report_dir / "audit" / f"{sbom.report_name(report.image)}.json"
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


def run(refs: Sequence[str], choice: SourceChoice, ignore_file: Path = IGNORE_FILE,
        options: Options = Options(), today: date | None = None,
        echo: Callable[[str], None] = print) -> tuple[int, list[ImageReport]]:
    """Audit every image, print and write the reports; (exit status, reports)."""
    today = today or datetime.now(UTC).date()
    ignore_error: str | None = None
    try:
        ignores = load_ignores(ignore_file, today)
    except AuditIgnoreError as exc:
        ignores, ignore_error = IgnoreFile(), str(exc)
        echo(f"audit: the exceptions file is invalid, so no finding is ignored:\n{exc}")
    reports: list[ImageReport] = []
    used: set[str] = set()
    with contextlib.ExitStack() as stack:
        source: VulnerabilitySource | None = None
        source_error: str | None = None
        if "python" in options.checks:
            try:
                source = stack.enter_context(vulnerability_source(choice))
            except AuditError as exc:
                source_error = str(exc)
                echo(f"audit: {exc}")
        for ref in refs:
            report = audit_image(ref, source, options, source_error)
            report.ignore_file = str(ignore_file)
            if ignore_error:
                report.errors.append(f"exceptions file: {ignore_error}")
            used.update(apply_ignores(report, ignores))
            path = write_report(report, options.report_dir)
            echo(render(report) + f"\n  report: {path}\n")
            reports.append(report)
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
