"""The CycloneDX SBOM of a built image, from its inventory (pybase/build/inventory.py).

`generate(ref)` turns an inventory into ONE CycloneDX 1.6 JSON document:

* OS packages: `debsbom generate` against a scratch root holding the image's dpkg status;
* Python packages: `cyclonedx-py requirements` over the installed name==version set, one
  component per name@version with the dist-info locations as `evidence.occurrences`;
* CPython, compiled from source (no package manager knows it): a component with a
  `pkg:generic/python` purl (download_url: python.org's tarball), the NVD CPE, the source
  tarball's SHA-256 and its URL as a `source-distribution` reference;
* our own files (entrypoint, healthcheck, file_secrets): `file` components with their SHA-256;
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
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from pybase.build.inventory import CPython, Distribution, Inventory, OwnFile, inventory
from pybase.core import label, paths
from pybase.infra import engine

__all__ = [
    "SBOM_PATH_IN_IMAGE",
    "SbomError",
    "SbomResult",
    "embed",
    "generate",
    "merge",
    "python_requirements",
    "shipped",
]

REPORTS = paths.REPORTS
SBOM_PATH_IN_IMAGE = "/usr/local/share/python-base/sbom.cdx.json"
SPEC_VERSION = "1.6"
SCHEMA = f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json"
IMAGE_BOM_REF = "python-base-image"
PROPERTY_PREFIX = "python-base"


class SbomError(engine.CommandError):
    """The SBOM could not be produced; the message says which step failed."""


@dataclass(frozen=True)
class SbomResult:
    path: Path
    os_packages: int         # binary packages (dpkg status)
    os_source_packages: int  # their source packages (debsbom lists both)
    python_packages: int     # distinct name@version
    python_distributions: int  # installed copies (the same pip in /usr/local and /opt/venv: 2)
    cpython: str | None      # its version, when the image says which CPython it holds
    own_files: int

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "os_packages": self.os_packages,
                "os_source_packages": self.os_source_packages,
                "python_packages": self.python_packages,
                "python_distributions": self.python_distributions,
                "cpython": self.cpython, "own_files": self.own_files}


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
    return engine.run(args, what=what, timeout=timeout, error=SbomError).stdout


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


def cpython_component(cpython: CPython) -> dict[str, Any]:
    """The interpreter compiled from source, named so that scanners match it (purl and CPE)."""
    purl = f"pkg:generic/python@{cpython.version}"
    component: dict[str, Any] = {
        "type": "application", "name": "python", "version": cpython.version,
        "description": "CPython, compiled from its source tarball into /usr/local",
        "licenses": [{"license": {"id": "PSF-2.0"}}],
        "cpe": f"cpe:2.3:a:python:python:{cpython.version}:*:*:*:*:*:*:*",
    }
    if cpython.sha256:
        component["hashes"] = [{"alg": "SHA-256", "content": cpython.sha256}]
    if cpython.source_url:
        purl += "?download_url=" + quote(cpython.source_url, safe=":/")
        component["externalReferences"] = [{
            "type": "source-distribution", "url": cpython.source_url,
            "comment": "the source tarball it was compiled from; the component's hash is its "
                       "SHA-256"}]
    return {"bom-ref": purl, **component, "purl": purl}


def file_components(files: Sequence[OwnFile]) -> list[dict[str, Any]]:
    """Our own files in the image (entrypoint, healthcheck, file_secrets), by content."""
    return [{"type": "file", "bom-ref": f"{PROPERTY_PREFIX}:file:{f.path}", "name": f.path,
             "hashes": [{"alg": "SHA-256", "content": f.sha256}]}
            for f in sorted(files, key=lambda f: f.path)]


def merge(
    os_bom: dict[str, Any], py_bom: dict[str, Any], dists: Sequence[Distribution], ref: str,
    labels: dict[str, str], image_id: str | None = None, timestamp: datetime | None = None,
    *, cpython: CPython | None = None, own_files: Sequence[OwnFile] = (),
) -> dict[str, Any]:
    """One CycloneDX document: the image (metadata) -> Debian (debsbom), Python, CPython and
    our own files."""
    os_meta = os_bom.get("metadata", {})
    os_root = os_meta.get("component")
    python = _python_components(py_bom, dists)
    ours = ([cpython_component(cpython)] if cpython else []) + file_components(own_files)
    tools: list[dict[str, Any]] = []
    for bom in (os_bom, py_bom):
        for comp in bom.get("metadata", {}).get("tools", {}).get("components", []):
            if all(comp.get("name") != t.get("name") for t in tools):
                tools.append(_without_download_links(comp))
    repository, _, tag = ref.rpartition(":") if "/" not in ref.rpartition(":")[2] else (ref, "", "")
    version = labels.get(label.VERSION) or tag or "unknown"
    properties = [{"name": k, "value": v} for k, v in sorted(labels.items())]
    properties.append({"name": f"{PROPERTY_PREFIX}:image.ref", "value": ref})
    if image_id:
        properties.append({"name": f"{PROPERTY_PREFIX}:image.id", "value": image_id})
    image: dict[str, Any] = {"type": "container", "bom-ref": IMAGE_BOM_REF,
                             "name": repository or ref, "version": version}
    if labels.get(label.DESCRIPTION):
        image["description"] = labels[label.DESCRIPTION]
    components = ([os_root] if os_root else []) + list(os_bom.get("components", [])) + python
    components += ours
    top = ([os_root["bom-ref"]] if os_root else []) + [c["bom-ref"] for c in python + ours]
    dependencies = [{"ref": IMAGE_BOM_REF, "dependsOn": top}]
    dependencies += list(os_bom.get("dependencies", []))
    dependencies += [{"ref": c["bom-ref"]} for c in python + ours]
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


def shipped(image: str) -> bytes:
    """The SBOM document inside an image, byte for byte as it is there."""
    return engine.docker("run", "--rm", "--network", "none", "--entrypoint", "cat", image,
                         SBOM_PATH_IN_IMAGE, capture=True, what=f"reading the SBOM of {image}"
                         ).stdout.encode()


def generate(ref: str, inv: Inventory | None = None, out_dir: Path | None = None) -> SbomResult:
    """Write `<out_dir>/<local-tag>.cdx.json` (default reports/sbom/) for an image."""
    inv = inv or inventory(ref)
    if inv.errors:
        raise SbomError(f"{ref}: the inventory is incomplete: {'; '.join(inv.errors)}")
    labels = inv.config.labels
    dists = inv.distributions
    with tempfile.TemporaryDirectory(prefix="pybase-sbom-") as tmp:
        scratch = Path(tmp)
        created = labels.get(label.CREATED)
        timestamp = datetime.fromisoformat(created).astimezone(UTC) if created else None
        document = merge(_os_bom(inv, scratch), _python_bom(dists, scratch), dists, ref, labels,
                         inv.image_id, timestamp, cpython=inv.cpython, own_files=inv.own_files)
    validate(document)
    out_dir = out_dir or REPORTS / "sbom"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{paths.report_name(ref)}.cdx.json"
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os_packages, os_sources, python_packages = counts(document)
    return SbomResult(path, os_packages, os_sources, python_packages, len(dists),
                      inv.cpython.version if inv.cpython else None, len(inv.own_files))


def full_ref(ref: str, tag: str) -> str:
    """A bare tag (`3.13-bookworm`) joins ref's repository; a full reference stays as it is."""
    if ":" in tag or "/" in tag:
        return tag
    repository = ref.rpartition(":")[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repository}:{tag}"


