"""Pure logic of the audit gate and the SBOM merge: parsers, classification, exceptions, reports.

The apt texts are verbatim `LC_ALL=C apt-cache policy` output shapes (mirror addresses replaced);
the engine-backed behaviour is in tests/integration/test_audit.py.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pybase.build import inventory, sbom
from pybase.core import paths, settings
from pybase.verify import audit
from pybase.verify.audit import debian as audit_debian
from pybase.verify.audit import report as audit_report
from pybase.verify.audit import source as audit_source
from pybase.verify.audit_ignore import IgnoreFile, load_ignores

TODAY = date(2026, 11, 21)

POLICY = """\
tzdata:
  Installed: 2026b-0+deb12u1
  Candidate: 2026f-0+deb12u1
  Version table:
     2026f-0+deb12u1 500
        500 http://mirror.invalid/debian-security bookworm-security/main amd64 Packages
 *** 2026b-0+deb12u1 500
        500 http://mirror.invalid/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
     2025b-0+deb12u1 500
        500 http://mirror.invalid/debian bookworm-updates/main amd64 Packages
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
 *** 2.36-9+deb12u14 500
        500 http://mirror.invalid/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
     2.36-9+deb12u7 500
        500 http://mirror.invalid/debian-security bookworm-security/main amd64 Packages
libsystemd0:
  Installed: 252.38-1~deb12u1
  Candidate: 252.39-1~deb12u2
  Version table:
     252.39-1~deb12u2 500
        500 http://mirror.invalid/debian bookworm/main amd64 Packages
 *** 252.38-1~deb12u1 100
        100 /var/lib/dpkg/status
openssl:
  Installed: 3.0.20-1~deb12u2
  Candidate: 3.0.22-1~deb12u2
  Version table:
     3.0.22-1~deb12u2 500
        500 http://mirror.invalid/debian bookworm/main amd64 Packages
     3.0.21-1~deb12u1 500
        500 http://mirror.invalid/debian bookworm-updates/main amd64 Packages
        500 http://mirror.invalid/debian-security bookworm-security/main amd64 Packages
 *** 3.0.20-1~deb12u2 100
        100 /var/lib/dpkg/status
local-tool:
  Installed: 1.0
  Candidate: 1.0
  Version table:
 *** 1.0 100
        100 /var/lib/dpkg/status
"""

RELEASES = """\
Package files:
 100 /var/lib/dpkg/status
     release a=now
 500 http://mirror.invalid/debian-security bookworm-security/main amd64 Packages
     release v=12,o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security,c=main,b=amd64
     origin mirror.invalid
 500 http://mirror.invalid/debian bookworm-updates/main amd64 Packages
     release v=12-updates,o=Debian,a=oldstable-updates,n=bookworm-updates,l=Debian,c=main,b=amd64
     origin mirror.invalid
 500 http://mirror.invalid/debian stable/main amd64 Packages
     release v=12.15,o=Debian,a=oldstable,n=bookworm,l=Debian,c=main,b=amd64
     origin mirror.invalid
Pinned packages:
"""


# --- apt --------------------------------------------------------------------------------------

def test_policy_parser_keeps_apt_order_and_suites() -> None:
    policies = audit.parse_apt_policy(POLICY)
    assert list(policies) == ["tzdata", "libc6", "libsystemd0", "openssl", "local-tool"]
    assert policies["tzdata"].installed == "2026b-0+deb12u1"
    assert policies["tzdata"].versions == [
        ("2026f-0+deb12u1", ["bookworm-security"], False),
        ("2026b-0+deb12u1", ["bookworm"], True),
        ("2025b-0+deb12u1", ["bookworm-updates"], False),
    ]
    assert policies["openssl"].versions[1] == (
        "3.0.21-1~deb12u1", ["bookworm-updates", "bookworm-security"], False)
    assert policies["local-tool"].versions == [("1.0", [], True)]


def test_newer_security_or_updates_version_is_a_finding_others_are_notices() -> None:
    findings, notices = audit.pending_fixes(audit.parse_apt_policy(POLICY), "bookworm")
    assert [(f.package, f.installed, f.candidate, f.suite) for f in findings] == [
        ("openssl", "3.0.20-1~deb12u2", "3.0.21-1~deb12u1", "bookworm-security, bookworm-updates"),
        ("tzdata", "2026b-0+deb12u1", "2026f-0+deb12u1", "bookworm-security"),
    ]
    # libc6: the security suite's version is older than the installed one: not pending
    assert [(n.package, n.candidate, n.suite) for n in notices] == [
        ("libsystemd0", "252.39-1~deb12u2", "bookworm")]
    assert findings[1].id == "debian:tzdata=2026f-0+deb12u1"
    assert findings[1].aliases == ["debian:tzdata"]


def test_other_release_suites_do_not_count_as_fixes() -> None:
    findings, notices = audit.pending_fixes(audit.parse_apt_policy(POLICY), "trixie")
    assert findings == []
    assert {n.package for n in notices} == {"tzdata", "libsystemd0", "openssl"}


def test_sources_naming_archives_map_to_codenames() -> None:
    """`deb ... stable-security main` is still the release's security suite."""
    text = POLICY.replace("bookworm-security/main", "oldstable-security/main")
    releases = audit.parse_releases(RELEASES.replace("bookworm-security/main",
                                                     "oldstable-security/main"))
    assert releases["oldstable-security"]["n"] == "bookworm-security"
    assert releases["stable"]["n"] == "bookworm"
    findings, _ = audit.pending_fixes(audit.parse_apt_policy(text), "bookworm", releases)
    assert ("tzdata", "bookworm-security") in {(f.package, f.suite) for f in findings}
    unmapped, _ = audit.pending_fixes(audit.parse_apt_policy(text), "bookworm")
    assert "tzdata" not in {f.package for f in unmapped}


