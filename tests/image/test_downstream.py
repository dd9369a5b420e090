"""The downstream contract (README, "Using the images downstream"), and no secret leaks.

Example projects under tests/downstream/ are built against every freshly built runtime image
(`--build-arg BASE=python-base:<key>`), the way an application team would build them:

  webapp/         pip install of a pinned pure-Python dependency (bottle) with the optional
                  `build-ca` secret; a token read from APP_TOKEN_FILE (mounted like Compose/Swarm
                  secrets); HEALTHCHECK_PATH=/healthz; runs as 10001 on a read-only root filesystem
  wheels/         a C extension compiled in the -build image, its venv copied into the runtime image
  embed/          uWSGI (embeds the interpreter) compiled in -build, run on the runtime image with
                  libpython3.X.so copied along
  secret-probe/   a RUN that uses a random per-run BuildKit secret: the value must be in no layer,
                  not in the history and not in the image config

One build per image per module (module-scoped fixtures); BuildKit's cache makes rebuilds cheap.
Every image and container created here is removed afterwards, also when a test fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import support
from support import (
    APP_UID,
    MATRIX,
    Image,
    build_ca,
    detached,
    docker,
    published_port,
    wait_for,
)

from pybase.core import matrix, tags
from pybase.infra import emulation, engine

pytestmark = pytest.mark.image

EXAMPLES = Path(__file__).resolve().parents[1] / "downstream"
BUILD_TIMEOUT = 900  # seconds: a cold wheels build compiles markupsafe and fetches setuptools
HEALTHY_TIMEOUT = 60
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----",
                      re.DOTALL)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def build(context: Path, tag: str, platform: str, build_args: dict[str, str],
          extra_secrets: dict[str, Path] | None = None, patience: float = 1.0) -> None:
    """`docker build` with BuildKit (RUN --mount needs it) for the base's platform; the full
    log on failure."""
    args = ["build", "--progress=plain", "--platform", platform, "--tag", tag]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    ca = build_ca()
    all_secrets = {**({"build-ca": ca} if ca else {}), **(extra_secrets or {})}
    for secret_id, src in all_secrets.items():
        args += ["--secret", f"id={secret_id},src={src}"]
    result = engine.docker(*args, str(context), capture=True, check=False,
                           timeout=BUILD_TIMEOUT * patience)
    if result.returncode != 0:
        pytest.fail(f"building {context.name} ({tag}) failed ({result.returncode}):\n"
                    f"{result.stderr[-6000:]}", pytrace=False)


@dataclass(frozen=True)
class Built:
    ref: str
    base: Image


@pytest.fixture(scope="module")
def built_images() -> Iterator[list[str]]:
    """Every image tag this module creates, removed at the end whatever happened."""
    created: list[str] = []
    try:
        yield created
    finally:
        for ref in created:
            docker("rmi", "--force", ref, check=False)


def build_example(name: str, base: Image, created: list[str],
                  build_args: dict[str, str] | None = None,
                  extra_secrets: dict[str, Path] | None = None) -> Built:
    base.inspect()  # a missing base image fails here, with how to build it
    ref = f"pybase-downstream-{name}:{base.target.name}-{uuid.uuid4().hex[:8]}"
    created.append(ref)  # before building: a half-finished build may still have tagged it
    emulated = emulation.environment(base.target.arch)  # QEMU_CPU, as the examples suggest
    build(EXAMPLES / name, ref, base.target.platform,
          {"BASE": base.ref, **emulated, **(build_args or {})}, extra_secrets,
          support.patience(base))
    return Built(ref, base)


def run(built: Built, *cmd: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """A one-off container of the built example (through its entrypoint), removed when it
    exits."""
    return docker("run", "--rm", *(["--user", user] if user else []), *support.emulated(built.base),
                  built.ref, *cmd, check=False, timeout=60 * support.patience(built.base))


def inspect(ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(docker("image", "inspect", ref).stdout)[0]
    return data


def history(ref: str) -> str:
    return docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref).stdout


@dataclass
class Layer:
    diff_id: str
    members: dict[str, int]  # path in the layer -> size
    found: set[bytes]  # the needles this layer contains


def _scan(stream: IO[bytes], needles: Iterable[bytes], digest: Any = None) -> set[bytes]:
    """The needles that occur in the stream, read in chunks (a needle may straddle two)."""
    wanted = {n for n in needles if n}
    overlap = max((len(n) for n in wanted), default=1) - 1
    found: set[bytes] = set()
    tail = b""
    while chunk := stream.read(1 << 20):
        if digest is not None:
            digest.update(chunk)
        window = tail + chunk
        found |= {n for n in wanted - found if n in window}
        tail = window[-overlap:] if overlap else b""
    return found


def saved_image(ref: str, needles: Iterable[bytes], workdir: Path) -> tuple[list[Layer], bytes]:
    """`docker save` the image; scan every layer's bytes (uncompressed tar) for the needles.

    Returns the layers in order (with their diff IDs, recomputed) and the image config's bytes.
    """
    needles = list(needles)
    archive = workdir / f"{uuid.uuid4().hex}.tar"
    docker("save", "--output", str(archive), ref, timeout=300)
    try:
        with tarfile.open(archive) as outer:
            manifest = json.load(_member(outer, "manifest.json"))[0]
            config = _member(outer, manifest["Config"]).read()
            layers = []
            for name in manifest["Layers"]:
                digest = hashlib.sha256()
                found = _scan(_member(outer, name), needles, digest)
                with tarfile.open(fileobj=_member(outer, name)) as inner:
                    members = {m.name.removeprefix("./"): m.size for m in inner.getmembers()}
                layers.append(Layer(f"sha256:{digest.hexdigest()}", members, found))
    finally:
        archive.unlink(missing_ok=True)
    return layers, config


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = archive.extractfile(name)
    assert stream is not None, f"{name} missing from the saved image"
    return stream


def added_layers(layers: list[Layer], base: Image) -> list[Layer]:
    """The layers the downstream build added on top of its base image."""
    base_ids = base.inspect()["RootFS"]["Layers"]
    assert [layer.diff_id for layer in layers[:len(base_ids)]] == base_ids, \
        "the image does not start with its base image's layers"
    return layers[len(base_ids):]


def pem_certificates(data: bytes) -> dict[bytes, bytes]:
    """DER bytes -> base64 body (newlines removed) of each PEM certificate in `data`."""
    certs = {}
    for match in PEM_CERT.finditer(data):
        body = b"".join(match.group(1).split())
        certs[base64.b64decode(body)] = body
    return certs


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """GET on the published 127.0.0.1 port, bypassing any proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def wait_healthy(name: str, patience: float = 1.0) -> None:
    """Poll the container's health status until `healthy`; fail with its logs otherwise."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT * patience
    status = "unknown"
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
        status = state.get("Health", {}).get("Status", "none")
        if status == "healthy":
            return
        if not state["Running"]:
            break
        time.sleep(0.5)
    logs = docker("logs", name, check=False)
    health = docker("inspect", "--format", "{{json .State.Health}}", name, check=False)
    pytest.fail(f"{name} not healthy within {HEALTHY_TIMEOUT * patience:.0f} s (status {status})\n"
                f"logs:\n{logs.stdout}{logs.stderr}\nhealth: {health.stdout}", pytrace=False)


def process_status(name: str, pid: str) -> dict[str, str]:
    result = docker("exec", name, "cat", f"/proc/{pid}/status")
    return dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)


# ---------------------------------------------------------------------------------------------
# webapp: pure-Python dependency, file secret, healthcheck, unprivileged user
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def webapp(runtime_image: Image, built_images: list[str]) -> Built:
    return build_example("webapp", runtime_image, built_images)


@dataclass(frozen=True)
class Running:
    name: str
    url: str
    token: str


def start_webapp(built: Built, token_file: Path, name: str) -> str:
    """Run it hardened, the token mounted as a Compose/Swarm secret; returns the base URL."""
    docker(
        "run", "--detach", "--name", name,
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--volume", f"{token_file}:/run/secrets/app_token:ro",
        "--env", "APP_TOKEN_FILE=/run/secrets/app_token",
        # Under emulation each probe is a Python start of seconds: probing every second would
        # keep a core busy for as long as the module's tests run.
        "--health-interval", f"{support.patience(built.base):.0f}s",
        "--health-timeout", f"{5 * support.patience(built.base):.0f}s", "--health-retries", "3",
        "--health-start-period", "30s",
        "--publish", "127.0.0.1::8000",
        *support.emulated(built.base),
        built.ref,
    )
    address = docker("port", name, "8000/tcp").stdout.splitlines()[0].strip()
    assert address.startswith("127.0.0.1:"), address
    return f"http://{address}"


@pytest.fixture(scope="module")
def webapp_running(webapp: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    token = secrets.token_urlsafe(24)
    token_file = tmp_path_factory.mktemp("secrets") / "app_token"
    token_file.write_text(token + "\n")  # editors add the newline; the entrypoint drops it
    token_file.chmod(0o444)  # Swarm's default secret mode: root-owned, readable by the app
    name = f"pybase-downstream-{uuid.uuid4().hex[:10]}"
    try:
        url = start_webapp(webapp, token_file, name)
        wait_healthy(name, support.patience(webapp.base))
        yield Running(name, url, token)
    finally:
        docker("rm", "--force", name, check=False)


def test_webapp_keeps_the_base_contract(webapp: Built) -> None:
    config = inspect(webapp.ref)["Config"]
    assert config["User"] == str(APP_UID)
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == inspect(webapp.base.ref)["Config"]["Entrypoint"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/python-base-healthcheck"]
    assert "HEALTHCHECK_PATH=/healthz" in config["Env"]
    # The build-time CA is for pip in one RUN only: nothing about it reaches run time.
    assert not [e for e in config["Env"] if e.startswith(("PIP_CERT=", "SSL_CERT_FILE="))]


def test_webapp_start_compiles_nothing(webapp: Built) -> None:
    """The example's compile step (README, "Start-up of your app") left a .pyc for every
    module the service imports, its own and the stdlib's: none is written when allowed."""
    assert support.pyc_written(
        webapp.ref, "env -u PYTHONDONTWRITEBYTECODE python -c 'import service'") == ""


