"""The Debian archive this host's apt uses, and apt over it with a private configuration.

Bootstrap (pybase.upstream: mmdebstrap's sources, Debian's pristine CPython tarballs) and the
CPython release lookup (pybase.upstream.cpython_releases: newer patch releases and their sha256) both
read Debian's archive. The archive's address is taken from the machine's own apt configuration at
run time, never written into the project, and apt runs with private lists, cache and sources so
that the host's apt setup is neither needed nor touched.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import get_args

from pybase.core.matrix import Release
from pybase.infra import engine, host

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class DebianArchiveError(engine.CommandError):
    """The archive is not configured on this host, or apt could not read it."""


@dataclass(frozen=True)
class Mirrors:
    archive: str
    security: str


def host_mirrors(sources_dir: Path = Path("/etc/apt")) -> Mirrors:
    """The archive and security URIs this host's apt already uses.

    Read from the machine's own configuration so that no archive host is written into the project.
    """
    archive = security = None
    files = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or path.suffix not in {".list", ".sources", ""}:
            continue
        for uri, suites in _apt_entries(path.read_text(encoding="utf-8", errors="replace")):
            if any(s.endswith("-security") for s in suites):
                security = security or uri
            elif any(re.fullmatch(r"[a-z]+(-updates)?", s) for s in suites):
                archive = archive or uri
    if archive is None:
        raise DebianArchiveError(f"no Debian archive entry found in {sources_dir}/sources.list(.d); "
                            "apt must be configured for the Debian archive to bootstrap images")
    if security is None:
        raise DebianArchiveError(f"no *-security entry found in {sources_dir}/sources.list(.d); "
                            "images would miss security updates")
    return Mirrors(archive.rstrip("/"), security.rstrip("/"))


def _apt_entries(text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of the binary entries in a one-line .list or a deb822 .sources file."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
        enabled = fields.get("Enabled", "yes") != "no"
        if "URIs" in fields and "deb" in fields.get("Types", "").split() and enabled:
            entries += [(uri, fields.get("Suites", "").split()) for uri in fields["URIs"].split()]
    for line in text.splitlines():
        match = re.match(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
        if match:
            entries.append((match.group(1), [match.group(2)]))
    return entries


def deb_src_lines() -> list[str]:
    """deb-src lines for every release versions.yaml may name, plus sid, where new CPython patch
    releases land first."""
    mirrors = host_mirrors()
    return [f"deb-src [signed-by={DEBIAN_KEYRING}] {mirrors.archive} {suite} main"
            for suite in (*get_args(Release), "sid")]


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S*?([^/\s]*)(?=\s|$)", re.IGNORECASE)
_ADDRESS = re.compile(r"\s*\[IP: [^]]*\]")


def without_hosts(text: str) -> str:
    """apt names the archive's URLs and address; messages keep the file name only."""
    return _ADDRESS.sub("", _URL.sub(r"\1", text))


class AptSources:
    """apt over a private list of deb-src lines: own lists, cache and sources, the host's apt
    setup neither needed nor touched."""

    def __init__(self, root: Path, lines: Sequence[str], *, indices: bool = True) -> None:
        for sub in ("lists/partial", "cache/archives/partial", "parts"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "sources.list").write_text("".join(f"{line}\n" for line in lines))
        self.root = root
        self.options = [
            "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={root / 'parts'}",
            "-o", f"Dir::State::Lists={root / 'lists'}",
            "-o", f"Dir::Cache={root / 'cache'}",
        ]
        if not indices:
            # Only the (In)Release files: no Packages, no Translation indices.
            self.options += ["-o", "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false",
                             "-o", "Acquire::IndexTargets::deb::Translations::DefaultEnabled=false",
                             "-o", "Acquire::Languages=none"]

    def update(self) -> None:
        try:
            engine.run([host.program("apt-get"), *self.options, "-q", "update"],
                       what="apt-get update (private sources)", error=DebianArchiveError)
        except DebianArchiveError as exc:
            raise DebianArchiveError(without_hosts(str(exc))) from None

    def showsrc(self, package: str) -> str:
        # Exit 100 only says "no such source package"; an unreadable index failed in update().
        return engine.run([host.program("apt-cache"), *self.options, "showsrc", package], check=False,
                          what=f"apt-cache showsrc {package}", error=DebianArchiveError).stdout

    def download(self, package: str, debian_version: str, into: Path) -> str:
        """`apt-get source --download-only`; '' on success, else apt's last error line(s)."""
        what = f"apt-get source {package}={debian_version}"
        got = engine.run([host.program("apt-get"), *self.options, "-q", "source", "--download-only",
                          f"{package}={debian_version}"], what=what, cwd=into, check=False,
                         error=DebianArchiveError)
        if got.returncode == 0:
            return ""
        errors = [ln for ln in (got.stderr + got.stdout).splitlines() if ln.startswith("E:")]
        return without_hosts(" ".join(errors[:1]) or engine.failure(what, got))


@contextmanager
def apt_sources(lines: Sequence[str]) -> Iterator[AptSources]:
    """apt over these deb-src lines, their indices fetched once for the block."""
    with tempfile.TemporaryDirectory(prefix="pybase-apt-src-") as tmp:
        apt = AptSources(Path(tmp), lines)
        apt.update()
        yield apt


def release_dates(entries: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The `Date:` of each suite's Release file, as (URI, suite) pairs name them: seconds since
    the epoch, per suite. Only the signed Release files are fetched (a few hundred kB)."""
    lines = [f"deb [signed-by={DEBIAN_KEYRING}] {uri} {suite} main" for uri, suite in entries]
    with tempfile.TemporaryDirectory(prefix="pybase-apt-release-") as tmp:
        apt = AptSources(Path(tmp), lines, indices=False)
        apt.update()
        dates: dict[str, int] = {}
        for path in (Path(tmp) / "lists").glob("*Release"):
            text = path.read_text(encoding="utf-8", errors="replace")
            # Codename (`trixie-security`), as sources name suites; Suite is `stable-security`.
            codename = re.search(r"^Codename: (\S+)$", text, re.MULTILINE)
            date = re.search(r"^Date: (.+)$", text, re.MULTILINE)
            if codename and date:
                dates[codename.group(1)] = int(parsedate_to_datetime(date.group(1)).timestamp())
    missing = [suite for _, suite in entries if suite not in dates]
    if missing:
        raise DebianArchiveError(f"no Release file with a Date: for {', '.join(missing)}")
    return dates