def test_old_style_security_dist_keeps_its_slash() -> None:
    policy = audit.parse_apt_policy(
        "zlib1g:\n  Installed: 1\n  Candidate: 2\n  Version table:\n     2 500\n"
        "        500 http://mirror.invalid buster/updates/main amd64 Packages\n"
        " *** 1 100\n        100 /var/lib/dpkg/status\n")
    assert policy["zlib1g"].versions[0] == ("2", ["buster/updates"], False)


def test_script_sections_are_split_on_markers() -> None:
    sections = audit_debian._sections("noise\n@@codename bookworm\n@@warnings\n@@releases\na\nb\n@@end\n")
    assert sections == {"codename": "bookworm", "warnings": "", "releases": "a\nb", "end": ""}


def test_urls_never_reach_a_report() -> None:
    text = "W: Failed to fetch http://mirror.invalid/debian/dists/x/InRelease  refused"
    assert audit_report.scrub(text) == "W: Failed to fetch <repository>  refused"


# --- pip-audit --------------------------------------------------------------------------------

def dist(name: str, version: str, env: str = "/opt/venv") -> inventory.Distribution:
    return inventory.Distribution(name, version, f"{env}/lib/python3.13/site-packages/"
                                  f"{name}-{version}.dist-info", env)


def test_same_name_at_two_versions_goes_to_separate_batches() -> None:
    dists = [dist("pip", "26.2.1", "/usr/local"), dist("pip", "23.2"), dist("pip", "26.2.1"),
             dist("Pygments", "2.21.0"), dist("pygments", "2.21.0", "/usr/local")]
    batches = audit.requirement_batches(dists)
    assert batches == [[("pip", "23.2"), ("Pygments", "2.21.0")], [("pip", "26.2.1")]]
    assert audit.requirement_batches([]) == []


PIP_AUDIT_JSON: dict[str, Any] = {"dependencies": [
    {"name": "pip", "version": "23.2", "vulns": [
        {"id": "PYSEC-2023-228", "fix_versions": ["23.3"], "aliases": ["CVE-2023-5752"],
         "description": "When installing\n  from hg"}]},
    {"name": "pygments", "version": "2.21.0", "vulns": []},
], "fixes": []}


def test_pip_audit_findings_are_read_with_fix_versions() -> None:
    vulns, errors = audit.parse_pip_audit(PIP_AUDIT_JSON, [("pip", "23.2"), ("Pygments", "2.21")])
    assert errors == []
    assert vulns == [{"package": "pip", "version": "23.2", "id": "PYSEC-2023-228",
                      "aliases": ["CVE-2023-5752"], "fix_versions": ["23.3"],
                      "description": "When installing from hg"}]


@pytest.mark.parametrize(("answer", "expected"), [
    ({"dependencies": [{"name": "pip", "version": "23.2", "skip_reason": "not on PyPI"}]},
     "pip==23.2: not audited: not on PyPI"),
    ({"dependencies": [{"name": "pip", "version": "23.2"}]}, "pip==23.2: not audited"),
    ({"dependencies": []}, "pip==23.2: pip-audit returned no result for it"),
    ({"dependencies": [{"name": "pip", "version": "23.3", "vulns": []}]},
     "pip==23.2: pip-audit returned no result for it"),
    ({"unexpected": True}, "pip-audit's JSON has no 'dependencies' list"),
    ([], "pip-audit's JSON has no 'dependencies' list"),
])
def test_anything_not_audited_is_an_error(answer: Any, expected: str) -> None:
    vulns, errors = audit.parse_pip_audit(answer, [("pip", "23.2")])
    assert vulns == []
    assert len(errors) == 1 and errors[0].startswith(expected)


