"""Behaviour under real use, against every built runtime image: secrets from files, health,
signals and PID 1, and a locked-down runtime. Containers are reached only via `docker exec`
and ports published on 127.0.0.1; every wait is bounded; every container is removed."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import (
    APP_UID,
    Image,
    detached,
    docker,
    emulated,
    health,
    patience,
    published_port,
    wait_for,
)

LOCKED_DOWN = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges")


def fast_health(image: Image) -> tuple[str, ...]:
    """Health probes every second, so tests see state changes quickly; the probe's own timeout
    grows with the platform's patience (a probe starts Python, seconds under qemu-user)."""
    timeout = round(3 * patience(image))
    return ("--health-interval=1s", f"--health-timeout={timeout}s", "--health-retries=2")


# Prints, for each variable named on the command line, a digest of its value (never the value),
# its length, and whether NAME_FILE is still set.
PROBE = (
    "import hashlib, os, sys; print('CMD-RAN');"
    "[print(n, hashlib.sha256(os.environb[n.encode()]).hexdigest(),"
    " len(os.environb[n.encode()]), n + '_FILE' in os.environ) for n in sys.argv[1:]]"
)

# A tiny stdlib web app: /healthz answers 503 once /tmp/down exists; / echoes a digest of the
# APP_TOKEN secret so the test can check what the app received without printing it.
WEB_APP = """
import hashlib, http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        down = os.path.exists('/tmp/down')
        body = hashlib.sha256(os.environ.get('APP_TOKEN', '').encode()).hexdigest().encode()
        self.send_response(503 if down and self.path == '/healthz' else 200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
open('/tmp/started', 'w').write('ok')
http.server.ThreadingHTTPServer(('0.0.0.0', 8000), H).serve_forever()
"""


