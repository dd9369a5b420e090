"""What a built image contains, and its CycloneDX SBOM.

`inventory(ref)` looks inside an image once (one `docker run`, no network): every Python
distribution of the system interpreter (/usr/local) and of the app venv (/opt/venv), any other
`*.dist-info`/`*.egg-info` under /usr/local, /opt, /app, /home, /srv and /root, the os-release data,
the dpkg architecture and the dpkg status database. The audit (pybase/audit.py) and the SBOM both
work from it.

`generate(ref)` turns an inventory into ONE CycloneDX 1.6 JSON document:

* OS packages: `debsbom generate` against a scratch root holding the image's dpkg status;
* Python packages: `cyclonedx-py requirements` over the installed name==version set, one
  component per name@version with the dist-info locations as `evidence.occurrences`;
* metadata: the image as a `container` component and its labels (the OCI labels) as properties.

Index URLs that cyclonedx-py guesses for each requirement are dropped: the SBOM records what is
installed, not where it may be downloaded from. The document is schema-validated before use.

`embed(ref, tags)` ships the SBOM inside the image at SBOM_PATH_IN_IMAGE: a one-layer
`FROM ref` + `COPY` image (so every label, the user, entrypoint and healthcheck are kept) that
takes over `ref` and `tags`.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pybase import engine

__all__ = [
    "SBOM_PATH_IN_IMAGE", "Distribution", "Inventory", "SbomError", "SbomResult", "embed",
    "generate", "inventory", "merge", "python_requirements",
]

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
SBOM_PATH_IN_IMAGE = "/usr/local/share/python-base/sbom.cdx.json"
SPEC_VERSION = "1.6"
SCHEMA = f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json"
IMAGE_BOM_REF = "python-base-image"
PROPERTY_PREFIX = "python-base"

# (label, interpreter): the Python environments every image has. Order matters: a distribution
# that two interpreters can see (a venv with system site-packages) belongs to the first.
ENVIRONMENTS = (("/usr/local", "/usr/local/bin/python3"), ("/opt/venv", "/opt/venv/bin/python"))
# Where else installed distributions may hide. Debian's own Python modules (/usr/lib/python3*)
# belong to dpkg packages and are covered by the OS part.
SCAN_ROOTS = ("/usr/local", "/opt", "/app", "/home", "/srv", "/root")

# Runs inside the image as root with the system interpreter (`python3 -I -B -c`); prints JSON.
_INVENTORY_SCRIPT = r"""
import importlib.metadata as md, json, os, subprocess, sys
ENVIRONMENTS = __ENVIRONMENTS__
SCAN_ROOTS = __SCAN_ROOTS__
LIST = '''
import importlib.metadata as md, json, sys
dists = []
for d in md.distributions():
    p = getattr(d, "_path", None)
    m = d.metadata
    dists.append({"name": m["Name"], "version": m["Version"], "path": str(p) if p else None,
                  "license": m.get("License-Expression") or m.get("License")})
print(json.dumps({"prefix": sys.prefix, "dists": dists}))
'''
out = {"environments": [], "other": [], "errors": []}
seen = set()
for label, python in ENVIRONMENTS:
    try:
        r = subprocess.run([python, "-I", "-B", "-c", LIST], capture_output=True, text=True,
                           timeout=120)
    except OSError as exc:
        out["errors"].append("{}: cannot run: {}".format(python, exc))
        continue
    if r.returncode != 0:
        out["errors"].append("{}: exited {}: {}".format(python, r.returncode, r.stderr.strip()[-400:]))
        continue
    env = json.loads(r.stdout)
    own = []
    for d in env["dists"]:
        real = os.path.realpath(d["path"]) if d["path"] else None
        if real in seen:
            continue
        seen.add(real)
        own.append(d)
    out["environments"].append({"label": label, "python": python, "prefix": env["prefix"],
                                "dists": own})
for root in SCAN_ROOTS:
    for dirpath, dirnames, filenames in os.walk(root):
        found = [n for n in dirnames + filenames if n.endswith((".dist-info", ".egg-info"))]
        dirnames[:] = [n for n in dirnames if not n.endswith((".dist-info", ".egg-info"))]
        for name in found:
            path = os.path.join(dirpath, name)
            if os.path.realpath(path) in seen:
                continue
            seen.add(os.path.realpath(path))
            try:
                m = md.Distribution.at(path).metadata
                item = {"name": m["Name"], "version": m["Version"], "path": path,
                        "license": m.get("License-Expression") or m.get("License"),
                        "environment": dirpath}
            except Exception as exc:
                out["errors"].append("{}: unreadable metadata: {}".format(path, exc))
                continue
            out["other"].append(item)