def test_webapp_installed_its_pinned_dependency_into_the_root_owned_venv(webapp: Built) -> None:
    script = ("import bottle, os, sys; st = os.stat(bottle.__file__); "
              "print(sys.prefix, bottle.__version__, bottle.__file__, st.st_uid, "
              "os.access(bottle.__file__, os.W_OK))")
    result = run(webapp, "python", "-c", script)
    assert result.returncode == 0, result.stderr
    prefix, version, path, owner, writable = result.stdout.split()
    assert (prefix, version, owner, writable) == ("/opt/venv", "0.13.4", "0", "False")
    assert path.startswith("/opt/venv/lib/")


@pytest.mark.every_platform(emulated="first entry")
def test_webapp_becomes_healthy_and_answers(webapp_running: Running) -> None:
    health = json.loads(docker("inspect", "--format", "{{json .State.Health}}",
                               webapp_running.name).stdout)
    assert health["Status"] == "healthy"
    assert "/healthz -> 200" in health["Log"][-1]["Output"]
    assert http_get(f"{webapp_running.url}/healthz") == (200, {"status": "ok"})
    status, body = http_get(f"{webapp_running.url}/")
    assert (status, body["bottle"]) == (200, "0.13.4")


@pytest.mark.every_platform(emulated="first entry")
def test_webapp_token_from_file_secret(webapp_running: Running) -> None:
    url = f"{webapp_running.url}/api/whoami"
    status, body = http_get(url, {"Authorization": f"Bearer {webapp_running.token}"})
    assert status == 200, body
    assert (body["uid"], body["gid"]) == (APP_UID, APP_UID)
    for headers in ({}, {"Authorization": "Bearer wrong-token"},
                    {"Authorization": f"Bearer {webapp_running.token}x"},
                    {"Authorization": f"Basic {webapp_running.token}"}):
        assert http_get(url, headers)[0] == 401, headers


