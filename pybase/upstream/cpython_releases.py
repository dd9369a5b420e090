"""Newer CPython patch releases of the declared minors, and the sha256 to pin them with.

The list and the sha256 come from Debian's source indices (`pythonX.Y_<version>.orig.tar.xz` is
python.org's tarball byte for byte), read by apt with a private configuration: apt checks the
indices' signatures against Debian's keyring, so the sha256 is Debian's word, not a mirror's.
Listed is not enough: the indices name versions whose files are not (or no longer) served. A
version is *verified* only when its tarball was downloaded (python.org, else Debian's archive) and
hashed to the index's value; verified tarballs stay in the source cache, where bootstrap finds
them (pybase.upstream.cpython_source.source_tarball).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.version import Version

from pybase import upstream
from pybase.core import matrix, validated_yaml
from pybase.core.matrix import Matrix, MatrixError, PythonEntry
from pybase.upstream import cpython_source, debian_archive


@dataclass(frozen=True)
class Listed:
    """One upstream version in the indices: `3.13.18` as Debian's `3.13.18-1`."""

    version: str
    sha256: str
    debian_version: str


Status = Literal["verified", "unfetchable", "untried"]


@dataclass(frozen=True)
class Candidate:
    listed: Listed
    status: Status
    problem: str = ""  # why it is unfetchable


@dataclass
class MinorReport:
    entry: PythonEntry
    newer: list[Candidate] = field(default_factory=list)  # newest first

    @property
    def verified(self) -> Candidate | None:
        return next((c for c in self.newer if c.status == "verified"), None)


def archive_sources() -> list[str]:
    """The deb-src lines to read (a test points this at its own repository)."""
    return debian_archive.deb_src_lines()


@contextmanager
def apt_sources(lines: Sequence[str] | None = None) -> Iterator[debian_archive.AptSources]:
    """Debian's indices (or `lines`, e.g. a test repository), fetched once for the run."""
    with debian_archive.apt_sources(archive_sources() if lines is None else lines) as apt:
        yield apt


def parse_showsrc(text: str, minor: str) -> list[Listed]:
    """Final patch releases of `minor` in `apt-cache showsrc pythonX.Y` output, newest first.

    Pre-releases (`3.14.0~rc1`) and stanzas without the orig tarball's sha256 are left out."""
    found: dict[str, Listed] = {}
    for stanza in re.split(r"\n\s*\n", text):
        version = re.search(r"^Version: (\S+)$", stanza, re.MULTILINE)
        if version is None:
            continue
        upstream_version = re.sub(r"^\d+:", "", version.group(1)).rsplit("-", 1)[0]
        if not re.fullmatch(rf"{re.escape(minor)}\.\d+", upstream_version):
            continue
        orig = re.escape(f"python{minor}_{upstream_version}.orig.tar.xz")
        checksum = re.search(rf"^ ([0-9a-f]{{64}}) \d+ {orig}$", stanza, re.MULTILINE)
        if checksum is not None and upstream_version not in found:
            found[upstream_version] = Listed(upstream_version, checksum.group(1),
                                             version.group(1))
    return sorted(found.values(), key=lambda item: Version(item.version), reverse=True)


def fetch_verified(apt: debian_archive.AptSources, entry: PythonEntry, listed: Listed,
                   python_org: bool = True) -> str:
    """Put Python-<version>.tar.xz, hashing to the index's sha256, into the source cache (the
    download bootstrap makes; only the version and its sha256 come from the index).

    '' when it is there, else why not (each place tried)."""
    wanted = entry.model_copy(update={"version": listed.version, "sha256": listed.sha256})
    kept = cpython_source.cached(wanted)
    if kept.is_file() and cpython_source.sha256_of(kept) == listed.sha256:
        return ""
    try:
        cpython_source.download(wanted, python_org=python_org, apt=apt,
                                debian_versions=[listed.debian_version])
    except upstream.UpstreamError as exc:
        return str(exc)
    return ""


