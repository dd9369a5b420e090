"""The audit gate against the real engine and real images, with the invented advisories of
tests/unit/data/osv (no real advisory data is needed).

One derived image per module carries the known-bad state: conftest's `pending_fix` image (the
selected runtime image of the default release, whose -security suite offers a newer tzdata
through a local apt repository) plus pip 23.2 in the venv (PYBASE-TEST-0001, fixed in 23.3).
It is built once, with the host CA bundle as a BuildKit secret for PyPI, and removed at the end
together with every tag and image a test made from it.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import (
    Image,
    PendingFix,
    default_runtime_image,
    docker,
    free_port,
    write_apt_repository,
)

from pybase import cli
from pybase.build import sbom
from pybase.core import paths, settings
from pybase.infra import engine
from pybase.verify import audit

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
ADVISORY_DB = REPO / "tests" / "unit" / "data" / "osv"
ADVISORY = "PYBASE-TEST-0001"  # pip before 23.3
ALIAS = "PYBASE-TEST-ALIAS-0001"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
VULNERABLE_PIP = "23.2"


@dataclass(frozen=True)
class Derived:
    ref: str
    fix: PendingFix  # the Debian package with a newer version in -security


@pytest.fixture(scope="module")
def base(request: pytest.FixtureRequest) -> Image:
    return default_runtime_image(request.config)


@pytest.fixture(scope="module")
def choice() -> audit.SourceChoice:
    return audit.SourceChoice(advisory_db=ADVISORY_DB)


DERIVED_DOCKERFILE = """\
FROM {base}
USER root
RUN --mount=type=secret,id=build-ca \\
    PIP_CERT=/run/secrets/build-ca /opt/venv/bin/python -m pip install -q --no-compile \\
        "pip=={pip}"
USER 10001:10001
"""


@pytest.fixture(scope="module")
def derived(pending_fix: PendingFix) -> Iterator[Derived]:
    ref = f"pybase-audit-test:{uuid.uuid4().hex[:10]}"
    made: list[str] = [ref]  # tags and ids to remove, whatever happens
    try:
        with tempfile.TemporaryDirectory(prefix="pybase-audit-test-") as context:
            Path(context, "Dockerfile").write_text(DERIVED_DOCKERFILE.format(
                base=pending_fix.ref, pip=VULNERABLE_PIP))
            docker("build", "--progress=plain", "--secret", f"id=build-ca,src={HOST_CA}",
                   "-t", ref, context, timeout=600)
        made.append(engine.image_id(ref) or ref)
        yield Derived(ref, pending_fix)
    finally:
        for leftover in (*made, f"{ref}-sbom"):
            engine.docker("image", "rm", "-f", leftover, capture=True, check=False)


@dataclass
class Run:
    status: int
    reports: list[audit.ImageReport]
    output: str


def run_audit(refs: list[str], choice: audit.SourceChoice, report_dir: Path,
              ignore_file: Path | None = None, **options: object) -> Run:
    lines: list[str] = []
    ignore = ignore_file or report_dir / "no-exceptions.yaml"
    if ignore_file is None:
        ignore.write_text("ignore: []\n")
    status, reports = audit.run(refs, choice, ignore,
                                audit.Options(report_dir=report_dir, **options),  # type: ignore[arg-type]
                                echo=lines.append)
    output = "\n".join(lines)
    print(output)
    return Run(status, reports, output)


@pytest.fixture(scope="module")
def vulnerable(derived: Derived, choice: audit.SourceChoice,
               tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The full audit (python, os, sbom) of the derived image, once."""
    return run_audit([derived.ref], choice, tmp_path_factory.mktemp("vulnerable-audit"))


# --------------------------------------------------------------------------------------------

