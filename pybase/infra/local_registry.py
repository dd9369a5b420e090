"""A registry on this machine: Debian's docker-registry (distribution 2.8) on 127.0.0.1.

`nox -s publish -- --local` uses one so that a newcomer sees the whole publish flow without a
real registry, and the publish tests start their own (one of them with htpasswd auth). The
packaged configuration listens on every interface and wants htpasswd users, so each registry
gets its own small configuration instead, next to its data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pybase.core import paths, settings
from pybase.core.errors import PybaseError
from pybase.infra import host

DEFAULT_PORT = 5000


class LocalRegistryError(PybaseError):
    """The local registry could not be started."""


@dataclass(frozen=True)
class LocalRegistry:
    address: str   # 127.0.0.1:PORT
    directory: Path
    pid: int

    def stop(self, wait_seconds: float = 10) -> None:
        """Stop this registry (only the process it started), waiting a bounded time."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            _reap(self.pid)
            if not _alive(self.pid):
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
            _reap(self.pid)
        (self.directory / "registry.pid").unlink(missing_ok=True)


def configured() -> tuple[Path, int]:
    """(directory, port) of the --local registry: $PYTHON_BASE_LOCAL_REGISTRY_DIR (default
    <cache>/registry) and $PYTHON_BASE_LOCAL_REGISTRY_PORT (default 5000)."""
    directory = Path(settings.get(settings.LOCAL_REGISTRY_DIR) or paths.cache() / "registry")
    raw = settings.get(settings.LOCAL_REGISTRY_PORT) or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise LocalRegistryError(f"{settings.LOCAL_REGISTRY_PORT}={raw!r}: expected a TCP port number (1-65535)")
    return directory, int(raw)


def stop_configured() -> str:
    directory, port = configured()
    pid_file = directory / "registry.pid"
    if not pid_file.is_file():
        return f"local registry: not running (no {pid_file})"
    LocalRegistry(f"127.0.0.1:{port}", directory, int(pid_file.read_text().strip())).stop()
    return f"local registry at 127.0.0.1:{port}: stopped"


def config_text(address: str, data: Path, htpasswd: Path | None) -> str:
    """The registry's YAML configuration (JSON is YAML): loopback only, deletes allowed."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
        "http": {"addr": address},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "python-base", "path": str(htpasswd)}}
    return json.dumps(config, indent=2) + "\n"


def answers(address: str, timeout: float = 2) -> bool:
    """Whether a registry answers /v2/ at address (401 counts: it is there, wanting auth)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


def start(directory: Path, port: int, htpasswd: Path | None = None,
          wait_seconds: float = 30) -> LocalRegistry:
    """Start docker-registry serving `directory`/data on 127.0.0.1:port; wait until it answers."""
    serve = host.program("docker-registry")
    address = f"127.0.0.1:{port}"
    if answers(address):
        raise LocalRegistryError(f"something already answers at {address}; choose another port "
                                 f"with {settings.LOCAL_REGISTRY_PORT}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "config.yml"
    config.write_text(config_text(address, directory / "data", htpasswd), encoding="utf-8")
    with (directory / "registry.log").open("ab") as log:
        process = subprocess.Popen([serve, "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    (directory / "registry.pid").write_text(f"{process.pid}\n")
    registry = LocalRegistry(address, directory, process.pid)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalRegistryError(f"docker-registry exited with {process.returncode}; see "
                                     f"{directory / 'registry.log'}")
        if answers(address):
            return registry
        time.sleep(0.1)
    registry.stop()
    raise LocalRegistryError(f"docker-registry did not answer at {address} within "
                             f"{wait_seconds:.0f} s; see {directory / 'registry.log'}")


def ensure(directory: Path, port: int) -> LocalRegistry:
    """The registry this directory's pid file names if it still answers, else a new one."""
    pid_file = directory / "registry.pid"
    address = f"127.0.0.1:{port}"
    if pid_file.is_file():
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _alive(pid) and answers(address):
            return LocalRegistry(address, directory, pid)
    return start(directory, port)


def _reap(pid: int) -> None:
    """Collect the exit status if the registry is our own child (else it stays a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
