"""What an image contains, read from the in-image listing and the image config, and how CPython
and our own files appear in the SBOM (no engine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pybase.build import inventory, sbom
from pybase.infra import engine

STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u14
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2026f-0+deb12u1

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.20-1~deb12u2)
Version: 3.0.20-1~deb12u2

Package: libc6
Status: install ok installed
Architecture: i386
Source: glibc
Version: 2.36-9+deb12u14

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: never-there
Status: purge ok not-installed
Architecture: amd64

Package: half-way
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0
"""

CONFIG = engine.ImageInspect.from_json({
    "Id": "sha256:feed", "RepoTags": ["python-base:3.13.15-bookworm"],
    "Config": {"Env": ["PATH=/opt/venv/bin:/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.13.15",
                       "PYTHON_SHA256=" + "1e" * 32],
               "User": "10001:10001"},
})


def listing(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "environments": [{"label": "/usr/local", "python": "/usr/local/bin/python3",
                          "prefix": "/usr/local", "dists": [
                              {"name": "pip", "version": "26.2.1", "path": "/usr/local/pip"}]}],
        "other": [], "errors": [], "dpkg_status": STATUS, "python_version": "3.13.15",
        "own_files": {"/usr/local/bin/python-base-healthcheck": "bb" * 32,
                      "/usr/local/bin/python-base-entrypoint": "aa" * 32},
    }
    return data | extra


def test_debian_packages_are_the_installed_ones_with_their_source() -> None:
    assert inventory.debian_packages(STATUS) == [
        inventory.DebianPackage("half-way", "2.0", "amd64", "half-way"),
        inventory.DebianPackage("libc6", "2.36-9+deb12u14", "amd64", "glibc"),
        inventory.DebianPackage("libc6", "2.36-9+deb12u14", "i386", "glibc"),
        inventory.DebianPackage("libssl3", "3.0.20-1~deb12u2", "amd64", "openssl"),
        inventory.DebianPackage("tzdata", "2026f-0+deb12u1", "all", "tzdata"),
    ]
    assert inventory.debian_packages("") == []


def test_inventory_carries_config_cpython_and_own_files() -> None:
    inv = inventory.parse("python-base:3.13.15-bookworm", listing(), CONFIG)
    assert inv.errors == []
    assert (inv.image_id, inv.config) == ("sha256:feed", CONFIG)
    assert inv.cpython == inventory.CPython(
        "3.13.15", "1e" * 32, "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz")
    assert inv.own_files == [
        inventory.OwnFile("/usr/local/bin/python-base-entrypoint", "aa" * 32),
        inventory.OwnFile("/usr/local/bin/python-base-healthcheck", "bb" * 32)]
    assert [p.name for p in inv.debian_packages][:2] == ["half-way", "libc6"]
    assert [d.key for d in inv.distributions] == [("pip", "26.2.1")]


def test_the_interpreter_must_be_the_version_the_image_declares() -> None:
    inv = inventory.parse("x:y", listing(python_version="3.13.14"), CONFIG)
    assert inv.cpython is None
    assert inv.errors == [
        "the image says PYTHON_VERSION=3.13.15, but /usr/local/bin/python3 is 3.13.14"]


def test_an_interpreter_not_built_by_us_has_no_source() -> None:
    plain = engine.ImageInspect.from_json({"Id": "sha256:1", "Config": {"Env": ["PATH=/bin"]}})
    inv = inventory.parse("x:y", listing(), plain)
    assert inv.cpython == inventory.CPython("3.13.15", None, None) and inv.errors == []


# --- in the SBOM ------------------------------------------------------------------------------

OS_BOM: dict[str, Any] = {
    "metadata": {"component": {"bom-ref": "CDXRef-Debian", "name": "Debian",
                               "type": "operating-system", "version": "12.15"}},
    "components": [{"bom-ref": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all",
                    "name": "tzdata", "type": "library", "version": "2026f-0+deb12u1",
                    "purl": "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all"}],
}
PY_BOM: dict[str, Any] = {"components": [
    {"bom-ref": "requirements-L1", "name": "pip", "purl": "pkg:pypi/pip@26.2.1",
     "type": "library", "version": "26.2.1"}]}


def test_cpython_and_our_files_are_components_of_the_image() -> None:
    inv = inventory.parse("python-base:3.13.15-bookworm", listing(), CONFIG)
    doc = sbom.merge(OS_BOM, PY_BOM, inv.distributions, inv.ref, {}, inv.image_id,
                     cpython=inv.cpython, own_files=inv.own_files)
    sbom.validate(doc)
    url = "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz"
    purl = f"pkg:generic/python@3.13.15?download_url={url}"
    cpython = next(c for c in doc["components"] if c["name"] == "python")
    assert cpython | {"description": "", "externalReferences": []} == {
        "bom-ref": purl, "type": "application", "name": "python", "version": "3.13.15",
        "description": "", "licenses": [{"license": {"id": "PSF-2.0"}}],
        "cpe": "cpe:2.3:a:python:python:3.13.15:*:*:*:*:*:*:*",
        "hashes": [{"alg": "SHA-256", "content": "1e" * 32}], "externalReferences": [],
        "purl": purl}
    assert [(r["type"], r["url"]) for r in cpython["externalReferences"]] == [
        ("source-distribution", url)]
    files = [c for c in doc["components"] if c["type"] == "file"]
    assert [(f["name"], f["hashes"]) for f in files] == [
        ("/usr/local/bin/python-base-entrypoint", [{"alg": "SHA-256", "content": "aa" * 32}]),
        ("/usr/local/bin/python-base-healthcheck", [{"alg": "SHA-256", "content": "bb" * 32}])]
    assert doc["dependencies"][0]["dependsOn"] == [
        "CDXRef-Debian", "pkg:pypi/pip@26.2.1", purl, *(f["bom-ref"] for f in files)]
    assert {d["ref"] for d in doc["dependencies"][1:]} >= {purl, *(f["bom-ref"] for f in files)}
    assert sbom.counts(doc) == (1, 0, 1)  # neither CPython nor a file counts as a package


def test_a_cpython_of_unknown_origin_has_only_its_version() -> None:
    component = sbom.cpython_component(inventory.CPython("3.12.13", None, None))
    assert component["purl"] == component["bom-ref"] == "pkg:generic/python@3.12.13"
    assert "hashes" not in component and "externalReferences" not in component


def test_the_probe_cache_keeps_the_newest_outputs_whole(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "CACHED_INVENTORIES", 3)
    for n in range(5):
        entry = tmp_path / f"sha256-{n}-probe.json"
        inventory._remember(entry, f'{{"n": {n}}}')
        os.utime(entry, (1000 + n, 1000 + n))  # mtimes a second apart, oldest first
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["sha256-2-probe.json", "sha256-3-probe.json", "sha256-4-probe.json"]
    assert (tmp_path / "sha256-4-probe.json").read_text() == '{"n": 4}'