def test_clean_runtime_image_passes_offline_audit(runtime_image: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ref = runtime_image.ref
    status = cli.main(["audit", "--image", ref, "--advisory-db", str(ADVISORY_DB),
                       "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    print(out)
    report = json.loads((tmp_path / "audit" / f"{paths.report_name(ref)}.json").read_text())
    assert status == 0, f"{ref} does not pass the audit:\n{out}"
    assert report["status"] == "passed" and report["checks"] == ["python", "debian"]
    envs = {e["environment"]: e["distributions"] for e in report["python"]["environments"]}
    # The venv holds nothing of its own: it shares the interpreter's pip (README, "The venv").
    assert envs["/usr/local"] and "/opt/venv" in envs, envs
    assert any(d.startswith("pip==") for d in envs["/usr/local"]), envs
    assert report["python"]["source"].startswith("offline OSV database")
    codename = runtime_image.target.release
    assert set(report["debian"]["suites"]) == {f"{codename}-security", f"{codename}-updates"}
    assert report["debian"]["packages"] > 50
    assert report["sbom"]["os_packages"] == report["debian"]["packages"]
    assert report["sbom"]["python_packages"] >= 1
    assert Path(report["sbom"]["path"]).is_file()


def test_vulnerable_venv_package_fails_with_advisory_and_fix(vulnerable: Run,
                                                             derived: Derived) -> None:
    assert vulnerable.status == 1, vulnerable.output
    report = vulnerable.reports[0]
    assert not report.errors
    assert report.python is not None
    pip = [f for f in report.python.findings if f.package == "pip"]
    assert [(f.id, f.version, f.environments) for f in pip] == [
        (ADVISORY, VULNERABLE_PIP, ["/opt/venv"])]
    assert pip[0].fix_versions == ["23.3"] and ALIAS in pip[0].aliases
    # the system interpreter's own, newer pip was audited too (a second pip-audit batch)
    assert any(a.startswith("pip==") and a != f"pip=={VULNERABLE_PIP}"
               for a in report.python.audited)
    saved = json.loads(Path(report_path(vulnerable, derived)).read_text())
    assert saved["status"] == "failed"
    finding = next(f for f in saved["python"]["findings"] if f["id"] == ADVISORY)
    assert finding["fix_versions"] == ["23.3"] and finding["status"] == "open"
    table = next(line for line in vulnerable.output.splitlines() if ADVISORY in line)
    assert "23.3" in table and "OPEN" in table


def report_path(run: Run, derived: Derived) -> str:
    line = next(ln for ln in run.output.splitlines() if ln.strip().startswith("report: "))
    return line.split("report: ", 1)[1].strip()


def test_pending_debian_fix_fails_os_audit(vulnerable: Run, derived: Derived) -> None:
    fix = derived.fix
    report = vulnerable.reports[0]
    assert report.debian is not None
    assert [(f.package, f.installed, f.candidate, f.suite, f.status)
            for f in report.debian.findings] == [
        (fix.package, fix.installed, fix.candidate, fix.suite, "open")]
    assert any(fix.package in line and fix.suite in line and "OPEN" in line
               for line in vulnerable.output.splitlines())


def test_synthetic_security_suite_is_seen_by_apt(base: Image, tmp_path: Path) -> None:
    """A local `file:` repository apt really reads: newer versions in -security and -updates
    are findings, one in -backports is only a notice."""
    codename = base.target.release
    arch = docker("run", "--rm", "--entrypoint", "dpkg", base.ref,
                  "--print-architecture").stdout.strip()
    repo = tmp_path / "repo"
    suites = {f"{codename}-security": "tzdata", f"{codename}-updates": "ca-certificates",
              f"{codename}-backports": "netbase"}
    for suite, package in suites.items():
        write_apt_repository(repo, suite, arch, {package: "99:0-synthetic"})
    sources = tmp_path / "pybase-synthetic.list"
    sources.write_text("".join(f"deb [trusted=yes] file:/srv/pybase-repo {suite} main\n"
                               for suite in suites))
    result = audit.debian_check(base.ref, docker_args=[
        "-v", f"{repo}:/srv/pybase-repo:ro",
        "-v", f"{sources}:/etc/apt/sources.list.d/pybase-synthetic.list:ro"])
    findings = {(f.package, f.candidate, f.suite) for f in result.findings}
    assert findings == {("tzdata", "99:0-synthetic", f"{codename}-security"),
                        ("ca-certificates", "99:0-synthetic", f"{codename}-updates")}
    assert [(n.package, n.candidate, n.suite) for n in result.notices] == [
        ("netbase", "99:0-synthetic", f"{codename}-backports")]



def test_unreachable_service_fails_the_audit(base: Image, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(settings.ADVISORY_DB, raising=False)
    monkeypatch.delenv(settings.ADVISORY_DB_FORMER, raising=False)
    url = f"http://127.0.0.1:{free_port()}/v1/query"
    status = cli.main(["audit", "--image", base.ref, "--osv-url", url, "--check", "python",
                       "--no-sbom", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    print(out)
    assert status == 2
    report = json.loads((tmp_path / "audit" / f"{paths.report_name(base.ref)}.json").read_text())
    assert report["status"] == "error" and report["python"] is None
    assert any("pip-audit could not audit against the online osv service" in e
               for e in report["errors"]), report["errors"]
    assert "could not be fully audited" in out and "no known vulnerabilities" not in out


def test_expired_exception_fails_the_audit(derived: Derived, choice: audit.SourceChoice,
                                           tmp_path: Path) -> None:
    ignore = tmp_path / "audit-ignore.yaml"
    ignore.write_text(f"ignore:\n  - id: {ADVISORY}\n    reason: accepted once\n"
                      "    expires: 2020-01-31\n")
    run = run_audit([derived.ref], choice, tmp_path, ignore, checks=("python",), sbom=False)
    assert run.status == 2
    report = run.reports[0]
    assert any(f"{ignore}:4: entry '{ADVISORY}': expired on 2020-01-31" in e
               for e in report.errors), report.errors
    assert report.python is not None
    assert [f.status for f in report.python.findings if f.id == ADVISORY] == ["open"]


def test_valid_exception_turns_findings_into_ignored(derived: Derived,
                                                     choice: audit.SourceChoice,
                                                     tmp_path: Path) -> None:
    ignore = tmp_path / "audit-ignore.yaml"
    entries: list[tuple[str, str, str | None]] = [
        (ALIAS, "pip runs only at build time, never with hg URLs", "pybase-audit-test:*"),
        (f"debian:{derived.fix.package}", "a fix the test made pending", None)]
    ignore.write_text("ignore:\n" + "".join(
        f"  - id: {i}\n    reason: {r}\n    expires: 2099-12-31\n"
        + (f"    scope: \"{s}\"\n" if s else "") for i, r, s in entries))
    run = run_audit([derived.ref], choice, tmp_path, ignore, sbom=False)
    report = run.reports[0]
    assert run.status == 0, run.output
    assert report.status == "passed" and report.open_findings == 0
    assert report.ignored_findings == len(entries)
    assert report.python is not None
    pip = next(f for f in report.python.findings if f.id == ADVISORY)
    assert pip.ignored is not None and pip.ignored.id == ALIAS  # matched by alias
    saved = json.loads(Path(report_path(run, derived)).read_text())
    statuses = [f["status"] for part in ("python", "debian") for f in saved[part]["findings"]]
    assert statuses == ["ignored"] * len(entries)
    assert "IGNORED until 2099-12-31: pip runs only at build time" in run.output


def test_sbom_is_merged_and_shipped_in_the_image(derived: Derived, vulnerable: Run,
                                                 tmp_path: Path) -> None:
    report = vulnerable.reports[0]
    assert report.sbom is not None and report.sbom["python_packages"] >= 2  # pip 23.2 and 26
    labels = engine.image_labels(derived.ref)
    old_id = engine.image_id(derived.ref)
    extra = f"{derived.ref.rpartition(':')[2]}-sbom"
    path = sbom.embed(derived.ref, [extra], out_dir=tmp_path)
    new_id = engine.image_id(derived.ref)
    assert new_id and new_id != old_id
    assert engine.image_id(f"pybase-audit-test:{extra}") == new_id
    assert engine.image_id(old_id or "") is None  # the untagged scanned image was removed
    assert engine.image_labels(derived.ref) == labels
    inspect = json.loads(docker("image", "inspect", derived.ref).stdout)[0]["Config"]
    assert inspect["User"] == "10001:10001" and inspect["Entrypoint"][0] == "/usr/bin/tini"
    shipped = docker("run", "--rm", "--entrypoint", "cat", derived.ref,
                     sbom.SBOM_PATH_IN_IMAGE).stdout
    assert shipped == path.read_text()
    document = json.loads(shipped)
    sbom.validate(document)
    properties = {p["name"]: p["value"] for p in document["metadata"]["properties"]}
    assert labels and all(properties[k] == v for k, v in labels.items())
    purls = {c.get("purl") for c in document["components"]}
    assert f"pkg:pypi/pip@{VULNERABLE_PIP}" in purls
    assert any(p and p.startswith(f"pkg:deb/debian/{derived.fix.package}@") for p in purls)
    os_packages, _, python_packages = sbom.counts(document)
    assert vulnerable.reports[0].debian is not None
    assert os_packages == vulnerable.reports[0].debian.packages
    assert python_packages == report.sbom["python_packages"]
