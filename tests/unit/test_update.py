"""`pybase update` against a local fixture of Debian's source index: a file: repository (Release,
Sources, .dsc, orig tarballs) read by the real apt, so the download and its verification are the
real ones. In it, python3.13 has:

  3.13.19  listed, its tarball missing (the archive answers "not found")
  3.13.18  listed, the served tarball differs from the index's sha256
  3.13.17  listed and served intact: the one to write
  3.13.16  older than a verified one: not fetched
  3.14.0~rc1  a pre-release: never a candidate
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pybase import cli, gitlab
from pybase.core import matrix
from pybase.upstream import cpython_releases, debian_archive

REPO = Path(__file__).resolve().parents[2]
VERSIONS = REPO / "versions.yaml"


@dataclass(frozen=True)
class Fixture:
    lines: list[str]
    good_sha256: str


def _file_line(path: Path, name: str) -> str:
    data = path.read_bytes()
    return f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}"


def _stanza(pool: Path, package: str, version: str, upstream: str, orig_sha256: str,
            orig_size: int) -> str:
    dsc = f"{package}_{version}.dsc"
    (pool / dsc).write_text(f"Format: 1.0\nSource: {package}\nVersion: {version}\n")
    orig = f"{package}_{upstream}.orig.tar.xz"
    return (f"Package: {package}\nBinary: {package}\nVersion: {version}\nArchitecture: any\n"
            f"Format: 1.0\nDirectory: pool/main/p/{package}\n"
            f"Files:\n {hashlib.md5(b'').hexdigest()} 0 unused\n"
            f"Checksums-Sha256:\n{_file_line(pool / dsc, dsc)}\n"
            f" {orig_sha256} {orig_size} {orig}\n\n")


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fixture:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "archive"
    pool = root / "pool" / "main" / "p" / "python3.13"
    pool.mkdir(parents=True)
    stanzas = []
    tarballs = {v: f"pretend CPython {v} source\n".encode() for v in
                ("3.13.16", "3.13.17", "3.13.18", "3.13.19")}
    for version, data in tarballs.items():
        sha = hashlib.sha256(data).hexdigest()
        served = {"3.13.19": None, "3.13.18": data.replace(b"pretend", b"tampered")}.get(version,
                                                                                         data)
        if served is not None:
            (pool / f"python3.13_{version}.orig.tar.xz").write_bytes(served)
        stanzas.append(_stanza(pool, "python3.13", f"{version}-1", version, sha, len(data)))
    stanzas.append(_stanza(pool, "python3.13", "3.14.0~rc1-1", "3.14.0~rc1", "0" * 64, 1))
    sources = root / "dists" / "sid" / "main" / "source" / "Sources"
    sources.parent.mkdir(parents=True)
    sources.write_text("".join(stanzas))
    (root / "dists" / "sid" / "Release").write_text(
        "Suite: sid\nCodename: sid\nComponents: main\nDate: Sat, 21 Nov 2026 00:00:00 UTC\n"
        f"SHA256:\n{_file_line(sources, 'main/source/Sources')}\n")
    good = hashlib.sha256(tarballs["3.13.17"]).hexdigest()
    return Fixture([f"deb-src [trusted=yes] file:{root} sid main"], good)


def _copy_project(tmp_path: Path) -> tuple[Path, Path]:
    versions = tmp_path / "versions.yaml"
    gitlab_ci = tmp_path / ".gitlab-ci.yml"
    shutil.copy(VERSIONS, versions)
    shutil.copy(gitlab.GITLAB_CI, gitlab_ci)
    return versions, gitlab_ci


def test_newest_verified_version_is_chosen_and_cached(index: Fixture, tmp_path: Path) -> None:
    with cpython_releases.apt_sources(index.lines) as apt:
        reports = cpython_releases.lookup(matrix.load(VERSIONS), apt, python_org=False)
    by_minor = {r.entry.minor: r for r in reports}
    states = [(c.listed.version, c.status) for c in by_minor["3.13"].newer]
    assert states == [("3.13.19", "unfetchable"), ("3.13.18", "unfetchable"),
                      ("3.13.17", "verified"), ("3.13.16", "untried")]
    missing, tampered = by_minor["3.13"].newer[:2]
    assert "python3.13_3.13.19.orig.tar.xz" in missing.problem
    assert "Hash Sum mismatch" in tampered.problem or "sha256" in tampered.problem
    assert not any(r.newer for m, r in by_minor.items() if m != "3.13")
    cached = tmp_path / "cache" / "sources" / "Python-3.13.17.tar.xz"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == index.good_sha256
    assert not (tmp_path / "cache" / "sources" / "Python-3.13.18.tar.xz").exists()
    assert cpython_releases.changes(reports) == [
        cpython_releases.Change("3.13", "3.13.17", index.good_sha256)]


def test_update_writes_only_the_verified_version_and_keeps_every_other_byte(
        index: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    versions, gitlab_ci = _copy_project(tmp_path)
    monkeypatch.setattr(cpython_releases, "archive_sources", lambda: index.lines)
    before = versions.read_text()
    old = matrix.load(versions).python[0]
    assert old.minor == "3.13"

    assert cli.main(["update", "--versions", str(versions), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "3.13.15 -> 3.13.18: listed but not fetchable" in out
    assert "3.13.15 -> 3.13.19: listed but not fetchable" in out

    after = versions.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(True), after.splitlines(True), strict=True)
               if a != b]
    assert changed == [(f'    version: "{old.version}"\n', '    version: "3.13.17"\n'),
                       (f"    sha256: {old.sha256}\n", f"    sha256: {index.good_sha256}\n")]
    assert after.replace('"3.13.17"', f'"{old.version}"').replace(
        index.good_sha256, old.sha256) == before  # byte for byte, comments and layout included
    assert matrix.load(versions).python[0].version == "3.13.17"
    assert gitlab.current(gitlab_ci) == (["3.13.17-bookworm", "3.13.17-trixie"], ["amd64", "arm64"])


def test_dry_run_prints_the_diff_and_writes_nothing(index: Fixture, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    versions, gitlab_ci = _copy_project(tmp_path)
    monkeypatch.setattr(cpython_releases, "archive_sources", lambda: index.lines)
    before, ci_before = versions.read_bytes(), gitlab_ci.read_bytes()
    assert cli.main(["update", "--versions", str(versions), "--offline", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '+    version: "3.13.17"' in out and f"+    sha256: {index.good_sha256}" in out
    assert "would write 1 verified version(s)" in out
    assert versions.read_bytes() == before and gitlab_ci.read_bytes() == ci_before


def test_unreadable_index_is_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    lines = [f"deb-src [trusted=yes] file:{tmp_path / 'nothing'} sid main"]
    with (pytest.raises(debian_archive.DebianArchiveError, match="apt-get update"),
          cpython_releases.apt_sources(lines)):
        pass


def test_rewrite_names_the_line_it_cannot_edit() -> None:
    text = VERSIONS.read_text().replace('version: "3.13.15"', 'version:\n      "3.13.15"')
    change = cpython_releases.Change("3.13", "3.13.17", "a" * 64)
    with pytest.raises(matrix.MatrixError, match=r"versions.yaml:\d+: python\[0\]\.version"):
        cpython_releases.rewrite(text, "versions.yaml", [change])
    with pytest.raises(matrix.MatrixError, match="python '3.9' is not declared"):
        cpython_releases.rewrite(VERSIONS.read_text(), "versions.yaml",
                                 [cpython_releases.Change("3.9", "3.9.30", "a" * 64)])


def test_showsrc_parsing_takes_final_releases_with_their_orig_checksum() -> None:
    text = ("Package: python3.13\nVersion: 1:3.13.18-2\nChecksums-Sha256:\n"
            f" {'b' * 64} 10 python3.13_3.13.18.orig.tar.xz\n\n"
            "Package: python3.13\nVersion: 3.13.18-1\nChecksums-Sha256:\n"
            f" {'c' * 64} 10 python3.13_3.13.18.orig.tar.xz\n\n"
            "Package: python3.13\nVersion: 3.13.5-2\nChecksums-Sha256:\n"
            f" {'d' * 64} 10 python3.13_3.13.5.orig.tar.xz\n\n"
            "Package: python3.13\nVersion: 3.13.0~rc2-1\nChecksums-Sha256:\n"
            f" {'e' * 64} 10 python3.13_3.13.0~rc2.orig.tar.xz\n\n"
            "Package: python3.13\nVersion: 3.13.6-1\nChecksums-Sha256:\n"
            f" {'f' * 64} 10 python3.13_3.13.6-1.debian.tar.xz\n")
    listed = cpython_releases.parse_showsrc(text, "3.13")
    assert [(i.version, i.sha256[0], i.debian_version) for i in listed] == [
        ("3.13.18", "b", "1:3.13.18-2"), ("3.13.5", "d", "3.13.5-2")]


def test_messages_name_files_not_archive_hosts() -> None:
    line = ("E: Failed to fetch http://archive.invalid/debian/pool/main/p/python3.13/"
            "python3.13_3.13.18-1.dsc  404  Not Found [IP: 192.0.2.1 80]")
    assert debian_archive.without_hosts(line) == (
        "E: Failed to fetch python3.13_3.13.18-1.dsc  404  Not Found")
