"""The Python check: every distribution of the inventory through `pip-audit --strict`, in
batches that never name a package twice; anything not audited is an error."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pybase.build import inventory, sbom
from pybase.infra import engine
from pybase.verify.audit.report import AuditError, PythonFinding, PythonResult, scrub
from pybase.verify.audit.source import VulnerabilitySource

PIP_AUDIT_TIMEOUT = 600.0


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
                         + scrub(engine.failure("pip-audit", result)))
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


