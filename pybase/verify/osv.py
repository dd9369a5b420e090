"""Offline OSV advisory database: load PyPI records from disk and match package versions.

Matching follows the evaluation algorithm of the OSV schema, with PEP 440 ordering
(`packaging.version.Version`) standing in for the PyPI "ECOSYSTEM" order.

Policy for data we cannot interpret (the audit gate must fail closed, so an unreadable
bound never *narrows* what counts as affected):

* an unparseable `introduced` is treated like "0" (affected from the start);
* an unparseable `fixed` or `last_affected` is ignored, so the range stays open;
* an unparseable `limit` (and the spec's "*") means "no upper limit".

The PyPA database really contains such bounds (e.g. `fixed: 2019-09-12`); the audit-ignore
file is the place to accept the resulting findings after a human looked at them.
The one case that cannot fail closed is a *queried* version that is not PEP 440: it cannot
be placed in any range, so only an exact entry in a record's `versions` list matches it.

Only `ECOSYSTEM` ranges are evaluated. `GIT` ranges name commits, and an installed
distribution tells us a version, not a commit; the spec asks GIT-only records to carry
an explicit `versions` list, which we do honour. `SEMVER` ordering is not PEP 440 ordering
and PyPI records are not supposed to use it, so evaluating one would give wrong answers.
"""

from __future__ import annotations

import copy
import json
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field, ValidationError

from pybase.core.errors import PybaseError

__all__ = ["OsvDatabase", "OsvError", "fix_versions", "load_database"]

ECOSYSTEM = "PyPI"
_RECORD_SUFFIXES = (".json", ".yaml", ".yml")

try:  # libyaml parses the 2,600-file PyPA snapshot several times faster
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _RecordLoader(_BaseLoader):
    """Safe YAML loader that leaves timestamps as the strings written in the file.

    Plain safe_load would turn `modified: 2023-11-03T16:28:41Z` into a datetime, and the
    records must stay JSON-serialisable (and byte-for-byte what OSV says) for the server.
    """


_RecordLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


class OsvError(PybaseError):
    """The advisory database cannot be read; the message names the file and what was expected."""


# The subset of the OSV schema that matching relies on. Anything else in a record is kept
# untouched in the raw dict; strict string types catch YAML turning `1.10` into a float.
class _Package(BaseModel):
    ecosystem: str
    name: str


class _Range(BaseModel):
    type: str
    events: list[dict[str, str]]


class _Affected(BaseModel):
    package: _Package | None = None  # optional in the schema (e.g. GIT-only entries)
    ranges: list[_Range] = []
    versions: list[str] = []


class _Record(BaseModel):
    id: str = Field(min_length=1)
    affected: list[_Affected] = []


class _Entry(NamedTuple):
    raw: dict[str, Any]
    parsed: _Record


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _same_version(wanted: str, listed: str) -> bool:
    # PEP 440 equality ("1.8" == "1.8.0"); fall back to the literal string for the
    # non-PEP 440 entries old PyPI releases left in `versions` lists.
    a, b = _version(wanted), _version(listed)
    return a == b if a is not None and b is not None else wanted == listed


def _in_range(events: Iterable[Mapping[str, str]], version: Version) -> bool:
    """OSV `IncludedInRanges` for one ECOSYSTEM range, with the fail-closed policy above."""
    zero = Version("0")
    # Sort key: (0, ...) for "from the start", which must precede even 0.dev0; at equal
    # versions an opening event sorts before a closing one.
    timeline: list[tuple[tuple[int, Version, int], str, Version | None]] = []
    limits: list[Version | None] = []
    for event in events:
        for kind, text in event.items():
            bound = _version(text)
            if kind == "limit":
                limits.append(bound)  # None: "*" or unparseable, i.e. unlimited
            elif kind == "introduced":
                if text == "0" or bound is None:  # None bound: "from the start"
                    timeline.append(((0, zero, 0), kind, None))
                else:
                    timeline.append(((1, bound, 0), kind, bound))
            elif kind in ("fixed", "last_affected") and bound is not None:
                timeline.append(((1, bound, 1), kind, bound))
    if limits and not any(limit is None or version < limit for limit in limits):
        return False
    affected = False
    for _, kind, bound in sorted(timeline, key=lambda item: item[0]):
        if kind == "introduced":
            affected = affected or bound is None or version >= bound
        elif bound is not None and (version >= bound if kind == "fixed" else version > bound):
            affected = False
    return affected


def _ecosystem_ranges(affected: _Affected) -> Iterator[_Range]:
    return (r for r in affected.ranges if r.type == "ECOSYSTEM")


def _affected_entries(record: _Record, name: str) -> Iterator[_Affected]:
    key = canonicalize_name(name)
    for affected in record.affected:
        package = affected.package
        if package and package.ecosystem == ECOSYSTEM and canonicalize_name(package.name) == key:
            yield affected


def _affects(record: _Record, name: str, version: str) -> bool:
    parsed = _version(version)
    for affected in _affected_entries(record, name):
        if any(_same_version(version, listed) for listed in affected.versions):
            return True
        if parsed is not None and any(
            _in_range(r.events, parsed) for r in _ecosystem_ranges(affected)
        ):
            return True
    return False


