"""Run inside an image by pybase.build.inventory, as root, with the image's system interpreter
(`python3 -I -B -c <this file>`): standard library only, any Python 3.11+. Prints one JSON object:
the Python distributions of each environment and elsewhere, the Debian state and our own files.

The host side imports the constants below, so that what is looked at has one home."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
from typing import Any

# (label, interpreter): the Python environments every image has. Order matters: a distribution
# that two interpreters can see (a venv with system site-packages) belongs to the first.
ENVIRONMENTS = (("/usr/local", "/usr/local/bin/python3"), ("/opt/venv", "/opt/venv/bin/python"))
# Where else installed distributions may hide. Debian's own Python modules (/usr/lib/python3*)
# belong to dpkg packages and are covered by the OS part.
SCAN_ROOTS = ("/usr/local", "/opt", "/app", "/home", "/srv", "/root")
# Our own files in every image (images/python-base/files), by content.
OWN_FILES = ("/usr/local/bin/python-base-entrypoint", "/usr/local/bin/python-base-healthcheck",
             "/usr/local/lib/python-base/file_secrets.py")
METADATA_SUFFIXES = (".dist-info", ".egg-info")
# What an environment's interpreter is asked: where it looks for distributions.
SEARCH_PATH = "import json, sys; print(json.dumps([sys.prefix, sys.path]))"


def _record(dist: md.Distribution, path: str | None) -> dict[str, Any]:
    meta = dist.metadata
    licenses = meta.get_all("License-Expression") or meta.get_all("License") or [None]
    return {"name": meta["Name"], "version": meta["Version"], "path": path,
            "license": licenses[0]}


def environments(out: dict[str, Any], seen: set[str | None]) -> None:
    """The distributions each interpreter sees on its own search path."""
    for label, python in ENVIRONMENTS:
        try:
            asked = subprocess.run([python, "-I", "-B", "-c", SEARCH_PATH], capture_output=True,
                                   text=True, timeout=120, check=False)
        except OSError as exc:
            out["errors"].append(f"{python}: cannot run: {exc}")
            continue
        if asked.returncode != 0:
            out["errors"].append(f"{python}: exited {asked.returncode}: "
                                 f"{asked.stderr.strip()[-400:]}")
            continue
        prefix, search_path = json.loads(asked.stdout)
        own = []
        sees = 0  # every distribution it can import, its own or an earlier environment's
        for dist in md.distributions(path=search_path):
            sees += 1
            where = getattr(dist, "_path", None)
            real = os.path.realpath(where) if where else None
            if real in seen:
                continue
            seen.add(real)
            own.append(_record(dist, str(where) if where else None))
        out["environments"].append({"label": label, "python": python, "prefix": prefix,
                                    "dists": own, "sees": sees})


def elsewhere(out: dict[str, Any], seen: set[str | None]) -> None:
    """Any other installed distribution's metadata under SCAN_ROOTS."""
    for root in SCAN_ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            found = [n for n in dirnames + filenames if n.endswith(METADATA_SUFFIXES)]
            dirnames[:] = [n for n in dirnames if not n.endswith(METADATA_SUFFIXES)]
            for name in found:
                path = os.path.join(dirpath, name)
                if os.path.realpath(path) in seen:
                    continue
                seen.add(os.path.realpath(path))
                try:
                    item = _record(md.Distribution.at(path), path)
                except (OSError, ValueError, KeyError) as exc:  # reported, not fatal
                    out["errors"].append(f"{path}: unreadable metadata: {exc}")
                    continue
                out["other"].append({**item, "environment": dirpath})


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def system(out: dict[str, Any]) -> None:
    """os-release, the Debian version and architecture, dpkg's database, our own files."""
    os_release = {}
    for line in (_read("/etc/os-release") or _read("/usr/lib/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            os_release[key.strip()] = value.strip().strip('"')
    out["os_release"] = os_release
    out["debian_version"] = (_read("/etc/debian_version") or "").strip()
    try:
        out["architecture"] = subprocess.run(["dpkg", "--print-architecture"], check=False,
                                             capture_output=True, text=True).stdout.strip()
    except OSError:
        out["architecture"] = ""
    out["dpkg_status"] = _read("/var/lib/dpkg/status")
    out["python_version"] = platform.python_version()
    out["own_files"] = {}
    for path in OWN_FILES:
        try:
            with open(path, "rb") as f:
                out["own_files"][path] = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            pass
        except OSError as exc:
            out["errors"].append(f"{path}: unreadable: {exc}")


def main() -> None:
    out: dict[str, Any] = {"environments": [], "other": [], "errors": []}
    seen: set[str | None] = set()
    environments(out, seen)
    elsewhere(out, seen)
    system(out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