def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None
osr = {}
for line in (read("/etc/os-release") or read("/usr/lib/os-release") or "").splitlines():
    key, sep, value = line.partition("=")
    if sep:
        osr[key.strip()] = value.strip().strip('"')
out["os_release"] = osr
out["debian_version"] = (read("/etc/debian_version") or "").strip()
try:
    out["architecture"] = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                         text=True).stdout.strip()
except OSError:
    out["architecture"] = ""
out["dpkg_status"] = read("/var/lib/dpkg/status")
json.dump(out, sys.stdout)
""".replace("__ENVIRONMENTS__", repr(ENVIRONMENTS)).replace("__SCAN_ROOTS__", repr(SCAN_ROOTS))


class SbomError(RuntimeError):
    """The inventory or the SBOM could not be produced; the message says which step failed."""


@dataclass(frozen=True)
class Distribution:
    """One installed Python distribution: `environment` is the env label or its directory."""

    name: str
    version: str
    path: str
    environment: str
    license: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return canonicalize_name(self.name), self.version


@dataclass(frozen=True)
class Environment:
    label: str
    python: str
    prefix: str
    distributions: list[Distribution]


@dataclass
class Inventory:
    ref: str
    environments: list[Environment] = field(default_factory=list)
    other: list[Distribution] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    os_release: dict[str, str] = field(default_factory=dict)
    debian_version: str = ""
    architecture: str = ""
    dpkg_status: str | None = None

    @property
    def distributions(self) -> list[Distribution]:
        """Every distribution found, the interpreters' first."""
        return [d for env in self.environments for d in env.distributions] + self.other


def _parse_inventory(ref: str, data: dict[str, Any]) -> Inventory:
    inv = Inventory(ref=ref, errors=list(data.get("errors", [])))

    def dist(item: dict[str, Any], environment: str) -> Distribution | None:
        name, version, path = item.get("name"), item.get("version"), item.get("path")
        if not (isinstance(name, str) and name and isinstance(version, str) and version):
            inv.errors.append(f"{path or environment}: a distribution without name or version "
                              "cannot be audited")
            return None
        licence = item.get("license")
        short = licence if isinstance(licence, str) and licence and "\n" not in licence else None
        return Distribution(name, version, str(path or environment), environment,
                            short if short and len(short) <= 200 else None)

    for env in data.get("environments", []):
        dists = [d for item in env.get("dists", []) if (d := dist(item, env["label"]))]
        inv.environments.append(Environment(env["label"], env["python"], env["prefix"], dists))
        if not dists:
            inv.errors.append(f"{env['python']}: no installed distribution found in {env['label']}; "
                              "an empty environment is not expected here (is it broken?)")
    inv.other = [d for item in data.get("other", []) if (d := dist(item, item["environment"]))]
    inv.os_release = {str(k): str(v) for k, v in data.get("os_release", {}).items()}
    inv.debian_version = str(data.get("debian_version") or "")
    inv.architecture = str(data.get("architecture") or "")
    inv.dpkg_status = data.get("dpkg_status")
    return inv


def inventory(ref: str, timeout: float = 180) -> Inventory:
    """Look inside `ref` (as root, without network) and list what is installed."""
    try:
        result = engine.docker(
            "run", "--rm", "--network", "none", "--user", "0",
            "--entrypoint", "/usr/local/bin/python3", ref, "-I", "-B", "-c", _INVENTORY_SCRIPT,
            capture=True, check=False, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise SbomError(f"{ref}: listing the installed packages took over {timeout:.0f} s") from None
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] or ["no error output"]
        raise SbomError(f"{ref}: could not list installed packages with /usr/local/bin/python3 "
                        f"(exit {result.returncode}): {detail[0]}")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise SbomError(f"{ref}: the package listing is not JSON: {result.stdout[:200]!r}") from None
    return _parse_inventory(ref, data)


