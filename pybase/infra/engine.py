"""The container engine: find it, check it, run commands, inspect images; on a fresh Debian host
set one up.

Everything talks to the engine through the `docker` CLI, which honours DOCKER_HOST and is the
only client that drives BuildKit on Engine 20.10. `client()` is the one place that picks the CLI:
PYTHON_BASE_ENGINE=podman sends the commands that run containers (tests, bench) to `podman`
instead, whose CLI takes the same arguments; building our images keeps requiring Docker.

`run()` is the one way pybase runs an external program (the engine CLI and the tools: debsbom,
cyclonedx-py, pip-audit, mmdebstrap, apt): one rule for failures, so that every message reads
"`<what>` failed (exit N): <last non-empty stderr line>" or "`<what>`: no answer within N s".
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pybase.core import settings
from pybase.core.errors import PybaseError

MINIMUM_VERSION = (20, 10)
PODMAN_MINIMUM_VERSION = (4, 3)  # Debian 12's; `podman healthcheck run`, keep-id:uid=
DOCKERD_LOG = Path("/var/log/python-base-dockerd.log")
DOCKERD_PID = Path("/run/python-base-dockerd.pid")
DEBIAN_CLI = "/usr/bin/docker"
ENGINES = ("docker", "podman")


class CommandError(PybaseError):
    """A command failed, could not start or did not answer in time.

    Each module raises its own subclass (run(..., error=...)), so that callers and the CLI catch
    the error of the step that failed. `returncode` is None when the command never finished.
    """

    returncode: int | None = None


class EngineError(CommandError):
    """No usable engine, or an engine command failed."""


def failure(what: str, result: subprocess.CompletedProcess[str], log: Path | None = None
            ) -> str:
    """The one message for a command that exited non-zero (its output in `log`, if given)."""
    if log is not None:
        return f"`{what}` failed (exit {result.returncode}): {_last_line(log)} (its output: {log})"
    lines = [ln.strip() for ln in (result.stderr or result.stdout or "").splitlines()
             if ln.strip()]
    if result.stderr is None and result.stdout is None:
        detail = "its output is above"
    else:
        detail = lines[-1] if lines else "no error output"
    return f"`{what}` failed (exit {result.returncode}): {detail}"


T = TypeVar("T")

# Where commands that are not captured write, when not to the terminal (output_to).
_LOG: ContextVar[Path | None] = ContextVar("pybase_command_log", default=None)


@contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Commands run with capture=False in this context (the current thread) append their output
    to `log` instead of the terminal: steps that run at the same time keep their logs apart.
    A failure then quotes the log's last line and names the file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("", encoding="utf-8")
    token = _LOG.set(log)
    try:
        yield
    finally:
        _LOG.reset(token)


def logged(name: str, log: Path, action: Callable[[], T], echo: Callable[[str], None],
           tail: int = 60) -> Callable[[], T]:
    """`action` as a step with its own log (output_to): a line when it starts, and when it
    fails the log's last `tail` lines on the terminal, since a CI job's output is often all
    that is kept."""
    def step() -> T:
        with output_to(log):
            echo(f"{name}: started (output: {log})")
            try:
                return action()
            except Exception:
                lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-tail:]
                echo("\n".join([f"{name} failed; the end of {log}:", *lines]))
                raise
    return step


def _last_line(log: Path) -> str:
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 8192))
        lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def run(
    args: Sequence[str], *, what: str, timeout: float | None = None,
    env: Mapping[str, str] | None = None, input: str | None = None, check: bool = True,
    capture: bool = True, cwd: Path | None = None, error: type[CommandError] = CommandError,
) -> subprocess.CompletedProcess[str]:
    """Run one command (text mode). `env` replaces the environment when given.

    With check, a non-zero exit raises `error`; a timeout or a program that cannot start always
    does (there is no result to return). capture=False lets the output through to the terminal,
    or to the log that output_to() names.
    """
    log = None if capture else _LOG.get()
    try:
        with contextlib.ExitStack() as stack:
            output: dict[str, Any] = {"capture_output": capture}
            if log is not None:
                out = stack.enter_context(log.open("a", encoding="utf-8"))
                out.write(f"$ {what}\n")
                out.flush()
                output = {"stdout": out, "stderr": subprocess.STDOUT}
            result = subprocess.run(
                list(args), text=True, check=False, timeout=timeout, input=input, cwd=cwd,
                env=dict(env) if env is not None else None, **output,
            )
    except subprocess.TimeoutExpired:
        raise error(f"`{what}`: no answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise error(f"`{what}` could not start: {exc.strerror or exc}: {args[0]}") from None
    if check and result.returncode != 0:
        failed = error(failure(what, result, log))
        failed.returncode = result.returncode
        raise failed
    return result


def chosen() -> str:
    """The engine named by PYTHON_BASE_ENGINE (default docker); anything else is refused."""
    name = settings.get(settings.ENGINE) or "docker"
    if name not in ENGINES:
        raise EngineError(f"{settings.ENGINE}={name}: not supported; supported: " + ", ".join(ENGINES))
    return name


@functools.cache
def client() -> str:
    """The engine CLI to use: podman when chosen, else PYTHON_BASE_DOCKER if set, else a docker
    CLI that drives BuildKit.

    A newer CLI without the buildx plugin refuses BuildKit builds, while the 20.10 CLI that
    Debian's docker.io ships has BuildKit built in; prefer that one when the first fails.
    """
    if chosen() == "podman":
        podman = shutil.which("podman")
        if podman is None:
            raise EngineError(f"{settings.ENGINE}=podman but the podman CLI is not installed; on "
                              "Debian: apt-get install podman uidmap slirp4netns fuse-overlayfs")
        return podman
    if settings.get(settings.DOCKER):
        return os.environ[settings.DOCKER]
    first = shutil.which("docker")
    if first is None:
        if Path(DEBIAN_CLI).is_file():
            return DEBIAN_CLI
        raise EngineError(
            "the docker CLI is not installed; on Debian run `nox -s bootstrap` as root "
            "(it installs docker.io) or install a Docker client"
        )
    probe = run([first, "buildx", "version"], what="docker buildx version", check=False,
                timeout=30, error=EngineError)
    if probe.returncode != 0 and Path(DEBIAN_CLI).is_file():
        return DEBIAN_CLI
    return first


def docker(
    *args: str, capture: bool = False, check: bool = True, timeout: float | None = None,
    env: dict[str, str] | None = None, what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one docker CLI command; BuildKit is on so that RUN --mount works.

    `what` names the command in errors; by default the CLI's subcommand (`docker image rm`).
    """
    if what is None:
        what = "docker " + " ".join(args[:2] if args[:1] == ("image",) else args[:1])
    if args[:1] == ("build",) and chosen() == "podman":
        # Our Dockerfiles are written for Engine 20.10's BuildKit (secret and cache mounts, its
        # cache semantics, `--progress`): one builder, so that what CI tests is what ships.
        raise EngineError(f"`{what}` with {settings.ENGINE}=podman: images are built with Docker "
                          f"only (BuildKit); unset {settings.ENGINE} for `pybase build`/`bootstrap`")
    return run([client(), *args], what=what, timeout=timeout, check=check, capture=capture,
               env={**os.environ, "DOCKER_BUILDKIT": "1", **(env or {})}, error=EngineError)


