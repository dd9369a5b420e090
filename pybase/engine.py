"""The container engine: find it, check it, and on a fresh Debian host set one up.

Everything talks to the engine through the `docker` CLI, which honours DOCKER_HOST and is the
only client that drives BuildKit on Engine 20.10.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

MINIMUM_VERSION = (20, 10)
DOCKERD_LOG = Path("/var/log/python-base-dockerd.log")
DOCKERD_PID = Path("/run/python-base-dockerd.pid")
DEBIAN_CLI = "/usr/bin/docker"


class EngineError(RuntimeError):
    """No usable engine, or an engine command failed."""


@functools.cache
def client() -> str:
    """The docker CLI to use: PYTHON_BASE_DOCKER if set, else one that can drive BuildKit.

    A newer CLI without the buildx plugin refuses BuildKit builds, while the 20.10 CLI that
    Debian's docker.io ships has BuildKit built in; prefer that one when the first fails.
    """
    if os.environ.get("PYTHON_BASE_DOCKER"):
        return os.environ["PYTHON_BASE_DOCKER"]
    first = shutil.which("docker") or "docker"
    probe = subprocess.run([first, "buildx", "version"], capture_output=True, check=False)
    if probe.returncode != 0 and Path(DEBIAN_CLI).is_file():
        return DEBIAN_CLI
    return first


def docker(
    *args: str, capture: bool = False, check: bool = True, timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one docker CLI command; BuildKit is on so that RUN --mount works."""
    full_env = {**os.environ, "DOCKER_BUILDKIT": "1", **(env or {})}
    try:
        result = subprocess.run(
            [client(), *args], capture_output=capture, text=True, check=False,
            timeout=timeout, env=full_env,
        )
    except FileNotFoundError:
        raise EngineError(
            "the docker CLI is not installed; on Debian run `nox -s bootstrap` as root "
            "(it installs docker.io) or install a Docker client"
        ) from None
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise EngineError(f"`docker {' '.join(args[:3])} ...` failed ({result.returncode})"
                          + (f": {detail[0]}" if detail else ""))
    return result


def server_version() -> tuple[int, int] | None:
    """The engine's (major, minor), or None when no engine answers."""
    try:
        result = docker("version", "--format", "{{.Server.Version}}",
                        capture=True, check=False, timeout=15)
    except (EngineError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.strip().split(".")[:2]
    return int(major), int(minor)


def require() -> tuple[int, int]:
    """Fail fast, saying how to get an engine, unless one ≥ 20.10 answers."""
    version = server_version()
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
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
    """Use the engine that answers; otherwise install docker.io and start dockerd, then wait."""
    version = server_version()
    if version is not None:
        return require()
    if "DOCKER_HOST" in os.environ:
        return require()  # a remote engine was asked for: starting a local one would be wrong
    if shutil.which("dockerd") is None:
        install_debian_packages(["docker.io"])
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
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


def install_debian_packages(packages: Sequence[str]) -> None:
    """apt-get install what is missing; needs root, and says so instead of failing obscurely."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise EngineError(f"need root to install {' '.join(missing)} (apt-get); run as root "
                          "or install them first")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise EngineError(f"`{' '.join(command)}` failed")


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True, check=False)
    return result.stdout.endswith(" installed")


def image_labels(ref: str) -> dict[str, str] | None:
    """The labels of a local image, or None if the engine does not have it."""
    result = docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref,
                    capture=True, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout) or {}


def image_id(ref: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref, capture=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None