def test_webapp_process_runs_as_the_app_user(webapp_running: Running) -> None:
    # tini is PID 1; the entrypoint exec'd the app, so tini's only child is the app itself.
    children = docker("exec", webapp_running.name, "cat",
                      "/proc/1/task/1/children").stdout.split()
    assert len(children) == 1, children
    app = children[0]
    cmdline = docker("exec", webapp_running.name, "cat", f"/proc/{app}/cmdline").stdout
    assert cmdline.split("\0")[:3] == ["python", "-m", "service"]
    for pid in ("1", app):
        status = process_status(webapp_running.name, pid)
        assert status["Uid"].split() == [str(APP_UID)] * 4, (pid, status["Uid"])
        assert status["Gid"].split() == [str(APP_UID)] * 4, (pid, status["Gid"])
        assert status["CapEff"] == "0000000000000000", pid
    # The secret went in as a file: APP_TOKEN_FILE was consumed and the value is in no config.
    environ = docker("exec", webapp_running.name, "cat", f"/proc/{app}/environ").stdout
    names = {entry.split("=", 1)[0] for entry in environ.split("\0") if entry}
    assert "APP_TOKEN" in names and "APP_TOKEN_FILE" not in names
    assert webapp_running.token not in docker("inspect", webapp_running.name).stdout