def test_source_choice_precedence() -> None:
    db = Path("/srv/osv.tar.gz")
    env = {settings.ADVISORY_DB: "/env/osv.tar.gz"}
    assert audit.choose_source(db, None, None, env) == audit.SourceChoice(advisory_db=db)
    assert audit.choose_source(None, None, None, env).advisory_db == Path("/env/osv.tar.gz")
    assert audit.choose_source(None, None, None, {}) == audit.SourceChoice(service="pypi")
    online = audit.choose_source(None, None, "http://127.0.0.1:9/v1/query", env)
    assert (online.offline, online.service, online.osv_url) == (
        False, "osv", "http://127.0.0.1:9/v1/query")
    assert audit.choose_source(None, "osv", None, env) == audit.SourceChoice(service="osv")
    with pytest.raises(audit.AuditError, match="exclude each other"):
        audit.choose_source(db, "pypi", None, {})
    with pytest.raises(audit.AuditError, match="needs --service osv"):
        audit.choose_source(None, "pypi", "http://127.0.0.1:9/v1/query", {})


def test_missing_or_empty_advisory_database_is_an_error(tmp_path: Path) -> None:
    missing = audit.vulnerability_source(audit.SourceChoice(advisory_db=tmp_path / "none.zip"))
    with pytest.raises(audit.AuditError, match="expected an OSV directory"), missing:
        pass
    empty = audit.vulnerability_source(audit.SourceChoice(advisory_db=tmp_path))
    with pytest.raises(audit.AuditError, match="no advisories in it"), empty:
        pass


def test_offline_source_drops_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    env = audit_source._offline_env()
    assert not {"HTTPS_PROXY", "http_proxy"} & set(env)
    assert env["NO_PROXY"] == "127.0.0.1,localhost"


# --- exceptions and reports -------------------------------------------------------------------

def report_with_findings() -> audit.ImageReport:
    report = audit.ImageReport(image="pybase-audit-test:x",
                               tags=["pybase-audit-test:x", "pybase-audit-test:3.13-dev"],
                               checks=["python", "debian"], seconds=1.0)
    report.python = audit.PythonResult(source="offline", audited=["pip==23.2"], findings=[
        audit.PythonFinding("pip", "23.2", "PYSEC-2023-228", ["CVE-2023-5752"], ["23.3"], "hg",
                            ["/opt/venv/lib/python3.13/site-packages/pip-23.2.dist-info"],
                            ["/opt/venv"])])
    report.debian = audit.DebianResult(
        codename="bookworm", suites={"bookworm-security": "v=12"}, packages=98,
        findings=[audit.DebianFinding("tzdata", "2026b-0+deb12u1", "2026f-0+deb12u1",
                                      "bookworm-security")])
    return report


def ignores(tmp_path: Path, body: str) -> IgnoreFile:
    path = tmp_path / "audit-ignore.yaml"
    path.write_text(body)
    return load_ignores(path, TODAY)


def test_findings_fail_until_each_is_accepted(tmp_path: Path) -> None:
    report = report_with_findings()
    assert (report.status, report.open_findings) == ("failed", 2)
    used = audit.apply_ignores(report, ignores(tmp_path, (
        "ignore:\n"
        "  - {id: cve-2023-5752, reason: build-time only, expires: 2027-01-31,"
        " scope: 'pybase-audit-test:3.13-*'}\n"
        "  - {id: PYSEC-2023-228, reason: wrong scope, expires: 2027-01-31, scope: 'other:*'}\n")))
    assert used == {"cve-2023-5752"}  # by alias, in any case, scope matched by another tag
    assert report.python is not None and report.python.findings[0].ignored is not None
    assert report.python.findings[0].ignored.reason == "build-time only"
    assert (report.status, report.open_findings, report.ignored_findings) == ("failed", 1, 1)
    audit.apply_ignores(report, ignores(tmp_path, (
        "ignore:\n  - {id: debian:tzdata, reason: waiting for the point release,"
        " expires: 2026-12-01}\n")))
    assert (report.status, report.open_findings, report.ignored_findings) == ("passed", 0, 2)