# --------------------------------------------------------------------------------------------
# SBOM
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SbomResult:
    path: Path
    os_packages: int         # binary packages (dpkg status)
    os_source_packages: int  # their source packages (debsbom lists both)
    python_packages: int     # distinct name@version
    python_distributions: int  # installed copies (the same pip in /usr/local and /opt/venv: 2)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "os_packages": self.os_packages,
                "os_source_packages": self.os_source_packages,
                "python_packages": self.python_packages,
                "python_distributions": self.python_distributions}


def tool(name: str) -> str:
    """A console script of the audit extras: next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SbomError(f"`{name}` is not installed; install the audit extras "
                        "(`pip install -e '.[audit]'`, which `nox -s audit` does)")
    return found


def _run_tool(args: Sequence[str], what: str, timeout: float = 300) -> str:
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, check=False,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SbomError(f"{what}: no answer within {timeout:.0f} s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise SbomError(f"{what} failed ({result.returncode}): {lines[-1] if lines else ''}")
    return result.stdout


def python_requirements(dists: Sequence[Distribution]) -> list[str]:
    """Sorted unique `name==version` lines."""
    return sorted({f"{d.name}=={d.version}" for d in dists}, key=str.lower)


def _os_bom(inv: Inventory, scratch: Path) -> dict[str, Any]:
    if not inv.dpkg_status:
        raise SbomError(f"{inv.ref}: no /var/lib/dpkg/status in the image; cannot list OS packages")
    root = scratch / "rootfs"
    status = root / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_text(inv.dpkg_status, encoding="utf-8")
    args = [tool("debsbom"), "generate", "-t", "cdx", "-r", str(root), "-o", str(scratch / "os"),
            "--cdx-schema-version", SPEC_VERSION]
    if inv.architecture:
        args += ["--distro-arch", inv.architecture]
    if inv.debian_version or inv.os_release.get("VERSION_ID"):
        args += ["--distro-version", inv.debian_version or inv.os_release["VERSION_ID"]]
    _run_tool(args, "debsbom generate")
    data: dict[str, Any] = json.loads((scratch / "os.cdx.json").read_text(encoding="utf-8"))
    return data


def _python_bom(dists: Sequence[Distribution], scratch: Path) -> dict[str, Any]:
    requirements = scratch / "requirements.txt"
    requirements.write_text("".join(f"{line}\n" for line in python_requirements(dists)))
    out = _run_tool([tool("cyclonedx-py"), "requirements", "--sv", SPEC_VERSION,
                     "--output-reproducible", "--no-validate", "--of", "JSON", "-o", "-", str(requirements)],
                    "cyclonedx-py requirements")
    data: dict[str, Any] = json.loads(out)
    return data


def _without_download_links(component: dict[str, Any]) -> dict[str, Any]:
    """Drop `distribution` references (package-index URLs guessed by the tools)."""
    kept = [r for r in component.get("externalReferences", []) if r.get("type") != "distribution"]
    component = {k: v for k, v in component.items() if k != "externalReferences"}
    if kept:
        component["externalReferences"] = kept
    return component


def _python_components(py_bom: dict[str, Any], dists: Sequence[Distribution]
                       ) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, str], list[Distribution]] = {}
    for d in dists:
        by_key.setdefault(d.key, []).append(d)
    components = []
    for comp in py_bom.get("components", []):
        key = (canonicalize_name(str(comp.get("name", ""))), str(comp.get("version", "")))
        copies = by_key.pop(key, None)
        if copies is None:
            raise SbomError(f"cyclonedx-py listed {comp.get('name')}=={comp.get('version')}, "
                            "which is not installed")
        comp = _without_download_links(
            {k: v for k, v in comp.items() if k not in ("bom-ref", "description")})
        comp["bom-ref"] = comp.get("purl") or f"pkg:pypi/{key[0]}@{key[1]}"
        licence = next((d.license for d in copies if d.license), None)
        if licence:
            comp["licenses"] = [{"license": {"name": licence, "acknowledgement": "declared"}}]
        comp["evidence"] = {"occurrences": [{"location": d.path} for d in copies]}
        comp["properties"] = [{"name": f"{PROPERTY_PREFIX}:python.environment", "value": env}
                              for env in dict.fromkeys(d.environment for d in copies)]
        components.append(comp)
    if by_key:
        missing = ", ".join(f"{n}=={v}" for n, v in sorted(by_key))
        raise SbomError(f"cyclonedx-py left out installed distributions: {missing}")
    return sorted(components, key=lambda c: str(c["bom-ref"]))


def merge(
    os_bom: dict[str, Any], py_bom: dict[str, Any], dists: Sequence[Distribution], ref: str,
    labels: dict[str, str], image_id: str | None = None, timestamp: datetime | None = None,
) -> dict[str, Any]:
    """One CycloneDX document: the image (metadata) -> Debian (debsbom) + Python components."""
    os_meta = os_bom.get("metadata", {})
    os_root = os_meta.get("component")
    python = _python_components(py_bom, dists)
    tools: list[dict[str, Any]] = []
    for bom in (os_bom, py_bom):
        for comp in bom.get("metadata", {}).get("tools", {}).get("components", []):
            if all(comp.get("name") != t.get("name") for t in tools):
                tools.append(_without_download_links(comp))
    repository, _, tag = ref.rpartition(":") if "/" not in ref.rpartition(":")[2] else (ref, "", "")
    version = labels.get("org.opencontainers.image.version") or tag or "unknown"
    properties = [{"name": k, "value": v} for k, v in sorted(labels.items())]
    properties.append({"name": f"{PROPERTY_PREFIX}:image.ref", "value": ref})
    if image_id:
        properties.append({"name": f"{PROPERTY_PREFIX}:image.id", "value": image_id})
    image: dict[str, Any] = {"type": "container", "bom-ref": IMAGE_BOM_REF,
                             "name": repository or ref, "version": version}
    if labels.get("org.opencontainers.image.description"):
        image["description"] = labels["org.opencontainers.image.description"]
    components = ([os_root] if os_root else []) + list(os_bom.get("components", [])) + python
    top = ([os_root["bom-ref"]] if os_root else []) + [c["bom-ref"] for c in python]
    dependencies = [{"ref": IMAGE_BOM_REF, "dependsOn": top}]
    dependencies += list(os_bom.get("dependencies", []))
    dependencies += [{"ref": c["bom-ref"]} for c in python]
    return {
        "$schema": SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        # Derived from the scanned image, so that the same image always gets the same document
        # and a warm rebuild reproduces the embedded SBOM layer byte for byte.
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image_id or ref)}",
        "version": 1,
        "metadata": {
            "timestamp": (timestamp or datetime.now(UTC)).isoformat(timespec="seconds"),
            "tools": {"components": tools},
            "component": image,
            "properties": properties,
        },
        "components": components,
        "dependencies": dependencies,
    }


def validate(document: dict[str, Any]) -> None:
    """Schema-check with cyclonedx-python-lib (cyclonedx-bom's own library), strict mode.

    Its `iri-reference` format check parses every URL with a full RFC 3987 grammar, 80 ms each
    (5 s for a dev image's package homepages); that one check is left out, all others stay.
    """
    validation = importlib.import_module("cyclonedx.validation.json")
    schema = importlib.import_module("cyclonedx.schema")
    strict = validation.JsonStrictValidator(schema.SchemaVersion.from_version(SPEC_VERSION))
    checker = getattr(strict, "_validator", None)
    if checker is not None and checker.format_checker is not None:
        formats = importlib.import_module("jsonschema").FormatChecker(
            [f for f in checker.format_checker.checkers if f not in ("iri", "iri-reference")])
        errors = sorted(checker.evolve(format_checker=formats).iter_errors(document),
                        key=lambda e: list(e.absolute_path))
        error = errors[0] if errors else None
    else:  # another library layout: the slow, complete check
        error = strict.validate_str(json.dumps(document))
    if error is not None:
        where = "/".join(map(str, getattr(error, "absolute_path", [])))
        message = getattr(error, "message", error)
        raise SbomError(f"the merged SBOM is not valid CycloneDX {SPEC_VERSION}: "
                        f"{where or 'document'}: {message}")


def counts(document: dict[str, Any]) -> tuple[int, int, int]:
    """(binary OS packages, source OS packages, Python packages) of a merged document."""
    purls = [str(c.get("purl", "")) for c in document.get("components", [])]
    debs = [p for p in purls if p.startswith("pkg:deb/")]
    sources = sum(1 for p in debs if "arch=source" in p)
    return len(debs) - sources, sources, sum(1 for p in purls if p.startswith("pkg:pypi/"))


def report_name(ref: str) -> str:
    """`python-base:3.13.15-bookworm` -> `3.13.15-bookworm` (the local tag names the reports)."""
    name = ref.rsplit("/", 1)[-1]
    tag = name.rpartition(":")[2] if ":" in name else name
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in tag)


def generate(ref: str, inv: Inventory | None = None, out_dir: Path | None = None) -> SbomResult:
    """Write `<out_dir>/<local-tag>.cdx.json` (default reports/sbom/) for an image."""
    inv = inv or inventory(ref)
    if inv.errors:
        raise SbomError(f"{ref}: the inventory is incomplete: {'; '.join(inv.errors)}")
    labels = engine.image_labels(ref)
    if labels is None:
        raise SbomError(f"image {ref} is missing")
    dists = inv.distributions
    with tempfile.TemporaryDirectory(prefix="pybase-sbom-") as tmp:
        scratch = Path(tmp)
        created = labels.get("org.opencontainers.image.created")
        timestamp = datetime.fromisoformat(created).astimezone(UTC) if created else None
        document = merge(_os_bom(inv, scratch), _python_bom(dists, scratch), dists, ref, labels,
                         engine.image_id(ref), timestamp)
    validate(document)
    out_dir = out_dir or REPORTS / "sbom"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report_name(ref)}.cdx.json"
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os_packages, os_sources, python_packages = counts(document)
    return SbomResult(path, os_packages, os_sources, python_packages, len(dists))


def full_ref(ref: str, tag: str) -> str:
    """A bare tag (`3.13-bookworm`) joins ref's repository; a full reference stays as it is."""
    if ":" in tag or "/" in tag:
        return tag
    repository = ref.rpartition(":")[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repository}:{tag}"


def embed(ref: str, tags: Sequence[str] | None = None, out_dir: Path | None = None) -> Path:
    """Generate the SBOM of `ref` and ship it in the image at SBOM_PATH_IN_IMAGE.

    Builds `FROM ref` + one COPY layer and moves `ref` and every tag onto it (bare tags join ref's
    repository; None means every tag that now points at the image). Labels, user, entrypoint and
    healthcheck are inherited. Returns the SBOM's path under reports/sbom/.
    """
    old_id = engine.image_id(ref)
    if old_id is None:
        raise SbomError(f"image {ref} is missing")
    if tags is None:
        found = engine.docker("image", "inspect", "--format", "{{json .RepoTags}}", ref,
                              capture=True)
        tags = json.loads(found.stdout) or []
    result = generate(ref, out_dir=out_dir)
    if engine.image_id(ref) != old_id:
        raise SbomError(f"{ref} moved to another image while its SBOM was generated")
    targets = list(dict.fromkeys([ref, *(full_ref(ref, t) for t in tags)]))
    # FROM a private tag of the scanned image id, so the layer goes onto exactly that image.
    scanned = f"pybase-sbom-scanned:{uuid.uuid4().hex[:12]}"
    engine.docker("tag", old_id, scanned, capture=True)
    try:
        with tempfile.TemporaryDirectory(prefix="pybase-sbom-embed-") as tmp:
            context = Path(tmp)
            shutil.copyfile(result.path, context / "sbom.cdx.json")
            os.utime(context / "sbom.cdx.json", (0, 0))  # no build-time mtime in the layer
            (context / "Dockerfile").write_text(
                f"FROM {scanned}\n"
                f"COPY --chmod=0644 sbom.cdx.json {SBOM_PATH_IN_IMAGE}\n", encoding="utf-8")
            args = ["build", "--quiet", str(context)]
            for target in targets:
                args += ["-t", target]
            engine.docker(*args, capture=True)
    finally:
        engine.docker("image", "rm", scanned, capture=True, check=False)  # the tag only
    new_id = engine.image_id(ref)
    if new_id and new_id != old_id:
        # The scanned image is now untagged; drop it unless something else still uses it.
        left = engine.docker("image", "inspect", "--format", "{{len .RepoTags}}", old_id,
                             capture=True, check=False)
        if left.returncode == 0 and left.stdout.strip() == "0":
            engine.docker("image", "rm", old_id, capture=True, check=False)
    return result.path
