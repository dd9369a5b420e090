"""Pure logic of publishing: where to, with which credentials, content comparison, gates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pybase.core import settings
from pybase.infra import oci, registry
from pybase.publish import content
from pybase.verify import gates


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "registry.example.com/platform/python-base"),
    ({"PYTHON_BASE_REGISTRY": "127.0.0.1:5000/platform/"}, "127.0.0.1:5000/platform/python-base"),
    ({"CI_REGISTRY_IMAGE": "gitlab.example.com:5050/platform/python-base"},
     "gitlab.example.com:5050/platform/python-base"),
    ({"PYTHON_BASE_REGISTRY": "127.0.0.1:5000/a", "CI_REGISTRY_IMAGE": "gitlab.example.com/b"},
     "127.0.0.1:5000/a/python-base"),
])
def test_publish_target_precedence(environ: dict[str, str], expected: str) -> None:
    found = registry.resolve_repository("registry.example.com/platform", "python-base", environ)
    assert found.name == expected


def test_malformed_registry_names_the_variable() -> None:
    with pytest.raises(registry.RegistryError, match=r"PYTHON_BASE_REGISTRY: 'http://x/y/python"):
        registry.resolve_repository("r.example/p", "python-base",
                                    {"PYTHON_BASE_REGISTRY": "http://x/y"})


@pytest.mark.parametrize(("name", "plain"), [
    ("127.0.0.1:5000/p/python-base", True), ("localhost:5000/python-base", True),
    ("registry.example.com/p/python-base", False), ("127.example.com/p", False),
])
def test_loopback_registries_speak_plain_http(name: str, plain: bool) -> None:
    assert registry.Repository(name).plain_http is plain


def test_credentials_come_in_pairs_and_never_show_the_password() -> None:
    found = registry.credentials_from_env({"CI_REGISTRY_USER": "ci", "CI_REGISTRY_PASSWORD": "pw1"})
    assert found is not None and found.user == "ci" and found.source == "CI_REGISTRY_USER"
    assert "pw1" not in repr(found) + str(found)
    ours = registry.credentials_from_env({
        "PYTHON_BASE_REGISTRY_USER": "me", "PYTHON_BASE_REGISTRY_PASSWORD": "pw2",
        "CI_REGISTRY_USER": "ci", "CI_REGISTRY_PASSWORD": "pw1"})
    assert ours is not None and ours.user == "me"
    assert registry.credentials_from_env({}) is None
    with pytest.raises(registry.RegistryError, match="PYTHON_BASE_REGISTRY_PASSWORD is set but "
                                                     "PYTHON_BASE_REGISTRY_USER is not"):
        registry.credentials_from_env({"PYTHON_BASE_REGISTRY_PASSWORD": "pw"})


def test_session_auth_file_is_private_and_removed(tmp_path: Path) -> None:
    creds = registry.Credentials("u", "p@ss", settings.REGISTRY_USER)
    with registry.Session(registry.Repository("127.0.0.1:5000/p/x"), creds) as session:
        path = session.auth_file
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        auth = json.loads(path.read_text())["auths"]["127.0.0.1:5000"]["auth"]
        assert auth == "dTpwQHNz"  # base64 of u:p@ss
    assert not path.parent.exists()


def test_manifest_digest_is_that_of_the_bytes() -> None:
    raw = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:c"},
                      "layers": [{"digest": "sha256:l1"}]}).encode()
    found = registry.parse_manifest(raw)
    assert found.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (found.config_digest, found.layers) == ("sha256:c", ["sha256:l1"])
    assert not found.is_index and found.platforms == {}
    with pytest.raises(registry.RegistryError, match="neither a Docker/OCI image manifest nor"):
        registry.parse_manifest(b'{"manifests": [{"digest": "sha256:a"}]}')  # no platform


def test_an_index_is_written_and_read_back_the_same() -> None:
    """index_bytes and parse_manifest agree: platform -> image digest, in the order given."""
    images = {platform: registry.parse_manifest(json.dumps({
        "schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
        "config": {"digest": f"sha256:{arch}"}, "layers": []}).encode())
        for platform, arch in (("linux/amd64", "a"), ("linux/arm64", "b"))}
    raw = oci.index_bytes(oci.DOCKER_LIST, images)
    found = registry.parse_manifest(raw)
    assert found.is_index and found.media_type == oci.DOCKER_LIST
    assert found.platforms == {p: m.digest for p, m in images.items()}
    assert list(found.platforms) == ["linux/amd64", "linux/arm64"]
    assert oci.index_bytes(oci.DOCKER_LIST, images) == raw  # a rerun: the same digest


def test_tool_errors_are_unwrapped() -> None:
    stderr = ('time="2026-11-25T07:59:37Z" level=fatal msg="Error reading manifest x: '
              'manifest unknown: \\"x\\""\n')
    assert registry._last_error(stderr) == 'Error reading manifest x: manifest unknown: "x"'
    assert registry._last_error("") == "no error output"


def sample(**changes: Any) -> content.Content:
    base: content.Content = {
        "debian": {"libssl3:amd64": "3.0.17-1~deb12u2", "tzdata:all": "2025b-0+deb12u1"},
        "python": {"/opt/venv": {"pip": "25.2"}, "/usr/local": {"pip": "25.2"}},
        "cpython": "3.13.15",
        "files": {"/usr/local/bin/python-base-entrypoint": "aa"},
        "config": {"env": {"PATH": "/opt/venv/bin:/usr/bin"}, "user": "10001:10001",
                   "labels": {"org.opencontainers.image.title": "python-base"}},
    }
    for key, value in changes.items():
        base[key] = value
    return base


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    assert content.fingerprint(sample()) == content.fingerprint(json.loads(json.dumps(sample())))
    assert content.fingerprint(sample()) != content.fingerprint(sample(cpython="3.13.16"))


def test_changes_name_every_kind_of_difference() -> None:
    new = sample(
        debian={"libssl3:amd64": "3.0.17-1~deb12u3", "curl:amd64": "7.88.1-10+deb12u14"},
        python={"/opt/venv": {"pip": "25.1", "bottle": "0.13.4"}, "/usr/local": {"pip": "25.2"}},
        cpython="3.13.16",
        files={"/usr/local/bin/python-base-entrypoint": "bb"},
        config={"env": {"PATH": "/opt/venv/bin:/usr/bin", "X": "1"}, "user": "10002",
                "labels": {"org.opencontainers.image.title": "python-base"}},
    )
    found = {(c.area, c.name): (c.change, c.old, c.new) for c in content.changes(sample(), new)}
    assert found == {
        ("debian", "curl:amd64"): ("added", None, "7.88.1-10+deb12u14"),
        ("debian", "libssl3:amd64"): ("upgraded", "3.0.17-1~deb12u2", "3.0.17-1~deb12u3"),
        ("debian", "tzdata:all"): ("removed", "2025b-0+deb12u1", None),
        ("python /opt/venv", "bottle"): ("added", None, "0.13.4"),
        ("python /opt/venv", "pip"): ("downgraded", "25.2", "25.1"),
        ("cpython", "CPython"): ("upgraded", "3.13.15", "3.13.16"),
        ("files", "/usr/local/bin/python-base-entrypoint"): ("changed", "aa", "bb"),
        ("config env", "X"): ("added", None, "1"),
        ("config", "user"): ("changed", "10001:10001", "10002"),
    }
    assert content.changes(sample(), sample()) == []


def test_first_publish_lists_everything_as_added() -> None:
    found = content.changes(None, sample())
    assert found and all(c.change == "added" for c in found)


def test_changelog_markdown_groups_by_area() -> None:
    text = content.markdown("repo:tag", [("digest", "sha256:1")],
                            content.changes(sample(), sample(cpython="3.13.16")))
    assert text.startswith("# repo:tag\n") and "| digest | sha256:1 |" in text
    assert "## cpython" in text and "| CPython | upgraded | 3.13.15 | 3.13.16 |" in text
    assert "No content changes." in content.markdown("t", [], [])
    hashes = content.markdown("t", [], content.changes(sample(), sample(files={
        "/usr/local/bin/python-base-entrypoint": "f" * 64})))
    assert "| aa | " + "f" * 12 + "… |" in hashes


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("test", "audit", "expected"), [
    (None, None, ["no test record", "no audit record"]),
    ({"outcome": "passed", "image_id": "sha256:1"}, {"status": "passed", "image_id": "sha256:1"},
     []),
    ({"outcome": "failed", "image_id": "sha256:1"}, {"status": "passed", "image_id": "sha256:1"},
     ["the test gate did not pass (outcome: failed"]),
    ({"outcome": "passed", "image_id": "sha256:0"}, {"status": "failed", "image_id": "sha256:1"},
     ["the test record is for image sha256:0, not sha256:1", "the audit gate did not pass"]),
])
def test_gates(tmp_path: Path, test: dict[str, Any] | None, audit: dict[str, Any] | None,
               expected: list[str]) -> None:
    ref = "python-base:3.13.15-bookworm"
    if test is not None:
        write(tmp_path / "test" / "3.13.15-bookworm.json", test)
    if audit is not None:
        write(tmp_path / "audit" / "3.13.15-bookworm.json", audit)
    found = gates.refusals(ref, "sha256:1", tmp_path / "test", tmp_path / "audit")
    assert len(found) == len(expected)
    for problem, wanted in zip(found, expected, strict=True):
        assert problem.startswith(f"{ref}: ") and wanted in problem


@pytest.mark.parametrize(("counts", "partial", "outcome"), [
    ((3, 0, 0, 1, 0, 0), False, "passed"), ((3, 1, 0, 0, 0, 0), False, "failed"),
    ((3, 0, 1, 0, 0, 0), False, "failed"), ((3, 0, 0, 0, 2, 0), False, "failed"),
    ((3, 0, 0, 0, 0, 4), False, "incomplete"), ((0, 0, 0, 5, 0, 0), False, "incomplete"),
    ((3, 0, 0, 0, 0, 0), True, "incomplete"),
])
def test_test_record_outcome(counts: tuple[int, int, int, int, int, int], partial: bool,
                             outcome: str) -> None:
    record = gates.TestRecord("python-base:x", "sha256:1", *counts, partial=partial,
                              finished="now")
    assert record.outcome == outcome
