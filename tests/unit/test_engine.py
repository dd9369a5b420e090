"""The engine check fails fast and says how to get an engine (a real connection attempt); every
command runs through one runner with one rule for its error messages."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybase.core import settings
from pybase.infra import engine


def test_unreachable_engine_is_reported_with_the_way_out(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    assert engine.server_version() is None
    with pytest.raises(engine.EngineError) as info:
        engine.require()
    message = str(info.value)
    assert address in message and "nox -s engine" in message and "DOCKER_HOST" in message


def test_a_remote_engine_is_never_replaced_by_a_local_one(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/remote.sock")
    with pytest.raises(engine.EngineError, match="no Docker Engine answers"):
        engine.ensure_running()


# --- one runner, one rule for error messages --------------------------------------------------

class ToolError(engine.CommandError):
    """What a module of pybase raises for its own tool calls."""


def test_a_failure_names_the_command_its_exit_and_the_last_stderr_line() -> None:
    script = "import sys; print('out'); sys.stderr.write('first\\nthe reason\\n\\n'); sys.exit(3)"
    with pytest.raises(ToolError) as info:
        engine.run([sys.executable, "-c", script], what="the tool", error=ToolError)
    assert str(info.value) == "`the tool` failed (exit 3): the reason"
    assert info.value.returncode == 3


def test_output_to_a_log_keeps_it_off_the_terminal_and_a_failure_names_the_log(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Concurrent bootstrap steps each write to their own log (engine.output_to)."""
    log = tmp_path / "logs" / "tree.log"
    script = ("import sys; print('compiling', flush=True); "
              "print('ld: out of memory', file=sys.stderr); sys.exit(2)")
    with engine.output_to(log), pytest.raises(engine.CommandError) as failed:
        engine.run([sys.executable, "-c", script], what="make", capture=False)
    assert str(failed.value) == f"`make` failed (exit 2): ld: out of memory (its output: {log})"
    assert log.read_text().splitlines() == ["$ make", "compiling", "ld: out of memory"]
    assert capfd.readouterr().out == ""
    # Outside the context, and for captured commands, nothing changes.
    assert engine.run([sys.executable, "-c", "print('x')"], what="x").stdout == "x\n"


def test_without_check_the_result_comes_back_and_input_is_passed() -> None:
    script = "import sys; print(sys.stdin.read()[::-1]); sys.exit(1)"
    result = engine.run([sys.executable, "-c", script], what="rev", input="abc", check=False)
    assert (result.returncode, result.stdout) == (1, "cba\n")
    assert engine.failure("rev", result) == "`rev` failed (exit 1): cba"


def test_a_command_that_does_not_answer_or_cannot_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"^`sleeper`: no answer within 1 s$") as info:
        engine.run([sys.executable, "-c", "import time; time.sleep(30)"], what="sleeper",
                   timeout=1, error=ToolError)
    assert info.value.returncode is None
    with pytest.raises(engine.CommandError, match="^`ghost` could not start: "):
        engine.run([str(tmp_path / "no-such-program")], what="ghost")


def test_the_environment_given_replaces_the_inherited_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYBASE_TEST_INHERITED", "1")
    result = engine.run([sys.executable, "-c", "import os; print(sorted(os.environ))"],
                        what="env", env={"ONLY": "this"})
    assert "PYBASE_TEST_INHERITED" not in result.stdout and "'ONLY'" in result.stdout


# --- PYTHON_BASE_ENGINE: docker (default) or podman for running containers ---------------------

