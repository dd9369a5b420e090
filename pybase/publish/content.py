"""What an image holds, as data that can be compared: the publish fingerprint and changelog.

`content(inventory)` keeps what a user of the image would notice: Debian packages and versions,
Python distributions per environment, the CPython version, our own files (by hash) and the
image config (env, user, entrypoint, cmd, workdir, healthcheck, ports, stop signal, labels).
Left out on purpose: the build date and git revision (labels `created`, `revision`, and
`version`, which ends in the date), the upstream image's digest (a rebuilt base with the same
packages is the same content) and files derived from the rest (build-info.json, the SBOM).
Two builds with equal content have equal fingerprints, so a rebuild that changed nothing
publishes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pybase.build.inventory import Inventory
from pybase.core import label
from pybase.infra import host

Content = dict[str, Any]
# The images one tag serves: platform (`linux/arm64`) -> content.
Contents = dict[str, Content]


def content(inv: Inventory) -> Content:
    """The comparable content of an image (plain JSON data, sorted)."""
    python: dict[str, dict[str, str]] = {}
    for env in inv.environments:
        for dist in env.distributions:
            _add(python.setdefault(env.label, {}), dist.name, dist.version)
    for dist in inv.other:
        _add(python.setdefault(dist.environment, {}), dist.name, dist.version)
    config = inv.config
    env_vars = dict(item.partition("=")[::2] for item in config.env)
    return {
        "debian": {f"{p.name}:{p.architecture}": p.version for p in inv.debian_packages},
        "python": {env: dict(sorted(dists.items())) for env, dists in sorted(python.items())},
        "cpython": inv.cpython.version if inv.cpython else None,
        "files": {f.path: f.sha256 for f in sorted(inv.own_files, key=lambda f: f.path)},
        "config": {
            "env": dict(sorted(env_vars.items())),
            "user": config.user,
            "entrypoint": config.entrypoint,
            "cmd": config.cmd,
            "workdir": config.workdir,
            "healthcheck": config.healthcheck,
            "exposed_ports": sorted(config.exposed_ports),
            "stop_signal": config.stop_signal,
            "labels": {k: v for k, v in sorted(config.labels.items())
                       if k not in label.VOLATILE},
        },
    }


def _add(dists: dict[str, str], name: str, version: str) -> None:
    key = str(canonicalize_name(name))
    dists[key] = ",".join(sorted({*dists[key].split(","), version})) if key in dists else version


def fingerprint(data: Content) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint_all(contents: Contents) -> str:
    """The fingerprint of what one tag serves: the image's own for one platform, else that of
    every platform's fingerprint (a tag changes when any of its platforms does)."""
    if len(contents) == 1:
        return fingerprint(next(iter(contents.values())))
    return fingerprint({platform: fingerprint(c) for platform, c in sorted(contents.items())})


# --------------------------------------------------------------------------------------------
# Changelog
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    area: str    # "debian", "python /opt/venv", "cpython", "files", "config"
    name: str
    change: str  # added, removed, upgraded, downgraded, changed
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def changes(old: Content | None, new: Content) -> list[Change]:
    """Everything that differs from `old` to `new` (every item is "added" when old is None)."""
    base: Content = old or {"debian": {}, "python": {}, "cpython": None, "files": {},
                            "config": {}}
    found = _mapping_changes("debian", base["debian"], new["debian"], _debian_order)
    for env in sorted(set(base["python"]) | set(new["python"])):
        found += _mapping_changes(f"python {env}", base["python"].get(env, {}),
                                  new["python"].get(env, {}), _python_order)
    if base["cpython"] != new["cpython"]:
        found += [_versioned("cpython", "CPython", base["cpython"], new["cpython"],
                             _python_order)]
    found += _mapping_changes("files", base["files"], new["files"], None)
    old_config, new_config = base["config"], new["config"]
    for key in sorted(set(old_config) | set(new_config)):
        before, after = old_config.get(key), new_config.get(key)
        if isinstance(before, dict) or isinstance(after, dict):
            found += _mapping_changes(f"config {key}", before or {}, after or {}, None)
        elif before != after:
            found.append(Change("config", key, "changed" if old else "added",
                                _text(before), _text(after)))
    return found


def changes_all(old: Contents | None, new: Contents) -> list[Change]:
    """changes() per platform; with several, each area names its platform."""
    if len(new) == 1 and len(old or {}) <= 1:
        return changes(next(iter(old.values())) if old else None, next(iter(new.values())))
    return [replace(change, area=f"{platform} {change.area}")
            for platform, now in new.items()
            for change in changes((old or {}).get(platform), now)]


def _text(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def _mapping_changes(area: str, old: dict[str, Any], new: dict[str, Any],
                     order: Any) -> list[Change]:
    found = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before != after:
            found.append(_versioned(area, name, _text(before), _text(after), order))
    return found


def _versioned(area: str, name: str, old: str | None, new: str | None, order: Any) -> Change:
    if old is None:
        return Change(area, name, "added", None, new)
    if new is None:
        return Change(area, name, "removed", old, None)
    direction = order(old, new) if order else 0
    return Change(area, name, {1: "upgraded", -1: "downgraded"}.get(direction, "changed"), old,
                  new)


def _python_order(old: str, new: str) -> int:
    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        return 0
    return (b > a) - (b < a)


@functools.cache
def _debian_order(old: str, new: str) -> int:
    """dpkg's own comparison (the host is Debian); 0 = neither older nor newer."""
    dpkg = host.program("dpkg")
    for relation, result in (("lt", 1), ("gt", -1)):
        if subprocess.run([dpkg, "--compare-versions", old, relation, new],
                          check=False).returncode == 0:
            return result
    return 0


def _short(value: str | None) -> str:
    """File hashes shortened for reading; the JSON changelog keeps them whole."""
    if value and len(value) == 64 and all(ch in "0123456789abcdef" for ch in value):
        return value[:12] + "…"
    return value or ""


def markdown(title: str, facts: list[tuple[str, str]], found: list[Change]) -> str:
    """A changelog page: a title, a facts table (tag, digest, ...) and the changes by area."""
    lines = [f"# {title}", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in facts]
    lines.append("")
    if not found:
        lines.append("No content changes.")
    for area in dict.fromkeys(c.area for c in found):
        lines += [f"## {area}", "", "| name | change | old | new |", "| --- | --- | --- | --- |"]
        lines += [f"| {c.name} | {c.change} | {_short(c.old)} | {_short(c.new)} |"
                  for c in found if c.area == area]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
