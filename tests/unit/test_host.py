"""pybase/infra/host.py: the one list of host packages, and what happens when one is missing.

Which session needs which package is checked against the code in test_nox_sessions.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pybase.infra import host

REPO = Path(__file__).resolve().parents[2]
ABSENT = "pybase-test-absent"


def test_runs_on_a_bare_python_before_any_venv() -> None:
    # .ci/setup runs it with the system's python3 from the checkout: no site-packages (-S), no
    # user site or PYTHON* variables (-s -E); the checkout itself is on the path, as there.
    done = subprocess.run([sys.executable, "-E", "-s", "-S", "-m", "pybase.infra.host", "--list", "test"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == host.packages_for(["test"])
    assert {"skopeo", "docker-registry", "podman", "uidmap", "shellcheck"} <= set(
        done.stdout.split())


def test_ci_setup_installs_every_sessions_packages_from_the_list() -> None:
    assert "python3 -m pybase.infra.host all" in (REPO / ".ci" / "setup").read_text()
    everything = host.packages_for(["all"])
    assert set(everything) == set().union(*host.SESSIONS.values())
    assert {"docker.io", "skopeo", "podman", "mmdebstrap"} <= set(everything)
    assert not set(everything) & set(host.PRESENT)  # never installed by us


def test_unknown_session_is_named() -> None:
    with pytest.raises(host.HostError, match="no nox session 'tests'; sessions: engine, "):
        host.packages_for(["tests"])


def test_a_program_not_in_the_list_is_a_bug_not_a_missing_package() -> None:
    unlisted = "cosign"  # not a literal: test_nox_sessions would take it for a real use
    with pytest.raises(ValueError, match="'cosign' is not in pybase/infra/host.py PACKAGES"):
        host.program(unlisted)


def test_a_missing_program_names_its_package_and_the_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(host.PACKAGES, ABSENT, (f"{ABSENT}-tool",))
    with pytest.raises(host.HostError) as caught:
        host.program(f"{ABSENT}-tool")
    assert str(caught.value).startswith(
        f"`{ABSENT}-tool` is not installed: it comes from Debian's {ABSENT} package.")
    assert f"apt-get install -y -q --no-install-recommends {ABSENT}" in str(caught.value)


def test_not_root_gets_one_clear_error_naming_every_missing_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    missing = [ABSENT, f"{ABSENT}-too"]
    with pytest.raises(host.HostError) as caught:
        host.ensure(["dpkg", *missing], why="`nox -s test`")  # dpkg is there: not named
    message = str(caught.value)
    assert message.startswith(f"`nox -s test` needs the Debian packages {ABSENT}, {ABSENT}-too,"
                              " which are not installed; as root: apt-get update && apt-get "
                              f"install -y -q --no-install-recommends {ABSENT} {ABSENT}-too")
    assert " dpkg" not in message


def test_nothing_missing_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # would fail if it tried
    assert host.ensure(list(host.PRESENT), why="a test") == []
