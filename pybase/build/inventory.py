"""What an image contains: the ONE place that looks inside an image.

`inventory(ref)` inspects the image once and runs it once (as root, no network, the interpreter
/usr/local/bin/python3 as the entrypoint) and returns:

* every Python distribution of the system interpreter (/usr/local) and of the app venv
  (/opt/venv), and any other `*.dist-info`/`*.egg-info` under /usr/local, /opt, /app, /home,
  /srv and /root;
* the Debian packages from the dpkg status database (and the database itself, for debsbom),
  the os-release data, /etc/debian_version and the dpkg architecture;
* CPython: the version and source sha256 that images/python/Dockerfile records in the image's
  environment (PYTHON_VERSION, PYTHON_SHA256), the version confirmed by the interpreter itself;
* our own files (entrypoint, healthcheck, file_secrets) with their SHA-256;
* the image's config (engine.ImageInspect) and id.

What it looks at inside the image is inventory_probe.py, a real module run there. The SBOM
(pybase/build/sbom.py), the audit (pybase/verify/audit) and the publish fingerprint
(pybase/publish/content.py) work from it, so they all describe the same look at the same image id.

What the probe printed is kept in `$PYTHON_BASE_CACHE/inventory/`, keyed by the image id and the
probe's own digest: an image id names exactly one filesystem, so the audit, both publish runs
and the changelog of a CI run look inside each image once (under emulation, seconds each).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pybase.build import inventory_probe
from pybase.core import paths
from pybase.infra import emulation, engine

__all__ = [
    "CPython", "DebianPackage", "Distribution", "Environment", "Inventory", "InventoryError",
    "OwnFile", "cpython_source_url", "debian_packages", "inventory", "parse",
]

# Runs in the image; what it looks at is defined there (ENVIRONMENTS, SCAN_ROOTS, OWN_FILES).
PROBE = Path(inventory_probe.__file__)
CACHED_INVENTORIES = 256  # two CI runs' worth of images is ~50


class InventoryError(engine.EngineError):
    """The image could not be looked into (missing, not runnable, or its answer is unusable)."""


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    source: str  # the source package's name (the binary package's own when dpkg names none)


@dataclass(frozen=True)
class CPython:
    version: str
    sha256: str | None       # of the source tarball the image was built from
    source_url: str | None   # python.org's tarball of that version


@dataclass(frozen=True)
class OwnFile:
    path: str
    sha256: str


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
    image_id: str
    config: engine.ImageInspect
    environments: list[Environment] = field(default_factory=list)
    other: list[Distribution] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    os_release: dict[str, str] = field(default_factory=dict)
    debian_version: str = ""
    architecture: str = ""
    dpkg_status: str | None = None
    debian_packages: list[DebianPackage] = field(default_factory=list)  # by name, architecture
    cpython: CPython | None = None
    own_files: list[OwnFile] = field(default_factory=list)  # by path

    @property
    def distributions(self) -> list[Distribution]:
        """Every distribution found, the interpreters' first."""
        return [d for env in self.environments for d in env.distributions] + self.other


def parse(ref: str, data: dict[str, Any], config: engine.ImageInspect | None = None
          ) -> Inventory:
    """The in-image listing (`data`, the script's JSON) and the image config, checked.

    Without `config` (only a listing at hand) the image id and config are empty.
    """
    config = config or engine.ImageInspect.from_json({})
    inv = Inventory(ref=ref, image_id=config.id, config=config,
                    errors=list(data.get("errors", [])))

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
        # The venv may hold nothing of its own (it shares the interpreter's pip), but an
        # interpreter that sees no distribution at all, not even pip, is broken.
        if not dists and not env.get("sees"):
            inv.errors.append(f"{env['python']}: no installed distribution found in {env['label']}; "
                              "an empty environment is not expected here (is it broken?)")
    inv.other = [d for item in data.get("other", []) if (d := dist(item, item["environment"]))]
    inv.os_release = {str(k): str(v) for k, v in data.get("os_release", {}).items()}
    inv.debian_version = str(data.get("debian_version") or "")
    inv.architecture = str(data.get("architecture") or "")
    inv.dpkg_status = data.get("dpkg_status")
    inv.debian_packages = debian_packages(inv.dpkg_status or "")
    inv.cpython = _cpython(inv, config, data.get("python_version"))
    inv.own_files = [OwnFile(str(path), str(digest))
                     for path, digest in sorted((data.get("own_files") or {}).items())]
    return inv