def server_version() -> tuple[int, int] | None:
    """The engine's (major, minor), or None when no engine answers."""
    # Rootless podman has no server: its CLI is the engine.
    side = "Client" if chosen() == "podman" else "Server"
    try:
        result = docker("version", "--format", f"{{{{.{side}.Version}}}}",
                        capture=True, check=False, timeout=15)
    except EngineError:
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.strip().split(".")[:2]
    return int(major), int(minor)


def require() -> tuple[int, int]:
    """Fail fast, saying how to get an engine, unless Docker ≥ 20.10 (or podman ≥ 4.3) answers."""
    if chosen() == "podman":
        client()  # a podman that is not installed says so, and what to install
        version = server_version()
        if version is None:
            raise EngineError(f"{settings.ENGINE}=podman: `podman version` does not answer")
        if version < PODMAN_MINIMUM_VERSION:
            raise EngineError(f"podman is {version[0]}.{version[1]}; need ≥ 4.3")
        return version
    version = server_version()
    where = settings.get(settings.DOCKER_HOST) or "unix:///var/run/docker.sock"
    if version is None:
        raise EngineError(
            f"no Docker Engine answers at {where}. Start one with `nox -s engine` "
            "(as root: installs Debian's docker.io if needed and starts dockerd), "
            "or point DOCKER_HOST at a running engine"
        )
    if version < MINIMUM_VERSION:
        raise EngineError(f"the engine at {where} is {version[0]}.{version[1]}; need ≥ 20.10")
    return version