def test_webapp_stops_promptly_on_sigterm(webapp: Built, tmp_path: Path) -> None:
    token_file = tmp_path / "app_token"
    token_file.write_text("stop-test\n")
    token_file.chmod(0o444)
    name = f"pybase-downstream-{uuid.uuid4().hex[:10]}"
    try:
        url = start_webapp(webapp, token_file, name)
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        while True:  # answering is enough here; the health status is tested above
            try:
                if http_get(f"{url}/healthz")[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.2)
        docker("stop", "--time", "20", name, timeout=60)
        # tini passed SIGTERM to the app and it ended of it (0 or 128+15); 137 would mean docker
        # gave up after the grace period and sent SIGKILL.
        exit_code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert exit_code in {"0", "143"}, exit_code
    finally:
        docker("rm", "--force", name, check=False)


# ---------------------------------------------------------------------------------------------
# wheels: compiled in -build, copied into the runtime image
# ---------------------------------------------------------------------------------------------
def build_variant(runtime: Image, variant: matrix.Variant) -> Image:
    """The same target's image of another variant: python-base:<key>-build for `build`."""
    return Image(runtime.target, variant,
                 tags.local_ref(MATRIX, runtime.target, variant))


def build_two_stage_example(name: str, runtime: Image, created: list[str]) -> Built:
    """An example whose first stage is the same target's -build image (BUILD_BASE)."""
    build_image = build_variant(runtime, "build")
    build_image.inspect()
    return build_example(name, runtime, created, build_args={"BUILD_BASE": build_image.ref})


@pytest.fixture(scope="module")
def wheels(runtime_image: Image, built_images: list[str]) -> Built:
    return build_two_stage_example("wheels", runtime_image, built_images)


@pytest.mark.every_platform(emulated="first entry")
def test_wheels_image_runs_the_compiled_extension(wheels: Built) -> None:
    result = run(wheels)  # the image's CMD: python -m render
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["escaped"] == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"
    assert output["implementation"] == "markupsafe._speedups"
    extension = output["extension"]
    assert extension.startswith("/opt/venv/lib/") and extension.endswith(".so"), extension
    # A real shared object for this interpreter, not a pure-Python stand-in.
    check = run(wheels, "python", "-c",
                "import sys, sysconfig; data = open(sys.argv[1], 'rb').read(4); "
                "print(data == b'\\x7fELF', sys.argv[1].endswith(sysconfig.get_config_var("
                "'EXT_SUFFIX')))", extension)
    assert check.stdout.split() == ["True", "True"], check.stderr


def test_wheels_image_has_no_compiler(wheels: Built) -> None:
    script = "for c in gcc cc c++ g++ clang ld as make; do command -v $c && exit 1; done; exit 0"
    result = run(wheels, "sh", "-c", script)
    assert result.returncode == 0, f"found in the runtime image: {result.stdout.strip()}"


def test_wheels_image_runs_as_the_app_user_with_a_root_owned_venv(wheels: Built) -> None:
    assert inspect(wheels.ref)["Config"]["User"] == f"{APP_UID}:{APP_UID}"
    result = run(wheels, "sh", "-c",
                 "id -u; id -g; stat -c '%u %a' /opt/venv /opt/venv/lib; "
                 "touch /opt/venv/.probe 2>/dev/null && echo writable || echo read-only")
    assert result.stdout.split("\n")[:5] == [str(APP_UID), str(APP_UID), "0 755", "0 755",
                                             "read-only"], result.stdout


# ---------------------------------------------------------------------------------------------
# embed: uWSGI compiled in -build, run on the runtime image with libpython copied along
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embed(runtime_image: Image, built_images: list[str]) -> Built:
    return build_two_stage_example("embed", runtime_image, built_images)