def test_specific_debian_version_can_be_accepted(tmp_path: Path) -> None:
    report = report_with_findings()
    audit.apply_ignores(report, ignores(tmp_path, (
        "ignore:\n  - {id: 'debian:tzdata=2026f-0+deb12u1', reason: r, expires: 2026-12-01}\n"
        "  - {id: 'debian:tzdata=2030a-0', reason: r, expires: 2026-12-01}\n")))
    assert report.debian is not None and report.debian.findings[0].ignored is not None
    assert report.debian.findings[0].ignored.id == "debian:tzdata=2026f-0+deb12u1"


def test_errors_outrank_findings() -> None:
    report = report_with_findings()
    report.errors.append("debian: apt-get update failed")
    assert report.status == "error"


def test_json_report_and_table(tmp_path: Path) -> None:
    report = report_with_findings()
    path = audit.write_report(report, tmp_path)
    assert path == tmp_path / "audit" / "x.json"
    data = json.loads(path.read_text())
    assert data["status"] == "failed" and data["open_findings"] == 2
    assert data["python"]["findings"][0]["status"] == "open"
    assert data["python"]["findings"][0]["fix_versions"] == ["23.3"]
    assert data["debian"]["findings"][0] | {"ignored": None} == {
        "package": "tzdata", "installed": "2026b-0+deb12u1", "candidate": "2026f-0+deb12u1",
        "suite": "bookworm-security", "ignored": None, "status": "open",
        "id": "debian:tzdata=2026f-0+deb12u1", "aliases": ["debian:tzdata"]}
    table = audit.render(report)
    assert "FAILED  (2 open, 0 ignored" in table
    assert any(line.split() == ["pip", "23.2", "PYSEC-2023-228", "23.3", "/opt/venv", "OPEN"]
               for line in table.splitlines())
    assert any(line.split() == ["tzdata", "2026b-0+deb12u1", "2026f-0+deb12u1",
                                "bookworm-security", "OPEN"] for line in table.splitlines())


def test_invalid_exceptions_file_fails_even_without_images(tmp_path: Path) -> None:
    path = tmp_path / "audit-ignore.yaml"
    path.write_text("ignore:\n  - id: PYSEC-2023-228\n    reason: ''\n    expires: 2027-01-31\n")
    lines: list[str] = []
    status, reports = audit.run([], audit.SourceChoice(), path,
                                audit.Options(checks=("debian",), report_dir=tmp_path),
                                today=TODAY, echo=lines.append)
    assert (status, reports) == (2, [])
    assert f"{path}:3: entry 'PYSEC-2023-228': reason" in "\n".join(lines)


def test_shipped_exceptions_file_is_valid() -> None:
    load_ignores(audit.IGNORE_FILE, TODAY)


# --- SBOM -------------------------------------------------------------------------------------