@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `podman` first on PATH that logs its arguments and reports version FAKE_PODMAN_VERSION;
    PYTHON_BASE_ENGINE=podman. Yields the log."""
    log = tmp_path / "podman.log"
    program = tmp_path / "bin" / "podman"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                       '[ "$1" = version ] && echo "${FAKE_PODMAN_VERSION:-4.3.1}"\nexit 0\n')
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{program.parent}:{os.environ['PATH']}")
    monkeypatch.setenv(settings.ENGINE, "podman")
    engine.client.cache_clear()
    yield log
    engine.client.cache_clear()


def test_podman_runs_the_containers_when_chosen(fake_podman: Path) -> None:
    assert engine.client() == str(fake_podman.parent / "bin" / "podman")
    engine.docker("run", "--rm", "python-base:3.13", "true", capture=True)
    assert fake_podman.read_text().splitlines() == ["run --rm python-base:3.13 true"]


def test_podman_version_is_its_client_version_and_must_be_recent(
        fake_podman: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.require() == (4, 3)
    assert "version --format {{.Client.Version}}" in fake_podman.read_text()
    monkeypatch.setenv("FAKE_PODMAN_VERSION", "3.4.4")
    with pytest.raises(engine.EngineError, match="podman is 3.4; need ≥ 4.3"):
        engine.ensure_running()  # never installs or starts dockerd for podman


def test_an_image_podman_does_not_know_is_missing(fake_podman: Path) -> None:
    fake_podman.parent.joinpath("bin", "podman").write_text(
        "#!/bin/sh\necho 'Error: inspecting object: python-base:9: image not known' >&2\n"
        "exit 125\n")
    assert engine.inspect("python-base:9") is None


def test_building_our_images_needs_docker(fake_podman: Path) -> None:
    with pytest.raises(engine.EngineError,
                       match="PYTHON_BASE_ENGINE=podman: images are built with Docker only"):
        engine.docker("build", "--progress=plain", ".")
    assert not fake_podman.exists(), "podman must not have been asked to build"


def test_podman_chosen_but_missing_says_what_to_install(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(settings.ENGINE, "podman")
    engine.client.cache_clear()
    try:
        with pytest.raises(engine.EngineError, match="podman CLI is not installed.*uidmap"):
            engine.client()
    finally:
        engine.client.cache_clear()


def test_an_unknown_engine_is_refused_naming_the_supported_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ENGINE, "containerd")
    engine.client.cache_clear()
    try:
        with pytest.raises(engine.EngineError,
                           match="PYTHON_BASE_ENGINE=containerd: not supported; supported: "
                                 "docker, podman"):
            engine.client()
    finally:
        engine.client.cache_clear()


# --- image inspect ------------------------------------------------------------------------------

def test_inspect_output_is_typed_and_nulls_become_empty() -> None:
    image = engine.ImageInspect.from_json({
        "Id": "sha256:abc", "RepoTags": ["python-base:3.13"], "RepoDigests": None,
        "Size": 126800000,
        "Config": {"User": "10001:10001", "Env": ["PATH=/opt/venv/bin:/usr/bin", "EMPTY="],
                   "Entrypoint": ["/usr/bin/tini", "--"], "Cmd": None, "WorkingDir": "/app",
                   "Labels": None, "ExposedPorts": {"8000/tcp": {}, "443/tcp": {}},
                   "Healthcheck": {"Test": ["CMD", "/usr/local/bin/python-base-healthcheck"]}},
        "RootFS": {"Type": "layers", "Layers": ["sha256:1", "sha256:2"]},
    })
    assert image == engine.ImageInspect(
        id="sha256:abc", repo_tags=["python-base:3.13"], repo_digests=[], labels={},
        env=["PATH=/opt/venv/bin:/usr/bin", "EMPTY="], user="10001:10001",
        entrypoint=["/usr/bin/tini", "--"], cmd=None, workdir="/app",
        healthcheck={"Test": ["CMD", "/usr/local/bin/python-base-healthcheck"]},
        exposed_ports=["443/tcp", "8000/tcp"], stop_signal=None, size=126800000,
        layers=["sha256:1", "sha256:2"])
    assert image.environment == {"PATH": "/opt/venv/bin:/usr/bin", "EMPTY": ""}


def test_an_engine_that_does_not_answer_is_not_a_missing_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(engine.EngineError, match="^`docker image inspect` failed"):
        engine.inspect("python-base:3.13")