def lookup(matrix: Matrix, apt: debian_archive.AptSources, python_org: bool = True) -> list[MinorReport]:
    """For every declared minor, the listed versions newer than versions.yaml's, newest first;
    tarballs are fetched newest first until one verifies (the older ones are not needed)."""
    reports = []
    for entry in matrix.python:
        report = MinorReport(entry)
        listed = parse_showsrc(apt.showsrc(f"python{entry.minor}"), entry.minor)
        for item in (i for i in listed if Version(i.version) > Version(entry.version)):
            if report.verified is not None:
                report.newer.append(Candidate(item, "untried"))
                continue
            problem = fetch_verified(apt, entry, item, python_org)
            report.newer.append(Candidate(item, "unfetchable", problem) if problem
                                else Candidate(item, "verified"))
        reports.append(report)
    return reports


def describe(report: MinorReport) -> list[str]:
    """One line per newer version, for the terminal."""
    entry = report.entry
    if not report.newer:
        return [f"python {entry.minor}: {entry.version} is the newest listed patch release"]
    lines = []
    for c in report.newer:
        if c.status == "verified":
            state = f"verified, sha256 {c.listed.sha256}"
        elif c.status == "untried":
            state = "listed (not fetched: a newer one is verified)"
        else:
            state = f"listed but not fetchable: {c.problem}"
        lines.append(f"python {entry.minor}: {entry.version} -> {c.listed.version}: {state}")
    return lines


# --------------------------------------------------------------------------------------------
# versions.yaml
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    minor: str
    version: str
    sha256: str


def changes(reports: Sequence[MinorReport]) -> list[Change]:
    """The newest verified version of each minor that has one."""
    return [Change(r.entry.minor, v.listed.version, v.listed.sha256)
            for r in reports if (v := r.verified) is not None]


def rewrite(text: str, filename: str, wanted: Sequence[Change]) -> str:
    """versions.yaml with the `version:` and `sha256:` values of the changed entries replaced,
    every other byte kept (comments, quoting, order), and the result validated again."""
    before = matrix.parse(text, filename)  # refuses an empty or invalid file first
    doc = validated_yaml.parse(text, filename, MatrixError)
    assert doc is not None
    lines = text.splitlines(keepends=True)
    index = {entry.minor: i for i, entry in enumerate(before.python)}
    for change in wanted:
        if change.minor not in index:
            raise MatrixError(f"{filename}: python {change.minor!r} is not declared; "
                              "update only moves declared minors")
        i = index[change.minor]
        entry = before.python[i]
        for key, old, new in (("version", entry.version, change.version),
                              ("sha256", entry.sha256, change.sha256)):
            number = doc.line(("python", i, key))
            line = lines[number - 1]
            # The value as written (quoted or not) right after its key, on the key's own line.
            pattern = re.compile(rf"(\b{key}:\s*[\"']?){re.escape(old)}([\"']?)")
            if len(pattern.findall(line)) != 1:
                raise MatrixError(f"{filename}:{number}: python[{i}].{key}: expected "
                                  f"`{key}: {old}` on one line to replace; edit it by hand")
            lines[number - 1] = pattern.sub(rf"\g<1>{new}\g<2>", line)
    result = "".join(lines)
    after = matrix.parse(result, filename)  # the written file must load like any other
    for change in wanted:
        entry = after.python[index[change.minor]]
        if (entry.version, entry.sha256) != (change.version, change.sha256):
            raise MatrixError(f"{filename}: python {change.minor} did not take "
                              f"{change.version} / {change.sha256} (bug in the rewrite)")
    return result


def apply(path: Path, wanted: Sequence[Change], *, dry_run: bool) -> str:
    """Rewrite versions.yaml unless `dry_run`; returns its unified diff. (The pipeline's entry
    list names the versions too: the caller regenerates it, pybase.gitlab.)"""
    text = path.read_text(encoding="utf-8")
    result = rewrite(text, str(path), wanted)
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True),
                                        result.splitlines(keepends=True),
                                        f"a/{path.name}", f"b/{path.name}"))
    if not dry_run and result != text:
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(result, encoding="utf-8")
        os.replace(partial, path)  # never a half-written versions.yaml
    return diff