OS_BOM: dict[str, Any] = {
    "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
    "metadata": {"component": {"bom-ref": "CDXRef-Debian", "name": "Debian",
                               "type": "operating-system", "version": "12.15"},
                 "tools": {"components": [{"name": "debsbom", "type": "application",
                                           "version": "0.10.2"}]}},
    "components": [
        {"bom-ref": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all", "name": "tzdata",
         "type": "library", "version": "2026f-0+deb12u1", "group": "debian",
         "purl": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all"},
        {"bom-ref": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=source", "name": "tzdata",
         "type": "library", "version": "2026f-0+deb12u1",
         "purl": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=source"}],
    "dependencies": [{"ref": "CDXRef-Debian",
                      "dependsOn": ["pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all"]}],
}
PY_BOM: dict[str, Any] = {
    "metadata": {"tools": {"components": [{
        "name": "cyclonedx-py", "type": "application", "version": "7.5.0",
        "externalReferences": [{"type": "distribution", "url": "https://index.invalid/x"},
                               {"type": "vcs", "url": "https://example.invalid/repo"}]}]}},
    "components": [
        {"bom-ref": "requirements-L1", "description": "requirements line 1: pip==23.2",
         "name": "pip", "purl": "pkg:pypi/pip@23.2", "type": "library", "version": "23.2",
         "externalReferences": [{"comment": "implicit dist url", "type": "distribution",
                                 "url": "https://index.invalid/simple/pip/"}]},
        {"bom-ref": "requirements-L2", "name": "pip", "purl": "pkg:pypi/pip@26.2.1",
         "type": "library", "version": "26.2.1"}],
}
LABELS = {"org.opencontainers.image.version": "3.13.15-bookworm-20261121",
          "org.opencontainers.image.revision": "abc"}


def test_merge_gives_one_valid_document() -> None:
    dists = [dist("pip", "26.2.1", "/usr/local"), dist("pip", "26.2.1"), dist("pip", "23.2")]
    doc = sbom.merge(OS_BOM, PY_BOM, dists, "python-base:3.13.15-bookworm", LABELS, "sha256:1")
    sbom.validate(doc)
    assert doc["metadata"]["component"] == {
        "type": "container", "bom-ref": sbom.IMAGE_BOM_REF, "name": "python-base",
        "version": "3.13.15-bookworm-20261121"}
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert props == {**LABELS, "python-base:image.ref": "python-base:3.13.15-bookworm",
                     "python-base:image.id": "sha256:1"}
    python = [c for c in doc["components"] if c.get("purl", "").startswith("pkg:pypi/")]
    assert [c["bom-ref"] for c in python] == ["pkg:pypi/pip@23.2", "pkg:pypi/pip@26.2.1"]
    assert [o["location"].split("/")[1] for o in python[1]["evidence"]["occurrences"]] == [
        "usr", "opt"]
    assert "externalReferences" not in python[0] and "description" not in python[0]
    tool = next(t for t in doc["metadata"]["tools"]["components"] if t["name"] == "cyclonedx-py")
    assert [r["type"] for r in tool["externalReferences"]] == ["vcs"]
    assert doc["dependencies"][0] == {"ref": sbom.IMAGE_BOM_REF, "dependsOn": [
        "CDXRef-Debian", "pkg:pypi/pip@23.2", "pkg:pypi/pip@26.2.1"]}
    assert sbom.counts(doc) == (1, 1, 2)


def test_merge_refuses_a_python_side_that_does_not_match_the_inventory() -> None:
    with pytest.raises(sbom.SbomError, match="left out installed distributions: flask==3.0"):
        sbom.merge(OS_BOM, PY_BOM, [dist("pip", "23.2"), dist("pip", "26.2.1"),
                                    dist("flask", "3.0")], "x:y", {})
    with pytest.raises(sbom.SbomError, match="which is not installed"):
        sbom.merge(OS_BOM, PY_BOM, [dist("pip", "23.2")], "x:y", {})


def test_invalid_document_is_refused() -> None:
    doc = sbom.merge(OS_BOM, PY_BOM, [dist("pip", "23.2"), dist("pip", "26.2.1")], "x:y", {})
    doc["components"][0]["type"] = "spaceship"
    with pytest.raises(sbom.SbomError, match="not valid CycloneDX 1.6: components/0/type"):
        sbom.validate(doc)


def test_inventory_without_distributions_is_incomplete() -> None:
    inv = inventory.parse("x:y", {
        "environments": [{"label": "/opt/venv", "python": "/opt/venv/bin/python",
                          "prefix": "/opt/venv", "dists": []}],
        "other": [{"name": None, "version": "1", "path": "/app/x.dist-info",
                   "environment": "/app"}]})
    assert inv.distributions == []
    assert any("no installed distribution found in /opt/venv" in e for e in inv.errors)
    assert any("/app/x.dist-info: a distribution without name" in e for e in inv.errors)


def test_a_venv_that_only_shares_the_system_pip_is_complete() -> None:
    pip = {"name": "pip", "version": "26.2.1", "path": "/usr/local/lib/x/pip.dist-info",
           "license": "MIT"}
    inv = inventory.parse("x:y", {"environments": [
        {"label": "/usr/local", "python": "/usr/local/bin/python3", "prefix": "/usr/local",
         "dists": [pip], "sees": 1},
        {"label": "/opt/venv", "python": "/opt/venv/bin/python", "prefix": "/opt/venv",
         "dists": [], "sees": 1}]})
    assert inv.errors == []
    assert [(d.name, d.environment) for d in inv.distributions] == [("pip", "/usr/local")]


@pytest.mark.parametrize(("ref", "tag", "expected"), [
    ("python-base:3.13.15-bookworm", "3.13-bookworm", "python-base:3.13-bookworm"),
    ("127.0.0.1:5000/team/python-base:3.13", "latest", "127.0.0.1:5000/team/python-base:latest"),
    ("python-base:3.13", "other:tag", "other:tag"),
])
def test_bare_tags_join_the_repository(ref: str, tag: str, expected: str) -> None:
    assert sbom.full_ref(ref, tag) == expected


@pytest.mark.parametrize(("ref", "name"), [
    ("python-base:3.13.15-bookworm-dev", "3.13.15-bookworm-dev"),
    ("127.0.0.1:5000/python-base:3.13", "3.13"),
    ("127.0.0.1:5000/python-base", "python-base"),
])
def test_report_names_are_the_local_tag(ref: str, name: str) -> None:
    assert paths.report_name(ref) == name
