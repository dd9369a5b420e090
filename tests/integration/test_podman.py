"""The images under rootless Podman, each check side by side with Docker.

Every check runs twice: `docker` through the project's engine, `podman` as an unprivileged host
user made for the tests (`pybase-podman`, its own subuid/subgid range and XDG_RUNTIME_DIR), into
whose store every selected image is loaded from the engine (`docker save | podman load`).

Networking: every container runs with `--network none`. The checks need only the container's
own loopback (the healthcheck's tiny server listens on 127.0.0.1 inside it), and rootless
Podman's default slirp4netns cannot open /dev/net/tun on these machines. `podman pull` itself
runs in the host's network namespace, so it reaches the test registry on 127.0.0.1.

Known differences, checked here: Podman's health timers need systemd (here the status moves only
through `podman healthcheck run`); `podman build` writes OCI images, which drop HEALTHCHECK,
unless `--format docker`; a 0600 secret owned by the host user is readable by the app only
with `--userns=keep-id:uid=10001,gid=10001`.

`nox -s test` installs podman and its helpers as root (pybase/infra/host.py); a missing one is an
error naming its package, never a skip. Only a non-root run skips: it cannot make the test user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import APP_UID, Image, docker, free_port, wait_for

from pybase.infra import engine, host, local_registry

pytestmark = pytest.mark.image

USER = "pybase-podman"
# A fixed range of its own, above SUB_UID_MIN's default allocations; 65536 ids cover UID 10001.
SUBID_RANGE = "524288-589823"
RUNTIME_DIR = Path(f"/tmp/{USER}-run")
LOCKED_DOWN = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges")
READY = "import time; print('ready', flush=True); time.sleep(600)"
SERVER = ("python", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/tmp")
DOWNSTREAM = """\
FROM {base}
USER root
RUN mkdir -p /app/pkg && echo 'print("downstream ok")' > /app/pkg/main.py
USER 10001:10001
CMD ["python", "/app/pkg/main.py"]
"""


@dataclass(frozen=True)
class Engine:
    """One engine's CLI, with the same arguments under both."""

    name: str

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        if self.name == "docker":
            return docker(*args, check=check, timeout=timeout)
        result = engine.run(podman_command(*args), what=f"podman {args[0]}", timeout=timeout,
                            check=False, cwd=Path("/"))
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:4])} -> {result.returncode}\n"
                                 f"{result.stderr[-2000:]}")
        return result

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self("run", "--rm", "--network", "none", *args, check=check)

    @property
    def remove(self) -> tuple[str, ...]:
        # podman rm -f waits 10 s for a stop unless told otherwise; docker kills at once.
        return ("rm", "-f") if self.name == "docker" else ("rm", "-f", "-t", "0")

    def logs(self, name: str) -> str:
        result = self("logs", name)
        return result.stdout + result.stderr

    def health(self, name: str) -> str:
        if self.name == "podman":
            # No systemd timers here: run the image's check once, as a timer would.
            self("healthcheck", "run", name, check=False, timeout=30)
        return self("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()


def podman_command(*args: str) -> list[str]:
    """podman as the test user, with its own runtime directory and nothing of our environment."""
    home = f"/home/{USER}"
    return [host.program("runuser"), "-u", USER, "--", host.program("env"), "-i", f"HOME={home}",
            f"XDG_RUNTIME_DIR={RUNTIME_DIR}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            host.program("podman"), *args]


def create_user() -> None:
    """The test user, idempotently: account, subordinate ids, overlay store, runtime directory."""
    if engine.run([host.program("id"), "-u", USER], what="id", check=False).returncode != 0:
        engine.run([host.program("useradd"), "--create-home", "--shell", "/usr/sbin/nologin",
                    "--comment", "python-base rootless podman tests", USER], what="useradd")
    for kind in ("uid", "gid"):
        listed = Path(f"/etc/sub{kind}")
        lines = listed.read_text().splitlines() if listed.exists() else []
        if not any(line.startswith(f"{USER}:") for line in lines):
            engine.run([host.program("usermod"), f"--add-sub{kind}s", SUBID_RANGE, USER], what="usermod")
    # Native overlay (kernel ≥ 5.13): /dev/fuse is root-only here, and vfs would copy every
    # layer for every container.
    config = Path(f"/home/{USER}/.config/containers/storage.conf")
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text('[storage]\ndriver = "overlay"\n')
        shutil.chown(config.parent.parent, USER, USER)
        shutil.chown(config.parent, USER, USER)
        shutil.chown(config, USER, USER)
    RUNTIME_DIR.mkdir(mode=0o700, exist_ok=True)
    RUNTIME_DIR.chmod(0o700)
    shutil.chown(RUNTIME_DIR, USER, USER)


@pytest.fixture(scope="session")
def podman_user() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("rootless Podman: making its test user needs root (`nox -s test` as root)")
    host.program("newuidmap")  # rootless podman needs it; missing: an error naming uidmap
    create_user()
    podman = Engine("podman")
    podman("info", "--format", "{{.Host.Security.Rootless}}")
    yield podman
    podman("image", "prune", "-f", check=False)  # earlier builds' images left untagged by load
    # The user's rootless pause process, started by its first podman call, holds its namespaces.
    pause = RUNTIME_DIR / "libpod" / "tmp" / "pause.pid"
    if pause.exists() and (pid := int(pause.read_text().strip() or 0)) > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


_LOADED: dict[str, str] = {}


def loaded(podman: Engine, image: Image) -> str:
    """The image in the test user's store, loaded once per session (skipped when the same image
    ID is already there)."""
    if image.ref not in _LOADED:
        wanted = str(image.inspect()["Id"]).removeprefix("sha256:")
        there = podman("image", "inspect", "--format", "{{.Id}}", image.ref, check=False)
        if there.stdout.strip() != wanted:
            with subprocess.Popen([engine.client(), "save", image.ref],
                                  stdout=subprocess.PIPE) as save:
                load = subprocess.run(podman_command("load", "-q"), stdin=save.stdout,
                                      capture_output=True, text=True, timeout=300, cwd="/",
                                      check=False)
            assert save.returncode == 0 and load.returncode == 0, load.stderr[-2000:]
        _LOADED[image.ref] = wanted
    return image.ref


@pytest.fixture(params=["docker", "podman"])
def cli(request: pytest.FixtureRequest) -> Engine:
    if request.param == "podman":
        return request.getfixturevalue("podman_user")  # type: ignore[no-any-return]
    return Engine("docker")


def ref_in(cli: Engine, image: Image) -> str:
    return loaded(cli, image) if cli.name == "podman" else image.ref


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory the test user can read (pytest's own tmp_path is root's, mode 0700)."""
    with tempfile.TemporaryDirectory(prefix="pybase-podman-") as tmp:
        path = Path(tmp)
        path.chmod(0o755)
        yield path


@pytest.fixture
def running(cli: Engine) -> Iterator[list[str]]:
    """Names of containers a test starts; all removed however it ends."""
    names: list[str] = []
    yield names
    for name in names:
        cli(*cli.remove, name, check=False)


def start(cli: Engine, running: list[str], *args: str) -> str:
    name = f"pybase-podman-test-{uuid.uuid4().hex[:10]}"
    running.append(name)
    cli("run", "-d", "--name", name, "--network", "none", *args)
    return name


# ---------------------------------------------------------------------------------------------
# Every selected image
# ---------------------------------------------------------------------------------------------


def test_runs_as_the_numeric_non_root_user(cli: Engine, image: Image) -> None:
    result = cli.run(ref_in(cli, image), "sh", "-c", "id -u; id -g")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(APP_UID), str(APP_UID)]
    config = cli("image", "inspect", "--format", "{{.Config.User}}", ref_in(cli, image))
    assert config.stdout.strip() == f"{APP_UID}:{APP_UID}"


def test_tini_is_pid_1_and_the_venv_first_on_path(cli: Engine, image: Image) -> None:
    script = "tr '\\0' ' ' < /proc/1/cmdline; echo; echo \"$PATH\"; command -v python"
    result = cli.run(ref_in(cli, image), "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    pid1, path, python = result.stdout.splitlines()
    assert pid1.split()[:3] == ["/usr/bin/tini", "--", "/usr/local/bin/python-base-entrypoint"]
    assert path.split(":")[0] == "/opt/venv/bin" and python == "/opt/venv/bin/python"


def test_locked_down_runtime(cli: Engine, image: Image) -> None:
    probe = ("import pathlib; s = pathlib.Path('/proc/self/status').read_text();"
             "print(s.split('CapEff:')[1].split()[0], s.split('NoNewPrivs:')[1].split()[0]);"
             "pathlib.Path('/tmp/ok').write_text('x')\n"
             "try: open('/app/x', 'w')\nexcept OSError as e: print(e.strerror)")
    result = cli.run(*LOCKED_DOWN, ref_in(cli, image), "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["0000000000000000 1", "Read-only file system"]


def test_secret_from_file_and_missing_file(cli: Engine, image: Image, work: Path) -> None:
    secret = work / "db"
    secret.write_bytes(b"line1\nline2\n\n")  # exactly one trailing newline is removed
    secret.chmod(0o644)
    show = "import os; print(repr(os.environ['DB']), 'DB_FILE' in os.environ)"
    ref = ref_in(cli, image)
    result = cli.run("-e", "DB_FILE=/run/secrets/db", "-v", f"{secret}:/run/secrets/db:ro", ref,
                     "python", "-c", show)
    assert (result.returncode, result.stdout) == (0, "'line1\\nline2\\n' False\n"), result.stderr
    missing = cli.run("-e", "DB_FILE=/run/secrets/none", ref, "python", "-c", "print('CMD-RAN')")
    assert missing.returncode == 78 and "CMD-RAN" not in missing.stdout
    assert "DB_FILE=/run/secrets/none" in missing.stderr


# ---------------------------------------------------------------------------------------------
# Runtime images: lifecycle, health, downstream build
# ---------------------------------------------------------------------------------------------


def test_stop_ends_the_app_with_sigterm_in_bounded_time(cli: Engine, runtime_image: Image,
                                                        running: list[str]) -> None:
    name = start(cli, running, ref_in(cli, runtime_image), "python", "-c", READY)
    wait_for(lambda: "ready" in cli.logs(name), 20, "the app to start")
    began = time.monotonic()
    cli("stop", "--time", "30", name, timeout=60)
    took = time.monotonic() - began
    # 143 = 128 + SIGTERM: tini passed the signal on; a SIGKILL after the grace time gives 137.
    assert cli("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "143"
    assert took < 10, f"stop took {took:.1f} s"


@pytest.mark.parametrize("serving", [True, False], ids=["server-healthy", "none-unhealthy"])
def test_healthcheck(cli: Engine, runtime_image: Image, running: list[str], serving: bool) -> None:
    command = SERVER if serving else ("sleep", "120")
    name = start(cli, running, "--health-interval=1s", "--health-retries=1",
                 ref_in(cli, runtime_image), *command)
    want = "healthy" if serving else "unhealthy"
    wait_for(lambda: cli.health(name) == want, 30, want)


def test_secret_owned_by_the_host_user_needs_keep_id(podman_user: Engine,
                                                     runtime_image: Image, work: Path) -> None:
    secret = work / "token"
    secret.write_text("host-user-token\n")
    secret.chmod(0o600)
    shutil.chown(secret, USER, USER)
    ref = loaded(podman_user, runtime_image)
    args = ("-e", "TOKEN_FILE=/run/secrets/token", "-v", f"{secret}:/run/secrets/token:ro")
    show = ("python", "-c", "import os; print(os.environ['TOKEN'], os.getuid())")
    # The host user is root in its default user namespace; UID 10001 is a subordinate id.
    denied = podman_user.run(*args, ref, *show)
    assert denied.returncode == 78 and "permission denied" in denied.stderr
    kept = podman_user.run(f"--userns=keep-id:uid={APP_UID},gid={APP_UID}", *args, ref, *show)
    assert (kept.returncode, kept.stdout) == (0, f"host-user-token {APP_UID}\n"), kept.stderr


def test_downstream_build(cli: Engine, runtime_image: Image, work: Path) -> None:
    (work / "Containerfile").write_text(DOWNSTREAM.format(base=runtime_image.ref))
    (work / "Containerfile").chmod(0o644)
    tag = f"pybase-podman-downstream:{uuid.uuid4().hex[:10]}"
    build: tuple[str, ...]
    if cli.name == "docker":
        build = ("build", "-q", "-f", str(work / "Containerfile"), "-t", tag, str(work))
    else:
        loaded(cli, runtime_image)
        # Buildah writes OCI images by default, which have no HEALTHCHECK: ours would be lost.
        build = ("build", "-q", "--format", "docker", "--network", "none", "-t", tag, str(work))
    try:
        cli(*build, timeout=300)
        assert cli.run(tag).stdout == "downstream ok\n"
        config = cli("image", "inspect", "--format",
                     "{{.Config.User}} {{index .Config.Healthcheck.Test 1}}", tag).stdout
        assert config.split() == [f"{APP_UID}:{APP_UID}", "/usr/local/bin/python-base-healthcheck"]
    finally:
        cli("image", "rm", "-f", tag, check=False)


# ---------------------------------------------------------------------------------------------
# A published tag, pulled from the local registry
# ---------------------------------------------------------------------------------------------



@pytest.fixture
def published(runtime_image: Image) -> Iterator[str]:
    """The runtime image pushed by Docker to a registry on 127.0.0.1; its reference there."""
    runtime_image.inspect()
    with tempfile.TemporaryDirectory(prefix="pybase-podman-registry-") as tmp:
        server = local_registry.start(Path(tmp), free_port())
        ref = f"{server.address}/platform/python-base:{runtime_image.id}"
        try:
            docker("tag", runtime_image.ref, ref)
            docker("push", ref)
            docker("image", "rm", ref)  # so that Docker's pull below really pulls
            yield ref
        finally:
            docker("image", "rm", ref, check=False)
            server.stop()


def test_pull_a_published_tag_and_run_it(cli: Engine, published: str) -> None:
    if cli.name == "docker":
        cli("pull", published, timeout=300)
    else:
        # The registry speaks plain HTTP; podman pulls from the host's network namespace.
        cli("pull", "--tls-verify=false", published, timeout=300)
    try:
        result = cli.run(published, "python", "-c", "import os; print(os.getuid())")
        assert (result.returncode, result.stdout) == (0, f"{APP_UID}\n"), result.stderr
    finally:
        cli("image", "rm", published, check=False)