def ensure_running(wait_seconds: float = 60) -> tuple[int, int]:
    """Use the engine that answers; otherwise start dockerd (`pybase host engine` installs it as
    root), then wait."""
    version = server_version()
    if version is not None or chosen() == "podman":
        return require()  # podman needs no daemon: installed or not, there is nothing to start
    if settings.get(settings.DOCKER_HOST):
        return require()  # a remote engine was asked for: starting a local one would be wrong
    from pybase.infra import host  # host runs its programs through this module

    dockerd = host.program("dockerd")
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        process = subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    DOCKERD_PID.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd exited with {process.returncode}; see {DOCKERD_LOG}")
        if server_version() is not None:
            return require()
        time.sleep(0.5)
    raise EngineError(f"dockerd did not answer within {wait_seconds:.0f} s; see {DOCKERD_LOG}")


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageInspect:
    """What the engine knows about a local image (`docker image inspect`), typed."""

    id: str                      # sha256:...
    repo_tags: list[str]
    repo_digests: list[str]
    labels: dict[str, str]
    env: list[str]
    user: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    workdir: str
    healthcheck: dict[str, Any] | None
    exposed_ports: list[str]
    stop_signal: str | None
    size: int
    layers: list[str]            # RootFS.Layers diff ids
    platform: str = "linux/amd64"  # Os/Architecture, as `docker build --platform` takes it

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageInspect:
        """One element of `docker image inspect`'s array; the engine writes null for empties."""
        config = data.get("Config") or {}
        return cls(
            id=str(data.get("Id") or ""),
            repo_tags=list(data.get("RepoTags") or []),
            repo_digests=list(data.get("RepoDigests") or []),
            labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
            env=list(config.get("Env") or []),
            user=str(config.get("User") or ""),
            entrypoint=config.get("Entrypoint"),
            cmd=config.get("Cmd"),
            workdir=str(config.get("WorkingDir") or ""),
            healthcheck=config.get("Healthcheck"),
            exposed_ports=sorted(config.get("ExposedPorts") or {}),
            stop_signal=config.get("StopSignal") or None,
            size=int(data.get("Size") or 0),
            layers=list((data.get("RootFS") or {}).get("Layers") or []),
            platform=f"{data.get('Os') or 'linux'}/{data.get('Architecture') or 'amd64'}",
        )

    @property
    def environment(self) -> dict[str, str]:
        """`env` as a mapping (a variable without `=` maps to the empty string)."""
        return {name: value for name, _, value in (item.partition("=") for item in self.env)}


def inspect(ref: str) -> ImageInspect | None:
    """The image `ref` (a tag or an id), or None when the engine does not have it.

    Any other failure (no engine answering) raises EngineError: a missing engine must never look
    like a missing image.
    """
    result = docker("image", "inspect", ref, capture=True, check=False)
    if result.returncode != 0:
        if any(m in result.stderr.lower() for m in ("no such image", "image not known")):
            return None  # docker's and podman's words for it
        raise EngineError(failure("docker image inspect", result))
    found = json.loads(result.stdout)
    return ImageInspect.from_json(found[0]) if found else None


def image_labels(ref: str) -> dict[str, str] | None:
    """The labels of a local image, or None if the engine does not have it."""
    found = inspect(ref)
    return found.labels if found else None


def image_id(ref: str) -> str | None:
    found = inspect(ref)
    return found.id if found else None
