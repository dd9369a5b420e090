"""Upstream logic that needs no engine: mirror discovery, source verification, the reproducible
base's archive state and image archive, and what the CPython tree and assembly are keyed by."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from pybase import upstream
from pybase.core import label, matrix, settings
from pybase.core.matrix import PythonEntry
from pybase.infra import emulation, registry
from pybase.upstream import cpython_build, cpython_source, debian_archive, debian_base, tree_cache

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
    command = debian_base.debian_recipe("trixie", mirrors, "out.tar", "arm64")
    assert "--variant=minbase" in command and "--architectures=arm64" in command
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
    got = cpython_source.source_tarball(entry("3.13.99", content), source_dir=tmp_path)
    assert got == tmp_path / "Python-3.13.99.tar.xz"


def test_debian_orig_name_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "python3.13_3.13.99.orig.tar.xz").write_bytes(b"orig")
    got = cpython_source.source_tarball(entry("3.13.99", b"orig"), source_dir=tmp_path)
    assert got.name == "python3.13_3.13.99.orig.tar.xz"


def test_wrong_hash_names_file_hashes_and_version(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "Python-3.13.99.tar.xz").write_bytes(b"tampered")
    wanted = entry("3.13.99", b"the real thing")
    with pytest.raises(upstream.UpstreamError) as info:
        cpython_source.source_tarball(wanted, source_dir=tmp_path)
    message = str(info.value)
    assert "Python-3.13.99.tar.xz" in message and wanted.sha256 in message
    assert hashlib.sha256(b"tampered").hexdigest() in message and "3.13.99" in message


def test_source_found_nowhere_says_where_it_looked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Real lookups: python.org is unreachable here and Debian has no 3.13.99.
    monkeypatch.setenv("PYTHON_BASE_CACHE", str(tmp_path / "cache"))
    wanted = entry("3.13.99", b"never published")
    with pytest.raises(upstream.UpstreamError) as info:
        cpython_source.source_tarball(wanted, source_dir=tmp_path)
    message = str(info.value)
    assert "no source for Python 3.13.99" in message and wanted.sha256 in message
    assert str(tmp_path) in message
    assert "python.org" in message and "Debian source package python3.13" in message


# --- the reproducible Debian base -----------------------------------------------------------------


def test_archive_state_epoch_is_the_newest_release_and_the_label_is_stable() -> None:
    state = debian_base.ArchiveState({"trixie-security": 1795_500_000, "trixie": 1795_000_000,
                                      "trixie-updates": 1795_400_000})
    assert state.epoch == 1795_500_000
    assert state.label == ("trixie=2026-11-18T11:06:40Z trixie-security=2026-11-24T06:00:00Z "
                           "trixie-updates=2026-11-23T02:13:20Z")
    same = debian_base.ArchiveState(dict(reversed(list(state.dates.items()))))
    assert same.label == state.label


def test_release_dates_read_codename_and_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_update(self: debian_archive.AptSources) -> None:
        assert "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false" in self.options
        lists = self.root / "lists"
        for name, (suite, date) in {"x_dists_trixie_InRelease": ("trixie", "Tue, 24 Nov 2026 00:34:34 UTC"),
                                    "x_dists_trixie-security_InRelease": ("trixie-security",
                                                                         "Tue, 24 Nov 2026 02:12:15 UTC")}.items():
            (lists / name).write_text(f"Origin: Debian\nSuite: stable\nCodename: {suite}\n"
                                      f"Date: {date}\n")
    monkeypatch.setattr(debian_archive.AptSources, "update", fake_update)
    found = debian_archive.release_dates([("http://a.invalid/debian", "trixie"),
                                          ("http://b.invalid/debian-security", "trixie-security")])
    assert found == {"trixie": 1795480474, "trixie-security": 1795486335}
    with pytest.raises(debian_archive.DebianArchiveError, match="no Release file .* trixie-updates"):
        debian_archive.release_dates([("http://a.invalid/debian", "trixie-updates")])


def test_image_archive_is_deterministic_and_dated_by_the_archive(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(__file__, arcname="etc/hello")
    ids = [debian_base.write_image_archive(rootfs, tmp_path / f"image{n}.tar", "debian:trixie-slim",
                                           created=1795486335, labels={"b": "2", "a": "1"},
                                           created_by="mmdebstrap", architecture="amd64")
           for n in (1, 2)]
    assert ids[0] == ids[1]
    with tarfile.open(tmp_path / "image1.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == ids[0]
    config = json.loads(config_bytes)
    assert config["created"] == "2026-11-24T02:12:15Z"
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert manifest[0]["RepoTags"] == ["debian:trixie-slim"]
    other = debian_base.write_image_archive(rootfs, tmp_path / "image3.tar", "x", created=1795486336,
                                            labels={}, created_by="mmdebstrap", architecture="amd64")
    assert other != ids[0]


# --- the CPython tree and its assembly -------------------------------------------------------------


TARGET = matrix.load().targets()[0]


def test_tree_key_changes_with_each_compile_input_and_nothing_else() -> None:
    key = cpython_build.tree_key(TARGET, True)
    assert cpython_build.tree_key(TARGET, True) == key
    assert cpython_build.tree_key(TARGET, False) != key
    other_release = dataclasses.replace(TARGET, release="trixie" if TARGET.release != "trixie"
                                        else "bookworm")
    assert cpython_build.tree_key(other_release, True) != key
    for field, value in (("version", "3.13.99"), ("sha256", "0" * 64)):
        changed = dataclasses.replace(TARGET, python=TARGET.python.model_copy(update={field: value}))
        assert cpython_build.tree_key(changed, True) != key
    other_platform = dataclasses.replace(TARGET, platform="linux/arm64")
    assert cpython_build.tree_key(other_platform, True) != key
    assert cpython_build.tree_ref(TARGET, True) == (
        f"pybase-cache/cpython-tree:{TARGET.key}-amd64-{key}")


def test_the_tree_key_names_the_optimisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Natively PGO+LTO; another platform is cross-compiled, with LTO only."""
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    arm64 = dataclasses.replace(TARGET, platform="linux/arm64")
    assert cpython_build.tree_key(TARGET, True).startswith("pgo-lto-")
    assert cpython_build.tree_key(arm64, True).startswith("lto-")
    assert cpython_build.tree_key(arm64, False).startswith("plain-")
    assert cpython_build.tree_ref(arm64, True).startswith(
        f"pybase-cache/cpython-tree:{TARGET.key}-arm64-lto-")
    monkeypatch.setattr(emulation, "native_arch", lambda: "arm64")
    assert cpython_build.tree_key(arm64, True).startswith("pgo-lto-")