def embed(ref: str, tags: Sequence[str] | None = None, out_dir: Path | None = None,
          source: str | None = None) -> Path:
    """Generate the SBOM of `ref` and ship it in the image at SBOM_PATH_IN_IMAGE.

    Builds `FROM ref` + one COPY layer and moves `ref` and every tag onto it (bare tags join ref's
    repository; None means every tag that now points at the image). Labels, user, entrypoint and
    healthcheck are inherited. `source` names the image to scan when `ref` does not point at it
    yet: a build staged under a private tag, so that `ref` never names an image without its
    SBOM. Returns the SBOM's path under reports/sbom/.
    """
    scan = source or ref
    inv = inventory(scan)
    old_id = inv.image_id
    if tags is None:
        tags = inv.config.repo_tags
    result = generate(ref, inv, out_dir)
    if engine.image_id(scan) != old_id:
        raise SbomError(f"{scan} moved to another image while its SBOM was generated")
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
            # The image's own platform: BuildKit would otherwise take the engine's.
            args = ["build", "--quiet", "--platform", inv.config.platform, str(context)]
            for target in targets:
                args += ["-t", target]
            engine.docker(*args, capture=True)
    finally:
        engine.docker("image", "rm", scanned, capture=True, check=False)  # the tag only
    new_id = engine.image_id(ref)
    if new_id and new_id != old_id:
        # The scanned image is now untagged; drop it unless something else still uses it.
        left = engine.inspect(old_id)
        if left is not None and not left.repo_tags:
            engine.docker("image", "rm", old_id, capture=True, check=False)
    return result.path