def fix_versions(record: Mapping[str, Any], name: str, version: str) -> list[str]:
    """Versions that fix `record` for `name` at `version`, oldest first, for reports.

    These are the `fixed` events, newer than `version`, of the ECOSYSTEM ranges that
    contain `version`. Empty when no fix is known (or the version is not PEP 440).
    """
    parsed = _version(version)
    if parsed is None:
        return []
    found: dict[Version, str] = {}
    for affected in _affected_entries(_Record.model_validate(record), name):
        for range_ in _ecosystem_ranges(affected):
            if _in_range(range_.events, parsed):
                for event in range_.events:
                    fixed = _version(event.get("fixed", ""))
                    if fixed is not None and fixed > parsed:
                        found.setdefault(fixed, event["fixed"])
    return [found[v] for v in sorted(found)]


class OsvDatabase:
    """Non-withdrawn OSV records indexed by PEP 503 normalised PyPI package name."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[_Entry]] = {}
        self._sources: dict[str, str] = {}  # advisory id -> where it was read from

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> OsvDatabase:
        db = cls()
        for index, record in enumerate(records):
            db.add(record, source=f"record #{index}")
        return db

    def __len__(self) -> int:
        return len(self._sources)

    def add(self, record: Mapping[str, Any], source: str) -> None:
        """Validate and index one record; withdrawn records are skipped."""
        try:
            parsed = _Record.model_validate(record)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'record'}: {err['msg']}"
                for err in exc.errors()[:3]
            )
            raise OsvError(
                f"{source}: not a usable OSV record ({problems}); expected a mapping with a "
                "string 'id' and, optionally, an 'affected' list of package/ranges/versions"
            ) from None
        if record.get("withdrawn") is not None:
            return
        if parsed.id in self._sources:
            raise OsvError(
                f"{source}: duplicate advisory id {parsed.id}, already read from "
                f"{self._sources[parsed.id]}; expected each id once"
            )
        self._sources[parsed.id] = source
        entry = _Entry(copy.deepcopy(dict(record)), parsed)
        names = {
            canonicalize_name(a.package.name)
            for a in parsed.affected
            if a.package and a.package.ecosystem == ECOSYSTEM
        }
        for name in names:
            self._by_name.setdefault(name, []).append(entry)

    def query(self, name: str, version: str) -> list[dict[str, Any]]:
        """Full OSV records (copies) affecting PyPI package `name` at `version`, by id."""
        hits = [
            e.raw
            for e in self._by_name.get(canonicalize_name(name), [])
            if _affects(e.parsed, name, version)
        ]
        return copy.deepcopy(sorted(hits, key=lambda raw: str(raw["id"])))


def _is_record_name(member: str) -> bool:
    # Skip README/LICENSE and dot-files such as the PyPA ".id-allocator" or macOS "._x.yaml".
    base = member.rsplit("/", 1)[-1].lower()
    return base.endswith(_RECORD_SUFFIXES) and not base.startswith(".")


def _members(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """Yield (description for errors, member name, content) for every record file."""
    name = path.name.lower()
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and _is_record_name(file.name):
                yield str(file), file.name, file.read_bytes()
    elif not path.exists():
        raise OsvError(f"{path}: not found; expected an OSV directory, .zip, .tar.gz or .tgz")
    elif name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir() and _is_record_name(info.filename):
                        yield f"{path} (member {info.filename})", info.filename, archive.read(info)
        except (zipfile.BadZipFile, OSError) as exc:
            raise OsvError(f"{path}: unreadable zip archive ({exc})") from exc
    elif name.endswith((".tar.gz", ".tgz")):
        try:
            # Members are read in memory, never extracted, so hostile paths cannot escape.
            with tarfile.open(path, "r:gz") as archive:
                for member in archive:
                    content = archive.extractfile(member) if member.isfile() else None
                    if content is not None and _is_record_name(member.name):
                        yield f"{path} (member {member.name})", member.name, content.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise OsvError(f"{path}: unreadable gzip tar archive ({exc})") from exc
    else:
        raise OsvError(
            f"{path}: unsupported file type; expected a directory, .zip, .tar.gz or .tgz"
        )


def _decode(where: str, member: str, content: bytes) -> Any:
    try:
        if member.endswith(".json"):
            return json.loads(content)
        return yaml.load(content, Loader=_RecordLoader)  # a SafeLoader subclass: no tags run
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError/UnicodeError are ValueErrors
        kind = "JSON" if member.endswith(".json") else "YAML"
        raise OsvError(f"{where}: not valid {kind} ({exc}); expected one OSV record") from None


def load_database(path: Path) -> OsvDatabase:
    """Load every .json/.yaml/.yml OSV record under a directory, .zip or .tar.gz/.tgz."""
    db = OsvDatabase()
    for where, member, content in _members(path):
        record = _decode(where, member, content)
        if not isinstance(record, dict):
            raise OsvError(
                f"{where}: top level is {type(record).__name__}; expected one OSV record mapping"
            )
        db.add(record, source=where)
    return db