def test_assembly_recipe_follows_the_tree_not_the_base(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    recipe = cpython_build.assembly_recipe(TARGET, True)
    assert cpython_build.assembly_recipe(TARGET, False) != recipe  # another tree
    edited = tmp_path / "Dockerfile"
    edited.write_text(cpython_build.ASSEMBLE_DOCKERFILE.read_text() + "# edited\n")
    monkeypatch.setattr(cpython_build, "ASSEMBLE_DOCKERFILE", edited)
    assert cpython_build.assembly_recipe(TARGET, True) != recipe


def test_only_an_emulated_assembly_names_the_cpu_qemu_emulates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    arm64 = dataclasses.replace(TARGET, platform="linux/arm64")
    native = cpython_build.assembly_args(TARGET, True, "debian:x", "tree:x")
    emulated = cpython_build.assembly_args(arm64, True, "debian:x", "tree:x")
    assert not any("QEMU_CPU" in arg for arg in native)
    assert f"--build-arg=QEMU_CPU={emulation.QEMU_CPU['arm64']}" in emulated
    assert emulated[:2] == ["--platform", "linux/arm64"] and "TREE_IMAGE=tree:x" in emulated
    dockerfile = cpython_build.ASSEMBLE_DOCKERFILE.read_text()
    stages_that_run = dockerfile.split("\nFROM ")[2:]  # the trimmed stage and the image
    assert all("\nARG QEMU_CPU\n" in stage for stage in stages_that_run)


def test_a_refreshed_base_alone_is_not_new_content() -> None:
    labels = {"org.python-base.archive": "trixie=2026-11-24T00:34:34Z",
              "org.opencontainers.image.base.digest": "sha256:aaa",
              "org.python-base.cpython-tree": "0123456789abcdef"}
    assert label.VOLATILE >= {"org.python-base.archive",
                                       "org.opencontainers.image.base.digest"}
    assert "org.python-base.cpython-tree" not in label.VOLATILE
    kept = {k: v for k, v in labels.items() if k not in label.VOLATILE}
    assert kept == {"org.python-base.cpython-tree": "0123456789abcdef"}


def test_the_cache_variable_must_name_a_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.TREE_CACHE, "not a repository")
    with pytest.raises(registry.RegistryError, match=f"{settings.TREE_CACHE}: 'not a repository'"):
        tree_cache.repository()
    monkeypatch.setenv(settings.TREE_CACHE, "registry.example:5000/group/python-base/cpython-tree/")
    assert tree_cache.repository() == registry.Repository(
        "registry.example:5000/group/python-base/cpython-tree")
    monkeypatch.delenv(settings.TREE_CACHE)
    assert tree_cache.repository() is None


def test_the_cache_has_its_own_credentials_else_the_registrys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (settings.TREE_CACHE_USER, settings.TREE_CACHE_PASSWORD, settings.REGISTRY_USER,
                 settings.REGISTRY_PASSWORD, settings.GITLAB_REGISTRY_USER,
                 settings.GITLAB_REGISTRY_PASSWORD):
        monkeypatch.delenv(name, raising=False)
    assert tree_cache.credentials() is None
    monkeypatch.setenv(settings.GITLAB_REGISTRY_USER, "gitlab-ci-token")
    monkeypatch.setenv(settings.GITLAB_REGISTRY_PASSWORD, "job-token")
    assert tree_cache.credentials() == registry.Credentials(
        "gitlab-ci-token", "job-token", settings.GITLAB_REGISTRY_USER)
    monkeypatch.setenv(settings.TREE_CACHE_USER, "deploy-token")
    with pytest.raises(registry.RegistryError, match="PYTHON_BASE_TREE_CACHE_USER is set but "
                                                     "PYTHON_BASE_TREE_CACHE_PASSWORD is not"):
        tree_cache.credentials()
    monkeypatch.setenv(settings.TREE_CACHE_PASSWORD, "secret")
    found = tree_cache.credentials()
    assert found is not None and found.user == "deploy-token" and "secret" not in str(found)