def sha(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


# ---------------------------------------------------------------------------------------------
# Secrets from files: the entrypoint and the file_secrets module, case by case
# ---------------------------------------------------------------------------------------------


@dataclass
class Secrets:
    """Files to mount, variables to set, and what each loaded variable must then hold."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[tuple[Path, str]] = field(default_factory=list)
    expected: dict[str, bytes] = field(default_factory=dict)

    def file(self, name: str, content: bytes, mode: int = 0o644) -> Path:
        path = self.root / name
        path.write_bytes(content)
        path.chmod(mode)
        return path

    def compose(self, variable: str, content: bytes, mode: int = 0o644) -> str:
        """Mounted as Compose and Swarm do: a single file under /run/secrets."""
        target = f"/run/secrets/{variable.lower()}"
        self.mounts.append((self.file(variable, content, mode), target))
        self.env[f"{variable}_FILE"] = target
        return target


def run_loader(image: Image, loader: str, secrets: Secrets, names: list[str],
               *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["run", "--rm", *emulated(image), *extra]
    for key, value in secrets.env.items():
        args += ["-e", f"{key}={value}"]
    for source, target in secrets.mounts:
        args += ["-v", f"{source}:{target}:ro"]
    if loader == "entrypoint":
        args += [image.ref, "python", "-c", PROBE, *names]
    else:  # an app started without our ENTRYPOINT, e.g. by a Kubernetes `command:`
        args += ["--entrypoint", "python", image.ref, "-m", "file_secrets",
                 "python", "-c", PROBE, *names]
    return docker(*args, check=False)


def assert_loaded(result: subprocess.CompletedProcess[str], expected: dict[str, bytes]) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "CMD-RAN"
    got = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    for name, value in expected.items():
        assert got[name] == [sha(value), str(len(value)), "False"], name


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    root = tmp_path / "secrets"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    return Secrets(root)


LOADERS = ["entrypoint", "module"]
SPECIAL = 'sp ace "double" \'single\' $HOME ${X} `cmd` \\back\\slash ünïcødé € 日本'.encode()


def case_plain(s: Secrets) -> None:
    s.compose("DB_PASSWORD", b"s3cr3t-value\n")
    s.expected["DB_PASSWORD"] = b"s3cr3t-value"


def case_only_one_newline_removed(s: Secrets) -> None:
    s.compose("KEEPS_ONE", b"line1\nline2\n\n")
    s.expected["KEEPS_ONE"] = b"line1\nline2\n"
    s.compose("NO_NEWLINE", b"no-newline")
    s.expected["NO_NEWLINE"] = b"no-newline"


def case_several_files(s: Secrets) -> None:
    for i in range(3):
        s.compose(f"MULTI_{i}", f"value-{i}\n".encode())
        s.expected[f"MULTI_{i}"] = f"value-{i}".encode()


def case_special_characters(s: Secrets) -> None:
    s.compose("SPECIAL", SPECIAL + b"\n")
    s.expected["SPECIAL"] = SPECIAL


def case_large_value(s: Secrets) -> None:
    big = (b"0123456789abcdef" * 6144)[: 96 * 1024]  # 96 KiB
    s.compose("LARGE", big)
    s.expected["LARGE"] = big


def case_kubernetes_volume(s: Secrets) -> None:
    # A Kubernetes secret volume: keys are symlinks through ..data to a timestamped directory.
    volume = s.root / "k8s"
    data = volume / "..2026_11_21_00_00_00.000000001"
    data.mkdir(parents=True)
    (data / "api-token").write_bytes(b"k8s-token\n")
    (data / "api-token").chmod(0o444)
    (volume / "..data").symlink_to(data.name)
    (volume / "api-token").symlink_to("..data/api-token")
    for d in (volume, data):
        d.chmod(0o755)
    s.mounts.append((volume, "/etc/app-secrets"))
    s.env["API_TOKEN_FILE"] = "/etc/app-secrets/api-token"
    s.expected["API_TOKEN"] = b"k8s-token"


SUCCESS_CASES: dict[str, Callable[[Secrets], None]] = {
    "plain": case_plain,
    "only-one-newline-removed": case_only_one_newline_removed,
    "several-files": case_several_files,
    "special-characters": case_special_characters,
    "large-96KiB": case_large_value,
    "kubernetes-volume": case_kubernetes_volume,
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", SUCCESS_CASES.values(), ids=SUCCESS_CASES.keys())
def test_secret_is_loaded(runtime_image: Image, loader: str, secrets: Secrets,
                          case: Callable[[Secrets], None]) -> None:
    case(secrets)
    result = run_loader(runtime_image, loader, secrets, list(secrets.expected))
    assert_loaded(result, secrets.expected)


@pytest.mark.every_platform
@pytest.mark.parametrize("loader", LOADERS)
def test_secret_under_arbitrary_uid_and_read_only_root(runtime_image: Image, loader: str,
                                                      secrets: Secrets) -> None:
    secrets.compose("RO_SECRET", b"read-only-ok\n", mode=0o444)
    result = run_loader(runtime_image, loader, secrets, ["RO_SECRET"],
                        "--user", "1000620000:0", *LOCKED_DOWN)
    assert_loaded(result, {"RO_SECRET": b"read-only-ok"})


SECRET_VALUE = b"do-not-print-me-7f3a"


def fail_both_set(s: Secrets) -> tuple[str, str]:
    path = s.compose("BOTH", SECRET_VALUE)
    s.env["BOTH"] = "inline-do-not-print-me"
    return "BOTH_FILE", path


def fail_missing(s: Secrets) -> tuple[str, str]:
    s.env["MISSING_FILE"] = "/run/secrets/not-there"
    return "MISSING_FILE", "/run/secrets/not-there"


def fail_unreadable(s: Secrets) -> tuple[str, str]:
    return "LOCKED_FILE", s.compose("LOCKED", SECRET_VALUE, mode=0o000)


def fail_directory(s: Secrets) -> tuple[str, str]:
    folder = s.root / "folder"
    folder.mkdir(mode=0o755)
    s.mounts.append((folder, "/run/secrets/folder"))
    s.env["FOLDER_FILE"] = "/run/secrets/folder"
    return "FOLDER_FILE", "/run/secrets/folder"


def fail_dangling_symlink(s: Secrets) -> tuple[str, str]:
    volume = s.root / "dangling"
    volume.mkdir(mode=0o755)
    (volume / "token").symlink_to("/nowhere/token")
    s.mounts.append((volume, "/etc/dangling"))
    s.env["DANGLING_FILE"] = "/etc/dangling/token"
    return "DANGLING_FILE", "/etc/dangling/token"


def fail_empty(s: Secrets) -> tuple[str, str]:
    return "EMPTY_FILE", s.compose("EMPTY", b"")


def fail_too_large(s: Secrets) -> tuple[str, str]:
    # Over Linux's 128 KiB per environment string, exec of the CMD would fail (126).
    return "HUGE_FILE", s.compose("HUGE", SECRET_VALUE.ljust(13 << 20, b"x"))


FAILURE_CASES: dict[str, Callable[[Secrets], tuple[str, str]]] = {
    "both-name-and-file": fail_both_set,
    "missing-file": fail_missing,
    "unreadable-mode-000": fail_unreadable,
    "directory": fail_directory,
    "dangling-symlink": fail_dangling_symlink,
    "empty-file": fail_empty,
    "13-MiB-file": fail_too_large,
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", FAILURE_CASES.values(), ids=FAILURE_CASES.keys())
def test_bad_secret_stops_before_the_app(runtime_image: Image, loader: str, secrets: Secrets,
                                          case: Callable[[Secrets], tuple[str, str]]) -> None:
    variable, path = case(secrets)
    result = run_loader(runtime_image, loader, secrets, [], "--user", f"{APP_UID}:{APP_UID}")
    output = result.stdout + result.stderr
    assert result.returncode == 78, output
    assert "CMD-RAN" not in result.stdout, "the app ran despite a bad secret"
    assert variable in result.stderr and path in result.stderr, result.stderr
    assert SECRET_VALUE.decode() not in output
    assert "inline-do-not-print-me" not in output


def test_empty_secret_allowed_when_listed(runtime_image: Image, secrets: Secrets) -> None:
    secrets.compose("OPTIONAL", b"")
    secrets.env["PYTHON_BASE_SECRETS_ALLOW_EMPTY"] = "OPTIONAL"
    assert_loaded(run_loader(runtime_image, "entrypoint", secrets, ["OPTIONAL"]),
                  {"OPTIONAL": b""})


# ---------------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------------


# Straight to 127.0.0.1, whatever proxy variables the test environment carries.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.every_platform
def test_app_becomes_healthy_then_unhealthy(runtime_image: Image) -> None:
    with detached(*emulated(runtime_image), *fast_health(runtime_image),
                  "-e", "HEALTHCHECK_PATH=/healthz", "-p", "127.0.0.1::8000", runtime_image.ref, "python", "-c", WEB_APP) as name:
        wait_for(lambda: health(name) == "healthy", 30 * patience(runtime_image), "healthy")
        assert http_get(published_port(name, 8000), "/healthz")[0] == 200
        docker("exec", name, "touch", "/tmp/down")
        wait_for(lambda: health(name) == "unhealthy", 30 * patience(runtime_image),
                 "unhealthy after the endpoint failed")
        log = docker("inspect", "--format", "{{json .State.Health.Log}}", name).stdout
        assert "503" in log


def test_check_against_a_closed_port_is_unhealthy(runtime_image: Image) -> None:
    with detached(*fast_health(runtime_image), runtime_image.ref, "sleep", "120") as name:
        wait_for(lambda: health(name) == "unhealthy", 30, "unhealthy (nothing listens on 8000)")


@pytest.mark.parametrize("knob", [
    ("-e", "HEALTHCHECK_DISABLE=1"),
    ("-e", "HEALTHCHECK_URL=http://127.0.0.1:8000/"),
    ("-e", "HEALTHCHECK_PORT=8000", "-e", "HEALTHCHECK_PATH=/anything", "-e", "HEALTHCHECK_TIMEOUT=2"),
], ids=["disable", "url", "port-path-timeout"])
def test_health_knobs(runtime_image: Image, knob: tuple[str, ...]) -> None:
    command = ("sleep", "120") if "HEALTHCHECK_DISABLE=1" in knob else ("python", "-c", WEB_APP)
    with detached(*fast_health(runtime_image), *knob, runtime_image.ref, *command) as name:
        wait_for(lambda: health(name) == "healthy", 30, f"healthy with {' '.join(knob)}")


def test_healthcheck_can_be_turned_off_at_run_time(runtime_image: Image) -> None:
    with detached("--no-healthcheck", runtime_image.ref, "sleep", "120") as name:
        assert health(name) == ""


# ---------------------------------------------------------------------------------------------
# Signals and PID 1
# ---------------------------------------------------------------------------------------------


def logs(name: str) -> str:
    result = docker("logs", name)
    return result.stdout + result.stderr


def exit_code(name: str) -> int:
    return int(docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout)


def test_docker_stop_delivers_sigterm_to_the_python_cmd(runtime_image: Image) -> None:
    program = "import time; print('ready'); time.sleep(600)"
    with detached(runtime_image.ref, "python", "-c", program) as name:
        wait_for(lambda: "ready" in logs(name), 20, "the app to start")
        docker("stop", "--time", "30", name, timeout=60)
        # 143 = 128 + SIGTERM: the app died of the signal docker stop sent; a stop that had to
        # fall back to SIGKILL after the 30 s grace period would show 137.
        assert exit_code(name) == 143


def test_sigterm_handler_of_the_app_runs(runtime_image: Image) -> None:
    program = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('graceful shutdown'), sys.exit(0)))\n"
        "print('ready')\n"
        "time.sleep(600)\n"
    )
    with detached(runtime_image.ref, "python", "-c", program) as name:
        wait_for(lambda: "ready" in logs(name), 20, "the app to start")
        docker("stop", "--time", "30", name, timeout=60)
        assert exit_code(name) == 0
        assert "graceful shutdown" in logs(name)


def test_orphaned_children_are_reaped(runtime_image: Image) -> None:
    # The app double-forks: the grandchild outlives its parent, is re-parented to PID 1 and
    # exits. Only an init that reaps (tini) keeps it from lingering as a zombie.
    program = (
        "import os, time\n"
        "for _ in range(5):\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(0.5); os._exit(0)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "print('forked'); time.sleep(600)\n"
    )
    zombies = "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l"
    with detached(runtime_image.ref, "python", "-c", program) as name:
        wait_for(lambda: "forked" in logs(name), 20, "the app to fork")

        def no_orphans_left() -> bool:
            tasks = docker("exec", name, "sh", "-c", "ls -d /proc/[0-9]* | wc -l").stdout
            # tini, the app, and the exec'd shell with its ls/wc: never the five grandchildren
            return int(tasks) <= 5

        wait_for(no_orphans_left, 15, "the orphans to exit")
        assert docker("exec", name, "sh", "-c", zombies).stdout.strip() == "0"


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_of_the_cmd_propagates(runtime_image: Image, code: int) -> None:
    result = docker("run", "--rm", runtime_image.ref, "python", "-c", f"raise SystemExit({code})",
                    check=False)
    assert result.returncode == code


# ---------------------------------------------------------------------------------------------
# Locked-down runtime
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [f"{APP_UID}:{APP_UID}", "1000620000:0"],
                         ids=["our-uid", "arbitrary-uid-openshift"])
def test_real_app_runs_locked_down(runtime_image: Image, secrets: Secrets, user: str) -> None:
    secrets.compose("APP_TOKEN", b"locked-down-token\n", mode=0o444)
    args = [*LOCKED_DOWN, "--user", user, *fast_health(runtime_image),
            "-e", "HEALTHCHECK_PATH=/healthz", "-p", "127.0.0.1::8000"]
    for key, value in secrets.env.items():
        args += ["-e", f"{key}={value}"]
    for source, target in secrets.mounts:
        args += ["-v", f"{source}:{target}:ro"]
    with detached(*args, runtime_image.ref, "python", "-c", WEB_APP) as name:
        wait_for(lambda: health(name) == "healthy", 30, "the locked-down app to be healthy")
        status, body = http_get(published_port(name, 8000), "/")
        assert (status, body.decode()) == (200, sha(b"locked-down-token"))
        assert docker("exec", name, "id", "-u").stdout.strip() == user.split(":")[0]
        assert docker("exec", name, "touch", "/app/x", check=False).returncode != 0
        assert docker("exec", name, "touch", "/tmp/x", check=False).returncode == 0
        effective = docker("exec", name, "grep", "^CapEff", "/proc/1/status").stdout.split()[1]
        assert int(effective, 16) == 0
        no_new_privs = docker("exec", name, "grep", "^NoNewPrivs", "/proc/1/status").stdout
        assert no_new_privs.split()[1] == "1"

