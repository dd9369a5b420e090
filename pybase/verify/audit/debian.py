"""The Debian check: inside the image, apt reads the release's indices; an installed package with
a newer version in the release's -security or -updates suite is a pending fix (a finding)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pybase.infra import emulation, engine
from pybase.verify.audit.report import AuditError, DebianFinding, DebianNotice, DebianResult, scrub

APT_TIMEOUT = 300.0


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
    config = engine.inspect(ref)
    emulated = emulation.run_options(config.platform) if config else []
    try:
        run = engine.docker("run", "--rm", "--user", "0", "--entrypoint", "sh", *emulated,
                            *docker_args, ref, "-c", _APT_SCRIPT, capture=True, check=False, timeout=timeout,
                            what="apt-get update/apt-cache policy in the image")
    except engine.EngineError as exc:
        raise AuditError(str(exc)) from None
    sections = _sections(run.stdout)
    if "update-failed" in sections:
        raise AuditError("apt-get update failed in the image, so pending fixes are unknown: "
                         + scrub(" | ".join(sections["update-failed"].splitlines()[-3:])))
    if run.returncode != 0 or "end" not in sections:
        raise AuditError(scrub(engine.failure("apt check in the image", run)))
    codename = sections.get("codename", "").strip()
    if not codename:
        raise AuditError("/etc/os-release has no VERSION_CODENAME; cannot tell the release's "
                         "security suite")
    result = DebianResult(codename=codename)
    result.warnings = [scrub(w) for w in sections.get("warnings", "").splitlines() if w.strip()]
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