def test_embedder_serves_from_the_runtime_image(embed: Built) -> None:
    """The runtime image has no libpython3.X.so; the README's two COPY lines and ldconfig
    are all an embedder built in -build needs."""
    with detached("--read-only", "--cap-drop", "ALL", "--publish", "127.0.0.1::8000",
                  embed.ref) as name:
        url = f"http://127.0.0.1:{published_port(name, 8000)}/hello"
        answers: list[tuple[int, dict[str, Any]]] = []

        def answered() -> bool:
            try:
                answers.append(http_get(url))
            except (OSError, ValueError):
                running = docker("inspect", "--format", "{{.State.Running}}", name).stdout
                if running.strip() != "true":
                    logs = docker("logs", name, check=False)
                    pytest.fail(f"uWSGI exited:\n{logs.stdout}{logs.stderr}", pytrace=False)
                return False
            return True

        wait_for(answered, HEALTHY_TIMEOUT, "uWSGI to answer")
        assert answers[-1] == (200, {"python": embed.base.target.python.version,
                                     "executable": "/opt/venv/bin/uwsgi", "uwsgi": "2.0.31",
                                     "path": "/hello"})
        minor = embed.base.target.python.minor
        linked = docker("exec", name, "sh", "-c", "ldd /opt/venv/bin/uwsgi").stdout
        assert f"libpython{minor}.so.1.0 => /usr/local/lib/libpython{minor}.so.1.0" in linked


# ---------------------------------------------------------------------------------------------
# no secret leaks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    built: Built
    value: str


@pytest.fixture(scope="module")
def secret_probe(runtime_image: Image, built_images: list[str],
                 tmp_path_factory: pytest.TempPathFactory) -> Probe:
    value = f"pybase-leak-probe-{secrets.token_hex(24)}"
    secret_file = tmp_path_factory.mktemp("probe") / "probe"
    secret_file.write_text(value)
    secret_file.chmod(0o400)
    built = build_example("secret-probe", runtime_image, built_images,
                          build_args={"NONCE": uuid.uuid4().hex},
                          extra_secrets={"probe": secret_file})
    return Probe(built, value)


def test_build_secret_is_in_no_layer_history_or_config(secret_probe: Probe,
                                                       tmp_path: Path) -> None:
    value = secret_probe.value.encode()
    digest = hashlib.sha256(value).hexdigest().encode()
    layers, config = saved_image(secret_probe.built.ref, [value, digest], tmp_path)
    # Control: the step did see the secret, and a scan does find what a layer holds (its digest).
    assert [i for i, layer in enumerate(layers) if digest in layer.found], \
        "the probe step's output (the secret's sha256) is in no layer: the scan is blind"
    assert not [layer.diff_id for layer in layers if value in layer.found]
    assert value not in config
    assert secret_probe.value not in history(secret_probe.built.ref)
    assert secret_probe.value not in docker("image", "inspect", secret_probe.built.ref).stdout
    # BuildKit leaves the mount point's directory behind, never a file with content.
    for layer in added_layers(layers, secret_probe.built.base):
        assert not [p for p, size in layer.members.items()
                    if p.startswith("run/secrets/") and size], layer.members


def test_build_ca_is_not_baked_into_the_webapp(webapp: Built, tmp_path: Path) -> None:
    ca = build_ca()
    host_certs = pem_certificates(ca.read_bytes()) if ca else {}
    base_bundle = run(Built(webapp.base.ref, webapp.base), "cat", "/etc/ssl/certs/ca-certificates.crt")
    assert base_bundle.returncode == 0, base_bundle.stderr
    # The site's own CAs: in the bundle given to the build, not in the image's system bundle.
    site_only = {der: body for der, body in host_certs.items()
                 if der not in pem_certificates(base_bundle.stdout.encode())}
    # A PEM certificate: the header, then the base64 of a DER SEQUENCE ("MI..." for any
    # certificate over 127 bytes). The bare header is not enough: a compiled stdlib module holds
    # it as a constant (ssl.PEM_HEADER), and the webapp compiles what it imports.
    needles = {b"-----BEGIN CERTIFICATE-----\nMI", b"-----BEGIN CERTIFICATE-----\r\nMI"}
    for der, body in site_only.items():
        # One whole line of the PEM (64 characters a line), and 48 bytes of the DER form.
        line = len(body) // 2 // 64 * 64
        needles |= {body[line:line + 64], der[len(der) // 2:len(der) // 2 + 48]}
    layers, config = saved_image(webapp.ref, needles, tmp_path)
    for layer in added_layers(layers, webapp.base):
        assert not layer.found, f"{layer.diff_id} holds certificate data"
        assert not [p for p, size in layer.members.items()
                    if p.startswith("run/secrets/") and size], layer.members
    assert not [n for n in needles if n in config]
    assert "BEGIN CERTIFICATE" not in history(webapp.ref)
    result = run(webapp, "sh", "-c", "test ! -e /run/secrets/build-ca")
    assert result.returncode == 0, "/run/secrets/build-ca exists in the final image"