# dpkg states (the Status field's third word) of a package whose files are not on disk.
_ABSENT = {"not-installed", "config-files"}


def debian_packages(status: str) -> list[DebianPackage]:
    """The packages of a dpkg status database whose files are on disk.

    Every state but not-installed and config-files counts, as in the audit's apt check.
    """
    packages = []
    for stanza in status.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        state = fields.get("Status", "").split()
        if "Package" not in fields or len(state) != 3 or state[2] in _ABSENT:
            continue
        source = fields.get("Source", "").split(" ", 1)[0] or fields["Package"]
        packages.append(DebianPackage(fields["Package"], fields.get("Version", ""),
                                      fields.get("Architecture", ""), source))
    return sorted(packages, key=lambda p: (p.name, p.architecture))


def cpython_source_url(version: str) -> str:
    return f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz"


def _cpython(inv: Inventory, config: engine.ImageInspect, running: Any) -> CPython | None:
    """The interpreter says which version runs; the image env says what it was built from."""
    if not isinstance(running, str) or not running:
        return None
    env = config.environment
    declared, sha256 = env.get("PYTHON_VERSION"), env.get("PYTHON_SHA256") or None
    if declared is None:
        return CPython(running, None, None)  # not built by images/python/Dockerfile
    if declared != running:
        inv.errors.append(f"the image says PYTHON_VERSION={declared}, but "
                          f"/usr/local/bin/python3 is {running}")
        return None
    return CPython(running, sha256, cpython_source_url(running))


def inventory(ref: str, timeout: float = 180) -> Inventory:
    """Look inside `ref` (as root, without network) and list what it contains."""
    config = engine.inspect(ref)
    if config is None:
        raise InventoryError(f"image {ref} is missing")
    script = PROBE.read_text(encoding="utf-8")
    probe_digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    cached = paths.cache() / "inventory" / f"{config.id.replace(':', '-')}-{probe_digest}.json"
    if config.id and cached.is_file():
        return parse(ref, json.loads(cached.read_text(encoding="utf-8")), config)
    # By id: the tag may move to another image between the inspect and the run.
    try:
        result = engine.docker(
            "run", "--rm", "--network", "none", "--user", "0",
            *emulation.run_options(config.platform),
            "--entrypoint", "/usr/local/bin/python3", config.id, "-I", "-B", "-c",
            script, capture=True, timeout=timeout, what=f"docker run {ref} (inventory)",
        )
    except engine.EngineError as exc:
        raise InventoryError(str(exc)) from None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise InventoryError(f"{ref}: the inventory is not JSON: {result.stdout[:200]!r}"
                             ) from None
    found = parse(ref, data, config)
    if config.id:
        _remember(cached, result.stdout)
    return found


def _remember(cached: Path, text: str) -> None:
    """Keep a probe's output; the oldest go beyond CACHED_INVENTORIES (about 80 KB each)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")  # test workers may race: whole or none
    partial.write_text(text, encoding="utf-8")
    partial.replace(cached)
    try:
        kept = sorted(cached.parent.glob("*.json"), key=lambda p: p.stat().st_mtime,
                      reverse=True)
    except FileNotFoundError:
        return  # another process pruned meanwhile
    for old in kept[CACHED_INVENTORIES:]:
        old.unlink(missing_ok=True)
