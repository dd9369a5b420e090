"""Upstream logic that needs no engine: mirror discovery and source verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pybase import debian_archive, upstream
from pybase.matrix import PythonEntry

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def entry(version: str, content: bytes) -> PythonEntry:
    return PythonEntry(minor=version.rsplit(".", 1)[0], version=version,
                       sha256=hashlib.sha256(content).hexdigest(), debian=["bookworm"], build=True)


def apt_dir(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / name).write_text(text)
    return tmp_path


def test_mirrors_from_deb822(tmp_path: Path) -> None:
    mirrors = debian_archive.host_mirrors(apt_dir(tmp_path, "debian.sources", DEB822))
    assert mirrors == debian_archive.Mirrors("http://mirror.invalid/debian",
                                       "http://security.invalid/debian-security")


def test_mirrors_from_one_line_format(tmp_path: Path) -> None:
    text = ("deb [signed-by=/k.gpg] http://a.invalid/debian bookworm main\n"
            "deb http://b.invalid/debian-security bookworm-security main\n")
    mirrors = debian_archive.host_mirrors(apt_dir(tmp_path, "x.list", text))
    assert mirrors == debian_archive.Mirrors("http://a.invalid/debian", "http://b.invalid/debian-security")


def test_missing_security_entry_is_an_error(tmp_path: Path) -> None:
    text = "deb http://a.invalid/debian bookworm main\n"
    with pytest.raises(debian_archive.DebianArchiveError, match="no \\*-security entry"):
        debian_archive.host_mirrors(apt_dir(tmp_path, "x.list", text))


def test_debian_recipe_carries_the_slim_recipe() -> None:
    mirrors = debian_archive.Mirrors("http://a.invalid/debian", "http://b.invalid/debian-security")
    command = upstream.debian_recipe("trixie", mirrors, "out.tar")
    assert "--variant=minbase" in command
    assert any("debuerreotype-slimify" in c for c in command)
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in command
    assert command[-3:] == [
        f"deb [signed-by={debian_archive.DEBIAN_KEYRING}] http://a.invalid/debian trixie main",
        f"deb [signed-by={debian_archive.DEBIAN_KEYRING}] http://a.invalid/debian trixie-updates main",
        f"deb [signed-by={debian_archive.DEBIAN_KEYRING}] http://b.invalid/debian-security trixie-security main",
    ]


def test_local_source_is_verified_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    content = b"pretend tarball"
    (tmp_path / "Python-3.13.99.tar.xz").write_bytes(content)
    got = upstream.source_tarball(entry("3.13.99", content), source_dir=tmp_path)
    assert got == tmp_path / "Python-3.13.99.tar.xz"


def test_debian_orig_name_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "python3.13_3.13.99.orig.tar.xz").write_bytes(b"orig")
    got = upstream.source_tarball(entry("3.13.99", b"orig"), source_dir=tmp_path)
    assert got.name == "python3.13_3.13.99.orig.tar.xz"


def test_wrong_hash_names_file_hashes_and_version(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "Python-3.13.99.tar.xz").write_bytes(b"tampered")
    wanted = entry("3.13.99", b"the real thing")
    with pytest.raises(upstream.UpstreamError) as info:
        upstream.source_tarball(wanted, source_dir=tmp_path)
    message = str(info.value)
    assert "Python-3.13.99.tar.xz" in message and wanted.sha256 in message
    assert hashlib.sha256(b"tampered").hexdigest() in message and "3.13.99" in message


def test_source_found_nowhere_says_where_it_looked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Real lookups: python.org is unreachable here and Debian has no 3.13.99.
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    wanted = entry("3.13.99", b"never published")
    with pytest.raises(upstream.UpstreamError) as info:
        upstream.source_tarball(wanted, source_dir=tmp_path)
    message = str(info.value)
    assert "no source for Python 3.13.99" in message and wanted.sha256 in message
    assert str(tmp_path) in message
    assert "python.org" in message and "Debian source package python3.13" in message
